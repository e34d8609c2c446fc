-- Campaigns (docs/rules/campaigns.md): a message to an audience of contacts, written once as a
-- template and personalised per recipient. A campaign lives in one workspace and one mode, like
-- the contacts it goes to. Drafts are edited freely and deleted for good; the launch and its
-- messages come with the fan-out.

CREATE TABLE campaigns (
    id               TEXT PRIMARY KEY,                   -- cmp_…
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    mode             TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name             TEXT NOT NULL,                      -- trimmed, 1–200 characters
    channel          TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    status           TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'running',
                         'completed', 'partial', 'failed', 'cancelled')),
    text             TEXT,                               -- SMS text, or the email's text part
    subject          TEXT,                               -- email only
    html             TEXT,                               -- email only
    from_name        TEXT,                               -- email only: the From display name
    -- A JSON object: {"all": true} or {"groups": ["grp_…"], "segments": ["seg_…"]}.
    audience         TEXT NOT NULL,
    scheduled_at     TEXT,
    opt_out_line     INTEGER NOT NULL CHECK (opt_out_line IN (0, 1)),
    duplicated_from  TEXT,                               -- the campaign this one copies
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    CHECK (channel = 'email' OR (subject IS NULL AND html IS NULL AND from_name IS NULL))
) STRICT;

-- Lists: a workspace's campaigns of one mode, newest first (SQLite appends the rowid).
CREATE INDEX campaigns_by_workspace ON campaigns (workspace_id, mode);
