//! SQL of the `events` table.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::AppError;
use crate::ids::WorkspaceId;
use crate::vocabulary::Mode;

use super::{EventType, NewEvent};

/// An event recorded and not prepared yet.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub seq: i64,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    /// `None` for a type this version does not know (left unprepared is worse: it is prepared
    /// with no deliveries).
    pub event_type: Option<EventType>,
    pub object_id: String,
    pub created_at: String,
}

pub fn insert_unprepared(conn: &Connection, event: &NewEvent<'_>) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO events (workspace_id, mode, type, object_id, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5
          WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE workspace_id = ?1 AND mode = ?2)",
    )?
    .execute(params![
        event.workspace_id,
        event.mode,
        event.event_type,
        event.object_id,
        event.created_at
    ])?;
    Ok(())
}

pub fn insert_prepared(
    conn: &Connection,
    event: &NewEvent<'_>,
    id: &str,
    payload: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO events (id, workspace_id, mode, type, object_id, created_at, payload,
                             prepared_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
    )?
    .execute(params![
        id,
        event.workspace_id,
        event.mode,
        event.event_type,
        event.object_id,
        event.created_at,
        payload
    ])?;
    Ok(())
}

pub fn list_unprepared(conn: &Connection, limit: usize) -> Result<Vec<EventRow>, AppError> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, workspace_id, mode, type, object_id, created_at FROM events
          WHERE prepared_at IS NULL ORDER BY seq LIMIT ?1",
    )?;
    let rows = statement
        .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            let kind: String = row.get(3)?;
            Ok(EventRow {
                seq: row.get(0)?,
                workspace_id: row.get(1)?,
                mode: row.get(2)?,
                event_type: EventType::parse(&kind),
                object_id: row.get(4)?,
                created_at: row.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn mark_prepared(
    conn: &Connection,
    seq: i64,
    id: &str,
    payload: &str,
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE events SET id = ?2, payload = ?3, prepared_at = ?4
          WHERE seq = ?1 AND prepared_at IS NULL",
    )?
    .execute(params![seq, id, payload, now])?;
    Ok(())
}

pub fn find_payload(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<Option<String>, AppError> {
    Ok(conn
        .prepare_cached("SELECT payload FROM events WHERE id = ?1 AND workspace_id = ?2")?
        .query_row(params![id, workspace_id], |row| row.get(0))
        .optional()?
        .flatten())
}

pub fn delete_prepared_before(
    conn: &Connection,
    before: &str,
    limit: usize,
) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM events WHERE seq IN (
                SELECT seq FROM events
                 WHERE created_at < ?1 AND prepared_at IS NOT NULL LIMIT ?2)",
        )?
        .execute(params![before, i64::try_from(limit).unwrap_or(i64::MAX)])?)
}
