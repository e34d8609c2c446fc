//! Authentication: who is calling, console users and their sessions, first-run setup.
//!
//! `authenticate` turns presented credentials into a `Principal`; it is the only way to get one.
//! Domain functions here take a `&Connection` inside the caller's transaction and plain values;
//! password hashing (slow on purpose) is done by the caller before the transaction opens.

pub mod buckets;
pub mod principal;
pub mod rate_limit;
pub mod store;

use crate::ids::WorkspaceId;
use chrono::Duration;
use rusqlite::Connection;

use crate::api_keys::format::PresentedKey;
use crate::auth::principal::{KeyPrincipal, Principal, SessionPrincipal};
use crate::auth::store::SessionRow;
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{ApiKeyId, Ids, UserId};
use crate::scope::WorkspaceScope;
use crate::secrets;
use crate::users::{NewUser, User, create_user};
use crate::vocabulary::Mode;
use crate::workspaces::store::Workspace;
use crate::workspaces::{Role, create_workspace};

/// A session ends after this long without a request…
pub fn session_idle_timeout() -> Duration {
    Duration::hours(24)
}

/// …and in any case this long after login.
pub fn session_lifetime() -> Duration {
    Duration::days(30)
}

/// `last_used_at` / `last_seen_at` are written at most this often per key or session.
fn touch_interval() -> Duration {
    Duration::minutes(1)
}

/// What the client presented.
pub enum Credentials {
    ApiKey(PresentedKey),
    SessionToken(String),
}

/// A write that authentication wants done (outside its read transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    Nothing,
    ApiKey(ApiKeyId),
    Session(String),
}

/// Resolves credentials to a principal. Keys: unknown → `invalid_api_key`, revoked →
/// `api_key_revoked`, past `expires_at` → `api_key_expired`. Sessions: unknown, idle too long or
/// past their lifetime → `unauthenticated`. Read-only; the returned `Touch` says whether
/// `last_used_at`/`last_seen_at` is due.
pub fn authenticate(
    conn: &Connection,
    credentials: &Credentials,
    now: Timestamp,
) -> Result<(Principal, Touch), AppError> {
    let now_text = format_timestamp(now);
    let stale_before = format_timestamp(now - touch_interval());
    match credentials {
        Credentials::ApiKey(presented) => {
            let key =
                crate::api_keys::find_presented(conn, presented)?.ok_or(AppError::InvalidApiKey)?;
            if key.revoked_at.is_some() {
                return Err(AppError::ApiKeyRevoked);
            }
            if key.expires_at.as_ref().is_some_and(|at| *at <= now_text) {
                return Err(AppError::ApiKeyExpired);
            }
            let touch = match &key.last_used_at {
                Some(at) if *at > stale_before => Touch::Nothing,
                _ => Touch::ApiKey(key.id.clone()),
            };
            let principal = Principal::ApiKey(KeyPrincipal {
                key_id: key.id,
                workspace_id: key.workspace_id,
                scopes: key.scopes,
                mode: key.mode,
            });
            Ok((principal, touch))
        }
        Credentials::SessionToken(token) => {
            let session = store::find_session(conn, &secrets::token_hash(token))?
                .ok_or(AppError::Unauthenticated)?;
            let idle_since = format_timestamp(now - session_idle_timeout());
            if session.expires_at <= now_text || session.last_seen_at <= idle_since {
                return Err(AppError::Unauthenticated);
            }
            let user =
                crate::users::find(conn, &session.user_id)?.ok_or(AppError::Unauthenticated)?;
            let workspace = match &session.active_workspace_id {
                Some(id) => {
                    crate::workspaces::role_of(conn, id, &user.id)?.map(|role| (id.clone(), role))
                }
                None => None,
            };
            let touch = if session.last_seen_at <= stale_before {
                Touch::Session(session.id.clone())
            } else {
                Touch::Nothing
            };
            let principal = Principal::Session(SessionPrincipal {
                session_id: session.id,
                user_id: user.id,
                is_instance_admin: user.is_instance_admin,
                csrf_token: csrf_token_of(token),
                mode: session.mode,
                workspace,
            });
            Ok((principal, touch))
        }
    }
}

/// Records the use `authenticate` asked for.
pub fn apply_touch(conn: &Connection, touch: &Touch, now: Timestamp) -> Result<(), AppError> {
    let stale_before = format_timestamp(now - touch_interval());
    let now = format_timestamp(now);
    match touch {
        Touch::Nothing => Ok(()),
        Touch::ApiKey(id) => crate::api_keys::record_use(conn, id, &now, &stale_before),
        Touch::Session(id) => store::touch_session(conn, id, &now, &stale_before),
    }
}

/// Sessions deleted per janitor transaction, so a sweep never holds the write lock for long.
const SWEEP_BATCH: usize = 500;

/// Deletes ended sessions, a batch per transaction; returns how many. For the janitor.
pub fn sweep_ended_sessions(db: &crate::db::Db, now: Timestamp) -> Result<usize, AppError> {
    let idle_before = format_timestamp(now - session_idle_timeout());
    let now = format_timestamp(now);
    crate::db::sweep_in_batches(db, SWEEP_BATCH, |conn, limit| {
        store::delete_ended_sessions(conn, &now, &idle_before, limit)
    })
}

/// The purpose a session's CSRF token is derived for (see `csrf_token_of`).
const CSRF_PURPOSE: &str = "crier session csrf v1";

/// The CSRF token of the session whose cookie holds `session_token`: derived from it by HMAC,
/// so it is never stored (the database keeps only the session token's SHA-256, from which it
/// cannot be computed) and stays the same for the session's whole life.
pub fn csrf_token_of(session_token: &str) -> String {
    secrets::derived_token(session_token, CSRF_PURPOSE)
}

/// A newly opened session: the token goes into the cookie, never into the database.
pub struct OpenedSession {
    pub token: String,
    pub csrf_token: String,
}

/// Opens a session for `user_id` with `active_workspace_id` active.
pub fn open_session(
    conn: &Connection,
    ids: &Ids,
    user_id: &UserId,
    active_workspace_id: Option<&WorkspaceId>,
    now: Timestamp,
) -> Result<OpenedSession, AppError> {
    let token = secrets::new_token(ids);
    let csrf_token = csrf_token_of(&token);
    let session = SessionRow {
        id: ids.new_id("ses"),
        user_id: user_id.clone(),
        active_workspace_id: active_workspace_id.cloned(),
        mode: Mode::Live,
        last_seen_at: format_timestamp(now),
        expires_at: format_timestamp(now + session_lifetime()),
    };
    store::insert_session(
        conn,
        &session,
        &secrets::token_hash(&token),
        &format_timestamp(now),
    )?;
    Ok(OpenedSession { token, csrf_token })
}

/// Removes a member (the rules are `workspaces::remove_member`'s) and stops their sessions from
/// acting in that workspace.
pub fn remove_member(
    conn: &Connection,
    scope: &WorkspaceScope,
    actor_id: &UserId,
    user_id: &UserId,
) -> Result<(), AppError> {
    let workspace_id = scope.id();
    crate::workspaces::remove_member(conn, scope, actor_id, user_id)?;
    store::clear_active_workspace_for(conn, user_id, workspace_id)
}

/// What setup and login hand back.
pub struct SignedIn {
    pub user: User,
    /// The session's active workspace and the user's role there.
    pub workspace: Option<(Workspace, Role)>,
    pub session: OpenedSession,
}

/// First run: creates the instance admin, the first workspace and a session — only while no user
/// exists (409 `conflict` forever after). Runs in one write transaction, so concurrent setups
/// create exactly one admin.
pub fn run_setup(
    conn: &Connection,
    ids: &Ids,
    new_user: NewUser,
    (workspace_name, currency): (&str, &str),
    now: Timestamp,
) -> Result<SignedIn, AppError> {
    if crate::users::any_exist(conn)? {
        return Err(AppError::Conflict(
            "Setup is already done; log in instead.".to_owned(),
        ));
    }
    let user = create_user(conn, ids, new_user, true, now)?;
    let workspace = create_workspace(conn, ids, workspace_name, &user.id, currency, now)?;
    let session = open_session(conn, ids, &user.id, Some(&workspace.id), now)?;
    Ok(SignedIn {
        user,
        workspace: Some((workspace, Role::Owner)),
        session,
    })
}

/// Opens a session for a user whose password was verified; the active workspace is their
/// oldest membership.
pub fn sign_in(
    conn: &Connection,
    ids: &Ids,
    user: User,
    now: Timestamp,
) -> Result<SignedIn, AppError> {
    let workspace = crate::workspaces::first_workspace_of(conn, &user.id)?;
    let active_id = workspace.as_ref().map(|(workspace, _)| &workspace.id);
    let session = open_session(conn, ids, &user.id, active_id, now)?;
    Ok(SignedIn {
        user,
        workspace,
        session,
    })
}
