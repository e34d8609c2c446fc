//! What both payment adapters share: turning a transport failure or a non-2xx answer into a
//! `ProviderError`, and reading JSON fields as text. The HTTP client is `crate::outbound`, shared
//! with the delivery providers, so timeouts and transport classification are the same everywhere.
//!
//! `try_next` for an HTTP status: 408, 429 and 5xx (the provider is overloaded or broken), 401
//! and 403 (our key is wrong or revoked) and 404 (our base URL is wrong) are worth another
//! provider or a later try: none of them says anything about the payment, and the payer can
//! still pay elsewhere. Any other 4xx means the provider understood the request and refused
//! it, so the same request elsewhere is refused too: `try_next` false. Statuses that are not
//! 2xx or 4xx (a redirect where an API should be) are treated as a broken provider.

use crate::outbound::{self, TransportError};
use crate::payments::provider::ProviderError;

/// A transport failure (`timeout`, `network`, `config`, …): the provider was not heard, so the
/// next one may succeed. The message is the client's, which never quotes URLs.
pub(crate) fn transport(failure: TransportError) -> ProviderError {
    ProviderError {
        try_next: true,
        code: failure.code,
        message: failure.message,
    }
}

/// A non-2xx answer. `detail` is the provider's own explanation, cleaned of every `sensitive`
/// value (keys, secrets) before it goes into the message.
pub(crate) fn refused(
    provider: &str,
    status: u16,
    detail: Option<&str>,
    sensitive: &[&str],
) -> ProviderError {
    let (try_next, code) = match status {
        429 => (true, "rate_limited".to_owned()),
        401 | 403 => (true, "unauthorized".to_owned()),
        404 | 408 | 500..=599 => (true, format!("http_{status}")),
        400..=499 => (false, format!("http_{status}")),
        _ => (true, format!("http_{status}")),
    };
    ProviderError {
        try_next,
        code,
        message: message(provider, status, detail, sensitive),
    }
}

/// "`provider` answered HTTP `status`: `detail`", the detail redacted and shortened.
pub(crate) fn message(
    provider: &str,
    status: u16,
    detail: Option<&str>,
    sensitive: &[&str],
) -> String {
    let mut message = format!("{provider} answered HTTP {status}");
    if let Some(detail) = detail.map(str::trim).filter(|detail| !detail.is_empty()) {
        message.push_str(": ");
        message.push_str(&outbound::redact(detail, sensitive));
    }
    message
}

/// A 2xx answer we cannot use (not JSON, or without the fields the provider always sends): it
/// did not come from the provider's API (a proxy, a captive portal), so another try may work.
pub(crate) fn bad_response(provider: &str, status: u16, missing: &str) -> ProviderError {
    ProviderError {
        try_next: true,
        code: "bad_response".to_owned(),
        message: format!("{provider} answered HTTP {status} without {missing}"),
    }
}

/// The provider is not configured (no secret key): skipped without any call.
pub(crate) fn not_configured(provider: &str) -> ProviderError {
    ProviderError {
        try_next: true,
        code: "not_configured".to_owned(),
        message: format!("{provider} has no secret key configured"),
    }
}

/// The provider does not take this currency.
pub(crate) fn unsupported_currency(provider: &str, currency: &str) -> ProviderError {
    let shown: String = currency.chars().take(8).collect();
    ProviderError {
        try_next: true,
        code: "unsupported_currency".to_owned(),
        message: format!("{provider} does not take payments in {shown:?}"),
    }
}

/// A configured secret, unless it is missing or blank.
pub(crate) fn configured(secret: Option<&crate::config::Secret>) -> Option<&str> {
    secret
        .map(crate::config::Secret::expose)
        .filter(|value| !value.trim().is_empty())
}

/// `value[field]` as text: a non-empty string as is, a number in decimal.
pub(crate) fn text(value: &serde_json::Value, field: &str) -> Option<String> {
    outbound::json_text(value, field)
}

/// `value[field]` as a string slice, when it is one.
pub(crate) fn str_field<'v>(value: &'v serde_json::Value, field: &str) -> Option<&'v str> {
    value.get(field).and_then(serde_json::Value::as_str)
}
