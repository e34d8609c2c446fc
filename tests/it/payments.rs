//! Payments end to end through the real server, against fake Flutterwave and Stripe servers on
//! loopback that speak their wire formats: checkout creation with fallback, signed webhooks,
//! verification before value, exactly-once fulfilment under races and replays, refunds, expiry.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::auth_fixtures::{Console, count, setup};
use crate::fake_http::{FakeHttp, Recorded, Reply};
use crate::harness::{TestResponse, TestServer, eventually, test_epoch};
use crier::config::{Config, Secret};
use crier::payments::provider::ProviderName;
use crier::web::router::Router;

pub(crate) const FLW_HASH: &str = "flw-webhook-hash";
const STRIPE_SECRET: &str = "whsec_test_secret";

/// What the fake providers answer; tests change it as they go.
#[derive(Clone)]
pub(crate) struct Script {
    /// `None`: answer normally; `Some(status)`: fail checkout creation with that status.
    pub create_fails: Option<u16>,
    /// The payment status the provider reports on verification.
    pub paid: bool,
    /// Report the transaction as failed (a declined card) rather than pending when unpaid.
    pub declined: bool,
    /// Overrides of what verification reports (defaults: the session's own values).
    pub amount: Option<f64>,
    pub currency: Option<&'static str>,
    pub reference: Option<&'static str>,
    /// `Some(status)`: verification answers that HTTP status (the provider is down).
    pub verify_fails: Option<u16>,
    /// How long verification takes to answer (a slow provider).
    pub verify_delay: std::time::Duration,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            create_fails: None,
            paid: true,
            declined: false,
            amount: None,
            currency: None,
            reference: None,
            verify_fails: None,
            verify_delay: std::time::Duration::ZERO,
        }
    }
}

/// Fake Flutterwave and Stripe sharing one script, remembering the last session id seen.
pub(crate) struct Fakes {
    pub flutterwave: FakeHttp,
    pub stripe: FakeHttp,
    script: Arc<Mutex<Script>>,
}

/// Our session id in a Stripe checkout request.
fn session_of(request: &Recorded) -> Option<String> {
    request.form_field("client_reference_id")
}

impl Fakes {
    pub fn start() -> Fakes {
        let script = Arc::new(Mutex::new(Script::default()));
        // Session ids and amounts the fakes were asked to create, to echo on verification.
        let created: Arc<Mutex<Vec<(String, i64)>>> = Arc::new(Mutex::new(Vec::new()));
        let flutterwave = {
            let script = Arc::clone(&script);
            let created = Arc::clone(&created);
            FakeHttp::start(move |request| {
                let script = script.lock().unwrap().clone();
                if request.method == "POST" && request.path() == "/v3/payments" {
                    if let Some(status) = script.create_fails {
                        return Reply::json(status, json!({"status": "error", "message": "down"}));
                    }
                    let body = request.json();
                    let amount = body["amount"].as_f64().unwrap() as i64;
                    created
                        .lock()
                        .unwrap()
                        .push((body["tx_ref"].as_str().unwrap().to_owned(), amount));
                    return Reply::json(
                        200,
                        json!({"status": "success", "message": "Hosted Link",
                               "data": {"link": "https://checkout.flutterwave.test/pay/x"}}),
                    );
                }
                // Verification, by transaction id or by reference.
                if let Some(status) = script.verify_fails {
                    return Reply::json(status, json!({"status": "error", "message": "down"}));
                }
                let (tx_ref, amount) = created.lock().unwrap().last().cloned().unwrap();
                Reply::json(
                    200,
                    json!({"status": "success", "message": "Transaction fetched successfully",
                    "data": {
                        "id": 4242,
                        "tx_ref": script.reference.unwrap_or(&tx_ref),
                        "status": if script.declined { "failed" } else if script.paid { "successful" } else { "pending" },
                        "amount": script.amount.unwrap_or(amount as f64),
                        "currency": script.currency.unwrap_or("XAF"),
                    }}),
                )
                .after(script.verify_delay)
            })
        };
        let stripe = {
            let script = Arc::clone(&script);
            let created = Arc::clone(&created);
            FakeHttp::start(move |request| {
                let script = script.lock().unwrap().clone();
                if request.method == "POST" && request.path() == "/v1/checkout/sessions" {
                    if let Some(status) = script.create_fails {
                        return Reply::json(
                            status,
                            json!({"error": {"type": "api_error", "message": "down"}}),
                        );
                    }
                    let amount: i64 = request
                        .form_field("line_items[0][price_data][unit_amount]")
                        .unwrap()
                        .parse()
                        .unwrap();
                    created
                        .lock()
                        .unwrap()
                        .push((session_of(request).unwrap(), amount));
                    return Reply::json(
                        200,
                        json!({"id": "cs_test_1", "url": "https://checkout.stripe.test/c/1",
                               "status": "open", "payment_status": "unpaid"}),
                    );
                }
                if let Some(status) = script.verify_fails {
                    return Reply::json(
                        status,
                        json!({"error": {"type": "api_error", "message": "down"}}),
                    );
                }
                let (reference, amount) = created.lock().unwrap().last().cloned().unwrap();
                Reply::json(
                    200,
                    json!({"id": "cs_test_1",
                           "status": if script.paid { "complete" } else { "open" },
                           "payment_status": if script.paid { "paid" } else { "unpaid" },
                           "amount_total": script.amount.map_or(amount, |a| a as i64),
                           "currency": script.currency.unwrap_or("XAF").to_lowercase(),
                           "client_reference_id": script.reference.unwrap_or(&reference)}),
                )
                .after(script.verify_delay)
            })
        };
        Fakes {
            flutterwave,
            stripe,
            script,
        }
    }

    pub fn set(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.script.lock().unwrap());
    }

    pub(crate) fn configure(&self, providers: &[ProviderName]) -> impl FnOnce(&mut Config) + use<> {
        let flutterwave = self.flutterwave.url();
        let stripe = self.stripe.url();
        let providers = providers.to_vec();
        move |config: &mut Config| {
            let payments = &mut config.payments;
            payments.providers = providers;
            payments.flutterwave.base_url = flutterwave;
            payments.flutterwave.secret_key = Some(Secret::new("FLWSECK_TEST-1"));
            payments.flutterwave.webhook_hash = Some(Secret::new(FLW_HASH));
            payments.stripe.base_url = stripe;
            payments.stripe.secret_key = Some(Secret::new("sk_test_1"));
            payments.stripe.webhook_secret = Some(Secret::new(STRIPE_SECRET));
        }
    }
}

pub(crate) fn start(fakes: &Fakes, providers: &[ProviderName]) -> TestServer {
    TestServer::start_with(fakes.configure(providers), Router::standard())
}

fn create(console: &Console<'_>, body: &Value, key: &str) -> TestResponse {
    let cookie = console.cookie();
    crate::auth_fixtures::send(
        console.server,
        "POST",
        "/v1/payments/sessions",
        vec![
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", console.csrf_token.as_str()),
            ("Idempotency-Key", key),
        ],
        Some(body),
    )
}

pub(crate) fn topup(console: &Console<'_>, amount_minor: i64) -> Value {
    let response = create(
        console,
        &json!({"kind": "topup", "amount_minor": amount_minor, "currency": "XAF"}),
        &format!("topup-{amount_minor}"),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

pub(crate) fn balance(server: &TestServer) -> i64 {
    count(server, "SELECT wallet_balance_minor FROM workspaces")
}

pub(crate) fn flutterwave_event(session_id: &str, status: &str) -> String {
    json!({"event": "charge.completed",
           "data": {"id": 4242, "tx_ref": session_id, "status": status,
                    "amount": 5000, "currency": "XAF"}})
    .to_string()
}

pub(crate) fn post_flutterwave(
    server: &TestServer,
    body: &str,
    verif_hash: Option<&str>,
) -> TestResponse {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(hash) = verif_hash {
        headers.push(("verif-hash", hash));
    }
    server.request(
        "POST",
        "/v1/webhooks/flutterwave",
        &headers,
        body.as_bytes(),
    )
}

fn stripe_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn stripe_event(event_id: &str, event_type: &str, object: Value) -> String {
    json!({"id": event_id, "type": event_type, "data": {"object": object}}).to_string()
}

pub(crate) fn completed(session_id: &str) -> Value {
    json!({"id": "cs_test_1", "object": "checkout.session", "client_reference_id": session_id,
           "status": "complete", "payment_status": "paid", "amount_total": 15000, "currency": "xaf",
           "metadata": {"session_id": session_id}})
}

pub(crate) fn post_stripe(server: &TestServer, body: &str, signature: &str) -> TestResponse {
    server.request(
        "POST",
        "/v1/webhooks/stripe",
        &[
            ("Content-Type", "application/json"),
            ("Stripe-Signature", signature),
        ],
        body.as_bytes(),
    )
}

fn now_unix() -> i64 {
    test_epoch().timestamp()
}

pub(crate) fn signed(body: &str) -> String {
    format!(
        "t={},v1={}",
        now_unix(),
        stripe_signature(STRIPE_SECRET, now_unix(), body)
    )
}

/// The journal outcome of the event posted as `body`, once the payments worker has settled it:
/// the webhook is answered when the event is journalled, the verdict follows.
pub(crate) fn settled_outcome(server: &TestServer, body: &str) -> String {
    eventually(&format!("the payments worker to settle {body}"), || {
        let outcome: String = server
            .db()
            .query_row(
                "SELECT outcome FROM payment_webhook_events WHERE payload = ?1 AND signature = 'valid'",
                [body],
                |row| row.get(0),
            )
            .ok()?;
        (outcome != "received").then_some(outcome)
    })
}

/// A journal row as the payments worker leaves it.
#[derive(Debug)]
pub(crate) struct JournalRow {
    pub outcome: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub deliveries: i64,
}

/// The journal row of the event posted as `body`.
pub(crate) fn journal_row(server: &TestServer, body: &str) -> JournalRow {
    server
        .db()
        .query_row(
            "SELECT outcome, attempts, next_attempt_at, last_error, deliveries
             FROM payment_webhook_events WHERE payload = ?1 AND signature = 'valid'",
            [body],
            |row| {
                Ok(JournalRow {
                    outcome: row.get(0)?,
                    attempts: row.get(1)?,
                    next_attempt_at: row.get(2)?,
                    last_error: row.get(3)?,
                    deliveries: row.get(4)?,
                })
            },
        )
        .unwrap()
}

pub(crate) fn session(console: &Console<'_>, id: &str) -> Value {
    let response = console.get(&format!("/v1/payments/sessions/{id}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn a_flutterwave_topup_is_credited_once_after_verification() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave, ProviderName::Stripe]);
    let owner = setup(&server);
    let created = topup(&owner, 5000);
    assert_eq!(created["status"], "redirected");
    assert_eq!(created["provider"], "flutterwave");
    assert_eq!(
        created["checkout_url"],
        "https://checkout.flutterwave.test/pay/x"
    );
    assert_eq!(
        created["amount"],
        json!({"amount_minor": 5000, "currency": "XAF"})
    );
    let id = created["id"].as_str().unwrap();
    // What Flutterwave was asked for: major units (XAF has none smaller), our reference.
    let asked = fakes.flutterwave.requests()[0].clone();
    assert_eq!(asked.header("Authorization"), Some("Bearer FLWSECK_TEST-1"));
    let asked = asked.json();
    assert_eq!(asked["tx_ref"], id);
    assert_eq!(asked["amount"], 5000);
    assert_eq!(asked["currency"], "XAF");
    assert_eq!(asked["customer"]["email"], "owner@example.com");
    assert!(fakes.stripe.requests().is_empty());

    let event = flutterwave_event(id, "successful");
    let webhook = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(webhook.status, 200, "{}", webhook.text());
    assert_eq!(
        webhook.json(),
        json!({"received": true, "outcome": "received"}),
        "answered once journalled"
    );
    assert_eq!(settled_outcome(&server, &event), "applied");
    assert_eq!(balance(&server), 5000);
    let detail = session(&owner, id);
    assert_eq!(detail["status"], "succeeded");
    assert!(detail["fulfilled_at"].is_string());
    let operations: Vec<&str> = detail["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["create_checkout", "verify"]);

    // The same event again, and the return page's verify call: nothing more.
    let again = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(
        again.json(),
        json!({"received": true, "duplicate": true, "outcome": "applied"})
    );
    let verify = owner.post(&format!("/v1/payments/sessions/{id}/verify"), &json!({}));
    assert_eq!(verify.status, 200, "{}", verify.text());
    assert_eq!(verify.json()["verification"]["changed"], false);
    assert_eq!(balance(&server), 5000);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'topup'"
        ),
        1
    );
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_stripe_plan_purchase_activates_the_plan() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Stripe]);
    let owner = setup(&server);
    let response = create(
        &owner,
        &json!({"kind": "plan", "plan_code": "growth"}),
        "plan-1",
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let created = response.json();
    assert_eq!(created["provider"], "stripe");
    assert_eq!(created["provider_reference"], "cs_test_1");
    let id = created["id"].as_str().unwrap();
    let asked = &fakes.stripe.requests()[0];
    assert!(
        asked
            .header("Idempotency-Key")
            .is_some_and(|k| !k.is_empty())
    );
    assert_eq!(
        asked
            .form_field("line_items[0][price_data][unit_amount]")
            .as_deref(),
        Some("15000")
    );
    assert_eq!(
        asked
            .form_field("line_items[0][price_data][currency]")
            .as_deref(),
        Some("xaf")
    );
    assert_eq!(asked.form_field("client_reference_id").as_deref(), Some(id));
    assert_eq!(asked.form_field("mode").as_deref(), Some("payment"));

    let body = stripe_event("evt_1", "checkout.session.completed", completed(id));
    let webhook = post_stripe(&server, &body, &signed(&body));
    assert_eq!(webhook.status, 200, "{}", webhook.text());
    assert_eq!(settled_outcome(&server, &body), "applied");
    let billing = owner.get("/v1/billing").json();
    assert_eq!(billing["plan"]["code"], "growth", "{billing}");
    assert_eq!(balance(&server), 0, "a plan is not a wallet credit");
    // A late failure or expiry never undoes a success.
    for (event_id, event_type) in [
        ("evt_2", "checkout.session.async_payment_failed"),
        ("evt_3", "checkout.session.expired"),
    ] {
        let body = stripe_event(event_id, event_type, completed(id));
        let late = post_stripe(&server, &body, &signed(&body));
        assert_eq!(late.status, 200, "{}", late.text());
        assert_eq!(settled_outcome(&server, &body), "not_applied");
    }
    assert_eq!(session(&owner, id)["status"], "succeeded");
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn flutterwave_down_falls_back_to_stripe_and_both_down_is_502() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave, ProviderName::Stripe]);
    let owner = setup(&server);
    // Both answer 502.
    fakes.set(|s| s.create_fails = Some(502));
    let both = create(
        &owner,
        &json!({"kind": "topup", "amount_minor": 1000}),
        "both-down",
    );
    let envelope = both.assert_error(502, "payment_provider_unavailable");
    let attempts = envelope["error"]["details"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{envelope}");
    let failed = owner.get("/v1/payments/sessions").json()["data"][0].clone();
    assert_eq!(failed["status"], "failed");
    let detail = session(&owner, failed["id"].as_str().unwrap());
    assert_eq!(detail["transactions"].as_array().unwrap().len(), 2);
    assert_eq!(balance(&server), 0);
}

#[test]
fn a_failing_first_provider_hands_over_to_the_next() {
    let fakes = Fakes::start();
    let down =
        FakeHttp::start(|_| Reply::json(502, json!({"status": "error", "message": "bad gateway"})));
    let down_url = down.url();
    let stripe_configure = fakes.configure(&[ProviderName::Flutterwave, ProviderName::Stripe]);
    let server = TestServer::start_with(
        move |config| {
            stripe_configure(config);
            config.payments.flutterwave.base_url = down_url;
        },
        Router::standard(),
    );
    let owner = setup(&server);
    let created = topup(&owner, 2000);
    assert_eq!(created["provider"], "stripe");
    assert_eq!(down.requests().len(), 1);
    let detail = session(&owner, created["id"].as_str().unwrap());
    let outcomes: Vec<(String, String)> = detail["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["provider"].as_str().unwrap().to_owned(),
                t["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("flutterwave".to_owned(), "error".to_owned()),
            ("stripe".to_owned(), "ok".to_owned())
        ]
    );
}

#[test]
fn bad_signatures_are_401_journalled_and_change_nothing() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Stripe]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let body = stripe_event("evt_x", "checkout.session.completed", completed(&id));
    let t = now_unix();
    let good = stripe_signature(STRIPE_SECRET, t, &body);
    let tampered = body.replace("paid", "PAID");
    for (what, body, header) in [
        (
            "tampered body",
            tampered.as_str(),
            format!("t={t},v1={good}"),
        ),
        (
            "wrong secret",
            body.as_str(),
            format!("t={t},v1={}", stripe_signature("whsec_other", t, &body)),
        ),
        (
            "expired",
            body.as_str(),
            format!(
                "t={},v1={}",
                t - 301,
                stripe_signature(STRIPE_SECRET, t - 301, &body)
            ),
        ),
        ("v0 only", body.as_str(), format!("t={t},v0={good}")),
        ("no header", body.as_str(), String::new()),
    ] {
        let response = if header.is_empty() {
            server.request(
                "POST",
                "/v1/webhooks/stripe",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
        } else {
            post_stripe(&server, body, &header)
        };
        assert_eq!(response.status, 401, "{what}: {}", response.text());
    }
    assert_eq!(session(&owner, &id)["status"], "redirected");
    assert_eq!(balance(&server), 0);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM payment_webhook_events WHERE signature = 'invalid'"
        ),
        5
    );
    // Several v1 (a rolled secret): one valid is enough.
    let several = format!(
        "t={t},v1={},v1={good}",
        stripe_signature("whsec_old", t, &body)
    );
    let accepted = post_stripe(&server, &body, &several);
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(settled_outcome(&server, &body), "applied");
    assert_eq!(balance(&server), 5000);

    // Flutterwave: wrong hash, no header → 401; the HMAC header alone is accepted.
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let event = flutterwave_event(&id, "successful");
    post_flutterwave(&server, &event, Some("wrong")).assert_error(401, "invalid_signature");
    post_flutterwave(&server, &event, None).assert_error(401, "invalid_signature");
    assert_eq!(balance(&server), 0);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, FLW_HASH.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD
        .encode(ring::hmac::sign(&key, event.as_bytes()).as_ref());
    let hmac = server.request(
        "POST",
        "/v1/webhooks/flutterwave",
        &[
            ("Content-Type", "application/json"),
            ("flutterwave-signature", &signature),
        ],
        event.as_bytes(),
    );
    assert_eq!(hmac.status, 200, "{}", hmac.text());
    assert_eq!(settled_outcome(&server, &event), "applied");
    assert_eq!(balance(&server), 5000);
}

#[test]
fn verification_mismatches_are_flagged_and_never_fulfilled() {
    for (what, change) in [
        (
            "lower amount",
            (|s: &mut Script| s.amount = Some(4999.0)) as fn(&mut Script),
        ),
        ("other currency", |s: &mut Script| s.currency = Some("NGN")),
        ("other reference", |s: &mut Script| {
            s.reference = Some("pay_someone_else")
        }),
        ("reference that cannot be a session id", |s: &mut Script| {
            s.reference = Some("pay_not a session")
        }),
    ] {
        let fakes = Fakes::start();
        let server = start(&fakes, &[ProviderName::Flutterwave]);
        let owner = setup(&server);
        let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
        fakes.set(change);
        let event = flutterwave_event(&id, "successful");
        let webhook = post_flutterwave(&server, &event, Some(FLW_HASH));
        assert_eq!(webhook.status, 200, "{what}: {}", webhook.text());
        assert_eq!(settled_outcome(&server, &event), "not_applied", "{what}");
        let detail = session(&owner, &id);
        assert_ne!(detail["status"], "succeeded", "{what}");
        assert!(detail["flag"].is_string(), "{what}: {detail}");
        assert_eq!(balance(&server), 0, "{what}");
    }
}

#[test]
fn twenty_concurrent_deliveries_and_a_racing_verify_credit_once() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let event = flutterwave_event(&id, "successful");
    let addr = server.addr;
    let cookie = owner.cookie();
    let csrf = owner.csrf_token.clone();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..20 {
            let event = event.clone();
            handles.push(scope.spawn(move || {
                let request = format!(
                    "POST /v1/webhooks/flutterwave HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                     verif-hash: {FLW_HASH}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{event}",
                    event.len()
                );
                crate::harness::send_raw(addr, request.as_bytes()).status
            }));
        }
        let (cookie, csrf, id) = (&cookie, &csrf, &id);
        handles.push(scope.spawn(move || {
            let request = format!(
                "POST /v1/payments/sessions/{id}/verify HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
                 Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Length: 0\r\n\r\n"
            );
            crate::harness::send_raw(addr, request.as_bytes()).status
        }));
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The worker settles the event either way: it applied it, or the verify call got there first.
    let outcome = settled_outcome(&server, &event);
    assert!(
        ["applied", "not_applied"].contains(&outcome.as_str()),
        "{outcome}"
    );
    assert_eq!(balance(&server), 5000);
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'topup'"
        ),
        1
    );
    assert_eq!(
        count(&server, "SELECT count(*) FROM payment_webhook_events"),
        1,
        "one journal row, its repeats counted"
    );
    assert_eq!(
        count(&server, "SELECT deliveries FROM payment_webhook_events"),
        20
    );
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_refund_takes_back_what_is_left_of_the_topup_and_records_the_shortfall() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Stripe]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let mut object = completed(&id);
    object["amount_total"] = json!(5000);
    let body = stripe_event("evt_paid", "checkout.session.completed", object);
    assert_eq!(post_stripe(&server, &body, &signed(&body)).status, 200);
    assert_eq!(settled_outcome(&server, &body), "applied");
    assert_eq!(balance(&server), 5000);
    // Spend some of it, through the admin API (a debit adjustment).
    let spend = owner.post(
        &format!(
            "/v1/admin/workspaces/{}/wallet-adjustments",
            owner.workspace_id()
        ),
        &json!({"amount_minor": -4000, "reason": "spent"}),
    );
    assert_eq!(spend.status, 201, "{}", spend.text());
    let refund = json!({"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 5000,
                        "payment_intent": "pi_1", "metadata": {"session_id": id}});
    let body = stripe_event("evt_refund", "charge.refunded", refund);
    let response = post_stripe(&server, &body, &signed(&body));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(settled_outcome(&server, &body), "applied");
    assert_eq!(balance(&server), 0, "never below zero");
    let detail = session(&owner, &id);
    assert_eq!(detail["status"], "refunded");
    assert_eq!(detail["refunded"]["amount_minor"], 5000);
    assert_eq!(detail["refund_shortfall"]["amount_minor"], 4000);
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn the_webhook_journal_stays_small_under_unsigned_floods_and_is_pruned_after_its_retention() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    // Anyone can post: 50 unsigned bodies of 70 KB keep a prefix and the size each, not 3.5 MB.
    let big = format!("{{\"junk\":\"{}\"}}", "x".repeat(70_000));
    for _ in 0..50 {
        post_flutterwave(&server, &big, Some("wrong")).assert_error(401, "invalid_signature");
    }
    let kept = count(
        &server,
        "SELECT sum(length(payload)) FROM payment_webhook_events WHERE signature = 'invalid'",
    );
    assert_eq!(kept, 50 * 256);
    let reason: String = server
        .db()
        .query_row(
            "SELECT reason FROM payment_webhook_events WHERE signature = 'invalid' LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(reason.contains("body of 70011 bytes"), "{reason}");
    // A signed event keeps its payload whole, and is applied.
    let event = flutterwave_event(&id, "successful");
    post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(settled_outcome(&server, &event), "applied");
    // One still waiting for the worker (its provider does not answer yet) is never pruned.
    let waiting_id = topup(&owner, 6000)["id"].as_str().unwrap().to_owned();
    fakes.set(|s| s.paid = false);
    let waiting = flutterwave_event(&waiting_id, "successful").replace("4242", "4343");
    post_flutterwave(&server, &waiting, Some(FLW_HASH));
    let journal = || count(&server, "SELECT count(*) FROM payment_webhook_events");
    assert_eq!(journal(), 52);

    // Within the retention (30 days by default) nothing goes; after it, every settled or
    // rejected event does, and the money stays.
    server.clock.advance(chrono::Duration::days(29));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(journal(), 52);
    server.clock.advance(chrono::Duration::days(2));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(journal(), 1);
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM payment_webhook_events WHERE payload = '{waiting}'")
        ),
        1
    );
    assert_eq!(balance(&server), 5000);
}

#[test]
fn unpaid_sessions_expire_and_a_late_success_is_not_applied() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    fakes.set(|s| s.paid = false);
    // Within the grace period after its expiry nothing happens; after it, the janitor asks the
    // provider (still unpaid) and expires it.
    server.clock.advance(chrono::Duration::minutes(35));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(session(&owner, &id)["status"], "redirected");
    server.clock.advance(chrono::Duration::minutes(6));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(session(&owner, &id)["status"], "expired");
    // A payment confirmed after that is not applied by itself, but flagged for the operator.
    fakes.set(|s| s.paid = true);
    let event = flutterwave_event(&id, "successful");
    let late = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(late.status, 200, "{}", late.text());
    assert_eq!(settled_outcome(&server, &event), "not_applied");
    assert_eq!(balance(&server), 0);
    let detail = session(&owner, &id);
    assert!(
        detail["flag"]
            .as_str()
            .unwrap_or_default()
            .contains("already expired"),
        "{detail}"
    );
}

#[test]
fn the_janitor_credits_a_paid_session_whose_webhook_never_came() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    server.clock.advance(chrono::Duration::minutes(41));
    crier::janitor::sweep(server.app()).unwrap();
    assert_eq!(session(&owner, &id)["status"], "succeeded");
    assert_eq!(balance(&server), 5000);
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_success_the_provider_does_not_confirm_yet_is_retried_not_dropped() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    fakes.set(|s| s.paid = false);
    let event = flutterwave_event(&id, "successful");
    let answer = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The worker asks, hears "pending", and keeps the event for a later look.
    let row = eventually("a first attempt", || {
        Some(journal_row(&server, &event)).filter(|row| row.attempts >= 1)
    });
    assert_eq!(row.outcome, "received");
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("does not confirm"),
        "{row:?}"
    );
    assert_eq!(balance(&server), 0);
    assert_eq!(session(&owner, &id)["status"], "processing");
    // The provider delivers the event again once it is confirmed: looked at again at once.
    fakes.set(|s| s.paid = true);
    let again = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(
        again.json(),
        json!({"received": true, "duplicate": true, "outcome": "received"})
    );
    assert_eq!(settled_outcome(&server, &event), "applied");
    assert_eq!(balance(&server), 5000);
    assert_eq!(
        count(&server, "SELECT deliveries FROM payment_webhook_events"),
        2
    );
}

#[test]
fn a_failed_flutterwave_attempt_leaves_the_checkout_payable() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    // The card is declined: the provider reports the transaction failed.
    fakes.set(|s| s.declined = true);
    let failed = flutterwave_event(&id, "failed");
    let response = post_flutterwave(&server, &failed, Some(FLW_HASH));
    assert_eq!(response.status, 200, "{}", response.text());
    settled_outcome(&server, &failed);
    assert_ne!(session(&owner, &id)["status"], "failed");
    // The payer tries again on the same checkout and pays.
    fakes.set(|s| s.declined = false);
    let paid = flutterwave_event(&id, "successful").replace("4242", "4343");
    let response = post_flutterwave(&server, &paid, Some(FLW_HASH));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        settled_outcome(&server, &paid),
        "applied",
        "{}",
        session(&owner, &id)
    );
    assert_eq!(balance(&server), 5000);
}

#[test]
fn a_refund_reported_before_the_success_is_settled_when_the_success_arrives() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Stripe]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let refund = json!({"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 5000,
                        "payment_intent": "pi_1", "metadata": {"session_id": id}});
    let body = stripe_event("evt_refund_first", "charge.refunded", refund);
    assert_eq!(post_stripe(&server, &body, &signed(&body)).status, 200);
    assert_eq!(settled_outcome(&server, &body), "applied");
    let mut object = completed(&id);
    object["amount_total"] = json!(5000);
    let body = stripe_event("evt_paid_late", "checkout.session.completed", object);
    assert_eq!(post_stripe(&server, &body, &signed(&body)).status, 200);
    assert_eq!(settled_outcome(&server, &body), "applied");
    assert_eq!(balance(&server), 0, "credited and taken back at once");
    assert_eq!(session(&owner, &id)["status"], "refunded");
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_failed_transaction_of_another_payment_changes_nothing() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    // A replayed event names our session, but the transaction it points at is someone else's.
    fakes.set(|s| {
        s.declined = true;
        s.reference = Some("pay_someone_else");
    });
    let event = flutterwave_event(&id, "failed");
    let response = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(settled_outcome(&server, &event), "not_applied");
    let detail = session(&owner, &id);
    assert_eq!(detail["status"], "redirected");
    assert_eq!(detail["provider_reference"], Value::Null);
}

#[test]
fn invalid_purchases_are_422_and_start_nothing() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    for body in [
        json!({"kind": "topup", "amount_minor": 100}),
        json!({"kind": "topup", "amount_minor": 5000, "currency": "USD"}),
        json!({"kind": "plan", "plan_code": "free"}),
        json!({"kind": "plan", "plan_code": "custom"}),
        json!({"kind": "gift"}),
    ] {
        create(&owner, &body, "bad").assert_error(422, "validation_failed");
    }
    let no_key = owner.post(
        "/v1/payments/sessions",
        &json!({"kind": "topup", "amount_minor": 5000}),
    );
    no_key.assert_error(400, "idempotency_key_required");
    assert!(fakes.flutterwave.requests().is_empty());
    assert_eq!(count(&server, "SELECT count(*) FROM payment_sessions"), 0);
}

#[test]
fn a_flutterwave_plan_purchase_extends_a_running_plan_and_a_stripe_topup_credits() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    for (n, key) in ["plan-a", "plan-b"].iter().enumerate() {
        let response = create(&owner, &json!({"kind": "plan", "plan_code": "basic"}), key);
        assert_eq!(response.status, 201, "{}", response.text());
        let id = response.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(
            fakes.flutterwave.requests().last().unwrap().json()["amount"],
            5000
        );
        let event = flutterwave_event(&id, "successful").replace("4242", &format!("424{n}"));
        let webhook = post_flutterwave(&server, &event, Some(FLW_HASH));
        assert_eq!(webhook.status, 200, "{}", webhook.text());
        assert_eq!(settled_outcome(&server, &event), "applied");
    }
    let plan = owner.get("/v1/billing").json()["plan"].clone();
    assert_eq!(plan["code"], "basic", "{plan}");
    // Bought twice from 2026-11-25: two months.
    assert!(
        plan["period_end"]
            .as_str()
            .unwrap()
            .starts_with("2027-01-25"),
        "{plan}"
    );
    // Another plan while basic runs: refused before anyone pays.
    create(
        &owner,
        &json!({"kind": "plan", "plan_code": "pro"}),
        "plan-c",
    )
    .assert_error(409, "conflict");
    assert_eq!(balance(&server), 0);

    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Stripe]);
    let owner = setup(&server);
    let id = topup(&owner, 2500)["id"].as_str().unwrap().to_owned();
    let mut object = completed(&id);
    object["amount_total"] = json!(2500);
    let body = stripe_event("evt_topup", "checkout.session.completed", object);
    assert_eq!(post_stripe(&server, &body, &signed(&body)).status, 200);
    assert_eq!(settled_outcome(&server, &body), "applied");
    assert_eq!(balance(&server), 2500);
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_session_path_id_that_cannot_be_a_session_id_is_404() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let workspace_id = owner.get("/v1/workspace").json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in ["nosuchsession", "pay_", workspace_id.as_str(), "pay_a.b"] {
        owner
            .get(&format!("/v1/payments/sessions/{bad}"))
            .assert_error(404, "not_found");
        owner
            .post(&format!("/v1/payments/sessions/{bad}/verify"), &json!({}))
            .assert_error(404, "not_found");
    }
    assert_eq!(session(&owner, &id)["status"], "redirected");
}

#[test]
fn a_webhook_reference_that_cannot_be_a_session_id_is_an_unknown_session() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    topup(&owner, 5000);
    let references = ["pay_nosuchsession", "pay_not a session", "wsp_1", ""];
    for (n, reference) in references.into_iter().enumerate() {
        // A transaction id of its own each, or the journal counts them as one event.
        let event = json!({"event": "charge.completed",
                           "data": {"id": 5000 + n, "tx_ref": reference, "status": "successful",
                                    "amount": 5000, "currency": "XAF"}})
        .to_string();
        let response = post_flutterwave(&server, &event, Some(FLW_HASH));
        assert_eq!(response.status, 200, "{reference:?}: {}", response.text());
        assert_eq!(
            settled_outcome(&server, &event),
            "not_applied",
            "{reference:?}"
        );
        let reason: String = server
            .db()
            .query_row(
                "SELECT reason FROM payment_webhook_events WHERE payload = ?1",
                [&event],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(reason, "no such payment session", "{reference:?}");
    }
    assert_eq!(balance(&server), 0);
}
