-- Outgoing webhooks (docs/design/webhooks.md): endpoints a workspace registers per mode, the
-- events crier records for them (an outbox written in the same transaction as the change), and
-- one delivery per event and endpoint, retried until it succeeds or three days pass.

-- Where a workspace wants events, per mode (a test endpoint never hears live events).
CREATE TABLE webhook_endpoints (
    id                   TEXT PRIMARY KEY,                   -- whe_…
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id),
    mode                 TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    url                  TEXT NOT NULL,
    description          TEXT,
    events               TEXT NOT NULL,                      -- JSON array of event types
    enabled              INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    -- Why crier turned it off (it kept failing); NULL when enabled or turned off by its owner.
    disabled_reason      TEXT,
    -- The signing secret: needed in clear to sign each delivery.
    secret               TEXT NOT NULL,
    -- After a rotation the old secret also signs until it expires (a second v1= in the header).
    previous_secret      TEXT,
    previous_secret_expires_at TEXT,
    -- Attempts in a row that failed, and since when (reset by a success).
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace_id, mode);

-- The outbox of events. A row is written by the change it reports (the triggers below, or
-- `events::record`), with no id and no body; the webhook runner then gives it its `evt_…` id,
-- its body (the object as the API shows it) and one delivery per endpoint that wants it, in one
-- transaction (`prepared_at` set).
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT UNIQUE,                                -- evt_…, once prepared
    workspace_id TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    type         TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    -- The whole event as delivered, once prepared (a test event is written prepared).
    payload      TEXT,
    prepared_at  TEXT,
    CHECK ((id IS NULL) = (prepared_at IS NULL))
) STRICT;
CREATE INDEX events_unprepared ON events (seq) WHERE prepared_at IS NULL;
CREATE INDEX events_by_created ON events (created_at);

-- One event to one endpoint: pending until a 2xx answer (succeeded) or three days of retries
-- (failed). The last attempt's outcome is kept for the delivery log.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,                       -- whd_…
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    workspace_id     TEXT NOT NULL,
    mode             TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- When the sender may next take it (a claim pushes it past the attempt's timeout).
    next_attempt_at  TEXT NOT NULL,
    -- Set while an attempt is in flight. One process owns the database, so at start every
    -- delivery still leased was cut by a crash: it is due again at once.
    leased_until     TEXT,
    last_attempt_at  TEXT,
    response_status  INTEGER,                                -- the last HTTP status, if any
    error            TEXT,                                   -- the last failure, in words
    latency_ms       INTEGER,
    response_body    TEXT,                                   -- the first bytes of the last answer
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id);
CREATE INDEX webhook_deliveries_by_created ON webhook_deliveries (created_at);

-- The changes that are events, recorded in the transaction that makes them, whichever code path
-- makes them. Only while the workspace has an endpoint in that mode: nobody would hear them.
CREATE TRIGGER events_message_status
AFTER UPDATE OF status ON messages
WHEN NEW.status <> OLD.status AND NEW.status IN ('sent', 'delivered', 'failed', 'cancelled')
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = NEW.mode)
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, NEW.mode, 'message.' || NEW.status, NEW.id, NEW.updated_at);
END;

CREATE TRIGGER events_message_created_settled
AFTER INSERT ON messages
WHEN NEW.status IN ('sent', 'delivered', 'failed', 'cancelled')
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = NEW.mode)
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, NEW.mode, 'message.' || NEW.status, NEW.id, NEW.updated_at);
END;

CREATE TRIGGER events_campaign_status
AFTER UPDATE OF status ON campaigns
WHEN NEW.status <> OLD.status
 AND (NEW.status IN ('completed', 'partial', 'failed')
      OR (NEW.status = 'running' AND OLD.status IN ('draft', 'scheduled')))
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = NEW.mode)
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, NEW.mode,
            CASE NEW.status WHEN 'running' THEN 'campaign.launched'
                            WHEN 'failed' THEN 'campaign.failed'
                            ELSE 'campaign.completed' END,
            NEW.id, NEW.updated_at);
END;

-- Payments are live only.
CREATE TRIGGER events_payment_status
AFTER UPDATE OF status ON payment_sessions
WHEN NEW.status <> OLD.status AND NEW.status IN ('succeeded', 'failed', 'refunded')
 AND EXISTS (SELECT 1 FROM webhook_endpoints
             WHERE workspace_id = NEW.workspace_id AND mode = 'live')
BEGIN
    INSERT INTO events (workspace_id, mode, type, object_id, created_at)
    VALUES (NEW.workspace_id, 'live', 'payment.' || NEW.status, NEW.id, NEW.updated_at);
END;
