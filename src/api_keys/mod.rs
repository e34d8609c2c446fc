//! API keys: issue (shown once), list, revoke, rotate with a grace period (docs/rules/access.md).
//!
//! Only owners and admins with a console session manage keys (enforced by the handlers); a key
//! can never create keys. Keys are stored as SHA-256 hashes: the full key exists only in the
//! response that created it.

pub mod format;
pub mod store;

use chrono::Duration;
use rusqlite::Connection;

use crate::api_keys::format::{Scope, generate_key};
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::Ids;
use crate::ids::{ApiKeyId, UserId, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::secrets;
use crate::vocabulary::Mode;
use store::ApiKey;

/// The longest a rotated key may keep working: 7 days.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 60 * 60;

/// What a new key is for.
pub struct NewApiKey {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub mode: Mode,
    /// `None` when made with `crier admin create-api-key`.
    pub created_by: Option<UserId>,
    pub expires_at: Option<Timestamp>,
}

/// A key just issued: `key` is the only copy of the secret.
pub struct IssuedKey {
    pub api_key: ApiKey,
    pub key: String,
}

/// The key whose secret was presented, if it exists (revoked and expired keys included: the
/// caller says why it is refused). Only the secret's hash is looked up.
pub fn find_presented(
    conn: &Connection,
    presented: &crate::api_keys::format::PresentedKey,
) -> Result<Option<ApiKey>, AppError> {
    store::find_key_by_hash(conn, &secrets::token_hash(presented.as_str()))
}

/// Records that a key was used at `now`, unless that was already recorded after `stale_before`.
pub fn record_use(
    conn: &Connection,
    id: &ApiKeyId,
    now: &str,
    stale_before: &str,
) -> Result<(), AppError> {
    store::touch_key(conn, id, now, stale_before)
}

/// Issues a key. Scopes are stored sorted and without duplicates.
pub fn issue_key(
    conn: &Connection,
    ids: &Ids,
    new_key: NewApiKey,
    now: Timestamp,
) -> Result<IssuedKey, AppError> {
    let presented = generate_key(new_key.mode, ids);
    let mut scopes = new_key.scopes;
    scopes.sort();
    scopes.dedup();
    let api_key = ApiKey {
        id: ApiKeyId::generate(ids),
        workspace_id: new_key.workspace_id,
        name: new_key.name,
        display_prefix: presented.display_prefix().to_owned(),
        mode: new_key.mode,
        scopes,
        created_by: new_key.created_by,
        created_at: format_timestamp(now),
        last_used_at: None,
        expires_at: new_key.expires_at.map(format_timestamp),
        revoked_at: None,
        replaced_by: None,
    };
    store::insert_key(conn, &api_key, &secrets::token_hash(presented.as_str()))?;
    Ok(IssuedKey {
        api_key,
        key: presented.as_str().to_owned(),
    })
}

/// Revokes a key of the workspace (again is harmless) and returns it as it now stands.
pub fn revoke_key(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &ApiKeyId,
    now: Timestamp,
) -> Result<ApiKey, AppError> {
    let workspace_id = scope.id();
    store::find_key(conn, workspace_id, id)?.ok_or(AppError::NotFound)?;
    store::revoke_key(conn, id, &format_timestamp(now))?;
    store::find_key(conn, workspace_id, id)?.ok_or(AppError::NotFound)
}

/// Replaces a key with a new one of the same name, scopes and mode; the old one keeps working
/// for `grace` (never longer than it would have anyway), then expires.
pub fn rotate_key(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    id: &ApiKeyId,
    grace: Duration,
    created_by: Option<UserId>,
    now: Timestamp,
) -> Result<(IssuedKey, ApiKey), AppError> {
    let workspace_id = scope.id();
    let old = store::find_key(conn, workspace_id, id)?.ok_or(AppError::NotFound)?;
    let now_text = format_timestamp(now);
    if old.revoked_at.is_some() || old.expires_at.as_ref().is_some_and(|at| *at <= now_text) {
        return Err(AppError::Conflict(
            "This key is revoked or expired; create a new key instead.".to_owned(),
        ));
    }
    if old.replaced_by.is_some() {
        return Err(AppError::Conflict(
            "This key was already rotated; rotate its replacement instead.".to_owned(),
        ));
    }
    let new_key = NewApiKey {
        workspace_id: workspace_id.to_owned(),
        name: old.name.clone(),
        scopes: old.scopes.clone(),
        mode: old.mode,
        created_by,
        expires_at: old
            .expires_at
            .as_deref()
            .and_then(crate::clock::parse_timestamp),
    };
    let issued = issue_key(conn, ids, new_key, now)?;
    let grace_end = format_timestamp(now + grace);
    let old_expires = match &old.expires_at {
        Some(at) if *at < grace_end => at.clone(),
        _ => grace_end,
    };
    store::retire_key(conn, id, &old_expires, &issued.api_key.id)?;
    let old = store::find_key(conn, workspace_id, id)?.ok_or(AppError::NotFound)?;
    Ok((issued, old))
}
