-- The `wallet.low_balance` webhook event (docs/API.md, "Webhooks: events to your app"): a
-- workspace may set a threshold (minor units of its wallet currency); a debit that takes the
-- balance from at or above it to below it records the event, in the transaction of the debit,
-- while the workspace has a live webhook endpoint (the wallet is live only).
ALTER TABLE workspaces ADD COLUMN low_balance_threshold_minor INTEGER
    CHECK (low_balance_threshold_minor IS NULL OR low_balance_threshold_minor > 0);

CREATE TRIGGER events_wallet_low_balance
AFTER INSERT ON wallet_ledger
WHEN NEW.amount_minor < 0
 AND EXISTS (SELECT 1 FROM workspaces w
             WHERE w.id = NEW.workspace_id
               AND w.low_balance_threshold_minor IS NOT NULL
               AND NEW.balance_after_minor < w.low_balance_threshold_minor
               AND NEW.balance_after_minor - NEW.amount_minor >= w.low_balance_threshold_minor)
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = 'live')
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, 'live', 'wallet.low_balance', NEW.id, NEW.created_at);
END;
