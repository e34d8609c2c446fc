-- A campaign's From display name (`from_name`), stamped on each of its email messages when the
-- fan-out writes them, as the sender is: delivery shows it with the From address the message
-- goes out from. NULL for every other message (the From mailbox's own name, if any, is kept).
ALTER TABLE messages ADD COLUMN from_name TEXT;
