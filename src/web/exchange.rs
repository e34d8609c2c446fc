//! One request/response exchange on a worker thread, from the request the edge read to the
//! response it will write: request id, pre-routing refusals (a body the edge could not read),
//! route lookup, the handler under `catch_unwind` (a panic becomes a 500 envelope and the worker
//! lives on), the error envelope, one log line and the metrics. A send's outcome comes later,
//! from the writer's job thread: the worker hands back `Answer::Later` and the edge's thread
//! makes the answer with `Finish` once the outcome arrives.

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::error::{AppError, panic_message};
use crate::web::request::{Limited, Request};
use crate::web::response::{ApiResponse, Later, error_response};
use crate::web::router::{OPEN_ROUTES, RouteMatch, Router};

/// A request as the edge hands it to a worker: head and body, nothing left on the socket.
pub struct Incoming {
    pub(crate) method: hyper::Method,
    pub(crate) uri: hyper::Uri,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) peer: SocketAddr,
    pub(crate) body: RequestBody,
}

/// What became of the request body.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// Read to its end, within the size limit (empty when there was none).
    Complete(Vec<u8>),
    /// Read to its end, but longer than the limit: handlers that read it answer 413.
    TooLarge,
    /// Streamed to a file on disk (the import upload), within its own limit.
    Spooled(SpooledBody),
    /// Not read to its end: the request is refused before routing and the connection closed.
    Unread(Unread),
}

/// Why a body was not read to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// `Content-Length` over the limit: refused without reading a byte (413).
    DeclaredTooLarge,
    /// A chunked body past even the discard limit (413).
    TooLargeToDrain,
    /// An upload to disk over `--max-import-bytes` (413).
    UploadTooLarge,
    /// The upload could not be written to disk (503).
    SpoolFailed,
    /// The body did not arrive within the HTTP timeout (408).
    TimedOut(Duration),
    /// The connection broke, or the chunked coding was malformed (400).
    Broken,
    /// The framing headers, or raw bytes outside ASCII in the path or a header value, are not
    /// acceptable (400, with the reason).
    BadFraming(&'static str),
}

/// A request body on disk: the file is deleted when this is dropped, so an upload nobody
/// adopted (a refused request, a broken connection) never stays. An import job adopts the file
/// by renaming it; the deletion of the old name then finds nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct SpooledBody {
    path: std::path::PathBuf,
    bytes: u64,
}

impl SpooledBody {
    pub(crate) fn new(path: std::path::PathBuf) -> SpooledBody {
        SpooledBody { path, bytes: 0 }
    }

    pub(crate) fn with_bytes(mut self, bytes: u64) -> SpooledBody {
        self.bytes = bytes;
        self
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// How many bytes the body had.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for SpooledBody {
    fn drop(&mut self) {
        // Gone already when a job adopted it.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A request waiting for a worker, with the way back to its connection.
pub(super) struct Job {
    pub(super) incoming: Incoming,
    pub(super) reply: tokio::sync::oneshot::Sender<Answer>,
}

/// The answer, and whether the connection must close after it.
pub(super) struct Outgoing {
    pub(super) response: ApiResponse,
    pub(super) close: bool,
}

/// What a worker hands back to the connection: the answer, or — when the handler's work is
/// the writer's job thread's to do (`ApiResponse::later`) — the way to make it once that work
/// is done, so the worker need not wait for the commit.
pub(super) enum Answer {
    Now(Outgoing),
    Later(Later, Finish),
}

/// Serves one request from start to finish. Never panics outward.
pub(super) fn handle(app: &App, router: &Router, incoming: Incoming) -> Answer {
    let started = Instant::now();
    let request_id = incoming_request_id(&incoming).unwrap_or_else(|| app.ids.request_id());
    let path = incoming.uri.path();
    let (route, workspace, limited, result) = dispatch(app, router, &incoming, &request_id, path);
    let finish = Finish {
        started,
        request_id,
        method: incoming.method.clone(),
        path: logged_path(route, path),
        route,
        workspace,
        limited,
        close: matches!(incoming.body, RequestBody::Unread(_)),
    };
    match result {
        Ok(mut response) => match response.later.take() {
            Some(later) => Answer::Later(later, finish),
            None => Answer::Now(finish.answer(app, Ok(response))),
        },
        Err(err) => Answer::Now(finish.answer(app, Err(err))),
    }
}

/// What making the answer needs of its request, owned (an outcome that comes `Later` is
/// finished on the edge's thread): for the log line, the metrics, `X-Request-Id`, the
/// rate-limit fields, and whether the connection must close after it.
pub(super) struct Finish {
    started: Instant,
    request_id: String,
    method: hyper::Method,
    /// The path as logged.
    path: String,
    /// The route template matched (`-` when none) and the workspace the request acted in.
    route: &'static str,
    workspace: Option<String>,
    limited: Option<Limited>,
    close: bool,
}

impl Finish {
    /// Turns an outcome into the response (the error envelope for an `Err`), with
    /// `X-Request-Id` and the rate-limit fields, and records it: metrics and the one log line.
    pub(super) fn answer(self, app: &App, result: Result<ApiResponse, AppError>) -> Outgoing {
        let (response, error) = match result {
            Ok(response) => (response, None),
            Err(err) => (error_response(&err, &self.request_id), Some(err)),
        };
        let mut response = response.with_header("X-Request-Id", self.request_id.clone());
        if let Some(limited) = self.limited {
            response = with_rate_limit_headers(response, limited);
        }
        let method = self.method.as_str();
        app.metrics
            .record_request(self.route, method, response.status, self.started.elapsed());
        log_request(&RequestLine {
            request_id: &self.request_id,
            method,
            route: self.route,
            path: &self.path,
            workspace: self.workspace.as_deref(),
            status: response.status,
            started: self.started,
            error: error.as_ref(),
        });
        Outgoing {
            response,
            close: self.close,
        }
    }
}

/// The path as the log line shows it: an unsubscribe link's token is a lasting capability, so
/// such a path is logged as its route template.
fn logged_path(route: &'static str, path: &str) -> String {
    if route.contains("{token}") {
        route.to_owned()
    } else {
        path.to_owned()
    }
}

/// The IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers):
/// the bucket as a quota of `burst` requests per the seconds it takes to fill, what is left, and
/// the seconds until it is full again.
fn with_rate_limit_headers(response: ApiResponse, limited: Limited) -> ApiResponse {
    let Limited {
        policy,
        rate,
        allowance,
    } = limited;
    response
        .with_header(
            "RateLimit-Policy",
            format!("\"{policy}\";q={};w={}", rate.burst, rate.window_secs()),
        )
        .with_header(
            "RateLimit",
            format!(
                "\"{policy}\";r={};t={}",
                allowance.remaining, allowance.reset_secs
            ),
        )
}

/// Answers a request that was queued but not started before shutdown: 503, retry elsewhere.
pub(super) fn refuse_shutting_down(app: &App, incoming: Incoming) -> Outgoing {
    let request_id = incoming_request_id(&incoming).unwrap_or_else(|| app.ids.request_id());
    let finish = Finish {
        started: Instant::now(),
        request_id,
        method: incoming.method.clone(),
        path: logged_path("-", incoming.uri.path()),
        route: "-",
        workspace: None,
        limited: None,
        close: true,
    };
    finish.answer(
        app,
        Err(AppError::Unavailable {
            retry_after_secs: 1,
            detail: "server is shutting down".to_owned(),
        }),
    )
}

/// The answer when no worker could take the request (the queue closed under it).
pub(super) fn no_worker(app: &App) -> Outgoing {
    let request_id = app.ids.request_id();
    let err = AppError::Unavailable {
        retry_after_secs: 1,
        detail: "no worker took the request".to_owned(),
    };
    log::error!(request_id = request_id.as_str(); "no worker took the request");
    Outgoing {
        response: error_response(&err, &request_id).with_header("X-Request-Id", request_id),
        close: true,
    }
}

/// Finds and runs the handler. Returns, for the log, the matched route template (`-` when none)
/// and the workspace the request acted in (once authenticated), with the outcome.
fn dispatch(
    app: &App,
    router: &Router,
    incoming: &Incoming,
    request_id: &str,
    path: &str,
) -> (
    &'static str,
    Option<String>,
    Option<Limited>,
    Result<ApiResponse, AppError>,
) {
    // A body the edge could not read is refused whatever the route: nothing could use it.
    if let RequestBody::Unread(unread) = &incoming.body {
        return ("-", None, None, Err(refusal(unread, &app.config)));
    }
    let mut request = Request::new(incoming, request_id.to_owned(), app.config.max_body_bytes);
    let mut route_path = "-";
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        match router.find(request.method(), path) {
            RouteMatch::Found { route, params } => {
                route_path = route.path;
                request.set_params(params);
                if OPEN_ROUTES.contains(&route.path) {
                    let ip = request.client_ip(&app.config.trusted_proxies);
                    request.count_against(
                        ("public", &app.public_buckets),
                        app.public_buckets.rate(),
                        &ip,
                    )?;
                }
                if !route.takes_body {
                    request.expect_no_fields()?;
                }
                let result = (route.handler)(app, &mut request);
                refuse_unread_query(route.path, &request, result)
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
    (
        route_path,
        request.workspace_id(),
        request.rate_limit(),
        result,
    )
}

fn refusal(unread: &Unread, config: &crate::config::Config) -> AppError {
    match unread {
        Unread::DeclaredTooLarge | Unread::TooLargeToDrain => AppError::PayloadTooLarge {
            limit_bytes: config.max_body_bytes,
        },
        Unread::UploadTooLarge => AppError::PayloadTooLarge {
            limit_bytes: config.max_import_bytes,
        },
        Unread::SpoolFailed => AppError::Unavailable {
            retry_after_secs: 5,
            detail: "the upload could not be written to disk".to_owned(),
        },
        Unread::TimedOut(timeout) => AppError::RequestTimeout {
            timeout_secs: timeout.as_secs(),
        },
        Unread::Broken => {
            AppError::BadRequest("The request body could not be read completely.".to_owned())
        }
        Unread::BadFraming(why) => AppError::BadRequest((*why).to_owned()),
    }
}

/// A GET of the API reads its query; what it was sent beyond that is refused rather than
/// ignored (a misspelled filter would widen the answer unseen). Checked once the handler has
/// answered (a refusal for another reason stands), for the API's routes only.
fn refuse_unread_query(
    route: &str,
    request: &Request<'_>,
    result: Result<ApiResponse, AppError>,
) -> Result<ApiResponse, AppError> {
    if result.is_err()
        || request.method() != Some(crate::web::router::Method::Get)
        || !route.starts_with("/v1/")
    {
        return result;
    }
    let unread = request.unread_query_params();
    if unread.is_empty() {
        return result;
    }
    let names: Vec<String> = unread.iter().map(|name| format!("`{name}`")).collect();
    let (plural, pronoun) = if unread.len() == 1 {
        ("", "it")
    } else {
        ("s", "them")
    };
    Err(AppError::BadRequest(format!(
        "Unknown query parameter{plural} {}: this endpoint does not read {pronoun} (misspelled?).",
        names.join(", ")
    )))
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

/// The one log line per request. 5xx are errors with their internal detail — but a 503
/// `unavailable` (the database busy, the server shutting down) is a warning: the client is told
/// to retry and nothing is broken; the rest are info.
fn log_request(line: &RequestLine<'_>) {
    let level = match line.error {
        Some(AppError::Unavailable { .. }) => log::Level::Warn,
        _ if line.status >= 500 => log::Level::Error,
        _ => log::Level::Info,
    };
    if !log::log_enabled!(level) {
        return;
    }
    let duration_ms = (line.started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let error = line.error.map_or("", AppError::code);
    let detail = line.error.and_then(AppError::log_detail).unwrap_or("");
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
fn incoming_request_id(incoming: &Incoming) -> Option<String> {
    let value = incoming.headers.get("x-request-id")?.as_bytes();
    let valid = (1..=128).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
    valid.then(|| String::from_utf8_lossy(value).into_owned())
}
