-- Idempotency records (SPEC §4): one per (workspace, API key or user, Idempotency-Key).
CREATE TABLE idempotency_records (
    workspace_id     TEXT NOT NULL,               -- '' when the caller has no workspace
    actor_id         TEXT NOT NULL,               -- the API key id or the user id
    key              TEXT NOT NULL,
    fingerprint      BLOB NOT NULL,               -- SHA-256 of method, path, canonical body
    state            TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    status           INTEGER,                     -- completed: the stored response
    content_type     TEXT,
    body             BLOB,
    lease_token      TEXT,                        -- in flight: who holds the lease, until when
    lease_expires_at TEXT,
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,               -- created_at + retention: swept after
    PRIMARY KEY (workspace_id, actor_id, key),
    CHECK (state = 'in_flight' OR (status IS NOT NULL AND body IS NOT NULL))
) STRICT;
CREATE INDEX idempotency_records_by_expiry ON idempotency_records (expires_at);
