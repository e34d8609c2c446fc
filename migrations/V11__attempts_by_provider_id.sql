-- Delivery receipts find a message by the provider's id for it, also through its accepted
-- attempts (a receipt can arrive before the message's own record carries the id).
CREATE INDEX message_attempts_by_provider_id ON message_attempts (provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
