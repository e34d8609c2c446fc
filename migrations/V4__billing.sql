-- Billing (SPEC §5): plan state and wallet on the workspace, usage counters, an append-only
-- ledger that is the only way the balance changes, and the record of what each send reserved.

ALTER TABLE workspaces ADD COLUMN plan_code TEXT NOT NULL DEFAULT 'free';
ALTER TABLE workspaces ADD COLUMN plan_activated_at TEXT;
ALTER TABLE workspaces ADD COLUMN plan_period_end TEXT;
ALTER TABLE workspaces ADD COLUMN wallet_currency TEXT NOT NULL DEFAULT 'XAF';
-- Maintained only by the ledger triggers below; never negative.
ALTER TABLE workspaces ADD COLUMN wallet_balance_minor INTEGER NOT NULL DEFAULT 0
    CHECK (wallet_balance_minor >= 0);

CREATE TABLE wallet_ledger (
    id                  TEXT PRIMARY KEY,            -- led_…
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    kind                TEXT NOT NULL
                        CHECK (kind IN ('topup', 'charge', 'refund', 'adjustment', 'plan_purchase')),
    amount_minor        INTEGER NOT NULL CHECK (amount_minor <> 0),
    balance_after_minor INTEGER NOT NULL CHECK (balance_after_minor >= 0),
    currency            TEXT NOT NULL,
    reference           TEXT NOT NULL,               -- message, campaign, payment session, admin
    actor               TEXT,                        -- user or key id; NULL for the system
    reason              TEXT,
    created_at          TEXT NOT NULL
) STRICT;
CREATE INDEX wallet_ledger_by_workspace ON wallet_ledger (workspace_id, id);
-- A reference is refunded at most once.
CREATE UNIQUE INDEX wallet_ledger_one_refund ON wallet_ledger (workspace_id, reference)
    WHERE kind = 'refund';

-- The ledger is append-only.
CREATE TRIGGER wallet_ledger_no_update BEFORE UPDATE ON wallet_ledger
BEGIN
    SELECT RAISE(ABORT, 'wallet_ledger is append-only');
END;
CREATE TRIGGER wallet_ledger_no_delete BEFORE DELETE ON wallet_ledger
BEGIN
    SELECT RAISE(ABORT, 'wallet_ledger is append-only');
END;
-- Each row must continue the balance exactly, in the wallet's currency…
CREATE TRIGGER wallet_ledger_continues_balance BEFORE INSERT ON wallet_ledger
WHEN NEW.balance_after_minor <>
         (SELECT wallet_balance_minor FROM workspaces WHERE id = NEW.workspace_id) + NEW.amount_minor
     OR NEW.currency <> (SELECT wallet_currency FROM workspaces WHERE id = NEW.workspace_id)
BEGIN
    SELECT RAISE(ABORT, 'ledger row does not continue the wallet balance');
END;
-- …and it is what moves the balance, so balance == sum(ledger) by construction.
CREATE TRIGGER wallet_ledger_moves_balance AFTER INSERT ON wallet_ledger
BEGIN
    UPDATE workspaces SET wallet_balance_minor = NEW.balance_after_minor
    WHERE id = NEW.workspace_id;
END;

-- Per workspace and channel: quota used in the current quota period (SMS: calendar month,
-- email: day, UTC) and billable units in the current calendar month (the pricing tiers' input).
-- A row whose stored period is not the current one counts as 0.
CREATE TABLE usage_counters (
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    channel             TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    quota_period_start  TEXT NOT NULL,
    quota_used          INTEGER NOT NULL CHECK (quota_used >= 0),
    billing_month_start TEXT NOT NULL,
    billable_units      INTEGER NOT NULL CHECK (billable_units >= 0),
    PRIMARY KEY (workspace_id, channel)
) STRICT;

-- What each live send took, so a refund gives back exactly that, once.
CREATE TABLE billing_reservations (
    reference           TEXT PRIMARY KEY,            -- msg_… or cmp_…
    workspace_id        TEXT NOT NULL REFERENCES workspaces (id),
    channel             TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    units               INTEGER NOT NULL CHECK (units > 0),
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
CREATE INDEX billing_reservations_by_workspace ON billing_reservations (workspace_id);
