//! The one error type of the request path, and its one mapping to HTTP.
//!
//! Every fallible domain or HTTP function returns `Result<T, AppError>`. The mapping from a variant
//! to a status and a stable machine code lives in `status` and `code`, each one exhaustive `match`
//! with no catch-all arm, so a new variant must choose both. What a client sees is built by
//! `http::response::error_response`; internal detail (SQL text, panic payloads) stays in the log.

use std::collections::BTreeMap;
use std::fmt;

/// Field name → human reason, for `422 validation_failed` (`details.fields`).
///
/// Keys are JSON paths as the client wrote them (`name`, `items[2].phone`), ordered so the error
/// body is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors::default()
    }

    /// Records why `field` is invalid. The first reason recorded for a field wins.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| reason.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a reason was recorded for `field`.
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// `Ok(())` when nothing was recorded, else the `validation_failed` error carrying every field.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self))
        }
    }
}

/// Everything that can go wrong while serving a request.
#[derive(Debug)]
pub enum AppError {
    /// The body is not valid JSON (or not UTF-8, or empty where a body is required).
    InvalidJson(String),
    /// The request is malformed in some other way (a bad header, a bad query parameter).
    BadRequest(String),
    /// The `Idempotency-Key` header is not 1–255 visible ASCII characters.
    InvalidIdempotencyKey(String),
    /// The endpoint requires an `Idempotency-Key` header.
    IdempotencyKeyRequired,
    /// The key was used before with a different request.
    IdempotencyKeyReused,
    /// The first request with this key is still running; retry after this many seconds.
    IdempotencyKeyInUse {
        retry_after_secs: u64,
    },
    /// No credentials, or a session that is unknown or expired.
    Unauthenticated,
    /// A provider callback whose signature or secret token is missing or wrong; says which.
    InvalidSignature(String),
    /// Login with a wrong email or password (never says which).
    InvalidCredentials,
    /// A bearer token that is not a well-formed crier key, or no such key.
    InvalidApiKey,
    ApiKeyRevoked,
    ApiKeyExpired,
    /// The wallet cannot pay for the operation; nothing was taken.
    InsufficientFunds {
        units: u64,
        included_remaining: u64,
        billable_units: u64,
        charge_minor: i64,
        balance_minor: i64,
        currency: String,
    },
    /// The API key lacks these scopes.
    InsufficientScope {
        missing: Vec<String>,
    },
    /// The caller is known but may not do this (role too low, or an API key where a console
    /// user is needed). The sentence says why.
    Forbidden(String),
    /// A cookie-authenticated mutation without the session's `X-CSRF-Token`.
    CsrfFailed,
    /// No route has this path, or the object does not exist in the caller's workspace.
    NotFound,
    /// The path exists but not with this method; carries the methods that do exist.
    MethodNotAllowed {
        allowed: Vec<&'static str>,
    },
    /// The operation conflicts with the current state of the object.
    Conflict(String),
    /// The object would duplicate an existing one (a unique phone or email); the sentence says
    /// which, and `details.existing_id` names it.
    Duplicate {
        message: String,
        existing_id: String,
    },
    /// The body is larger than the limit, in bytes.
    PayloadTooLarge {
        limit_bytes: u64,
    },
    /// The client sent the request body too slowly; the connection is closed after the answer.
    RequestTimeout {
        timeout_secs: u64,
    },
    /// The body is not `application/json`.
    UnsupportedMediaType {
        expected: &'static str,
    },
    /// The body is well-formed but some fields are not acceptable.
    Validation(FieldErrors),
    /// A list of ids with some that do not name an acceptable object: `validation_failed` with
    /// the reason under `details.fields.<field>` and every offending id in `details.invalid_ids`.
    InvalidIds {
        field: &'static str,
        reason: String,
        ids: Vec<String>,
    },
    /// A marketing send to a recipient who unsubscribed from the channel (or whose erased
    /// address is suppressed). The sentence says which.
    RecipientUnsubscribed(String),
    /// A send to an address delivery found bad (invalid, unreachable, bounced, complained).
    RecipientInvalid(String),
    /// Too many requests; retry after this many seconds.
    RateLimited {
        retry_after_secs: u64,
    },
    /// A dependency (the database) is temporarily unable to serve; retry after this many seconds.
    Unavailable {
        retry_after_secs: u64,
        detail: String,
    },
    /// No payment provider could create a checkout; carries each attempt (provider, code,
    /// sentence).
    PaymentProviderUnavailable {
        attempts: Vec<(String, String, String)>,
    },
    /// A bug or an unexpected failure. The string is for the log only, never for the client.
    Internal(String),
}

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            AppError::InvalidJson(_) => 400,
            AppError::BadRequest(_)
            | AppError::InvalidIdempotencyKey(_)
            | AppError::IdempotencyKeyRequired => 400,
            AppError::IdempotencyKeyInUse { .. } => 409,
            AppError::IdempotencyKeyReused => 422,
            AppError::Unauthenticated
            | AppError::InvalidSignature(_)
            | AppError::InvalidCredentials
            | AppError::InvalidApiKey
            | AppError::ApiKeyRevoked
            | AppError::ApiKeyExpired => 401,
            AppError::InsufficientFunds { .. } => 402,
            AppError::InsufficientScope { .. } | AppError::Forbidden(_) | AppError::CsrfFailed => {
                403
            }
            AppError::NotFound => 404,
            AppError::MethodNotAllowed { .. } => 405,
            AppError::Conflict(_) | AppError::Duplicate { .. } => 409,
            AppError::RequestTimeout { .. } => 408,
            AppError::PayloadTooLarge { .. } => 413,
            AppError::UnsupportedMediaType { .. } => 415,
            AppError::Validation(_) | AppError::InvalidIds { .. } => 422,
            AppError::RecipientUnsubscribed(_) | AppError::RecipientInvalid(_) => 422,
            AppError::RateLimited { .. } => 429,
            AppError::Internal(_) => 500,
            AppError::PaymentProviderUnavailable { .. } => 502,
            AppError::Unavailable { .. } => 503,
        }
    }

    /// The stable machine-readable code clients branch on. Documented in `docs/API.md`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidJson(_) => "invalid_json",
            AppError::BadRequest(_) => "bad_request",
            AppError::InvalidIdempotencyKey(_) => "invalid_idempotency_key",
            AppError::IdempotencyKeyRequired => "idempotency_key_required",
            AppError::IdempotencyKeyReused => "idempotency_key_reused",
            AppError::IdempotencyKeyInUse { .. } => "idempotency_key_in_use",
            AppError::Unauthenticated => "unauthenticated",
            AppError::InvalidSignature(_) => "invalid_signature",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::InvalidApiKey => "invalid_api_key",
            AppError::ApiKeyRevoked => "api_key_revoked",
            AppError::ApiKeyExpired => "api_key_expired",
            AppError::InsufficientFunds { .. } => "insufficient_funds",
            AppError::InsufficientScope { .. } => "insufficient_scope",
            AppError::Forbidden(_) => "forbidden",
            AppError::CsrfFailed => "csrf_failed",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Conflict(_) | AppError::Duplicate { .. } => "conflict",
            AppError::RequestTimeout { .. } => "request_timeout",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType { .. } => "unsupported_media_type",
            AppError::Validation(_) | AppError::InvalidIds { .. } => "validation_failed",
            AppError::RecipientUnsubscribed(_) => "recipient_unsubscribed",
            AppError::RecipientInvalid(_) => "recipient_invalid",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Internal(_) => "internal",
            AppError::PaymentProviderUnavailable { .. } => "payment_provider_unavailable",
            AppError::Unavailable { .. } => "unavailable",
        }
    }

    /// The human sentence for the client. Never contains internal error text.
    pub fn public_message(&self) -> String {
        match self {
            AppError::InvalidJson(why) => format!("The request body is not valid JSON: {why}."),
            AppError::BadRequest(why) | AppError::InvalidIdempotencyKey(why) => why.clone(),
            AppError::IdempotencyKeyRequired => {
                "This endpoint needs an Idempotency-Key header, so a retry can never repeat it."
                    .to_owned()
            }
            AppError::IdempotencyKeyReused => {
                "This Idempotency-Key was already used with a different request.".to_owned()
            }
            AppError::IdempotencyKeyInUse { .. } => {
                "A request with this Idempotency-Key is still in progress; retry later.".to_owned()
            }
            AppError::Unauthenticated => {
                "Authentication required: send an API key (Authorization: Bearer …) or log in."
                    .to_owned()
            }
            AppError::InvalidSignature(why) => why.clone(),
            AppError::InvalidCredentials => "The email or password is wrong.".to_owned(),
            AppError::InvalidApiKey => "The API key is not valid.".to_owned(),
            AppError::ApiKeyRevoked => "The API key has been revoked.".to_owned(),
            AppError::ApiKeyExpired => "The API key has expired.".to_owned(),
            AppError::InsufficientScope { missing } => {
                format!("The API key lacks the scope(s): {}.", missing.join(", "))
            }
            AppError::InsufficientFunds {
                charge_minor,
                balance_minor,
                currency,
                ..
            } => format!(
                "The wallet holds {balance_minor} {currency} (minor units) but {charge_minor} is \
                 needed; top up the wallet first."
            ),
            AppError::Forbidden(why) => why.clone(),
            AppError::CsrfFailed => {
                "This request needs the session's X-CSRF-Token header (see GET /v1/auth/me)."
                    .to_owned()
            }
            AppError::NotFound => "No such resource.".to_owned(),
            AppError::MethodNotAllowed { allowed } => {
                format!("This path accepts only {}.", allowed.join(", "))
            }
            AppError::Conflict(why) => why.clone(),
            AppError::Duplicate { message, .. } => message.clone(),
            AppError::PayloadTooLarge { limit_bytes } => {
                format!("The request body is larger than the limit of {limit_bytes} bytes.")
            }
            AppError::RequestTimeout { timeout_secs } => format!(
                "The request body did not arrive in time (the limit is {timeout_secs} s); send it again."
            ),
            AppError::UnsupportedMediaType { expected } => {
                format!("The request body must be sent with Content-Type: {expected}.")
            }
            AppError::Validation(_) => "Some fields are invalid; see details.fields.".to_owned(),
            AppError::InvalidIds { field, reason, .. } => format!("{field}: {reason}"),
            AppError::RecipientUnsubscribed(why) | AppError::RecipientInvalid(why) => why.clone(),
            AppError::RateLimited { .. } => "Too many requests; retry later.".to_owned(),
            AppError::Internal(_) => {
                "An internal error occurred; it has been logged with this request id.".to_owned()
            }
            AppError::Unavailable { .. } => {
                "The service is temporarily unavailable; retry later.".to_owned()
            }
            AppError::PaymentProviderUnavailable { .. } => {
                "No payment provider could start a checkout; nothing was charged. Retry later."
                    .to_owned()
            }
        }
    }

    /// Structured details for the client (`error.details`), or `None`.
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            AppError::Validation(fields) => {
                let fields: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(field, reason)| (field.clone(), reason.clone().into()))
                    .collect();
                Some(serde_json::json!({ "fields": fields }))
            }
            AppError::InvalidIds { field, reason, ids } => Some(serde_json::json!({
                "fields": { *field: reason },
                "invalid_ids": ids,
            })),
            AppError::MethodNotAllowed { allowed } => {
                Some(serde_json::json!({ "allowed_methods": allowed }))
            }
            AppError::InsufficientScope { missing } => {
                Some(serde_json::json!({ "missing_scopes": missing }))
            }
            AppError::InsufficientFunds {
                units,
                included_remaining,
                billable_units,
                charge_minor,
                balance_minor,
                currency,
            } => Some(serde_json::json!({
                "units": units,
                "included_remaining": included_remaining,
                "billable_units": billable_units,
                "charge": { "amount_minor": charge_minor, "currency": currency },
                "balance": { "amount_minor": balance_minor, "currency": currency },
                "charge_minor": charge_minor,
                "balance_minor": balance_minor,
                "currency": currency,
            })),
            AppError::PayloadTooLarge { limit_bytes } => {
                Some(serde_json::json!({ "limit_bytes": limit_bytes }))
            }
            AppError::Duplicate { existing_id, .. } => {
                Some(serde_json::json!({ "existing_id": existing_id }))
            }
            AppError::PaymentProviderUnavailable { attempts } => Some(serde_json::json!({
                "attempts": attempts
                    .iter()
                    .map(|(provider, code, message)| serde_json::json!({
                        "provider": provider, "code": code, "message": message,
                    }))
                    .collect::<Vec<_>>(),
            })),
            AppError::RateLimited { retry_after_secs }
            | AppError::IdempotencyKeyInUse { retry_after_secs }
            | AppError::Unavailable {
                retry_after_secs, ..
            } => Some(serde_json::json!({ "retry_after_seconds": retry_after_secs })),
            AppError::InvalidJson(_)
            | AppError::BadRequest(_)
            | AppError::InvalidIdempotencyKey(_)
            | AppError::IdempotencyKeyRequired
            | AppError::IdempotencyKeyReused
            | AppError::Unauthenticated
            | AppError::InvalidSignature(_)
            | AppError::InvalidCredentials
            | AppError::InvalidApiKey
            | AppError::ApiKeyRevoked
            | AppError::ApiKeyExpired
            | AppError::Forbidden(_)
            | AppError::CsrfFailed
            | AppError::NotFound
            | AppError::Conflict(_)
            | AppError::UnsupportedMediaType { .. }
            | AppError::RequestTimeout { .. }
            | AppError::RecipientUnsubscribed(_)
            | AppError::RecipientInvalid(_)
            | AppError::Internal(_) => None,
        }
    }

    /// Extra response headers this error requires (`Retry-After`, `Allow`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            AppError::RateLimited { retry_after_secs }
            | AppError::IdempotencyKeyInUse { retry_after_secs }
            | AppError::Unavailable {
                retry_after_secs, ..
            } => vec![("Retry-After", retry_after_secs.to_string())],
            AppError::MethodNotAllowed { allowed } => vec![("Allow", allowed.join(", "))],
            AppError::InvalidJson(_)
            | AppError::BadRequest(_)
            | AppError::InvalidIdempotencyKey(_)
            | AppError::IdempotencyKeyRequired
            | AppError::IdempotencyKeyReused
            | AppError::Unauthenticated
            | AppError::InvalidSignature(_)
            | AppError::InvalidCredentials
            | AppError::InvalidApiKey
            | AppError::ApiKeyRevoked
            | AppError::ApiKeyExpired
            | AppError::Forbidden(_)
            | AppError::CsrfFailed
            | AppError::InsufficientScope { .. }
            | AppError::InsufficientFunds { .. }
            | AppError::NotFound
            | AppError::Conflict(_)
            | AppError::Duplicate { .. }
            | AppError::PayloadTooLarge { .. }
            | AppError::RequestTimeout { .. }
            | AppError::UnsupportedMediaType { .. }
            | AppError::Validation(_)
            | AppError::InvalidIds { .. }
            | AppError::PaymentProviderUnavailable { .. }
            | AppError::RecipientUnsubscribed(_)
            | AppError::RecipientInvalid(_)
            | AppError::Internal(_) => Vec::new(),
        }
    }

    /// What the log should say about this error beyond its code, if anything.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            AppError::Internal(detail) | AppError::Unavailable { detail, .. } => Some(detail),
            AppError::InvalidJson(_)
            | AppError::BadRequest(_)
            | AppError::InvalidIdempotencyKey(_)
            | AppError::IdempotencyKeyRequired
            | AppError::IdempotencyKeyReused
            | AppError::Unauthenticated
            | AppError::InvalidSignature(_)
            | AppError::InvalidCredentials
            | AppError::InvalidApiKey
            | AppError::ApiKeyRevoked
            | AppError::ApiKeyExpired
            | AppError::Forbidden(_)
            | AppError::CsrfFailed
            | AppError::InsufficientScope { .. }
            | AppError::InsufficientFunds { .. }
            | AppError::NotFound
            | AppError::MethodNotAllowed { .. }
            | AppError::Conflict(_)
            | AppError::Duplicate { .. }
            | AppError::PayloadTooLarge { .. }
            | AppError::RequestTimeout { .. }
            | AppError::UnsupportedMediaType { .. }
            | AppError::Validation(_)
            | AppError::InvalidIds { .. }
            | AppError::IdempotencyKeyInUse { .. }
            | AppError::PaymentProviderUnavailable { .. }
            | AppError::RecipientUnsubscribed(_)
            | AppError::RecipientInvalid(_)
            | AppError::RateLimited { .. } => None,
        }
    }

    /// `422 validation_failed` for one field.
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> AppError {
        let mut fields = FieldErrors::new();
        fields.add(field, reason);
        AppError::Validation(fields)
    }

    pub fn internal(detail: impl fmt::Display) -> AppError {
        AppError::Internal(detail.to_string())
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.log_detail() {
            Some(detail) => write!(f, "{}: {detail}", self.code()),
            None => write!(f, "{}: {}", self.code(), self.public_message()),
        }
    }
}

impl std::error::Error for AppError {}

/// How long a client is told to wait when the disk is full or failing: long enough for an
/// operator (or a log rotation) to free space, short enough that a retry soon succeeds.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 30;

/// The text a caught panic carried (`panic!` with a message gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload")
}

/// A busy or locked database means "try again", not "bug": it becomes a 503 with `Retry-After`.
/// The `Retry-After` of a database error that a retry may cure, or `None` for one it will not:
/// busy or locked (another writer; 1 s), the disk full (`SQLITE_FULL`) or an I/O error
/// (`SQLITE_IOERR`, any extended code) — `STORAGE_RETRY_AFTER_SECS`. SQLite rolls back the
/// statement or transaction that hit them, so nothing half-written stays.
pub fn retry_after_secs(err: &rusqlite::Error) -> Option<u64> {
    match err.sqlite_error_code()? {
        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => Some(1),
        rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure => {
            Some(STORAGE_RETRY_AFTER_SECS)
        }
        _ => None,
    }
}

/// A database error: 503 `unavailable` with `Retry-After` when a retry may cure it (see
/// `retry_after_secs`), else 500 `internal` (a bug).
impl From<rusqlite::Error> for AppError {
    fn from(err: rusqlite::Error) -> AppError {
        match retry_after_secs(&err) {
            Some(retry_after_secs) => AppError::Unavailable {
                retry_after_secs,
                detail: format!("database unavailable: {err}"),
            },
            None => AppError::Internal(format!("database: {err}")),
        }
    }
}

/// The pool gives up after its connection timeout: every connection is in use.
impl From<r2d2::Error> for AppError {
    fn from(err: r2d2::Error) -> AppError {
        AppError::Unavailable {
            retry_after_secs: 1,
            detail: format!("database pool: {err}"),
        }
    }
}

/// A failure outside the request path (opening the database, binding the port, a maintenance
/// command) that ends the command with exit code 1. The text is for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_or_an_io_error_is_503_with_retry_after_and_other_failures_stay_500() {
        // A real SQLITE_FULL: a database that may not grow past a few pages.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB); PRAGMA max_page_count = 3;")
            .unwrap();
        let full = (0..100)
            .map(|_| conn.execute("INSERT INTO t VALUES (zeroblob(4000))", []))
            .find_map(Result::err)
            .expect("the database never filled up");
        assert_eq!(
            full.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );
        let io = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_WRITE),
            None,
        );
        for err in [full, io] {
            let text = err.to_string();
            let mapped = AppError::from(err);
            assert_eq!(mapped.status(), 503, "{mapped:?}");
            assert_eq!(mapped.code(), "unavailable");
            assert_eq!(
                mapped.headers(),
                vec![("Retry-After", STORAGE_RETRY_AFTER_SECS.to_string())]
            );
            assert!(!mapped.public_message().contains(&text));
        }
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(
            AppError::from(busy).headers(),
            vec![("Retry-After", "1".to_owned())]
        );
        let broken = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert_eq!(AppError::from(broken).status(), 500);
    }

    #[test]
    fn field_errors_keep_first_reason_and_sort() {
        let mut errors = FieldErrors::new();
        errors.add("zeta", "is required");
        errors.add("alpha", "is too long");
        errors.add("zeta", "second reason is dropped");
        let Err(AppError::Validation(fields)) = errors.into_result() else {
            panic!("expected a validation error");
        };
        let listed: Vec<_> = fields.iter().collect();
        assert_eq!(
            listed,
            vec![
                (&"alpha".to_owned(), &"is too long".to_owned()),
                (&"zeta".to_owned(), &"is required".to_owned())
            ]
        );
    }

    #[test]
    fn empty_field_errors_are_ok() {
        assert!(FieldErrors::new().into_result().is_ok());
    }

    #[test]
    fn internal_detail_never_reaches_the_public_message() {
        let err = AppError::internal("SELECT * FROM secrets failed: disk I/O error");
        assert_eq!(err.status(), 500);
        assert_eq!(err.code(), "internal");
        assert!(!err.public_message().contains("SELECT"));
        assert_eq!(
            err.log_detail(),
            Some("SELECT * FROM secrets failed: disk I/O error")
        );
    }

    #[test]
    fn busy_database_is_a_retryable_503() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let err = AppError::from(busy);
        assert_eq!(err.status(), 503);
        assert_eq!(err.headers(), vec![("Retry-After", "1".to_owned())]);
    }

    #[test]
    fn method_not_allowed_lists_allowed_methods() {
        let err = AppError::MethodNotAllowed {
            allowed: vec!["GET", "POST"],
        };
        assert_eq!(err.status(), 405);
        assert_eq!(err.headers(), vec![("Allow", "GET, POST".to_owned())]);
    }
}
