//! Campaign sending over HTTP: the estimate, the launch (the whole charge reserved at once, or
//! 402 and nothing changed), the fan-out in chunks that carves each message's share out of the
//! pool to the last minor unit, the scheduler, cancel with exact refunds, stats, the timeline,
//! test sends, every bad request with nothing changed, and the walls between workspaces and
//! modes. Money is checked against the database and `crier doctor`'s invariants.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth_fixtures::{
    Caller, Console, bearer, count, create_key, second_tenant, send, setup, without_request_id,
};
use crate::harness::{TestResponse, TestServer, wait_for_value};

/// Every scope the campaign routes take.
pub(crate) const SCOPES: &[&str] = &[
    "campaigns:read",
    "campaigns:write",
    "contacts:read",
    "contacts:write",
    "messages:send",
    "messages:read",
];

/// How long a campaign of a few thousand messages may take to settle on a loaded machine.
const SETTLE: Duration = Duration::from_secs(180);

/// A workspace with a key of every scope the campaign routes take.
pub(crate) struct Shop<'s> {
    pub(crate) server: &'s TestServer,
    pub(crate) owner: Console<'s>,
    pub(crate) api: Caller<'s>,
}

impl<'s> Shop<'s> {
    pub(crate) fn open(server: &'s TestServer, mode: &str) -> Shop<'s> {
        let owner = setup(server);
        let (_, key) = create_key(&owner, SCOPES, mode);
        Shop {
            server,
            api: Caller { server, key },
            owner,
        }
    }

    fn workspace(&self) -> &str {
        self.owner.workspace_id()
    }

    /// Credits the wallet through the admin API.
    pub(crate) fn credit(&self, amount_minor: i64) {
        let response = self.owner.post(
            &format!(
                "/v1/admin/workspaces/{}/wallet-adjustments",
                self.workspace()
            ),
            &json!({"amount_minor": amount_minor, "reason": "test credit"}),
        );
        assert_eq!(response.status, 201, "{}", response.text());
    }

    /// Puts the workspace on the custom plan with `sms` SMS units included per month.
    fn include_sms(&self, sms: u64) {
        let response = self.owner.request(
            "PUT",
            &format!("/v1/admin/workspaces/{}/plan", self.workspace()),
            Some(
                &json!({"plan_code": "custom", "included_sms_per_month": sms,
                         "included_email_per_day": 0}),
            ),
        );
        assert_eq!(response.status, 200, "{}", response.text());
    }

    fn balance(&self) -> i64 {
        count(
            self.server,
            &format!(
                "SELECT wallet_balance_minor FROM workspaces WHERE id = '{}'",
                self.workspace()
            ),
        )
    }

    /// The workspace's ledger in order: (kind, amount, reference).
    fn ledger(&self) -> Vec<(String, i64, Option<String>)> {
        let db = self.server.db();
        let mut stmt = db
            .prepare(
                "SELECT kind, amount_minor, reference FROM wallet_ledger WHERE workspace_id = ?1
                 ORDER BY rowid",
            )
            .unwrap();
        stmt.query_map([self.workspace()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Imports `csv` (header included) as live or test contacts of the key's mode; all rows
    /// must be created.
    fn import(&self, csv: &str) {
        let authorization = format!("Bearer {}", self.api.key);
        let response = self.server.request(
            "POST",
            "/v1/contacts/imports",
            &[
                ("Authorization", authorization.as_str()),
                ("Content-Type", "text/csv"),
            ],
            csv.as_bytes(),
        );
        assert_eq!(response.status, 202, "{}", response.text());
        let path = format!(
            "/v1/contacts/imports/{}",
            response.json()["id"].as_str().unwrap()
        );
        let job = wait_for_value(
            "the import ends",
            SETTLE,
            || self.api.get(&path).json(),
            |job| job["status"] != "queued" && job["status"] != "running",
        );
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["rejected"], 0, "{job}");
    }

    pub(crate) fn contact(&self, body: Value) -> String {
        let response = self.api.post("/v1/contacts", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    fn group(&self, name: &str, members: &[String]) -> String {
        let response = self.api.post("/v1/groups", json!({ "name": name }));
        assert_eq!(response.status, 201, "{}", response.text());
        let id = response.json()["id"].as_str().unwrap().to_owned();
        if !members.is_empty() {
            let added = self.api.post(
                &format!("/v1/groups/{id}/contacts"),
                json!({ "contact_ids": members }),
            );
            assert_eq!(added.status, 200, "{}", added.text());
        }
        id
    }

    pub(crate) fn campaign(&self, body: Value) -> String {
        let response = self.api.post("/v1/campaigns", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    pub(crate) fn show(&self, id: &str) -> Value {
        let response = self.api.get(&format!("/v1/campaigns/{id}"));
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    pub(crate) fn estimate(&self, id: &str) -> Value {
        let response = self
            .api
            .post(&format!("/v1/campaigns/{id}/estimate"), json!({}));
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    fn launch(&self, id: &str, idempotency_key: &str) -> TestResponse {
        keyed(
            self.server,
            &self.api.key,
            &format!("/v1/campaigns/{id}/launch"),
            idempotency_key,
            None,
        )
    }

    pub(crate) fn launched(&self, id: &str, idempotency_key: &str) -> Value {
        let response = self.launch(id, idempotency_key);
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    fn cancel(&self, id: &str) -> TestResponse {
        self.api
            .post(&format!("/v1/campaigns/{id}/cancel"), json!({}))
    }

    /// Waits until the campaign is `status`; returns it.
    pub(crate) fn wait_status(&self, id: &str, status: &str) -> Value {
        wait_for_value(
            &format!("campaign {id} is {status}"),
            SETTLE,
            || self.show(id),
            |campaign| campaign["status"] == status,
        )
    }

    /// The campaign's messages as stored, in fan-out (contact) order.
    fn messages(&self, campaign: &str) -> Vec<StoredMessage> {
        let db = self.server.db();
        let mut stmt = db
            .prepare(
                "SELECT m.status, m.units, m.included_units, m.charge_minor, m.segments,
                        m.text, m.contact_id, c.first_name
                 FROM messages m JOIN contacts c ON c.id = m.contact_id
                 WHERE m.campaign_id = ?1 ORDER BY c.rowid",
            )
            .unwrap();
        stmt.query_map([campaign], |row| {
            Ok(StoredMessage {
                status: row.get(0)?,
                units: row.get(1)?,
                included_units: row.get(2)?,
                charge_minor: row.get(3)?,
                segments: row.get(4)?,
                text: row.get(5)?,
                contact_id: row.get(6)?,
                first_name: row.get(7)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }
}

/// A campaign message as stored, with its contact's first name.
#[derive(Debug, Clone)]
struct StoredMessage {
    status: String,
    units: i64,
    included_units: i64,
    charge_minor: i64,
    segments: Option<i64>,
    text: Option<String>,
    contact_id: String,
    first_name: Option<String>,
}

/// A POST with `Idempotency-Key` (and a JSON body when given).
fn keyed(
    server: &TestServer,
    key: &str,
    path: &str,
    idempotency_key: &str,
    body: Option<&Value>,
) -> TestResponse {
    let authorization = format!("Bearer {key}");
    send(
        server,
        "POST",
        path,
        vec![
            ("Authorization", authorization.as_str()),
            ("Idempotency-Key", idempotency_key),
        ],
        body,
    )
}

/// A POST with `Idempotency-Key` on a connection of its own, for threads (a `TestServer` is
/// not shared between them).
fn raw_post(
    addr: std::net::SocketAddr,
    key: &str,
    path: &str,
    idempotency_key: &str,
    body: Option<&Value>,
) -> TestResponse {
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nIdempotency-Key: {idempotency_key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    crate::harness::send_raw(addr, request.as_bytes())
}

fn xaf(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "XAF"})
}

/// `+23767nnnnnnn`: a valid Cameroonian mobile number per `n`.
fn phone(n: usize) -> String {
    format!("+23767{n:07}")
}

/// The fields a 422 names.
fn invalid(response: &TestResponse) -> serde_json::Map<String, Value> {
    let envelope = response.assert_error(422, "validation_failed");
    envelope["error"]["details"]["fields"]
        .as_object()
        .unwrap()
        .clone()
}

/// Segments of an SMS as GSM 03.38 and UCS-2 count them, computed here independently of the
/// product: the texts these tests send are plain ASCII (no GSM extension character) or hold a
/// character outside the GSM alphabet (Cyrillic), which makes the whole message UCS-2.
fn expected_segments(text: &str) -> i64 {
    const GSM_EXTENSION: &str = "^{}\\[~]|";
    if text
        .chars()
        .all(|c| c.is_ascii() && c != '`' && !GSM_EXTENSION.contains(c))
    {
        let length = text.chars().count();
        if length <= 160 {
            1
        } else {
            length.div_ceil(153) as i64
        }
    } else {
        let length = text.encode_utf16().count();
        if length <= 70 {
            1
        } else {
            length.div_ceil(67) as i64
        }
    }
}

/// Every `crier doctor` check passes on the server's database.
fn assert_doctor_passes(server: &TestServer) {
    let findings = crier::doctor::examine(&mut server.db());
    let failed: Vec<_> = findings
        .iter()
        .filter(|finding| !finding.passed())
        .collect();
    assert!(failed.is_empty(), "doctor: {failed:?}");
}

/// What a request might have changed: campaigns by status, messages, ledger rows, reservations,
/// the wallet.
fn snapshot(server: &TestServer) -> Vec<i64> {
    [
        "SELECT count(*) FROM messages",
        "SELECT count(*) FROM wallet_ledger",
        "SELECT count(*) FROM billing_reservations",
        "SELECT count(*) FROM billing_reservations WHERE refunded_at IS NOT NULL",
        "SELECT coalesce(sum(wallet_balance_minor), 0) FROM workspaces",
        "SELECT count(*) FROM campaigns WHERE status = 'draft'",
        "SELECT count(*) FROM campaigns WHERE status = 'scheduled'",
        "SELECT count(*) FROM campaigns WHERE status = 'running'",
        "SELECT count(*) FROM campaigns WHERE status = 'cancelled'",
        "SELECT count(*) FROM campaigns",
        "SELECT count(*) FROM contacts",
    ]
    .iter()
    .map(|sql| count(server, sql))
    .collect()
}

const SALE: &str = "Hi {{ contact.first_name }}, the autumn sale is on: 20% off everything in \
                    store and online until Sunday. Show this text at the till.";

pub(crate) fn sms_campaign(audience: Value) -> Value {
    json!({"name": "Autumn sale", "channel": "sms", "text": SALE, "audience": audience})
}

/// A first name that keeps the sale's SMS in one segment, one that takes it to two, and one
/// outside the GSM alphabet (UCS-2).
fn first_name(n: usize, kind: usize) -> String {
    match kind {
        0 => format!("Ann{n}"),
        1 => format!("Bartholomew-Maximilian-Augustin-Fitzgerald-Montgomery{n}"),
        _ => format!("Светлана{n}"),
    }
}

/// The graduated SMS prices of the money test: 9 per unit up to 1,500 billable units in the
/// month, 4 beyond.
fn tiered_catalog(config: &mut crier::config::Config) {
    use crier::billing::pricing::Tier;
    config.billing_catalog.sms_tiers = vec![
        Tier {
            up_to: Some(1_500),
            price_minor: 9,
        },
        Tier {
            up_to: None,
            price_minor: 4,
        },
    ];
}

const INCLUDED_SMS: i64 = 1_234;

#[test]
fn a_campaign_charges_exactly_its_estimate_across_chunks_included_units_and_price_bands() {
    let server = TestServer::start_with(tiered_catalog, crier::web::router::Router::standard());
    let shop = Shop::open(&server, "live");
    shop.include_sms(INCLUDED_SMS as u64);
    shop.credit(40_000);
    // 1,100 one-segment recipients first, so the first chunk of 1,000 leaves included units for
    // the second; then a mix of one, two and UCS-2 segment counts.
    let mut csv = String::from("first_name,phone,email\n");
    for n in 0..2_600 {
        let kind = if n < 1_100 { 0 } else { n % 3 };
        csv.push_str(&format!("{},{},\n", first_name(n, kind), phone(n)));
    }
    // Left out: three without a phone, two unsubscribed from SMS, one whose phone is invalid.
    for n in 0..3 {
        csv.push_str(&format!("Mail{n},,mail{n}@example.com\n"));
    }
    shop.import(&csv);
    for n in 0..2 {
        let id = shop.contact(json!({"name": "Gone", "phone": phone(5_000 + n)}));
        let response = shop.api.patch(
            &format!("/v1/contacts/{id}"),
            json!({"unsubscribed": {"sms": true}}),
        );
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let bad = shop.contact(json!({"name": "Bad", "phone": phone(6_000)}));
    server
        .db()
        .execute(
            "UPDATE contacts SET phone_state = 'invalid' WHERE id = ?1",
            [&bad],
        )
        .unwrap();

    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let before = snapshot(&server);
    let estimate = shop.estimate(&id);
    assert_eq!(snapshot(&server), before, "an estimate changes nothing");
    assert_eq!(estimate["channel"], "sms");
    assert_eq!(estimate["contacts"], 2_606, "{estimate}");
    assert_eq!(estimate["recipients"], 2_600, "{estimate}");
    assert_eq!(
        estimate["excluded"],
        json!({"unsubscribed": 2, "invalid": 1, "bounced": 0, "complained": 0, "no_address": 3,
               "duplicate": 0, "deleted": 0, "render_failed": 0})
    );
    let units = estimate["units"].as_i64().unwrap();
    let billable = units - INCLUDED_SMS;
    assert!(billable > 1_500, "both price bands are in play: {estimate}");
    let charge = 1_500 * 9 + (billable - 1_500) * 4;
    assert_eq!(estimate["included_units"], INCLUDED_SMS);
    assert_eq!(estimate["billable_units"], billable);
    assert_eq!(estimate["charge"], xaf(charge));
    assert_eq!(estimate["balance"], xaf(40_000));
    assert_eq!(estimate["balance_after"], xaf(40_000 - charge));
    assert_eq!(estimate["affordable"], true);
    assert_eq!(estimate["mode"], "live");
    assert_eq!(estimate["charged"], true);
    let histogram: BTreeMap<i64, i64> = estimate["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["segments"].as_i64().unwrap(),
                row["recipients"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(histogram.len() >= 2, "mixed segment counts: {estimate}");
    assert_eq!(histogram.values().sum::<i64>(), 2_600);
    assert_eq!(histogram.iter().map(|(s, r)| s * r).sum::<i64>(), units);

    let balance_before = shop.balance();
    let first = shop.launch(&id, "launch-1");
    assert_eq!(first.status, 200, "{}", first.text());
    let launched = first.json();
    assert_eq!(launched["status"], "running", "{launched}");
    let launch = &launched["launch"];
    assert_eq!(launch["planned_recipients"], 2_600);
    assert_eq!(launch["planned_units"], units);
    assert_eq!(launch["reserved"], xaf(charge));
    assert_eq!(launch["sender"], "CRIER");
    assert!(launch["launched_at"].is_string());
    // The whole charge is reserved at once: one ledger row naming the campaign.
    assert_eq!(shop.balance(), balance_before - charge);
    let ledger = shop.ledger();
    assert_eq!(
        ledger[1..],
        [("charge".to_owned(), -charge, Some(id.clone()))],
        "{ledger:?}"
    );
    // The same key replays the launch.
    let replay = shop.launch(&id, "launch-1");
    assert_eq!(replay.status, 200, "{}", replay.text());
    assert_eq!(replay.body, first.body, "byte-identical");
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));

    let done = shop.wait_status(&id, "completed");
    assert_eq!(done["launch"]["fanout_done"], true);
    assert_eq!(done["launch"]["messages_created"], 2_600);
    assert_eq!(done["launch"]["failure"], Value::Null);
    assert!(done["launch"]["finished_at"].is_string());
    let stats = &done["stats"];
    assert_eq!(
        stats["messages"],
        json!({"queued": 0, "sent": 2_600, "delivered": 0, "failed": 0, "cancelled": 0})
    );
    assert_eq!(stats["charged"], xaf(charge));
    assert_eq!(stats["refunded"], xaf(0));
    // The fan-out routed each message as a send would: no routes here, so the default chain.
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE campaign_id = '{id}' AND route = 'default=log'"
            )
        ),
        2_600
    );

    // Every message: its contact's name, its own segments, its share of the pool.
    let messages = shop.messages(&id);
    assert_eq!(messages.len(), 2_600);
    let mut seen = BTreeMap::new();
    for message in &messages {
        let text = message.text.as_deref().unwrap();
        let name = message.first_name.as_deref().unwrap();
        assert!(text.contains(name), "{message:?}");
        assert_eq!(
            message.segments,
            Some(expected_segments(text)),
            "{message:?}"
        );
        assert_eq!(message.units, expected_segments(text), "{message:?}");
        assert_eq!(message.status, "sent");
        *seen.entry(message.units).or_insert(0_i64) += 1;
    }
    assert_eq!(seen, histogram, "the estimate counted what was sent");
    assert_eq!(messages.iter().map(|m| m.units).sum::<i64>(), units);
    assert_eq!(messages.iter().map(|m| m.charge_minor).sum::<i64>(), charge);
    assert_eq!(
        messages.iter().map(|m| m.included_units).sum::<i64>(),
        units.min(INCLUDED_SMS)
    );
    // The included units ran past the first chunk of 1,000 contacts.
    let first_chunk: i64 = messages[..1_000].iter().map(|m| m.included_units).sum();
    assert_eq!(first_chunk, 1_000);
    assert!(messages[1_000..].iter().any(|m| m.included_units > 0));
    assert!(
        messages
            .iter()
            .all(|m| m.included_units <= m.units && m.charge_minor >= 0)
    );

    // One message per contact, and the database refuses a second.
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(DISTINCT contact_id) FROM messages WHERE campaign_id = '{id}'")
        ),
        2_600
    );
    let twice = server.db().execute(
        "INSERT INTO messages (id, workspace_id, api_key_id, campaign_id, mode, channel, category,
             to_address, sender, subject, text, html, metadata, encoding, segments, units,
             included_units, charge_minor, currency, status, next_attempt_at, delivery_cycles,
             created_at, updated_at, contact_id)
         SELECT 'msg_twice', workspace_id, api_key_id, campaign_id, mode, channel, category,
             to_address, sender, subject, text, html, metadata, encoding, segments, units,
             included_units, charge_minor, currency, 'queued', next_attempt_at, 0, created_at,
             updated_at, contact_id
         FROM messages WHERE campaign_id = ?1 LIMIT 1",
        [&id],
    );
    assert!(
        twice
            .as_ref()
            .is_err_and(|err| err.to_string().contains("UNIQUE")),
        "{twice:?}"
    );
    // Each message has a reservation with exactly its share; the pool is carved to nothing
    // and closed.
    let mismatched = count(
        &server,
        &format!(
            "SELECT count(*) FROM messages m LEFT JOIN billing_reservations r
               ON r.reference = m.id
             WHERE m.campaign_id = '{id}' AND (r.reference IS NULL OR r.units != m.units
               OR r.included_units != m.included_units OR r.charge_minor != m.charge_minor
               OR r.refunded_at IS NOT NULL)"
        ),
    );
    assert_eq!(mismatched, 0);
    let pool: (i64, i64, i64, Option<String>) = server
        .db()
        .query_row(
            "SELECT units, included_units, charge_minor, refunded_at FROM billing_reservations
             WHERE reference = ?1",
            [&id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap();
    assert_eq!((pool.0, pool.1, pool.2), (0, 0, 0), "{pool:?}");
    assert!(pool.3.is_some(), "the carved pool is closed");
    // Nothing left over, nothing refunded: the wallet paid the estimate, once.
    assert_eq!(shop.balance(), balance_before - charge);
    assert_eq!(shop.ledger().len(), 2, "{:?}", shop.ledger());
    // The month's counters hold the campaign's units.
    let billing = shop.owner.get("/v1/billing").json();
    assert_eq!(billing["quotas"]["sms"]["used"], INCLUDED_SMS, "{billing}");
    assert_eq!(billing["quotas"]["sms"]["remaining"], 0, "{billing}");
    assert_doctor_passes(&server);
}

/// `count` contacts with one-segment names, imported.
fn import_short(shop: &Shop<'_>, count: usize) {
    let mut csv = String::from("first_name,phone\n");
    for n in 0..count {
        csv.push_str(&format!("Ann{n},{}\n", phone(n)));
    }
    shop.import(&csv);
}

#[test]
fn launches_racing_sends_for_a_small_wallet_never_overspend() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 30);
    shop.credit(2_000);
    // Four campaigns of 30 one-segment SMS at 25: 750 each; forty sends at 25. Twice what the
    // wallet holds.
    let campaigns: Vec<String> = (0..4)
        .map(|_| shop.campaign(sms_campaign(json!({"all": true}))))
        .collect();
    for id in &campaigns {
        assert_eq!(shop.estimate(id)["charge"], xaf(750));
    }
    // The threads speak HTTP on their own connections; the watcher reads the wallet on its own.
    let (addr, key, db_path) = (server.addr, shop.api.key.clone(), server.db_path());
    let watching = std::sync::atomic::AtomicBool::new(true);
    let (launches, sends, lowest) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let db = rusqlite::Connection::open(&db_path).unwrap();
            db.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut lowest = i64::MAX;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
                let balances: i64 = db
                    .query_row(
                        "SELECT min(wallet_balance_minor) FROM workspaces",
                        [],
                        |row| row.get(0),
                    )
                    .unwrap();
                lowest = lowest.min(balances);
            }
            lowest
        });
        let launchers: Vec<_> = campaigns
            .iter()
            .map(|id| {
                let key = &key;
                scope.spawn(move || {
                    let path = format!("/v1/campaigns/{id}/launch");
                    (
                        id.clone(),
                        raw_post(addr, key, &path, &format!("race-{id}"), None),
                    )
                })
            })
            .collect();
        let senders: Vec<_> = (0..2)
            .map(|thread| {
                let key = &key;
                scope.spawn(move || {
                    (0..20)
                        .map(|n| {
                            let body = json!({"channel": "sms", "to": phone(n), "text": "Hi"});
                            let idempotency_key = format!("send-{thread}-{n}");
                            raw_post(addr, key, "/v1/messages", &idempotency_key, Some(&body))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let launches: Vec<_> = launchers.into_iter().map(|t| t.join().unwrap()).collect();
        let sends: Vec<_> = senders
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        watching.store(false, std::sync::atomic::Ordering::SeqCst);
        (launches, sends, watcher.join().unwrap())
    });
    assert!(lowest >= 0, "the wallet went to {lowest}");
    let mut started = Vec::new();
    for (id, response) in &launches {
        match response.status {
            200 => {
                assert_eq!(response.json()["status"], "running");
                assert_eq!(response.json()["launch"]["reserved"], xaf(750));
                started.push(id.clone());
            }
            402 => {
                let envelope = response.assert_error(402, "insufficient_funds");
                assert!(envelope["error"]["details"].is_object(), "{envelope}");
                assert_eq!(
                    shop.show(id)["status"],
                    "draft",
                    "a refused launch changes nothing"
                );
                assert_eq!(
                    count(
                        &server,
                        &format!(
                            "SELECT count(*) FROM billing_reservations WHERE reference = '{id}'"
                        )
                    ),
                    0
                );
            }
            other => panic!("launch {id}: {other} {}", response.text()),
        }
    }
    let mut sent = 0;
    for response in &sends {
        match response.status {
            201 => sent += 1,
            402 => {
                response.assert_error(402, "insufficient_funds");
            }
            other => panic!("send: {other} {}", response.text()),
        }
    }
    println!(
        "{} of 4 launches and {sent} of 40 sends went through",
        started.len()
    );
    assert!(
        started.len() < 4 || sent < 40,
        "the wallet cannot pay everything: {} launches, {sent} sends",
        started.len()
    );
    // Each started campaign was charged its whole estimate once; the refused ones nothing.
    let ledger = shop.ledger();
    for (id, _) in &launches {
        let rows: Vec<i64> = ledger
            .iter()
            .filter(|(_, _, reference)| reference.as_deref() == Some(id.as_str()))
            .map(|(_, amount, _)| *amount)
            .collect();
        let expected = if started.contains(id) {
            vec![-750]
        } else {
            vec![]
        };
        assert_eq!(rows, expected, "{id}: {ledger:?}");
    }
    for id in &started {
        shop.wait_status(id, "completed");
    }
    let spent = 750 * started.len() as i64 + 25 * sent;
    assert_eq!(shop.balance(), 2_000 - spent);
    // The wallet only went down, so a refusal means it could not pay even at the end.
    if started.len() < 4 {
        assert!(
            shop.balance() < 750,
            "a launch was refused that the wallet could pay"
        );
    }
    if sent < 40 {
        assert!(
            shop.balance() < 25,
            "a send was refused that the wallet could pay"
        );
    }
    assert_eq!(
        ledger.iter().map(|(_, amount, _)| amount).sum::<i64>(),
        2_000 - spent
    );
    assert_eq!(shop.ledger(), ledger, "nothing was left over to refund");
    assert_doctor_passes(&server);
}

/// Messages of the campaign that a dispatcher may still send.
fn unsettled(server: &TestServer, campaign: &str) -> i64 {
    count(
        server,
        &format!(
            "SELECT count(*) FROM messages WHERE campaign_id = '{campaign}'
             AND status IN ('scheduled', 'queued', 'sending')"
        ),
    )
}

/// Waits until a cancelled campaign's sweep is over: none of its messages can still be sent.
fn wait_cancel_done(server: &TestServer, campaign: &str) {
    wait_for_value(
        "the cancel's sweep ends",
        SETTLE,
        || {
            count(
                server,
                &format!(
                    "SELECT count(*) FROM campaigns WHERE id = '{campaign}'
                     AND cancel_done_at IS NOT NULL"
                ),
            )
        },
        |done| *done == 1,
    );
    assert_eq!(unsettled(server, campaign), 0);
}

#[test]
fn cancelling_mid_fan_out_with_delivery_stopped_refunds_every_message() {
    let server = TestServer::start_with(
        |config| config.delivery.dispatch_workers = 0,
        crier::web::router::Router::standard(),
    );
    let shop = Shop::open(&server, "live");
    import_short(&shop, 3_000);
    shop.credit(100_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let launched = shop.launched(&id, "launch-1");
    assert_eq!(launched["launch"]["reserved"], xaf(75_000));
    assert_eq!(shop.balance(), 25_000);
    let cancelled = shop.cancel(&id);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let cancelled = cancelled.json();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["launch"]["cancelled_at"].is_string());
    assert_eq!(
        cancelled["launch"]["fanout_done"], true,
        "the fan-out stops"
    );
    println!(
        "cancelled after {} of 3000 messages were written",
        cancelled["launch"]["messages_created"]
    );
    wait_cancel_done(&server, &id);

    // No message was sent, so every minor unit came back.
    let messages = shop.messages(&id);
    let shown = shop.show(&id);
    assert_eq!(shown["launch"]["messages_created"], messages.len());
    assert!(messages.iter().all(|m| m.status == "cancelled"));
    assert_eq!(shop.balance(), 100_000);
    let ledger = shop.ledger();
    assert_eq!(ledger[1], ("charge".to_owned(), -75_000, Some(id.clone())));
    let mut refunded = 0;
    for (kind, amount, reference) in &ledger[2..] {
        assert_eq!(kind, "refund");
        let reference = reference.as_deref().unwrap();
        assert!(
            reference == id || reference.starts_with(&format!("{id}/cancel-")),
            "{reference}"
        );
        refunded += amount;
    }
    assert_eq!(refunded, 75_000);
    let carried: i64 = messages.iter().map(|m| m.charge_minor).sum();
    assert_eq!(
        shown["stats"],
        json!({
            "messages": {"queued": 0, "sent": 0, "delivered": 0, "failed": 0,
                         "cancelled": messages.len()},
            "charged": xaf(carried),
            "refunded": xaf(75_000),
        })
    );
    // Cancelling again is the same answer and changes nothing.
    let before = snapshot(&server);
    let again = shop.cancel(&id);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["status"], "cancelled");
    assert_eq!(again.json()["launch"], shown["launch"]);
    assert_eq!(snapshot(&server), before);
    assert_doctor_passes(&server);
}

#[test]
fn cancelling_while_sending_refunds_exactly_the_unsent() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 3_000);
    shop.credit(100_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launched(&id, "launch-1");
    wait_for_value(
        "the first messages are sent",
        SETTLE,
        || {
            count(
                &server,
                &format!(
                    "SELECT count(*) FROM messages WHERE campaign_id = '{id}' AND status = 'sent'"
                ),
            )
        },
        |sent| *sent > 0,
    );
    let cancelled = shop.cancel(&id);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    wait_cancel_done(&server, &id);

    let messages = shop.messages(&id);
    let kept: i64 = messages
        .iter()
        .filter(|m| m.status != "cancelled")
        .map(|m| m.charge_minor)
        .sum();
    assert!(
        messages
            .iter()
            .all(|m| m.status == "sent" || m.status == "cancelled")
    );
    let sent = messages.iter().filter(|m| m.status == "sent").count();
    println!(
        "{sent} of {} messages sent before the cancel",
        messages.len()
    );
    assert_eq!(shop.balance(), 100_000 - kept);
    assert_eq!(
        shop.ledger()
            .iter()
            .map(|(_, amount, _)| amount)
            .sum::<i64>(),
        100_000 - kept
    );
    let shown = shop.show(&id);
    assert_eq!(shown["status"], "cancelled");
    assert_eq!(shown["stats"]["messages"]["sent"], sent);
    assert_eq!(
        shown["stats"]["messages"]["cancelled"],
        messages.len() - sent
    );
    assert_eq!(shown["stats"]["refunded"], xaf(75_000 - kept));
    // Finished: cancelling again is still the same 200.
    assert_eq!(shop.cancel(&id).status, 200);
    assert_doctor_passes(&server);

    // The stats come from tallies kept beside the messages; the doctor counts the messages
    // again and names a tally that drifted.
    server
        .db()
        .execute(
            "UPDATE campaign_tallies SET messages = messages + 1 WHERE status = 'sent'",
            [],
        )
        .unwrap();
    assert_eq!(shop.show(&id)["stats"]["messages"]["sent"], sent + 1);
    let findings = crier::doctor::examine(&mut server.db());
    let named = findings
        .iter()
        .filter(|finding| !finding.passed())
        .map(|finding| format!("{finding:?}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        named.contains(&format!(
            "campaign {id}: its stats count {} sent message(s)",
            sent + 1
        )),
        "{named}"
    );
}

#[test]
fn a_test_mode_campaign_is_priced_but_charges_nothing() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "test");
    import_short(&shop, 12);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let estimate = shop.estimate(&id);
    assert_eq!(estimate["mode"], "test");
    assert_eq!(estimate["charged"], false);
    assert_eq!(estimate["charge"], xaf(300), "priced like live: {estimate}");
    assert_eq!(estimate["balance"], xaf(0));
    assert_eq!(estimate["balance_after"], xaf(0));
    assert_eq!(estimate["affordable"], true);
    let launched = shop.launched(&id, "launch-1");
    assert_eq!(launched["mode"], "test");
    assert_eq!(launched["status"], "running");
    assert_eq!(launched["launch"]["reserved"], xaf(0));
    let done = shop.wait_status(&id, "completed");
    assert_eq!(done["stats"]["messages"]["sent"], 12);
    assert_eq!(done["stats"]["charged"], xaf(0));
    let messages = shop.messages(&id);
    assert_eq!(messages.len(), 12);
    assert!(messages.iter().all(|m| m.charge_minor == 0 && m.units == 1));
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE campaign_id = '{id}' AND route = 'test=log'"
            )
        ),
        12,
        "test mode goes to log only, and says so"
    );
    assert_eq!(shop.balance(), 0);
    assert!(shop.ledger().is_empty(), "{:?}", shop.ledger());
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM billing_reservations WHERE charge_minor != 0
                 OR reference = '{id}'"
            )
        ),
        0
    );
    let billing = shop.owner.get("/v1/billing").json();
    assert_eq!(billing["quotas"]["sms"]["used"], 0, "{billing}");
    assert_doctor_passes(&server);
}

#[test]
fn a_scheduled_campaign_starts_when_its_time_comes_or_fails_unpaid() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 5);
    // Each campaign: 5 SMS at 25. The wallet pays one.
    shop.credit(200);
    let at = |minutes: i64| {
        (crate::harness::test_epoch() + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut first = sms_campaign(json!({"all": true}));
    first["scheduled_at"] = json!(at(10));
    let first = shop.campaign(first);
    let mut unpaid = sms_campaign(json!({"all": true}));
    unpaid["scheduled_at"] = json!(at(20));
    let unpaid = shop.campaign(unpaid);
    let mut dropped = sms_campaign(json!({"all": true}));
    dropped["scheduled_at"] = json!(at(5));
    let dropped = shop.campaign(dropped);

    let before = snapshot(&server);
    let scheduled = shop.launched(&first, "launch-first");
    assert_eq!(scheduled["status"], "scheduled");
    assert_eq!(scheduled["launch"]["launched_at"], Value::Null);
    assert_eq!(scheduled["launch"]["reserved"], Value::Null);
    assert_eq!(shop.show(&first).get("stats"), None);
    // The same key replays the same answer.
    let replay = shop.launch(&first, "launch-first");
    assert_eq!(replay.status, 200);
    assert_eq!(without_request_id(&replay), scheduled);
    assert_eq!(
        shop.launched(&unpaid, "launch-unpaid")["status"],
        "scheduled"
    );
    assert_eq!(
        shop.launched(&dropped, "launch-dropped")["status"],
        "scheduled"
    );
    assert_eq!(shop.balance(), 200, "nothing is charged before the start");
    assert_eq!(shop.ledger().len(), 1);
    assert_eq!(
        count(&server, "SELECT count(*) FROM billing_reservations"),
        before[2]
    );

    // A scheduled campaign cancels with nothing to refund; twice is the same answer.
    let cancelled = shop.cancel(&dropped);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");
    let again = shop.cancel(&dropped);
    assert_eq!(without_request_id(&again), without_request_id(&cancelled));

    server.clock.advance(chrono::Duration::minutes(11));
    let started = shop.wait_status(&first, "completed");
    assert_eq!(started["launch"]["reserved"], xaf(125));
    assert_eq!(started["stats"]["messages"]["sent"], 5);
    assert_eq!(shop.balance(), 75);
    assert_eq!(shop.show(&unpaid)["status"], "scheduled");
    assert_eq!(shop.show(&dropped)["status"], "cancelled");

    server.clock.advance(chrono::Duration::minutes(10));
    let failed = shop.wait_status(&unpaid, "failed");
    assert_eq!(
        failed["launch"]["failure"]["code"], "insufficient_funds",
        "{failed}"
    );
    assert!(failed["launch"]["finished_at"].is_string());
    // Never started: no stats (no messages, no currency to show money in).
    assert_eq!(failed.get("stats"), None, "{failed}");
    assert_eq!(shop.show(&dropped).get("stats"), None);
    assert_eq!(
        shop.balance(),
        75,
        "a start the wallet cannot pay charges nothing"
    );
    let ledger = shop.ledger();
    assert_eq!(ledger.len(), 2, "{ledger:?}");
    assert_eq!(ledger[1], ("charge".to_owned(), -125, Some(first.clone())));
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM billing_reservations WHERE reference = '{unpaid}'")
        ),
        0
    );
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE campaign_id IN ('{unpaid}', '{dropped}')"
            )
        ),
        0
    );
    // A failed campaign is finished: a cancel is refused.
    shop.cancel(&unpaid).assert_error(409, "conflict");
    assert_doctor_passes(&server);
}

#[test]
fn an_estimate_counts_lists_once_and_segments_after_personalisation_and_the_opt_out_line() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    let ann = shop.contact(json!({"name": "Ann", "first_name": "Ann", "phone": phone(1)}));
    let long = shop.contact(json!({
        "name": "Bart", "first_name": first_name(2, 1), "phone": phone(2)}));
    let cyd = shop.contact(json!({"name": "Cyd", "first_name": "Cyd", "phone": phone(3)}));
    let dee = shop.contact(json!({"name": "Dee", "first_name": "Dee", "phone": phone(4)}));
    let eve = shop.contact(json!({"name": "Eve", "first_name": "Eve", "phone": phone(5)}));
    let mail = shop.contact(json!({"name": "Mo", "email": "mo@example.com"}));
    let first = shop.group(
        "First",
        &[ann.clone(), long.clone(), cyd.clone(), mail.clone()],
    );
    let second = shop.group("Second", &[long.clone(), cyd.clone(), dee.clone()]);
    let response = shop.api.post(
        "/v1/segments",
        json!({"name": "Ann or Eve", "rules": {"any": [
            {"field": "name", "op": "eq", "value": "Ann"},
            {"field": "name", "op": "eq", "value": "Eve"}]}}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let segment = response.json()["id"].as_str().unwrap().to_owned();
    // Dee is deleted: still a member of Second, no longer a recipient.
    assert_eq!(shop.api.delete(&format!("/v1/contacts/{dee}")).status, 204);
    let id = shop.campaign(sms_campaign(
        json!({"groups": [first, second], "segments": [segment]}),
    ));
    let before = snapshot(&server);
    let estimate = shop.estimate(&id);
    assert_eq!(snapshot(&server), before);
    // Ann, Bart, Cyd, Mo, Eve: each once. Bart and Cyd are in two groups, Ann in a group and
    // the segment.
    assert_eq!(estimate["contacts"], 5, "{estimate}");
    assert_eq!(
        estimate["excluded"],
        json!({"unsubscribed": 0, "invalid": 0, "bounced": 0, "complained": 0, "no_address": 1,
               "duplicate": 3, "deleted": 1, "render_failed": 0})
    );
    assert_eq!(estimate["recipients"], 4);
    // Bart's long name takes his SMS to two segments.
    assert_eq!(
        estimate["segments"],
        json!([{"segments": 1, "recipients": 3}, {"segments": 2, "recipients": 1}])
    );
    assert_eq!(estimate["units"], 5);
    assert_eq!(estimate["charge"], xaf(125));
    assert_eq!(estimate["affordable"], false);
    assert_eq!(estimate["balance_after"], xaf(-125));

    // With the opt-out line (and its link) every message passes 160 characters.
    let changed = shop.api.patch(
        &format!("/v1/campaigns/{id}"),
        json!({"opt_out_line": true}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let estimate = shop.estimate(&id);
    let units = estimate["units"].as_i64().unwrap();
    assert!(units >= 8, "{estimate}");
    // … and what the estimate counted is what the fan-out writes.
    shop.credit(1_000);
    shop.launched(&id, "launch-1");
    shop.wait_status(&id, "completed");
    let messages = shop.messages(&id);
    assert_eq!(messages.len(), 4);
    for message in &messages {
        let text = message.text.as_deref().unwrap();
        assert!(text.contains("\nSTOP: http://127.0.0.1/"), "{text}");
        assert_eq!(message.segments, Some(expected_segments(text)), "{text}");
    }
    assert_eq!(messages.iter().map(|m| m.units).sum::<i64>(), units);
    let recipients: Vec<&str> = messages.iter().map(|m| m.contact_id.as_str()).collect();
    assert_eq!(recipients, [&ann, &long, &cyd, &eve]);
    assert_eq!(
        shop.show(&id)["launch"]["excluded"],
        json!({"deleted": 1, "duplicate": 3, "no_address": 1})
    );
}

#[test]
fn an_email_estimate_leaves_out_each_kind_of_bad_address() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    let mut ids = Vec::new();
    for (n, state) in ["valid", "valid", "invalid", "bounced", "complained"]
        .iter()
        .enumerate()
    {
        let id =
            shop.contact(json!({"name": format!("C{n}"), "email": format!("c{n}@example.com")}));
        server
            .db()
            .execute(
                "UPDATE contacts SET email_state = ?1 WHERE id = ?2",
                [*state, id.as_str()],
            )
            .unwrap();
        ids.push(id);
    }
    let unsubscribed = shop.contact(json!({"name": "U", "email": "u@example.com"}));
    let response = shop.api.patch(
        &format!("/v1/contacts/{unsubscribed}"),
        json!({"unsubscribed": {"email": true}}),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    shop.contact(json!({"name": "P", "phone": phone(1)}));
    let id = shop.campaign(json!({
        "name": "News", "channel": "email", "subject": "Hello {{ contact.name }}",
        "html": "<p>Hi {{ contact.name }}</p><a href=\"{{ unsubscribe_url }}\">stop</a>",
        "audience": {"all": true}}));
    let estimate = shop.estimate(&id);
    assert_eq!(estimate["channel"], "email");
    assert_eq!(estimate["contacts"], 7, "{estimate}");
    assert_eq!(
        estimate["excluded"],
        json!({"unsubscribed": 1, "invalid": 1, "bounced": 1, "complained": 1, "no_address": 1,
               "duplicate": 0, "deleted": 0, "render_failed": 0})
    );
    assert_eq!(estimate["recipients"], 2);
    assert_eq!(estimate["segments"], Value::Null);
    assert_eq!(estimate["units"], 2);
    // Launched: one email each to the two good addresses, each rendered for its contact with
    // its own unsubscribe link, charged the estimate.
    shop.credit(1_000);
    let launched = shop.launched(&id, "launch-1");
    assert_eq!(launched["launch"]["sender"], Value::Null);
    let done = shop.wait_status(&id, "completed");
    assert_eq!(done["stats"]["messages"]["sent"], 2);
    assert_eq!(done["stats"]["charged"], estimate["charge"]);
    let charge = estimate["charge"]["amount_minor"].as_i64().unwrap();
    assert!(charge > 0);
    assert_eq!(shop.balance(), 1_000 - charge);
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT to_address, subject, html FROM messages WHERE campaign_id = ?1 ORDER BY to_address")
        .unwrap();
    let sent: Vec<(String, String, String)> = stmt
        .query_map([&id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1.as_str()),
        ("c0@example.com", "Hello C0")
    );
    assert_eq!(
        (sent[1].0.as_str(), sent[1].1.as_str()),
        ("c1@example.com", "Hello C1")
    );
    // The link is HTML-escaped like any variable in HTML (`/` as `&#x2f;`, which a browser
    // reads back as `/`).
    assert!(
        sent[0]
            .2
            .replace("&#x2f;", "/")
            .starts_with("<p>Hi C0</p><a href=\"http://127.0.0.1/u/"),
        "{}",
        sent[0].2
    );
    assert_ne!(
        sent[0].2.replace("C0", ""),
        sent[1].2.replace("C1", ""),
        "links differ"
    );
    assert_doctor_passes(&server);
}

#[test]
fn a_draft_whose_schedule_has_passed_launches_now() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 2);
    shop.credit(1_000);
    let mut body = sms_campaign(json!({"all": true}));
    body["scheduled_at"] = json!("2026-11-25T09:35:00Z");
    let id = shop.campaign(body);
    server.clock.advance(chrono::Duration::minutes(10));
    // Its time has passed: it can still be edited (only a schedule being set must be ahead)…
    let renamed = shop
        .api
        .patch(&format!("/v1/campaigns/{id}"), json!({"name": "Renamed"}));
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let past = json!({"scheduled_at": "2026-11-25T09:36:00Z"});
    let refused = shop.api.patch(&format!("/v1/campaigns/{id}"), past);
    assert!(
        invalid(&refused).contains_key("scheduled_at"),
        "{}",
        refused.text()
    );
    // …and launching it starts it now.
    let launched = shop.launched(&id, "launch-1");
    assert_eq!(launched["status"], "running");
    assert_eq!(
        launched["launch"]["launched_at"],
        "2026-11-25T09:40:00.000Z"
    );
    assert_eq!(launched["launch"]["reserved"], xaf(50));
    shop.wait_status(&id, "completed");
}

#[test]
fn a_campaigns_messages_timeline_and_test_sends() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 3);
    shop.credit(1_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launched(&id, "launch-1");
    shop.wait_status(&id, "completed");
    let listed = shop.api.get(&format!("/v1/messages?campaign_id={id}"));
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{listed}");
    for message in data {
        assert_eq!(message["campaign_id"], id.as_str());
        assert_eq!(message["category"], "marketing");
        assert_eq!(message["sender"], "CRIER");
        assert_eq!(message["charge"], xaf(25));
        assert_eq!(message["status"], "sent");
    }
    // Another campaign's id lists nothing.
    let other = shop.campaign(sms_campaign(json!({"all": true})));
    let none = shop
        .api
        .get(&format!("/v1/messages?campaign_id={other}"))
        .json();
    assert_eq!(none["data"], json!([]));

    let minute = shop
        .api
        .get(&format!("/v1/campaigns/{id}/timeline?period=minute"));
    assert_eq!(minute.status, 200, "{}", minute.text());
    assert_eq!(
        minute.json(),
        json!({"period": "minute", "data": [
            {"start": "2026-11-25T09:30:00.000Z", "sent": 3, "delivered": 0, "failed": 0,
             "clicks": 0}]})
    );
    let default = shop.api.get(&format!("/v1/campaigns/{id}/timeline")).json();
    assert_eq!(default, minute.json());
    let hour = shop
        .api
        .get(&format!("/v1/campaigns/{id}/timeline?period=hour"))
        .json();
    assert_eq!(
        hour,
        json!({"period": "hour", "data": [
            {"start": "2026-11-25T09:00:00.000Z", "sent": 3, "delivered": 0, "failed": 0,
             "clicks": 0}]})
    );
    let draft = shop
        .api
        .get(&format!("/v1/campaigns/{other}/timeline"))
        .json();
    assert_eq!(draft, json!({"period": "minute", "data": []}));

    // A test send: the campaign rendered for a contact, to any number, charged like a send.
    let ann = shop.api.get("/v1/contacts?limit=100").json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|contact| contact["first_name"] == "Ann0")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let balance = shop.balance();
    let path = format!("/v1/campaigns/{other}/test");
    let body = json!({"to": "+237699000001", "contact_id": ann});
    let tested = keyed(&server, &shop.api.key, &path, "test-1", Some(&body));
    assert_eq!(tested.status, 201, "{}", tested.text());
    let message = tested.json();
    assert_eq!(message["category"], "transactional");
    assert_eq!(message["to"], "+237699000001");
    assert_eq!(message["campaign_id"], Value::Null);
    assert_eq!(message["metadata"], json!({"campaign_test": other}));
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .starts_with("Hi Ann0, the autumn sale")
    );
    assert_eq!(message["charge"], xaf(25));
    assert_eq!(shop.balance(), balance - 25);
    let replay = keyed(&server, &shop.api.key, &path, "test-1", Some(&body));
    assert_eq!(replay.status, 201);
    assert_eq!(replay.json()["id"], message["id"]);
    assert_eq!(shop.balance(), balance - 25, "a replay charges nothing");
    // Without a contact, the sample contact.
    let sample = keyed(
        &server,
        &shop.api.key,
        &path,
        "test-2",
        Some(&json!({"to": "+237699000001"})),
    );
    assert_eq!(sample.status, 201, "{}", sample.text());
    assert!(
        sample.json()["text"]
            .as_str()
            .unwrap()
            .starts_with("Hi Ada,")
    );
    assert_eq!(
        shop.show(&other)["status"],
        "draft",
        "a test send launches nothing"
    );
}

#[test]
fn every_bad_request_to_the_sending_routes_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 3);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let (_, reader) = create_key(&shop.owner, &["campaigns:read", "contacts:read"], "live");
    let (_, writer) = create_key(&shop.owner, &["campaigns:write"], "live");
    let (_, contacts_only) = create_key(&shop.owner, &["contacts:read"], "live");
    let reader = Caller {
        server: &server,
        key: reader,
    };
    let writer = Caller {
        server: &server,
        key: writer,
    };
    let contacts_only = Caller {
        server: &server,
        key: contacts_only,
    };
    let launch = format!("/v1/campaigns/{id}/launch");
    let test = format!("/v1/campaigns/{id}/test");
    let before = snapshot(&server);
    let unchanged = |what: &str| assert_eq!(snapshot(&server), before, "{what} changed something");

    // Missing Idempotency-Key: launch and test send.
    shop.api
        .post(&launch, json!({}))
        .assert_error(400, "idempotency_key_required");
    unchanged("a launch without a key");
    shop.api
        .post(&test, json!({"to": phone(1)}))
        .assert_error(400, "idempotency_key_required");
    unchanged("a test send without a key");

    // Scopes.
    keyed(&server, &reader.key, &launch, "k-scope", None).assert_error(403, "insufficient_scope");
    reader
        .post(&format!("/v1/campaigns/{id}/cancel"), json!({}))
        .assert_error(403, "insufficient_scope");
    keyed(
        &server,
        &writer.key,
        &test,
        "k-scope",
        Some(&json!({"to": phone(1)})),
    )
    .assert_error(403, "insufficient_scope");
    for path in [
        format!("/v1/campaigns/{id}/timeline"),
        format!("/v1/campaigns/{id}"),
    ] {
        contacts_only
            .get(&path)
            .assert_error(403, "insufficient_scope");
    }
    contacts_only
        .post(&format!("/v1/campaigns/{id}/estimate"), json!({}))
        .assert_error(403, "insufficient_scope");
    unchanged("a request without its scope");

    // Bad bodies of the test send.
    let raw = format!("Bearer {}", shop.api.key);
    let bad_json = server.request(
        "POST",
        &test,
        &[
            ("Authorization", raw.as_str()),
            ("Idempotency-Key", "k-json"),
            ("Content-Type", "application/json"),
        ],
        b"{\"to\": ",
    );
    bad_json.assert_error(400, "invalid_json");
    let unknown = keyed(
        &server,
        &shop.api.key,
        &test,
        "k-unknown",
        Some(&json!({"to": phone(1), "cc": "x"})),
    );
    assert!(invalid(&unknown).contains_key("cc"), "{}", unknown.text());
    let missing = keyed(&server, &shop.api.key, &test, "k-missing", Some(&json!({})));
    assert!(invalid(&missing).contains_key("to"));
    let no_contact = keyed(
        &server,
        &shop.api.key,
        &test,
        "k-contact",
        Some(&json!({"to": phone(1), "contact_id": "con_nope"})),
    );
    assert!(invalid(&no_contact).contains_key("contact_id"));
    let bad_to = keyed(
        &server,
        &shop.api.key,
        &test,
        "k-to",
        Some(&json!({"to": "12"})),
    );
    assert!(invalid(&bad_to).contains_key("to"), "{}", bad_to.text());
    unchanged("a bad test send");

    // A bad timeline period.
    let period = shop
        .api
        .get(&format!("/v1/campaigns/{id}/timeline?period=day"));
    assert!(invalid(&period).contains_key("period"));

    // Unknown and malformed ids: 404 everywhere.
    for missing in ["cmp_00000000000000000000000000", "nope"] {
        shop.api
            .get(&format!("/v1/campaigns/{missing}"))
            .assert_error(404, "not_found");
        shop.api
            .post(&format!("/v1/campaigns/{missing}/estimate"), json!({}))
            .assert_error(404, "not_found");
        keyed(
            &server,
            &shop.api.key,
            &format!("/v1/campaigns/{missing}/launch"),
            "k-404",
            None,
        )
        .assert_error(404, "not_found");
        shop.api
            .post(&format!("/v1/campaigns/{missing}/cancel"), json!({}))
            .assert_error(404, "not_found");
        keyed(
            &server,
            &shop.api.key,
            &format!("/v1/campaigns/{missing}/test"),
            "k-404",
            Some(&json!({"to": phone(1)})),
        )
        .assert_error(404, "not_found");
        shop.api
            .get(&format!("/v1/campaigns/{missing}/timeline"))
            .assert_error(404, "not_found");
    }
    unchanged("a request for a campaign that does not exist");

    // 409: a draft has nothing to cancel.
    shop.cancel(&id).assert_error(409, "conflict");
    unchanged("cancelling a draft");

    // 402: the wallet is empty; the draft stays a draft, nothing is reserved or written.
    let refused = shop.launch(&id, "k-402");
    let envelope = refused.assert_error(402, "insufficient_funds");
    assert!(envelope["error"]["details"].is_object(), "{envelope}");
    assert_eq!(shop.show(&id)["status"], "draft");
    unchanged("a launch the wallet cannot pay");

    // 422: nobody the campaign may go to.
    let gone = shop.contact(json!({"name": "Gone", "phone": phone(9)}));
    let response = shop.api.patch(
        &format!("/v1/contacts/{gone}"),
        json!({"unsubscribed": {"sms": true}}),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let lonely = shop.campaign(sms_campaign(
        json!({"groups": [shop.group("Gone", &[gone])]}),
    ));
    let before = snapshot(&server);
    let nobody = shop.launch(&lonely, "k-422");
    assert!(
        invalid(&nobody).contains_key("audience"),
        "{}",
        nobody.text()
    );
    assert_eq!(
        snapshot(&server),
        before,
        "a launch to nobody changed something"
    );
    // A deleted group is named too.
    let group = shop.group("Soon gone", &[]);
    let orphan = shop.campaign(sms_campaign(json!({"groups": [group]})));
    assert_eq!(shop.api.delete(&format!("/v1/groups/{group}")).status, 204);
    let before = snapshot(&server);
    let estimate = shop
        .api
        .post(&format!("/v1/campaigns/{orphan}/estimate"), json!({}));
    assert!(invalid(&estimate).contains_key("audience.groups"));
    let launched = shop.launch(&orphan, "k-orphan");
    assert!(invalid(&launched).contains_key("audience.groups"));
    assert_eq!(
        snapshot(&server),
        before,
        "a launch to a deleted group changed something"
    );

    // Once paid, the launch goes through; a second launch (new key) is a 409, and a key used
    // for another campaign is refused. (The runner works meanwhile: no snapshot here.)
    shop.credit(1_000);
    let launched = shop.launched(&id, "k-ok");
    shop.launch(&id, "k-again").assert_error(409, "conflict");
    let other = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launch(&other, "k-ok")
        .assert_error(422, "idempotency_key_reused");
    assert_eq!(shop.show(&other)["status"], "draft");
    let charges: Vec<_> = shop
        .ledger()
        .into_iter()
        .filter(|(kind, _, _)| kind == "charge")
        .collect();
    assert_eq!(charges, [("charge".to_owned(), -75, Some(id.clone()))]);
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM billing_reservations WHERE reference = '{other}'")
        ),
        0
    );
    // Drafts only: a launched campaign is not edited or deleted.
    shop.api
        .patch(&format!("/v1/campaigns/{id}"), json!({"name": "Renamed"}))
        .assert_error(409, "conflict");
    shop.api
        .delete(&format!("/v1/campaigns/{id}"))
        .assert_error(409, "conflict");
    let done = shop.wait_status(&id, "completed");
    assert_eq!(
        done["launch"]["launched_at"],
        launched["launch"]["launched_at"]
    );
    // A finished campaign is not cancelled, nor launched again.
    let before = snapshot(&server);
    shop.cancel(&id).assert_error(409, "conflict");
    shop.launch(&id, "k-third").assert_error(409, "conflict");
    assert_eq!(
        snapshot(&server),
        before,
        "a request on a finished campaign changed something"
    );
    assert_doctor_passes(&server);
}

#[test]
fn another_workspaces_and_the_other_modes_campaigns_are_not_found_on_every_route() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 2);
    shop.credit(1_000);
    let draft = shop.campaign(sms_campaign(json!({"all": true})));
    let running = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launched(&running, "launch-1");
    shop.wait_status(&running, "completed");
    let globex = second_tenant(&shop.owner, "globex@example.com");
    let (_, stranger) = create_key(&globex, SCOPES, "live");
    let (_, tester) = create_key(&shop.owner, SCOPES, "test");
    let before = snapshot(&server);
    for key in [&stranger, &tester] {
        let caller = Caller {
            server: &server,
            key: key.clone(),
        };
        for id in [&draft, &running] {
            caller
                .get(&format!("/v1/campaigns/{id}"))
                .assert_error(404, "not_found");
            caller
                .post(&format!("/v1/campaigns/{id}/estimate"), json!({}))
                .assert_error(404, "not_found");
            keyed(
                &server,
                key,
                &format!("/v1/campaigns/{id}/launch"),
                "k-wall",
                None,
            )
            .assert_error(404, "not_found");
            caller
                .post(&format!("/v1/campaigns/{id}/cancel"), json!({}))
                .assert_error(404, "not_found");
            keyed(
                &server,
                key,
                &format!("/v1/campaigns/{id}/test"),
                "k-wall",
                Some(&json!({"to": phone(1)})),
            )
            .assert_error(404, "not_found");
            caller
                .get(&format!("/v1/campaigns/{id}/timeline"))
                .assert_error(404, "not_found");
        }
    }
    // Nor are its messages listed to another workspace. (`GET /v1/messages` is not walled by
    // mode: a test key of the same workspace lists live messages, the campaign's included.)
    let listed = bearer(
        &server,
        &stranger,
        "GET",
        &format!("/v1/messages?campaign_id={running}"),
        None,
    );
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["data"], json!([]));
    // The console of the other workspace works on its own live campaigns: not these.
    globex
        .post(&format!("/v1/campaigns/{draft}/cancel"), &json!({}))
        .assert_error(404, "not_found");
    assert_eq!(snapshot(&server), before);
    assert_eq!(shop.show(&draft)["status"], "draft");
}

/// Installs a trigger that runs `change` (SQL on `contacts`) inside the transaction that moves a
/// campaign from draft to running: the contacts change after the launch's estimate and before
/// any fan-out chunk, deterministically — as if they had changed in the moment between.
fn change_contacts_at_launch(server: &TestServer, change: &str) {
    server
        .db()
        .execute_batch(&format!(
            "CREATE TRIGGER test_change_at_launch AFTER UPDATE OF status ON campaigns
             WHEN OLD.status = 'draft' AND NEW.status = 'running'
             BEGIN {change}; END;"
        ))
        .unwrap();
}

fn drop_launch_trigger(server: &TestServer) {
    server
        .db()
        .execute_batch("DROP TRIGGER test_change_at_launch")
        .unwrap();
}

/// The ten newest contacts.
const LAST_TEN: &str = "(SELECT rowid FROM contacts ORDER BY rowid DESC LIMIT 10)";

#[test]
fn contacts_left_out_after_the_launch_are_refunded_with_their_included_units() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 100);
    shop.include_sms(95);
    shop.credit(1_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    // 100 units: 95 included, 5 at 25.
    assert_eq!(shop.estimate(&id)["charge"], xaf(125));
    change_contacts_at_launch(
        &server,
        &format!(
            "UPDATE contacts SET sms_unsubscribed_at = '2026-11-25T09:30:00.000Z',
                sms_unsubscribed_via = 'api' WHERE rowid IN {LAST_TEN}"
        ),
    );
    let launched = shop.launched(&id, "launch-1");
    assert_eq!(launched["launch"]["reserved"], xaf(125));
    assert_eq!(launched["launch"]["planned_recipients"], 100);
    drop_launch_trigger(&server);
    let done = shop.wait_status(&id, "completed");
    assert_eq!(done["launch"]["messages_created"], 90);
    assert_eq!(done["launch"]["excluded"], json!({"unsubscribed": 10}));
    // The 90 messages took 90 of the pool's 95 included units; the 5 billable units (125) and
    // 5 included units went back.
    let messages = shop.messages(&id);
    assert_eq!(messages.len(), 90);
    assert!(
        messages
            .iter()
            .all(|m| m.included_units == 1 && m.charge_minor == 0)
    );
    assert_eq!(done["stats"]["charged"], xaf(0));
    assert_eq!(done["stats"]["refunded"], xaf(125));
    assert_eq!(shop.balance(), 1_000);
    let ledger = shop.ledger();
    assert_eq!(
        ledger[1..],
        [
            ("charge".to_owned(), -125, Some(id.clone())),
            ("refund".to_owned(), 125, Some(id.clone())),
        ],
        "{ledger:?}"
    );
    let billing = shop.owner.get("/v1/billing").json();
    assert_eq!(billing["quotas"]["sms"]["used"], 90, "{billing}");
    assert_doctor_passes(&server);
}

#[test]
fn messages_longer_than_at_launch_enlarge_the_pool_and_are_charged_exactly() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 100);
    shop.credit(5_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    assert_eq!(shop.estimate(&id)["charge"], xaf(2_500));
    // Ten contacts' names grow long enough for a second segment.
    change_contacts_at_launch(
        &server,
        &format!(
            "UPDATE contacts SET first_name = '{}' WHERE rowid IN {LAST_TEN}",
            first_name(0, 1)
        ),
    );
    shop.launched(&id, "launch-1");
    drop_launch_trigger(&server);
    let done = shop.wait_status(&id, "completed");
    let messages = shop.messages(&id);
    assert_eq!(messages.len(), 100);
    let units: i64 = messages.iter().map(|m| m.units).sum();
    assert_eq!(units, 110);
    let charged: i64 = messages.iter().map(|m| m.charge_minor).sum();
    assert_eq!(charged, 2_750);
    assert_eq!(done["launch"]["reserved"], xaf(2_750));
    assert_eq!(done["stats"]["charged"], xaf(2_750));
    assert_eq!(shop.balance(), 5_000 - 2_750);
    let ledger = shop.ledger();
    assert_eq!(ledger[1], ("charge".to_owned(), -2_500, Some(id.clone())));
    let campaign_total: i64 = ledger
        .iter()
        .filter(|(_, _, reference)| reference.as_deref() == Some(id.as_str()))
        .map(|(_, amount, _)| amount)
        .sum();
    assert_eq!(campaign_total, -2_750, "{ledger:?}");
    assert_doctor_passes(&server);
}

#[test]
fn a_longer_message_the_wallet_cannot_pay_is_left_out_and_the_rest_refunded() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 100);
    // Exactly the launch's charge: nothing more to enlarge the pool with.
    shop.credit(2_500);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    change_contacts_at_launch(
        &server,
        &format!(
            "UPDATE contacts SET first_name = '{}' WHERE rowid IN {LAST_TEN}",
            first_name(0, 1)
        ),
    );
    shop.launched(&id, "launch-1");
    drop_launch_trigger(&server);
    assert_eq!(shop.balance(), 0);
    let done = shop.wait_status(&id, "completed");
    let messages = shop.messages(&id);
    let charged: i64 = messages.iter().map(|m| m.charge_minor).sum();
    // 90 short messages, then five long ones carve the pool's last ten units; the last five
    // find it empty and a wallet that cannot enlarge it.
    assert_eq!(
        done["launch"]["excluded"],
        json!({"insufficient_funds": 5}),
        "{done}"
    );
    assert_eq!(messages.len(), 95);
    assert_eq!(charged, 2_500);
    assert_eq!(done["launch"]["messages_created"], messages.len());
    // What was reserved and not carved came back; the wallet paid exactly the messages.
    assert_eq!(shop.balance(), 2_500 - charged);
    assert_eq!(done["stats"]["refunded"], xaf(2_500 - charged));
    assert!(shop.balance() >= 0);
    assert_doctor_passes(&server);
}

#[test]
fn a_launch_refused_for_its_audience_is_not_stored_under_its_key() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    shop.credit(1_000);
    let gone = shop.contact(json!({"name": "Gone", "first_name": "Gone", "phone": phone(1)}));
    let unsubscribe = |sms: bool| {
        let response = shop.api.patch(
            &format!("/v1/contacts/{gone}"),
            json!({"unsubscribed": {"sms": sms}}),
        );
        assert_eq!(response.status, 200, "{}", response.text());
    };
    unsubscribe(true);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let nobody = shop.launch(&id, "launch-1");
    assert!(
        invalid(&nobody).contains_key("audience"),
        "{}",
        nobody.text()
    );
    // Once there is someone to send to, the same key launches: the refusal was not recorded.
    unsubscribe(false);
    let launched = shop.launch(&id, "launch-1");
    assert_eq!(launched.status, 200, "{}", launched.text());
    assert_eq!(launched.json()["status"], "running");

    // The same for a campaign scheduled with a group deleted since it was saved.
    let group = shop.group("Soon gone", std::slice::from_ref(&gone));
    let mut later = sms_campaign(json!({"groups": [group]}));
    later["scheduled_at"] = json!("2026-11-26T09:00:00Z");
    let later = shop.campaign(later);
    assert_eq!(shop.api.delete(&format!("/v1/groups/{group}")).status, 204);
    let refused = shop.launch(&later, "launch-2");
    assert!(
        invalid(&refused).contains_key("audience.groups"),
        "{}",
        refused.text()
    );
    let fixed = shop.api.patch(
        &format!("/v1/campaigns/{later}"),
        json!({"audience": {"all": true}}),
    );
    assert_eq!(fixed.status, 200, "{}", fixed.text());
    let scheduled = shop.launch(&later, "launch-2");
    assert_eq!(scheduled.status, 200, "{}", scheduled.text());
    assert_eq!(scheduled.json()["status"], "scheduled");
}

#[test]
fn concurrent_launches_of_one_campaign_start_it_once() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 10);
    shop.credit(10_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let (addr, key) = (server.addr, shop.api.key.clone());
    let path = format!("/v1/campaigns/{id}/launch");
    // Six callers with their own keys, and two retries of one key, at once.
    let responses: Vec<(String, TestResponse)> = std::thread::scope(|scope| {
        let threads: Vec<_> = ["a", "b", "c", "d", "e", "f", "same", "same"]
            .into_iter()
            .map(|idempotency_key| {
                let (key, path) = (&key, &path);
                scope.spawn(move || {
                    (
                        idempotency_key.to_owned(),
                        raw_post(addr, key, path, idempotency_key, None),
                    )
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut started = std::collections::BTreeSet::new();
    for (idempotency_key, response) in &responses {
        match response.status {
            200 => {
                assert_eq!(response.json()["status"], "running");
                started.insert(idempotency_key.clone());
            }
            // (Not `assert_error`: a replayed refusal carries the first request's id.)
            409 => assert_eq!(response.json()["error"]["code"], "conflict"),
            other => panic!("{idempotency_key}: {other} {}", response.text()),
        }
    }
    assert_eq!(started.len(), 1, "one key started it: {started:?}");
    // The two requests with the same key got the same answer.
    let same: Vec<&TestResponse> = responses
        .iter()
        .filter(|(k, _)| k == "same")
        .map(|(_, response)| response)
        .collect();
    // The two requests with one key got one answer: a replay when the first was recorded
    // (byte-identical), or both refused before their key was (another key won the launch).
    assert_eq!(same[0].status, same[1].status);
    if same[0].status == 200 {
        assert_eq!(same[0].body, same[1].body, "a replay is byte-identical");
    } else {
        assert_eq!(without_request_id(same[0]), without_request_id(same[1]));
    }
    let charges: Vec<_> = shop
        .ledger()
        .into_iter()
        .filter(|(kind, _, _)| kind == "charge")
        .collect();
    assert_eq!(charges, [("charge".to_owned(), -250, Some(id.clone()))]);
    shop.wait_status(&id, "completed");
    assert_eq!(shop.messages(&id).len(), 10);
    assert_doctor_passes(&server);
}

#[test]
fn a_console_session_launches_live_campaigns_only() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 3);
    shop.credit(1_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    let console = &shop.owner;
    let estimate = console.post(&format!("/v1/campaigns/{id}/estimate"), &json!({}));
    assert_eq!(estimate.status, 200, "{}", estimate.text());
    assert_eq!(estimate.json()["charge"], xaf(75));
    let cookie = console.cookie();
    let launch = send(
        &server,
        "POST",
        &format!("/v1/campaigns/{id}/launch"),
        vec![
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", console.csrf_token.as_str()),
            ("Idempotency-Key", "console-1"),
        ],
        None,
    );
    assert_eq!(launch.status, 200, "{}", launch.text());
    shop.wait_status(&id, "completed");
    let launched_by: Vec<Option<String>> = server
        .db()
        .prepare("SELECT api_key_id FROM messages WHERE campaign_id = ?1")
        .unwrap()
        .query_map([&id], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(launched_by, [None, None, None], "no key launched it");
    // A test-mode campaign is not the console's.
    let (_, test_key) = create_key(console, SCOPES, "test");
    let tester = Caller {
        server: &server,
        key: test_key,
    };
    let response = tester.post("/v1/campaigns", sms_campaign(json!({"all": true})));
    assert_eq!(response.status, 201, "{}", response.text());
    let test_id = response.json()["id"].as_str().unwrap().to_owned();
    console
        .post(&format!("/v1/campaigns/{test_id}/estimate"), &json!({}))
        .assert_error(404, "not_found");
    console
        .post(&format!("/v1/campaigns/{test_id}/cancel"), &json!({}))
        .assert_error(404, "not_found");
}

#[test]
fn contacts_deleted_after_the_launch_are_left_out_and_refunded() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    import_short(&shop, 100);
    shop.credit(5_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    change_contacts_at_launch(
        &server,
        &format!(
            "UPDATE contacts SET deleted_at = '2026-11-25T09:30:00.000Z' WHERE rowid IN {LAST_TEN}"
        ),
    );
    shop.launched(&id, "launch-1");
    drop_launch_trigger(&server);
    let done = shop.wait_status(&id, "completed");
    // (They are counted under no reason in `launch.excluded`: 90 messages of 100 planned.)
    assert_eq!(done["launch"]["messages_created"], 90);
    assert_eq!(shop.messages(&id).len(), 90);
    assert_eq!(done["stats"]["refunded"], xaf(250));
    assert_eq!(shop.balance(), 5_000 - 90 * 25);
    assert_doctor_passes(&server);
}

#[test]
fn a_campaign_whose_messages_fail_ends_partial_or_failed_and_refunds_them() {
    use crate::fake_http::{FakeHttp, Reply};
    use crier::delivery::settings::{SmsProviderName, WebhookSettings};
    // The provider refuses for good every number ending in an odd digit — for a reason that
    // says nothing about the number itself (an `invalid_number` would mark the phones invalid,
    // and the second campaign below would then have nobody to write to).
    let fake = FakeHttp::start(|request| {
        let body = request.json();
        let to = body["to"].as_str().unwrap_or_default();
        if to.ends_with(['1', '3', '5', '7', '9']) {
            Reply::json(400, json!({"code": "number_blacklisted"}))
        } else {
            Reply::json(
                202,
                json!({"id": format!("w-{}", body["id"].as_str().unwrap())}),
            )
        }
    });
    let url = fake.url();
    let server = TestServer::start_with(
        move |config| {
            config.delivery.sms_providers = vec![SmsProviderName::Webhook];
            config.delivery.webhook = Some(WebhookSettings {
                url: format!("{url}/sms"),
                secret: None,
            });
        },
        crier::web::router::Router::standard(),
    );
    let shop = Shop::open(&server, "live");
    import_short(&shop, 10);
    shop.credit(1_000);
    let mixed = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launched(&mixed, "launch-mixed");
    let partial = shop.wait_status(&mixed, "partial");
    assert_eq!(
        partial["stats"]["messages"],
        json!({"queued": 0, "sent": 5, "delivered": 0, "failed": 5, "cancelled": 0})
    );
    assert_eq!(partial["stats"]["charged"], xaf(250));
    assert_eq!(
        partial["stats"]["refunded"],
        xaf(125),
        "failed unsent: refunded"
    );
    assert_eq!(partial["launch"]["failure"], Value::Null);
    assert_eq!(shop.balance(), 1_000 - 125);
    let timeline = shop
        .api
        .get(&format!("/v1/campaigns/{mixed}/timeline"))
        .json();
    assert_eq!(timeline["data"][0]["sent"], 5, "{timeline}");
    assert_eq!(timeline["data"][0]["failed"], 5, "{timeline}");

    // Only failing numbers: nothing sent, the campaign failed, every minor unit back.
    let odd: Vec<String> = shop
        .messages(&mixed)
        .into_iter()
        .filter(|m| m.status == "failed")
        .map(|m| m.contact_id)
        .collect();
    let group = shop.group("Odd", &odd);
    let doomed = shop.campaign(sms_campaign(json!({"groups": [group]})));
    shop.launched(&doomed, "launch-doomed");
    let failed = shop.wait_status(&doomed, "failed");
    assert_eq!(
        failed["launch"]["failure"]["code"], "all_failed",
        "{failed}"
    );
    assert_eq!(failed["stats"]["messages"]["failed"], 5);
    assert_eq!(failed["stats"]["refunded"], xaf(125));
    assert_eq!(shop.balance(), 1_000 - 125);
    assert_eq!(
        shop.ledger()
            .iter()
            .map(|(_, amount, _)| amount)
            .sum::<i64>(),
        1_000 - 125
    );
    assert_doctor_passes(&server);
}

/// Issue 14: a transactional send made while a campaign's backlog is queued goes out before
/// that backlog. One dispatcher claiming five at a time, and a webhook provider that holds its
/// first call until the backlog and the OTP are both queued: the OTP is the first message of
/// the dispatcher's next claim — the provider's sixth call — where due-time order (the OTP is
/// due a second after every campaign message) would have sent it last of 301.
#[test]
fn a_transactional_send_goes_out_before_a_queued_campaign_backlog() {
    use crate::fake_http::{FakeHttp, Reply};
    use crier::delivery::settings::{SmsProviderName, WebhookSettings};
    use std::sync::{Arc, Condvar, Mutex};
    const CONTACTS: usize = 300;
    const BATCH: usize = 5;

    /// Opens the gate when dropped, so a failing test never leaves the provider (and the
    /// server's shutdown, which waits for the call in hand) waiting for it.
    struct Gate(Arc<(Mutex<bool>, Condvar)>);
    impl Gate {
        fn open(&self) {
            *self.0.0.lock().unwrap() = true;
            self.0.1.notify_all();
        }
    }
    impl Drop for Gate {
        fn drop(&mut self) {
            self.open();
        }
    }

    let shared = Arc::new((Mutex::new(false), Condvar::new()));
    let held = Arc::clone(&shared);
    let fake = FakeHttp::start(move |request| {
        let (open, opened) = &*held;
        let closed = open.lock().unwrap();
        // Bounded, should the test never open it.
        drop(
            opened
                .wait_timeout_while(closed, Duration::from_secs(300), |open| !*open)
                .unwrap(),
        );
        let id = request.json()["id"]
            .as_str()
            .unwrap()
            .replace("msg_", "wh_");
        Reply::json(200, json!({ "id": id }))
    });
    let url = fake.url();
    let server = TestServer::start_with(
        move |config| {
            config.delivery.sms_providers = vec![SmsProviderName::Webhook];
            config.delivery.webhook = Some(WebhookSettings {
                url: format!("{url}/sms"),
                secret: None,
            });
            config.delivery.dispatch_workers = 1;
            config.delivery.dispatch_batch = BATCH;
            // The held call must not time out however long the fan-out takes here.
            config.delivery.provider_timeout = Duration::from_secs(600);
            config.delivery.dispatch_lease = Duration::from_secs(1200);
        },
        crier::web::router::Router::standard(),
    );
    let gate = Gate(shared);
    let shop = Shop::open(&server, "live");
    import_short(&shop, CONTACTS);
    shop.credit(10_000);
    let id = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launched(&id, "launch-backlog");
    // The dispatcher holds its first claim (five campaign messages), stuck on the first call,
    // while the fan-out queues the rest.
    fake.wait_for_requests(1, SETTLE);
    wait_for_value(
        "the fan-out ends",
        SETTLE,
        || shop.show(&id)["launch"]["fanout_done"].clone(),
        |done| *done == true,
    );
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE campaign_id = '{id}' AND status = 'queued'"
            ),
        ),
        (CONTACTS - BATCH) as i64,
        "the backlog is queued behind the claim in hand"
    );

    server.clock.advance(chrono::Duration::seconds(1));
    let otp = raw_post(
        server.addr,
        &shop.api.key,
        "/v1/messages",
        "otp-1",
        Some(&json!({"channel": "sms", "to": phone(CONTACTS + 1), "text": "Your code: 493 021"})),
    );
    assert!(otp.status < 300, "{}", otp.text());
    let otp = otp.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE id = '{otp}' AND category = 'transactional' AND status = 'queued'"
            ),
        ),
        1
    );
    gate.open();

    shop.wait_status(&id, "completed");
    let calls = fake.wait_for_requests(CONTACTS + 1, SETTLE);
    let order: Vec<String> = calls
        .iter()
        .map(|request| request.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = order.iter().collect();
    assert_eq!((order.len(), distinct.len()), (CONTACTS + 1, CONTACTS + 1));
    let position = order.iter().position(|sent| *sent == otp).unwrap();
    assert_eq!(
        position,
        BATCH,
        "the OTP goes right after the batch in hand, before {} campaign messages",
        CONTACTS - BATCH
    );
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM messages WHERE id = '{otp}' AND status = 'sent'"),
        ),
        1
    );
    assert_doctor_passes(&server);
}

/// A template can render blank for a contact (`{{ contact.last_name }}` of a one-word name):
/// that contact is left out as `render_failed` — never a message of nothing, never charged —
/// the campaign goes on for the others, and a campaign that renders blank for everyone is not
/// launched at all.
#[test]
fn a_message_that_renders_blank_for_a_contact_leaves_that_contact_out() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "test");
    let ada = shop
        .contact(json!({"name": "Ada Lovelace", "phone": phone(1), "email": "ada@example.com"}));
    shop.contact(json!({"name": "Cher", "phone": phone(2), "email": "cher@example.com"}));
    let sms = json!({"name": "Blank", "channel": "sms", "audience": {"all": true},
                     "text": "{{ contact.last_name }}", "opt_out_line": true});
    let email = json!({"name": "Blank", "channel": "email", "audience": {"all": true},
                       "subject": "{{ contact.last_name }}", "text": "Hello {{ contact.first_name }}"});
    // An SMS estimate renders each recipient's message; an email estimate does not (the
    // fan-out finds the blank one).
    for (body, estimated) in [(sms, 1), (email, 2)] {
        let id = shop.campaign(body);
        let estimate = shop.estimate(&id);
        assert_eq!(estimate["recipients"], estimated, "{estimate}");
        assert_eq!(
            estimate["excluded"]["render_failed"],
            2 - estimated,
            "{estimate}"
        );
        shop.launched(&id, &format!("launch-{id}"));
        let done = shop.wait_status(&id, "completed");
        assert_eq!(done["stats"]["messages"]["sent"], 1, "{done}");
        assert_eq!(done["launch"]["excluded"]["render_failed"], 1, "{done}");
        let messages = shop.messages(&id);
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].first_name.as_deref(),
            Some("Ada"),
            "{messages:?}"
        );
        assert!(
            messages[0].units > 0 && messages[0].text.is_some(),
            "{messages:?}"
        );
    }
    // Blank whoever the contact is: refused as it is written (422 on the field).
    let blank = json!({"name": "Nothing", "channel": "sms", "audience": {"all": true},
                       "text": "{{ '' }}"});
    let refused = shop.api.post("/v1/campaigns", blank);
    assert_eq!(
        invalid(&refused)["text"],
        "renders empty",
        "{}",
        refused.text()
    );
    // Blank for every contact left: nothing to launch (422 on audience, naming the reason).
    let deleted = shop.api.delete(&format!("/v1/contacts/{ada}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let id = shop.campaign(
        json!({"name": "Nobody", "channel": "sms", "audience": {"all": true},
                                  "text": "{{ contact.last_name }}"}),
    );
    let refused = shop.launch(&id, "launch-nobody");
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(
        invalid(&refused)["audience"]
            .as_str()
            .unwrap()
            .contains("1 whose message does not render"),
        "{}",
        refused.text()
    );
    assert_doctor_passes(&server);
}

/// A preview and a test send check the campaign's templates against the custom fields as they
/// are now, as an estimate and a launch do: a field deleted since the draft was saved is a 422
/// on the template's field, and nothing is sent or charged (the test send rendered it blank).
#[test]
fn a_preview_or_test_send_of_a_template_naming_a_deleted_field_is_refused() {
    let server = TestServer::start();
    let shop = Shop::open(&server, "live");
    shop.credit(1_000);
    shop.contact(json!({"name": "Ada", "phone": phone(1)}));
    let field = shop.api.post(
        "/v1/contact-fields",
        json!({"key": "tier", "label": "Tier", "type": "text"}),
    );
    assert_eq!(field.status, 201, "{}", field.text());
    let id = shop.campaign(
        json!({"name": "Tiers", "channel": "sms", "audience": {"all": true},
                                  "text": "Hi {{ contact.custom.tier }}"}),
    );
    let field_id = field.json()["id"].as_str().unwrap().to_owned();
    let deleted = shop.api.delete(&format!("/v1/contact-fields/{field_id}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let preview = shop
        .api
        .post(&format!("/v1/campaigns/{id}/preview"), json!({}));
    assert!(
        invalid(&preview)["text"]
            .as_str()
            .unwrap()
            .contains("contact.custom.tier")
    );
    let balance = shop.balance();
    let test = keyed(
        &server,
        &shop.api.key,
        &format!("/v1/campaigns/{id}/test"),
        "test-1",
        Some(&json!({"to": phone(2)})),
    );
    assert!(invalid(&test).contains_key("text"), "{}", test.text());
    assert_eq!(shop.balance(), balance, "nothing was charged");
    assert_eq!(count(&server, "SELECT count(*) FROM messages"), 0);
}
