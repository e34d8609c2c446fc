//! One request/response exchange, from the raw tiny_http request to the bytes written back:
//! request id, the pre-routing size check, route lookup, the handler under `catch_unwind` (a
//! panic becomes a 500 envelope and the worker lives on), the error envelope, one log line, and
//! what happens to a body the handler did not read.
//!
//! That last step exists because of two tiny_http 0.12 behaviours. An unread `Content-Length`
//! body is drained when the request is dropped, into one buffer the size of what is left — for a
//! declared length beyond memory that allocation aborts the process. An unread chunked body is
//! not drained at all, so its leftover bytes would be parsed as the next request on the
//! connection (request smuggling). `dispose_body` decides per request how to stay safe.

use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use crate::app::App;
use crate::error::AppError;
use crate::http::request::Request;
use crate::http::response::{ApiResponse, error_response};
use crate::http::router::{RouteMatch, Router};

/// The most body crier will read just to throw it away (an unread chunked body, or a refused
/// `Content-Length` body that tiny_http drains). Beyond it the connection is abandoned.
const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Serves one request from start to finish. Never panics outward.
pub(super) fn handle(app: &App, router: &Router, mut raw: tiny_http::Request) {
    let started = Instant::now();
    let request_id = incoming_request_id(&raw).unwrap_or_else(|| app.ids.request_id());
    let method = raw.method().as_str().to_owned();
    let path = raw.url().split('?').next().unwrap_or("").to_owned();

    let (route, workspace, result) = dispatch(app, router, &mut raw, &request_id);
    let response = match &result {
        Ok(response) => response.clone(),
        Err(err) => error_response(err, &request_id),
    }
    .with_header("X-Request-Id", request_id.clone());

    app.metrics
        .record_request(route, &method, response.status, started.elapsed());
    log_request(&RequestLine {
        request_id: &request_id,
        method: &method,
        route,
        path: &path,
        workspace: workspace.as_deref(),
        status: response.status,
        started,
        error: result.as_ref().err(),
    });
    match dispose_body(&mut raw, app.config.max_body_bytes) {
        Disposal::Respond => {
            if let Err(err) = raw.respond(into_tiny_http(response)) {
                log::debug!(request_id = request_id.as_str(), error:% = err; "client went away");
            }
        }
        Disposal::Abandon { reason } => {
            log::warn!(request_id = request_id.as_str(), reason = reason; "abandoning connection");
            respond_and_abandon(raw, response);
        }
    }
}

/// Answers a request that was accepted but not started before shutdown: 503, retry elsewhere.
pub(super) fn refuse_shutting_down(app: &App, mut raw: tiny_http::Request) {
    let started = Instant::now();
    let request_id = incoming_request_id(&raw).unwrap_or_else(|| app.ids.request_id());
    let err = AppError::Unavailable {
        retry_after_secs: 1,
        detail: "server is shutting down".to_owned(),
    };
    let response =
        error_response(&err, &request_id).with_header("X-Request-Id", request_id.clone());
    let path = raw.url().split('?').next().unwrap_or("").to_owned();
    log_request(&RequestLine {
        request_id: &request_id,
        method: raw.method().as_str(),
        route: "-",
        path: &path,
        workspace: None,
        status: response.status,
        started,
        error: Some(&err),
    });
    match dispose_body(&mut raw, app.config.max_body_bytes) {
        Disposal::Respond => {
            let _ = raw.respond(into_tiny_http(response));
        }
        Disposal::Abandon { .. } => respond_and_abandon(raw, response),
    }
}

/// Finds and runs the handler. Returns, for the log, the matched route template (`-` when none)
/// and the workspace the request acted in (once authenticated), with the outcome.
fn dispatch(
    app: &App,
    router: &Router,
    raw: &mut tiny_http::Request,
    request_id: &str,
) -> (&'static str, Option<String>, Result<ApiResponse, AppError>) {
    // Refused before routing, whatever the route: nothing reads a body this large.
    if raw
        .body_length()
        .is_some_and(|declared| declared as u64 > app.config.max_body_bytes)
    {
        let limit_bytes = app.config.max_body_bytes;
        return ("-", None, Err(AppError::PayloadTooLarge { limit_bytes }));
    }
    let mut request = Request::new(raw, request_id.to_owned(), app.config.max_body_bytes);
    let mut route_path = "-";
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        match router.find(request.method(), request.path()) {
            RouteMatch::Found { route, params } => {
                route_path = route.path;
                request.set_params(params);
                (route.handler)(app, &mut request)
            }
            RouteMatch::MethodNotAllowed { allowed } => Err(AppError::MethodNotAllowed { allowed }),
            RouteMatch::NotFound => Err(AppError::NotFound),
        }
    }));
    let result = outcome.unwrap_or_else(|payload| {
        Err(AppError::Internal(format!(
            "handler panicked: {}",
            panic_message(payload.as_ref())
        )))
    });
    (route_path, request.workspace_id(), result)
}

/// What to do with the connection once the response is ready.
#[derive(Debug, PartialEq, Eq)]
enum Disposal {
    /// Respond normally; the connection stays usable for the client's next request.
    Respond,
    /// Respond, then never read from this connection again.
    Abandon { reason: &'static str },
}

/// Makes sure no unread body bytes can be taken for the next request, and that tiny_http is never
/// asked to drain more than `DRAIN_LIMIT_BYTES`.
fn dispose_body(raw: &mut tiny_http::Request, max_body_bytes: u64) -> Disposal {
    match raw.body_length() {
        // tiny_http discards what the handler left unread (a stalled client is cut off by the
        // connection's read timeout) and the connection stays in sync.
        Some(declared) if declared as u64 <= DRAIN_LIMIT_BYTES.max(max_body_bytes) => {
            Disposal::Respond
        }
        Some(_) => Disposal::Abandon {
            reason: "declared body too large to discard",
        },
        // A chunked body (or none: the reader is then empty): read the rest ourselves.
        None => {
            let mut reader = raw.as_reader().take(DRAIN_LIMIT_BYTES + 1);
            match std::io::copy(&mut reader, &mut std::io::sink()) {
                Ok(read) if read > DRAIN_LIMIT_BYTES => Disposal::Abandon {
                    reason: "chunked body too large to discard",
                },
                // Read to its end, or the client stopped sending (tiny_http will then close the
                // connection when its next read fails): either way nothing is left to misparse.
                Ok(_) | Err(_) => Disposal::Respond,
            }
        }
    }
}

/// Writes the response and abandons the connection without letting tiny_http drain its body.
/// `upgrade` is tiny_http's only way to answer without dropping the body reader; it writes the
/// status line and headers but no length and no body, so the body is written here, unframed
/// (the client reads it until the connection ends, which is never). The socket and its tiny_http
/// thread are leaked on purpose — two descriptors and one idle thread — because dropping the
/// reader would drain it. Only a request declaring more than max(64 MiB, body limit), or sending
/// a chunked body past 64 MiB, comes here; a reverse proxy with a body limit stops them earlier.
fn respond_and_abandon(raw: tiny_http::Request, response: ApiResponse) {
    let body = response.body.clone();
    let head_only = ApiResponse {
        body: Vec::new(),
        ..response
    };
    let mut stream = raw.upgrade("close", into_tiny_http(head_only));
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    std::mem::forget(stream);
}

struct RequestLine<'a> {
    request_id: &'a str,
    method: &'a str,
    route: &'static str,
    path: &'a str,
    workspace: Option<&'a str>,
    status: u16,
    started: Instant,
    error: Option<&'a AppError>,
}

/// The one log line per request. 5xx are errors with their internal detail; the rest are info.
fn log_request(line: &RequestLine<'_>) {
    let duration_ms = (line.started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let error = line.error.map_or("", AppError::code);
    let detail = line.error.and_then(AppError::log_detail).unwrap_or("");
    let level = if line.status >= 500 {
        log::Level::Error
    } else {
        log::Level::Info
    };
    log::log!(
        level,
        request_id = line.request_id, method = line.method, route = line.route,
        path = line.path, workspace = line.workspace.unwrap_or(""), status = line.status,
        duration_ms = duration_ms, error = error, detail = detail;
        "request"
    );
}

/// An `X-Request-Id` the client sent, if it is safe to echo: 1–128 characters of letters,
/// digits and `-_.:`. Anything else is replaced by a generated id.
fn incoming_request_id(request: &tiny_http::Request) -> Option<String> {
    let value = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("X-Request-Id"))?
        .value
        .as_str();
    let valid = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    valid.then(|| value.to_owned())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload")
}

fn into_tiny_http(response: ApiResponse) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut out = tiny_http::Response::from_data(response.body)
        .with_status_code(tiny_http::StatusCode(response.status));
    let headers = std::iter::once(("Content-Type".to_owned(), response.content_type.to_owned()))
        .chain(response.headers);
    for (name, value) in headers {
        // Our header names and values are ASCII we built ourselves; one that is not is skipped
        // rather than allowed to break the response.
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    }
    out
}
