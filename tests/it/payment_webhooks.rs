//! Payment webhooks are answered once journalled; the payments worker verifies each event with
//! its provider and applies the verdict afterwards. These tests hold that split to its promises:
//! one credit however events repeat, race the return page or outlive a crash; a provider that
//! is down or slow delays the credit but never the answer, nor the rest of the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::auth_fixtures::{count, setup};
use crate::fake_http::Recorded;
use crate::harness::{TestResponse, TestServer, eventually, send_raw, test_epoch};
use crate::payments::{
    FLW_HASH, Fakes, balance, completed, flutterwave_event, journal_row, post_flutterwave,
    post_stripe, session, settled_outcome, signed, start, stripe_event, topup,
};
use crier::payments::provider::ProviderName;
use crier::web::router::Router;

fn topup_credits(server: &TestServer) -> i64 {
    count(
        server,
        "SELECT count(*) FROM wallet_ledger WHERE kind = 'topup'",
    )
}

fn verifications(requests: &[Recorded]) -> usize {
    requests.iter().filter(|r| r.method == "GET").count()
}

fn raw_flutterwave_webhook(addr: SocketAddr, event: &str) -> TestResponse {
    let request = format!(
        "POST /v1/webhooks/flutterwave HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         verif-hash: {FLW_HASH}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{event}",
        event.len()
    );
    send_raw(addr, request.as_bytes())
}

fn raw_stripe_webhook(addr: SocketAddr, body: &str) -> TestResponse {
    let request = format!(
        "POST /v1/webhooks/stripe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Stripe-Signature: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        signed(body),
        body.len()
    );
    send_raw(addr, request.as_bytes())
}

/// A console request from another thread (the `Console` stays with the test's thread).
fn raw_console(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: &str,
) -> TestResponse {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
         Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Length: 0\r\n\r\n"
    );
    send_raw(addr, request.as_bytes())
}

fn timestamp_after(seconds: i64) -> String {
    crier::clock::format_timestamp(test_epoch() + chrono::Duration::seconds(seconds))
}

#[test]
fn a_repeated_event_is_journalled_once_and_credits_once() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Stripe]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    let mut object = completed(&id);
    object["amount_total"] = json!(5000);
    let body = stripe_event("evt_repeated", "checkout.session.completed", object);
    // Ten deliveries at once, from as many threads.
    let addr = server.addr;
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| raw_stripe_webhook(addr, &body)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                let answer = handle.join().unwrap();
                assert_eq!(answer.status, 200, "{}", answer.text());
                answer.json()
            })
            .collect()
    });
    let first: Vec<&Value> = answers
        .iter()
        .filter(|answer| answer.get("duplicate").is_none())
        .collect();
    assert_eq!(first, [&json!({"received": true, "outcome": "received"})]);
    assert_eq!(settled_outcome(&server, &body), "applied");
    // Twice more once it is applied: acknowledged as such, applied no further.
    for _ in 0..2 {
        let again = post_stripe(&server, &body, &signed(&body));
        assert_eq!(
            again.json(),
            json!({"received": true, "duplicate": true, "outcome": "applied"})
        );
    }
    assert_eq!(balance(&server), 5000);
    assert_eq!(topup_credits(&server), 1);
    assert_eq!(
        count(&server, "SELECT count(*) FROM payment_webhook_events"),
        1
    );
    assert_eq!(journal_row(&server, &body).deliveries, 12);
    assert_eq!(
        verifications(&fakes.stripe.requests()),
        1,
        "the provider is asked once"
    );
    assert_eq!(session(&owner, &id)["status"], "succeeded");
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_webhook_racing_the_return_page_credits_once() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    // Both verifications are in flight at the provider together, then both apply.
    fakes.set(|s| s.verify_delay = Duration::from_millis(300));
    let event = flutterwave_event(&id, "successful");
    let (addr, cookie, csrf) = (server.addr, owner.cookie(), owner.csrf_token.clone());
    let path = format!("/v1/payments/sessions/{id}/verify");
    let (webhook, verify) = std::thread::scope(|scope| {
        let webhook = scope.spawn(|| raw_flutterwave_webhook(addr, &event));
        let verify = scope.spawn(|| raw_console(addr, "POST", &path, &cookie, &csrf));
        (webhook.join().unwrap(), verify.join().unwrap())
    });
    assert_eq!(webhook.status, 200, "{}", webhook.text());
    assert_eq!(verify.status, 200, "{}", verify.text());
    let outcome = settled_outcome(&server, &event);
    let verify_changed = verify.json()["verification"]["changed"] == true;
    // Exactly one of them moved the session; the other found it done.
    assert_ne!(
        verify_changed,
        outcome == "applied",
        "verify changed: {verify_changed}, worker: {outcome}"
    );
    assert_eq!(verifications(&fakes.flutterwave.requests()), 2);
    assert_eq!(balance(&server), 5000);
    assert_eq!(topup_credits(&server), 1);
    assert_eq!(session(&owner, &id)["status"], "succeeded");
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn an_event_journalled_before_a_crash_is_applied_after_restart() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    drop(owner);
    let data = server.stop_keeping_data();

    // The webhook is journalled by a crier whose payments worker never runs (it dies first).
    let event = flutterwave_event(&id, "successful");
    {
        let config = data.config.clone();
        let db = crier::db::Db::open(&crier::db::DbSettings::from_config(&config)).unwrap();
        let clock = Arc::new(crier::clock::ManualClock::new(test_epoch()));
        let app = crier::app::App::new(
            config,
            db,
            clock,
            Arc::new(crier::ids::SeededRandom::new(4242)),
        )
        .unwrap();
        let headers = [("verif-hash".to_owned(), FLW_HASH.to_owned())];
        let answer = crier::payments::flow::receive_webhook(
            &app,
            ProviderName::Flutterwave,
            &headers,
            event.as_bytes(),
        )
        .unwrap();
        assert_eq!(answer, crier::payments::flow::Journalled::New);
    }
    let pending: (String, i64) = rusqlite::Connection::open(&data.config.db_path)
        .unwrap()
        .query_row(
            "SELECT outcome, (SELECT wallet_balance_minor FROM workspaces)
             FROM payment_webhook_events",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(pending, ("received".to_owned(), 0));
    assert!(
        verifications(&fakes.flutterwave.requests()) == 0,
        "nobody asked the provider yet"
    );

    // Restarted: the worker finds the event and applies it, once.
    let server = TestServer::start_on(data, Router::standard());
    assert_eq!(settled_outcome(&server, &event), "applied");
    assert_eq!(balance(&server), 5000);
    // The provider, not knowing, delivers it again: acknowledged, nothing more.
    let again = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(
        again.json(),
        json!({"received": true, "duplicate": true, "outcome": "applied"})
    );
    assert_eq!(balance(&server), 5000);
    assert_eq!(topup_credits(&server), 1);
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn a_provider_that_is_down_delays_the_credit_until_it_answers_again() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    fakes.set(|s| s.verify_fails = Some(503));
    let event = flutterwave_event(&id, "successful");
    let answer = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"received": true, "outcome": "received"}))
    );
    // The worker tried, the provider said 503: pending, retried 30 s later.
    let row = eventually("a first attempt", || {
        Some(journal_row(&server, &event)).filter(|row| row.attempts == 1)
    });
    assert_eq!(row.outcome, "received");
    assert_eq!(row.next_attempt_at, Some(timestamp_after(30)));
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{row:?}"
    );
    assert_eq!(balance(&server), 0);
    let detail = session(&owner, &id);
    assert_eq!(detail["status"], "redirected");
    let last = detail["transactions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["operation"].as_str(), last["outcome"].as_str()),
        (Some("verify"), Some("error")),
        "{last}"
    );

    // Still down at the retry: the wait doubles.
    server.clock.advance(chrono::Duration::seconds(30));
    let row = eventually("a second attempt", || {
        Some(journal_row(&server, &event)).filter(|row| row.attempts == 2)
    });
    assert_eq!(row.outcome, "received");
    assert_eq!(row.next_attempt_at, Some(timestamp_after(30 + 60)));
    assert_eq!(balance(&server), 0);
    assert_eq!(verifications(&fakes.flutterwave.requests()), 2);

    // Back up: the next retry credits, once.
    fakes.set(|s| s.verify_fails = None);
    server.clock.advance(chrono::Duration::seconds(59));
    let not_stopping = std::sync::atomic::AtomicBool::new(false);
    let round = crier::payments::worker::apply_due_events(server.app(), &not_stopping).unwrap();
    assert_eq!(round, 0, "not due before its time");
    assert_eq!(journal_row(&server, &event).outcome, "received");
    server.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(settled_outcome(&server, &event), "applied");
    assert_eq!(journal_row(&server, &event).attempts, 2);
    assert_eq!(balance(&server), 5000);
    assert_eq!(topup_credits(&server), 1);
    assert_eq!(session(&owner, &id)["status"], "succeeded");
    let metrics = server.get("/metrics").text();
    for line in [
        "crier_webhooks_total{provider=\"flutterwave\",verdict=\"received\"} 1",
        "crier_webhooks_total{provider=\"flutterwave\",verdict=\"deferred\"} 2",
        "crier_webhooks_total{provider=\"flutterwave\",verdict=\"applied\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    crate::process::assert_doctor_clean(&server.db_path());
}

#[test]
fn an_event_the_provider_never_answers_about_is_given_up_with_why() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    fakes.set(|s| s.verify_fails = Some(502));
    let event = flutterwave_event(&id, "successful");
    assert_eq!(
        post_flutterwave(&server, &event, Some(FLW_HASH)).status,
        200
    );
    let limit = i64::from(crier::payments::worker::MAX_ATTEMPTS);
    for attempt in 1..limit {
        eventually(&format!("attempt {attempt}"), || {
            Some(journal_row(&server, &event)).filter(|row| row.attempts == attempt)
        });
        server.clock.advance(chrono::Duration::hours(1));
    }
    assert_eq!(settled_outcome(&server, &event), "not_applied");
    let reason: String = server
        .db()
        .query_row("SELECT reason FROM payment_webhook_events", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert!(
        reason.starts_with(&format!("given up after {limit} attempts")) && reason.contains("502"),
        "{reason}"
    );
    assert_eq!(balance(&server), 0);
    let status: String = server
        .db()
        .query_row("SELECT status FROM payment_sessions", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        status, "redirected",
        "the console's login has expired meanwhile"
    );
    // A new delivery (an operator resending it from the dashboard) is looked at again.
    fakes.set(|s| s.verify_fails = None);
    let again = post_flutterwave(&server, &event, Some(FLW_HASH));
    assert_eq!(
        again.json(),
        json!({"received": true, "duplicate": true, "outcome": "received"})
    );
    assert_eq!(settled_outcome(&server, &event), "applied");
    assert_eq!(balance(&server), 5000);
}

#[test]
fn a_slow_provider_holds_no_http_worker() {
    let fakes = Fakes::start();
    let server = start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let id = topup(&owner, 5000)["id"].as_str().unwrap().to_owned();
    // Each verification takes 4 s (under the 5 s provider timeout of the tests).
    fakes.set(|s| s.verify_delay = Duration::from_secs(4));
    let workers = server.config.workers.get();
    let events: Vec<String> = (0..workers + 2)
        .map(|n| flutterwave_event(&id, "successful").replace("4242", &format!("90{n}")))
        .collect();
    let addr = server.addr;
    let started = Instant::now();
    let answers: Vec<TestResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = events
            .iter()
            .map(|event| scope.spawn(move || raw_flutterwave_webhook(addr, event)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    // The worker is waiting on the provider while the rest of the API answers.
    fakes
        .flutterwave
        .wait_for_requests(2, Duration::from_secs(10));
    let health = server.get("/healthz");
    assert_eq!(health.status, 200);
    let path = format!("/v1/payments/sessions/{id}");
    let shown = raw_console(addr, "GET", &path, &owner.cookie(), &owner.csrf_token);
    assert_eq!(shown.status, 200, "{}", shown.text());
    let answered_in = started.elapsed();
    // Nothing the answers waited for: the first verification is still on its way.
    assert_eq!(balance(&server), 0, "answered before any verification");
    assert!(
        answered_in < Duration::from_secs(3),
        "{} webhooks, a probe and a read took {answered_in:?}",
        events.len()
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM payment_webhook_events WHERE outcome = 'received'"
        ),
        i64::try_from(events.len()).unwrap()
    );
    // The credit follows, once.
    eventually("the first verification to be applied", || {
        (balance(&server) == 5000).then_some(())
    });
    assert_eq!(topup_credits(&server), 1);
}
