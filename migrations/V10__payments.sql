-- Payments (SPEC §6): checkout sessions, one row per provider call, and the webhook journal.

CREATE TABLE payment_sessions (
    id                  TEXT PRIMARY KEY,            -- pay_…
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    kind                TEXT NOT NULL CHECK (kind IN ('plan', 'topup')),
    plan_code           TEXT,
    amount_minor        INTEGER NOT NULL CHECK (amount_minor > 0),
    currency            TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN
                            ('pending', 'redirected', 'processing', 'succeeded', 'failed',
                             'cancelled', 'expired', 'refunded')),
    provider            TEXT,                        -- the provider whose checkout the payer got
    provider_reference  TEXT,                        -- Stripe cs_…, Flutterwave transaction id
    checkout_url        TEXT,
    created_by          TEXT NOT NULL,               -- user or API key id
    customer_email      TEXT NOT NULL,
    expires_at          TEXT NOT NULL,
    fulfilled_at        TEXT,
    -- Refunds reported by the provider, and how much of them the wallet could give back.
    refunded_minor      INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    refund_debited_minor INTEGER NOT NULL DEFAULT 0 CHECK (refund_debited_minor >= 0),
    refund_shortfall_minor INTEGER NOT NULL DEFAULT 0 CHECK (refund_shortfall_minor >= 0),
    -- Why the session is not fulfilled although a provider said paid (a verification mismatch).
    flag                TEXT,
    failure_reason      TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((kind = 'plan') = (plan_code IS NOT NULL)),
    CHECK ((status IN ('succeeded', 'refunded')) = (fulfilled_at IS NOT NULL))
) STRICT;
CREATE INDEX payment_sessions_by_workspace ON payment_sessions (workspace_id);
CREATE INDEX payment_sessions_open ON payment_sessions (expires_at)
    WHERE status IN ('pending', 'redirected');
CREATE INDEX payment_sessions_by_provider_reference ON payment_sessions (provider, provider_reference)
    WHERE provider_reference IS NOT NULL;

-- The state machine's one rule the database holds too: a terminal state is never left, except
-- succeeded → refunded.
CREATE TRIGGER payment_sessions_terminal_states_stay
BEFORE UPDATE OF status ON payment_sessions
WHEN NEW.status <> OLD.status AND (
        OLD.status IN ('failed', 'cancelled', 'expired', 'refunded')
     OR (OLD.status = 'succeeded' AND NEW.status <> 'refunded'))
BEGIN
    SELECT RAISE(ABORT, 'a payment session in a terminal state never changes state');
END;
-- Fulfilled at most once.
CREATE TRIGGER payment_sessions_fulfilled_once
BEFORE UPDATE OF fulfilled_at ON payment_sessions
WHEN OLD.fulfilled_at IS NOT NULL AND NEW.fulfilled_at IS NOT OLD.fulfilled_at
BEGIN
    SELECT RAISE(ABORT, 'a payment session is fulfilled at most once');
END;

-- Every call to a provider about a session: creating its checkout, or verifying the payment.
CREATE TABLE payment_transactions (
    id                  TEXT PRIMARY KEY,            -- ptx_…
    session_id          TEXT NOT NULL REFERENCES payment_sessions (id),
    provider            TEXT NOT NULL,
    operation           TEXT NOT NULL CHECK (operation IN ('create_checkout', 'verify')),
    outcome             TEXT NOT NULL CHECK (outcome IN ('ok', 'error')),
    provider_reference  TEXT,
    raw_status          TEXT,                        -- the provider's own word
    status              TEXT,                        -- normalised
    error_code          TEXT,
    error_message       TEXT,
    duration_ms         INTEGER NOT NULL CHECK (duration_ms >= 0),
    created_at          TEXT NOT NULL
) STRICT;
CREATE INDEX payment_transactions_by_session ON payment_transactions (session_id);

-- Every webhook received, with its verdict. One row per (provider, event id) among signed
-- events; repeats count in `deliveries`.
CREATE TABLE payment_webhook_events (
    id                  TEXT PRIMARY KEY,            -- whk_…
    provider            TEXT NOT NULL,
    event_id            TEXT,
    event_type          TEXT,
    signature           TEXT NOT NULL CHECK (signature IN ('valid', 'invalid')),
    payload             TEXT NOT NULL,
    session_id          TEXT,
    outcome             TEXT NOT NULL CHECK (outcome IN
                            ('received', 'applied', 'not_applied', 'rejected')),
    reason              TEXT,
    deliveries          INTEGER NOT NULL DEFAULT 1,
    received_at         TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    CHECK ((signature = 'valid') = (event_id IS NOT NULL) OR outcome = 'rejected')
) STRICT;
CREATE UNIQUE INDEX payment_webhook_events_once ON payment_webhook_events (provider, event_id)
    WHERE event_id IS NOT NULL;
