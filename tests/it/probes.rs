//! Probes, request ids and the embedded pages.

use std::time::Duration;

use crier::clock::format_timestamp;
use crier::web::router::Router;
use rusqlite::TransactionBehavior;

use crate::harness::{TestServer, test_epoch};

#[test]
fn healthz_is_ok_with_a_generated_request_id() {
    let server = TestServer::start();
    let response = server.get("/healthz");
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
    let request_id = response.header("X-Request-Id").unwrap();
    assert!(
        request_id.starts_with("req_") && request_id.len() == 30,
        "{request_id}"
    );
    assert_ne!(
        server.get("/healthz").header("X-Request-Id"),
        Some(request_id)
    );
}

#[test]
fn a_valid_incoming_request_id_is_echoed_and_an_invalid_one_replaced() {
    let server = TestServer::start();
    let echoed = server.request("GET", "/healthz", &[("X-Request-Id", "lb-7f3a.9:x_1")], b"");
    assert_eq!(echoed.header("X-Request-Id"), Some("lb-7f3a.9:x_1"));

    let too_long = "a".repeat(129);
    for bad in ["has space", "semi;colon", too_long.as_str()] {
        let replaced = server.request("GET", "/healthz", &[("X-Request-Id", bad)], b"");
        let id = replaced.header("X-Request-Id").unwrap();
        assert!(id.starts_with("req_"), "{bad:?} was echoed as {id:?}");
    }
}

fn probe_checked_at(server: &TestServer) -> String {
    server
        .db()
        .query_row(
            "SELECT checked_at FROM health_probe WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn readyz_proves_a_write_at_the_server_clock() {
    let server = TestServer::start();
    let response = server.get("/readyz");
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"status": "ready"}));
    assert_eq!(probe_checked_at(&server), format_timestamp(test_epoch()));

    server.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(server.get("/readyz").status, 200);
    assert_eq!(probe_checked_at(&server), "2026-11-25T09:35:00.000Z");
}

#[test]
fn readyz_is_503_while_the_database_refuses_writes_and_healthz_stays_ok() {
    let server = TestServer::start_with(
        |config| config.db_busy_timeout = Duration::from_millis(100),
        Router::standard(),
    );
    let mut blocker = server.db();
    let held = blocker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();

    let response = server.get("/readyz");
    let body = response.assert_error(503, "unavailable");
    assert_eq!(response.header("Retry-After"), Some("1"));
    assert_eq!(body["error"]["details"]["retry_after_seconds"], 1);
    assert_eq!(server.get("/healthz").status, 200);

    held.rollback().unwrap();
    assert_eq!(server.get("/readyz").status, 200);
}

/// Another process holding the write lock with writes queued behind it: `/readyz` answers 503
/// within about one busy timeout, not one timeout per queued write in turn, and is ready again
/// as soon as the lock is let go.
#[test]
fn readyz_answers_within_a_busy_timeout_while_writes_queue_behind_a_lock_held_elsewhere() {
    let busy_timeout = Duration::from_millis(1000);
    let server = TestServer::start_with(
        move |config| config.db_busy_timeout = busy_timeout,
        Router::standard(),
    );
    let owner = crate::auth_fixtures::setup(&server);
    let (_, key) = crate::auth_fixtures::create_key(&owner, &["contacts:write"], "live");
    let addr = server.addr;
    let mut blocker = server.db();
    let held = blocker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    std::thread::scope(|scope| {
        for n in 0..8 {
            let key = &key;
            scope.spawn(move || {
                let body = format!("{{\"name\": \"g{n}\"}}");
                let request = format!(
                    "POST /v1/groups HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let response = crate::harness::send_raw(addr, request.as_bytes());
                assert_eq!(response.status, 503, "{}", response.text());
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let started = std::time::Instant::now();
        server.get("/readyz").assert_error(503, "unavailable");
        // Eight writes queued before it would have cost eight timeouts (8 s) in turn.
        assert!(
            started.elapsed() < busy_timeout * 3,
            "readyz took {:?}",
            started.elapsed()
        );
    });
    held.rollback().unwrap();
    assert_eq!(server.get("/readyz").status, 200);
}

#[test]
fn the_index_and_docs_pages_are_served_as_html() {
    let server = TestServer::start();
    for path in ["/", "/docs", "/invitations/accept?token=abc"] {
        let response = server.get(path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert!(response.text().contains("<title>crier"), "{path}");
    }
}

#[test]
fn metrics_count_requests_by_route_template_and_status() {
    let server = TestServer::start();
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/healthz").status, 200);
    let revoke = server.request("DELETE", "/v1/api-keys/key_secret_looking_id", &[], b"");
    assert_eq!(revoke.status, 401);
    assert_eq!(server.get("/no/such/path").status, 404);
    let response = server.get("/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.text();
    for line in [
        "crier_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2",
        "crier_http_requests_total{route=\"/v1/api-keys/{id}\",method=\"DELETE\",status=\"401\"} 1",
        "crier_http_requests_total{route=\"-\",method=\"GET\",status=\"404\"} 1",
        "crier_http_request_duration_seconds_count{route=\"/healthz\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    // Paths never become labels: only templates do.
    assert!(!text.contains("key_secret_looking_id") && !text.contains("/no/such/path"));
}
