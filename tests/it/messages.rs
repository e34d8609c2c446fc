//! Messages: the estimate prices a send exactly as sending will, and changes nothing.

use serde_json::json;

use crate::auth_fixtures::{bearer, create_key, setup};
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
