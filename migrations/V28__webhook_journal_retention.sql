-- The webhook journal is bounded (docs/rules/payments.md, "Webhooks"): the janitor deletes events
-- settled or rejected longer ago than `--webhook-retention-days`, oldest first, through this index
-- (events still waiting for the payments worker are never deleted).
CREATE INDEX payment_webhook_events_by_age ON payment_webhook_events (updated_at)
    WHERE outcome != 'received';
