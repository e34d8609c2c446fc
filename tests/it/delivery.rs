//! The delivery pipeline against local fake providers: fallback to the next provider on a
//! retryable error, retries with backoff, final errors and refunds, delivery receipts, and a
//! crash of the real binary in the middle of sending.

use std::time::Duration;

use serde_json::json;

use crate::auth_fixtures::count;
use crate::fake_http::{FakeHttp, Reply};
use crate::harness::{TestServer, wait_for_value, wait_until};
use crate::sending::{Sender, sms};
use crier::clock::Clock;
use crier::config::{Config, Secret};
use crier::delivery::settings::{SmsProviderName, TwilioSettings, WebhookSettings};
use crier::web::router::Router;

const RECEIPT_TOKEN: &str = "receipt-token-0123456789";

fn with_providers(
    twilio: Option<&FakeHttp>,
    webhook: Option<&FakeHttp>,
) -> impl FnOnce(&mut Config) {
    let twilio = twilio.map(FakeHttp::url);
    let webhook = webhook.map(FakeHttp::url);
    move |config: &mut Config| {
        let delivery = &mut config.delivery;
        delivery.sms_providers.clear();
        if let Some(base_url) = twilio {
            delivery.sms_providers.push(SmsProviderName::Twilio);
            delivery.twilio = Some(TwilioSettings {
                base_url,
                account_sid: "AC123".to_owned(),
                auth_token: Secret::new("twilio-token"),
            });
        }
        if let Some(url) = webhook {
            delivery.sms_providers.push(SmsProviderName::Webhook);
            delivery.webhook = Some(WebhookSettings {
                url: format!("{url}/sms"),
                secret: None,
            });
        }
        delivery.receipt_token = Some(Secret::new(RECEIPT_TOKEN));
        config.public_url = "https://crier.example.com".to_owned();
    }
}

fn twilio_error(status: u16, code: u32) -> Reply {
    Reply::json(
        status,
        json!({"code": code, "message": "refused", "status": status}),
    )
}

#[test]
fn a_retryable_error_falls_back_to_the_next_provider() {
    let twilio = FakeHttp::start(|_| twilio_error(503, 20500));
    let webhook = FakeHttp::start(|_| Reply::json(200, json!({"id": "wh-1"})));
    let server = TestServer::start_with(
        with_providers(Some(&twilio), Some(&webhook)),
        Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let message = sender.sent(&sms("+237677123456", "fallback"), "f1");
    let id = message["id"].as_str().unwrap();
    let sent = sender.wait_for(id, "sent");
    assert_eq!(sent["provider"], "webhook");
    assert_eq!(sent["provider_message_id"], "wh-1");
    let outcomes: Vec<(&str, &str)> = sent["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("twilio", "retryable_error"), ("webhook", "accepted")]
    );
    // Each provider saw the message once, in its own wire format, with our id where it takes one.
    let to_twilio = twilio.requests();
    assert_eq!(to_twilio.len(), 1);
    assert_eq!(
        to_twilio[0].form_field("To").as_deref(),
        Some("+237677123456")
    );
    assert_eq!(to_twilio[0].form_field("From").as_deref(), Some("CRIER"));
    let to_webhook = webhook.requests()[0].json();
    assert_eq!(to_webhook["id"], id);
    assert_eq!(
        to_webhook["receipt_url"],
        format!("https://crier.example.com/v1/webhooks/sms/webhook?token={RECEIPT_TOKEN}")
    );
    assert_eq!(sender.balance(), 75, "sent, so charged and not refunded");
}

#[test]
fn a_final_error_fails_the_message_at_once_and_refunds_it_once() {
    let twilio = FakeHttp::start(|_| twilio_error(400, 21211));
    let webhook = FakeHttp::start(|_| Reply::json(200, json!({"id": "never"})));
    let server = TestServer::start_with(
        with_providers(Some(&twilio), Some(&webhook)),
        Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let message = sender.sent(&sms("+237677123456", "bad number"), "x1");
    // Charged when accepted. Not read from the balance: delivery starts at once, so the refund
    // may already have followed.
    assert_eq!(
        message["charge"],
        json!({"amount_minor": 25, "currency": "XAF"})
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'charge' AND amount_minor = -25"
        ),
        1
    );
    let failed = sender.wait_for(message["id"].as_str().unwrap(), "failed");
    assert_eq!(failed["error"]["code"], "21211");
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 1);
    assert!(failed["refunded_at"].is_string(), "{failed}");
    assert_eq!(sender.balance(), 100);
    assert!(
        webhook.requests().is_empty(),
        "a final error stops the chain"
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'refund'"
        ),
        1
    );
}

#[test]
fn retryable_errors_are_retried_with_backoff_until_a_provider_accepts() {
    let webhook = FakeHttp::scripted([
        Reply::text(503, "busy"),
        Reply::text(503, "busy"),
        Reply::json(202, json!({"id": "wh-3"})),
    ]);
    let server = TestServer::start_with(with_providers(None, Some(&webhook)), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let probe = sender.probe();
    let id = sender.sent(&sms("+237677123456", "retry"), "r1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for cycle in 1..=2 {
        webhook.wait_for_requests(cycle, Duration::from_secs(10));
        let waiting = wait_until_message(&sender, &id, |m| {
            m["status"] == "queued" && m["delivery_cycles"] == cycle
        });
        // base 100 ms doubling per cycle, ±20 % jitter, from the (frozen) test clock.
        let due =
            chrono::DateTime::parse_from_rfc3339(waiting["next_attempt_at"].as_str().unwrap())
                .unwrap();
        let delay = (due.to_utc() - server.clock.now()).num_milliseconds();
        let base = 100 * (1 << (cycle - 1));
        assert!(
            delay >= base * 8 / 10 && delay < base * 12 / 10 + 1,
            "cycle {cycle}: retry in {delay} ms"
        );
        assert_eq!(waiting["error"]["code"], "http_503");
        // Not due yet: a dispatcher's claim at this (frozen) time leaves it queued, in the same
        // cycle, and nothing more is sent until the clock passes the retry time.
        probe.dispatch_round();
        let still = sender.message(&id);
        assert_eq!(
            (&still["status"], &still["delivery_cycles"]),
            (&json!("queued"), &json!(cycle)),
            "{still}"
        );
        assert_eq!(webhook.requests().len(), cycle);
        server.clock.advance(chrono::Duration::seconds(1));
    }
    let sent = sender.wait_for(&id, "sent");
    assert_eq!(sent["delivery_cycles"], 3);
    assert_eq!(sent["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(sender.balance(), 75);
}

#[test]
fn a_message_that_exhausts_its_cycles_fails_and_is_refunded_once() {
    let webhook = FakeHttp::start(|_| Reply::text(503, "down"));
    let server = TestServer::start_with(
        |config| {
            with_providers(None, Some(&webhook))(config);
            config.delivery.max_delivery_cycles = 2;
        },
        Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let probe = sender.probe();
    let id = sender.sent(&sms("+237677123456", "doomed"), "d1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    webhook.wait_for_requests(1, Duration::from_secs(10));
    wait_until_message(&sender, &id, |m| m["status"] == "queued");
    server.clock.advance(chrono::Duration::seconds(1));
    let failed = sender.wait_for(&id, "failed");
    assert_eq!(failed["delivery_cycles"], 2);
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(sender.balance(), 100);
    // Nothing happens to it after that, however long we wait: a dispatcher's claim two hours
    // later leaves it failed, in its last cycle.
    server.clock.advance(chrono::Duration::hours(2));
    probe.dispatch_round();
    let after = sender.message(&id);
    assert_eq!(
        (&after["status"], &after["delivery_cycles"]),
        (&json!("failed"), &json!(2)),
        "{after}"
    );
    assert_eq!(webhook.requests().len(), 2);
    assert_eq!(sender.balance(), 100);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'refund'"
        ),
        1
    );
}

/// Polls the message until `done` accepts it.
fn wait_until_message(
    sender: &Sender<'_>,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for_value(
        &format!("message {id} reaches the expected state"),
        Duration::from_secs(10),
        || sender.message(id),
        done,
    )
}

fn post_receipt(
    server: &TestServer,
    provider: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> crate::harness::TestResponse {
    server.request(
        "POST",
        &format!("/v1/webhooks/sms/{provider}?token={token}"),
        &[("Content-Type", content_type)],
        body.as_bytes(),
    )
}

#[test]
fn delivery_receipts_move_sent_messages_to_delivered_or_failed() {
    let webhook = accepting_webhook(Duration::ZERO);
    let server = TestServer::start_with(with_providers(None, Some(&webhook)), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let first = sender.sent(&sms("+237677123456", "one"), "a")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = sender.sent(&sms("+237677123457", "two"), "b")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sender.wait_for(&first, "sent");
    sender.wait_for(&second, "sent");
    let receipts = json!([
        {"id": first.replace("msg_", "wh_"), "status": "delivered"},
        {"id": second.replace("msg_", "wh_"), "status": "undeliverable", "error_code": "unknown_subscriber"},
        {"id": "wh_nobody", "status": "delivered"},
    ])
    .to_string();
    // A wrong or missing token changes nothing.
    post_receipt(
        &server,
        "webhook",
        "wrong-token-000000000",
        "application/json",
        &receipts,
    )
    .assert_error(401, "invalid_signature");
    assert_eq!(sender.message(&first)["status"], "sent");
    let applied = post_receipt(
        &server,
        "webhook",
        RECEIPT_TOKEN,
        "application/json",
        &receipts,
    );
    assert_eq!(applied.status, 200, "{}", applied.text());
    assert_eq!(applied.json(), json!({"received": 3, "applied": 2}));
    assert_eq!(sender.message(&first)["status"], "delivered");
    let undelivered = sender.message(&second);
    assert_eq!(undelivered["status"], "failed");
    assert_eq!(undelivered["error"]["code"], "unknown_subscriber");
    // Accepted by a provider, so charged: a failed receipt refunds nothing.
    assert_eq!(sender.balance(), 50);
    // The same receipts again: applied to nothing (final states never move).
    let again = post_receipt(
        &server,
        "webhook",
        RECEIPT_TOKEN,
        "application/json",
        &receipts,
    );
    assert_eq!(again.json()["applied"], 0);
    // Unknown provider, or garbage.
    post_receipt(
        &server,
        "nexmo",
        RECEIPT_TOKEN,
        "application/json",
        &receipts,
    )
    .assert_error(404, "not_found");
    post_receipt(
        &server,
        "webhook",
        RECEIPT_TOKEN,
        "application/json",
        "{\"id\": 1}",
    )
    .assert_error(400, "bad_request");
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains("crier_webhooks_total{provider=\"webhook\",verdict=\"accepted\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("crier_messages{status=\"delivered\"} 1"),
        "{metrics}"
    );
}

#[test]
fn twilio_status_callbacks_are_receipts() {
    let twilio = FakeHttp::start(|_| Reply::json(201, json!({"sid": "SM123", "status": "queued"})));
    let server = TestServer::start_with(with_providers(Some(&twilio), None), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let id = sender.sent(&sms("+237677123456", "hello"), "t")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sender.wait_for(&id, "sent");
    assert_eq!(
        twilio.requests()[0].form_field("StatusCallback").as_deref(),
        Some(
            format!("https://crier.example.com/v1/webhooks/sms/twilio?token={RECEIPT_TOKEN}")
                .as_str()
        )
    );
    let callback = post_receipt(
        &server,
        "twilio",
        RECEIPT_TOKEN,
        "application/x-www-form-urlencoded",
        "MessageSid=SM123&MessageStatus=delivered&AccountSid=AC123",
    );
    assert_eq!(callback.status, 200, "{}", callback.text());
    assert_eq!(sender.message(&id)["status"], "delivered");
}

#[test]
fn receipts_are_off_without_a_token() {
    let server = TestServer::start();
    post_receipt(
        &server,
        "log",
        "anything-at-all-12345",
        "application/json",
        "{}",
    )
    .assert_error(404, "not_found");
}

/// The settings of the crash tests: SMS through the webhook provider at `webhook_url`, `workers`
/// dispatchers claiming `batch` messages with a 3 s lease, quick polls, then `more`.
fn crash_test_settings<'a>(
    webhook_url: &'a str,
    workers: &'a str,
    batch: &'a str,
    more: &[&'a str],
) -> Vec<&'a str> {
    let mut settings = vec![
        "--sms-providers",
        "webhook",
        "--sms-webhook-url",
        webhook_url,
        "--dispatch-workers",
        workers,
        "--dispatch-batch",
        batch,
        "--dispatch-lease-secs",
        "3",
        "--provider-timeout-secs",
        "2",
        "--dispatch-poll-ms",
        "50",
        "--password-iterations",
        "100000",
    ];
    settings.extend_from_slice(more);
    settings
}

/// The real binary is killed while a slow provider holds messages `sending`; after a restart
/// every message ends `sent`, each charged exactly once, and the books balance.
#[test]
fn a_crash_while_sending_loses_no_message_and_charges_none_twice() {
    const MESSAGES: usize = 20;
    let webhook = accepting_webhook(Duration::from_millis(250));
    let dir = tempfile::tempdir().unwrap();
    let webhook_url = format!("{}/sms", webhook.url());
    let settings = crash_test_settings(&webhook_url, "2", "4", &[]);
    let first = crate::process::ServeProcess::start_with(dir.path(), &settings);
    let key = credited_sender(&first);
    send_sms(&first, &key, "crash", MESSAGES);
    webhook.wait_for_requests(3, Duration::from_secs(20));
    let db_path = dir.path().join("crier.db");
    let status_count = |status: &str| -> i64 {
        rusqlite::Connection::open(&db_path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM messages WHERE status = ?1",
                [status],
                |row| row.get(0),
            )
            .unwrap()
    };
    assert!(
        status_count("sending") > 0,
        "the kill must catch messages in flight"
    );
    first.kill();
    assert!(status_count("sent") < MESSAGES as i64);

    let second = crate::process::ServeProcess::start_with(dir.path(), &settings);
    wait_for_value(
        "every message is sent after the restart (sent so far)",
        Duration::from_secs(60),
        || status_count("sent"),
        |sent| *sent == MESSAGES as i64,
    );
    drop(second);

    let conn = rusqlite::Connection::open(&db_path).unwrap();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
    assert_eq!(
        one("SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"),
        MESSAGES as i64
    );
    assert_eq!(
        one("SELECT count(*) FROM wallet_ledger WHERE kind = 'refund'"),
        0
    );
    assert_eq!(
        one("SELECT wallet_balance_minor FROM workspaces"),
        1000 - 25 * MESSAGES as i64
    );
    // At least once towards the provider: every message reached it; a message in flight at
    // the kill may have reached it twice, and no more.
    let received: Vec<String> = webhook
        .requests()
        .iter()
        .map(|request| request.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = received.iter().collect();
    assert_eq!(distinct.len(), MESSAGES);
    assert!(
        received.len() <= MESSAGES + 2 * 4,
        "{} calls",
        received.len()
    );
    crate::process::assert_doctor_clean(&db_path);
}

/// A dispatcher whose provider call outlives its lease loses the message to another
/// dispatcher; both calls reach the provider (at least once), the message ends `sent` and is
/// charged once, and the books balance.
#[test]
fn a_lease_that_runs_out_mid_call_is_taken_over_without_double_charging() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&calls);
    let webhook = FakeHttp::start(move |_| {
        // The first call is slow; the takeover's is quick.
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let reply = Reply::json(200, json!({ "id": format!("wh-{n}") }));
        if n == 0 {
            reply.after(Duration::from_millis(800))
        } else {
            reply
        }
    });
    let server = TestServer::start_with(
        |config| {
            with_providers(None, Some(&webhook))(config);
            config.delivery.dispatch_lease = Duration::from_secs(30);
        },
        Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(100);
    let id = sender.sent(&sms("+237677123456", "slow"), "slow")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    webhook.wait_for_requests(1, Duration::from_secs(10));
    // The (test) clock jumps past the lease while the first call is still running.
    server.clock.advance(chrono::Duration::seconds(31));
    webhook.wait_for_requests(2, Duration::from_secs(10));
    let sent = sender.wait_for(&id, "sent");
    // The slow call comes back, finds its claim gone, and records its acceptance as a second
    // attempt: the message stays sent, charged once.
    let message = wait_until_message(&sender, &id, |m| {
        m["attempts"].as_array().is_some_and(|a| a.len() >= 2)
    });
    assert_eq!(message["status"], "sent", "{message}");
    assert_eq!(
        message["attempts"].as_array().unwrap().len(),
        2,
        "{message}"
    );
    assert!(sent["provider_message_id"].is_string());
    assert_eq!(sender.balance(), 75);
    crate::process::assert_doctor_clean(&server.db_path());
}

/// Many messages through four dispatchers whose claims grow and whose settlements are written
/// in groups, while sends keep arriving: every message reaches the provider exactly once, is
/// sent with one attempt, charged once, and the books balance.
#[test]
fn messages_settled_in_groups_are_each_sent_once_and_charged_once() {
    const MESSAGES: usize = 120;
    let webhook = accepting_webhook(Duration::ZERO);
    let server = TestServer::start_with(
        |config| {
            with_providers(None, Some(&webhook))(config);
            config.delivery.dispatch_workers = 4;
            config.delivery.dispatch_batch = 5;
        },
        Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(25 * MESSAGES as i64);
    for n in 0..MESSAGES {
        sender.sent(
            &sms("+237677123456", &format!("grouped {n}")),
            &format!("group-{n}"),
        );
    }
    wait_until("every message is sent", Duration::from_secs(30), || {
        count(
            &server,
            "SELECT count(*) FROM messages WHERE status = 'sent'",
        ) == MESSAGES as i64
    });
    let received: Vec<String> = webhook
        .requests()
        .iter()
        .map(|request| request.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = received.iter().collect();
    assert_eq!((received.len(), distinct.len()), (MESSAGES, MESSAGES));
    assert_eq!(
        count(&server, "SELECT count(*) FROM message_attempts"),
        MESSAGES as i64
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM messages WHERE provider_message_id = replace(id, 'msg_', 'wh_')"
        ),
        MESSAGES as i64
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"
        ),
        MESSAGES as i64
    );
    assert_eq!(sender.balance(), 0);
    crate::process::assert_doctor_clean(&server.db_path());
}

/// Through `log` alone no write counts a cycle before the call: the settlement does, for a
/// batch settled together as for one message, and a batch handed back counts none.
#[test]
fn a_log_chain_counts_each_cycle_in_its_settlement() {
    use std::sync::atomic::AtomicBool;
    let server = TestServer::start_with(
        |config| config.delivery.dispatch_workers = 0,
        Router::standard(),
    );
    let sender = Sender::new(&server, "test");
    for n in 0..30 {
        sender.sent(
            &sms("+237677123456", &format!("log {n}")),
            &format!("log-{n}"),
        );
    }
    let cycles = |status: &str| {
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE status = '{status}' AND delivery_cycles = 1"
            ),
        )
    };
    // A stopped dispatcher hands its claim back, nothing counted.
    let stopped = AtomicBool::new(true);
    let claimed = crier::delivery::dispatcher::dispatch_batch(server.app(), &stopped, 10).unwrap();
    assert_eq!(claimed, 10);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM messages WHERE status = 'queued' AND delivery_cycles = 0"
        ),
        30
    );
    let running = AtomicBool::new(false);
    let claimed = crier::delivery::dispatcher::dispatch_batch(server.app(), &running, 100).unwrap();
    assert_eq!(claimed, 30);
    assert_eq!(cycles("sent"), 30);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM message_attempts WHERE delivery_cycle = 1"
        ),
        30
    );
}

/// A webhook SMS provider that accepts every message after `delay`, answering with the
/// message's id as its own (`msg_…` → `wh_…`), which receipts then name.
fn accepting_webhook(delay: Duration) -> FakeHttp {
    FakeHttp::start(move |request| {
        let id = request.json()["id"]
            .as_str()
            .unwrap()
            .replace("msg_", "wh_");
        Reply::json(200, json!({ "id": id })).after(delay)
    })
}

/// The real binary is killed twice (SIGKILL) while a provider that always answers 500 holds a
/// call, each time with messages of the batch claimed but not yet attempted. Cycles are counted
/// when delivery comes to a message, not when the batch is claimed — against a provider this
/// slow, one message at a time, just before its call: a kill spends the cycle of the message in
/// hand, never those of the rest of the batch. After the restarts every message was offered to
/// the provider exactly `--max-delivery-cycles` times, none went past it, and each was refunded
/// once.
#[test]
fn a_crash_spends_the_cycle_of_the_message_in_hand_and_not_those_of_its_batch() {
    const MESSAGES: usize = 10;
    const MAX_CYCLES: u32 = 3;
    let failing = FakeHttp::start(|_| {
        Reply::json(500, json!({"error": "down"})).after(Duration::from_millis(300))
    });
    let dir = tempfile::tempdir().unwrap();
    let webhook_url = format!("{}/sms", failing.url());
    let max_cycles = MAX_CYCLES.to_string();
    let settings = crash_test_settings(
        &webhook_url,
        "1",
        "10",
        &[
            "--max-delivery-cycles",
            max_cycles.as_str(),
            "--retry-base-secs",
            "1",
            "--retry-max-secs",
            "1",
        ],
    );
    let first = crate::process::ServeProcess::start_with(dir.path(), &settings);
    let key = credited_sender(&first);
    // All due at one moment, so the first claim takes all ten; far enough ahead that the ten
    // sends all come before it on a loaded machine.
    let due = crier::clock::SystemClock.now() + chrono::Duration::seconds(10);
    let due = crier::clock::format_timestamp(due);
    for n in 0..MESSAGES {
        let mut body = sms("+237677123456", &format!("message {n}"));
        body["scheduled_at"] = json!(due);
        let sent = first.request(
            "POST",
            "/v1/messages",
            &format!("Authorization: Bearer {key}\r\nIdempotency-Key: cycles-{n}\r\n"),
            &body.to_string(),
        );
        assert_eq!(sent.status, 201, "{}", sent.text());
    }
    let db_path = dir.path().join("crier.db");
    let one = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db_path)
            .unwrap()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    };

    // Killed during the first call: ten claimed, one attempted, one cycle counted (the claim
    // of the whole batch counted ten before).
    failing.wait_for_requests(1, Duration::from_secs(30));
    first.kill();
    assert_eq!(
        one("SELECT count(*) FROM messages WHERE status = 'sending'"),
        MESSAGES as i64
    );
    assert_eq!(one("SELECT sum(delivery_cycles) FROM messages"), 1);

    // Killed again, inside a call of a later batch.
    let second = crate::process::ServeProcess::start_with(dir.path(), &settings);
    failing.wait_for_requests(5, Duration::from_secs(60));
    second.kill();
    let claimed_not_begun =
        one("SELECT count(*) FROM messages WHERE status = 'sending' AND delivery_cycles = 0");
    println!(
        "killed twice; {claimed_not_begun} claimed messages never attempted at the second kill"
    );

    let third = crate::process::ServeProcess::start_with(dir.path(), &settings);
    wait_for_value(
        "every message fails after its cycles (failed so far)",
        Duration::from_secs(120),
        || one("SELECT count(*) FROM messages WHERE status = 'failed'"),
        |failed| *failed == MESSAGES as i64,
    );
    drop(third);

    // Every message reached the provider exactly MAX_CYCLES times, and counted as many cycles.
    let mut calls: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
    for request in failing.requests() {
        let id = request.json()["id"].as_str().unwrap().to_owned();
        *calls.entry(id).or_default() += 1;
    }
    assert_eq!(calls.len(), MESSAGES, "{calls:?}");
    assert!(
        calls.values().all(|count| *count == MAX_CYCLES),
        "calls per message: {calls:?}"
    );
    assert_eq!(
        one(&format!(
            "SELECT count(*) FROM messages WHERE delivery_cycles <> {MAX_CYCLES}"
        )),
        0
    );
    // Money holds: each charged once and refunded once.
    assert_eq!(
        one("SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"),
        MESSAGES as i64
    );
    assert_eq!(
        one("SELECT count(*) FROM wallet_ledger WHERE kind = 'refund'"),
        MESSAGES as i64
    );
    assert_eq!(one("SELECT wallet_balance_minor FROM workspaces"), 1000);
    crate::process::assert_doctor_clean(&db_path);
}

/// Against a fast provider a dispatcher counts the cycles of a window of messages in one write
/// before calling the first of them, the window doubling after each quick call up to
/// `MAX_CYCLE_WINDOW`: the real binary is killed while a call hangs after 267 quick ones, and
/// the messages whose cycle was counted but that the provider never saw are fewer than
/// `MAX_CYCLE_WINDOW` (docs/design/delivery.md), while every message the provider saw had its
/// cycle counted first. When every call is quick the windows are messages 0, 1–2, 3–10, then 64
/// at a time from 11, so the hanging call (message 267) is the first of a full window: the worst
/// case, 63 counted and not called. A slower call starts the window again at one, and fewer are.
#[test]
fn a_crash_against_a_fast_provider_spends_the_cycles_of_at_most_one_window_not_called() {
    const MESSAGES: usize = 600;
    const QUICK_CALLS: usize = 267;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted_calls = std::sync::Arc::clone(&calls);
    let provider = FakeHttp::start(move |request| {
        let id = request.json()["id"]
            .as_str()
            .unwrap()
            .replace("msg_", "wh_");
        let call = counted_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // The call after the quick ones hangs until the process is killed.
        let delay = if call < QUICK_CALLS {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        };
        Reply::json(200, json!({ "id": id })).after(delay)
    });
    let dir = tempfile::tempdir().unwrap();
    let webhook_url = format!("{}/sms", provider.url());
    let more = ["--api-rate-limit", "0"];
    // Queued with the dispatchers off, then one dispatcher claims them all in one batch.
    let queueing = crash_test_settings(&webhook_url, "0", "1000", &more);
    let first = crate::process::ServeProcess::start_with(dir.path(), &queueing);
    let key = credited_sender_with(&first, 1_000_000);
    send_sms(&first, &key, "window", MESSAGES);
    first.kill();
    let sending = crash_test_settings(&webhook_url, "1", "1000", &more);
    let second = crate::process::ServeProcess::start_with(dir.path(), &sending);
    provider.wait_for_requests(QUICK_CALLS + 1, Duration::from_secs(120));
    second.kill();

    // Read after the kill: on a machine slow enough for the hanging call to time out first,
    // the dispatcher went on to the next message.
    let called: std::collections::BTreeSet<String> = provider
        .requests()
        .iter()
        .map(|request| request.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(called.len() > QUICK_CALLS, "{} called", called.len());
    let conn = rusqlite::Connection::open(dir.path().join("crier.db")).unwrap();
    let mut statement = conn
        .prepare("SELECT id FROM messages WHERE delivery_cycles > 0")
        .unwrap();
    let counted: std::collections::BTreeSet<String> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        called.is_subset(&counted),
        "called without a counted cycle: {:?}",
        called.difference(&counted).collect::<Vec<_>>()
    );
    let counted_not_called = counted.len() - called.len();
    println!("{counted_not_called} messages had a cycle counted and no call at the kill");
    assert!(
        counted_not_called < crier::delivery::dispatcher::MAX_CYCLE_WINDOW,
        "{counted_not_called} cycles spent on messages never called"
    );
}

/// `crier doctor` on a backup taken while a message was `sending`: days later its lease has
/// passed by the clock but not by the copy's own time, which is information (a server started on
/// the copy sends it again), not a fault. A lease that ended before a later change the database
/// recorded is a fault (no dispatcher reclaimed it while crier ran). Doctor opens the copy
/// read-only and leaves its bytes as they were.
#[test]
fn doctor_judges_leases_on_a_copy_by_the_copys_own_time_and_never_writes_to_it() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let mut body = sms("+237677123456", "later");
    body["scheduled_at"] = json!("2026-12-26T10:00:00Z");
    let first = sender.sent(&body, "copy-1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = sender.sent(&body, "copy-2")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // As a dispatcher leaves it mid-call (the server's manual clock is weeks behind the wall
    // clock, so the lease has long passed by the clock).
    let db = server.db();
    db.execute(
        "UPDATE messages SET status = 'sending', lease_owner = 'dsp_copy',
             lease_expires_at = '2026-11-25T09:32:00.000Z', updated_at = '2026-11-25T09:30:00.000Z'
         WHERE id = ?1",
        [&first],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let doctor = |copy: &std::path::Path| {
        let output = crate::process::crier()
            .args(["doctor", "--db-path"])
            .arg(copy)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.code(), text)
    };
    let backup = |name: &str| {
        let copy = dir.path().join(name);
        let output = crate::process::crier()
            .args(["backup", copy.to_str().unwrap(), "--db-path"])
            .arg(server.db_path())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        copy
    };

    let copy = backup("during.db");
    let before = std::fs::read(&copy).unwrap();
    let (code, report) = doctor(&copy);
    assert_eq!(code, Some(0), "{report}");
    let line = report
        .lines()
        .find(|line| line.starts_with("ok    messages:"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        line.contains("1 message(s) sending past their lease by the clock"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "doctor changed the copy"
    );

    // The database went on changing after that lease ended, and nobody reclaimed the message.
    db.execute(
        "UPDATE messages SET updated_at = '2026-11-25T10:30:00.000Z' WHERE id = ?1",
        [&second],
    )
    .unwrap();
    let (code, report) = doctor(&backup("later.db"));
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains(
            "FAIL  messages: 1 message(s) still sending past their lease while the database was in use"
        ),
        "{report}"
    );
}

/// First-run setup on a `crier serve` child, its wallet credited with 1,000 XAF, and a live
/// `messages:send` key (returned) — how the crash tests begin.
/// Sends `count` SMS through `server` with `key`, keyed `{prefix}-{n}`, each answered 201.
fn send_sms(server: &crate::process::ServeProcess, key: &str, prefix: &str, count: usize) {
    for n in 0..count {
        let sent = server.request(
            "POST",
            "/v1/messages",
            &format!("Authorization: Bearer {key}\r\nIdempotency-Key: {prefix}-{n}\r\n"),
            &sms("+237677123456", &format!("message {n}")).to_string(),
        );
        assert_eq!(sent.status, 201, "{}", sent.text());
    }
}

fn credited_sender(server: &crate::process::ServeProcess) -> String {
    credited_sender_with(server, 1000)
}

/// `credited_sender` with `amount_minor` in the wallet.
fn credited_sender_with(server: &crate::process::ServeProcess, amount_minor: i64) -> String {
    let setup = server.request(
        "POST",
        "/v1/setup",
        "",
        &crate::auth_fixtures::setup_body().to_string(),
    );
    assert_eq!(setup.status, 201, "{}", setup.text());
    let cookie = format!(
        "Cookie: crier_session={}\r\nX-CSRF-Token: {}\r\n",
        crate::auth_fixtures::session_cookie(&setup).unwrap(),
        setup.json()["csrf_token"].as_str().unwrap()
    );
    let workspace = setup.json()["workspace"]["id"].as_str().unwrap().to_owned();
    let credit = server.request(
        "POST",
        &format!("/v1/admin/workspaces/{workspace}/wallet-adjustments"),
        &cookie,
        &json!({"amount_minor": amount_minor, "reason": "crash test"}).to_string(),
    );
    assert_eq!(credit.status, 201, "{}", credit.text());
    let key = server.request(
        "POST",
        "/v1/api-keys",
        &cookie,
        r#"{"name": "crash", "scopes": ["messages:send"], "mode": "live"}"#,
    );
    assert_eq!(key.status, 201, "{}", key.text());
    key.json()["key"].as_str().unwrap().to_owned()
}
