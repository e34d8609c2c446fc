-- Transactional messages go before a campaign's backlog (docs/rules/messages.md, "Delivery"): the
-- dispatcher's claim takes due transactional messages first, through this index, then fills its
-- batch with marketing ones by due time (through `messages_due`). It covers only queued
-- transactional rows — a handful at any time — so a campaign's fan-out, which writes marketing
-- rows, never maintains it, and an OTP is found in a few index steps however many campaign
-- messages are queued.
CREATE INDEX messages_due_transactional ON messages (next_attempt_at)
    WHERE status = 'queued' AND category = 'transactional';
