//! The send API and the delivery pipeline with the embedded `log` providers: a send is priced,
//! reserved and stored in one transaction, delivered by a dispatcher, and refunded exactly once
//! when it is cancelled before dispatch.

use std::cell::Cell;
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth_fixtures::{Console, bearer, count, create_key, send, setup};
use crate::harness::{TestServer, wait_for_value, wait_until};

/// A workspace with a live `messages:send`+`messages:read` key, for sending.
pub struct Sender<'s> {
    pub server: &'s TestServer,
    pub console: Console<'s>,
    pub key: String,
}

impl<'s> Sender<'s> {
    pub fn new(server: &'s TestServer, mode: &str) -> Sender<'s> {
        let console = setup(server);
        let (_, key) = create_key(&console, &["messages:send", "messages:read"], mode);
        Sender {
            server,
            console,
            key,
        }
    }

    /// Credits the wallet through the admin API.
    pub fn credit(&self, amount_minor: i64) {
        let response = self.console.post(
            &format!(
                "/v1/admin/workspaces/{}/wallet-adjustments",
                self.console.workspace_id()
            ),
            &json!({"amount_minor": amount_minor, "reason": "test credit"}),
        );
        assert_eq!(response.status, 201, "{}", response.text());
    }

    pub fn balance(&self) -> i64 {
        count(
            self.server,
            &format!(
                "SELECT wallet_balance_minor FROM workspaces WHERE id = '{}'",
                self.console.workspace_id()
            ),
        )
    }

    /// `POST /v1/messages` with `Idempotency-Key: idempotency_key`.
    pub fn send(&self, body: &Value, idempotency_key: &str) -> crate::harness::TestResponse {
        let authorization = format!("Bearer {}", self.key);
        send(
            self.server,
            "POST",
            "/v1/messages",
            vec![
                ("Authorization", authorization.as_str()),
                ("Idempotency-Key", idempotency_key),
            ],
            Some(body),
        )
    }

    /// Sends and expects 201; returns the message.
    pub fn sent(&self, body: &Value, idempotency_key: &str) -> Value {
        let response = self.send(body, idempotency_key);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }

    pub fn get(&self, path: &str) -> crate::harness::TestResponse {
        bearer(self.server, &self.key, "GET", path, None)
    }

    pub fn message(&self, id: &str) -> Value {
        let response = self.get(&format!("/v1/messages/{id}"));
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    /// Polls the message until it reaches `status` (the dispatcher runs on its own threads).
    pub fn wait_for(&self, id: &str, status: &str) -> Value {
        wait_for_value(
            &format!("message {id} is {status}"),
            Duration::from_secs(20),
            || self.message(id),
            |message| message["status"] == status,
        )
    }

    /// A test-mode key in this workspace, to watch the background threads with.
    pub fn probe(&self) -> Probe<'s> {
        let (_, key) = create_key(&self.console, &["messages:send", "messages:read"], "test");
        Probe {
            server: self.server,
            key,
            made: Cell::new(0),
        }
    }
}

/// Watches the dispatchers and the scheduler through test-mode messages: never charged, never
/// counted against quotas, always delivered by the `log` providers — so a probe moves no
/// wallet and reaches no fake provider. With the test clock frozen, every round of a background
/// thread sees the same time, so one round that provably ran at that time stands for all of
/// them: a test can then assert that something did *not* happen, without sleeping.
pub struct Probe<'s> {
    server: &'s TestServer,
    key: String,
    made: Cell<usize>,
}

impl Probe<'_> {
    fn create(&self, body: &Value) -> String {
        self.made.set(self.made.get() + 1);
        let response = send(
            self.server,
            "POST",
            "/v1/messages",
            vec![
                ("Authorization", format!("Bearer {}", self.key).as_str()),
                (
                    "Idempotency-Key",
                    format!("probe-{}", self.made.get()).as_str(),
                ),
            ],
            Some(body),
        );
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    fn wait_sent(&self, id: &str) {
        wait_until(
            &format!("probe message {id} is sent"),
            Duration::from_secs(20),
            || {
                bearer(
                    self.server,
                    &self.key,
                    "GET",
                    &format!("/v1/messages/{id}"),
                    None,
                )
                .json()["status"]
                    == "sent"
            },
        );
    }

    /// Returns once a dispatcher has claimed at the test clock's current time: a probe message
    /// due now has been sent. A claim takes every due message (oldest first, a batch at a time)
    /// in one statement and counts a delivery cycle on each, so a message whose status and
    /// `delivery_cycles` are unchanged after this was not due.
    pub fn dispatch_round(&self) {
        let id = self.create(&sms("+237677123456", "probe"));
        self.wait_sent(&id);
    }

    /// Schedules a probe message at `at` (RFC 3339); `scheduler_round` waits for it.
    pub fn schedule(&self, at: &str) -> String {
        let mut body = sms("+237677123456", "probe");
        body["scheduled_at"] = json!(at);
        self.create(&body)
    }

    /// Returns once the scheduler has queued the probe message `id` (and a dispatcher has sent
    /// it). The scheduler queues every scheduled message due by then in one statement, so a
    /// message still `scheduled` after this was not due.
    pub fn scheduler_round(&self, id: &str) {
        self.wait_sent(id);
    }
}

pub fn sms(to: &str, text: &str) -> Value {
    json!({"channel": "sms", "to": to, "text": text})
}

fn xaf(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "XAF"})
}

fn ledger_kinds(server: &TestServer) -> Vec<(String, i64)> {
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT kind, amount_minor FROM wallet_ledger ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn an_sms_is_charged_queued_and_delivered_by_the_log_provider() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let message = sender.sent(&sms("677 12 34 56", "Your code is 1234"), "k1");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["status"], "queued");
    assert_eq!(message["channel"], "sms");
    assert_eq!(message["to"], "+237677123456");
    assert_eq!(message["sender"], "CRIER");
    assert_eq!(message["encoding"], "gsm7");
    assert_eq!(message["segments"], 1);
    assert_eq!(message["units"], 1);
    assert_eq!(message["included_units"], 0);
    assert_eq!(message["charge"], xaf(25));
    assert_eq!(message["mode"], "live");
    assert_eq!(message["created_at"], "2026-11-25T09:30:00.000Z");
    assert_eq!(sender.balance(), 975);

    let id = message["id"].as_str().unwrap();
    let delivered = sender.wait_for(id, "sent");
    assert_eq!(delivered["provider"], "log");
    assert_eq!(delivered["provider_message_id"], format!("log_{id}"));
    let attempts = delivered["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivered}");
    assert_eq!(attempts[0]["provider"], "log");
    assert_eq!(attempts[0]["outcome"], "accepted");
    assert_eq!(attempts[0]["attempt"], 1);
    // Through `log` alone the settlement counts the cycle (no write before the call).
    assert_eq!(delivered["delivery_cycles"], 1, "{delivered}");
    assert_eq!(delivered["refunded_at"], Value::Null);
    assert_eq!(
        ledger_kinds(&server),
        [("adjustment".to_owned(), 1000), ("charge".to_owned(), -25)]
    );
}

#[test]
fn an_email_is_delivered_and_the_plan_quota_is_used_before_the_wallet() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    let admin_plan = sender.console.request(
        "PUT",
        &format!(
            "/v1/admin/workspaces/{}/plan",
            sender.console.workspace_id()
        ),
        Some(&json!({"plan_code": "basic"})),
    );
    assert_eq!(admin_plan.status, 200, "{}", admin_plan.text());
    let message = sender.sent(
        &json!({"channel": "email", "to": "Ada@Example.com", "subject": "Hello",
                "text": "Hi Ada", "html": "<p>Hi Ada</p>", "metadata": {"order": 42}}),
        "e1",
    );
    assert_eq!(message["to"], "ada@example.com");
    assert_eq!(message["included_units"], 1);
    assert_eq!(message["charge"], xaf(0));
    assert_eq!(message["metadata"], json!({"order": 42}));
    let id = message["id"].as_str().unwrap();
    let delivered = sender.wait_for(id, "sent");
    assert_eq!(delivered["html"], "<p>Hi Ada</p>");
    assert_eq!(delivered["subject"], "Hello");
}

#[test]
fn a_send_without_an_idempotency_key_is_400_and_stores_nothing() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let response = bearer(
        &server,
        &sender.key,
        "POST",
        "/v1/messages",
        Some(&sms("+237677123456", "hi")),
    );
    response.assert_error(400, "idempotency_key_required");
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 0);
    assert_eq!(sender.balance(), 1000);
}

#[test]
fn the_same_idempotency_key_twice_is_one_message_and_one_charge() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let body = sms("+237677123456", "once");
    let first = sender.send(&body, "same");
    let second = sender.send(&body, "same");
    assert_eq!(first.status, 201);
    assert_eq!(second.status, 201);
    assert_eq!(second.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(first.json()["id"], second.json()["id"]);
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 1);
    assert_eq!(sender.balance(), 975);
    // The same key with another body is a misuse, refused without effect.
    sender
        .send(&sms("+237677123456", "twice"), "same")
        .assert_error(422, "idempotency_key_reused");
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 1);
}

#[test]
fn a_send_the_wallet_cannot_pay_is_402_and_changes_nothing() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(30);
    let long = "x".repeat(200); // 2 segments: 50 XAF
    let envelope = sender
        .send(&sms("+237677123456", &long), "poor")
        .assert_error(402, "insufficient_funds");
    let details = &envelope["error"]["details"];
    assert_eq!(details["units"], 2, "{envelope}");
    assert_eq!(details["charge"], xaf(50), "{envelope}");
    assert_eq!(details["balance"], xaf(30), "{envelope}");
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 0);
    assert_eq!(
        count(&server, "SELECT count(*) FROM billing_reservations"),
        0
    );
    assert_eq!(sender.balance(), 30);
}

#[test]
fn invalid_sends_are_422_naming_every_field_and_store_nothing() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let envelope = sender
        .send(
            &json!({"channel": "sms", "to": "12", "text": "", "scheduled_at": "yesterday"}),
            "bad",
        )
        .assert_error(422, "validation_failed");
    let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
    for field in ["to", "text", "scheduled_at"] {
        assert!(fields.contains_key(field), "{envelope}");
    }
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 0);
    // The refusal was not recorded under the key: the corrected body goes through with it.
    let fixed = sender.sent(&sms("+237677123456", "fixed"), "bad");
    assert_eq!(fixed["status"], "queued");
    assert_eq!(sender.balance(), 975);
    // A key without messages:send cannot send.
    let (_, reader) = create_key(&sender.console, &["messages:read"], "live");
    let authorization = format!("Bearer {reader}");
    send(
        &server,
        "POST",
        "/v1/messages",
        vec![
            ("Authorization", authorization.as_str()),
            ("Idempotency-Key", "r"),
        ],
        Some(&sms("+237677123456", "hi")),
    )
    .assert_error(403, "insufficient_scope");
    assert_eq!(sender.balance(), 975);
}

#[test]
fn a_test_mode_send_is_priced_not_charged_and_goes_to_the_log_provider() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "test");
    let message = sender.sent(&sms("+237677123456", "test"), "t1");
    assert_eq!(message["mode"], "test");
    assert_eq!(message["charged"], false);
    assert_eq!(message["charge"], xaf(25));
    assert_eq!(sender.balance(), 0);
    let delivered = sender.wait_for(message["id"].as_str().unwrap(), "sent");
    assert_eq!(delivered["provider"], "log");
    assert_eq!(delivered["delivery_cycles"], 1, "{delivered}");
    assert_eq!(count(&server, "SELECT count(*) FROM wallet_ledger"), 0);
    assert_eq!(
        count(&server, "SELECT count(*) FROM billing_reservations"),
        0
    );
}

#[test]
fn a_scheduled_message_waits_then_the_scheduler_queues_it() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let mut body = sms("+237677123456", "later");
    body["scheduled_at"] = json!("2026-11-25T10:00:00Z");
    let message = sender.sent(&body, "s1");
    assert_eq!(message["status"], "scheduled");
    assert_eq!(message["scheduled_at"], "2026-11-25T10:00:00.000Z");
    let id = message["id"].as_str().unwrap();
    // A scheduler round at 09:30:01 queues a probe due then, and leaves this one alone.
    let probe = sender.probe();
    let early = probe.schedule("2026-11-25T09:30:01Z");
    server.clock.advance(chrono::Duration::seconds(1));
    probe.scheduler_round(&early);
    assert_eq!(sender.message(id)["status"], "scheduled");
    server.clock.advance(chrono::Duration::minutes(31));
    sender.wait_for(id, "sent");
    assert_eq!(sender.balance(), 975);
}

#[test]
fn cancelling_a_scheduled_message_refunds_it_exactly_once() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let mut body = sms("+237677123456", "later");
    body["scheduled_at"] = json!("2026-11-26T10:00:00Z");
    let message = sender.sent(&body, "c1");
    let id = message["id"].as_str().unwrap().to_owned();
    assert_eq!(sender.balance(), 975);
    let cancel = |sender: &Sender<'_>| {
        bearer(
            sender.server,
            &sender.key,
            "POST",
            &format!("/v1/messages/{id}/cancel"),
            None,
        )
    };
    let cancelled = cancel(&sender);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");
    assert!(cancelled.json()["refunded_at"].is_string());
    assert_eq!(sender.balance(), 1000);
    // Again: still cancelled, no second refund.
    assert_eq!(cancel(&sender).status, 200);
    assert_eq!(sender.balance(), 1000);
    assert_eq!(
        ledger_kinds(&server),
        [
            ("adjustment".to_owned(), 1000),
            ("charge".to_owned(), -25),
            ("refund".to_owned(), 25)
        ]
    );
    // The scheduler never sends a cancelled message: its round that queues a probe scheduled
    // for the same time leaves the cancelled one as it is.
    let probe = sender.probe();
    let due_with_it = probe.schedule("2026-11-26T10:00:00Z");
    server.clock.advance(chrono::Duration::days(2));
    probe.scheduler_round(&due_with_it);
    assert_eq!(sender.message(&id)["status"], "cancelled");
    assert_eq!(sender.balance(), 1000);

    // A message already on its way cannot be cancelled.
    let now = sender.sent(&sms("+237677123456", "now"), "c2");
    let now_id = now["id"].as_str().unwrap();
    sender.wait_for(now_id, "sent");
    bearer(
        &server,
        &sender.key,
        "POST",
        &format!("/v1/messages/{now_id}/cancel"),
        None,
    )
    .assert_error(409, "conflict");
}

#[test]
fn messages_are_listed_newest_first_with_filters_and_a_cursor() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(10_000);
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = if n % 2 == 0 {
            sms("+237677123456", &format!("sms {n}"))
        } else {
            json!({"channel": "email", "to": "a@b.io", "subject": "s", "text": format!("email {n}")})
        };
        ids.push(
            sender.sent(&body, &format!("l{n}"))["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = sender.get("/v1/messages?limit=2").json();
    let first: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, [ids[4].as_str(), ids[3].as_str()]);
    // A listed message (an SMS, an email) is its detail without the detail's own fields —
    // compared once both are sent, so the dispatcher cannot change one between the two reads.
    for id in &first {
        sender.wait_for(id, "sent");
    }
    let settled = sender.get("/v1/messages?limit=2").json();
    for (listed, id) in settled["data"].as_array().unwrap().iter().zip(&first) {
        let mut detail = sender.get(&format!("/v1/messages/{id}")).json();
        let object = detail.as_object_mut().unwrap();
        for key in ["html", "refunded_at", "attempts"] {
            assert!(object.remove(key).is_some(), "{key} in {listed}");
        }
        assert_eq!(listed, &detail);
    }
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = sender
        .get(&format!("/v1/messages?limit=2&cursor={cursor}"))
        .json();
    assert_eq!(next["data"][0]["id"], ids[2].as_str());
    let emails = sender.get("/v1/messages?channel=email").json();
    assert_eq!(emails["data"].as_array().unwrap().len(), 2);
    let later = sender
        .get("/v1/messages?created_from=2026-11-25T09:30:01Z")
        .json();
    assert_eq!(later["data"].as_array().unwrap().len(), 0);
    let envelope = sender
        .get("/v1/messages?status=lost&channel=fax&created_to=soon")
        .assert_error(422, "validation_failed");
    let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
    assert_eq!(fields.len(), 3, "{envelope}");

    // Another workspace sees none of them, and cannot open one.
    let other = crate::auth_fixtures::second_tenant(&sender.console, "eve@example.com");
    let (_, other_key) = create_key(&other, &["messages:read"], "live");
    let theirs = bearer(&server, &other_key, "GET", "/v1/messages", None).json();
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0);
    bearer(
        &server,
        &other_key,
        "GET",
        &format!("/v1/messages/{}", ids[0]),
        None,
    )
    .assert_error(404, "not_found");
}

/// The list's pages are remembered between commits (`db::remembered`): a page read again is
/// the same bytes, and any change — a send, the dispatcher's, another process's on the file —
/// shows at the next read; other workspaces and the other mode never get another's page.
#[test]
fn a_listed_page_shows_every_change_at_the_next_read_and_only_to_its_workspace() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(10_000);
    let list = "/v1/messages?limit=10";
    // Keys of the workspace's test mode and of another workspace, each used once now: a key's
    // first use is itself a commit (its `last_used_at`), which would hide what is checked below.
    let (_, test_key) = create_key(&sender.console, &["messages:read"], "test");
    let other = crate::auth_fixtures::second_tenant(&sender.console, "eve@example.com");
    let (_, other_key) = create_key(&other, &["messages:read"], "live");
    for key in [&test_key, &other_key] {
        bearer(&server, key, "GET", "/v1/messages?limit=1", None);
    }
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = sender.sent(&sms("+237677123456", "one"), "r1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sender.wait_for(&first, "sent");
    let before = sender.get(list);
    assert_eq!(before.status, 200, "{}", before.text());
    for _ in 0..3 {
        let again = sender.get(list);
        assert_eq!(
            again.body, before.body,
            "unchanged, the page reads the same"
        );
    }
    read_until_kept(&server, &sender, list);

    // A send through the API shows at once, queued or already sent.
    let second = sender.sent(&sms("+237677123456", "two"), "r2")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        ids(&sender.get(list).json()),
        [second.clone(), first.clone()]
    );
    // The dispatcher's change of status shows too.
    sender.wait_for(&second, "sent");
    let page = sender.get(list).json();
    assert_eq!(page["data"][0]["status"], "sent", "{page}");
    // So does a change another connection makes to the file (as another process would).
    for _ in 0..3 {
        sender.get(list);
    }
    let changed = server
        .db()
        .execute(
            "UPDATE messages SET text = 'changed elsewhere' WHERE id = ?1",
            [&first],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let page = sender.get(list).json();
    assert_eq!(page["data"][1]["text"], "changed elsewhere", "{page}");

    // Read until remembered, then the same query from the workspace's test mode and from
    // another workspace, with no commit between: each gets its own (empty) page.
    read_until_kept(&server, &sender, list);
    let test_page = bearer(&server, &test_key, "GET", list, None).json();
    assert_eq!(
        test_page["data"].as_array().unwrap().len(),
        0,
        "{test_page}"
    );
    let theirs = bearer(&server, &other_key, "GET", list, None).json();
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0, "{theirs}");
    // And a page with another cursor or limit is its own page.
    let one = sender.get("/v1/messages?limit=1").json();
    assert_eq!(ids(&one), [second.as_str()]);
    let rest = sender
        .get(&format!("/v1/messages?limit=10&cursor={second}"))
        .json();
    assert_eq!(ids(&rest), [first]);
}

/// Reads `path` until one read is given the kept page. How many reads that takes is not fixed:
/// each pooled connection's first read after a commit keeps nothing (see `db::remembered`), and
/// which connection a read gets depends on what the server's own threads read meanwhile.
fn read_until_kept(server: &TestServer, sender: &Sender<'_>, path: &str) {
    for _ in 0..50 {
        let kept = kept_pages(server);
        assert_eq!(sender.get(path).status, 200);
        if kept_pages(server) > kept {
            return;
        }
    }
    panic!("{path} was never given as kept in 50 reads with no commit between");
}

/// `crier_remembered_reads_total{outcome="kept"}` from `GET /metrics`.
fn kept_pages(server: &TestServer) -> u64 {
    let metrics = server.get("/metrics").text();
    let line = metrics
        .lines()
        .find(|line| line.starts_with("crier_remembered_reads_total{outcome=\"kept\"}"))
        .unwrap_or_else(|| panic!("no kept pages counted in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn concurrent_sends_never_spend_more_than_the_wallet_holds() {
    let server = TestServer::start_with(
        |config| config.workers = std::num::NonZeroUsize::new(16).unwrap(),
        crier::web::router::Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(2500); // exactly 100 one-segment SMS at 25
    let (addr, key) = (server.addr, sender.key.clone());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|n| {
                let key = &key;
                scope.spawn(move || {
                    let body = sms("+237677123456", "race").to_string();
                    let request = format!(
                        "POST /v1/messages HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
                         Authorization: Bearer {key}\r\nIdempotency-Key: race-{n}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    crate::harness::send_raw(addr, request.as_bytes()).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!((accepted, refused), (100, 100), "{statuses:?}");
    assert_eq!(sender.balance(), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 100);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"
        ),
        100
    );
    // The doctor reads the real clock, this server a fixed one: let delivery finish first, or
    // a message still `sending` would look long past its (test-clock) lease.
    wait_until("delivery has finished", Duration::from_secs(20), || {
        count(
            &server,
            "SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')",
        ) == 0
    });
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_retry_of_a_scheduled_send_replays_even_after_its_time_has_passed() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let mut body = sms("+237677123456", "soon");
    body["scheduled_at"] = json!("2026-11-25T10:00:00Z");
    let first = sender.sent(&body, "lost-response");
    // The client never saw the answer; by the time it retries, the schedule time has passed.
    server.clock.advance(chrono::Duration::hours(1));
    let retry = sender.send(&body, "lost-response");
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(retry.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(retry.json()["id"], first["id"]);
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 1);
    assert_eq!(sender.balance(), 975);
}
