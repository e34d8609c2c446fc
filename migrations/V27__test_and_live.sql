-- Test and live are two worlds (docs/rules/access.md, "Test and live"): every object carries its
-- mode and a caller sees and changes only its own mode's. An API key is of one mode for life; a
-- console session looks at one mode at a time, live until the user switches.
ALTER TABLE sessions ADD COLUMN mode TEXT NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'test'));

-- A workspace's messages of one mode, newest first (SQLite appends the rowid): the list, the
-- console's chart and the erasure all ask for one mode. Replaces the workspace-only index.
DROP INDEX messages_by_workspace;
CREATE INDEX messages_by_workspace ON messages (workspace_id, mode);
