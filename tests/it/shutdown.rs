//! Graceful shutdown: in-flight requests finish, then the listener closes.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crier::app::App;
use crier::error::AppError;
use crier::web::ShutdownOutcome;
use crier::web::request::Request;
use crier::web::response::ApiResponse;
use crier::web::router::{Method, Route, Router};

use crate::harness::TestServer;

static SLOW_STARTED: AtomicBool = AtomicBool::new(false);

fn slow(_app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    SLOW_STARTED.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(600));
    ApiResponse::json(200, &serde_json::json!({"finished": true}))
}

#[test]
fn an_in_flight_request_finishes_before_shutdown_returns() {
    let server = TestServer::start_with(
        |_| {},
        Router::standard().with_route(Route::new(Method::Get, "/test/slow", slow)),
    );
    let addr = server.addr;
    let client = std::thread::spawn(move || {
        crate::harness::send_raw(
            addr,
            b"GET /test/slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !SLOW_STARTED.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the slow request never started");
        std::thread::yield_now();
    }

    assert_eq!(server.shutdown(), ShutdownOutcome::Drained);
    let response = client.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"finished": true}));
    assert_listener_closes(addr);
}

#[test]
fn shutdown_with_nothing_in_flight_drains_and_closes_the_listener() {
    let server = TestServer::start();
    let addr = server.addr;
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.shutdown(), ShutdownOutcome::Drained);
    assert_listener_closes(addr);
}

/// The listening socket closes when the edge's accept loop ends; allow it a moment (bounded).
fn assert_listener_closes(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener is still open after shutdown"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client part-way through a request head holds no request of ours: shutdown closes its
/// connection after a short grace instead of waiting out the whole shutdown timeout (one silent
/// client used to make every stop take that long, and count as timed out).
#[test]
fn a_client_stalled_mid_head_does_not_hold_up_shutdown() {
    // Timeouts long enough that only the grace can close the stalled connection in time.
    let server = TestServer::start_with(
        |config| {
            config.http_timeout = Duration::from_secs(120);
            config.shutdown_timeout = Duration::from_secs(15);
        },
        Router::standard(),
    );
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut stalled, b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    // The server has read those bytes once a whole request on another connection is answered.
    assert_eq!(server.get("/healthz").status, 200);
    std::thread::sleep(Duration::from_millis(100));
    // Drained: every connection closed before the 15 s timeout.
    assert_eq!(server.shutdown(), ShutdownOutcome::Drained);
    // Closed without an answer: the client reads the end of the stream.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut stalled, &mut rest);
    assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");
}
