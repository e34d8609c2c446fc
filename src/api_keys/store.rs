//! SQL for API keys. Only the key's SHA-256 is stored; lookups are by that hash.

use rusqlite::{Connection, OptionalExtension, named_params};
use std::sync::LazyLock;

use crate::api_keys::format::Scope;
use crate::error::AppError;
use crate::ids::{ApiKeyId, UserId, WorkspaceId};
use crate::vocabulary::Mode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub display_prefix: String,
    pub mode: Mode,
    pub scopes: Vec<Scope>,
    pub created_by: Option<UserId>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub replaced_by: Option<ApiKeyId>,
}

const COLUMNS: &str =
    "id, workspace_id, name, display_prefix, mode, scopes, created_by, created_at,
                       last_used_at, expires_at, revoked_at, replaced_by";

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let mode: String = row.get(4)?;
    let scopes: String = row.get(5)?;
    Ok(ApiKey {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        name: row.get(2)?,
        display_prefix: row.get(3)?,
        mode: Mode::parse(&mode).unwrap_or(Mode::Test),
        scopes: scopes.split_whitespace().filter_map(Scope::parse).collect(),
        created_by: row.get(6)?,
        created_at: row.get(7)?,
        last_used_at: row.get(8)?,
        expires_at: row.get(9)?,
        revoked_at: row.get(10)?,
        replaced_by: row.get(11)?,
    })
}

pub fn insert_key(conn: &Connection, key: &ApiKey, key_hash: &[u8]) -> Result<(), AppError> {
    let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
    conn.prepare_cached(
        "INSERT INTO api_keys (id, workspace_id, name, key_hash, display_prefix, mode, scopes,
                               created_by, created_at, expires_at)
         VALUES (:id, :workspace_id, :name, :key_hash, :display_prefix, :mode, :scopes,
                 :created_by, :created_at, :expires_at)",
    )?
    .execute(named_params! {
        ":id": key.id, ":workspace_id": key.workspace_id, ":name": key.name,
        ":key_hash": key_hash, ":display_prefix": key.display_prefix, ":mode": key.mode.as_str(),
        ":scopes": scopes.join(" "), ":created_by": key.created_by,
        ":created_at": key.created_at, ":expires_at": key.expires_at,
    })?;
    Ok(())
}

pub fn find_key_by_hash(conn: &Connection, key_hash: &[u8]) -> Result<Option<ApiKey>, AppError> {
    // Built once: every authenticated request runs it, and formatting the text anew (only to
    // find the prepared statement by it) was ~2 % of a send's CPU.
    static SELECT: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = ?1"));
    Ok(conn
        .prepare_cached(&SELECT)?
        .query_row([key_hash], key_from_row)
        .optional()?)
}

/// A key of `workspace_id`; a key of another workspace is as absent as a missing one.
pub fn find_key(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE workspace_id = ?1 AND id = ?2"
        ))?
        .query_row(rusqlite::params![workspace_id, id], key_from_row)
        .optional()?)
}

/// Newest first (creation order, exact even within one millisecond); `before` is the id of the
/// last key of the previous page.
pub fn list_keys(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<ApiKey>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_keys
         WHERE workspace_id = :workspace_id
           AND (:before IS NULL OR rowid < (SELECT rowid FROM api_keys WHERE id = :before))
         ORDER BY rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":before": before, ":limit": limit as i64 },
        key_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a key and the key it replaced (still in its rotation grace period): revoking a
/// replacement usually means the secret leaked, and the predecessor is the same credential.
pub fn revoke_key(conn: &Connection, id: &ApiKeyId, now: &str) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at = ?2
         WHERE (id = ?1 OR replaced_by = ?1) AND revoked_at IS NULL",
    )?
    .execute(rusqlite::params![id, now])?;
    Ok(())
}

pub fn retire_key(
    conn: &Connection,
    id: &ApiKeyId,
    expires_at: &str,
    replaced_by: &ApiKeyId,
) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE api_keys SET expires_at = ?2, replaced_by = ?3 WHERE id = ?1")?
        .execute(rusqlite::params![id, expires_at, replaced_by])?;
    Ok(())
}

/// Records use of a key unless it was recorded since `stale_before`.
pub fn touch_key(
    conn: &Connection,
    id: &ApiKeyId,
    now: &str,
    stale_before: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE api_keys SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
    )?
    .execute(rusqlite::params![id, now, stale_before])?;
    Ok(())
}
