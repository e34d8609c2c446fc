//! Messages: the estimate prices a send exactly as sending will, and changes nothing.

use serde_json::json;

use crate::auth_fixtures::{bearer, create_key, send, setup};
use crate::harness::TestServer;

#[test]
fn an_estimate_prices_an_sms_and_changes_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:send"], "live");
    let text = format!("Votre code : 1234 – merci {}", "x".repeat(60));
    let body = json!({"channel": "sms", "to": "677 12 34 56", "text": text});
    let response = bearer(&server, &key, "POST", "/v1/messages/estimate", Some(&body));
    assert_eq!(response.status, 200, "{}", response.text());
    let estimate = response.json();
    assert_eq!(estimate["to"], "+237677123456");
    assert_eq!(estimate["sender"], "CRIER");
    assert_eq!(estimate["encoding"], "ucs2");
    assert_eq!(estimate["non_gsm_characters"], json!(["–"]));
    assert_eq!(estimate["segments"], 2);
    assert_eq!(estimate["units"], 2);
    assert_eq!(estimate["included_units"], 0);
    assert_eq!(
        estimate["charge"],
        json!({"amount_minor": 50, "currency": "XAF"})
    );
    assert_eq!(
        estimate["balance"],
        json!({"amount_minor": 0, "currency": "XAF"})
    );
    assert_eq!(estimate["affordable"], false);
    let nothing: i64 = server
        .db()
        .query_row("SELECT count(*) FROM usage_counters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(nothing, 0);
}

#[test]
fn an_estimate_refuses_what_sending_would_refuse() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:send"], "test");
    let body = json!({"channel": "email", "to": "not-an-address", "subject": ""});
    let envelope = bearer(&server, &key, "POST", "/v1/messages/estimate", Some(&body))
        .assert_error(422, "validation_failed");
    let fields = envelope["error"]["details"]["fields"].as_object().unwrap();
    let mut names: Vec<&String> = fields.keys().collect();
    names.sort();
    assert_eq!(names, ["subject", "text", "to"]);

    let (_, reader) = create_key(&owner, &["messages:read"], "live");
    let ok = json!({"channel": "email", "to": "a@b.io", "subject": "Hi", "text": "Hello"});
    bearer(&server, &reader, "POST", "/v1/messages/estimate", Some(&ok))
        .assert_error(403, "insufficient_scope");
    let test_mode = bearer(&server, &key, "POST", "/v1/messages/estimate", Some(&ok)).json();
    assert_eq!(
        (test_mode["units"].as_i64(), test_mode["charged"].as_bool()),
        (Some(1), Some(false))
    );
}

/// libphonenumber alone reads letters as keypad digits and drops an extension, and a loose
/// address check let through what delivery then failed: each is refused on the way in, naming
/// `to`, and nothing is stored or counted.
#[test]
fn a_number_with_letters_or_a_broken_address_is_refused_before_anything_is_stored() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:send", "contacts:write"], "test");
    let authorization = format!("Bearer {key}");
    let refused = [
        json!({"channel": "sms", "to": "6771234O6", "text": "x"}),
        json!({"channel": "sms", "to": "677-SMS-123", "text": "x"}),
        json!({"channel": "sms", "to": "+237 677 12 34 56 ext. 99", "text": "x"}),
        json!({"channel": "email", "to": "ada@example..com", "subject": "s", "text": "x"}),
        json!({"channel": "email", "to": "<ada@example.com>", "subject": "s", "text": "x"}),
        json!({"channel": "email", "to": ".ada@example.com", "subject": "s", "text": "x",
               "category": "marketing"}),
    ];
    for (n, body) in refused.iter().enumerate() {
        let idempotency_key = format!("refused-{n}");
        for (path, headers) in [
            (
                "/v1/messages/estimate",
                vec![("Authorization", authorization.as_str())],
            ),
            (
                "/v1/messages",
                vec![
                    ("Authorization", authorization.as_str()),
                    ("Idempotency-Key", idempotency_key.as_str()),
                ],
            ),
        ] {
            let envelope = send(&server, "POST", path, headers, Some(body))
                .assert_error(422, "validation_failed");
            let fields = &envelope["error"]["details"]["fields"];
            assert!(fields["to"].is_string(), "{path} {body}: {envelope}");
        }
    }
    let contact = json!({"phone": "677 l2 34 O6"});
    let envelope = bearer(&server, &key, "POST", "/v1/contacts", Some(&contact))
        .assert_error(422, "validation_failed");
    assert!(
        envelope["error"]["details"]["fields"]["phone"].is_string(),
        "{envelope}"
    );
    let stored: i64 = server
        .db()
        .query_row(
            "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM contacts) \
             + (SELECT count(*) FROM usage_counters)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0);
}
