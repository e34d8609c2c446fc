-- Login throttling (docs/rules/access.md, "Login throttling"): failed logins are counted per
-- (account, client IP) and per client IP across accounts, never per account alone. The counters
-- are kept here so that a restart does not hand an attacker fresh allowances; one small upsert
-- per failure, the row of an (account, IP) pair deleted by its next successful login, and every
-- row deleted by the janitor once `expires_at` has passed.
CREATE TABLE login_failures (
    kind             TEXT NOT NULL CHECK (kind IN ('account', 'ip')),
    ip_block         TEXT NOT NULL,          -- the client IP; an IPv6 client's /64
    email            TEXT NOT NULL,          -- as typed (trimmed, lower-cased); '' for kind 'ip'
    failures         INTEGER NOT NULL CHECK (failures > 0),
    first_failed_at  TEXT NOT NULL,          -- for kind 'ip': when its 15-minute window began
    last_failed_at   TEXT NOT NULL,
    expires_at       TEXT NOT NULL,          -- forgotten from then on
    PRIMARY KEY (kind, ip_block, email),
    CHECK ((kind = 'ip') = (email = ''))
) STRICT, WITHOUT ROWID;

CREATE INDEX login_failures_by_expiry ON login_failures (expires_at);
