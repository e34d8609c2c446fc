//! The HTTP edge: a tiny_http server with a fixed pool of worker threads.
//!
//! Each worker takes one request at a time and hands it to `exchange::handle` (request id, route,
//! handler, envelope, log line, response). Only `http/` knows tiny_http. Connections carry the
//! configured read and write timeouts, so a silent client cannot hold a worker forever.
//! Shutdown stops taking new work, answers what is already queued with 503, lets in-flight
//! requests finish within the configured timeout, then closes the listener.

mod exchange;
pub mod request;
pub mod response;
pub mod router;
pub mod system;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::error::StartupError;
use router::Router;

/// How often an idle worker looks at the stop flag.
const IDLE_POLL: Duration = Duration::from_millis(100);

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
    let cannot_listen = |err: &dyn std::fmt::Display| {
        StartupError(format!("cannot listen on {}: {err}", app.config.addr))
    };
    let listener = TcpListener::bind(app.config.addr).map_err(|err| cannot_listen(&err))?;
    // Linux copies these socket options from the listener to every accepted connection, which is
    // the only way to give tiny_http's connections timeouts: a read that waits longer fails, and
    // tiny_http closes that connection.
    let socket = socket2::SockRef::from(&listener);
    socket
        .set_read_timeout(Some(app.config.http_timeout))
        .and_then(|()| socket.set_write_timeout(Some(app.config.http_timeout)))
        .map_err(|err| cannot_listen(&err))?;
    let server =
        tiny_http::Server::from_listener(listener, None).map_err(|err| cannot_listen(&err))?;
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
            Ok(Some(request)) => exchange::handle(app, router, request),
            Ok(None) => {}
            Err(err) => log::debug!(error:% = err; "accept failed"),
        }
    }
    // Requests accepted before the stop but not started get a clear "retry" instead of a reset.
    while let Ok(Some(request)) = server.try_recv() {
        exchange::refuse_shutting_down(app, request);
    }
}
