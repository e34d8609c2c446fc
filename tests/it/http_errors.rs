//! The HTTP layer's error paths: every one answers in the single envelope with a request id.
//! The routes under `/test/` exist only in these tests, to reach the body-decoding edge and a
//! panicking handler; the product's own routes are `Router::standard()`.

use std::time::Duration;

use crier::app::App;
use crier::error::{AppError, FieldErrors};
use crier::web::request::Request;
use crier::web::response::ApiResponse;
use crier::web::router::{Method, Route, Router};
use serde::Deserialize;

use crate::harness::{TestServer, logs, open_connection, read_head, read_response, send_raw};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoBody {
    name: String,
    count: u32,
}

fn echo(_app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let body: EchoBody = request.json()?;
    let mut fields = FieldErrors::new();
    if body.name.is_empty() || body.name.chars().count() > 20 {
        fields.add("name", "must be 1 to 20 characters");
    }
    if !(1..=10).contains(&body.count) {
        fields.add("count", "must be from 1 to 10");
    }
    fields.into_result()?;
    ApiResponse::json(
        201,
        &serde_json::json!({"name": body.name, "count": body.count}),
    )
}

fn panics(_app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    panic!("secret internal detail: connection string postgres://admin:hunter2@db");
}

fn test_router() -> Router {
    Router::standard()
        .with_route(Route::new(Method::Post, "/test/echo", echo))
        .with_route(Route::new(Method::Get, "/test/panic", panics))
}

fn server() -> TestServer {
    TestServer::start_with(|_| {}, test_router())
}

#[test]
fn a_valid_json_body_reaches_the_handler() {
    let server = server();
    let response = server.post_json("/test/echo", r#"{"name": "ada", "count": 3}"#);
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(
        response.json(),
        serde_json::json!({"name": "ada", "count": 3})
    );
}

#[test]
fn unknown_route_is_404() {
    let server = server();
    let body = server
        .get("/v1/nothing-here")
        .assert_error(404, "not_found");
    assert!(body["error"].get("details").is_none());
    server.get("/healthz/").assert_error(404, "not_found");
}

#[test]
fn wrong_method_is_405_with_allow() {
    let server = server();
    for method in ["POST", "DELETE", "OPTIONS"] {
        let response = server.request(method, "/healthz", &[], b"");
        let body = response.assert_error(405, "method_not_allowed");
        assert_eq!(response.header("Allow"), Some("GET, HEAD"), "{method}");
        assert_eq!(
            body["error"]["details"]["allowed_methods"],
            serde_json::json!(["GET", "HEAD"])
        );
    }
    let response = server.request("GET", "/test/echo", &[], b"");
    response.assert_error(405, "method_not_allowed");
    assert_eq!(response.header("Allow"), Some("POST"));
}

#[test]
fn head_is_answered_by_the_get_route_without_a_body() {
    let server = server();
    // Pipelined: if HEAD wrongly carried a body, the GET's status line would not come next.
    let mut reader = open_connection(
        server.addr,
        b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let (status, headers) = read_head(&mut reader);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("X-Request-Id")),
        "{headers:?}"
    );
    let get = read_response(&mut reader);
    assert_eq!(get.status, 200);
    assert_eq!(get.json(), serde_json::json!({"status": "ok"}));
}

#[test]
fn wrong_content_type_is_415() {
    let server = server();
    let body = br#"{"name": "ada", "count": 3}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
    ] {
        server
            .request(
                "POST",
                "/test/echo",
                &[("Content-Type", content_type)],
                body,
            )
            .assert_error(415, "unsupported_media_type");
    }
    server
        .request("POST", "/test/echo", &[], body)
        .assert_error(415, "unsupported_media_type");
}

#[test]
fn malformed_json_is_400() {
    let server = server();
    for body in ["", "{", r#"{"name": "ada",}"#, "not json"] {
        let envelope = server
            .post_json("/test/echo", body)
            .assert_error(400, "invalid_json");
        assert!(
            envelope["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("The request body is not valid JSON"),
            "{envelope}"
        );
    }
}

#[test]
fn wrong_shape_is_422_naming_the_field() {
    let server = server();
    let cases = [
        (r#"{"count": 3}"#, "name", "is required"),
        (
            r#"{"name": 7, "count": 3}"#,
            "name",
            "invalid type: integer `7`, expected a string",
        ),
        (
            r#"{"name": "ada", "count": 3, "cuont": 1}"#,
            "cuont",
            "is not a known field (expected `name` or `count`)",
        ),
        (r#"["ada", 3]"#, "body", "must be a JSON object"),
    ];
    for (body, field, reason) in cases {
        let envelope = server
            .post_json("/test/echo", body)
            .assert_error(422, "validation_failed");
        assert_eq!(
            envelope["error"]["details"]["fields"],
            serde_json::json!({ field: reason }),
            "{body}"
        );
    }
}

/// Found by the fuzzer (tests/fuzz/run.sh): `1637.0` is an integer to JSON Schema, and a count
/// in the wrong type or range is described in JSON's words, never by a Rust type (`u32`, `i64`).
#[test]
fn numbers_are_judged_as_json_numbers() {
    let server = server();
    let response = server.post_json("/test/echo", r#"{"name": "ada", "count": 3.0}"#);
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(response.json()["count"], 3);
    let cases = [
        (
            r#"{"name": "ada", "count": 3.5}"#,
            "invalid type: number `3.5`, expected a whole number from 0 to 4294967295",
        ),
        (
            r#"{"name": "ada", "count": -1}"#,
            "invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
        ),
        (
            r#"{"name": "ada", "count": 5000000000}"#,
            "invalid value: integer `5000000000`, expected a whole number from 0 to 4294967295",
        ),
    ];
    for (body, reason) in cases {
        let envelope = server
            .post_json("/test/echo", body)
            .assert_error(422, "validation_failed");
        assert_eq!(
            envelope["error"]["details"]["fields"],
            serde_json::json!({ "count": reason }),
            "{body}"
        );
    }
}

/// The product's own bodies, given JSON of the wrong shape: every reason is in JSON's words,
/// none names a Rust type (`i64`, `u32`, `struct …`, `enum …`, `a map`, `floating point`).
#[test]
fn no_422_reason_names_a_rust_type() {
    let server = server();
    let console = crate::auth_fixtures::setup(&server);
    let (key_id, _) = crate::auth_fixtures::create_key(&console, &["contacts:read"], "live");
    let cases = [
        (
            format!("/v1/api-keys/{key_id}/rotate"),
            serde_json::json!({"grace_seconds": 1.5}),
        ),
        (
            format!("/v1/api-keys/{key_id}/rotate"),
            serde_json::json!({"grace_seconds": "soon"}),
        ),
        (
            "/v1/contacts".to_owned(),
            serde_json::json!({"name": {"first": "Ada"}}),
        ),
        (
            "/v1/contacts".to_owned(),
            serde_json::json!({"name": "Ada", "custom": []}),
        ),
        (
            "/v1/segments/preview".to_owned(),
            serde_json::json!({"rules": "language is fr"}),
        ),
        (
            "/v1/segments/preview".to_owned(),
            serde_json::json!({"rules": {"all": [{"field": "language", "op": {}, "value": "fr"}]}}),
        ),
        (
            "/v1/campaigns".to_owned(),
            serde_json::json!({"name": "N", "channel": "sms", "audience": [1]}),
        ),
        (
            "/v1/messages".to_owned(),
            serde_json::json!({"channel": {"sms": true}, "to": "+237677123456", "text": "Hi"}),
        ),
        (
            format!(
                "/v1/admin/workspaces/{}/wallet-adjustments",
                console.workspace_id()
            ),
            serde_json::json!({"amount_minor": 1e30, "reason": "r"}),
        ),
    ];
    let rust_types = [
        "i8",
        "i16",
        "i32",
        "i64",
        "u8",
        "u16",
        "u32",
        "u64",
        "usize",
        "isize",
        "f32",
        "f64",
        "struct",
        "enum",
        "identifier",
    ];
    let rust_phrases = ["a map", "a sequence", "floating point"];
    for (path, body) in &cases {
        let envelope = console
            .post(path, body)
            .assert_error(422, "validation_failed");
        let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
        assert!(!fields.is_empty(), "{path} {body}: {envelope}");
        for reason in fields.values() {
            let reason = reason.as_str().unwrap();
            let words: Vec<&str> = reason.split(|c: char| !c.is_ascii_alphanumeric()).collect();
            for word in rust_types {
                assert!(
                    !words.contains(&word),
                    "{path} {body}: {reason:?} names {word:?}"
                );
            }
            for phrase in rust_phrases {
                assert!(
                    !reason.contains(phrase),
                    "{path} {body}: {reason:?} says {phrase:?}"
                );
            }
        }
    }
}

/// Found by the fuzzer: `/v1/contacts/export` also matched `/v1/contacts/{id}`, so its 405
/// advertised PATCH and DELETE (which then treated `export` as a contact id).
#[test]
fn a_literal_path_is_not_taken_for_an_id() {
    let server = server();
    for method in ["PATCH", "DELETE", "POST", "OPTIONS"] {
        let response = server.request(method, "/v1/contacts/export", &[], b"");
        let body = response.assert_error(405, "method_not_allowed");
        assert_eq!(response.header("Allow"), Some("GET, HEAD"), "{method}");
        assert_eq!(
            body["error"]["details"]["allowed_methods"],
            serde_json::json!(["GET", "HEAD"])
        );
    }
    let response = server.request("DELETE", "/v1/contacts/imports", &[], b"");
    response.assert_error(405, "method_not_allowed");
    assert_eq!(response.header("Allow"), Some("POST, GET, HEAD"));
}

#[test]
fn validation_reports_every_invalid_field() {
    let server = server();
    let envelope = server
        .post_json("/test/echo", r#"{"name": "", "count": 11}"#)
        .assert_error(422, "validation_failed");
    assert_eq!(
        envelope["error"]["details"]["fields"],
        serde_json::json!({
            "name": "must be 1 to 20 characters",
            "count": "must be from 1 to 10"
        })
    );
}

#[test]
fn a_body_over_the_limit_is_413_without_being_read() {
    let server = TestServer::start_with(|config| config.max_body_bytes = 2048, test_router());
    // Declare one byte more than the limit but send none of it: an answer arrives anyway (the
    // client would time out otherwise), which proves the server did not wait for the body.
    let response = send_raw(
        server.addr,
        b"POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2049\r\n\r\n",
    );
    let envelope = response.assert_error(413, "payload_too_large");
    assert_eq!(envelope["error"]["details"]["limit_bytes"], 2048);

    // Exactly at the limit is accepted as far as size goes (and then judged as JSON).
    let at_limit = format!(r#"{{"name": "{}", "count": 1}}"#, "x".repeat(2048 - 24));
    assert_eq!(at_limit.len(), 2048);
    server
        .post_json("/test/echo", &at_limit)
        .assert_error(422, "validation_failed");
}

#[test]
fn a_declared_body_over_the_limit_is_413_on_any_route() {
    let server = TestServer::start_with(|config| config.max_body_bytes = 2048, test_router());
    for target in ["GET /healthz", "POST /nowhere", "POST /test/echo"] {
        let request = format!(
            "{target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 4096\r\n\r\n"
        );
        send_raw(server.addr, request.as_bytes()).assert_error(413, "payload_too_large");
    }
}

/// A chunked body of three 1 KiB chunks, each holding text that looks like a request.
fn chunked_body_smuggling(request_id: &str) -> Vec<u8> {
    let smuggled = format!("GET /readyz HTTP/1.1\r\nHost: t\r\nX-Request-Id: {request_id}\r\n\r\n");
    let mut chunk = smuggled.into_bytes();
    chunk.resize(0x400, b' ');
    let mut body = Vec::new();
    for _ in 0..3 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

#[test]
fn a_chunked_body_over_the_limit_is_413_and_its_rest_is_never_a_request() {
    let server = TestServer::start_with(|config| config.max_body_bytes = 2048, test_router());
    for (head, expected) in [
        // Refused while reading: over the limit.
        (
            "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n",
            413,
        ),
        // Refused before reading: wrong media type, wrong method, no route.
        (
            "POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n",
            415,
        ),
        ("POST /healthz HTTP/1.1\r\nHost: t\r\n", 405),
        ("POST /nowhere HTTP/1.1\r\nHost: t\r\n", 404),
    ] {
        // Keep-alive, then a real second request pipelined after the chunked body.
        let mut bytes = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
        bytes.extend_from_slice(&chunked_body_smuggling("smuggled"));
        bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: second\r\nConnection: close\r\n\r\n");
        let mut reader = open_connection(server.addr, &bytes);
        let first = read_response(&mut reader);
        assert_eq!(first.status, expected, "{head:?}: {}", first.text());
        let second = read_response(&mut reader);
        assert_eq!(
            second.header("X-Request-Id"),
            Some("second"),
            "{head:?}: a smuggled request was served"
        );
        assert_eq!(second.status, 200);
    }
}

#[test]
fn an_absurd_declared_length_is_refused_and_the_server_survives() {
    let server = server();
    // An edge that drained the unread terabyte into one buffer of that size would abort the
    // process; crier answers 413 without reading it and closes the connection.
    for _ in 0..3 {
        let mut reader = open_connection(
            server.addr,
            b"POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{}",
        );
        let response = read_response(&mut reader);
        response.assert_error(413, "payload_too_large");
        assert_eq!(response.header("Connection"), Some("close"));
    }
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_panicking_handler_is_a_500_envelope_and_the_worker_survives() {
    let server = TestServer::start_with(
        |config| config.workers = std::num::NonZeroUsize::MIN,
        test_router(),
    );
    let response = server.get("/test/panic");
    let envelope = response.assert_error(500, "internal");
    let text = response.text();
    assert!(
        !text.contains("hunter2") && !text.contains("secret"),
        "{text}"
    );
    assert!(envelope["error"].get("details").is_none());

    // The operator's log has the cause, under the id the client was given.
    let request_id = response.header("X-Request-Id").unwrap();
    let lines = logs::for_request(request_id);
    let line = lines
        .iter()
        .find(|line| line.message == "request")
        .unwrap_or_else(|| panic!("no request line for {request_id}: {lines:?}"));
    assert_eq!(line.level, log::Level::Error);
    assert_eq!(line.fields["status"], "500");
    assert_eq!(line.fields["route"], "/test/panic");
    assert!(
        line.fields["detail"].starts_with("handler panicked: secret internal detail"),
        "{line:?}"
    );

    // The single worker is still there to serve the next requests.
    for _ in 0..3 {
        assert_eq!(server.get("/healthz").status, 200);
    }
    server.get("/test/panic").assert_error(500, "internal");
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn a_stalled_client_is_cut_off_and_the_worker_serves_the_next_request() {
    let server = TestServer::start_with(
        |config| {
            config.workers = std::num::NonZeroUsize::MIN;
            config.http_timeout = Duration::from_secs(1);
        },
        test_router(),
    );
    // Promises 2000 body bytes, sends 10, then goes silent, holding the only worker.
    let mut stalled = open_connection(
        server.addr,
        b"POST /test/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n{\"name\": ",
    );
    // The next client is served at once: the edge reads bodies, so the stalled one holds no
    // worker. The harness's own read timeout (20 s) would fail this test otherwise.
    assert_eq!(server.get("/healthz").status, 200);
    let refused = read_response(&mut stalled);
    refused.assert_error(408, "request_timeout");
}

#[test]
fn an_idle_connection_is_closed_after_the_timeout() {
    let server = TestServer::start_with(
        |config| config.http_timeout = Duration::from_secs(1),
        test_router(),
    );
    let mut idle = open_connection(server.addr, b"");
    let mut buf = [0u8; 64];
    // Closed by the server without an answer: it never sent a request.
    let read = std::io::Read::read(&mut idle, &mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..read]);
    assert_eq!(read, 0, "{text:?}");
}

#[test]
fn a_full_disk_is_503_unavailable_with_retry_after_and_a_retry_succeeds_once_there_is_room() {
    let server = TestServer::start();
    let owner = crate::auth_fixtures::setup(&server);
    // The writer's connection may not grow the file any further: SQLite answers SQLITE_FULL,
    // exactly as on a full disk.
    let limit = |pages: Option<i64>| {
        server
            .app()
            .db
            .write(|conn| {
                let pages = match pages {
                    Some(pages) => pages,
                    None => conn.query_row("PRAGMA page_count", [], |row| row.get(0))?,
                };
                Ok(
                    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                        row.get::<_, i64>(0)
                    })?,
                )
            })
            .unwrap()
    };
    let unlimited = limit(Some(i64::from(u32::MAX) - 1));
    limit(None);
    let note = "x".repeat(180);
    let mut refused = None;
    for n in 0..500 {
        let response = owner.post(
            "/v1/contacts",
            &serde_json::json!({"name": format!("{n} {note}"), "email": format!("c{n}@example.com")}),
        );
        match response.status {
            201 => continue,
            _ => {
                refused = Some(response);
                break;
            }
        }
    }
    let refused = refused.expect("the database never filled up");
    refused.assert_error(503, "unavailable");
    assert_eq!(refused.header("Retry-After"), Some("30"));
    assert!(!refused.text().contains("full"), "{}", refused.text());
    // A 503 tells the client to retry; the operator's log has it as a warning, not an error.
    let request_id = refused.header("X-Request-Id").unwrap();
    let line = logs::for_request(request_id)
        .into_iter()
        .find(|line| line.message == "request")
        .expect("a request line");
    assert_eq!(line.level, log::Level::Warn, "{line:?}");

    limit(Some(unlimited));
    let retried = owner.post(
        "/v1/contacts",
        &serde_json::json!({"name": "After", "email": "after@example.com"}),
    );
    assert_eq!(retried.status, 201, "{}", retried.text());
}

/// A GET of the API refuses a query parameter it does not read instead of ignoring it: a
/// misspelled filter (`?unsubscibed=sms` on the export) would otherwise widen the answer —
/// every contact exported — without a word. The parameters it does read still work, and a
/// refused request is an error like any other (400 `bad_request`, naming the parameter).
#[test]
fn a_query_parameter_an_api_get_does_not_read_is_refused() {
    let server = TestServer::start();
    let owner = crate::auth_fixtures::setup(&server);
    let (_, key) = crate::auth_fixtures::create_key(
        &owner,
        &["contacts:read", "contacts:write", "messages:read"],
        "test",
    );
    let get = |path: &str| crate::auth_fixtures::bearer(&server, &key, "GET", path, None);
    for path in [
        "/v1/contacts/export?unsubscibed=sms",
        "/v1/contacts?limit=10&pahe=2",
        "/v1/messages?stauts=queued",
    ] {
        let envelope = get(path).assert_error(400, "bad_request");
        let message = envelope["error"]["message"].as_str().unwrap();
        let name = path.rsplit('&').next().unwrap().rsplit('?').next().unwrap();
        let name = name.split('=').next().unwrap();
        assert!(message.contains(&format!("`{name}`")), "{path}: {message}");
    }
    for path in [
        "/v1/contacts/export?unsubscribed=sms",
        "/v1/contacts?limit=10",
        "/v1/messages?status=queued&limit=5",
    ] {
        assert_eq!(get(path).status, 200, "{path}");
    }
}
