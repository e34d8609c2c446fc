//! SQL for console sessions and the login-failure counters (`rate_limit`).

use rusqlite::{Connection, OptionalExtension, named_params};

use crate::error::AppError;
use crate::ids::{UserId, WorkspaceId};
use crate::vocabulary::Mode;

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: UserId,
    pub active_workspace_id: Option<WorkspaceId>,
    /// The world the session looks at (docs/rules/access.md, "Test and live").
    pub mode: Mode,
    pub last_seen_at: String,
    pub expires_at: String,
}

/// The `csrf_token` column is a relic: CSRF tokens are derived from the session token
/// (`auth::csrf_token_of`), never stored, so a new session writes '' there; sessions opened
/// before that hold a token nothing accepts any longer.
pub fn insert_session(
    conn: &Connection,
    session: &SessionRow,
    token_hash: &[u8],
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, token_hash, user_id, active_workspace_id, csrf_token,
                               mode, created_at, last_seen_at, expires_at)
         VALUES (:id, :token_hash, :user_id, :workspace, '', :mode, :now, :now, :expires_at)",
    )?
    .execute(named_params! {
        ":id": session.id, ":token_hash": token_hash, ":user_id": session.user_id,
        ":workspace": session.active_workspace_id, ":mode": session.mode, ":now": now,
        ":expires_at": session.expires_at,
    })?;
    Ok(())
}

pub fn find_session(conn: &Connection, token_hash: &[u8]) -> Result<Option<SessionRow>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id, active_workspace_id, mode, last_seen_at, expires_at
             FROM sessions WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |row| {
            Ok(SessionRow {
                id: row.get(0)?,
                user_id: row.get(1)?,
                active_workspace_id: row.get(2)?,
                mode: row.get(3)?,
                last_seen_at: row.get(4)?,
                expires_at: row.get(5)?,
            })
        })
        .optional()?)
}

/// Records use of a session unless it was recorded since `stale_before` (concurrent requests
/// all asking for the touch write it once).
pub fn touch_session(
    conn: &Connection,
    session_id: &str,
    now: &str,
    stale_before: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at <= ?3",
    )?
    .execute([session_id, now, stale_before])?;
    Ok(())
}

pub fn set_active_workspace(
    conn: &Connection,
    session_id: &str,
    workspace_id: Option<&WorkspaceId>,
) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE sessions SET active_workspace_id = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![session_id, workspace_id])?;
    Ok(())
}

/// Switches the session to the `mode` world.
pub fn set_mode(conn: &Connection, session_id: &str, mode: Mode) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE sessions SET mode = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![session_id, mode])?;
    Ok(())
}

/// Sessions whose active workspace is `workspace_id` lose it when `user_id` leaves it.
pub fn clear_active_workspace_for(
    conn: &Connection,
    user_id: &UserId,
    workspace_id: &WorkspaceId,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE sessions SET active_workspace_id = NULL
         WHERE user_id = ?1 AND active_workspace_id = ?2",
    )?
    .execute(rusqlite::params![user_id, workspace_id])?;
    Ok(())
}

pub fn delete_session(conn: &Connection, session_id: &str) -> Result<(), AppError> {
    conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?
        .execute([session_id])?;
    Ok(())
}

/// Deletes up to `limit` sessions that ended (past their lifetime, or idle since `idle_before`).
pub fn delete_ended_sessions(
    conn: &Connection,
    now: &str,
    idle_before: &str,
    limit: usize,
) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM sessions WHERE rowid IN
                 (SELECT rowid FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2 LIMIT ?3)",
        )?
        .execute(rusqlite::params![now, idle_before, limit as i64])?)
}

/// One row of `login_failures`: a counter of failed logins for an (account, IP) pair (`email`
/// set) or for an IP across accounts (`email` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailureRow {
    pub ip_block: String,
    pub email: String,
    pub failures: u32,
    pub first_failed_at: String,
    pub last_failed_at: String,
    pub expires_at: String,
}

/// Counts one failure: inserts the counter, or adds one to it — starting over when it had
/// expired. `expires_at` is the new expiry of a fresh counter; an (account, IP) counter always
/// takes it (it is remembered from its last failure), an IP counter keeps its window's.
pub fn count_login_failure(
    conn: &Connection,
    ip_block: &str,
    email: &str,
    now: &str,
    expires_at: &str,
) -> Result<(), AppError> {
    let kind = if email.is_empty() { "ip" } else { "account" };
    conn.prepare_cached(
        "INSERT INTO login_failures
             (kind, ip_block, email, failures, first_failed_at, last_failed_at, expires_at)
         VALUES (:kind, :ip_block, :email, 1, :now, :now, :expires_at)
         ON CONFLICT (kind, ip_block, email) DO UPDATE SET
             failures = CASE WHEN expires_at <= :now THEN 1 ELSE failures + 1 END,
             first_failed_at = CASE WHEN expires_at <= :now THEN :now ELSE first_failed_at END,
             last_failed_at = max(last_failed_at, :now),
             expires_at = CASE WHEN expires_at <= :now OR kind = 'account'
                               THEN max(expires_at, :expires_at) ELSE expires_at END",
    )?
    .execute(named_params! {
        ":kind": kind, ":ip_block": ip_block, ":email": email, ":now": now,
        ":expires_at": expires_at,
    })?;
    Ok(())
}

/// A successful login clears its (account, IP) counter.
pub fn clear_login_failures(
    conn: &Connection,
    ip_block: &str,
    email: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "DELETE FROM login_failures WHERE kind = 'account' AND ip_block = ?1 AND email = ?2",
    )?
    .execute([ip_block, email])?;
    Ok(())
}

/// Every counter not yet expired at `now`, to start the limiter with after a restart.
pub fn live_login_failures(conn: &Connection, now: &str) -> Result<Vec<LoginFailureRow>, AppError> {
    let mut statement = conn.prepare_cached(
        "SELECT ip_block, email, failures, first_failed_at, last_failed_at, expires_at
         FROM login_failures WHERE expires_at > ?1",
    )?;
    let rows = statement.query_map([now], |row| {
        Ok(LoginFailureRow {
            ip_block: row.get(0)?,
            email: row.get(1)?,
            failures: row.get(2)?,
            first_failed_at: row.get(3)?,
            last_failed_at: row.get(4)?,
            expires_at: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes up to `limit` counters expired at `now`; returns how many. For the janitor.
pub fn delete_expired_login_failures(
    conn: &Connection,
    now: &str,
    limit: usize,
) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM login_failures WHERE (kind, ip_block, email) IN
                 (SELECT kind, ip_block, email FROM login_failures WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(rusqlite::params![now, limit as i64])?)
}
