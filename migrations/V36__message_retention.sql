-- Message retention (docs/rules/messages.md, "Retention"): past `--message-retention-days` the
-- janitor drops a finished message's subject and bodies (and its attempts' error texts), keeping
-- its recipient, amounts, statuses and times; the ledger and reservations are never touched.

-- When the message's subject and bodies were dropped; NULL while they are kept.
ALTER TABLE messages ADD COLUMN body_purged_at TEXT;

-- Where the janitor's walk over messages (in id order, which is creation order) stands: every
-- message up to `cursor` is purged, or waits in `message_retention_pending`. One row. A walk
-- with a cursor costs the send path nothing (no index on the age of unpurged messages).
CREATE TABLE message_retention (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    cursor  TEXT NOT NULL                    -- the last message id the walk passed, '' at first
) STRICT;
INSERT INTO message_retention (id, cursor) VALUES (1, '');

-- Messages the walk passed while they were not finished (scheduled far ahead, still queued or
-- sending): purged once they are. Few rows.
CREATE TABLE message_retention_pending (
    message_id  TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
