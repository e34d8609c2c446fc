-- Sender IDs and business verification (SPEC §5), decided by instance admins.

CREATE TABLE sender_ids (
    workspace_id     TEXT PRIMARY KEY REFERENCES workspaces (id),
    sender_id        TEXT NOT NULL,                  -- upper-cased
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    rejection_reason TEXT,
    requested_by     TEXT,
    requested_at     TEXT NOT NULL,
    decided_by       TEXT,
    decided_at       TEXT
) STRICT;
-- Unique on the instance while pending or approved; a rejected request frees the name.
CREATE UNIQUE INDEX sender_ids_unique_live ON sender_ids (sender_id) WHERE status <> 'rejected';

CREATE TABLE verifications (
    workspace_id     TEXT PRIMARY KEY REFERENCES workspaces (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'verified', 'rejected')),
    business_name    TEXT NOT NULL,
    country          TEXT NOT NULL,
    website          TEXT,
    document_refs    TEXT NOT NULL,                  -- JSON array of strings
    rejection_reason TEXT,
    submitted_by     TEXT,
    submitted_at     TEXT NOT NULL,
    decided_by       TEXT,
    decided_at       TEXT
) STRICT;
