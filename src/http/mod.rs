//! The HTTP edge: a tiny_http server with a fixed pool of worker threads.
//!
//! Each worker takes one request at a time and runs it through `handle`: request id, route
//! lookup, the handler under `catch_unwind` (a panic becomes a 500 envelope and the worker lives
//! on), error envelope, one log line, respond. This is the only module that knows tiny_http.
//! Shutdown stops taking new work, answers what is already queued with 503, lets in-flight
//! requests finish within the configured timeout, then closes the listener.

pub mod request;
pub mod response;
pub mod router;
pub mod system;

use std::io::Write;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::error::{AppError, StartupError};
use request::Request;
use response::{ApiResponse, error_response};
use router::{RouteMatch, Router};

/// How often an idle worker looks at the stop flag.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// Above this declared body length a refused request is answered without letting tiny_http
/// drain its body. tiny_http 0.12 drains an unread body on drop into one buffer the size of what
/// is left; for a declared length beyond memory that allocation fails and aborts the process.
const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// A running HTTP server. Dropping it without `shutdown` stops it too.
pub struct HttpServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    finished: mpsc::Receiver<()>,
    shutdown_timeout: Duration,
}

/// How shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every in-flight request finished.
    Drained,
    /// The timeout passed with requests still running; they were abandoned.
    TimedOut,
}

/// Binds `app.config.addr` and starts `app.config.workers` worker threads.
pub fn start(app: Arc<App>, router: Router) -> Result<HttpServer, StartupError> {
    let server = tiny_http::Server::http(app.config.addr)
        .map_err(|err| StartupError(format!("cannot listen on {}: {err}", app.config.addr)))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| StartupError("the listener has no IP address".to_owned()))?;
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    let router = Arc::new(router);
    let (finished_tx, finished) = mpsc::channel();

    let mut workers = Vec::new();
    for index in 0..app.config.workers.get() {
        let (server, stopping, router, app) = (
            Arc::clone(&server),
            Arc::clone(&stopping),
            Arc::clone(&router),
            Arc::clone(&app),
        );
        let finished_tx = finished_tx.clone();
        let worker = thread::Builder::new()
            .name(format!("http-{index}"))
            .spawn(move || {
                run_worker(&server, &stopping, &app, &router);
                let _ = finished_tx.send(());
            })
            .map_err(|err| StartupError(format!("cannot start worker thread: {err}")))?;
        workers.push(worker);
    }
    Ok(HttpServer {
        addr,
        server,
        stopping,
        workers,
        finished,
        shutdown_timeout: app.config.shutdown_timeout,
    })
}

impl HttpServer {
    /// The address actually bound (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops taking requests, waits for in-flight ones (up to the configured timeout), and
    /// closes the listener.
    pub fn shutdown(mut self) -> ShutdownOutcome {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownOutcome {
        if self.workers.is_empty() {
            return ShutdownOutcome::Drained;
        }
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock();
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        let mut outcome = ShutdownOutcome::Drained;
        for _ in 0..self.workers.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.finished.recv_timeout(left).is_err() {
                outcome = ShutdownOutcome::TimedOut;
                break;
            }
        }
        let workers = std::mem::take(&mut self.workers);
        if outcome == ShutdownOutcome::Drained {
            for worker in workers {
                let _ = worker.join();
            }
        }
        outcome
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_worker(server: &tiny_http::Server, stopping: &AtomicBool, app: &App, router: &Router) {
    while !stopping.load(Ordering::SeqCst) {
        match server.recv_timeout(IDLE_POLL) {
            Ok(Some(request)) => handle(app, router, request),
            Ok(None) => {}
            Err(err) => log::debug!(error:% = err; "accept failed"),
        }
    }
    // Requests accepted before the stop but not started get a clear "retry" instead of a reset.
    while let Ok(Some(request)) = server.try_recv() {
        respond_shutting_down(app, request);
    }
}

fn respond_shutting_down(app: &App, request: tiny_http::Request) {
    let request_id = app.ids.request_id();
    let err = AppError::Unavailable {
        retry_after_secs: 1,
        detail: "server is shutting down".to_owned(),
    };
    let response = error_response(&err, &request_id).with_header("X-Request-Id", request_id);
    let _ = request.respond(into_tiny_http(response));
}

/// Serves one request from start to finish. Never panics outward.
fn handle(app: &App, router: &Router, mut raw: tiny_http::Request) {
    let started = Instant::now();
    let request_id = incoming_request_id(&raw).unwrap_or_else(|| app.ids.request_id());
    let mut request = Request::new(&mut raw, request_id.clone(), app.config.max_body_bytes);
    let method = request
        .method()
        .map_or_else(|| "OTHER".to_owned(), |m| m.as_str().to_owned());
    let path = request.path().to_owned();

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
    let result = match outcome {
        Ok(result) => result,
        Err(payload) => Err(AppError::Internal(format!(
            "handler panicked: {}",
            panic_message(payload.as_ref())
        ))),
    };
    let response = match &result {
        Ok(response) => response.clone(),
        Err(err) => error_response(err, &request_id),
    };
    let response = response.with_header("X-Request-Id", request_id.clone());

    let duration_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let status = response.status;
    match &result {
        Err(err) if status >= 500 => log::error!(
            request_id = request_id.as_str(), method = method.as_str(), route = route_path,
            path = path.as_str(), status = status, duration_ms = duration_ms,
            error = err.code(), detail:% = err.log_detail().unwrap_or("");
            "request"
        ),
        Err(err) => log::info!(
            request_id = request_id.as_str(), method = method.as_str(), route = route_path,
            path = path.as_str(), status = status, duration_ms = duration_ms,
            error = err.code();
            "request"
        ),
        Ok(_) => log::info!(
            request_id = request_id.as_str(), method = method.as_str(), route = route_path,
            path = path.as_str(), status = status, duration_ms = duration_ms;
            "request"
        ),
    }
    let drain_limit = DRAIN_LIMIT_BYTES.max(app.config.max_body_bytes);
    if let Some(declared) = raw.body_length().filter(|&n| n as u64 > drain_limit) {
        log::warn!(
            request_id = request_id.as_str(), declared_bytes = declared as u64;
            "abandoning a connection that declared an oversized body"
        );
        respond_detached(raw, response);
    } else if let Err(err) = raw.respond(into_tiny_http(response)) {
        log::debug!(request_id = request_id.as_str(), error:% = err; "client went away");
    }
}

/// Writes the response and abandons the connection without draining the body (see
/// `DRAIN_LIMIT_BYTES`). tiny_http offers only one way to answer without dropping the body
/// reader: `upgrade`, which writes the status line and headers but no length and no body. So
/// the body is written here, unframed, and the connection is left open and forgotten. The client
/// sees the 413 envelope but no end of message; the socket and its tiny_http reader thread are
/// leaked on purpose (two descriptors and one idle thread per such request) because dropping
/// them would drain, and draining can abort the process. Only requests declaring more than both
/// 64 MiB and the body limit take this path; a reverse proxy with a body limit in front of crier
/// keeps them away entirely (README, "Deployment").
fn respond_detached(raw: tiny_http::Request, response: ApiResponse) {
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
