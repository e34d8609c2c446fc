-- No trigger on inserting a message (docs/design/webhooks.md). A statement that fires
-- a trigger and may abort makes SQLite open a statement journal inside the transaction: every
-- page the INSERT touches is copied to it, and its release walks the whole sub-journal of the
-- writer's savepoint — for a campaign's fan-out, which inserts thousands of messages in one
-- savepoint, the largest single cost of a message (a third of the writer's time). Without a
-- trigger a one-row INSERT checks every constraint before writing anything and needs none.
-- The trigger of V30 recorded an event for a message *created* already settled; crier creates
-- every message `scheduled` or `queued` (messages::store::insert_message refuses any other
-- status), so it never fired. Status changes keep their trigger (`events_message_status`).
DROP TRIGGER events_message_created_settled;
