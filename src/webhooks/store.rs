//! SQL of `webhook_endpoints` and `webhook_deliveries`.

use rusqlite::{Connection, OptionalExtension, Row, named_params, params};

use crate::error::AppError;
use crate::events::EventType;
use crate::ids::{WebhookDeliveryId, WebhookEndpointId, WorkspaceId};
use crate::vocabulary::Mode;

crate::text_enum! {
    /// Where a delivery stands: `pending` until a 2xx answer (`succeeded`) or three days of
    /// failed attempts (`failed`).
    pub enum DeliveryStatus {
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// A webhook endpoint as stored.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    pub id: WebhookEndpointId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<EventType>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<String>,
    pub consecutive_failures: u32,
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const ENDPOINT_COLUMNS: &str = "id, workspace_id, mode, url, description, events, enabled,
    disabled_reason, secret, previous_secret, previous_secret_expires_at, consecutive_failures,
    failing_since, created_at, updated_at";

fn endpoint_row(row: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    let events: String = row.get(5)?;
    let events: Vec<String> = serde_json::from_str(&events).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(err))
    })?;
    Ok(EndpointRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mode: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        // A type a later version wrote and this one does not know is left out.
        events: events
            .iter()
            .filter_map(|kind| EventType::parse(kind))
            .collect(),
        enabled: row.get(6)?,
        disabled_reason: row.get(7)?,
        secret: row.get(8)?,
        previous_secret: row.get(9)?,
        previous_secret_expires_at: row.get(10)?,
        consecutive_failures: row.get(11)?,
        failing_since: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

fn events_json(events: &[EventType]) -> String {
    let words: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    serde_json::Value::from(words).to_string()
}

pub fn insert_endpoint(conn: &Connection, endpoint: &EndpointRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?
    .execute(params![
        endpoint.id,
        endpoint.workspace_id,
        endpoint.mode,
        endpoint.url,
        endpoint.description,
        events_json(&endpoint.events),
        endpoint.enabled,
        endpoint.disabled_reason,
        endpoint.secret,
        endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
        endpoint.consecutive_failures,
        endpoint.failing_since,
        endpoint.created_at,
        endpoint.updated_at,
    ])?;
    Ok(())
}

/// Writes every column an owner or crier may change.
pub fn update_endpoint(conn: &Connection, endpoint: &EndpointRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE webhook_endpoints SET url = ?2, description = ?3, events = ?4, enabled = ?5,
                disabled_reason = ?6, secret = ?7, previous_secret = ?8,
                previous_secret_expires_at = ?9, consecutive_failures = ?10, failing_since = ?11,
                updated_at = ?12
          WHERE id = ?1",
    )?
    .execute(params![
        endpoint.id,
        endpoint.url,
        endpoint.description,
        events_json(&endpoint.events),
        endpoint.enabled,
        endpoint.disabled_reason,
        endpoint.secret,
        endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
        endpoint.consecutive_failures,
        endpoint.failing_since,
        endpoint.updated_at,
    ])?;
    Ok(())
}

pub fn find_endpoint(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &WebhookEndpointId,
) -> Result<Option<EndpointRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
              WHERE id = ?1 AND workspace_id = ?2 AND mode = ?3"
        ))?
        .query_row(params![id, workspace_id, mode], endpoint_row)
        .optional()?)
}

/// By id alone: the sender's own lookups of endpoints it already holds deliveries for.
pub fn find_endpoint_by_id(
    conn: &Connection,
    id: &WebhookEndpointId,
) -> Result<Option<EndpointRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?1"
        ))?
        .query_row(params![id], endpoint_row)
        .optional()?)
}

pub fn list_endpoints(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<EndpointRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
          WHERE workspace_id = :workspace_id AND mode = :mode
            AND (:before IS NULL OR id < :before)
          ORDER BY id DESC LIMIT :limit"
    ))?;
    let rows = statement.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":mode": mode,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        endpoint_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The enabled endpoints of a workspace and mode (those an event is delivered to).
pub fn enabled_endpoints(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
) -> Result<Vec<EndpointRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
          WHERE workspace_id = ?1 AND mode = ?2 AND enabled = 1"
    ))?;
    let rows = statement.query_map(params![workspace_id, mode], endpoint_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes an endpoint and its deliveries; `false` when there was none.
pub fn delete_endpoint(conn: &Connection, id: &WebhookEndpointId) -> Result<bool, AppError> {
    conn.prepare_cached("DELETE FROM webhook_deliveries WHERE endpoint_id = ?1")?
        .execute(params![id])?;
    Ok(conn
        .prepare_cached("DELETE FROM webhook_endpoints WHERE id = ?1")?
        .execute(params![id])?
        > 0)
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_attempt_at: Option<String>,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
    pub response_body: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, workspace_id, mode, event_id, event_type, status,
    attempts, next_attempt_at, last_attempt_at, response_status, error, latency_ms,
    response_body, created_at, updated_at";

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: row.get(0)?,
        endpoint_id: row.get(1)?,
        workspace_id: row.get(2)?,
        mode: row.get(3)?,
        event_id: row.get(4)?,
        event_type: row.get(5)?,
        status: row.get(6)?,
        attempts: row.get(7)?,
        next_attempt_at: row.get(8)?,
        last_attempt_at: row.get(9)?,
        response_status: row.get(10)?,
        error: row.get(11)?,
        latency_ms: row.get(12)?,
        response_body: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
    })
}

pub fn insert_delivery(conn: &Connection, delivery: &DeliveryRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        delivery.id,
        delivery.endpoint_id,
        delivery.workspace_id,
        delivery.mode,
        delivery.event_id,
        delivery.event_type,
        delivery.status,
        delivery.attempts,
        delivery.next_attempt_at,
        delivery.last_attempt_at,
        delivery.response_status,
        delivery.error,
        delivery.latency_ms,
        delivery.response_body,
        delivery.created_at,
        delivery.updated_at,
    ])?;
    Ok(())
}

pub fn find_delivery(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &WebhookDeliveryId,
) -> Result<Option<DeliveryRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
              WHERE id = ?1 AND workspace_id = ?2 AND mode = ?3"
        ))?
        .query_row(params![id, workspace_id, mode], delivery_row)
        .optional()?)
}

pub fn list_deliveries(
    conn: &Connection,
    endpoint_id: &WebhookEndpointId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
          WHERE endpoint_id = :endpoint_id AND (:before IS NULL OR id < :before)
          ORDER BY id DESC LIMIT :limit"
    ))?;
    let rows = statement.query_map(
        named_params! {
            ":endpoint_id": endpoint_id,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        delivery_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Pending deliveries of enabled endpoints due at `now`, oldest due first; each is pushed to
/// `lease_until`, so another round (or a restart after a crash) takes it again only then.
pub fn claim_due(
    conn: &Connection,
    now: &str,
    lease_until: &str,
    limit: usize,
) -> Result<Vec<DeliveryRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= ?1
            AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled = 1)
          ORDER BY next_attempt_at LIMIT ?2"
    ))?;
    let rows: Vec<DeliveryRow> = statement
        .query_map(
            params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
            delivery_row,
        )?
        .collect::<Result<_, _>>()?;
    let mut lease = conn.prepare_cached(
        "UPDATE webhook_deliveries SET next_attempt_at = ?2, leased_until = ?2 WHERE id = ?1",
    )?;
    for row in &rows {
        lease.execute(params![row.id, lease_until])?;
    }
    Ok(rows)
}

/// The outcome of one attempt.
pub struct AttemptOutcome<'a> {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: &'a str,
    pub response_status: Option<u16>,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
    pub response_body: Option<&'a str>,
    pub now: &'a str,
}

pub fn record_attempt(
    conn: &Connection,
    id: &WebhookDeliveryId,
    outcome: &AttemptOutcome<'_>,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4,
                leased_until = NULL, last_attempt_at = ?9, response_status = ?5, error = ?6, latency_ms = ?7,
                response_body = ?8, updated_at = ?9
          WHERE id = ?1",
    )?
    .execute(params![
        id,
        outcome.status,
        outcome.attempts,
        outcome.next_attempt_at,
        outcome.response_status,
        outcome.error,
        outcome.latency_ms,
        outcome.response_body,
        outcome.now,
    ])?;
    Ok(())
}

/// Makes a delivery pending and due at `now` (a retry asked for by its owner).
pub fn requeue(conn: &Connection, id: &WebhookDeliveryId, now: &str) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2, updated_at = ?2
          WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Makes every leased delivery due at `now`: at start, no attempt is in flight, so a lease
/// left is one a crash cut. Returns how many.
pub fn release_leases(conn: &Connection, now: &str) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?1, leased_until = NULL
              WHERE leased_until IS NOT NULL AND status = 'pending'",
        )?
        .execute(params![now])?)
}

/// Deletes deliveries created before `before` that are no longer pending, at most `limit`.
pub fn delete_settled_before(
    conn: &Connection,
    before: &str,
    limit: usize,
) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM webhook_deliveries WHERE id IN (
                SELECT id FROM webhook_deliveries
                 WHERE created_at < ?1 AND status <> 'pending' LIMIT ?2)",
        )?
        .execute(params![before, i64::try_from(limit).unwrap_or(i64::MAX)])?)
}
