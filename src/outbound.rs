//! Calls crier makes to other services (SMS and email providers, payment providers): one
//! synchronous HTTP client (ureq, one connection pool, the configured timeout on every call),
//! posting JSON or a form, a plain GET, transport failures classified without quoting URLs, and
//! small helpers those adapters share (URL joining, Basic auth, HMAC, form decoding, redaction).
//!
//! Nothing here puts a URL, a header or a request body into an error message: URLs can carry
//! credentials (AvlyText's `api_key` query parameter), and bodies carry message text.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// A call that got no answer at all: timeout, refused connection, TLS, a URL that is not one.
/// `code` is stable (`timeout`, `network`, `config`, `bad_response`); `message` names the kind of
/// failure only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub code: String,
    pub message: String,
}

impl TransportError {
    fn new(code: &str, message: impl Into<String>) -> TransportError {
        TransportError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// How much of another service's own error text goes into a message.
const MAX_DETAIL_CHARS: usize = 300;

/// Bodies larger than this are not provider answers we could use; reading stops there.
const MAX_REPLY_BYTES: u64 = 1024 * 1024;

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
    /// only a transport failure (timeout, refused connection, TLS) is an `Err`.
    pub fn post(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<HttpReply, TransportError> {
        let response = self
            .send_post(url, query, headers, payload)
            .map_err(|error| transport_error(&error))?;
        read_reply(response)
    }

    /// POSTs `payload` to a webhook endpoint (a client from `guarded_client`): like `post`, with a
    /// refusal by the target policy told apart (`forbidden_target`).
    pub fn post_guarded(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<HttpReply, TransportError> {
        let response = self
            .send_post(url, &[], headers, payload)
            .map_err(|error| guarded_error(&error))?;
        read_reply(response)
    }

    /// The POST both `post` and `post_guarded` make; they differ only in how they name a failure.
    fn send_post(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut request = self.agent.post(url);
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match payload {
            Payload::Json(body) => request
                .header("Content-Type", "application/json")
                .send(&body[..]),
            Payload::Form(fields) => request.send_form(fields),
        }
    }

    /// GETs `url` with the `query` parameters (percent-encoded here, like `post`) and `headers`.
    /// Any status is an `HttpReply`; only a transport failure is an `Err`, already classified.
    pub fn get(
        &self,
        url: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<HttpReply, TransportError> {
        let mut request = self.agent.get(url);
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.call().map_err(|error| transport_error(&error))?;
        read_reply(response)
    }
}

/// Which targets a webhook may reach: the operator's choice (`--webhook-allow-private`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Whether loopback, private, link-local and the cloud metadata addresses may be reached.
    pub allow_private: bool,
}

/// Whether `ip` is one a webhook must not reach unless the operator allows private targets:
/// unspecified, loopback, private (RFC 1918, IPv6 unique local), link-local (with the cloud
/// metadata address 169.254.169.254), carrier-grade NAT, multicast, broadcast, documentation,
/// and IPv4 addresses written as IPv6 (mapped or compatible) judged as IPv4. `fd00:ec2::254`
/// (the EC2 IPv6 metadata address) is unique local.
pub fn is_private_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4() {
                return is_private_target(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

/// The resolver of webhook calls: resolves the host, keeps only the addresses the policy allows
/// and hands ureq exactly those, so the address checked is the address connected to (DNS cannot
/// answer differently between the check and the connection). A host with no allowed address is
/// refused with `PermissionDenied`, which `guarded_error` names.
#[derive(Debug)]
struct GuardedResolver {
    policy: TargetPolicy,
}

impl ureq::unversioned::resolver::Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let resolved: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        if resolved.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        let mut result = self.empty();
        for addr in resolved {
            if self.policy.allow_private || !is_private_target(addr.ip()) {
                // At most 16 kept; the rest are not needed to connect.
                let _ = result.try_push(addr);
            }
        }
        if result.is_empty() {
            return Err(ureq::Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "private address",
            )));
        }
        Ok(result)
    }
}

/// The client of webhook deliveries: every address checked against `policy` as the connection is
/// made, no redirects followed (a 3xx is an answer like any other), no proxy from the
/// environment, each call bounded by `timeout`.
pub fn guarded_client(timeout: Duration, policy: TargetPolicy) -> HttpClient {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        GuardedResolver { policy },
    );
    HttpClient { agent }
}

/// A transport failure of a webhook call, with a refusal by the target policy told apart.
pub fn guarded_error(error: &ureq::Error) -> TransportError {
    match error {
        ureq::Error::Io(io_error) if io_error.kind() == io::ErrorKind::PermissionDenied => {
            TransportError::new(
                "forbidden_target",
                "the URL resolves to a private, loopback or link-local address only",
            )
        }
        other => {
            let failure = transport_error(other);
            TransportError {
                message: failure.message.replace("the provider", "the endpoint"),
                ..failure
            }
        }
    }
}

/// Reads an answer's status and (bounded, lossily decoded) body.
fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> Result<HttpReply, TransportError> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|error| transport_error(&error))?;
    Ok(HttpReply { status, body })
}

/// Classifies a failure to get an answer at all. Every one is worth another try: the request was
/// not refused, the other side was not heard. Messages name the kind of failure only, never ureq's own
/// text, which can quote the URL.
pub fn transport_error(error: &ureq::Error) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => timeout_error(),
        ureq::Error::Io(io_error) if io_error.kind() == io::ErrorKind::TimedOut => timeout_error(),
        // The guarded client's refusal (a provider account's URL; see `guarded_client`).
        ureq::Error::Io(io_error) if io_error.kind() == io::ErrorKind::PermissionDenied => {
            TransportError::new(
                "forbidden_target",
                "the provider URL resolves to a private, loopback or link-local address only",
            )
        }
        ureq::Error::Io(io_error) => TransportError::new(
            "network",
            format!("could not reach the provider: {}", io_error.kind()),
        ),
        ureq::Error::HostNotFound => {
            TransportError::new("network", "could not reach the provider: host not found")
        }
        ureq::Error::ConnectionFailed => {
            TransportError::new("network", "could not reach the provider: connection failed")
        }
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            TransportError::new("network", "could not reach the provider: TLS failure")
        }
        // An operator fix (the configured URL), not the message's fault: the next provider can
        // still succeed.
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            TransportError::new("config", "the provider URL is not a valid URL")
        }
        ureq::Error::BodyExceedsLimit(_) | ureq::Error::LargeResponseHeader(..) => {
            TransportError::new("bad_response", "the provider's answer is too large")
        }
        ureq::Error::Protocol(_) => {
            TransportError::new("network", "the provider's answer is not valid HTTP")
        }
        _ => TransportError::new("network", "the provider call failed in transport"),
    }
}

fn timeout_error() -> TransportError {
    TransportError::new("timeout", "the provider did not answer within the timeout")
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

/// `base` and `path` joined with exactly one slash, whatever the configured base ends with.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
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
    fn transport_failures_are_retryable() {
        let timeout = transport_error(&ureq::Error::Timeout(ureq::Timeout::Global));
        assert_eq!(timeout.code, "timeout");
        let refused = transport_error(&ureq::Error::Io(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(refused.code, "network");
        let bad_uri = transport_error(&ureq::Error::BadUri("http://x/?api_key=secret".to_owned()));
        assert!(!bad_uri.message.contains("secret"));
        assert_eq!(bad_uri.code, "config");
    }

    #[test]
    fn private_targets_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_private_target(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1::1",
            "172.32.0.1",
        ] {
            assert!(!is_private_target(public.parse().unwrap()), "{public}");
        }
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
        let value = serde_json::json!({"a": "x", "b": 12, "c": true, "d": ""});
        assert_eq!(json_text(&value, "a").as_deref(), Some("x"));
        assert_eq!(json_text(&value, "b").as_deref(), Some("12"));
        assert_eq!(json_text(&value, "c"), None);
        assert_eq!(json_text(&value, "d"), None);
        assert_eq!(json_text(&value, "e"), None);
    }
}
