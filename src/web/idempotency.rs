//! Idempotency-Key (docs/rules/access.md): retries over a bad network never repeat an effect.
//!
//! A POST handler opts in with one call, after authenticating and validating its input:
//! - `in_transaction` for operations that are one database transaction (sends, launches): the
//!   record, the effect and the stored response commit together in one `BEGIN IMMEDIATE`, so
//!   concurrent duplicates serialise on the write lock and the loser replays the winner; a crash
//!   leaves all or nothing.
//! - `leased` for operations that call a provider: the record is taken in flight with a lease,
//!   the call runs with no transaction open, the outcome is stored after. A duplicate during the
//!   lease gets 409 `idempotency_key_in_use`; after the lease expires a retry takes over.
//!
//! Stored: 2xx and 4xx outcomes of the operation. Never stored: 5xx (the retry runs again), and
//! refusals of the input (422 `validation_failed`), whether the handler made them before calling
//! in here or the operation made them (a domain function validates as it writes): the effect is
//! rolled back and a corrected retry with the same key goes through. Records are kept for the
//! configured retention, then `sweep_expired` deletes them. Responses that carry a secret shown
//! once and never stored (API keys, invitation tokens) must not use this layer: the secret
//! would be stored.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use ring::digest;
use rusqlite::Connection;

use crate::app::App;
use crate::auth::principal::Principal;
use crate::clock::{Timestamp, format_timestamp};
use crate::db::run_cached;
use crate::error::AppError;
use crate::idempotency::store::{self, Record, RecordScope, RecordState};
use crate::vocabulary::Mode;
use crate::web::request::Request;
use crate::web::response::{ApiResponse, Later, error_response};

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
const MAX_KEY_LEN: usize = 255;
/// The code of a refusal of the input, never stored: a corrected retry with the key goes through.
const VALIDATION_FAILED: &str = "validation_failed";

/// Whether an endpoint insists on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Optional,
    /// Missing → 400 `idempotency_key_required`.
    Required,
}

/// What a key is unique within, besides the API key or user that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The workspace the request acts in (sends, launches, payments): the same key in another
    /// workspace is another request.
    Workspace,
    /// The user alone, for operations that are not about the active workspace (creating or
    /// switching workspaces), so switching workspaces between retries cannot change the scope.
    User,
}

/// What most POSTs of the API take: a key when the client sends one, unique within the
/// workspace the request acts in.
pub const OPTIONAL_PER_WORKSPACE: (Requirement, Per) = (Requirement::Optional, Per::Workspace);

/// A key when the client sends one, unique for the user alone: instance admins' decisions about
/// a workspace named in the path, like wallet adjustments.
pub const OPTIONAL_PER_USER: (Requirement, Per) = (Requirement::Optional, Per::User);

/// Parses the header value: 1–255 visible ASCII characters, or the same as a quoted
/// structured-field string (`"abc"`, with `\"` and `\\` escapes), which is unquoted.
pub fn parse_key(value: &str) -> Result<String, AppError> {
    let invalid = || {
        AppError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (optionally quoted)."
                .to_owned(),
        )
    };
    let key = match value.strip_prefix('"') {
        Some(quoted) => {
            let inner = quoted.strip_suffix('"').ok_or_else(invalid)?;
            let mut key = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => key.push(escaped),
                        _ => return Err(invalid()),
                    },
                    '"' => return Err(invalid()),
                    other => key.push(other),
                }
            }
            key
        }
        None => value.to_owned(),
    };
    let visible = key.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
        return Err(invalid());
    }
    Ok(key)
}

/// The key of this request, if any, with the endpoint's requirement applied.
fn key_of(request: &Request<'_>, requirement: Requirement) -> Result<Option<String>, AppError> {
    if request.header_count(HEADER) > 1 {
        return Err(AppError::InvalidIdempotencyKey(
            "Send one Idempotency-Key header, not several.".to_owned(),
        ));
    }
    match request.header(HEADER) {
        Some(value) => parse_key(value).map(Some).map_err(|err| match err {
            AppError::BadRequest(message) => AppError::InvalidIdempotencyKey(message),
            other => other,
        }),
        None if requirement == Requirement::Required => Err(AppError::IdempotencyKeyRequired),
        None => Ok(None),
    }
}

/// SHA-256 over the method, the path with its query string, and the canonical body: JSON
/// re-serialised with sorted keys (serde_json's map is ordered) and its numbers as the handler
/// reads them (`5.0` is 5, `1e2` is 100), so whitespace, key order and a number's spelling do
/// not matter. A body that is not JSON counts byte for byte.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|mut value| {
            crate::web::request::integral_floats_to_integers(&mut value);
            serde_json::to_vec(&value).ok()
        })
        .unwrap_or_else(|| body.to_vec());
    let mut context = fingerprint_of_target(method, path);
    context.update(&canonical);
    context.finish().as_ref().to_vec()
}

/// The hash of a request's method and target, which its body then goes into.
fn fingerprint_of_target(method: &str, path: &str) -> digest::Context {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n"] {
        context.update(part);
    }
    context
}

/// Everything about this request the layer needs: where its record lives and what it asked.
struct Attempt {
    scope: RecordScope,
    fingerprint: Vec<u8>,
}

fn attempt(
    request: &mut Request<'_>,
    principal: &Principal,
    per: Per,
    key: String,
) -> Result<Attempt, AppError> {
    let (user_or_key, workspace_id) = match (principal, per) {
        (Principal::ApiKey(api_key), _) => {
            (api_key.key_id().as_str(), api_key.workspace_id().as_str())
        }
        (Principal::Session(session), Per::Workspace) => (
            session.user_id().as_str(),
            session.active_workspace().map_or("", |(id, _)| id.as_str()),
        ),
        (Principal::Session(session), Per::User) => (session.user_id().as_str(), ""),
    };
    // Test and live are two worlds: a console user's key in one never replays the other's
    // answer (an API key has one mode for life, so its id alone says which).
    let actor_id = match (principal, principal.mode()) {
        (Principal::Session(_), Mode::Test) => format!("{user_or_key}/test"),
        _ => user_or_key.to_owned(),
    };
    let method = request.method().map_or("OTHER", |method| method.as_str());
    let target = match request.query() {
        "" => request.path().to_owned(),
        query => format!("{}?{query}", request.path()),
    };
    let fingerprint = match request.spooled_body() {
        // An import's CSV upload, streamed to a file by the edge: read from there.
        Ok(spooled) => file_fingerprint(method, &target, spooled.path())?,
        Err(_) => fingerprint(method, &target, &request.body_bytes()?),
    };
    Ok(Attempt {
        scope: RecordScope {
            workspace_id: workspace_id.to_owned(),
            actor_id,
            key,
        },
        fingerprint,
    })
}

/// `fingerprint` of a body streamed to a file (never JSON: it counts byte for byte), read a
/// piece at a time.
fn file_fingerprint(method: &str, path: &str, file: &Path) -> Result<Vec<u8>, AppError> {
    let mut context = fingerprint_of_target(method, path);
    let mut file = File::open(file).map_err(AppError::internal)?;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buffer).map_err(AppError::internal)? {
            0 => break,
            read => context.update(&buffer[..read]),
        }
    }
    Ok(context.finish().as_ref().to_vec())
}

impl Attempt {
    /// A stable reference for this (scope, key), safe to hand a provider as its idempotency key:
    /// it never collides across workspaces or callers and reveals nothing of the client's key.
    fn provider_reference(&self) -> String {
        let mut context = digest::Context::new(&digest::SHA256);
        for part in [
            &self.scope.workspace_id,
            &self.scope.actor_id,
            &self.scope.key,
        ] {
            context.update(part.as_bytes());
            context.update(b"\n");
        }
        context
            .finish()
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// What an existing record means for a new attempt.
enum Existing {
    Replay(ApiResponse),
    /// An in-flight record whose lease ran out, or a record past its retention: the attempt
    /// proceeds and overwrites it.
    Absent,
}

fn judge(record: Record, fingerprint: &[u8], now: Timestamp) -> Result<Existing, AppError> {
    // Past its retention the record is gone as far as clients can tell, swept or not.
    if record.expires_at <= format_timestamp(now) {
        return Ok(Existing::Absent);
    }
    if record.fingerprint != fingerprint {
        return Err(AppError::IdempotencyKeyReused);
    }
    match record.state {
        RecordState::Completed {
            status,
            content_type,
            body,
        } => Ok(Existing::Replay(replayed(status, &content_type, body))),
        RecordState::InFlight {
            lease_expires_at, ..
        } => {
            let expires = crate::clock::parse_timestamp(&lease_expires_at).unwrap_or(now);
            if expires > now {
                // Rounded up: retrying a moment early would just get another 409.
                let millis = (expires - now).num_milliseconds().max(1) as u64;
                let retry_after_secs = millis.div_ceil(1000);
                Err(AppError::IdempotencyKeyInUse { retry_after_secs })
            } else {
                Ok(Existing::Absent)
            }
        }
    }
}

fn replayed(status: u16, content_type: &str, body: Vec<u8>) -> ApiResponse {
    // Our responses only use a few content types; an unknown stored one falls back to JSON.
    let content_type = match content_type {
        crate::web::response::HTML => crate::web::response::HTML,
        _ => crate::web::response::JSON,
    };
    ApiResponse::bytes(status, content_type, body).with_header(REPLAYED_HEADER, "true")
}

/// The response to store and return for an operation's outcome, or the error to pass on
/// unstored (5xx, 429, and a refusal of the input: 422 `validation_failed`).
fn storable(
    outcome: Result<ApiResponse, AppError>,
    request_id: &str,
) -> Result<ApiResponse, AppError> {
    match outcome {
        Ok(response) if response.status < 500 => Ok(response),
        Err(err) if err.status() < 500 && err.code() != VALIDATION_FAILED => {
            Ok(error_response(&err, request_id))
        }
        Ok(response) => Err(AppError::Internal(format!(
            "operation answered {} (not stored)",
            response.status
        ))),
        Err(err) => Err(err),
    }
}

/// The stored response for this request's key, if the operation already completed with the
/// same request (and the usual 422 / 409 for a reused or in-flight key). For handlers that
/// validate against the current state before `in_transaction`, to call when that validation
/// refuses: a retry of a request that succeeded must get its replay, even if the same input would
/// be refused now (a schedule time that has since passed). Read-only; `in_transaction` still
/// decides under the write lock.
pub fn replay_completed(
    app: &App,
    request: &mut Request<'_>,
    principal: &Principal,
    (requirement, per): (Requirement, Per),
) -> Result<Option<ApiResponse>, AppError> {
    let Some(key) = key_of(request, requirement)? else {
        return Ok(None);
    };
    let attempt = attempt(request, principal, per, key)?;
    let now = app.clock.now();
    app.db.read(|conn| replay_of(conn, &attempt, now))
}

/// The stored response to replay for this attempt, if its key completed with the same request;
/// 422 / 409 for a reused or in-flight key; `None` when the attempt may proceed.
fn replay_of(
    conn: &Connection,
    attempt: &Attempt,
    now: Timestamp,
) -> Result<Option<ApiResponse>, AppError> {
    match store::find_record(conn, &attempt.scope)? {
        Some(record) => match judge(record, &attempt.fingerprint, now)? {
            Existing::Replay(response) => Ok(Some(response)),
            Existing::Absent => Ok(None),
        },
        None => Ok(None),
    }
}

/// Runs `effect` exactly once per (scope, key): inside one write transaction with the record and
/// the stored response. Without a key (and `Optional`), just runs `effect` in a transaction.
pub fn in_transaction(
    app: &App,
    request: &mut Request<'_>,
    principal: &Principal,
    idempotency: (Requirement, Per),
    effect: impl FnOnce(&Connection) -> Result<ApiResponse, AppError>,
) -> Result<ApiResponse, AppError> {
    in_transaction_checked(
        app,
        request,
        principal,
        idempotency,
        |_| Ok(()),
        |conn, ()| effect(conn),
    )
}

/// `in_transaction` with a `check` against the current state, run in the same transaction once
/// no replay applies, before the effect. A refusal from `check` is returned and not stored, like
/// a validation failure before the operation: a corrected retry with the same key goes through.
/// What `check` returns is handed to `effect`.
pub fn in_transaction_checked<T>(
    app: &App,
    request: &mut Request<'_>,
    principal: &Principal,
    (requirement, per): (Requirement, Per),
    check: impl FnOnce(&Connection) -> Result<T, AppError>,
    effect: impl FnOnce(&Connection, T) -> Result<ApiResponse, AppError>,
) -> Result<ApiResponse, AppError> {
    let Some(key) = key_of(request, requirement)? else {
        return app.db.write(|conn| effect(conn, check(conn)?));
    };
    let attempt = attempt(request, principal, per, key)?;
    let request_id = request.request_id().to_owned();
    app.db
        .write(|conn| run_checked(app, conn, (&attempt, &request_id), check, effect))
}

/// `in_transaction_checked` with a `check` and an `effect` that own what they use (they are
/// given the app back), run on the writer's job thread (`App::write_job_then`): for the send
/// path, where handing the connection from thread to thread costs more than the work. The
/// worker does not wait for the commit: the response is `ApiResponse::later`, whose outcome the
/// edge waits for (when the job ran on this thread — no job thread — it is the outcome itself).
/// `committed` runs on the job thread with a response that has committed (keep it short).
pub fn in_job_checked<T>(
    app: &App,
    request: &mut Request<'_>,
    principal: &Principal,
    (requirement, per): (Requirement, Per),
    check: impl FnOnce(&App, &Connection) -> Result<T, AppError> + Send + 'static,
    effect: impl FnOnce(&App, &Connection, T) -> Result<ApiResponse, AppError> + Send + 'static,
    committed: fn(&App, &ApiResponse),
) -> Result<ApiResponse, AppError> {
    type Body = Box<dyn FnOnce(&App, &Connection) -> Result<ApiResponse, AppError> + Send>;
    let body: Body = match key_of(request, requirement)? {
        None => Box::new(move |app, conn| effect(app, conn, check(app, conn)?)),
        Some(key) => {
            let attempt = attempt(request, principal, per, key)?;
            let request_id = request.request_id().to_owned();
            Box::new(move |app, conn| {
                run_checked(
                    app,
                    conn,
                    (&attempt, &request_id),
                    |conn| check(app, conn),
                    |conn, checked| effect(app, conn, checked),
                )
            })
        }
    };
    let (sender, mut outcome) = tokio::sync::oneshot::channel();
    app.write_job_then(body, move |app, result| {
        if let Ok(response) = &result {
            committed(app, response);
        }
        // The edge may have given up on the connection meanwhile: nobody to tell then.
        let _ = sender.send(result);
    });
    match outcome.try_recv() {
        Ok(result) => result,
        Err(_) => Ok(ApiResponse::later(Later(outcome))),
    }
}

/// The keyed operation inside its write transaction: the replay check, `check`, `effect` in a
/// savepoint, and the stored response.
fn run_checked<T>(
    app: &App,
    conn: &Connection,
    (attempt, request_id): (&Attempt, &str),
    check: impl FnOnce(&Connection) -> Result<T, AppError>,
    effect: impl FnOnce(&Connection, T) -> Result<ApiResponse, AppError>,
) -> Result<ApiResponse, AppError> {
    // Read inside the transaction: waiting for the write lock must not age the record.
    let now = app.clock.now();
    if let Some(response) = replay_of(conn, attempt, now)? {
        return Ok(response);
    }
    let checked = check(conn)?;
    // The effect runs in a savepoint so a 4xx outcome can be stored without its effects.
    run_cached(conn, "SAVEPOINT idempotent_effect")?;
    let outcome = effect(conn, checked);
    let keep_effect = matches!(&outcome, Ok(response) if response.status < 500);
    if !keep_effect {
        run_cached(conn, "ROLLBACK TO idempotent_effect")?;
    }
    run_cached(conn, "RELEASE idempotent_effect")?;
    let response = storable(outcome, request_id)?;
    save_completed(app, conn, attempt, &response, now)?;
    Ok(response)
}

/// Stores `response` as the attempt's completed record, kept for the retention from `now`.
fn save_completed(
    app: &App,
    conn: &Connection,
    attempt: &Attempt,
    response: &ApiResponse,
    now: Timestamp,
) -> Result<(), AppError> {
    store::save_completed(
        conn,
        &attempt.scope,
        &attempt.fingerprint,
        (response.status, response.content_type, &response.body),
        &format_timestamp(now),
        &format_timestamp(now + retention(app)),
    )
}

/// Runs `call` (which may talk to a provider; no transaction is open) at most once at a time per
/// (scope, key), and stores its outcome. `call` receives a reference to pass the provider as its
/// own idempotency key: stable for this (scope, key), unique across workspaces and callers.
/// Without a key (and `Optional`), just runs `call` with a fresh reference.
pub fn leased(
    app: &App,
    request: &mut Request<'_>,
    principal: &Principal,
    (requirement, per): (Requirement, Per),
    call: impl FnOnce(&str) -> Result<ApiResponse, AppError>,
) -> Result<ApiResponse, AppError> {
    let Some(key) = key_of(request, requirement)? else {
        return call(&app.ids.new_id("ref"));
    };
    let attempt = attempt(request, principal, per, key)?;
    let request_id = request.request_id().to_owned();
    let lease_token = app.ids.new_id("lse");
    let taken = app.db.write(|conn| {
        let now = app.clock.now();
        if let Some(response) = replay_of(conn, &attempt, now)? {
            return Ok(Some(response));
        }
        let lease_end = now + crate::clock::span(app.config.idempotency_lease);
        store::save_in_flight(
            conn,
            &attempt.scope,
            &attempt.fingerprint,
            &lease_token,
            &format_timestamp(lease_end),
            &format_timestamp(now),
            &format_timestamp(now + retention(app)),
        )?;
        Ok(None)
    })?;
    if let Some(replay) = taken {
        return Ok(replay);
    }

    let outcome = call(&attempt.provider_reference());
    match storable(outcome, &request_id) {
        Ok(response) => {
            app.db.write(|conn| {
                // Someone took over an expired lease meanwhile: their outcome is the record.
                if store::holds_lease(conn, &attempt.scope, &lease_token)? {
                    save_completed(app, conn, &attempt, &response, app.clock.now())?;
                }
                Ok(())
            })?;
            Ok(response)
        }
        Err(err) => {
            // Nothing is stored for a 5xx: free the key so a retry runs again.
            let released = app
                .db
                .write(|conn| store::release_lease(conn, &attempt.scope, &lease_token));
            if let Err(release_err) = released {
                log::warn!(request_id = request_id.as_str(), error:% = release_err; "could not release idempotency lease");
            }
            Err(err)
        }
    }
}

fn retention(app: &App) -> chrono::Duration {
    crate::clock::span(app.config.idempotency_retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_optionally_quoted() {
        assert_eq!(parse_key("abc-123").unwrap(), "abc-123");
        assert_eq!(parse_key("\"abc-123\"").unwrap(), "abc-123");
        assert_eq!(parse_key(r#""a\"b\\c""#).unwrap(), r#"a"b\c"#);
        assert_eq!(parse_key(&"k".repeat(255)).unwrap().len(), 255);
        for bad in [
            "",
            "\"\"",
            "has space",
            "tab\there",
            "caf\u{e9}",
            "\"unbalanced",
            "\"bad\\escape\"",
            "\"in\"side\"",
        ] {
            assert!(parse_key(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_key(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_ignore_json_layout_but_not_values() {
        let a = fingerprint("POST", "/v1/x", br#"{"a": 1, "b": [1, 2]}"#);
        let b = fingerprint("POST", "/v1/x", b"{\"b\":[1,2],\n \"a\":1}");
        let changed = fingerprint("POST", "/v1/x", br#"{"a": 2, "b": [1, 2]}"#);
        let other_path = fingerprint("POST", "/v1/y", br#"{"a": 1, "b": [1, 2]}"#);
        assert_eq!(a, b);
        assert_ne!(a, changed);
        assert_ne!(a, other_path);
        assert_ne!(
            fingerprint("POST", "/v1/x", b""),
            fingerprint("POST", "/v1/x", b"{}")
        );
        // A number is its value, however it is written; a fraction still counts.
        let five = fingerprint("POST", "/v1/x", br#"{"n": 5, "m": [100]}"#);
        assert_eq!(
            five,
            fingerprint("POST", "/v1/x", br#"{"n": 5.0, "m": [1e2]}"#)
        );
        assert_ne!(
            five,
            fingerprint("POST", "/v1/x", br#"{"n": 5.5, "m": [100]}"#)
        );
    }
}
