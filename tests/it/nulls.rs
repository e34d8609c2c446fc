//! `null` is a value only where the API's document types a field as nullable (there it means
//! "left out", or "clear it" where its description says so). Sent for an optional field that is
//! not nullable — an optional boolean, a PATCH field with no cleared state — it is refused with
//! a 422 naming the field, and nothing changes: `{"enabled": null}` must not answer 200 having
//! done nothing.

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, create_key, setup};
use crate::harness::{TestResponse, TestServer};

fn refused_naming(response: TestResponse, field: &str) {
    let error = response.assert_error(422, "validation_failed");
    assert!(
        error["error"]["details"]["fields"][field].is_string(),
        "{field} not named: {error}"
    );
}

fn created(response: TestResponse) -> Value {
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

#[test]
fn a_null_where_the_api_takes_none_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(
        &owner,
        &[
            "webhooks:read",
            "webhooks:write",
            "contacts:read",
            "contacts:write",
            "campaigns:read",
            "campaigns:write",
        ],
        "live",
    );
    let api = Caller {
        server: &server,
        key,
    };

    // Webhook endpoints: `enabled` on create; `url`, `events`, `enabled` on update.
    let endpoint = json!({"url": "https://hooks.example.com/x", "events": ["*"]});
    let mut with_null = endpoint.clone();
    with_null["enabled"] = Value::Null;
    refused_naming(api.post("/v1/webhook-endpoints", with_null), "enabled");
    let listed = api.get("/v1/webhook-endpoints").json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
    let created_endpoint = created(api.post("/v1/webhook-endpoints", endpoint));
    let path = format!(
        "/v1/webhook-endpoints/{}",
        created_endpoint["id"].as_str().unwrap()
    );
    for field in ["url", "events", "enabled"] {
        refused_naming(api.patch(&path, json!({ field: null })), field);
    }
    let shown = api.get(&path).json();
    assert_eq!(shown["url"], "https://hooks.example.com/x", "{shown}");
    assert_eq!(shown["events"], created_endpoint["events"], "{shown}");
    assert_eq!(shown["enabled"], true, "{shown}");
    // `description` is nullable: `null` clears it.
    let cleared = api.patch(&path, json!({"description": null}));
    assert_eq!(cleared.status, 200, "{}", cleared.text());

    // Contacts: each channel of `unsubscribed` is true or false (the object itself may be null).
    let contact = created(api.post(
        "/v1/contacts",
        json!({"name": "Ada", "email": "ada@example.org"}),
    ));
    let contact_path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    refused_naming(
        api.patch(&contact_path, json!({"unsubscribed": {"email": null}})),
        "unsubscribed.email",
    );
    let unchanged = api.patch(&contact_path, json!({"unsubscribed": null}));
    assert_eq!(unchanged.status, 200, "{}", unchanged.text());
    assert!(
        unchanged.json()["email_unsubscribed_at"].is_null(),
        "{}",
        unchanged.text()
    );

    // Campaigns: `opt_out_line` and `track_links` on create and on update.
    let draft = json!({"name": "Launch", "channel": "sms", "text": "Hello",
                       "audience": {"all": true}});
    for field in ["opt_out_line", "track_links"] {
        let mut with_null = draft.clone();
        with_null[field] = Value::Null;
        refused_naming(api.post("/v1/campaigns", with_null), field);
    }
    let listed = api.get("/v1/campaigns").json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
    let campaign = created(api.post("/v1/campaigns", draft));
    let campaign_path = format!("/v1/campaigns/{}", campaign["id"].as_str().unwrap());
    for field in ["opt_out_line", "track_links"] {
        refused_naming(api.patch(&campaign_path, json!({ field: null })), field);
    }
    let shown = api.get(&campaign_path).json();
    assert_eq!(shown["track_links"], campaign["track_links"], "{shown}");
    assert_eq!(shown["opt_out_line"], campaign["opt_out_line"], "{shown}");
}
