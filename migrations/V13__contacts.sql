-- Contacts and the definitions of their custom fields (docs/rules/contacts.md). Every contact
-- carries its mode: test and live contacts are two separate worlds that never conflict. A
-- deleted contact keeps its row (`deleted_at`) but frees its phone and email.

CREATE TABLE contact_fields (
    id            TEXT PRIMARY KEY,                  -- cfd_…
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    key           TEXT NOT NULL,                     -- [a-z][a-z0-9_]{0,39}
    label         TEXT NOT NULL,
    type          TEXT NOT NULL CHECK (type IN
                      ('text', 'number', 'date', 'boolean', 'url', 'select')),
    options       TEXT,                              -- a JSON array of strings, for `select` only
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (workspace_id, key),
    CHECK ((type = 'select') = (options IS NOT NULL))
) STRICT;

CREATE TABLE contacts (
    id                      TEXT PRIMARY KEY,        -- con_…
    workspace_id            TEXT NOT NULL REFERENCES workspaces (id),
    mode                    TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name                    TEXT NOT NULL,
    first_name              TEXT,
    last_name               TEXT,
    phone                   TEXT,                    -- E.164
    phone_input             TEXT,                    -- the phone as the client wrote it
    email                   TEXT,                    -- trimmed, lower-cased
    language                TEXT CHECK (language IN ('en', 'fr')),
    custom                  TEXT NOT NULL DEFAULT '{}',  -- a JSON object: field key → value
    phone_state             TEXT NOT NULL CHECK (phone_state IN
                                ('valid', 'invalid', 'unreachable')),
    email_state             TEXT NOT NULL CHECK (email_state IN
                                ('valid', 'invalid', 'bounced', 'complained')),
    sms_unsubscribed_at     TEXT,
    sms_unsubscribed_via    TEXT CHECK (sms_unsubscribed_via IN
                                ('link', 'one_click', 'sms_keyword', 'api', 'console', 'import')),
    email_unsubscribed_at   TEXT,
    email_unsubscribed_via  TEXT CHECK (email_unsubscribed_via IN
                                ('link', 'one_click', 'sms_keyword', 'api', 'console', 'import')),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    deleted_at              TEXT,
    CHECK (phone IS NOT NULL OR email IS NOT NULL),
    CHECK ((sms_unsubscribed_at IS NULL) = (sms_unsubscribed_via IS NULL)),
    CHECK ((email_unsubscribed_at IS NULL) = (email_unsubscribed_via IS NULL))
) STRICT;

-- One live contact per phone and per email in a workspace (and one test contact), among the
-- contacts not deleted.
CREATE UNIQUE INDEX contacts_by_phone ON contacts (workspace_id, mode, phone)
    WHERE phone IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX contacts_by_email ON contacts (workspace_id, mode, email)
    WHERE email IS NOT NULL AND deleted_at IS NULL;
-- Lists: a workspace's contacts of one mode, newest first (SQLite appends the rowid).
CREATE INDEX contacts_by_workspace ON contacts (workspace_id, mode);
