//! Contacts and custom fields: validation that changes nothing, uniqueness per workspace and
//! mode, soft deletion, the wall between live and test and between workspaces, pagination and
//! search, and field definitions whose deletion strips their values.

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, bearer, create_key, second_tenant, setup};
use crate::harness::{TestResponse, TestServer};

const BOTH: &[&str] = &["contacts:read", "contacts:write"];

impl Caller<'_> {
    /// Creates a contact and returns it.
    fn create(&self, body: Value) -> Value {
        let response = self.post("/v1/contacts", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }

    fn define(&self, body: Value) -> Value {
        let response = self.post("/v1/contact-fields", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }
}

fn caller<'s>(
    server: &'s TestServer,
    console: &crate::auth_fixtures::Console<'s>,
    mode: &str,
) -> Caller<'s> {
    let (_, key) = create_key(console, BOTH, mode);
    Caller { server, key }
}

fn contact_count(server: &TestServer) -> i64 {
    server
        .db()
        .query_row("SELECT count(*) FROM contacts", [], |row| row.get(0))
        .unwrap()
}

/// The names of the fields a 422 envelope lists.
fn invalid_fields(response: &TestResponse) -> Vec<String> {
    let envelope = response.assert_error(422, "validation_failed");
    envelope["error"]["details"]["fields"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn a_contact_is_created_shown_changed_and_deleted() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let created = api.create(json!({
        "name": " Ada  King Lovelace ",
        "phone": "677 12 34 56",
        "email": " Ada@Example.COM ",
        "language": "fr",
    }));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("con_"));
    assert_eq!(created["mode"], "live");
    assert_eq!(created["name"], "Ada  King Lovelace");
    assert_eq!(created["first_name"], "Ada");
    assert_eq!(created["last_name"], "King Lovelace");
    assert_eq!(created["phone"], "+237677123456");
    assert_eq!(created["phone_input"], "677 12 34 56");
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["language"], "fr");
    assert_eq!(created["custom"], json!({}));
    assert_eq!(created["phone_state"], "valid");
    assert_eq!(created["email_state"], "valid");
    assert_eq!(created["sms_unsubscribed_at"], Value::Null);

    let shown = api.get(&format!("/v1/contacts/{id}"));
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json(), created);

    let path = format!("/v1/contacts/{id}");
    let changed = api.patch(
        &path,
        json!({"name": "Grace Hopper", "email": null, "unsubscribed": {"sms": true}}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let changed = changed.json();
    assert_eq!(
        (&changed["first_name"], &changed["last_name"]),
        (&json!("Grace"), &json!("Hopper"))
    );
    assert_eq!(changed["email"], Value::Null);
    assert_eq!(changed["email_state"], Value::Null);
    assert_eq!(changed["sms_unsubscribed_via"], "api");
    assert!(changed["sms_unsubscribed_at"].is_string());
    assert_eq!(changed["phone"], "+237677123456");

    let resubscribed = api
        .patch(&path, json!({"unsubscribed": {"sms": false}}))
        .json();
    assert_eq!(resubscribed["sms_unsubscribed_at"], Value::Null);
    assert_eq!(resubscribed["sms_unsubscribed_via"], Value::Null);

    // The last address cannot go.
    assert_eq!(
        invalid_fields(&api.patch(&path, json!({"phone": null}))),
        ["email", "phone"]
    );

    assert_eq!(api.delete(&path).status, 204);
    api.get(&path).assert_error(404, "not_found");
    api.patch(&path, json!({"name": "X"}))
        .assert_error(404, "not_found");
    api.delete(&path).assert_error(404, "not_found");
}

#[test]
fn a_session_works_on_live_contacts_and_unsubscribes_via_the_console() {
    let server = TestServer::start();
    let owner = setup(&server);
    let created = owner.post("/v1/contacts", &json!({"name": "Ada", "email": "a@b.io"}));
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(created["mode"], "live");
    assert_eq!(created["last_name"], Value::Null);
    let path = format!("/v1/contacts/{}", created["id"].as_str().unwrap());
    let changed = owner
        .patch(&path, &json!({"unsubscribed": {"email": true}}))
        .json();
    assert_eq!(changed["email_unsubscribed_via"], "console");
    let live = caller(&server, &owner, "live");
    assert_eq!(live.get(&path).status, 200);
}

#[test]
fn every_bad_input_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    api.define(json!({"key": "score", "label": "Score", "type": "number"}));
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"name": "Ada"}), &["email", "phone"]),
        (json!({"name": "Ada", "phone": "12"}), &["phone"]),
        (
            json!({"name": "Ada", "email": "not-an-address"}),
            &["email"],
        ),
        (json!({"name": "  ", "email": "a@b.io"}), &["name"]),
        (json!({"email": "a@b.io"}), &["name"]),
        (
            json!({"name": "x".repeat(201), "email": "a@b.io"}),
            &["name"],
        ),
        (
            json!({"name": "Ada", "email": "a@b.io", "language": "de"}),
            &["language"],
        ),
        (
            json!({"name": "Ada", "email": "a@b.io", "age": 3}),
            &["age"],
        ),
        (
            json!({"name": "Ada", "email": "a@b.io", "custom": {"nope": 1}}),
            &["custom.nope"],
        ),
        (
            json!({"name": "Ada", "email": "a@b.io", "custom": {"score": "high"}}),
            &["custom.score"],
        ),
    ];
    for (body, fields) in cases {
        let response = api.post("/v1/contacts", body.clone());
        assert_eq!(invalid_fields(&response), fields, "{body}");
    }
    assert_eq!(contact_count(&server), 0);

    let contact = api.create(json!({"name": "Ada", "email": "a@b.io", "custom": {"score": 7}}));
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    for (body, fields) in [
        (json!({"name": null}), vec!["name"]),
        (json!({"phone": "12"}), vec!["phone"]),
        (json!({"email": "nope"}), vec!["email"]),
        (json!({"custom": {"score": true}}), vec!["custom.score"]),
        (
            json!({"unsubscribed": {"whatsapp": true}}),
            vec!["unsubscribed.whatsapp"],
        ),
    ] {
        assert_eq!(
            invalid_fields(&api.patch(&path, body.clone())),
            fields,
            "{body}"
        );
    }
    assert_eq!(api.get(&path).json(), contact);
}

#[test]
fn custom_values_are_checked_against_their_definition() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    for (key, field_type) in [
        ("nickname", "text"),
        ("score", "number"),
        ("birthday", "date"),
        ("vip", "boolean"),
        ("site", "url"),
    ] {
        api.define(json!({"key": key, "label": key, "type": field_type}));
    }
    api.define(
        json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    );
    let bad = [
        ("nickname", json!(12)),
        ("nickname", json!("x".repeat(1001))),
        ("score", json!("12")),
        ("birthday", json!("2026-02-30")),
        ("birthday", json!("28/02/2026")),
        ("vip", json!("yes")),
        ("site", json!("ftp://example.com")),
        ("site", json!("example.com")),
        ("tier", json!("bronze")),
    ];
    for (key, value) in bad {
        let body = json!({"name": "Ada", "email": "a@b.io", "custom": {key: value}});
        assert_eq!(
            invalid_fields(&api.post("/v1/contacts", body)),
            [format!("custom.{key}")],
            "{key} = {value}"
        );
    }
    assert_eq!(contact_count(&server), 0);
    // A date written right but missing from the calendar is told so, not "write it YYYY-MM-DD".
    let reasons = |value: Value| {
        let body = json!({"name": "Ada", "email": "a@b.io", "custom": {"birthday": value}});
        api.post("/v1/contacts", body).json()["error"]["details"]["fields"]["custom.birthday"]
            .clone()
    };
    assert_eq!(
        reasons(json!("2026-02-30")),
        "is not a date of the calendar"
    );
    assert_eq!(
        reasons(json!("28/02/2026")),
        "must be a date written YYYY-MM-DD"
    );
    let good = json!({
        "nickname": "Countess", "score": 9.5, "birthday": "1815-12-10", "vip": true,
        "site": "https://example.com/ada", "tier": "gold",
    });
    let contact = api.create(json!({"name": "Ada", "email": "a@b.io", "custom": good}));
    assert_eq!(contact["custom"], good);
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let changed = api
        .patch(&path, json!({"custom": {"vip": null, "score": 10}}))
        .json();
    assert_eq!(changed["custom"]["score"], 10);
    assert_eq!(changed["custom"].get("vip"), None);
    assert_eq!(changed["custom"]["tier"], "gold");
}

#[test]
fn duplicates_are_refused_naming_the_contact_until_it_is_deleted() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let first = api.create(json!({"name": "Ada", "phone": "+237677123456", "email": "a@b.io"}));
    let first_id = first["id"].as_str().unwrap();
    for body in [
        json!({"name": "Other", "phone": "677 123 456"}),
        json!({"name": "Other", "email": "A@B.io"}),
    ] {
        let envelope = api.post("/v1/contacts", body).assert_error(409, "conflict");
        assert_eq!(envelope["error"]["details"]["existing_id"], first_id);
        assert!(
            envelope["error"]["message"]
                .as_str()
                .unwrap()
                .contains(first_id)
        );
    }
    let second = api.create(json!({"name": "Bob", "email": "bob@b.io"}));
    let second_path = format!("/v1/contacts/{}", second["id"].as_str().unwrap());
    let envelope = api
        .patch(&second_path, json!({"phone": "677123456"}))
        .assert_error(409, "conflict");
    assert_eq!(envelope["error"]["details"]["existing_id"], first_id);
    // Patching a contact with its own phone is no conflict.
    let first_path = format!("/v1/contacts/{first_id}");
    assert_eq!(
        api.patch(&first_path, json!({"phone": "677123456"})).status,
        200
    );

    assert_eq!(api.delete(&first_path).status, 204);
    let again = api.create(json!({"name": "Ada again", "phone": "677123456", "email": "a@b.io"}));
    assert_ne!(again["id"], first["id"]);
}

#[test]
fn live_and_test_contacts_are_two_worlds() {
    let server = TestServer::start();
    let owner = setup(&server);
    let live = caller(&server, &owner, "live");
    let test = caller(&server, &owner, "test");
    let live_contact = live.create(json!({"name": "Ada", "phone": "677123456"}));
    // The same phone in the other mode is no conflict.
    let test_contact = test.create(json!({"name": "Ada", "phone": "677123456"}));
    assert_eq!(test_contact["mode"], "test");
    for (api, other) in [(&live, &test_contact), (&test, &live_contact)] {
        let path = format!("/v1/contacts/{}", other["id"].as_str().unwrap());
        api.get(&path).assert_error(404, "not_found");
        api.patch(&path, json!({"name": "Changed"}))
            .assert_error(404, "not_found");
        api.delete(&path).assert_error(404, "not_found");
        let listed = api.get("/v1/contacts").json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert_ne!(listed["data"][0]["id"], other["id"]);
    }
    let (live_path, test_path) = (
        format!("/v1/contacts/{}", live_contact["id"].as_str().unwrap()),
        format!("/v1/contacts/{}", test_contact["id"].as_str().unwrap()),
    );
    assert_eq!(live.get(&live_path).json(), live_contact);
    assert_eq!(test.get(&test_path).json(), test_contact);
    // The console sees the live world.
    let listed = owner.get("/v1/contacts").json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], live_contact["id"]);
}

#[test]
fn another_workspaces_contacts_and_fields_are_not_found() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let contact = api.create(json!({"name": "Ada", "email": "a@b.io"}));
    let field = api.define(json!({"key": "score", "label": "Score", "type": "number"}));
    let globex = second_tenant(&owner, "globex@example.com");
    let stranger = caller(&server, &globex, "live");
    let contact_path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let field_path = format!("/v1/contact-fields/{}", field["id"].as_str().unwrap());
    stranger.get(&contact_path).assert_error(404, "not_found");
    stranger
        .patch(&contact_path, json!({"name": "Mine"}))
        .assert_error(404, "not_found");
    stranger
        .delete(&contact_path)
        .assert_error(404, "not_found");
    stranger
        .patch(&field_path, json!({"label": "Mine"}))
        .assert_error(404, "not_found");
    stranger.delete(&field_path).assert_error(404, "not_found");
    assert_eq!(stranger.get("/v1/contacts").json()["data"], json!([]));
    assert_eq!(stranger.get("/v1/contact-fields").json()["data"], json!([]));
    // The same email in another workspace is no conflict; the first workspace is untouched.
    stranger.create(json!({"name": "Ada", "email": "a@b.io"}));
    assert_eq!(api.get(&contact_path).json(), contact);
    assert_eq!(api.get("/v1/contact-fields").json()["data"][0], field);
    // Scopes are checked.
    let (_, reader) = create_key(&owner, &["contacts:read"], "live");
    bearer(
        &server,
        &reader,
        "POST",
        "/v1/contacts",
        Some(&json!({"name": "A", "email": "x@y.io"})),
    )
    .assert_error(403, "insufficient_scope");
}

#[test]
fn the_list_pages_newest_first_and_searches_literally() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let names = [
        "100% Bio",
        "1000 Bio",
        "Ada_Lovelace",
        "AdaXLovelace",
        "Grace",
    ];
    let mut ids = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let contact = api.create(json!({"name": name, "email": format!("c{index}@b.io")}));
        ids.push(contact["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut path = "/v1/contacts?limit=2".to_owned();
    loop {
        let page = api.get(&path).json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/contacts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let found = |query: &str| -> Vec<String> {
        let page = api.get(&format!("/v1/contacts?{query}"));
        assert_eq!(page.status, 200, "{}", page.text());
        page.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(found("q=0%25"), ["100% Bio"]);
    assert_eq!(found("q=a_l"), ["Ada_Lovelace"]);
    assert_eq!(found("q=GRACE"), ["Grace"]);
    assert_eq!(found("q=c4%40"), ["Grace"]);
    assert_eq!(found("q=bio").len(), 2);
    // A NUL would end the text SQLite compares, matching everyone: refused, in the list and the
    // export alike.
    for path in [
        "/v1/contacts?q=%00nomatch",
        "/v1/contacts/export?q=%00nomatch",
    ] {
        assert_eq!(invalid_fields(&api.get(path)), ["q"], "{path}");
    }

    let grace = format!("/v1/contacts/{}", ids[0]);
    api.patch(&grace, json!({"unsubscribed": {"email": true}}));
    assert_eq!(found("unsubscribed=email"), ["Grace"]);
    assert!(found("unsubscribed=sms").is_empty());
    assert_eq!(found("email_state=valid").len(), 5);
    assert!(found("phone_state=valid").is_empty());
    let refused = api.get("/v1/contacts?phone_state=lost&unsubscribed=fax&email_state=x");
    assert_eq!(
        invalid_fields(&refused),
        ["email_state", "phone_state", "unsubscribed"]
    );
}

#[test]
fn field_definitions_follow_their_rules() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let select = api.define(
        json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold", " silver "]}),
    );
    assert_eq!(select["options"], json!(["gold", "silver"]));
    assert_eq!(select["type"], "select");
    let refusals: Vec<(Value, &str)> = vec![
        (json!({"key": "Tier", "label": "T", "type": "text"}), "key"),
        (json!({"key": "2tier", "label": "T", "type": "text"}), "key"),
        (json!({"key": "a-b", "label": "T", "type": "text"}), "key"),
        (
            json!({"key": "a".repeat(41), "label": "T", "type": "text"}),
            "key",
        ),
        (json!({"key": "ok", "label": " ", "type": "text"}), "label"),
        (json!({"key": "ok", "label": "T", "type": "colour"}), "type"),
        (
            json!({"key": "ok", "label": "T", "type": "select"}),
            "options",
        ),
        (
            json!({"key": "ok", "label": "T", "type": "select", "options": []}),
            "options",
        ),
        (
            json!({"key": "ok", "label": "T", "type": "text", "options": ["a"]}),
            "options",
        ),
    ];
    for (body, field) in refusals {
        assert_eq!(
            invalid_fields(&api.post("/v1/contact-fields", body.clone())),
            [field],
            "{body}"
        );
    }
    let envelope = api
        .post(
            "/v1/contact-fields",
            json!({"key": "tier", "label": "Again", "type": "text"}),
        )
        .assert_error(409, "conflict");
    assert_eq!(envelope["error"]["details"]["existing_id"], select["id"]);

    let path = format!("/v1/contact-fields/{}", select["id"].as_str().unwrap());
    let changed = api
        .patch(
            &path,
            json!({"label": "Level", "options": ["gold", "bronze"]}),
        )
        .json();
    assert_eq!(
        (&changed["label"], &changed["options"]),
        (&json!("Level"), &json!(["gold", "bronze"]))
    );
    assert_eq!(
        invalid_fields(&api.patch(&path, json!({"type": "text"}))),
        ["type"]
    );

    for index in 1..50 {
        api.define(json!({"key": format!("f{index}"), "label": "F", "type": "boolean"}));
    }
    api.post(
        "/v1/contact-fields",
        json!({"key": "f50", "label": "F", "type": "text"}),
    )
    .assert_error(409, "conflict");
    let first_page = api.get("/v1/contact-fields?limit=30").json();
    assert_eq!(first_page["data"][0]["key"], "tier");
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let second_page = api
        .get(&format!("/v1/contact-fields?limit=30&cursor={cursor}"))
        .json();
    assert_eq!(second_page["data"].as_array().unwrap().len(), 20);
    assert_eq!(second_page["next_cursor"], Value::Null);
}

#[test]
fn deleting_a_definition_strips_its_values_from_every_contact() {
    let server = TestServer::start();
    let owner = setup(&server);
    let live = caller(&server, &owner, "live");
    let test = caller(&server, &owner, "test");
    let tier =
        live.define(json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold"]}));
    live.define(json!({"key": "vip", "label": "VIP", "type": "boolean"}));
    let custom = json!({"tier": "gold", "vip": true});
    let a = live.create(json!({"name": "Ada", "email": "a@b.io", "custom": custom}));
    let b = test.create(json!({"name": "Bob", "email": "b@b.io", "custom": custom}));
    let path = format!("/v1/contact-fields/{}", tier["id"].as_str().unwrap());
    assert_eq!(live.delete(&path).status, 204);
    live.delete(&path).assert_error(404, "not_found");
    for (api, contact) in [(&live, &a), (&test, &b)] {
        let shown = api
            .get(&format!("/v1/contacts/{}", contact["id"].as_str().unwrap()))
            .json();
        assert_eq!(shown["custom"], json!({"vip": true}));
    }
    let refused = live.post(
        "/v1/contacts",
        json!({"name": "C", "email": "c@b.io", "custom": {"tier": "gold"}}),
    );
    assert_eq!(invalid_fields(&refused), ["custom.tier"]);
}

#[test]
fn the_list_sorts_by_name_or_age_and_pages_exactly_through_equal_names() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    // Equal names (case aside) straddle page boundaries; the insertion order breaks the tie.
    let names = ["bob", "Ada", "carl", "ADA", "Bob", "ada", "Dee"];
    let mut created = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let contact = api.create(json!({"name": name, "email": format!("s{index}@b.io")}));
        created.push((name.to_string(), contact["id"].as_str().unwrap().to_owned()));
    }
    let walk = |sort: &str| -> Vec<(String, String)> {
        let mut seen = Vec::new();
        let mut path = format!("/v1/contacts?limit=2&sort={sort}");
        loop {
            let page = api.get(&path);
            assert_eq!(page.status, 200, "{}", page.text());
            let page = page.json();
            seen.extend(page["data"].as_array().unwrap().iter().map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["id"].as_str().unwrap().to_owned(),
                )
            }));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/contacts?limit=2&sort={sort}&cursor={cursor}"),
                None => break,
            }
        }
        seen
    };
    let mut by_name = created.clone();
    by_name.sort_by_key(|(name, _)| name.to_lowercase()); // stable: insertion order breaks ties
    assert_eq!(walk("name"), by_name);
    let mut by_name_descending = by_name.clone();
    by_name_descending.reverse();
    assert_eq!(walk("-name"), by_name_descending);
    assert_eq!(walk("created_at"), created);
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(walk("-created_at"), newest_first);

    let refused = api.get("/v1/contacts?sort=age");
    assert_eq!(invalid_fields(&refused), ["sort"]);
}
