-- Workspaces, the people in them, console sessions, invitations and API keys (SPEC §3).
-- Secrets (session tokens, invitation tokens, API keys) are stored only as SHA-256 hashes.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,                  -- usr_…
    email             TEXT NOT NULL UNIQUE,              -- trimmed, lower-cased
    name              TEXT NOT NULL,
    password_hash     TEXT NOT NULL,                     -- pbkdf2-sha256$iterations$salt$hash
    is_instance_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_instance_admin IN (0, 1)),
    created_at        TEXT NOT NULL
) STRICT;

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,                         -- wsp_…
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX memberships_by_user ON memberships (user_id, created_at);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,                -- ses_… (never leaves the server)
    token_hash          BLOB NOT NULL UNIQUE,
    user_id             TEXT NOT NULL REFERENCES users (id),
    active_workspace_id TEXT REFERENCES workspaces (id),
    csrf_token          TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    last_seen_at        TEXT NOT NULL,
    expires_at          TEXT NOT NULL                    -- absolute expiry
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,                       -- inv_…
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash   BLOB NOT NULL UNIQUE,
    invited_by   TEXT NOT NULL REFERENCES users (id),
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    accepted_at  TEXT,
    revoked_at   TEXT
) STRICT;
CREATE INDEX invitations_by_workspace ON invitations (workspace_id, id);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,                     -- key_…
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    name           TEXT NOT NULL,
    key_hash       BLOB NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    mode           TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    scopes         TEXT NOT NULL,                        -- space-separated, sorted
    created_by     TEXT REFERENCES users (id),           -- NULL: created with the CLI
    created_at     TEXT NOT NULL,
    last_used_at   TEXT,
    expires_at     TEXT,
    revoked_at     TEXT,
    replaced_by    TEXT REFERENCES api_keys (id)
) STRICT;
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, id);
