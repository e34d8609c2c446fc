-- Groups of contacts (docs/rules/contacts.md, "Groups"). A group lives in one workspace and one
-- mode, like the contacts it holds. Memberships name contacts that were live and of the group's
-- workspace and mode when added; a contact deleted later keeps its memberships (its row stays)
-- but no longer counts or lists.

CREATE TABLE groups (
    id            TEXT PRIMARY KEY,                  -- grp_…
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    mode          TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name          TEXT NOT NULL,                     -- trimmed, 1–100 characters
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (workspace_id, mode, name)
) STRICT;

-- Lists: a workspace's groups of one mode, newest first (SQLite appends the rowid).
CREATE INDEX groups_by_workspace ON groups (workspace_id, mode);

CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES groups (id),
    contact_id  TEXT NOT NULL REFERENCES contacts (id),
    added_at    TEXT NOT NULL,
    PRIMARY KEY (group_id, contact_id)
) STRICT, WITHOUT ROWID;

-- A contact's groups.
CREATE INDEX group_members_by_contact ON group_members (contact_id);
