//! Segments: every operator on every kind of field (built-in, channel states, dates, groups,
//! custom fields of every type), nesting, every bad node named by its JSON path, hostile values
//! matched literally, preview = saved count = `?segment=` list, deleted contacts never counted,
//! broken segments after a field or group is deleted, and the walls between workspaces and
//! modes.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, Console, count, create_key, second_tenant, setup};
use crate::harness::{TestResponse, TestServer};

const BOTH: &[&str] = &["contacts:read", "contacts:write"];

fn caller<'s>(server: &'s TestServer, console: &Console<'s>, mode: &str) -> Caller<'s> {
    let (_, key) = create_key(console, BOTH, mode);
    Caller { server, key }
}

/// Creates a contact; returns its id.
fn contact(api: &Caller<'_>, body: Value) -> String {
    let response = api.post("/v1/contacts", body);
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_str().unwrap().to_owned()
}

fn define(api: &Caller<'_>, body: Value) -> String {
    let response = api.post("/v1/contact-fields", body);
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()["id"].as_str().unwrap().to_owned()
}

fn group(api: &Caller<'_>, name: &str, members: &[&str]) -> String {
    let response = api.post("/v1/groups", json!({ "name": name }));
    assert_eq!(response.status, 201, "{}", response.text());
    let id = response.json()["id"].as_str().unwrap().to_owned();
    if !members.is_empty() {
        let added = api.post(
            &format!("/v1/groups/{id}/contacts"),
            json!({ "contact_ids": members }),
        );
        assert_eq!(added.status, 200, "{}", added.text());
    }
    id
}

fn preview(api: &Caller<'_>, rules: Value) -> TestResponse {
    api.post("/v1/segments/preview", json!({ "rules": rules }))
}

/// The names of the contacts a preview shows (all of them: tests keep fewer than 10), checked
/// against its count.
fn matched(api: &Caller<'_>, rules: Value) -> BTreeSet<String> {
    let response = preview(api, rules.clone());
    assert_eq!(response.status, 200, "{rules}: {}", response.text());
    let body = response.json();
    let names: BTreeSet<String> = body["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| contact["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(body["count"], names.len(), "{rules}: {body}");
    names
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

fn all(conditions: Value) -> Value {
    json!({ "all": conditions })
}

fn cond(field: &str, op: &str, value: Value) -> Value {
    json!({"field": field, "op": op, "value": value})
}

/// The fields a 422 envelope names, in order.
fn invalid_fields(response: &TestResponse) -> Vec<String> {
    let envelope = response.assert_error(422, "validation_failed");
    envelope["error"]["details"]["fields"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Every page of `path`, following `next_cursor`.
fn walk(api: &Caller<'_>, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut url = format!("{path}&limit=2");
    loop {
        let page = api.get(&url);
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        for item in page["data"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}&limit=2&cursor={cursor}"),
            None => return seen,
        }
    }
}

#[test]
fn a_segment_is_saved_shown_listed_renamed_and_deleted() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    contact(
        &api,
        json!({"name": "Ada", "email": "ada@x.io", "language": "fr"}),
    );
    contact(
        &api,
        json!({"name": "Bob", "email": "bob@x.io", "language": "en"}),
    );
    let rules = all(json!([cond("language", "eq", json!("fr"))]));
    let created = api.post(
        "/v1/segments",
        json!({"name": "  French  ", "rules": rules}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let segment = created.json();
    let id = segment["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("seg_"));
    assert_eq!(segment["name"], "French");
    assert_eq!(segment["mode"], "live");
    assert_eq!(segment["rules"], rules);
    assert_eq!(segment["count"], Value::Null);
    let path = format!("/v1/segments/{id}");
    let shown = api.get(&path).json();
    assert_eq!(shown["count"], 1);
    assert_eq!(shown["problems"], Value::Null);
    let listed = api.get("/v1/segments").json();
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert_eq!(listed["data"][0]["count"], Value::Null);

    let english = all(json!([cond("language", "eq", json!("en"))]));
    let changed = api.patch(&path, json!({"name": "English", "rules": english}));
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["name"], "English");
    assert_eq!(api.get(&path).json()["rules"], english);
    // A refused change changes nothing.
    let bad = all(json!([cond("language", "eq", json!("de"))]));
    assert_eq!(
        invalid_fields(&api.patch(&path, json!({"name": " ", "rules": bad}))),
        ["name", "rules.all[0].value"]
    );
    assert_eq!(api.get(&path).json()["name"], "English");

    // Names are unique per workspace and mode.
    let envelope = api
        .post("/v1/segments", json!({"name": "English", "rules": rules}))
        .assert_error(409, "conflict");
    assert_eq!(envelope["error"]["details"]["existing_id"], id.as_str());
    let other_mode = caller(&server, &owner, "test")
        .post("/v1/segments", json!({"name": "English", "rules": rules}));
    assert_eq!(other_mode.status, 201, "{}", other_mode.text());
    assert_eq!(
        invalid_fields(&api.post("/v1/segments", json!({}))),
        ["name", "rules"]
    );
    assert_eq!(
        invalid_fields(&api.post("/v1/segments", json!({"name": "x", "rulez": {}}))),
        ["rulez"]
    );
    assert_eq!(api.delete(&path).status, 204);
    api.get(&path).assert_error(404, "not_found");
    api.delete(&path).assert_error(404, "not_found");
    api.get("/v1/segments/seg_nosuch")
        .assert_error(404, "not_found");
    api.get("/v1/segments/grp_wrongkind")
        .assert_error(404, "not_found");
    // Contacts stay.
    assert_eq!(count(&server, "SELECT count(*) FROM contacts"), 2);
}

#[test]
fn every_operator_on_every_built_in_field() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let ada = contact(
        &api,
        json!({"name": "Ada Lovelace", "phone": "+237677000001", "email": "ada@x.io", "language": "fr"}),
    );
    server.clock.advance(chrono::Duration::days(2));
    let bob = contact(
        &api,
        json!({"name": "Bob", "email": "bob@y.io", "language": "en"}),
    );
    server.clock.advance(chrono::Duration::days(2));
    let cyd = contact(
        &api,
        json!({"name": "Cyd Charisse", "phone": "+237677000003"}),
    );
    // 2026-11-25 Ada, 11-27 Bob, 11-29 Cyd.
    api.patch(
        &format!("/v1/contacts/{bob}"),
        json!({"unsubscribed": {"email": true}}),
    );
    api.patch(
        &format!("/v1/contacts/{cyd}"),
        json!({"unsubscribed": {"sms": true}}),
    );
    server
        .db()
        .execute(
            "UPDATE contacts SET phone_state = 'invalid', email_state = 'bounced' WHERE id = ?1",
            [&ada],
        )
        .unwrap();
    let cases: Vec<(Value, &[&str])> = vec![
        (cond("name", "eq", json!("Bob")), &["Bob"]),
        (cond("name", "eq", json!("bob")), &[]),
        (
            cond("name", "neq", json!("Bob")),
            &["Ada Lovelace", "Cyd Charisse"],
        ),
        (
            cond("name", "in", json!(["Bob", "Cyd Charisse", "Zed"])),
            &["Bob", "Cyd Charisse"],
        ),
        (cond("name", "contains", json!("LOVE")), &["Ada Lovelace"]),
        (cond("name", "starts_with", json!("cyd")), &["Cyd Charisse"]),
        (cond("name", "starts_with", json!("Charisse")), &[]),
        (cond("first_name", "eq", json!("Ada")), &["Ada Lovelace"]),
        (json!({"field": "last_name", "op": "is_not_set"}), &["Bob"]),
        (
            json!({"field": "last_name", "op": "is_set"}),
            &["Ada Lovelace", "Cyd Charisse"],
        ),
        (
            cond("phone", "eq", json!("+237677000003")),
            &["Cyd Charisse"],
        ),
        (
            cond("phone", "starts_with", json!("+237")),
            &["Ada Lovelace", "Cyd Charisse"],
        ),
        (json!({"field": "phone", "op": "is_not_set"}), &["Bob"]),
        (cond("email", "eq", json!("ADA@X.IO")), &["Ada Lovelace"]),
        (cond("email", "contains", json!("@y.")), &["Bob"]),
        (
            cond("email", "neq", json!("ada@x.io")),
            &["Bob", "Cyd Charisse"],
        ),
        (
            json!({"field": "email", "op": "is_set"}),
            &["Ada Lovelace", "Bob"],
        ),
        (cond("language", "eq", json!("fr")), &["Ada Lovelace"]),
        (
            cond("language", "in", json!(["fr", "en"])),
            &["Ada Lovelace", "Bob"],
        ),
        (
            cond("language", "neq", json!("fr")),
            &["Bob", "Cyd Charisse"],
        ),
        (
            json!({"field": "language", "op": "is_not_set"}),
            &["Cyd Charisse"],
        ),
        (cond("phone_state", "eq", json!("valid")), &["Cyd Charisse"]),
        (
            cond("phone_state", "eq", json!("invalid")),
            &["Ada Lovelace"],
        ),
        (
            cond("phone_state", "neq", json!("valid")),
            &["Ada Lovelace", "Bob"],
        ),
        (
            cond("phone_state", "in", json!(["valid", "invalid"])),
            &["Ada Lovelace", "Cyd Charisse"],
        ),
        (
            json!({"field": "phone_state", "op": "is_not_set"}),
            &["Bob"],
        ),
        (
            cond("email_state", "eq", json!("bounced")),
            &["Ada Lovelace"],
        ),
        (cond("email_state", "eq", json!("valid")), &["Bob"]),
        (
            cond("sms_unsubscribed", "eq", json!(true)),
            &["Cyd Charisse"],
        ),
        (
            cond("sms_unsubscribed", "neq", json!(true)),
            &["Ada Lovelace", "Bob"],
        ),
        (cond("email_unsubscribed", "eq", json!(true)), &["Bob"]),
        (
            cond("email_unsubscribed", "eq", json!(false)),
            &["Ada Lovelace", "Cyd Charisse"],
        ),
        (cond("created_at", "eq", json!("2026-11-27")), &["Bob"]),
        (
            cond("created_at", "neq", json!("2026-11-27")),
            &["Ada Lovelace", "Cyd Charisse"],
        ),
        (
            cond("created_at", "before", json!("2026-11-27")),
            &["Ada Lovelace"],
        ),
        (
            cond("created_at", "lt", json!("2026-11-27")),
            &["Ada Lovelace"],
        ),
        (
            cond("created_at", "lte", json!("2026-11-27")),
            &["Ada Lovelace", "Bob"],
        ),
        (
            cond("created_at", "after", json!("2026-11-27")),
            &["Cyd Charisse"],
        ),
        (
            cond("created_at", "gt", json!("2026-11-27")),
            &["Cyd Charisse"],
        ),
        (
            cond("created_at", "gte", json!("2026-11-27")),
            &["Bob", "Cyd Charisse"],
        ),
        (
            cond("created_at", "between", json!(["2026-11-25", "2026-11-27"])),
            &["Ada Lovelace", "Bob"],
        ),
        (
            cond("created_at", "eq", json!("2026-11-27T09:30:00Z")),
            &["Bob"],
        ),
        (
            cond("created_at", "after", json!("2026-11-27T10:30:00+01:00")),
            &["Cyd Charisse"],
        ),
        (
            cond("created_at", "gte", json!("2026-11-27T09:30:00.000Z")),
            &["Bob", "Cyd Charisse"],
        ),
        // Unsubscribing changed Bob and Cyd.
        (
            cond("updated_at", "after", json!("2026-11-28")),
            &["Bob", "Cyd Charisse"],
        ),
    ];
    for (condition, expected) in cases {
        let rules = all(json!([condition]));
        assert_eq!(matched(&api, rules.clone()), names(expected), "{rules}");
    }
}

#[test]
fn nested_groups_combine_with_and_and_or() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    for (name, language) in [("Ada", "fr"), ("Bob", "en"), ("Cyd", "fr"), ("Dan", "en")] {
        contact(
            &api,
            json!({"name": name, "email": format!("{name}@x.io"), "language": language}),
        );
    }
    let rules = json!({"any": [
        {"all": [
            cond("language", "eq", json!("fr")),
            {"any": [cond("name", "eq", json!("Cyd")), cond("name", "eq", json!("Zed"))]}
        ]},
        {"all": [cond("language", "eq", json!("en")), cond("name", "neq", json!("Bob"))]}
    ]});
    assert_eq!(matched(&api, rules), names(&["Cyd", "Dan"]));
    // Five levels deep is fine; six is refused at the sixth.
    let mut deep = all(json!([cond("name", "eq", json!("Ada"))]));
    for _ in 0..4 {
        deep = json!({ "any": [deep] });
    }
    assert_eq!(matched(&api, deep.clone()), names(&["Ada"]));
    assert_eq!(
        invalid_fields(&preview(&api, json!({ "all": [deep] }))),
        ["rules.all[0].any[0].any[0].any[0].any[0]"]
    );
    let hundred: Vec<Value> = (0..101).map(|_| cond("name", "neq", json!("x"))).collect();
    assert_eq!(
        invalid_fields(&preview(&api, json!({ "all": hundred }))),
        ["rules"]
    );
}

#[test]
fn custom_field_conditions_of_every_type() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    define(
        &api,
        json!({"key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    );
    define(
        &api,
        json!({"key": "score", "label": "Score", "type": "number"}),
    );
    define(
        &api,
        json!({"key": "birthday", "label": "Birthday", "type": "date"}),
    );
    define(
        &api,
        json!({"key": "vip", "label": "VIP", "type": "boolean"}),
    );
    define(
        &api,
        json!({"key": "note", "label": "Note", "type": "text"}),
    );
    define(&api, json!({"key": "site", "label": "Site", "type": "url"}));
    contact(
        &api,
        json!({"name": "Ada", "email": "a@x.io", "custom": {
            "tier": "gold", "score": 10, "birthday": "1990-05-01", "vip": true,
            "note": "Met at PyCon", "site": "https://ada.dev"}}),
    );
    contact(
        &api,
        json!({"name": "Bob", "email": "b@x.io", "custom": {
            "tier": "silver", "score": 2.5, "birthday": "2001-12-31", "vip": false,
            "note": "100% keen", "site": "http://bob.example"}}),
    );
    contact(&api, json!({"name": "Cyd", "email": "c@x.io"}));
    let cases: Vec<(Value, &[&str])> = vec![
        (cond("custom.tier", "eq", json!("gold")), &["Ada"]),
        (cond("custom.tier", "neq", json!("gold")), &["Bob", "Cyd"]),
        (
            cond("custom.tier", "in", json!(["gold", "silver"])),
            &["Ada", "Bob"],
        ),
        (
            json!({"field": "custom.tier", "op": "is_not_set"}),
            &["Cyd"],
        ),
        (cond("custom.score", "eq", json!(10)), &["Ada"]),
        (cond("custom.score", "eq", json!(10.0)), &["Ada"]),
        (cond("custom.score", "neq", json!(10)), &["Bob", "Cyd"]),
        (cond("custom.score", "gt", json!(2.5)), &["Ada"]),
        (cond("custom.score", "gte", json!(2.5)), &["Ada", "Bob"]),
        (cond("custom.score", "lt", json!(10)), &["Bob"]),
        (cond("custom.score", "lte", json!(10)), &["Ada", "Bob"]),
        (cond("custom.score", "between", json!([2, 3])), &["Bob"]),
        (cond("custom.score", "in", json!([2.5, 7])), &["Bob"]),
        (
            json!({"field": "custom.score", "op": "is_set"}),
            &["Ada", "Bob"],
        ),
        (
            cond("custom.birthday", "before", json!("2000-01-01")),
            &["Ada"],
        ),
        (
            cond("custom.birthday", "after", json!("1990-05-01")),
            &["Bob"],
        ),
        (
            cond("custom.birthday", "gte", json!("1990-05-01")),
            &["Ada", "Bob"],
        ),
        (cond("custom.birthday", "eq", json!("2001-12-31")), &["Bob"]),
        (
            cond(
                "custom.birthday",
                "between",
                json!(["1990-05-01", "1990-05-01"]),
            ),
            &["Ada"],
        ),
        (cond("custom.vip", "eq", json!(true)), &["Ada"]),
        (cond("custom.vip", "eq", json!(false)), &["Bob"]),
        (cond("custom.vip", "neq", json!(true)), &["Bob", "Cyd"]),
        (json!({"field": "custom.vip", "op": "is_not_set"}), &["Cyd"]),
        (cond("custom.note", "contains", json!("pycon")), &["Ada"]),
        (cond("custom.note", "contains", json!("0%")), &["Bob"]),
        (cond("custom.note", "starts_with", json!("Met")), &["Ada"]),
        (cond("custom.note", "eq", json!("100% keen")), &["Bob"]),
        (
            cond("custom.site", "starts_with", json!("https://")),
            &["Ada"],
        ),
        (
            cond("custom.site", "in", json!(["http://bob.example"])),
            &["Bob"],
        ),
    ];
    for (condition, expected) in cases {
        let rules = all(json!([condition]));
        assert_eq!(matched(&api, rules.clone()), names(expected), "{rules}");
    }
    // Values are checked against the definition's type.
    let bad = all(json!([
        cond("custom.score", "eq", json!("10")),
        cond("custom.birthday", "eq", json!("2026-02-30")),
        cond("custom.vip", "eq", json!("true")),
        cond("custom.tier", "eq", json!("bronze")),
        cond("custom.note", "gt", json!("a")),
        cond("custom.nope", "eq", json!(1)),
        cond("custom.score", "contains", json!("1")),
    ]));
    assert_eq!(
        invalid_fields(&preview(&api, bad)),
        [
            "rules.all[0].value",
            "rules.all[1].value",
            "rules.all[2].value",
            "rules.all[3].value",
            "rules.all[4].op",
            "rules.all[5].field",
            "rules.all[6].op",
        ]
    );
}

#[test]
fn group_conditions_take_only_the_callers_groups() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let ada = contact(&api, json!({"name": "Ada", "email": "a@x.io"}));
    let bob = contact(&api, json!({"name": "Bob", "email": "b@x.io"}));
    contact(&api, json!({"name": "Cyd", "email": "c@x.io"}));
    let vip = group(&api, "VIP", &[&ada]);
    let board = group(&api, "Board", &[&ada, &bob]);
    let empty = group(&api, "Empty", &[]);
    assert_eq!(
        matched(&api, all(json!([cond("group", "eq", json!(vip))]))),
        names(&["Ada"])
    );
    assert_eq!(
        matched(&api, all(json!([cond("group", "neq", json!(vip))]))),
        names(&["Bob", "Cyd"])
    );
    assert_eq!(
        matched(&api, all(json!([cond("group", "in", json!([vip, board]))]))),
        names(&["Ada", "Bob"])
    );
    assert_eq!(
        matched(&api, all(json!([cond("group", "in", json!([empty]))]))),
        names(&[])
    );
    let other_mode = group(&caller(&server, &owner, "test"), "Test group", &[]);
    let globex = second_tenant(&owner, "globex@example.com");
    let stranger = group(&caller(&server, &globex, "live"), "Theirs", &[]);
    let refused = all(json!([
        cond("group", "eq", json!(other_mode)),
        cond("group", "in", json!([vip, stranger])),
        cond("group", "eq", json!("grp_nosuch")),
        cond("group", "neq", json!("VIP")),
        cond("group", "contains", json!(vip)),
    ]));
    assert_eq!(
        invalid_fields(&api.post("/v1/segments", json!({"name": "x", "rules": refused}))),
        [
            "rules.all[0].value",
            "rules.all[1].value[1]",
            "rules.all[2].value",
            "rules.all[3].value",
            "rules.all[4].op",
        ]
    );
    assert_eq!(count(&server, "SELECT count(*) FROM segments"), 0);
}

#[test]
fn every_bad_node_is_named_by_its_path_and_nothing_is_saved() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let rules = json!({"all": [
        cond("name", "eq", json!("ok")),
        {"any": [
            cond("name", "eq", json!("ok")),
            cond("nickname", "eq", json!("x")),
            {"field": "name", "op": "eq"},
            {"field": "name", "op": "is_set"},
            cond("name", "between", json!(["a", "b"])),
            {"all": [cond("created_at", "after", json!("yesterday"))]},
            cond("language", "in", json!("fr")),
            cond("created_at", "between", json!(["2026-01-01"])),
            {"field": "email", "op": "is_set", "value": null},
            {"op": "eq", "value": 1},
            7,
            {"any": []},
            {"all": [], "oops": 1}
        ]}
    ]});
    for response in [
        preview(&api, rules.clone()),
        api.post("/v1/segments", json!({"name": "Bad", "rules": rules})),
    ] {
        assert_eq!(
            invalid_fields(&response),
            [
                "rules.all[1].any[10]",
                "rules.all[1].any[11].any",
                "rules.all[1].any[12]",
                "rules.all[1].any[1].field",
                "rules.all[1].any[2].value",
                "rules.all[1].any[3].op",
                "rules.all[1].any[4].op",
                "rules.all[1].any[5].all[0].value",
                "rules.all[1].any[6].value",
                "rules.all[1].any[7].value",
                "rules.all[1].any[8].value",
                "rules.all[1].any[9].field",
            ]
        );
    }
    for not_a_tree in [json!(null), json!([]), json!("all"), json!({"all": {}})] {
        let fields = invalid_fields(&preview(&api, not_a_tree.clone()));
        assert!(fields[0].starts_with("rules"), "{not_a_tree}: {fields:?}");
    }
    assert_eq!(
        invalid_fields(&api.post("/v1/segments/preview", json!({}))),
        ["rules"]
    );
    assert_eq!(count(&server, "SELECT count(*) FROM segments"), 0);
}

#[test]
fn hostile_values_match_literally_and_change_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    define(
        &api,
        json!({"key": "note", "label": "Note", "type": "text"}),
    );
    let hostile = [
        "Robert'); DROP TABLE contacts; --",
        "'; DROP TABLE contacts; --",
        "100% \"real\"",
        "a_b",
        "a\\b",
        // Control characters are refused in names (a NUL, a line break); an invisible
        // format character is not.
        "zero\u{200b}width",
    ];
    for (n, name) in hostile.iter().enumerate() {
        contact(
            &api,
            json!({"name": name, "email": format!("h{n}@x.io"), "custom": {"note": name}}),
        );
    }
    contact(
        &api,
        json!({"name": "axb 1000 plain", "email": "p@x.io", "custom": {"note": "x".repeat(1000)}}),
    );
    for name in hostile {
        for field in ["name", "custom.note"] {
            assert_eq!(
                matched(&api, all(json!([cond(field, "eq", json!(name))]))),
                names(&[name]),
                "{field} = {name:?}"
            );
            assert_eq!(
                matched(&api, all(json!([cond(field, "in", json!([name, "zz"]))]))),
                names(&[name])
            );
        }
    }
    let contains =
        |field: &str, text: &str| matched(&api, all(json!([cond(field, "contains", json!(text))])));
    for field in ["name", "custom.note"] {
        assert_eq!(
            contains(field, "drop table"),
            names(&[hostile[0], hostile[1]])
        );
        assert_eq!(contains(field, "'; DROP"), names(&[hostile[1]]));
        assert_eq!(contains(field, "%"), names(&[hostile[2]]));
        assert_eq!(contains(field, "_"), names(&[hostile[3]]));
        assert_eq!(contains(field, "\\"), names(&[hostile[4]]));
        assert_eq!(contains(field, "\"real\""), names(&[hostile[2]]));
    }
    assert_eq!(
        matched(&api, all(json!([cond("name", "starts_with", json!("a_"))]))),
        names(&[hostile[3]])
    );
    // A NUL cannot be searched for (SQLite's LIKE would stop at it); a whole value can.
    assert_eq!(
        invalid_fields(&preview(
            &api,
            all(json!([cond("name", "contains", json!("nul\u{0}"))]))
        )),
        ["rules.all[0].value"]
    );
    // Text up to 1 000 characters compares; longer is refused.
    assert_eq!(
        matched(
            &api,
            all(json!([cond("custom.note", "eq", json!("x".repeat(1000)))]))
        ),
        names(&["axb 1000 plain"])
    );
    assert_eq!(
        invalid_fields(&preview(
            &api,
            all(json!([cond("name", "eq", json!("x".repeat(100_000)))]))
        )),
        ["rules.all[0].value"]
    );
    // A hostile field name is refused, not run.
    assert_eq!(
        invalid_fields(&preview(
            &api,
            all(json!([cond("name = name OR 1=1 --", "eq", json!("x"))]))
        )),
        ["rules.all[0].field"]
    );
    assert_eq!(
        invalid_fields(&preview(
            &api,
            all(json!([cond("custom.note\") OR 1=1 --", "eq", json!("x"))]))
        )),
        ["rules.all[0].field"]
    );
    let saved = api.post(
        "/v1/segments",
        json!({"name": hostile[0], "rules": all(json!([cond("name", "eq", json!(hostile[1]))]))}),
    );
    assert_eq!(saved.status, 201, "{}", saved.text());
    let id = saved.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("/v1/segments/{id}")).json()["count"], 1);
    assert_eq!(count(&server, "SELECT count(*) FROM contacts"), 7);
    assert_eq!(count(&server, "SELECT count(*) FROM segments"), 1);
}

#[test]
fn preview_saved_count_and_the_segment_filter_agree_and_leave_deleted_contacts_out() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let mut french = Vec::new();
    for n in 0..14 {
        let language = if n % 3 == 0 { "en" } else { "fr" };
        let id = contact(
            &api,
            json!({"name": format!("C{n}"), "email": format!("c{n}@x.io"), "language": language}),
        );
        if language == "fr" {
            french.push(id);
        }
    }
    let gone = french.remove(0);
    assert_eq!(api.delete(&format!("/v1/contacts/{gone}")).status, 204);
    let rules = all(json!([cond("language", "eq", json!("fr"))]));
    let preview = preview(&api, rules.clone()).json();
    assert_eq!(preview["count"], french.len());
    let sample: Vec<&str> = preview["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|contact| contact["id"].as_str().unwrap())
        .collect();
    // Newest first, as the list shows them, at most ten.
    let newest: Vec<&str> = french.iter().rev().take(10).map(String::as_str).collect();
    assert_eq!(sample, newest);
    assert_eq!(
        preview["sample"][0],
        api.get(&format!("/v1/contacts/{}", french.last().unwrap()))
            .json()
    );
    let saved = api.post("/v1/segments", json!({"name": "French", "rules": rules}));
    let id = saved.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.get(&format!("/v1/segments/{id}")).json()["count"],
        french.len()
    );
    let listed = walk(&api, &format!("/v1/contacts?segment={id}"));
    let expected: Vec<String> = french.iter().rev().cloned().collect();
    assert_eq!(listed, expected);
    // The filter combines with the others.
    let listed = walk(&api, &format!("/v1/contacts?segment={id}&q=C1"));
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|id| french.contains(id)));
    for bad in ["seg_nosuch", "nonsense", "grp_1"] {
        assert_eq!(
            invalid_fields(&api.get(&format!("/v1/contacts?segment={bad}"))),
            ["segment"]
        );
    }
}

#[test]
fn a_segment_naming_a_deleted_field_or_group_is_broken_until_fixed() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let field = define(
        &api,
        json!({"key": "score", "label": "Score", "type": "number"}),
    );
    let ada = contact(
        &api,
        json!({"name": "Ada", "email": "a@x.io", "custom": {"score": 3}}),
    );
    contact(&api, json!({"name": "Bob", "email": "b@x.io"}));
    let vip = group(&api, "VIP", &[&ada]);
    let rules = json!({"any": [
        cond("custom.score", "neq", json!(3)),
        cond("group", "eq", json!(vip)),
    ]});
    let saved = api.post("/v1/segments", json!({"name": "Mixed", "rules": rules}));
    let id = saved.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/segments/{id}");
    assert_eq!(api.get(&path).json()["count"], 2);
    assert_eq!(
        api.delete(&format!("/v1/contact-fields/{field}")).status,
        204
    );
    assert_eq!(api.delete(&format!("/v1/groups/{vip}")).status, 204);
    let shown = api.get(&path).json();
    assert_eq!(shown["count"], Value::Null);
    let problems = shown["problems"].as_object().unwrap();
    assert_eq!(
        problems.keys().collect::<Vec<_>>(),
        ["rules.any[0].field", "rules.any[1].value"]
    );
    assert_eq!(shown["rules"], rules);
    assert_eq!(
        invalid_fields(&api.get(&format!("/v1/contacts?segment={id}"))),
        ["segment"]
    );
    // Fixed by new rules.
    let fixed = api.patch(
        &path,
        json!({"rules": all(json!([cond("name", "eq", json!("Bob"))]))}),
    );
    assert_eq!(fixed.status, 200, "{}", fixed.text());
    let shown = api.get(&path).json();
    assert_eq!(shown["count"], 1);
    assert_eq!(shown["problems"], Value::Null);
}

#[test]
fn another_workspaces_and_the_other_modes_segments_are_not_found() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let test = caller(&server, &owner, "test");
    contact(
        &api,
        json!({"name": "Live Ada", "email": "a@x.io", "language": "fr"}),
    );
    contact(
        &test,
        json!({"name": "Test Ada", "email": "a@x.io", "language": "fr"}),
    );
    let globex = second_tenant(&owner, "globex@example.com");
    let stranger = caller(&server, &globex, "live");
    contact(
        &stranger,
        json!({"name": "Their Ada", "email": "a@x.io", "language": "fr"}),
    );
    let rules = all(json!([cond("language", "eq", json!("fr"))]));
    assert_eq!(matched(&api, rules.clone()), names(&["Live Ada"]));
    assert_eq!(matched(&test, rules.clone()), names(&["Test Ada"]));
    assert_eq!(matched(&stranger, rules.clone()), names(&["Their Ada"]));
    let saved = api.post("/v1/segments", json!({"name": "French", "rules": rules}));
    let id = saved.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/segments/{id}");
    for other in [&stranger, &test] {
        other.get(&path).assert_error(404, "not_found");
        other
            .patch(&path, json!({"name": "Mine"}))
            .assert_error(404, "not_found");
        other.delete(&path).assert_error(404, "not_found");
        assert_eq!(other.get("/v1/segments").json()["data"], json!([]));
        assert_eq!(
            invalid_fields(&other.get(&format!("/v1/contacts?segment={id}"))),
            ["segment"]
        );
    }
    assert_eq!(api.get(&path).json()["name"], "French");
    // The console works on live segments.
    assert_eq!(
        owner.get("/v1/segments").json()["data"][0]["id"],
        id.as_str()
    );
    let shown = owner.get(&path).json();
    assert_eq!(shown["count"], 1);
    // Reading needs contacts:read; saving contacts:write.
    let (_, reader) = create_key(&owner, &["contacts:read"], "live");
    let reader = Caller {
        server: &server,
        key: reader,
    };
    assert_eq!(
        preview(&reader, all(json!([cond("name", "eq", json!("x"))]))).status,
        200
    );
    reader
        .post(
            "/v1/segments",
            json!({"name": "X", "rules": all(json!([cond("name", "eq", json!("x"))]))}),
        )
        .assert_error(403, "insufficient_scope");
    let (_, sender) = create_key(&owner, &["messages:send"], "live");
    let sender = Caller {
        server: &server,
        key: sender,
    };
    sender
        .get("/v1/segments")
        .assert_error(403, "insufficient_scope");
}
