//! Retention (docs/rules/messages.md, "Retention"): past `--message-retention-days` the janitor
//! drops finished messages' subjects and bodies — amounts, statuses, recipients, attempts and
//! the ledger stay — and gives the freed pages back to the filesystem (incremental vacuum).

use serde_json::{Value, json};

use crate::auth_fixtures::count;
use crate::harness::{TestServer, test_epoch};
use crate::sending::{Sender, sms};
use crier::web::router::Router;

const DAY: i64 = 24 * 60 * 60;

fn server_keeping(days: Option<u64>) -> TestServer {
    TestServer::start_with(
        |config| {
            config.message_retention =
                days.map(|days| std::time::Duration::from_secs(days * 86400));
        },
        Router::standard(),
    )
}

/// What retention must never change: every message's money, status, recipient and times, and
/// the whole ledger.
fn books(server: &TestServer) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let rows = |sql: &str| -> Vec<Vec<String>> {
        let db = server.db();
        let mut stmt = db.prepare(sql).unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            (0..columns)
                .map(|i| {
                    row.get::<_, rusqlite::types::Value>(i)
                        .map(|value| format!("{value:?}"))
                })
                .collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    (
        rows(
            "SELECT id, status, to_address, units, included_units, charge_minor, currency,
                    provider, provider_message_id, created_at, updated_at, sent_at, metadata,
                    (SELECT count(*) FROM message_attempts a WHERE a.message_id = m.id)
             FROM messages m ORDER BY id",
        ),
        rows("SELECT * FROM wallet_ledger ORDER BY rowid"),
    )
}

fn pages(server: &TestServer) -> (i64, i64) {
    (
        count(server, "SELECT page_count FROM pragma_page_count()"),
        count(server, "SELECT freelist_count FROM pragma_freelist_count()"),
    )
}

fn sweep_at(server: &TestServer, days: i64) -> String {
    let at = test_epoch() + chrono::Duration::seconds(days * DAY);
    server.clock.set(at);
    crier::janitor::sweep(server.app()).unwrap();
    crier::clock::format_timestamp(at)
}

#[test]
fn past_the_retention_period_bodies_go_money_and_statuses_stay_and_the_file_shrinks() {
    let server = server_keeping(Some(30));
    let sender = Sender::new(&server, "live");
    sender.credit(10_000);
    let text = sender.sent(&sms("677 12 34 56", "Your code is 1234"), "r1");
    let text_id = text["id"].as_str().unwrap().to_owned();
    // An email with a large HTML body: its overflow pages are what the purge frees.
    let html: String = (0..4000)
        .map(|n| format!("<p>line {n}</p>\n"))
        .collect::<String>();
    let email = sender.sent(
        &json!({"channel": "email", "to": "ada@example.com", "subject": "Your invoice",
                "html": html, "metadata": {"order": "A-17"}}),
        "r2",
    );
    let email_id = email["id"].as_str().unwrap().to_owned();
    // Scheduled past the retention period: still unsent when its creation is 30 days old.
    let mut later = sms("677 12 34 57", "See you in May");
    later["scheduled_at"] = json!("2027-01-09T09:30:00Z");
    let later = sender.sent(&later, "r3");
    let later_id = later["id"].as_str().unwrap().to_owned();
    sender.wait_for(&text_id, "sent");
    sender.wait_for(&email_id, "sent");
    let before = books(&server);
    let balance = sender.balance();

    // Day 29: within the period, nothing changes.
    sweep_at(&server, 29);
    assert_eq!(sender.message(&text_id)["text"], "Your code is 1234");
    assert_eq!(sender.message(&email_id)["html"], html.as_str());
    assert_eq!(sender.message(&text_id)["body_purged_at"], Value::Null);

    // Day 31: the sent ones lose their subject and bodies.
    let (pages_before, _) = pages(&server);
    let purged_at = sweep_at(&server, 31);
    let sms_view = sender.message(&text_id);
    assert_eq!(
        (&sms_view["text"], &sms_view["body_purged_at"]),
        (&Value::Null, &json!(purged_at))
    );
    assert_eq!(sms_view["status"], "sent");
    assert_eq!(sms_view["to"], "+237677123456");
    assert_eq!(
        sms_view["charge"],
        json!({"amount_minor": 25, "currency": "XAF"})
    );
    assert_eq!(sms_view["segments"], 1);
    assert_eq!(sms_view["attempts"].as_array().unwrap().len(), 1);
    let email_view = sender.message(&email_id);
    for field in ["subject", "text", "html"] {
        assert_eq!(email_view[field], Value::Null, "{field}: {email_view}");
    }
    assert_eq!(email_view["metadata"], json!({"order": "A-17"}));
    assert_eq!(email_view["body_purged_at"], json!(purged_at));
    // The list shows the same.
    let listed = sender.get("/v1/messages").json();
    let listed_sms = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == text_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (&listed_sms["text"], &listed_sms["body_purged_at"]),
        (&Value::Null, &json!(purged_at))
    );
    // The scheduled one keeps its body: it has not been sent yet.
    let waiting = sender.message(&later_id);
    assert_eq!(
        (
            &waiting["status"],
            &waiting["text"],
            &waiting["body_purged_at"]
        ),
        (&json!("scheduled"), &json!("See you in May"), &Value::Null)
    );
    // Money, statuses, recipients, times and the ledger are exactly as they were.
    assert_eq!(books(&server), before);
    assert_eq!(sender.balance(), balance);
    // The freed pages went back: none free, and the file is smaller by at least the HTML.
    let (pages_after, free_after) = pages(&server);
    assert_eq!(free_after, 0);
    assert!(
        pages_before - pages_after >= (html.len() / 4096) as i64,
        "{pages_before} pages, then {pages_after}"
    );

    // Once sent (day 45), the scheduled one is purged too, by the next round.
    server
        .clock
        .set(test_epoch() + chrono::Duration::seconds(45 * DAY));
    sender.wait_for(&later_id, "sent");
    assert_eq!(sender.message(&later_id)["text"], "See you in May");
    let purged_later = sweep_at(&server, 45);
    let later = sender.message(&later_id);
    assert_eq!(
        (&later["text"], &later["body_purged_at"]),
        (&Value::Null, &json!(purged_later))
    );
    assert_eq!(
        count(&server, "SELECT count(*) FROM message_retention_pending"),
        0
    );
    // A round more purges nothing twice: the first purge's time stays.
    sweep_at(&server, 60);
    assert_eq!(sender.message(&text_id)["body_purged_at"], json!(purged_at));
}

#[test]
fn with_retention_off_bodies_are_kept_forever() {
    let server = server_keeping(None);
    let sender = Sender::new(&server, "test");
    let message = sender.sent(&sms("677 12 34 56", "kept"), "k1");
    let id = message["id"].as_str().unwrap().to_owned();
    sender.wait_for(&id, "sent");
    sweep_at(&server, 3650);
    let kept = sender.message(&id);
    assert_eq!(
        (&kept["text"], &kept["body_purged_at"]),
        (&json!("kept"), &Value::Null)
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM messages WHERE body_purged_at IS NOT NULL"
        ),
        0
    );
}
