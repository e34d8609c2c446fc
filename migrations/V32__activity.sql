-- The activity log (docs/API.md, "Activity"): who did what, written in the same transaction as
-- the change it records. One row per action: the actor (a user, an API key, the operator's
-- `crier admin` command, or nobody signed in for a failed sign-in), the action from a fixed
-- vocabulary, its target, the workspace and mode it happened in, the client IP and the request
-- id. `details` is a small JSON object with redacted values only (phone numbers to their last
-- digits, emails masked; never a secret or a message body). Rows are never updated; the janitor
-- deletes those older than `--activity-retention-days`.
CREATE TABLE activity (
    id            TEXT PRIMARY KEY,                      -- act_…, time ordered
    workspace_id  TEXT,                                  -- NULL: not a workspace's (a failed sign-in)
    mode          TEXT CHECK (mode IN ('live', 'test')), -- NULL: the same in both worlds
    actor_type    TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'operator', 'anonymous')),
    actor_id      TEXT,                                  -- usr_… or key_…; NULL for the others
    action        TEXT NOT NULL,
    target_id     TEXT,
    details       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    ip            TEXT,
    request_id    TEXT,
    created_at    TEXT NOT NULL,
    CHECK ((actor_type IN ('user', 'api_key')) = (actor_id IS NOT NULL))
) STRICT;

CREATE INDEX activity_by_workspace ON activity (workspace_id, id);
CREATE INDEX activity_by_time ON activity (created_at);
