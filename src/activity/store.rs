//! SQL for the activity log (`activity`, V32). Rows are inserted and deleted, never updated.

use rusqlite::{Connection, named_params};

use super::{Action, ActorType, Filter};
use crate::error::AppError;
use crate::ids::WorkspaceId;
use crate::vocabulary::Mode;

/// An entry as stored.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub workspace_id: Option<WorkspaceId>,
    pub mode: Option<Mode>,
    pub actor_type: ActorType,
    pub actor_id: Option<String>,
    pub action: Action,
    pub target_id: Option<String>,
    /// A JSON object.
    pub details: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub created_at: String,
}

pub(super) struct NewEntry<'a> {
    pub id: String,
    pub workspace_id: Option<&'a WorkspaceId>,
    pub mode: Option<Mode>,
    pub actor_type: ActorType,
    pub actor_id: Option<&'a str>,
    pub action: Action,
    pub target_id: Option<&'a str>,
    pub details: &'a str,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub created_at: &'a str,
}

pub(super) fn insert(conn: &Connection, entry: &NewEntry<'_>) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO activity (id, workspace_id, mode, actor_type, actor_id, action, target_id,
                               details, ip, request_id, created_at)
         VALUES (:id, :workspace_id, :mode, :actor_type, :actor_id, :action, :target_id,
                 :details, :ip, :request_id, :created_at)",
    )?
    .execute(named_params! {
        ":id": entry.id, ":workspace_id": entry.workspace_id, ":mode": entry.mode,
        ":actor_type": entry.actor_type, ":actor_id": entry.actor_id, ":action": entry.action,
        ":target_id": entry.target_id, ":details": entry.details, ":ip": entry.ip,
        ":request_id": entry.request_id, ":created_at": entry.created_at,
    })?;
    Ok(())
}

/// Newest first. `workspace_id` narrows to one workspace; `mode` to that world and entries of
/// both (NULL mode).
pub(super) fn list(
    conn: &Connection,
    workspace_id: Option<&WorkspaceId>,
    mode: Option<Mode>,
    filter: &Filter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<Entry>, AppError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(
        "SELECT id, workspace_id, mode, actor_type, actor_id, action, target_id, details, ip,
                request_id, created_at
           FROM activity
          WHERE (:workspace_id IS NULL OR workspace_id = :workspace_id)
            AND (:mode IS NULL OR mode IS NULL OR mode = :mode)
            AND (:actor_type IS NULL OR actor_type = :actor_type)
            AND (:actor_id IS NULL OR actor_id = :actor_id)
            AND (:action IS NULL OR action = :action)
            AND (:target_id IS NULL OR target_id = :target_id)
            AND (:since IS NULL OR created_at >= :since)
            AND (:until IS NULL OR created_at < :until)
            AND (:cursor IS NULL OR id < :cursor)
          ORDER BY id DESC
          LIMIT :limit",
    )?;
    let rows = statement.query_map(
        named_params! {
            ":workspace_id": workspace_id, ":mode": mode, ":actor_type": filter.actor_type,
            ":actor_id": filter.actor_id, ":action": filter.action,
            ":target_id": filter.target_id, ":since": filter.since, ":until": filter.until,
            ":cursor": cursor, ":limit": limit,
        },
        |row| {
            Ok(Entry {
                id: row.get(0)?,
                workspace_id: row.get(1)?,
                mode: row.get(2)?,
                actor_type: row.get(3)?,
                actor_id: row.get(4)?,
                action: row.get(5)?,
                target_id: row.get(6)?,
                details: row.get(7)?,
                ip: row.get(8)?,
                request_id: row.get(9)?,
                created_at: row.get(10)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn delete_older_than(
    conn: &Connection,
    cutoff: &str,
    limit: usize,
) -> Result<usize, AppError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let deleted = conn
        .prepare_cached(
            "DELETE FROM activity WHERE id IN
               (SELECT id FROM activity WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
        )?
        .execute(rusqlite::params![cutoff, limit])?;
    Ok(deleted)
}
