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

-- Segment conditions on custom fields read one key of `custom` per contact. Parsing the JSON text
-- for that costs more than the rest of a count (measured with examples/segments_bench.rs: about
-- 1–1.5 µs per contact against ~0.1 µs from SQLite's binary JSONB form), so every contact also
-- keeps its custom values as JSONB, written by SQLite itself whenever `custom` is written (by any
-- statement: creation, edits, imports, a deleted definition's values being stripped).
ALTER TABLE contacts ADD COLUMN custom_jsonb BLOB;
UPDATE contacts SET custom_jsonb = jsonb(custom);

CREATE TRIGGER contacts_custom_jsonb_on_insert AFTER INSERT ON contacts
BEGIN
    UPDATE contacts SET custom_jsonb = jsonb(NEW.custom) WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER contacts_custom_jsonb_on_update AFTER UPDATE OF custom ON contacts
BEGIN
    UPDATE contacts SET custom_jsonb = jsonb(NEW.custom) WHERE rowid = NEW.rowid;
END;
