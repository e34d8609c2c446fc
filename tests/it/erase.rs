//! Erasure (GDPR): personal data removed for good (checked in the rows themselves), a tombstone
//! out of every list, memberships gone, the workspace's finished messages scrubbed, only keyed
//! hashes kept — and through them, the person is never added back subscribed nor sent
//! marketing again. Other modes and workspaces are untouched.

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, bearer, count, create_key, send};
use crate::harness::{TestResponse, TestServer};
use crate::sending::Sender;

const PHONE: &str = "+237677123456";
const EMAIL: &str = "ada@example.org";

fn contacts_caller<'s>(sender: &Sender<'s>, mode: &str) -> Caller<'s> {
    let (_, key) = create_key(&sender.console, &["contacts:read", "contacts:write"], mode);
    Caller {
        server: sender.server,
        key,
    }
}

fn created(response: TestResponse) -> Value {
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

fn erase(api: &Caller<'_>, id: &str) -> TestResponse {
    api.call("POST", &format!("/v1/contacts/{id}/erase"), None)
}

/// Every column of the contact row that can hold personal data, as text.
fn stored(server: &TestServer, id: &str) -> Vec<Option<String>> {
    server
        .db()
        .query_row(
            "SELECT name, first_name, last_name, phone, phone_input, email, language, custom,
                    erased_at IS NOT NULL, deleted_at IS NOT NULL
             FROM contacts WHERE id = ?1",
            [id],
            |row| {
                (0..10)
                    .map(|index| {
                        row.get::<_, rusqlite::types::Value>(index)
                            .map(|value| match value {
                                rusqlite::types::Value::Null => None,
                                rusqlite::types::Value::Text(text) => Some(text),
                                rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                                other => Some(format!("{other:?}")),
                            })
                    })
                    .collect()
            },
        )
        .unwrap()
}

fn sms(to: &str, category: &str) -> Value {
    json!({"channel": "sms", "to": to, "text": "Hello Ada", "category": category})
}

fn email(to: &str, category: &str) -> Value {
    json!({"channel": "email", "to": to, "subject": "Hi", "text": "Hello Ada",
           "category": category, "metadata": {"name": "Ada"}})
}

#[test]
fn erasing_removes_personal_data_for_good_and_keeps_only_keyed_hashes() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let test_api = contacts_caller(&sender, "test");
    created(api.post(
        "/v1/contact-fields",
        json!({"key": "city", "label": "City", "type": "text"}),
    ));
    let ada = created(api.post(
        "/v1/contacts",
        json!({"name": "Ada King Lovelace", "phone": "677 12 34 56", "email": EMAIL,
               "language": "fr", "custom": {"city": "Douala"}}),
    ));
    let ada_id = ada["id"].as_str().unwrap().to_owned();
    let unsubscribed = api.patch(
        &format!("/v1/contacts/{ada_id}"),
        json!({"unsubscribed": {"email": true}}),
    );
    assert_eq!(unsubscribed.status, 200, "{}", unsubscribed.text());
    let email_unsubscribed_at = unsubscribed.json()["email_unsubscribed_at"].clone();
    let group = created(api.post("/v1/groups", json!({"name": "VIP"})));
    let group_id = group["id"].as_str().unwrap();
    let added = api.post(
        &format!("/v1/groups/{group_id}/contacts"),
        json!({"contact_ids": [ada_id]}),
    );
    assert_eq!(added.status, 200, "{}", added.text());
    let sms_message = sender.sent(&sms(PHONE, "transactional"), "s1");
    sender.wait_for(sms_message["id"].as_str().unwrap(), "sent");
    let email_message = sender.sent(&email(EMAIL, "transactional"), "e1");
    sender.wait_for(email_message["id"].as_str().unwrap(), "sent");
    // A scheduled one is cancelled (and refunded) by the erasure, then scrubbed.
    let mut later = email(EMAIL, "transactional");
    later["scheduled_at"] = json!("2026-11-26T10:00:00Z");
    let scheduled = sender.sent(&later, "e-later");
    // A test-mode message to the same phone belongs to the other world: kept as it is.
    let (_, test_key) = create_key(&sender.console, &["messages:send"], "test");
    let authorization = format!("Bearer {test_key}");
    let test_message = send(
        &server,
        "POST",
        "/v1/messages",
        vec![
            ("Authorization", authorization.as_str()),
            ("Idempotency-Key", "t1"),
        ],
        Some(&sms(PHONE, "transactional")),
    );
    assert_eq!(test_message.status, 201, "{}", test_message.text());

    // The other mode cannot see it, so cannot erase it.
    erase(&test_api, &ada_id).assert_error(404, "not_found");
    assert_eq!(
        stored(&server, &ada_id)[0].as_deref(),
        Some("Ada King Lovelace")
    );

    let erased = erase(&api, &ada_id);
    assert_eq!(erased.status, 200, "{}", erased.text());
    let erased = erased.json();
    assert_eq!(erased["id"], ada_id.as_str());
    assert_eq!(erased["messages_scrubbed"], 3);
    assert!(erased["erased_at"].is_string());

    // Gone from the API: shown, listed, counted nowhere.
    api.get(&format!("/v1/contacts/{ada_id}"))
        .assert_error(404, "not_found");
    assert_eq!(api.get("/v1/contacts").json()["data"], json!([]));
    assert_eq!(
        api.get(&format!("/v1/groups/{group_id}")).json()["member_count"],
        0
    );
    // Gone from the rows: the tombstone keeps no personal data.
    assert_eq!(
        stored(&server, &ada_id),
        [
            Some(String::new()),
            None,
            None,
            None,
            None,
            Some(String::new()),
            None,
            Some("{}".to_owned()),
            Some("1".to_owned()),
            Some("1".to_owned()),
        ]
    );
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM group_members WHERE contact_id = '{ada_id}'")
        ),
        0
    );
    // The workspace's messages to her: recipient and content scrubbed; price and status kept.
    for id in [&sms_message["id"], &email_message["id"]] {
        let message = sender.message(id.as_str().unwrap());
        assert_eq!(message["to"], "[erased]");
        assert_eq!(message["text"], "");
        assert_eq!(message["metadata"], json!({}));
        assert_eq!(message["status"], "sent");
        assert_eq!(message["charged"], true);
    }
    let cancelled = sender.message(scheduled["id"].as_str().unwrap());
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["to"], "[erased]");
    assert!(cancelled["refunded_at"].is_string());
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE mode = 'live'
                 AND (to_address IN ('{PHONE}', '{EMAIL}') OR text LIKE '%Ada%'
                      OR metadata LIKE '%Ada%')"
            )
        ),
        0
    );
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM messages WHERE mode = 'test' AND to_address = '{PHONE}'"
            )
        ),
        1
    );
    // What is kept: one keyed hash per address and channel, never the address itself.
    let suppressions: Vec<(String, String, Vec<u8>, String)> = server
        .db()
        .prepare("SELECT mode, channel, address_hash, via FROM suppressions ORDER BY channel")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(suppressions.len(), 2);
    assert_eq!(
        (suppressions[0].0.as_str(), suppressions[0].1.as_str()),
        ("live", "email")
    );
    assert_eq!(
        (suppressions[1].0.as_str(), suppressions[1].1.as_str()),
        ("live", "sms")
    );
    for (_, _, hash, via) in &suppressions {
        assert_eq!(hash.len(), 32);
        assert_eq!(via, "api");
        let text = String::from_utf8_lossy(hash);
        assert!(!text.contains("ada") && !text.contains("677"));
    }

    // Erasing again: nothing is left to erase.
    erase(&api, &ada_id).assert_error(404, "not_found");

    // Marketing to her erased addresses is refused (not charged); transactional still goes.
    let balance = sender.balance();
    sender
        .send(&email(EMAIL, "marketing"), "e2")
        .assert_error(422, "recipient_unsubscribed");
    sender
        .send(&sms(PHONE, "marketing"), "s2")
        .assert_error(422, "recipient_unsubscribed");
    assert_eq!(sender.balance(), balance);
    sender.sent(&email(EMAIL, "transactional"), "e3");

    // Added again (same addresses): she comes back unsubscribed from both channels, with the
    // first unsubscription's time and way where there was one.
    let again = created(api.post(
        "/v1/contacts",
        json!({"name": "Ada", "phone": PHONE, "email": EMAIL}),
    ));
    assert_eq!(again["email_unsubscribed_at"], email_unsubscribed_at);
    assert_eq!(again["email_unsubscribed_via"], "api");
    assert_eq!(again["sms_unsubscribed_at"], erased["erased_at"]);
    assert_eq!(again["sms_unsubscribed_via"], "api");
    // In the other mode nothing was erased.
    let twin = created(test_api.post("/v1/contacts", json!({"name": "Ada", "email": EMAIL})));
    assert!(twin["email_unsubscribed_at"].is_null());
}

#[test]
fn a_deleted_contact_can_still_be_erased_and_other_workspaces_cannot_erase_it() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    let api = contacts_caller(&sender, "live");
    let ada = created(api.post("/v1/contacts", json!({"name": "Ada", "email": EMAIL})));
    let ada_id = ada["id"].as_str().unwrap();
    let other = crate::auth_fixtures::second_tenant(&sender.console, "globex@example.org");
    let (_, other_key) = create_key(&other, &["contacts:write"], "live");
    bearer(
        &server,
        &other_key,
        "POST",
        &format!("/v1/contacts/{ada_id}/erase"),
        None,
    )
    .assert_error(404, "not_found");
    let (_, read_only) = create_key(&sender.console, &["contacts:read"], "live");
    bearer(
        &server,
        &read_only,
        "POST",
        &format!("/v1/contacts/{ada_id}/erase"),
        None,
    )
    .assert_error(403, "insufficient_scope");
    assert_eq!(stored(&server, ada_id)[5].as_deref(), Some(EMAIL));

    assert_eq!(api.delete(&format!("/v1/contacts/{ada_id}")).status, 204);
    assert_eq!(
        stored(&server, ada_id)[5].as_deref(),
        Some(EMAIL),
        "deleting keeps the data"
    );
    let erased = erase(&api, ada_id);
    assert_eq!(erased.status, 200, "{}", erased.text());
    assert_eq!(erased.json()["messages_scrubbed"], 0);
    assert_eq!(stored(&server, ada_id)[0].as_deref(), Some(""));
    assert_eq!(stored(&server, ada_id)[5].as_deref(), Some(""));
    // The console (a session) erases live contacts too; by then there is nothing left.
    sender
        .console
        .request("POST", &format!("/v1/contacts/{ada_id}/erase"), None)
        .assert_error(404, "not_found");
}

/// An action that reads no body (erase, cancel, delete, …) refuses one that says anything before
/// it acts — a `{"confirm": "no"}` must not erase a contact for good — and takes none, or `{}`.
#[test]
fn an_action_that_reads_no_body_refuses_one_that_says_anything_and_does_nothing() {
    let server = TestServer::start();
    let sender = Sender::new(&server, "live");
    let api = contacts_caller(&sender, "live");
    let ada = created(api.post("/v1/contacts", json!({"name": "Ada", "email": EMAIL})));
    let ada_id = ada["id"].as_str().unwrap();
    let path = format!("/v1/contacts/{ada_id}/erase");
    let authorization = format!("Bearer {}", api.key);
    let with_body = |content_type: &str, body: &str| {
        server.request(
            "POST",
            &path,
            &[
                ("Authorization", authorization.as_str()),
                ("Content-Type", content_type),
            ],
            body.as_bytes(),
        )
    };
    let refused = with_body("application/json", r#"{"confirm": "no"}"#);
    refused.assert_error(422, "validation_failed");
    assert!(
        refused.json()["error"]["details"]["fields"]["confirm"].is_string(),
        "{}",
        refused.text()
    );
    with_body("application/json", "not json").assert_error(400, "invalid_json");
    with_body("application/json", "[]").assert_error(422, "validation_failed");
    with_body("text/plain", "erase it").assert_error(415, "unsupported_media_type");
    // Nothing was erased: the contact reads as it was.
    assert_eq!(stored(&server, ada_id)[0].as_deref(), Some("Ada"));
    let shown = api.call("GET", &format!("/v1/contacts/{ada_id}"), None);
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["name"], "Ada");

    // `{}` says nothing: the erase goes through; so does no body at all.
    let erased = with_body("application/json", "{}");
    assert_eq!(erased.status, 200, "{}", erased.text());
    assert!(!erased.json()["erased_at"].is_null(), "{}", erased.text());
    let bob = created(api.post(
        "/v1/contacts",
        json!({"name": "Bob", "email": "bob@example.org"}),
    ));
    let bob_id = bob["id"].as_str().unwrap();
    let erased = erase(&api, bob_id);
    assert_eq!(erased.status, 200, "{}", erased.text());

    // The same rule on a DELETE: the group stays until it is asked for with nothing more.
    let group = created(api.post("/v1/groups", json!({"name": "VIP"})));
    let group_path = format!("/v1/groups/{}", group["id"].as_str().unwrap());
    let refused = server.request(
        "DELETE",
        &group_path,
        &[
            ("Authorization", authorization.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"force": true}"#,
    );
    refused.assert_error(422, "validation_failed");
    assert_eq!(api.call("GET", &group_path, None).status, 200);
    let deleted = api.call("DELETE", &group_path, None);
    assert!(deleted.status < 300, "{}", deleted.text());
    assert_eq!(api.call("GET", &group_path, None).status, 404);
}
