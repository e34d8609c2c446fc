//! The send path under load when the process ends: `POST /v1/messages` answers from the
//! writer's job thread once its transaction has committed, while the HTTP worker has moved on.
//! These tests drive the real binary with keep-alive clients in threads and end it mid-load —
//! SIGKILL (a crash) and SIGTERM (a stop) — then check every answer against the database.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::process::{ServeProcess, admin, assert_doctor_clean};

const CLIENTS: usize = 8;
const CREDIT_MINOR: i64 = 100_000_000;
/// Durable commits, two HTTP workers for eight clients (sends must not need a worker each),
/// no dispatchers (the messages stay as the send left them), no rate limit.
const SETTINGS: [&str; 8] = [
    "--db-synchronous",
    "full",
    "--workers",
    "2",
    "--dispatch-workers",
    "0",
    "--api-rate-limit",
    "0",
];
const BODY: &str = r#"{"channel":"sms","to":"+237677123456","text":"Your code is 482913."}"#;

/// What the clients saw: the message id of every 201, by its `Idempotency-Key`; the keys
/// refused 503 (a stopping server refuses what it has not started); the keys sent whose answer
/// never came (the connection ended first).
#[derive(Default)]
struct Seen {
    created: Vec<(String, String)>,
    refused: Vec<String>,
    unanswered: Vec<String>,
}

/// A live key of a workspace whose wallet holds `CREDIT_MINOR`, made with `crier admin`.
fn credited_live_key(data_dir: &Path) -> String {
    let key = crate::process::acme_with_key(data_dir, "load", "messages:send", "live");
    admin(
        data_dir,
        &[
            "adjust-wallet",
            "--workspace",
            key["workspace_id"].as_str().unwrap(),
            "--amount-minor",
            &CREDIT_MINOR.to_string(),
            "--reason",
            "durability test",
        ],
        "",
    );
    key["key"].as_str().unwrap().to_owned()
}

/// One keep-alive request: the status and body, or `None` when the connection ended first.
fn send(
    stream: &mut BufReader<TcpStream>,
    key: &str,
    idempotency_key: &str,
) -> Option<(u16, String)> {
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
         Idempotency-Key: {idempotency_key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.get_mut().write_all(request.as_bytes()).ok()?;
    let mut status_line = String::new();
    if stream.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some((status, String::from_utf8(body).ok()?))
}

/// `CLIENTS` threads sending on keep-alive connections (keys `<thread>-<n>`) until their
/// connection ends (the server is killed or stopped); `created` counts the 201s as they come.
fn load(addr: SocketAddr, key: &str, created: &AtomicUsize) -> Seen {
    let seen = Mutex::new(Seen::default());
    std::thread::scope(|scope| {
        for thread in 0..CLIENTS {
            let seen = &seen;
            scope.spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut stream = BufReader::new(stream);
                for n in 0.. {
                    let idempotency_key = format!("{thread}-{n}");
                    let answer = send(&mut stream, key, &idempotency_key);
                    let mut seen = seen.lock().unwrap();
                    match answer {
                        Some((201, body)) => {
                            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                            let id = json["id"].as_str().unwrap().to_owned();
                            seen.created.push((idempotency_key, id));
                            created.fetch_add(1, Ordering::SeqCst);
                        }
                        Some((503, _)) => seen.refused.push(idempotency_key),
                        Some((status, body)) => panic!("{idempotency_key}: {status} {body}"),
                        None => {
                            seen.unanswered.push(idempotency_key);
                            return;
                        }
                    }
                }
            });
        }
    });
    seen.into_inner().unwrap()
}

/// Waits until the clients have had `count` sends answered 201.
fn wait_for_created(created: &AtomicUsize, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while created.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "the sends did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `crier serve` on `data_dir` with `SETTINGS`, the clients of `load` sending with `key`, and —
/// once 300 sends have been answered — `end` given the server to end it: what the clients saw
/// until their connections ended, and what `end` returned.
fn serve_under_load<R>(
    data_dir: &Path,
    key: &str,
    end: impl FnOnce(ServeProcess) -> R,
) -> (Seen, R) {
    let server = ServeProcess::start_with(data_dir, &SETTINGS);
    let (addr, created) = (server.addr, AtomicUsize::new(0));
    std::thread::scope(|scope| {
        let clients = scope.spawn(|| load(addr, key, &created));
        wait_for_created(&created, 300);
        let ended = end(server);
        (clients.join().unwrap(), ended)
    })
}

fn stored_ids(db_path: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM messages").unwrap();
    let ids = stmt.query_map([], |row| row.get(0)).unwrap();
    ids.collect::<Result<_, _>>().unwrap()
}

/// The books of the one workspace: every stored message's charge is one `charge` row naming
/// it, and the wallet holds the credit less those charges.
fn assert_books_balance(db_path: &Path) {
    let conn = rusqlite::Connection::open(db_path).unwrap();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
    let charged = one("SELECT coalesce(sum(charge_minor), 0) FROM messages");
    assert!(
        charged > 0,
        "the sends must be charged for the books to mean anything"
    );
    assert_eq!(
        one("SELECT count(*) FROM messages WHERE charge_minor > 0"),
        one("SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"),
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM wallet_ledger l LEFT JOIN messages m ON m.id = l.reference \
             WHERE l.kind = 'charge' AND (m.id IS NULL OR -l.amount_minor <> m.charge_minor)"
        ),
        0,
        "a charge without its message, or of another amount"
    );
    assert_eq!(
        one("SELECT wallet_balance_minor FROM workspaces"),
        CREDIT_MINOR - charged
    );
}

/// Killed mid-load: every send answered 201 is there after the crash; after a restart,
/// retrying each unanswered send with its key stores it or replays it, so each key ends with
/// exactly one message, charged once. (That an answer leaves only after its commit is the
/// writer's unit test `a_job_submitted_without_waiting_is_delivered_after_its_commit`: a
/// process kill cannot tell written from fsynced.)
#[test]
fn a_crash_under_load_loses_no_answered_send_and_retries_store_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("crier.db");
    let key = credited_live_key(dir.path());
    let (seen, ()) = serve_under_load(dir.path(), &key, ServeProcess::kill);
    assert_eq!(
        seen.unanswered.len(),
        CLIENTS,
        "every client was cut off mid-send"
    );
    assert!(seen.refused.is_empty(), "refused: {:?}", seen.refused);

    let stored = stored_ids(&db_path);
    let lost: Vec<_> = seen
        .created
        .iter()
        .filter(|(_, id)| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "answered 201 but not stored: {lost:?}");
    // A send in flight at the kill may have committed without its answer leaving: at most one
    // per client.
    assert!(stored.len() <= seen.created.len() + CLIENTS);

    let server = ServeProcess::start_with(dir.path(), &SETTINGS);
    let stream = TcpStream::connect(server.addr).unwrap();
    let mut stream = BufReader::new(stream);
    for idempotency_key in &seen.unanswered {
        let (status, body) = send(&mut stream, &key, idempotency_key).unwrap();
        assert_eq!(status, 201, "{idempotency_key}: {body}");
    }
    // And a retry of an answered one replays it.
    let (first_key, first_id) = &seen.created[0];
    let (status, body) = send(&mut stream, &key, first_key).unwrap();
    assert_eq!(status, 201);
    assert!(body.contains(first_id.as_str()), "{body}");
    drop(server);

    assert_eq!(
        stored_ids(&db_path).len(),
        seen.created.len() + seen.unanswered.len(),
        "each key ends with exactly one message"
    );
    assert_books_balance(&db_path);
    assert_doctor_clean(&db_path);
}

/// Stopped mid-load with SIGTERM: the server finishes the sends it has read, so the messages
/// stored are exactly those answered 201 — none stored unanswered, none answered unstored —
/// and it exits 0.
#[test]
fn a_stop_under_load_answers_every_send_it_stores() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("crier.db");
    let key = credited_live_key(dir.path());
    let (seen, status) = serve_under_load(dir.path(), &key, |server| {
        server.signal("TERM");
        server.wait_within(Duration::from_secs(60))
    });
    assert!(status.success(), "{status:?}");
    let answered: BTreeSet<String> = seen.created.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(answered.len(), seen.created.len());
    assert_eq!(stored_ids(&db_path), answered);
    assert_books_balance(&db_path);
    assert_doctor_clean(&db_path);
}

/// A send waiting for its commit does not hold an HTTP worker: with one worker, and the write
/// lock held by another process so the send cannot commit, the server still answers other
/// requests; once the lock is let go, the send is answered 201.
#[test]
fn a_send_waiting_for_its_commit_leaves_the_worker_free() {
    let dir = tempfile::tempdir().unwrap();
    let key = credited_live_key(dir.path());
    let mut settings = SETTINGS.to_vec();
    settings[3] = "1"; // --workers
    let server = ServeProcess::start_with(dir.path(), &settings);
    // A first send: the key's first use writes its `last_used_at` on the worker (at most once
    // a minute), which would wait for the lock too.
    let mut warm = BufReader::new(TcpStream::connect(server.addr).unwrap());
    assert_eq!(send(&mut warm, &key, "warm").unwrap().0, 201);
    let holder = rusqlite::Connection::open(dir.path().join("crier.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let addr = server.addr;
    let sending = std::thread::spawn(move || {
        let mut stream = BufReader::new(TcpStream::connect(addr).unwrap());
        send(&mut stream, &key, "held-1")
    });
    // Long enough for the one worker to have taken the send and handed it to the job thread,
    // which now waits (up to the busy timeout, 5 s) for the lock.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(server.get("/healthz").status, 200);
    assert!(
        !sending.is_finished(),
        "the send was answered while the lock was held"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    holder.execute_batch("COMMIT").unwrap();
    let (status, body) = sending.join().unwrap().unwrap();
    assert_eq!(status, 201, "{body}");
}
