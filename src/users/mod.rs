//! Users: the people who sign in to the console. Owns the `users` table and password hashing;
//! sessions and sign-in are `auth`'s, memberships `workspaces`'.

pub mod password;
pub mod store;

use rusqlite::Connection;

use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{Ids, UserId};
pub use store::User;

/// A user to create, with the password already hashed.
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

/// Creates a user; the first user of the instance is always an instance admin.
pub fn create_user(
    conn: &Connection,
    ids: &Ids,
    new_user: NewUser,
    instance_admin: bool,
    now: Timestamp,
) -> Result<User, AppError> {
    let first = !store::any_user_exists(conn)?;
    let user = User {
        id: UserId::generate(ids),
        email: new_user.email,
        name: new_user.name,
        password_hash: new_user.password_hash,
        is_instance_admin: instance_admin || first,
        created_at: format_timestamp(now),
    };
    store::insert_user(conn, &user)?;
    Ok(user)
}

/// The user with this id, if any.
pub fn find(conn: &Connection, id: &UserId) -> Result<Option<User>, AppError> {
    store::find_user(conn, id)
}

/// The user with this (normalised) email, if any.
pub fn find_by_email(conn: &Connection, email: &str) -> Result<Option<User>, AppError> {
    store::find_user_by_email(conn, email)
}

/// Whether the instance has any user yet (first-run setup is open until it does).
pub fn any_exist(conn: &Connection) -> Result<bool, AppError> {
    store::any_user_exists(conn)
}
