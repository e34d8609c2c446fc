//! `Request`: the parsed view of one incoming request that handlers work with.
//!
//! It owns the body rules a handler applies: the media type (415), the size limit (413 for a body
//! the edge read past the limit), JSON syntax (400 `invalid_json`) and JSON shape (422 with the
//! failing field). The edge (`edge.rs`) has read the body before the handler runs.

use crate::ids::WorkspaceId;
use std::net::IpAddr;

use serde::de::DeserializeOwned;

use crate::auth::buckets::{Allowance, Buckets, Rate};
use crate::error::{AppError, FieldErrors};
use crate::web::exchange::{Incoming, RequestBody, SpooledBody};
use crate::web::response::{ApiResponse, JsonPage};
use crate::web::router::Method;

pub struct Request<'a> {
    incoming: &'a Incoming,
    method: Option<Method>,
    params: Vec<(&'static str, String)>,
    request_id: String,
    max_body_bytes: u64,
    /// The workspace the request acted in, once authentication knows it (for the log line).
    workspace_id: std::cell::RefCell<Option<String>>,
    /// The rate limit the request was counted against, for the response's `RateLimit` headers.
    rate_limit: std::cell::Cell<Option<Limited>>,
    /// The query parameters the handler asked for (`query_param`), or every one (`query_pairs`):
    /// what a GET of the API was sent beyond them it did not read (`unread_query_params`).
    read_params: std::cell::RefCell<QueryReads>,
}

/// Which query parameters a handler read.
#[derive(Debug, Default)]
struct QueryReads {
    names: Vec<String>,
    all: bool,
}

/// A request counted against a bucket: which policy, and what it found there.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    /// `api` (per key) or `public` (per client IP).
    pub policy: &'static str,
    pub rate: Rate,
    pub allowance: Allowance,
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        incoming: &'a Incoming,
        request_id: String,
        max_body_bytes: u64,
    ) -> Request<'a> {
        Request {
            incoming,
            method: Method::parse(incoming.method.as_str()),
            params: Vec::new(),
            request_id,
            max_body_bytes,
            workspace_id: std::cell::RefCell::new(None),
            rate_limit: std::cell::Cell::new(None),
            read_params: std::cell::RefCell::new(QueryReads::default()),
        }
    }

    /// The method, or `None` for one the API never uses (`OPTIONS`, `TRACE`, …).
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.incoming.uri.path()
    }

    /// The raw query string (after `?`), possibly empty.
    pub fn query(&self) -> &str {
        self.incoming.uri.query().unwrap_or("")
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Records the workspace the request acts in, for the request's log line.
    pub fn note_workspace(&self, workspace_id: &WorkspaceId) {
        *self.workspace_id.borrow_mut() = Some(workspace_id.as_str().to_owned());
    }

    pub(crate) fn workspace_id(&self) -> Option<String> {
        self.workspace_id.borrow().clone()
    }

    /// Counts the request against `policy`'s bucket `key`, shaped `rate`: `Err(RateLimited)`
    /// when it is empty.
    /// Remembered for the response's headers either way; a limit that is off changes nothing.
    pub fn count_against(
        &self,
        (policy, buckets): (&'static str, &Buckets),
        rate: Rate,
        key: &str,
    ) -> Result<(), AppError> {
        let Some(allowance) = buckets.take_at(key, rate, std::time::Instant::now()) else {
            return Ok(());
        };
        self.rate_limit.set(Some(Limited {
            policy,
            rate,
            allowance,
        }));
        if allowance.allowed {
            Ok(())
        } else {
            Err(AppError::RateLimited {
                retry_after_secs: allowance.retry_after_secs,
            })
        }
    }

    pub(crate) fn rate_limit(&self) -> Option<Limited> {
        self.rate_limit.get()
    }

    pub(crate) fn set_params(&mut self, params: Vec<(&'static str, String)>) {
        self.params = params;
    }

    /// A `{name}` captured from the path template. Handlers only ask for names their template
    /// has, so a missing one is an empty string rather than a panic.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(key, _)| *key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// The first value of header `name` (case-insensitive). A value that is not UTF-8 reads as
    /// absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// Every header as (name, value), names in lower case, values of one name in the order sent
    /// (for signature checks that need them).
    pub fn headers(&self) -> Vec<(String, String)> {
        self.incoming
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let value = std::str::from_utf8(value.as_bytes()).ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// How many times header `name` appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.incoming.headers.get_all(name).iter().count()
    }

    fn values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.incoming
            .headers
            .get_all(name)
            .into_iter()
            .filter_map(|value| std::str::from_utf8(value.as_bytes()).ok())
    }

    /// The value of cookie `name`, if the request carries it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.values("cookie")
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }

    /// The client's IP address. Behind a reverse proxy listed in `trusted_proxies`, that is the
    /// nearest address in `X-Forwarded-For` that is not itself a trusted proxy; otherwise the
    /// socket's peer. A client cannot spoof it: entries are only believed when they come from a
    /// trusted proxy.
    pub fn client_ip(&self, trusted_proxies: &[IpAddr]) -> String {
        let peer = self.incoming.peer.ip();
        if !trusted_proxies.contains(&peer) {
            return peer.to_string();
        }
        let forwarded: Vec<IpAddr> = self
            .values("x-forwarded-for")
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted_proxies.contains(ip))
            .unwrap_or(peer)
            .to_string()
    }

    /// Whether the method changes state (everything but GET and HEAD).
    pub fn is_mutation(&self) -> bool {
        !matches!(self.method, Some(Method::Get | Method::Head))
    }

    /// The decoded value of query parameter `name` (the first, if repeated).
    pub fn query_param(&self, name: &str) -> Option<String> {
        {
            let mut reads = self.read_params.borrow_mut();
            if !reads.names.iter().any(|read| read == name) {
                reads.names.push(name.to_owned());
            }
        }
        self.query()
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| percent_decode(key) == name)
            .map(|(_, value)| percent_decode(value))
    }

    /// Query parameter `name` as an RFC 3339 instant, in the stored form (UTC, milliseconds);
    /// one that is not is added to `fields` and read as absent.
    pub fn timestamp_param(&self, name: &str, fields: &mut FieldErrors) -> Option<String> {
        let text = self.query_param(name)?;
        match crate::clock::parse_timestamp(&text) {
            Some(at) => Some(crate::clock::format_timestamp(at)),
            None => {
                fields.add(name, "must be an RFC 3339 timestamp");
                None
            }
        }
    }

    /// `?limit=` (1–100, default 50) and `?cursor=` of a list endpoint.
    pub fn page(&self) -> Result<PageRequest, AppError> {
        let limit = match self.query_param("limit") {
            None => DEFAULT_PAGE_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => limit,
                _ => {
                    return Err(AppError::invalid_field(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_PAGE_LIMIT}"),
                    ));
                }
            },
        };
        let cursor = self
            .query_param("cursor")
            .filter(|cursor| !cursor.is_empty());
        Ok(PageRequest { limit, cursor })
    }

    /// The body (at most `max_body_bytes`; the edge read it before the handler ran). A body over
    /// the limit is 413.
    pub fn body_bytes(&mut self) -> Result<Vec<u8>, AppError> {
        match &self.incoming.body {
            RequestBody::Complete(body) => Ok(body.clone()),
            RequestBody::TooLarge => Err(AppError::PayloadTooLarge {
                limit_bytes: self.max_body_bytes,
            }),
            RequestBody::Spooled(_) => Err(AppError::BadRequest(
                "This endpoint takes no file upload.".to_owned(),
            )),
            // Refused before routing; a handler never sees one.
            RequestBody::Unread(_) => Err(AppError::BadRequest(
                "The request body could not be read completely.".to_owned(),
            )),
        }
    }

    /// The body the edge streamed to disk (the import upload); a route whose body was read into
    /// memory instead was not sent as `text/csv`.
    pub fn spooled_body(&self) -> Result<&SpooledBody, AppError> {
        match &self.incoming.body {
            RequestBody::Spooled(spooled) => Ok(spooled),
            RequestBody::TooLarge => Err(AppError::PayloadTooLarge {
                limit_bytes: self.max_body_bytes,
            }),
            _ => Err(AppError::UnsupportedMediaType {
                expected: "text/csv",
            }),
        }
    }

    /// Every query parameter, decoded, in the order sent.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.read_params.borrow_mut().all = true;
        self.decoded_query_pairs()
    }

    /// The query parameters sent that the handler did not ask for (none once it read them all),
    /// in the order sent: a GET of the API refuses them (`exchange::dispatch`), so a misspelled
    /// filter (`?unsubscibed=`) is not silently ignored.
    pub fn unread_query_params(&self) -> Vec<String> {
        let reads = self.read_params.borrow();
        if reads.all {
            return Vec::new();
        }
        let mut unread: Vec<String> = Vec::new();
        for (name, _) in self.decoded_query_pairs() {
            if !reads.names.contains(&name) && !unread.contains(&name) {
                unread.push(name);
            }
        }
        unread
    }

    fn decoded_query_pairs(&self) -> Vec<(String, String)> {
        self.query()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect()
    }

    /// Decodes a JSON body into `T`. Checks, in order: the media type (415), the size limit
    /// (413), JSON syntax (400) and the shape `T` expects (422 naming the field). A declared
    /// length over the limit never gets this far: the edge answers 413 without reading it.
    pub fn json<T: DeserializeOwned>(&mut self) -> Result<T, AppError> {
        if !self.header("Content-Type").is_some_and(is_json_media_type) {
            return Err(AppError::UnsupportedMediaType {
                expected: "application/json",
            });
        }
        let body = self.body_bytes()?;
        decode_json(&body)
    }

    /// For a route that reads no body (`Route::without_body`): none, or `{}`, passes; any other
    /// body is refused as `json` refuses it — 415 when it is not JSON, 400 when it does not
    /// parse, 422 naming a field sent (the first), since the route reads none of them.
    pub fn expect_no_fields(&mut self) -> Result<(), AppError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct NoFields {}
        self.json_or_default::<NoFields>().map(drop)
    }

    /// Like `json`, but a request without a body means `T::default()` (for endpoints whose
    /// fields are all optional, so `curl -X POST` without `-d` works).
    pub fn json_or_default<T: DeserializeOwned + Default>(&mut self) -> Result<T, AppError> {
        let has_body =
            !matches!(&self.incoming.body, RequestBody::Complete(body) if body.is_empty());
        if has_body {
            self.json()
        } else {
            Ok(T::default())
        }
    }
}

pub const DEFAULT_PAGE_LIMIT: usize = 50;
pub const MAX_PAGE_LIMIT: usize = 100;

/// One page of a list: at most `limit` items after the opaque `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// How many rows to fetch: one more than the page shows, to tell whether there is more.
    pub fn fetch(&self) -> usize {
        self.limit + 1
    }

    /// The rows to show of those fetched with `fetch()`, and the next page's cursor: the last
    /// shown row's id when a further row exists, else `None`. Views borrow from the rows, so
    /// build them from the rows returned here and answer with `page_response`.
    pub fn split<R>(
        &self,
        mut rows: Vec<R>,
        id_of: impl Fn(&R) -> &str,
    ) -> (Vec<R>, Option<String>) {
        let next_cursor = if rows.len() > self.limit {
            rows.truncate(self.limit);
            rows.last().map(|row| id_of(row).to_owned())
        } else {
            None
        };
        (rows, next_cursor)
    }
}

/// 200 `{"data": [...], "next_cursor": …}`.
pub fn page_response<V: serde::Serialize>(
    data: &[V],
    next_cursor: Option<String>,
) -> Result<ApiResponse, AppError> {
    JsonPage::of_items(data, next_cursor.as_deref())
}

/// Decodes `%XX` escapes and `+` (space) of a query component; invalid escapes stay as typed.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && text.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `application/json`, optionally with `charset=utf-8`; any other charset is refused because the
/// API speaks UTF-8 only.
fn is_json_media_type(value: &str) -> bool {
    let mut parts = value.split(';').map(str::trim);
    let essence_ok = parts
        .next()
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/json"));
    essence_ok
        && parts.all(|parameter| match parameter.split_once('=') {
            Some((name, charset)) if name.trim().eq_ignore_ascii_case("charset") => charset
                .trim()
                .trim_matches('"')
                .eq_ignore_ascii_case("utf-8"),
            _ => true,
        })
}

/// Two-step decoding so the client learns which kind of mistake it made: first the syntax, then
/// the shape, with the path of the failing field.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::InvalidJson("the body is empty".to_owned()));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| AppError::InvalidJson(err.to_string()))?;
    // Every request body of the API is an object. serde would also accept an array for a struct
    // (fields by position), which no client means.
    if !value.is_object() {
        return Err(AppError::invalid_field("body", "must be a JSON object"));
    }
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let (field, reason) = describe_shape_error(&path, &err.inner().to_string());
        let mut fields = FieldErrors::new();
        fields.add(field, reason);
        AppError::Validation(fields)
    })
}

/// Turns serde's sentence into (field, reason). serde reports a missing or unknown field at the
/// parent's path with the name inside the message, so the name is moved into the field path.
fn describe_shape_error(path: &str, message: &str) -> (String, String) {
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted_name = |rest: &str| rest.split('`').nth(1).map(str::to_owned);
    if let Some(name) = message.strip_prefix("missing field ").and_then(quoted_name) {
        return (join(&name), "is required".to_owned());
    }
    if let Some(name) = message.strip_prefix("unknown field ").and_then(quoted_name) {
        let expected = message
            .split_once(", expected ")
            .map(|(_, expected)| format!(" (expected {expected})"))
            .unwrap_or_default();
        // For unknown fields serde_path_to_error's path already ends with the field's name.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_owned()
        } else {
            join(&name)
        };
        return (field, format!("is not a known field{expected}"));
    }
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    (field, in_json_words(message))
}

/// JSON has one kind of number: `5.0` is the integer 5 (JSON Schema agrees), but serde refuses a
/// float for an integer field. Every number without a fraction, in range, becomes an integer.
/// The idempotency fingerprint reads bodies the same way (`web::idempotency::fingerprint`).
pub fn integral_floats_to_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) if number.is_f64() => {
            let Some(float) = number.as_f64() else { return };
            // 2^63: beyond it i64 cannot hold the value; a negative one is held by i64 too.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if float.fract() == 0.0 && float.abs() < LIMIT {
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                *value = serde_json::Value::from(integer);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// serde's sentences name Rust types ("expected u32", "expected struct Draft", "floating
/// point"); the client knows JSON, not Rust, so those words are replaced by JSON's.
fn in_json_words(message: &str) -> String {
    let (head, expected) = match message.rsplit_once("expected ") {
        Some((head, expected)) => (head, expected),
        None => (message, ""),
    };
    let head = head.replace("floating point `", "number `");
    if expected.is_empty() {
        return head;
    }
    let range = |min: &str, max: &str| format!("a whole number from {min} to {max}");
    let plain = match expected {
        "u8" => range("0", "255"),
        "u16" => range("0", "65535"),
        "u32" => range("0", "4294967295"),
        // The widest integers hold amounts and counts whose real bounds the operation states
        // once the value is read (±10¹² for money): the machine's 64-bit range would only mislead.
        "u64" | "usize" => "a whole number from 0 to about 1.8 × 10^19".to_owned(),
        "i8" => range("-128", "127"),
        "i16" => range("-32768", "32767"),
        "i32" => range("-2147483648", "2147483647"),
        "i64" | "isize" => "a whole number from about -9.2 × 10^18 to 9.2 × 10^18".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a map" => "a JSON object".to_owned(),
        "a sequence" => "a JSON array".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("map ") => {
            "a JSON object".to_owned()
        }
        other if other.starts_with("tuple struct ") || other.starts_with("tuple ") => {
            "a JSON array".to_owned()
        }
        other if other.starts_with("struct variant ") => "a JSON object".to_owned(),
        other
            if other.starts_with("enum ")
                || other.contains("tagged enum ")
                || other.ends_with(" identifier") =>
        {
            "one of the documented values".to_owned()
        }
        other => other.to_owned(),
    };
    format!("{head}expected {plain}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        count: u32,
    }

    fn fields_of(body: &str) -> Vec<(String, String)> {
        match decode_json::<Body>(body.as_bytes()) {
            Err(AppError::Validation(fields)) => {
                fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for body in ["", "  ", "{", "{\"name\": }", "nul", "\u{feff}{}"] {
            let err = decode_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "invalid_json", "{body:?}");
        }
        let err = decode_json::<Body>(&[0xff, 0xfe]).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(
            fields_of(r#"{"items": []}"#),
            vec![("name".into(), "is required".into())]
        );
        assert_eq!(
            fields_of(r#"{"name": 5, "items": []}"#),
            vec![(
                "name".into(),
                "invalid type: integer `5`, expected a string".into()
            )]
        );
        assert_eq!(
            fields_of(r#"{"name": "a", "items": [{"count": 1}, {"count": -1}]}"#),
            vec![(
                "items[1].count".into(),
                "invalid value: integer `-1`, expected a whole number from 0 to 4294967295".into()
            )]
        );
        assert_eq!(
            fields_of(r#"{"name": "a", "items": [{"count": 1.5}]}"#),
            vec![(
                "items[0].count".into(),
                "invalid type: number `1.5`, expected a whole number from 0 to 4294967295".into()
            )]
        );
        assert_eq!(
            fields_of(r#"{"name": "a", "items": {"count": 1}}"#),
            vec![(
                "items".into(),
                "invalid type: map, expected a JSON array".into()
            )]
        );
        assert_eq!(
            fields_of(r#"{"name": "a", "items": [{}]}"#),
            vec![("items[0].count".into(), "is required".into())]
        );
        assert_eq!(
            fields_of(r#"{"name": "a", "items": [], "nmae": 1}"#),
            vec![(
                "nmae".into(),
                "is not a known field (expected `name` or `items`)".into()
            )]
        );
        for not_an_object in ["[\"a\", []]", "\"text\"", "42", "null"] {
            assert_eq!(
                fields_of(not_an_object),
                vec![("body".into(), "must be a JSON object".into())],
                "{not_an_object}"
            );
        }
    }

    #[test]
    fn a_number_without_a_fraction_is_an_integer() {
        let body =
            decode_json::<Body>(br#"{"name": "a", "items": [{"count": 7.0}, {"count": 1e2}]}"#)
                .unwrap();
        assert_eq!(body.items, vec![Item { count: 7 }, Item { count: 100 }]);
    }

    #[test]
    fn no_reason_names_a_rust_type() {
        for (message, plain) in [
            (
                "invalid type: floating point `1637.5`, expected i64",
                "invalid type: number `1637.5`, expected a whole number from about -9.2 × 10^18 to 9.2 × 10^18",
            ),
            (
                "invalid type: string \"x\", expected struct Draft",
                "invalid type: string \"x\", expected a JSON object",
            ),
            (
                "invalid type: sequence, expected a map",
                "invalid type: sequence, expected a JSON object",
            ),
            (
                "invalid type: string \"x\", expected enum Channel",
                "invalid type: string \"x\", expected one of the documented values",
            ),
            (
                "invalid type: integer `5`, expected a string",
                "invalid type: integer `5`, expected a string",
            ),
            (
                "invalid value: integer `300`, expected u8",
                "invalid value: integer `300`, expected a whole number from 0 to 255",
            ),
            (
                "invalid type: string \"x\", expected internally tagged enum Rule",
                "invalid type: string \"x\", expected one of the documented values",
            ),
            (
                "invalid type: map, expected variant identifier",
                "invalid type: map, expected one of the documented values",
            ),
        ] {
            assert_eq!(in_json_words(message), plain);
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("key_01%3A"), "key_01:");
    }

    #[test]
    fn json_media_types() {
        let cases = [
            ("application/json", true),
            ("Application/JSON", true),
            ("application/json; charset=utf-8", true),
            ("application/json;charset=\"UTF-8\"", true),
            ("application/json; charset=latin1", false),
            ("text/plain", false),
            ("application/jsonp", false),
            ("", false),
        ];
        for (value, expected) in cases {
            assert_eq!(is_json_media_type(value), expected, "{value:?}");
        }
    }
}
