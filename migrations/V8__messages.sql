-- Messages (SPEC §8). The messages table is the outbox: a row is the message, its price and its
-- delivery state, and the dispatcher claims due rows with a lease. Attempts record every
-- provider call.

CREATE TABLE messages (
    id                  TEXT PRIMARY KEY,            -- msg_…
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    api_key_id          TEXT,                        -- the key that sent it; NULL from a session
    campaign_id         TEXT,                        -- cmp_… for campaign messages
    mode                TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    channel             TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    category            TEXT NOT NULL CHECK (category IN ('transactional', 'marketing')),
    to_address          TEXT NOT NULL,               -- E.164 or a lower-cased email address
    sender              TEXT,                        -- SMS sender
    subject             TEXT,
    text                TEXT,
    html                TEXT,
    metadata            TEXT NOT NULL DEFAULT '{}',  -- a JSON object
    encoding            TEXT CHECK (encoding IN ('gsm7', 'ucs2')),
    segments            INTEGER,
    units               INTEGER NOT NULL CHECK (units > 0),
    included_units      INTEGER NOT NULL CHECK (included_units >= 0),
    charge_minor        INTEGER NOT NULL CHECK (charge_minor >= 0),
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN
                            ('scheduled', 'queued', 'sending', 'sent', 'delivered', 'failed',
                             'cancelled')),
    scheduled_at        TEXT,
    -- When a queued message is due (its creation, schedule, or its next retry).
    next_attempt_at     TEXT NOT NULL,
    -- Delivery cycles begun (one pass over the channel's providers each).
    delivery_cycles     INTEGER NOT NULL DEFAULT 0,
    -- The dispatcher holding a `sending` message, and until when.
    lease_owner         TEXT,
    lease_expires_at    TEXT,
    provider            TEXT,                        -- the provider that accepted it (or tried last)
    provider_message_id TEXT,
    error_code          TEXT,
    error_message       TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT,
    delivered_at        TEXT,
    failed_at           TEXT,
    cancelled_at        TEXT,
    CHECK ((status = 'sending') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (channel = 'email' OR (sender IS NOT NULL AND text IS NOT NULL AND segments > 0)),
    CHECK (channel = 'sms' OR (subject IS NOT NULL AND (text IS NOT NULL OR html IS NOT NULL)))
) STRICT;
-- Lists go newest first by rowid (insertion order), which this index carries.
CREATE INDEX messages_by_workspace ON messages (workspace_id);
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_leased ON messages (lease_expires_at) WHERE status = 'sending';
CREATE INDEX messages_scheduled ON messages (scheduled_at) WHERE status = 'scheduled';
CREATE INDEX messages_by_provider_id ON messages (provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

CREATE TABLE message_attempts (
    id                  TEXT PRIMARY KEY,            -- att_…
    message_id          TEXT NOT NULL REFERENCES messages (id),
    attempt_no          INTEGER NOT NULL CHECK (attempt_no > 0),
    delivery_cycle      INTEGER NOT NULL CHECK (delivery_cycle > 0),
    provider            TEXT NOT NULL,
    outcome             TEXT NOT NULL CHECK (outcome IN ('accepted', 'retryable_error', 'final_error')),
    provider_message_id TEXT,
    error_code          TEXT,
    error_message       TEXT,
    duration_ms         INTEGER NOT NULL CHECK (duration_ms >= 0),
    created_at          TEXT NOT NULL,
    UNIQUE (message_id, attempt_no)
) STRICT;
