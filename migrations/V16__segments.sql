-- Saved segments (docs/rules/contacts.md, "Segments"): named rule trees over a workspace's
-- contacts of one mode, like groups. The rules are stored as the JSON the client sent (checked
-- when saved, checked again whenever the segment is used, since a custom field or group it
-- names may have been deleted since).

CREATE TABLE segments (
    id            TEXT PRIMARY KEY,                  -- seg_…
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    mode          TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name          TEXT NOT NULL,                     -- trimmed, 1–100 characters
    rules         TEXT NOT NULL,                     -- a JSON object: {"all"|"any": [...]}
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (workspace_id, mode, name)
) STRICT;

-- Lists: a workspace's segments of one mode, newest first (SQLite appends the rowid).
CREATE INDEX segments_by_workspace ON segments (workspace_id, mode);
