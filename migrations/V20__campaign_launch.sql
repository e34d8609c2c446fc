-- Launching campaigns (docs/rules/campaigns.md, "Launch", "Fan-out", "Money"): the launch reserves
-- the whole charge as one reservation (the campaign's *pool*), the fan-out carves each message's
-- share out of it, and what is left when the fan-out ends is refunded.

-- A pool is carved down to nothing: reservations may now hold zero units. Everything else is as
-- in V4 (SQLite changes a CHECK only by rebuilding the table).
CREATE TABLE billing_reservations_v20 (
    reference           TEXT PRIMARY KEY,            -- msg_… or cmp_…
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    channel             TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    units               INTEGER NOT NULL CHECK (units >= 0),
    included_units      INTEGER NOT NULL CHECK (included_units >= 0),
    billable_units      INTEGER NOT NULL CHECK (billable_units >= 0),
    charge_minor        INTEGER NOT NULL CHECK (charge_minor >= 0),
    currency            TEXT NOT NULL,
    quota_period_start  TEXT NOT NULL,
    billing_month_start TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    refunded_at         TEXT,
    CHECK (included_units + billable_units = units)
) STRICT;
INSERT INTO billing_reservations_v20 SELECT * FROM billing_reservations;
DROP TABLE billing_reservations;
ALTER TABLE billing_reservations_v20 RENAME TO billing_reservations;
CREATE INDEX billing_reservations_by_workspace ON billing_reservations (workspace_id);

-- What the launch fixed, and where the fan-out stands.
ALTER TABLE campaigns ADD COLUMN launched_at TEXT;
-- The API key that launched it (NULL from a console session): its messages carry it.
ALTER TABLE campaigns ADD COLUMN launched_by_key TEXT;
-- SMS: the workspace's effective sender at launch, which every message goes out from.
ALTER TABLE campaigns ADD COLUMN sender TEXT;
-- The audience as the launch compiled it: a condition over `contacts c` and its parameters (a
-- JSON array), so a segment edited or a field deleted afterwards does not change who is written to.
ALTER TABLE campaigns ADD COLUMN audience_sql TEXT;
ALTER TABLE campaigns ADD COLUMN audience_params TEXT;
-- The fan-out walks the audience in contact rowid order up to the newest contact at launch; the
-- cursor (the last contact done) commits with each chunk of messages.
ALTER TABLE campaigns ADD COLUMN fanout_last_rowid INTEGER;
ALTER TABLE campaigns ADD COLUMN fanout_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN fanout_done_at TEXT;
-- The launch's figures: eligible recipients and their units, what was reserved (the pool's
-- charge, plus any extension the fan-out needed), in the wallet's currency.
ALTER TABLE campaigns ADD COLUMN planned_recipients INTEGER;
ALTER TABLE campaigns ADD COLUMN planned_units INTEGER;
ALTER TABLE campaigns ADD COLUMN reserved_minor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN currency TEXT;
-- Contacts left out, by reason (a JSON object): at launch (duplicate, deleted) and by the fan-out.
ALTER TABLE campaigns ADD COLUMN excluded TEXT NOT NULL DEFAULT '{}';
ALTER TABLE campaigns ADD COLUMN messages_created INTEGER NOT NULL DEFAULT 0;
-- The pool's leftover, refunded when the fan-out ends (messages are refunded one by one, or a
-- cancel's batch together).
ALTER TABLE campaigns ADD COLUMN refunded_minor INTEGER NOT NULL DEFAULT 0;
-- Cancelled messages are refunded in chunks, one ledger row each (`cmp_…/cancel-N`).
ALTER TABLE campaigns ADD COLUMN cancel_refunds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN cancelled_at TEXT;
-- Set when a cancelled campaign has no message left to cancel.
ALTER TABLE campaigns ADD COLUMN cancel_done_at TEXT;
ALTER TABLE campaigns ADD COLUMN finished_at TEXT;
-- Why a campaign failed before sending anything (`insufficient_funds`, `no_recipients`, …).
ALTER TABLE campaigns ADD COLUMN failure_code TEXT;
ALTER TABLE campaigns ADD COLUMN failure_message TEXT;

-- One message per campaign and contact, whatever crashes and retries happen.
CREATE UNIQUE INDEX messages_by_campaign_contact ON messages (campaign_id, contact_id)
    WHERE campaign_id IS NOT NULL;
-- A campaign's messages by status: its stats, its cancel, whether it is finished.
CREATE INDEX messages_by_campaign_status ON messages (campaign_id, status)
    WHERE campaign_id IS NOT NULL;
-- The runner's work: campaigns to start, fan out, sweep or finish.
CREATE INDEX campaigns_by_status ON campaigns (status) WHERE status IN ('scheduled', 'running', 'cancelled');
