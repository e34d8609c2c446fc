//! Storage per message: how many bytes of the SQLite file one sent SMS costs when fresh, once
//! its idempotency record is swept (after a day), and once retention has dropped its body (after
//! `--message-retention-days`) and the janitor has given the freed pages back.
//!
//! `cargo run --release --example storage_bench [-- --messages 20000] [--email-html-bytes 4000]`
//!
//! With `--email-html-bytes N` the messages are emails with a subject and an HTML body of about
//! N bytes instead of SMS.
//!
//! In-process, in a temporary directory (`BENCH_TMPDIR` or the system's): the real server
//! (`server::start`, `synchronous=FULL`, the `log` SMS provider) on 127.0.0.1 with a manual
//! clock, so days can pass; a live API key with a funded wallet; 4 senders send one-segment SMS
//! (`POST /v1/messages`, each with its `Idempotency-Key`, as clients do) until all are `sent`.
//! Then the clock moves on and `janitor::sweep` runs exactly as the server's janitor would.
//! Sizes are the file's pages in use (`page_count - freelist_count`, times the page size) and the
//! file itself after a `wal_checkpoint(TRUNCATE)`; bytes per message are the growth over the
//! empty database divided by the messages.

// A benchmark that cannot set itself up has nothing to measure: it stops with the reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crier::clock::{Clock, ManualClock, SystemClock};
use crier::config::{Config, Synchronous};
use crier::ids::SystemRandomSource;
use crier::server::{self, Runtime};
use crier::web::router::Router;

const SENDERS: usize = 4;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One JSON request; panics unless 2xx. Returns the body and the `Set-Cookie` header.
fn call(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (Value, Option<String>) {
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(body.to_string()).unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("Set-Cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(status < 300, "POST {url}: {status} {value}");
    (value, cookie)
}

/// (pages in use × page size, the file's size after a truncating checkpoint), in bytes.
fn sizes(path: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let get =
        |sql: &str| -> u64 { conn.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap() as u64 };
    let used = (get("PRAGMA page_count") - get("PRAGMA freelist_count")) * get("PRAGMA page_size");
    drop(conn);
    (used, std::fs::metadata(path).unwrap().len())
}

/// The `n`th message: a one-segment SMS, or an email with about `html_bytes` of HTML.
fn body(n: usize, email_html_bytes: Option<usize>) -> Value {
    match email_html_bytes {
        None => json!({"channel": "sms", "to": format!("+23767{n:07}"),
                       "text": format!("Your verification code is {:06}. It expires in 10 minutes.", n * 7919 % 1_000_000)}),
        Some(bytes) => {
            let mut html = format!("<p>Hello customer {n},</p>");
            let mut line = 0;
            while html.len() < bytes {
                line += 1;
                html.push_str(&format!(
                    "<p>Invoice {n} line {line}: {} units.</p>",
                    n * line % 977
                ));
            }
            json!({"channel": "email", "to": format!("customer{n}@example.com"),
                   "subject": format!("Your invoice {n}"), "html": html})
        }
    }
}

fn main() {
    let mut messages = 20_000usize;
    let mut email_html_bytes: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--messages" => messages = args.next().expect("--messages N").parse().expect("N"),
            "--email-html-bytes" => {
                email_html_bytes = Some(
                    args.next()
                        .expect("--email-html-bytes N")
                        .parse()
                        .expect("N"),
                );
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let base = std::env::var_os("BENCH_TMPDIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(base).unwrap();
    let mut config = Config::for_tests(dir.path());
    config.db_synchronous = Synchronous::Full;
    config.workers = std::num::NonZeroUsize::new(8).unwrap();
    let db_path = config.db_path.clone();
    let start = SystemClock.now();
    let clock = Arc::new(ManualClock::new(start));
    let running = server::start(
        config,
        Runtime {
            clock: clock.clone(),
            random: Arc::new(SystemRandomSource::new()),
            router: Router::standard(),
        },
    )
    .unwrap();
    let base_url = format!("http://{}", running.addr());
    let agent = agent();

    let (owner, cookie) = call(
        &agent,
        &format!("{base_url}/v1/setup"),
        &[],
        &json!({"email": "owner@example.com", "password": "correct horse battery",
                "name": "Owner", "workspace_name": "Bench"}),
    );
    let cookie = cookie.expect("a session cookie");
    let csrf = owner["csrf_token"].as_str().unwrap().to_owned();
    let workspace = owner["workspace"]["id"].as_str().unwrap().to_owned();
    let console = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let (key, _) = call(
        &agent,
        &format!("{base_url}/v1/api-keys"),
        &console,
        &json!({"name": "bench", "scopes": ["messages:send"], "mode": "live"}),
    );
    let key = format!("Bearer {}", key["key"].as_str().unwrap());
    call(
        &agent,
        &format!("{base_url}/v1/admin/workspaces/{workspace}/wallet-adjustments"),
        &console,
        &json!({"amount_minor": 1_000_000_000i64, "reason": "bench"}),
    );
    let empty = sizes(&db_path);

    std::thread::scope(|scope| {
        for sender in 0..SENDERS {
            let (agent, key, url) = (
                agent.clone(),
                key.clone(),
                format!("{base_url}/v1/messages"),
            );
            scope.spawn(move || {
                for n in (sender..messages).step_by(SENDERS) {
                    let idempotency_key = format!("bench-{n}");
                    call(
                        &agent,
                        &url,
                        &[
                            ("Authorization", &key),
                            ("Idempotency-Key", &idempotency_key),
                        ],
                        &body(n, email_html_bytes),
                    );
                }
            });
        }
    });
    let sent = || -> u64 {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.query_row(
            "SELECT count(*) FROM messages WHERE status = 'sent' OR status = 'failed'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .unwrap() as u64
    };
    while sent() < messages as u64 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let fresh = sizes(&db_path);

    // A day and a minute later: the idempotency records are past their retention.
    clock.set(start + chrono::Duration::days(1) + chrono::Duration::minutes(1));
    crier::janitor::sweep(&running.app).unwrap();
    let after_idempotency = sizes(&db_path);

    // Past the default retention of 90 days: bodies dropped, freed pages given back.
    clock.set(start + chrono::Duration::days(91));
    crier::janitor::sweep(&running.app).unwrap();
    let after_retention = sizes(&db_path);
    running.shutdown();

    let per = |(used, file): (u64, u64)| {
        (
            used.saturating_sub(empty.0) as f64 / messages as f64,
            file.saturating_sub(empty.1) as f64 / messages as f64,
        )
    };
    let what = email_html_bytes.map_or_else(
        || "one-segment SMS".to_owned(),
        |bytes| format!("emails with ~{bytes} bytes of HTML"),
    );
    println!("{messages} {what}, live key, sent through the log provider\n");
    println!("| state | bytes/message in use | bytes/message of file |");
    println!("|---|---:|---:|");
    for (label, state) in [
        ("sent (idempotency record kept)", fresh),
        ("after the idempotency sweep (day 1)", after_idempotency),
        (
            "after retention and incremental vacuum (day 91)",
            after_retention,
        ),
    ] {
        let (used, file) = per(state);
        println!("| {label} | {used:.0} | {file:.0} |");
    }
}
