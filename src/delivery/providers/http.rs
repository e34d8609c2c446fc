//! What every HTTP provider adapter shares: the client (synchronous ureq, one connection pool,
//! the configured timeout on every call), posting JSON or a form, a plain GET (the payment
//! adapters' verification calls), turning transport errors and refusals into a classified
//! `Failure`, and the provider error-code table.
//!
//! Adapters only build their request and read their provider's body shape; every decision about
//! whether a failure is worth another try lives here, so the providers cannot drift apart.
//!
//! Nothing here puts a URL, a header or a request body into a `Failure` message: URLs can carry
//! credentials (AvlyText's `api_key` query parameter), and bodies carry the message text.

use std::io;
use std::time::Duration;

use crate::delivery::{Disposition, Failure, Outgoing, SmsOut};

/// Bodies larger than this are not provider answers we could use; reading stops there.
const MAX_REPLY_BYTES: u64 = 1024 * 1024;

/// How much of a provider's own error text goes into a failure message.
const MAX_DETAIL_CHARS: usize = 300;

/// The shared HTTP client: cloning it shares the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    /// Configured with `http_status_as_error(false)`: every status comes back as a response.
    pub agent: ureq::Agent,
}

/// A request body.
pub enum Payload<'a> {
    /// Serialized JSON, sent as `application/json`. Raw bytes so a caller can sign exactly what
    /// goes on the wire.
    Json(Vec<u8>),
    /// Fields sent as `application/x-www-form-urlencoded`.
    Form(Vec<(&'a str, &'a str)>),
}

/// A provider's answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The HTTP status code.
    pub status: u16,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl HttpReply {
    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }
}

impl HttpClient {
    /// A client whose every call (connect, send, whole answer) is bounded by `timeout`.
    pub fn new(timeout: Duration) -> HttpClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        HttpClient { agent }
    }

    /// POSTs `payload` to `url` with the `query` parameters (percent-encoded here, so secrets in
    /// them never pass through a formatted URL) and `headers`. Any status is an `HttpReply`;
    /// only a transport failure (timeout, refused connection, TLS) is an `Err`, already
    /// classified.
    pub fn post(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<HttpReply, Failure> {
        let mut request = self.agent.post(url);
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let sent = match payload {
            Payload::Json(body) => request
                .header("Content-Type", "application/json")
                .send(&body[..]),
            Payload::Form(fields) => request.send_form(fields),
        };
        let response = sent.map_err(|error| transport_failure(&error))?;
        read_reply(response)
    }

    /// GETs `url` with the `query` parameters (percent-encoded here, like `post`) and `headers`.
    /// Any status is an `HttpReply`; only a transport failure is an `Err`, already classified.
    pub fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpReply, Failure> {
        let mut request = self.agent.get(url);
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.call().map_err(|error| transport_failure(&error))?;
        read_reply(response)
    }
}

/// Reads an answer's status and (bounded, lossily decoded) body.
fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> Result<HttpReply, Failure> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|error| transport_failure(&error))?;
    Ok(HttpReply { status, body })
}

/// Classifies a failure to get an answer at all. Every one is retryable: the message was not
/// refused, the provider was not heard. Messages name the kind of failure only, never ureq's own
/// text, which can quote the URL.
pub fn transport_failure(error: &ureq::Error) -> Failure {
    match error {
        ureq::Error::Timeout(_) => timeout_failure(),
        ureq::Error::Io(io_error) if io_error.kind() == io::ErrorKind::TimedOut => {
            timeout_failure()
        }
        ureq::Error::Io(io_error) => Failure::retryable(
            "network",
            format!("could not reach the provider: {}", io_error.kind()),
        ),
        ureq::Error::HostNotFound => {
            Failure::retryable("network", "could not reach the provider: host not found")
        }
        ureq::Error::ConnectionFailed => {
            Failure::retryable("network", "could not reach the provider: connection failed")
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            Failure::retryable("network", "could not reach the provider: TLS failure")
        }
        // An operator fix (the configured URL), not the message's fault: the next provider can
        // still succeed.
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            Failure::retryable("config", "the provider URL is not a valid URL")
        }
        ureq::Error::BodyExceedsLimit(_) | ureq::Error::LargeResponseHeader(..) => {
            Failure::retryable("bad_response", "the provider's answer is too large")
        }
        ureq::Error::Protocol(_) => {
            Failure::retryable("network", "the provider's answer is not valid HTTP")
        }
        _ => Failure::retryable("network", "the provider call failed in transport"),
    }
}

fn timeout_failure() -> Failure {
    Failure::retryable("timeout", "the provider did not answer within the timeout")
}

/// Classifies a non-2xx answer (or a 2xx whose body says "refused"). `code` is the provider's
/// own error code when its body has one; `detail` its human explanation; `fallback_code` the
/// code to record when the provider gave none (`http_400`, `avlytext_http_400`, …).
///
/// In order:
/// - 429 → Retryable `rate_limited`; 5xx and 408 → Retryable: the provider is overloaded or
///   broken, whatever code it names.
/// - 401/403 → Retryable `unauthorized`, 402 → Retryable `payment_required`, 404 → Retryable:
///   rejected credentials, an empty account or a wrong URL are operator problems, not the
///   message's; another provider (or this one, once fixed) can still deliver it, so they must
///   not fail it for good.
/// - Any other status with a provider code: `classify_code` decides.
/// - Any other 4xx without a code: Final; the provider understood the request and refused it.
/// - Other statuses (1xx/3xx: a proxy or redirect where an API should be): Retryable.
pub fn refusal(
    status: u16,
    code: Option<&str>,
    detail: Option<&str>,
    fallback_code: &str,
    sensitive: &[&str],
) -> Failure {
    let code = code.map(str::trim).filter(|code| !code.is_empty());
    let message = refusal_message(status, code, detail, sensitive);
    let (disposition, recorded) = match status {
        429 => (Disposition::Retryable, "rate_limited"),
        401 | 403 => (Disposition::Retryable, "unauthorized"),
        402 => (Disposition::Retryable, "payment_required"),
        404 | 408 | 500..=599 => (Disposition::Retryable, code.unwrap_or(fallback_code)),
        _ => match code {
            Some(code) => (classify_code(code), code),
            None if (400..500).contains(&status) => (Disposition::Final, fallback_code),
            None => (Disposition::Retryable, fallback_code),
        },
    };
    Failure::new(disposition, recorded, message)
}

fn refusal_message(
    status: u16,
    code: Option<&str>,
    detail: Option<&str>,
    sensitive: &[&str],
) -> String {
    let mut message = format!("the provider refused the message (HTTP {status}");
    if let Some(code) = code {
        message.push_str(&format!(", code {code}"));
    }
    message.push(')');
    if let Some(detail) = detail.map(str::trim).filter(|detail| !detail.is_empty()) {
        message.push_str(": ");
        message.push_str(&redact(detail, sensitive));
    }
    message
}

/// Provider error codes that mean the message itself can never be delivered, whichever provider
/// tries (compared case-insensitively).
const FINAL_CODES: &[&str] = &[
    "invalid_number",
    "number_blacklisted",
    "opt_out",
    "unsubscribed",
    "do_not_contact",
    // Twilio: invalid To number; To is not a mobile number; To has opted out (STOP);
    // invalid and unreachable To number; message from an unregistered (A2P 10DLC) number.
    "21211",
    "21614",
    "21610",
    "21217",
    "30034",
    // Infobip error codes for a bad destination.
    "ec_0002",
    "ec_0004",
    // Infobip REJECTED statuses about the destination itself. The other REJECTED_* statuses
    // (REJECTED_NOT_ENOUGH_CREDITS, REJECTED_SENDER, REJECTED_NETWORK, REJECTED_ROUTE_NOT_AVAILABLE,
    // …) are account or routing problems another provider may not have: they stay retryable.
    "rejected_destination",
    "rejected_invalid_destination",
    "rejected_prefix_missing",
    "rejected_destination_not_registered",
    "rejected_dnd",
    "missing_to",
];

/// Whether a provider error code is worth another try. Only codes known to condemn the message
/// are Final; everything else, unknown codes included, is Retryable, because failing a message
/// for good on a code we do not understand loses it, while a retry costs at most a few attempts.
pub fn classify_code(code: &str) -> Disposition {
    let code = code.trim().to_ascii_lowercase();
    // LMT's insufficient balance, and our transport codes: said explicitly so a future entry
    // in FINAL_CODES cannot swallow them.
    if code == "bal01"
        || code.starts_with("rate")
        || code.starts_with("timeout")
        || code.starts_with("network")
    {
        return Disposition::Retryable;
    }
    if FINAL_CODES.contains(&code.as_str()) {
        Disposition::Final
    } else {
        Disposition::Retryable
    }
}

/// Replaces each sensitive value (credentials, the message text) found in provider-supplied text
/// with `***`, and shortens it. Values under four characters are left alone: masking them would
/// garble the text without protecting anything.
pub fn redact(text: &str, sensitive: &[&str]) -> String {
    let mut text = text.to_owned();
    for value in sensitive {
        if value.chars().count() >= 4 {
            text = text.replace(value, "***");
        }
    }
    let mut shortened: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        shortened.push('…');
    }
    shortened
}

/// The SMS inside `message`. SMS adapters are only ever given SMS; an email here is a wiring
/// mistake that no retry fixes.
pub fn sms<'m, 'a>(message: &'m Outgoing<'a>) -> Result<&'m SmsOut<'a>, Failure> {
    match message {
        Outgoing::Sms(sms) => Ok(sms),
        Outgoing::Email(_) => Err(Failure::final_(
            "unsupported_channel",
            "this provider sends SMS only",
        )),
    }
}

/// `base` and `path` joined with exactly one slash, whatever the configured base ends with.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The number without its leading `+`, for providers that want bare digits.
pub fn digits_only(e164: &str) -> &str {
    e164.strip_prefix('+').unwrap_or(e164)
}

/// `field` of a JSON object as text: a string as is, a number in decimal; anything else `None`.
pub fn json_text(value: &serde_json::Value, field: &str) -> Option<String> {
    match value.get(field)? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// An `Authorization: Basic …` value.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let credentials = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// Lowercase hex of an HMAC-SHA256 of `body` keyed with `secret`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    tag.as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Decodes an `application/x-www-form-urlencoded` body (as delivery receipts arrive). `Err` when
/// it is not UTF-8.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    std::str::from_utf8(body).map_err(|_| "the form body is not UTF-8".to_owned())?;
    Ok(form_urlencoded::parse(body)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table: &[(&str, Disposition)] = &[
            ("invalid_number", Disposition::Final),
            ("INVALID_NUMBER", Disposition::Final),
            ("number_blacklisted", Disposition::Final),
            ("opt_out", Disposition::Final),
            ("unsubscribed", Disposition::Final),
            ("do_not_contact", Disposition::Final),
            ("21211", Disposition::Final),
            ("21614", Disposition::Final),
            ("21610", Disposition::Final),
            ("21217", Disposition::Final),
            ("30034", Disposition::Final),
            ("EC_0002", Disposition::Final),
            ("EC_0004", Disposition::Final),
            ("REJECTED_DESTINATION", Disposition::Final),
            ("REJECTED_PREFIX_MISSING", Disposition::Final),
            ("REJECTED_DND", Disposition::Final),
            ("REJECTED_NOT_ENOUGH_CREDITS", Disposition::Retryable),
            ("REJECTED_SENDER", Disposition::Retryable),
            ("BAL01", Disposition::Retryable),
            ("rate_limited", Disposition::Retryable),
            ("rate", Disposition::Retryable),
            ("timeout", Disposition::Retryable),
            ("timeout_upstream", Disposition::Retryable),
            ("network", Disposition::Retryable),
            ("network_error", Disposition::Retryable),
            ("21408", Disposition::Retryable),
            ("something_new", Disposition::Retryable),
            ("", Disposition::Retryable),
        ];
        for (code, expected) in table {
            assert_eq!(classify_code(code), *expected, "code {code:?}");
        }
    }

    #[test]
    fn refusal_table() {
        let table: &[(u16, Option<&str>, Disposition, &str)] = &[
            (400, Some("21211"), Disposition::Final, "21211"),
            (
                400,
                Some("something_new"),
                Disposition::Retryable,
                "something_new",
            ),
            (400, None, Disposition::Final, "http_400"),
            (422, None, Disposition::Final, "http_422"),
            (400, Some("  "), Disposition::Final, "http_400"),
            (401, None, Disposition::Retryable, "unauthorized"),
            (
                403,
                Some("invalid_number"),
                Disposition::Retryable,
                "unauthorized",
            ),
            (402, None, Disposition::Retryable, "payment_required"),
            (404, None, Disposition::Retryable, "http_404"),
            (408, None, Disposition::Retryable, "http_408"),
            (
                429,
                Some("invalid_number"),
                Disposition::Retryable,
                "rate_limited",
            ),
            (429, None, Disposition::Retryable, "rate_limited"),
            (500, None, Disposition::Retryable, "http_500"),
            (
                503,
                Some("invalid_number"),
                Disposition::Retryable,
                "invalid_number",
            ),
            (302, None, Disposition::Retryable, "http_302"),
            (
                200,
                Some("REJECTED_DESTINATION"),
                Disposition::Final,
                "REJECTED_DESTINATION",
            ),
        ];
        for (status, code, disposition, recorded) in table {
            let failure = refusal(*status, *code, None, &format!("http_{status}"), &[]);
            assert_eq!(failure.disposition, *disposition, "{status} {code:?}");
            assert_eq!(failure.code, *recorded, "{status} {code:?}");
        }
    }

    #[test]
    fn refusal_messages_name_the_status_and_code_and_hide_secrets() {
        let failure = refusal(
            400,
            Some("21211"),
            Some("bad To; key s3cr3t-key; text Hello there"),
            "http_400",
            &["s3cr3t-key", "Hello there", "ab"],
        );
        assert_eq!(
            failure.message,
            "the provider refused the message (HTTP 400, code 21211): bad To; key ***; text ***"
        );
        let long = refusal(400, None, Some(&"x".repeat(1000)), "http_400", &[]);
        assert!(long.message.chars().count() < 400);
    }

    #[test]
    fn transport_failures_are_retryable() {
        let timeout = transport_failure(&ureq::Error::Timeout(ureq::Timeout::Global));
        assert_eq!(
            (timeout.disposition, timeout.code.as_str()),
            (Disposition::Retryable, "timeout")
        );
        let refused = transport_failure(&ureq::Error::Io(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(
            (refused.disposition, refused.code.as_str()),
            (Disposition::Retryable, "network")
        );
        let bad_uri =
            transport_failure(&ureq::Error::BadUri("http://x/?api_key=secret".to_owned()));
        assert!(!bad_uri.message.contains("secret"));
        assert_eq!(bad_uri.disposition, Disposition::Retryable);
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_password() {
        assert_eq!(basic_auth("AC1", "tok"), "Basic QUMxOnRvaw==");
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn forms_decode() {
        let fields =
            parse_form(b"MessageSid=SM1&MessageStatus=delivered&Body=a+b%2Bc%C3%A9&Empty=")
                .unwrap();
        assert_eq!(
            fields,
            vec![
                ("MessageSid".to_owned(), "SM1".to_owned()),
                ("MessageStatus".to_owned(), "delivered".to_owned()),
                ("Body".to_owned(), "a b+cé".to_owned()),
                ("Empty".to_owned(), String::new()),
            ]
        );
        // Broken escapes are kept as they are (the WHATWG form decoding); bytes that are not
        // UTF-8 are refused.
        assert_eq!(
            parse_form(b"a=%zz").unwrap(),
            vec![("a".to_owned(), "%zz".to_owned())]
        );
        assert!(parse_form(&[0xff, b'=', b'1']).is_err());
    }

    #[test]
    fn urls_and_numbers() {
        assert_eq!(join_url("http://h:1/", "/a/b"), "http://h:1/a/b");
        assert_eq!(join_url("http://h:1", "a"), "http://h:1/a");
        assert_eq!(digits_only("+237650000000"), "237650000000");
        let value = serde_json::json!({"a": "x", "b": 12, "c": true, "d": ""});
        assert_eq!(json_text(&value, "a").as_deref(), Some("x"));
        assert_eq!(json_text(&value, "b").as_deref(), Some("12"));
        assert_eq!(json_text(&value, "c"), None);
        assert_eq!(json_text(&value, "d"), None);
        assert_eq!(json_text(&value, "e"), None);
    }
}
