//! Email relays' bounces and complaints: `POST /v1/webhooks/email/{provider}` (`generic` with the
//! receipt token, `mailgun` signed with its webhook signing key). A bounce fails the `sent`
//! message and marks the address `bounced` (every later send to it refused), a complaint marks
//! it `complained` (marketing refused, transactional still sent); a bad token or signature is
//! 401 and changes nothing; a replay, an unknown message or another address is taken and changes
//! nothing; a bounce of a test message never touches the live contact with the same address.

use crier::config::{Config, Secret};
use crier::delivery::email_events::mailgun_signature;
use crier::web::router::Router;
use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, Console, count, create_key};
use crate::harness::{TestResponse, TestServer};
use crate::sending::Sender;

const RECEIPT_TOKEN: &str = "receipt-token-0123456789";
const MAILGUN_KEY: &str = "key-mailgun-signing-0123";
const ADA: &str = "ada@example.org";

/// Receipts on (the generic form) and Mailgun's signing key set; email through `log`.
fn configured(config: &mut Config) {
    config.delivery.receipt_token = Some(Secret::new(RECEIPT_TOKEN));
    config.delivery.mailgun_webhook_key = Some(Secret::new(MAILGUN_KEY));
}

fn contacts_caller<'s>(sender: &Sender<'s>, mode: &str) -> Caller<'s> {
    let (_, key) = create_key(&sender.console, &["contacts:read", "contacts:write"], mode);
    Caller {
        server: sender.server,
        key,
    }
}

fn create_contact(api: &Caller<'_>, email: &str) -> String {
    let response = api.post("/v1/contacts", json!({"name": "Ada", "email": email}));
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_str().unwrap().to_owned()
}

fn email_state(api: &Caller<'_>, id: &str) -> Value {
    let response = api.get(&format!("/v1/contacts/{id}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["email_state"].clone()
}

fn email(to: &str, category: &str) -> Value {
    json!({"channel": "email", "to": to, "subject": "News", "text": "Hello",
           "category": category})
}

/// Sends an email and waits until the `log` provider took it; returns its id.
fn sent_email(sender: &Sender<'_>, to: &str, category: &str, key: &str) -> String {
    let message = sender.sent(&email(to, category), key);
    let id = message["id"].as_str().unwrap().to_owned();
    sender.wait_for(&id, "sent");
    id
}

fn post(server: &TestServer, path: &str, body: &Value) -> TestResponse {
    server.request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn generic(server: &TestServer, token: &str, body: &Value) -> TestResponse {
    post(
        server,
        &format!("/v1/webhooks/email/generic?token={token}"),
        body,
    )
}

/// Mailgun's body for `event_data`, signed with `key`.
fn mailgun_body(key: &str, event_data: Value) -> Value {
    let (timestamp, token) = (
        "1770920772",
        "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
    );
    json!({
        "signature": {
            "timestamp": timestamp, "token": token,
            "signature": mailgun_signature(key.as_bytes(), timestamp, token),
        },
        "event-data": event_data,
    })
}

fn mailgun(server: &TestServer, body: &Value) -> TestResponse {
    post(server, "/v1/webhooks/email/mailgun", body)
}

fn taken(response: &TestResponse, received: u64, applied: u64) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"received": received, "applied": applied})
    );
}

#[test]
fn a_generic_bounce_fails_the_message_and_bounces_the_address_once() {
    let server = TestServer::start_with(configured, Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, ADA);
    let message = sent_email(&sender, ADA, "transactional", "e1");
    let bounce = json!({"event": "bounce", "message_id": message, "recipient": "Ada@Example.org",
                        "reason": "550 5.1.1 <ada@example.org>: no such user"});
    let before = sender.balance();

    // Unauthenticated or malformed: 401 / 400, and nothing moves.
    let missing = post(&server, "/v1/webhooks/email/generic", &bounce);
    missing.assert_error(401, "invalid_signature");
    generic(&server, "receipt-token-wrong-000000", &bounce).assert_error(401, "invalid_signature");
    for bad in [
        json!({"event": "delivered", "message_id": message, "recipient": ADA}),
        json!({"event": "bounce", "message_id": message}),
        json!([]),
    ] {
        generic(&server, RECEIPT_TOKEN, &bad).assert_error(400, "bad_request");
    }
    assert_eq!(email_state(&api, &ada), "valid");
    assert_eq!(sender.message(&message)["status"], "sent");

    // Events that name no message of ours, or another address than the message's, are taken
    // and change nothing.
    let strangers = json!([
        {"event": "bounce", "message_id": "msg_01JD0000000000000000000000", "recipient": ADA},
        {"event": "bounce", "message_id": "<20130503182626.18666@mailgun.org>", "recipient": ADA},
        {"event": "bounce", "message_id": message, "recipient": "bob@example.org"},
    ]);
    taken(&generic(&server, RECEIPT_TOKEN, &strangers), 3, 0);
    assert_eq!(email_state(&api, &ada), "valid");
    assert_eq!(sender.message(&message)["status"], "sent");

    // The bounce: the message fails with the relay's words, the address is bounced.
    taken(&generic(&server, RECEIPT_TOKEN, &bounce), 1, 1);
    let failed = sender.message(&message);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "bounced");
    assert_eq!(
        failed["error"]["message"],
        "550 5.1.1 <ada@example.org>: no such user"
    );
    assert_eq!(email_state(&api, &ada), "bounced");
    // A replay changes nothing more; a delivered message is not refunded.
    taken(&generic(&server, RECEIPT_TOKEN, &bounce), 1, 0);
    assert_eq!(sender.balance(), before);
    // Every later send to the address is refused, and not charged.
    for (category, key) in [("transactional", "e2"), ("marketing", "e3")] {
        sender
            .send(&email(ADA, category), key)
            .assert_error(422, "recipient_invalid");
    }
    assert_eq!(sender.balance(), before);
}

#[test]
fn a_signed_mailgun_complaint_stops_marketing_only_and_a_forged_one_changes_nothing() {
    let server = TestServer::start_with(configured, Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, ADA);
    let message = sent_email(&sender, ADA, "marketing", "m1");
    let domain_id = format!("{message}@example.org");
    let complaint = json!({"event": "complained", "recipient": ADA,
                           "message": {"headers": {"message-id": domain_id}}});

    let forged = mailgun(&server, &mailgun_body("not-the-key", complaint.clone()));
    forged.assert_error(401, "invalid_signature");
    let mut altered = mailgun_body(MAILGUN_KEY, complaint.clone());
    altered["signature"]["timestamp"] = json!("1770920773");
    mailgun(&server, &altered).assert_error(401, "invalid_signature");
    mailgun(&server, &json!({"event-data": complaint})).assert_error(400, "bad_request");
    assert_eq!(email_state(&api, &ada), "valid");

    // Deliveries, opens and temporary failures are received and ignored.
    for ignored in [
        json!({"event": "delivered", "recipient": ADA,
               "message": {"headers": {"message-id": domain_id}}}),
        json!({"event": "failed", "severity": "temporary", "recipient": ADA,
               "message": {"headers": {"message-id": domain_id}}}),
    ] {
        taken(&mailgun(&server, &mailgun_body(MAILGUN_KEY, ignored)), 0, 0);
    }
    assert_eq!(email_state(&api, &ada), "valid");

    let body = mailgun_body(MAILGUN_KEY, complaint);
    taken(&mailgun(&server, &body), 1, 1);
    assert_eq!(email_state(&api, &ada), "complained");
    // A complaint is no delivery failure: the message stays sent.
    assert_eq!(sender.message(&message)["status"], "sent");
    taken(&mailgun(&server, &body), 1, 0);
    sender
        .send(&email(ADA, "marketing"), "m2")
        .assert_error(422, "recipient_invalid");
    sender.sent(&email(ADA, "transactional"), "t1");

    // A permanent failure then bounces the address.
    let transactional = sent_email(&sender, ADA, "transactional", "t2");
    let bounce = json!({"event": "failed", "severity": "permanent", "recipient": ADA,
                        "message": {"headers": {"message-id": format!("{transactional}@x.org")}},
                        "delivery-status": {"description": "", "message": "550 No such user"}});
    taken(&mailgun(&server, &mailgun_body(MAILGUN_KEY, bounce)), 1, 1);
    assert_eq!(email_state(&api, &ada), "bounced");
    assert_eq!(
        sender.message(&transactional)["error"]["message"],
        "550 No such user"
    );
}

#[test]
fn a_bounce_of_a_test_message_leaves_the_live_contact_alone() {
    let server = TestServer::start_with(configured, Router::standard());
    let live = Sender::new(&server, "live");
    let (_, test_key) = create_key(&live.console, &["messages:send", "messages:read"], "test");
    let tester = Sender {
        server: &server,
        // The same signed-in user: the sender only needs the key.
        console: Console {
            server: &server,
            session: live.console.session.clone(),
            csrf_token: live.console.csrf_token.clone(),
            user_id: live.console.user_id.clone(),
            workspace_id: live.console.workspace_id.clone(),
        },
        key: test_key,
    };
    let live_api = contacts_caller(&live, "live");
    let test_api = contacts_caller(&live, "test");
    let live_ada = create_contact(&live_api, ADA);
    let test_ada = create_contact(&test_api, ADA);
    let message = sent_email(&tester, ADA, "transactional", "t1");
    let bounce = json!({"event": "bounce", "message_id": message, "recipient": ADA});
    taken(&generic(&server, RECEIPT_TOKEN, &bounce), 1, 1);
    assert_eq!(email_state(&test_api, &test_ada), "bounced");
    assert_eq!(email_state(&live_api, &live_ada), "valid");
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM contacts WHERE mode = 'live' AND email_state <> 'valid'"
        ),
        0
    );
}

#[test]
fn without_their_secrets_the_email_webhooks_are_not_there() {
    let server = TestServer::start_with(|_| {}, Router::standard());
    let bounce = json!({"event": "bounce", "message_id": "msg_01JD0000000000000000000000",
                        "recipient": ADA});
    generic(&server, RECEIPT_TOKEN, &bounce).assert_error(404, "not_found");
    let complaint = json!({"event": "complained", "recipient": ADA});
    mailgun(&server, &mailgun_body(MAILGUN_KEY, complaint)).assert_error(404, "not_found");
    post(&server, "/v1/webhooks/email/postmark", &bounce).assert_error(404, "not_found");
}
