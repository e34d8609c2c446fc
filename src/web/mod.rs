//! The HTTP edge: hyper reads and writes connections on one I/O thread; a fixed pool of
//! synchronous worker threads runs the handlers.
//!
//! ```text
//!  sockets ── io thread (tokio current-thread runtime + hyper HTTP/1.1, `edge.rs`)
//!               accept → per connection: parse, framing checks, read the body (limit, deadline)
//!               │  Job { Incoming, reply }            ▲ Answer: Now(response) | Later
//!               ▼                                     │
//!             job queue (bounded) ── worker threads (`exchange::handle`: route → handler)
//!                                                     │ a send: its transaction
//!                                                     ▼
//!                                   the writer's job thread (`db::start_jobs`): commits, then
//!                                   hands the outcome to the waiting connection (`Later`)
//! ```
//!
//! A worker never touches a socket: it gets a whole request (body already read, or the reason it
//! could not be) and returns a whole response — or, for a send, hands its transaction to the
//! writer's job thread and returns at once (`ApiResponse::later`): the connection waits for the
//! commit, the worker does not. So a slow or silent client costs one idle task on the I/O
//! thread, never a worker, and neither does a commit. Only `edge.rs` touches hyper's connections
//! and tokio's runtime (`exchange.rs` reads hyper's request types; a `Later` is a tokio channel).
//!
//! Shutdown stops accepting, lets each connection finish the request it is in (idle keep-alive
//! connections close at once; a send waiting for its commit gets its answer: the job thread
//! stops last), answers requests that were queued but not started with 503, and waits for all
//! of it up to the configured timeout.

pub mod activity;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod campaigns;
pub mod console;
pub mod contacts;
mod edge;
mod exchange;
pub mod groups;
pub mod idempotency;
pub mod imports;
pub mod links;
pub mod messages;
pub mod payments;
pub mod provider_accounts;
pub mod receipts;
pub mod request;
pub mod response;
pub mod router;
pub mod segments;
pub mod sending_domains;
pub mod system;
pub mod unsubscribe;
pub mod webhooks;
pub mod workspaces;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::error::StartupError;
use exchange::Job;
use router::Router;

/// Jobs waiting for a worker, per worker. Beyond this the I/O thread stops reading new requests
/// (connections wait in their socket buffers) rather than queueing without bound.
const QUEUE_PER_WORKER: usize = 64;

/// A running HTTP server. Dropping it without `shutdown` stops it too.
pub struct HttpServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    /// Tells the I/O thread to stop accepting and to close connections once idle.
    stop_edge: Option<tokio::sync::watch::Sender<bool>>,
    io_thread: Option<JoinHandle<()>>,
    /// Whether every connection finished its request in time, once the I/O thread is done.
    io_finished: mpsc::Receiver<bool>,
    workers: Vec<JoinHandle<()>>,
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

/// Binds `addr` for `start`: done first, before the database is opened, so a server that cannot
/// listen (the port taken) stops before it creates or migrates anything.
pub fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|err| StartupError(format!("cannot listen on {addr}: {err}")))
}

/// Serves on `listener` (from `bind`): starts the I/O thread and `app.config.workers` worker
/// threads.
pub fn start(
    app: Arc<App>,
    router: Router,
    listener: TcpListener,
) -> Result<HttpServer, StartupError> {
    let cannot_listen = |err: &dyn std::fmt::Display| {
        StartupError(format!("cannot listen on {}: {err}", app.config.addr))
    };
    let addr = listener.local_addr().map_err(|err| cannot_listen(&err))?;
    let stopping = Arc::new(AtomicBool::new(false));
    let router = Arc::new(router);
    let workers_count = app.config.workers.get();
    let (job_tx, job_rx) = tokio::sync::mpsc::channel::<Job>(workers_count * QUEUE_PER_WORKER);
    let job_rx = Arc::new(Mutex::new(job_rx));

    let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
        thread::Builder::new()
            .name(name)
            .spawn(body)
            .map_err(|err| StartupError(format!("cannot start an HTTP thread: {err}")))
    };
    let mut workers = Vec::new();
    for index in 0..workers_count {
        let (job_rx, stopping, router, app) = (
            Arc::clone(&job_rx),
            Arc::clone(&stopping),
            Arc::clone(&router),
            Arc::clone(&app),
        );
        workers.push(spawn(
            format!("http-{index}"),
            Box::new(move || run_worker(&job_rx, &stopping, &app, &router)),
        )?);
    }

    let runtime = edge::runtime().map_err(|err| cannot_listen(&err))?;
    let (stop_edge, stop_rx) = tokio::sync::watch::channel(false);
    let (finished_tx, io_finished) = mpsc::channel();
    let settings = edge::EdgeSettings::from_config(&app.config);
    let listener = {
        let _entered = runtime.enter();
        listener
            .set_nonblocking(true)
            .map_err(|err| cannot_listen(&err))?;
        tokio::net::TcpListener::from_std(listener).map_err(|err| cannot_listen(&err))?
    };
    let edge_app = Arc::clone(&app);
    let io_thread = spawn(
        "http-io".to_owned(),
        Box::new(move || {
            let drained =
                runtime.block_on(edge::serve(listener, settings, job_tx, stop_rx, edge_app));
            // Dropping the runtime here closes whatever connections are still open (only after
            // the shutdown timeout passed with requests in flight).
            drop(runtime);
            let _ = finished_tx.send(drained);
        }),
    )?;
    Ok(HttpServer {
        addr,
        stopping,
        stop_edge: Some(stop_edge),
        io_thread: Some(io_thread),
        io_finished,
        workers,
        shutdown_timeout: app.config.shutdown_timeout,
    })
}

impl HttpServer {
    /// The address actually bound (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits for in-flight requests (up to the configured timeout), and closes
    /// the listener and every connection.
    pub fn shutdown(mut self) -> ShutdownOutcome {
        self.stop()
    }

    fn stop(&mut self) -> ShutdownOutcome {
        let Some(stop_edge) = self.stop_edge.take() else {
            return ShutdownOutcome::Drained;
        };
        self.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.shutdown_timeout;
        let _ = stop_edge.send(true);
        // The edge waits for its connections up to this deadline itself; the extra second covers
        // a runtime that is slow to wind down.
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        let outcome = match self.io_finished.recv_timeout(left) {
            Ok(drained) => {
                if let Some(io_thread) = self.io_thread.take() {
                    let _ = io_thread.join();
                }
                if drained {
                    ShutdownOutcome::Drained
                } else {
                    ShutdownOutcome::TimedOut
                }
            }
            Err(_) => ShutdownOutcome::TimedOut,
        };
        // The job queue's sender lived on the I/O thread; with it gone, idle workers end. A
        // worker still inside a handler past the deadline is left to finish on its own.
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

/// Takes jobs until the queue closes. A job taken after shutdown began was queued but not
/// started: it is answered 503 so the client retries elsewhere.
fn run_worker(
    jobs: &Mutex<tokio::sync::mpsc::Receiver<Job>>,
    stopping: &AtomicBool,
    app: &App,
    router: &Router,
) {
    loop {
        let job = {
            let Ok(mut queue) = jobs.lock() else { return };
            queue.blocking_recv()
        };
        let Some(job) = job else { return };
        let answer = if stopping.load(Ordering::SeqCst) {
            exchange::Answer::Now(exchange::refuse_shutting_down(app, job.incoming))
        } else {
            exchange::handle(app, router, job.incoming)
        };
        // The connection may have gone meanwhile; nothing is waiting for the answer then.
        let _ = job.reply.send(answer);
    }
}
