-- Payment webhooks are answered once journalled; the payments worker verifies and applies them
-- afterwards. A journalled event keeps what the worker needs to apply it without re-reading the
-- payload, and its retry schedule.

-- The event as read when it arrived: the status it claims, the provider's payment id, the
-- cumulative refund it reports.
ALTER TABLE payment_webhook_events ADD COLUMN claimed_status TEXT CHECK (claimed_status IN
    ('pending', 'succeeded', 'failed', 'cancelled', 'expired', 'refunded'));
ALTER TABLE payment_webhook_events ADD COLUMN provider_reference TEXT;
ALTER TABLE payment_webhook_events ADD COLUMN refunded_minor INTEGER;
-- Tries of the worker that could not settle the event (provider down, payment not confirmed
-- yet), when it tries next, and why the last try did not settle it.
ALTER TABLE payment_webhook_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0
    CHECK (attempts >= 0);
ALTER TABLE payment_webhook_events ADD COLUMN next_attempt_at TEXT;
ALTER TABLE payment_webhook_events ADD COLUMN last_error TEXT;

-- Events left `received` by the synchronous handling (a success the provider did not confirm
-- yet, answered 503) carry none of the above: the provider delivers them again, and a new
-- delivery re-opens a settled event, so they are closed here rather than guessed at.
UPDATE payment_webhook_events
   SET outcome = 'not_applied',
       reason = 'journalled before the payments worker; a new delivery is examined again'
 WHERE outcome = 'received';

-- What the worker picks: pending events by when they are due.
CREATE INDEX payment_webhook_events_due ON payment_webhook_events (next_attempt_at)
    WHERE outcome = 'received';
