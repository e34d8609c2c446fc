//! SQL for users.

use rusqlite::{Connection, OptionalExtension, named_params};

use crate::error::AppError;
use crate::ids::UserId;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
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
    user_id: &UserId,
    password_hash: &str,
) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![user_id, password_hash])?;
    Ok(())
}

pub fn any_user_exists(conn: &Connection) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")?
        .query_row([], |row| row.get(0))?)
}

pub fn find_user(conn: &Connection, id: &UserId) -> Result<Option<User>, AppError> {
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
