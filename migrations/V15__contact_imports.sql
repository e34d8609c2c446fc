-- CSV imports of contacts (docs/rules/contacts.md, "Imports"). A job lives in one workspace and
-- one mode, like the contacts it writes. Its counters and `bytes_read` (how far into the spooled
-- file its committed rows go) are written in the same transaction as the rows they count, so
-- after a crash the job says exactly how far it got and resumes from there.

CREATE TABLE contact_imports (
    id                TEXT PRIMARY KEY,              -- imp_…
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id),
    mode              TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    status            TEXT NOT NULL CHECK (status IN
                          ('queued', 'running', 'completed', 'failed', 'cancelled')),
    import_mode       TEXT NOT NULL CHECK (import_mode IN ('create', 'upsert', 'update')),
    group_id          TEXT REFERENCES groups (id),
    charset           TEXT NOT NULL CHECK (charset IN ('utf-8', 'windows-1252', 'iso-8859-1')),
    delimiter         TEXT NOT NULL CHECK (delimiter IN (',', ';', 'tab')),
    header            TEXT NOT NULL,                 -- a JSON array: the header row, decoded
    mapping           TEXT NOT NULL,                 -- a JSON array: per column, its field or null
    ignored_columns   TEXT NOT NULL,                 -- a JSON array of header names
    spool_file        TEXT,                          -- under <db dir>/imports/; null once ended
    bytes_received    INTEGER NOT NULL CHECK (bytes_received >= 0),
    bytes_read        INTEGER NOT NULL CHECK (bytes_read >= 0),
    rows_read         INTEGER NOT NULL DEFAULT 0,
    created           INTEGER NOT NULL DEFAULT 0,
    updated           INTEGER NOT NULL DEFAULT 0,
    unchanged         INTEGER NOT NULL DEFAULT 0,
    rejected          INTEGER NOT NULL DEFAULT 0,
    rolled_back       INTEGER,                       -- contacts deleted by the rollback
    error             TEXT,                          -- why a failed job failed
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    rolled_back_at    TEXT,
    updated_at        TEXT NOT NULL,
    CHECK (rows_read = created + updated + unchanged + rejected)
) STRICT;

-- Lists: a workspace's imports of one mode, newest first (SQLite appends the rowid).
CREATE INDEX contact_imports_by_workspace ON contact_imports (workspace_id, mode);
-- The runner's queue: jobs not ended, oldest first.
CREATE INDEX contact_imports_pending ON contact_imports (status)
    WHERE status IN ('queued', 'running');

-- The rows an import refused, with why and the row's own fields (decoded), for the download.
CREATE TABLE contact_import_rejects (
    import_id   TEXT NOT NULL REFERENCES contact_imports (id),
    row_number  INTEGER NOT NULL,                    -- 1 = the first row after the header
    reason      TEXT NOT NULL,
    fields      TEXT NOT NULL,                       -- a JSON array of the row's fields
    PRIMARY KEY (import_id, row_number)
) STRICT, WITHOUT ROWID;

-- The import that created a contact, so a rollback can delete exactly those.
ALTER TABLE contacts ADD COLUMN import_id TEXT REFERENCES contact_imports (id);
CREATE INDEX contacts_by_import ON contacts (import_id) WHERE import_id IS NOT NULL;
