//! SQL for users and console sessions.

use rusqlite::{Connection, OptionalExtension, named_params};

use crate::error::AppError;

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_instance_admin: bool,
    pub created_at: String,
}

const USER_COLUMNS: &str = "id, email, name, password_hash, is_instance_admin, created_at";

/// Reads a user from the first six columns of `row`, in `USER_COLUMNS` order.
pub fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        password_hash: row.get(3)?,
        is_instance_admin: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// Inserts a user; a taken email is a 409 `conflict`.
pub fn insert_user(conn: &Connection, user: &User) -> Result<(), AppError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (id, email, name, password_hash, is_instance_admin, created_at)
             VALUES (:id, :email, :name, :password_hash, :is_instance_admin, :created_at)
             ON CONFLICT (email) DO NOTHING",
        )?
        .execute(named_params! {
            ":id": user.id, ":email": user.email, ":name": user.name,
            ":password_hash": user.password_hash, ":is_instance_admin": user.is_instance_admin,
            ":created_at": user.created_at,
        })?;
    if inserted == 0 {
        return Err(AppError::Conflict(
            "A user with this email already exists.".to_owned(),
        ));
    }
    Ok(())
}

pub fn set_password_hash(
    conn: &Connection,
    user_id: &str,
    password_hash: &str,
) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
        .execute([user_id, password_hash])?;
    Ok(())
}

pub fn any_user_exists(conn: &Connection) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")?
        .query_row([], |row| row.get(0))?)
}

pub fn find_user(conn: &Connection, id: &str) -> Result<Option<User>, AppError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], user_from_row)
        .optional()?)
}

pub fn find_user_by_email(conn: &Connection, email: &str) -> Result<Option<User>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
        ))?
        .query_row([email], user_from_row)
        .optional()?)
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub active_workspace_id: Option<String>,
    pub csrf_token: String,
    pub last_seen_at: String,
    pub expires_at: String,
}

pub fn insert_session(
    conn: &Connection,
    session: &SessionRow,
    token_hash: &[u8],
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, token_hash, user_id, active_workspace_id, csrf_token,
                               created_at, last_seen_at, expires_at)
         VALUES (:id, :token_hash, :user_id, :workspace, :csrf, :now, :now, :expires_at)",
    )?
    .execute(named_params! {
        ":id": session.id, ":token_hash": token_hash, ":user_id": session.user_id,
        ":workspace": session.active_workspace_id, ":csrf": session.csrf_token, ":now": now,
        ":expires_at": session.expires_at,
    })?;
    Ok(())
}

pub fn find_session(conn: &Connection, token_hash: &[u8]) -> Result<Option<SessionRow>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, user_id, active_workspace_id, csrf_token, last_seen_at, expires_at
             FROM sessions WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |row| {
            Ok(SessionRow {
                id: row.get(0)?,
                user_id: row.get(1)?,
                active_workspace_id: row.get(2)?,
                csrf_token: row.get(3)?,
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
    workspace_id: Option<&str>,
) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE sessions SET active_workspace_id = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![session_id, workspace_id])?;
    Ok(())
}

/// Sessions whose active workspace is `workspace_id` lose it when `user_id` leaves it.
pub fn clear_active_workspace_for(
    conn: &Connection,
    user_id: &str,
    workspace_id: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE sessions SET active_workspace_id = NULL
         WHERE user_id = ?1 AND active_workspace_id = ?2",
    )?
    .execute([user_id, workspace_id])?;
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
