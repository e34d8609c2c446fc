//! The real binary killed (SIGKILL) during a campaign's fan-out and again during its dispatch,
//! then started again: every eligible contact has exactly one message, the reservation equals
//! what the messages carry plus the refunded leftover, and `crier doctor` is clean.
//!
//! `cargo test` runs it at 20,000 contacts; `CRIER_CRASH_CONTACTS=200000` runs it at issue 14's
//! size (.ci/run does, as a suite of its own; README, "Tests").

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestResponse, read_response, wait_for_value};
use crate::process::{ServeProcess, admin, assert_doctor_clean, crier};
use crier::clock::{Clock, SystemClock, format_timestamp};
use crier::config::Synchronous;
use crier::contacts::store::{self, ContactRow};
use crier::contacts::{EmailState, PhoneState, UnsubscribeVia};
use crier::db::{Db, DbSettings};
use crier::ids::{ContactId, Ids, SystemRandomSource, WorkspaceId};
use crier::vocabulary::Mode;

/// Twenty fan-out chunks: enough to be killed between two of them, small enough for every
/// `cargo test` in a debug build (the benchmark, examples/campaign_bench.rs, takes the large
/// sizes).
const DEFAULT_CONTACTS: usize = 20_000;

/// Every server of the test: a short lease, so the batches a kill leaves `sending` are claimed
/// again 20 s after it rather than 120 s (the shortest a 15 s provider timeout allows).
const SERVE: &[&str] = &["--dispatch-lease-secs", "20"];

/// How many contacts the test writes: `CRIER_CRASH_CONTACTS`, else `DEFAULT_CONTACTS`.
fn contacts() -> usize {
    match std::env::var("CRIER_CRASH_CONTACTS") {
        Ok(text) => text
            .parse()
            .ok()
            .filter(|n| *n >= 2_000)
            .unwrap_or_else(|| panic!("CRIER_CRASH_CONTACTS={text}: a count of at least 2000")),
        Err(_) => DEFAULT_CONTACTS,
    }
}

/// How long a phase may take: `per_20k` for every 20,000 contacts (a loaded 2-core CI machine).
fn allowance(contacts: usize, per_20k: u64) -> Duration {
    Duration::from_secs(per_20k * (contacts as u64).div_ceil(20_000))
}

/// `contacts` live contacts of the workspace, written straight through the contacts store
/// (an import of this size would take most of the test's time): names of three lengths, so
/// messages of one, two and three segments; every tenth unsubscribed from SMS.
fn write_contacts(
    data_dir: &std::path::Path,
    workspace_id: &WorkspaceId,
    contacts: usize,
) -> usize {
    let db = Db::open(&DbSettings {
        path: data_dir.join("crier.db"),
        pool_size: 1,
        busy_timeout: Duration::from_secs(5),
        synchronous: Synchronous::Normal,
    })
    .unwrap();
    let ids = Ids::new(Arc::new(SystemClock), Arc::new(SystemRandomSource::new()));
    let now = format_timestamp(SystemClock.now());
    let mut eligible = 0;
    db.write(|conn| {
        for n in 0..contacts {
            let first = match n % 3 {
                0 => "Ada".to_owned(),
                1 => "Maximilien".repeat(4),
                _ => "Bartholomew-Alexandre".repeat(5),
            };
            let unsubscribed = n % 10 == 9;
            if !unsubscribed {
                eligible += 1;
            }
            let row = ContactRow {
                id: ContactId::generate(&ids),
                workspace_id: workspace_id.clone(),
                mode: Mode::Live,
                name: format!("{first} N{n}"),
                first_name: Some(first),
                last_name: Some(format!("N{n}")),
                phone: Some(format!("+2376{n:08}")),
                phone_input: None,
                email: None,
                language: None,
                custom: "{}".to_owned(),
                phone_state: PhoneState::Valid,
                email_state: EmailState::Valid,
                sms_unsubscribed_at: unsubscribed.then(|| now.clone()),
                sms_unsubscribed_via: unsubscribed.then_some(UnsubscribeVia::Api),
                email_unsubscribed_at: None,
                email_unsubscribed_via: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            store::insert_contact(conn, &row, None)?;
        }
        Ok(())
    })
    .unwrap();
    eligible
}

/// `ServeProcess::request` without its 20 s read timeout: at 200,000 contacts a debug build
/// takes longer than that to estimate (every recipient's message rendered) and to launch.
fn request(
    server: &ServeProcess,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> TestResponse {
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(900)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut std::io::BufReader::new(stream))
}

#[test]
fn a_campaign_killed_during_its_fan_out_and_its_dispatch_sends_each_contact_exactly_once() {
    let contacts = contacts();
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path();
    let status = crier()
        .args(["migrate", "--data-dir"])
        .arg(data_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let key_info = crate::process::acme_with_key(
        data_dir,
        "campaigns",
        "contacts:read,campaigns:read,campaigns:write,messages:read",
        "live",
    );
    let key = key_info["key"].as_str().unwrap().to_owned();
    let workspace = WorkspaceId::parse(key_info["workspace_id"].as_str().unwrap()).unwrap();
    admin(
        data_dir,
        &[
            "adjust-wallet",
            "--workspace",
            workspace.as_str(),
            "--amount-minor",
            "100000000",
            "--reason",
            "crash test",
        ],
        "",
    );
    let eligible = write_contacts(data_dir, &workspace, contacts);
    println!("{contacts} contacts written after {:?}", started.elapsed());

    let auth = format!("Authorization: Bearer {key}\r\n");
    let call = |server: &ServeProcess, method: &str, path: &str, extra: &str, body: Value| {
        let response = request(
            server,
            method,
            path,
            &format!("{auth}{extra}"),
            &body.to_string(),
        );
        assert!(
            response.status < 300,
            "{method} {path}: {} {}",
            response.status,
            response.text()
        );
        response.json()
    };
    let server = ServeProcess::start_with(data_dir, SERVE);
    let campaign = call(
        &server,
        "POST",
        "/v1/campaigns",
        "",
        json!({"name": "Crash", "channel": "sms", "audience": {"all": true}, "opt_out_line": true,
               "text": "Hello {{ contact.first_name }}, our shop opens a new branch near you this week: come and see us!"}),
    );
    let id = campaign["id"].as_str().unwrap().to_owned();
    let estimate = call(
        &server,
        "POST",
        &format!("/v1/campaigns/{id}/estimate"),
        "",
        json!({}),
    );
    assert_eq!(estimate["recipients"], eligible);
    let launched = call(
        &server,
        "POST",
        &format!("/v1/campaigns/{id}/launch"),
        "Idempotency-Key: crash-launch\r\n",
        json!({}),
    );
    assert_eq!(launched["status"], "running");
    let reserved = launched["launch"]["reserved"]["amount_minor"]
        .as_i64()
        .unwrap();
    assert_eq!(
        reserved,
        estimate["charge"]["amount_minor"].as_i64().unwrap()
    );
    let path = format!("/v1/campaigns/{id}");
    let show = |server: &ServeProcess| call(server, "GET", &path, "", json!({}));

    // Killed mid fan-out: some chunks committed, not all.
    let created = wait_for_value(
        "a first chunk of messages",
        allowance(contacts, 300),
        || {
            show(&server)["launch"]["messages_created"]
                .as_u64()
                .unwrap()
        },
        |created| *created > 0,
    );
    assert!(
        created < eligible as u64,
        "the fan-out ended before the kill"
    );
    server.kill();
    let db = rusqlite::Connection::open(data_dir.join("crier.db")).unwrap();
    let (cursor, end, done): (i64, i64, Option<String>) = db
        .query_row(
            "SELECT fanout_cursor, fanout_last_rowid, fanout_done_at FROM campaigns WHERE id = ?1",
            [&id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(
        0 < cursor && cursor < end && done.is_none(),
        "killed mid fan-out: cursor {cursor} of {end}, done {done:?}"
    );
    println!(
        "killed mid fan-out after {:?}: cursor {cursor} of {end}, {created} messages",
        started.elapsed()
    );

    // Killed again once the fan-out is over and dispatchers are sending.
    let server = ServeProcess::start_with(data_dir, SERVE);
    wait_for_value(
        "the fan-out ends and sending is under way",
        allowance(contacts, 600),
        || show(&server),
        |campaign| {
            campaign["launch"]["fanout_done"] == true
                && campaign["stats"]["messages"]["sent"].as_u64().unwrap_or(0) > 0
        },
    );
    server.kill();
    let unsent: i64 = db
        .query_row(
            "SELECT count(*) FROM messages WHERE campaign_id = ?1
             AND status IN ('queued', 'sending')",
            [&id],
            |row| row.get(0),
        )
        .unwrap();
    assert!(unsent > 0, "killed mid dispatch: every message was sent");
    println!(
        "killed mid dispatch after {:?}: {unsent} messages not sent yet",
        started.elapsed()
    );

    let server = ServeProcess::start_with(data_dir, SERVE);
    let done = wait_for_value(
        "the campaign finishes",
        allowance(contacts, 900),
        || show(&server),
        |campaign| campaign["status"] != "running",
    );
    println!("finished after {:?}", started.elapsed());
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["launch"]["messages_created"], eligible);
    assert_eq!(done["stats"]["messages"]["sent"], eligible);
    drop(server);

    let one = |sql: &str| -> i64 { db.query_row(sql, [&id], |row| row.get(0)).unwrap() };
    assert_eq!(
        one("SELECT count(*) FROM messages WHERE campaign_id = ?1"),
        eligible as i64
    );
    assert_eq!(
        one("SELECT count(DISTINCT contact_id) FROM messages WHERE campaign_id = ?1"),
        eligible as i64,
        "one message per contact"
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM contacts c WHERE c.sms_unsubscribed_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = ?1
                             AND m.contact_id = c.id)"
        ),
        0,
        "no eligible contact is missing"
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM messages m JOIN contacts c ON c.id = m.contact_id
             WHERE m.campaign_id = ?1 AND c.sms_unsubscribed_at IS NOT NULL"
        ),
        0,
        "no unsubscribed contact is written to"
    );
    let carried = one("SELECT sum(charge_minor) FROM messages WHERE campaign_id = ?1");
    let charged = one(
        "SELECT -sum(amount_minor) FROM wallet_ledger WHERE reference = ?1 AND kind = 'charge'",
    );
    let refunded = one("SELECT COALESCE(sum(amount_minor), 0) FROM wallet_ledger
         WHERE reference = ?1 AND kind = 'refund'");
    assert_eq!(charged, reserved);
    assert_eq!(
        carried + refunded,
        charged,
        "the reservation is what the messages carry plus the leftover refunded"
    );
    assert_eq!(
        refunded, 0,
        "nobody changed since the launch: nothing left over"
    );
    assert_doctor_clean(&data_dir.join("crier.db"));
}
