//! Benchmark of the send path and the dispatcher, printing a table.
//!
//! `cargo run --release --example bench_send` starts the real server in-process on
//! 127.0.0.1:0 with the embedded defaults (synchronous=FULL, 8 HTTP workers, the `log`
//! providers) in a temporary directory, then:
//! 1. sends `POST /v1/messages` (one-segment SMS, live key, a distinct `Idempotency-Key` each)
//!    from 16 and then 64 keep-alive connections for `BENCH_SECS` seconds each (default 10),
//!    with the dispatchers off so only the API is measured; reports sends/s and p50/p99/max;
//! 2. restarts the server on the same database with the dispatchers on and times how long they
//!    take to deliver everything queued to the `log` provider.
//!
//! Settings can be changed with the usual `CRIER_*` variables (e.g. `CRIER_WORKERS=16`).
//!
//! "over 1 s" counts requests that waited more than a second. All connections open at once,
//! and tiny_http 0.12's connection thread pool can leave some of a burst of new connections
//! unserved until another connection closes (ARCHITECTURE.md, "Known limits"): those show up
//! here, as a first request that waits the whole run.

// A benchmark that cannot set itself up has nothing to report: it stops with the reason.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use crier::clock::SystemClock;
use crier::config::Config;
use crier::http::router::Router;
use crier::ids::SystemRandomSource;
use crier::server::{self, RunningServer, Runtime};

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().to_string_lossy().into_owned();

    let server = start(&data_dir, "0");
    let addr = server.addr();
    let key = prepare(addr);
    println!("crier send benchmark: {seconds} s per row, embedded defaults, log providers");
    println!();
    println!("| connections | sends | sends/s | p50 ms | p99 ms | max ms | over 1 s | non-201 |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = 0usize;
    for connections in [16usize, 64] {
        let row = load(addr, &key, connections, Duration::from_secs(seconds), total);
        total += row.sends;
        println!(
            "| {connections} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} |",
            row.sends,
            row.sends as f64 / row.elapsed.as_secs_f64(),
            row.percentile(0.50),
            row.percentile(0.99),
            row.percentile(1.0),
            row.latencies_ms.iter().filter(|ms| **ms > 1000.0).count(),
            row.failures
        );
    }
    server.shutdown();

    let db_path = dir.path().join("crier.db");
    let queued = || -> i64 {
        let conn = rusqlite::Connection::open(&db_path).expect("the database");
        conn.query_row(
            "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')",
            [],
            |row| row.get(0),
        )
        .expect("a count")
    };
    let waiting = queued();
    let started = Instant::now();
    let server = start(&data_dir, "4");
    while queued() > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    server.shutdown();
    println!();
    println!("| dispatcher workers | messages delivered to log | seconds | messages/s |");
    println!("|---:|---:|---:|---:|");
    println!(
        "| 4 | {waiting} | {:.2} | {:.0} |",
        elapsed.as_secs_f64(),
        waiting as f64 / elapsed.as_secs_f64()
    );
}

fn start(data_dir: &str, dispatch_workers: &str) -> RunningServer {
    let cli = crier::cli::Cli::parse_from([
        "crier",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
        "--log-level",
        "warn",
        "--dispatch-workers",
        dispatch_workers,
    ]);
    let config: Config = cli.settings.into_raw().validate().expect("valid settings");
    crier::logging::init(config.log_format, config.log_level);
    server::start(
        config,
        Runtime {
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandomSource::new()),
            router: Router::standard(),
        },
    )
    .expect("the server starts")
}

/// First-run setup, a large wallet credit and a live key; returns the key.
fn prepare(addr: SocketAddr) -> String {
    let mut client = Client::connect(addr);
    let setup = client.call(
        "POST",
        "/v1/setup",
        &[],
        r#"{"email":"bench@example.com","password":"correct horse battery","name":"Bench","workspace_name":"Bench"}"#,
    );
    assert_eq!(setup.0, 201, "{}", setup.2);
    let body: serde_json::Value = serde_json::from_str(&setup.2).expect("json");
    let cookie = setup
        .1
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.split(';').next().unwrap_or("").to_owned())
        .expect("a session cookie");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    let workspace = body["workspace"]["id"]
        .as_str()
        .expect("workspace")
        .to_owned();
    let session = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let credit = client.call(
        "POST",
        &format!("/v1/admin/workspaces/{workspace}/wallet-adjustments"),
        &session,
        r#"{"amount_minor":1000000000000,"reason":"benchmark"}"#,
    );
    assert_eq!(credit.0, 201, "{}", credit.2);
    let key = client.call(
        "POST",
        "/v1/api-keys",
        &session,
        r#"{"name":"bench","scopes":["messages:send"],"mode":"live"}"#,
    );
    assert_eq!(key.0, 201, "{}", key.2);
    let key: serde_json::Value = serde_json::from_str(&key.2).expect("json");
    key["key"].as_str().expect("key").to_owned()
}

struct Row {
    sends: usize,
    failures: usize,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
}

impl Row {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies_ms.len() - 1) as f64 * p).round() as usize;
        self.latencies_ms[index]
    }
}

fn load(addr: SocketAddr, key: &str, connections: usize, duration: Duration, offset: usize) -> Row {
    let started = Instant::now();
    let results: Vec<(Vec<f64>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|connection| {
                scope.spawn(move || {
                    let mut client = Client::connect(addr);
                    let authorization = format!("Bearer {key}");
                    let body =
                        r#"{"channel":"sms","to":"+237677123456","text":"Your code is 123456"}"#;
                    let mut latencies = Vec::new();
                    let mut failures = 0;
                    let mut n = 0usize;
                    while started.elapsed() < duration {
                        let idempotency_key = format!("bench-{offset}-{connection}-{n}");
                        n += 1;
                        let sent = Instant::now();
                        let (status, _, _) = client.call(
                            "POST",
                            "/v1/messages",
                            &[
                                ("Authorization", authorization.as_str()),
                                ("Idempotency-Key", idempotency_key.as_str()),
                            ],
                            body,
                        );
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        if status != 201 {
                            failures += 1;
                        }
                    }
                    (latencies, failures)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a load thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latencies_ms: Vec<f64> = results.iter().flat_map(|(l, _)| l.clone()).collect();
    latencies_ms.sort_by(f64::total_cmp);
    Row {
        sends: latencies_ms.len(),
        failures: results.iter().map(|(_, f)| f).sum(),
        elapsed,
        latencies_ms,
    }
}

/// A keep-alive HTTP/1.1 client, just enough for this benchmark.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Vec<(String, String)>, String) {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let mut response_headers = Vec::new();
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("a length");
                }
                response_headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        (
            status,
            response_headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }
}
