//! Campaign drafts: created, shown, listed, changed, duplicated and deleted; every template
//! checked when saved (syntax, unknown variables with their position, unknown filters); the
//! audience's groups the caller's own; previews rendered per contact with escaping only in HTML;
//! the walls between workspaces and modes.

use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, count, create_key, second_tenant, setup};
use crate::harness::{TestResponse, TestServer};

const SCOPES: &[&str] = &[
    "campaigns:read",
    "campaigns:write",
    "contacts:read",
    "contacts:write",
];

fn created(response: TestResponse) -> Value {
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

fn caller<'s>(
    server: &'s TestServer,
    console: &crate::auth_fixtures::Console<'s>,
    mode: &str,
) -> Caller<'s> {
    let (_, key) = create_key(console, SCOPES, mode);
    Caller { server, key }
}

/// The fields a 422 names, with their messages.
fn invalid(response: &TestResponse) -> serde_json::Map<String, Value> {
    let envelope = response.assert_error(422, "validation_failed");
    envelope["error"]["details"]["fields"]
        .as_object()
        .unwrap()
        .clone()
}

fn sms_draft(group: &str) -> Value {
    json!({
        "name": "Black Friday",
        "channel": "sms",
        "text": "Hi {{ contact.first_name | default(\"client\") }}, -20% in {{ contact.custom.city }}!",
        "audience": {"groups": [group]},
    })
}

#[test]
fn a_draft_is_created_shown_listed_changed_duplicated_and_deleted() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    created(api.post(
        "/v1/contact-fields",
        json!({"key": "city", "label": "City", "type": "text"}),
    ));
    let group = created(api.post("/v1/groups", json!({"name": "VIP"})));
    let group_id = group["id"].as_str().unwrap();

    let draft = created(api.post("/v1/campaigns", sms_draft(group_id)));
    let id = draft["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cmp_"));
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["mode"], "live");
    assert_eq!(draft["channel"], "sms");
    assert_eq!(draft["audience"], json!({"groups": [group_id]}));
    assert_eq!(draft["opt_out_line"], false);
    assert_eq!(api.get(&format!("/v1/campaigns/{id}")).json(), draft);

    let changed = api.patch(
        &format!("/v1/campaigns/{id}"),
        json!({"name": "Cyber Monday", "opt_out_line": true, "audience": {"all": true},
               "scheduled_at": "2026-11-30T08:00:00Z"}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let changed = changed.json();
    assert_eq!(changed["name"], "Cyber Monday");
    assert_eq!(changed["audience"], json!({"all": true}));
    assert_eq!(
        changed["scheduled_at"], "2026-11-30T08:00:00.000Z",
        "stored in UTC"
    );
    assert_eq!(changed["text"], draft["text"], "what is not sent stays");

    let copy = created(api.post(&format!("/v1/campaigns/{id}/duplicate"), json!({})));
    assert_ne!(copy["id"], changed["id"]);
    assert_eq!(copy["name"], "Cyber Monday (copy)");
    assert_eq!(copy["duplicated_from"], id.as_str());
    assert_eq!(copy["scheduled_at"], Value::Null, "a copy is not scheduled");
    assert_eq!(copy["text"], changed["text"]);
    assert_eq!(copy["opt_out_line"], true);

    let listed = api.get("/v1/campaigns?limit=1").json();
    assert_eq!(listed["data"][0]["id"], copy["id"], "newest first");
    let cursor = listed["next_cursor"].as_str().unwrap();
    let next = api
        .get(&format!("/v1/campaigns?limit=1&cursor={cursor}"))
        .json();
    assert_eq!(next["data"][0]["id"], id.as_str());
    assert_eq!(next["next_cursor"], Value::Null);
    assert_eq!(
        api.get("/v1/campaigns?status=draft").json()["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        api.get("/v1/campaigns?status=running").json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let refused = api.get("/v1/campaigns?status=sent");
    assert!(invalid(&refused).contains_key("status"));

    assert_eq!(api.delete(&format!("/v1/campaigns/{id}")).status, 204);
    api.get(&format!("/v1/campaigns/{id}"))
        .assert_error(404, "not_found");
    api.delete(&format!("/v1/campaigns/{id}"))
        .assert_error(404, "not_found");
    assert_eq!(count(&server, "SELECT count(*) FROM campaigns"), 1);
}

#[test]
fn templates_are_checked_when_saved_naming_the_problem_and_where() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");

    let typo = api.post(
        "/v1/campaigns",
        json!({"name": "T", "channel": "sms", "audience": {"all": true},
               "text": "Hello\n{{ contact.frist_name }}"}),
    );
    let fields = invalid(&typo);
    let message = fields["text"].as_str().unwrap();
    assert!(
        message.starts_with("unknown variable `contact.frist_name` at line 2, column 4"),
        "{message}"
    );

    let email = api.post(
        "/v1/campaigns",
        json!({"name": "News", "channel": "email", "audience": {"all": true},
               "subject": "Hi {{ contact.name ",
               "html": "<p>{{ contact.custom.tier }}</p>",
               "text": "{{ contact.name | shout }}",
               "from_name": "Acme\r\nBcc: everyone@example.com",
               "opt_out_line": true}),
    );
    let fields = invalid(&email);
    assert_eq!(
        fields.keys().collect::<Vec<_>>(),
        ["from_name", "html", "opt_out_line", "subject", "text"]
    );
    assert!(
        fields["subject"].as_str().unwrap().contains("line 1"),
        "{fields:?}"
    );
    assert!(
        fields["html"]
            .as_str()
            .unwrap()
            .contains("contact.custom.tier"),
        "{fields:?}"
    );
    assert!(
        fields["text"].as_str().unwrap().contains("shout"),
        "{fields:?}"
    );

    // A custom field defined later makes the same template good.
    created(api.post(
        "/v1/contact-fields",
        json!({"key": "tier", "label": "Tier", "type": "text"}),
    ));
    created(api.post(
        "/v1/campaigns",
        json!({"name": "News", "channel": "email", "audience": {"all": true},
               "subject": "Hi {{ contact.name }}", "html": "<p>{{ contact.custom.tier }}</p>"}),
    ));

    // Every other bad input, all at once, and nothing stored.
    let bad = api.post(
        "/v1/campaigns",
        json!({"name": " ", "channel": "sms", "subject": "x", "html": "<p>", "text": "",
               "scheduled_at": "2020-01-01T00:00:00Z",
               "audience": {"all": true, "groups": ["grp_x"]}}),
    );
    assert_eq!(
        invalid(&bad).keys().collect::<Vec<_>>(),
        [
            "audience",
            "html",
            "name",
            "scheduled_at",
            "subject",
            "text"
        ]
    );
    let no_channel = api.post("/v1/campaigns", json!({"name": "x", "channel": "fax"}));
    assert!(invalid(&no_channel).contains_key("channel"));
    // Nothing at all: every field that is surely wrong is named, the name with them.
    let nothing = invalid(&api.post("/v1/campaigns", json!({})));
    let mut named: Vec<&String> = nothing.keys().collect();
    named.sort();
    assert_eq!(named, ["audience", "channel", "name"]);
    let missing = api.post(
        "/v1/campaigns",
        json!({"name": "x", "channel": "sms", "text": "x"}),
    );
    assert!(invalid(&missing).contains_key("audience"));
    let too_long = api.post(
        "/v1/campaigns",
        json!({"name": "x", "channel": "sms", "audience": {"all": true},
               "text": "{{ contact.name }}".to_owned() + &"é".repeat(1600)}),
    );
    assert!(
        invalid(&too_long)["text"]
            .as_str()
            .unwrap()
            .contains("segments")
    );
    let unknown_field = api.post("/v1/campaigns", json!({"name": "x", "colour": "red"}));
    assert_eq!(unknown_field.status, 422, "{}", unknown_field.text());
    assert_eq!(count(&server, "SELECT count(*) FROM campaigns"), 1);
}

#[test]
fn the_audience_names_only_the_callers_groups() {
    let server = TestServer::start();
    let owner = setup(&server);
    let live = caller(&server, &owner, "live");
    let test = caller(&server, &owner, "test");
    let other = second_tenant(&owner, "other@example.com");
    let theirs = created(other.post("/v1/groups", &json!({"name": "Theirs"})));
    let test_group = created(test.post("/v1/groups", json!({"name": "Test"})));
    let ours = created(live.post("/v1/groups", json!({"name": "Ours"})));

    for foreign in [
        &theirs["id"],
        &test_group["id"],
        &json!("grp_nope"),
        &json!("nope"),
    ] {
        let refused = live.post(
            "/v1/campaigns",
            json!({"name": "x", "channel": "sms", "text": "Hi",
                   "audience": {"groups": [ours["id"], foreign]}}),
        );
        let message = invalid(&refused)["audience.groups"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(foreign.as_str().unwrap()), "{message}");
        assert!(!message.contains(ours["id"].as_str().unwrap()), "{message}");
    }
    // Segments: the caller's saved ones, whose rules still hold.
    created(live.post(
        "/v1/contact-fields",
        json!({"key": "tier", "label": "Tier", "type": "text"}),
    ));
    let french = created(live.post(
        "/v1/segments",
        json!({"name": "French", "rules": {"all": [{"field": "language", "op": "eq", "value": "fr"}]}}),
    ));
    let gold = created(live.post(
        "/v1/segments",
        json!({"name": "Gold", "rules": {"all": [{"field": "custom.tier", "op": "eq", "value": "gold"}]}}),
    ));
    let test_segment = created(test.post(
        "/v1/segments",
        json!({"name": "T", "rules": {"all": [{"field": "language", "op": "eq", "value": "fr"}]}}),
    ));
    let fields = live.get("/v1/contact-fields").json();
    let tier = fields["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        live.delete(&format!("/v1/contact-fields/{tier}")).status,
        204
    );
    for unusable in [&gold["id"], &test_segment["id"], &json!("seg_x")] {
        let refused = live.post(
            "/v1/campaigns",
            json!({"name": "x", "channel": "sms", "text": "Hi",
                   "audience": {"groups": [ours["id"]], "segments": [french["id"], unusable]}}),
        );
        let message = invalid(&refused)["audience.segments"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(unusable.as_str().unwrap()), "{message}");
        assert!(
            !message.contains(french["id"].as_str().unwrap()),
            "{message}"
        );
    }
    let mixed = created(live.post(
        "/v1/campaigns",
        json!({"name": "x", "channel": "sms", "text": "Hi",
               "audience": {"groups": [ours["id"]], "segments": [french["id"]]}}),
    ));
    assert_eq!(
        mixed["audience"],
        json!({"groups": [ours["id"]], "segments": [french["id"]]})
    );
    let empty = live.post(
        "/v1/campaigns",
        json!({"name": "x", "channel": "sms", "text": "Hi", "audience": {}}),
    );
    assert!(invalid(&empty).contains_key("audience"));
    // The same group twice is kept once.
    let twice = created(live.post(
        "/v1/campaigns",
        json!({"name": "x", "channel": "sms", "text": "Hi",
               "audience": {"groups": [ours["id"], ours["id"]]}}),
    ));
    assert_eq!(twice["audience"], json!({"groups": [ours["id"]]}));
    assert_eq!(count(&server, "SELECT count(*) FROM campaigns"), 2);
}

#[test]
fn campaigns_are_walled_by_workspace_and_mode_and_scope() {
    let server = TestServer::start();
    let owner = setup(&server);
    let live = caller(&server, &owner, "live");
    let test = caller(&server, &owner, "test");
    let draft = created(live.post(
        "/v1/campaigns",
        json!({"name": "x", "channel": "sms", "text": "Hi", "audience": {"all": true}}),
    ));
    let path = format!("/v1/campaigns/{}", draft["id"].as_str().unwrap());
    let other = second_tenant(&owner, "other@example.com");
    for response in [
        test.get(&path),
        test.patch(&path, json!({"name": "y"})),
        test.delete(&path),
        test.post(&format!("{path}/duplicate"), json!({})),
        test.post(&format!("{path}/preview"), json!({})),
        other.get(&path),
        other.patch(&path, &json!({"name": "y"})),
        other.delete(&path),
        other.post(&format!("{path}/duplicate"), &json!({})),
    ] {
        response.assert_error(404, "not_found");
    }
    assert!(
        test.get("/v1/campaigns").json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        owner.get("/v1/campaigns").json()["data"][0]["id"],
        draft["id"],
        "a session sees live"
    );
    assert_eq!(live.get(&path).json()["name"], "x", "unchanged");

    let (_, contacts_only) = create_key(&owner, &["contacts:read"], "live");
    let reader = Caller {
        server: &server,
        key: contacts_only,
    };
    reader
        .get("/v1/campaigns")
        .assert_error(403, "insufficient_scope");
    let (_, read_only) = create_key(&owner, &["campaigns:read"], "live");
    let reader = Caller {
        server: &server,
        key: read_only,
    };
    assert_eq!(reader.get(&path).status, 200);
    reader
        .patch(&path, json!({"name": "y"}))
        .assert_error(403, "insufficient_scope");
}

#[test]
fn a_preview_renders_for_a_contact_escaping_only_html() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    created(api.post(
        "/v1/contact-fields",
        json!({"key": "city", "label": "City", "type": "text"}),
    ));
    let contact = created(api.post(
        "/v1/contacts",
        json!({"name": "Zoë <Ngo>", "email": "zoe@example.com", "phone": "677 12 34 99",
               "language": "fr", "custom": {"city": "Douala & Yaoundé"}}),
    ));
    let sms = created(api.post(
        "/v1/campaigns",
        json!({"name": "s", "channel": "sms", "audience": {"all": true}, "opt_out_line": true,
               "text": "Bonjour {{ contact.first_name }} de {{ contact.custom.city | default(\"chez vous\") }}"}),
    ));
    let path = format!("/v1/campaigns/{}/preview", sms["id"].as_str().unwrap());
    let preview = api.post(&path, json!({"contact_id": contact["id"]}));
    assert_eq!(preview.status, 200, "{}", preview.text());
    let preview = preview.json();
    // The link stands in for the contact's real one at its length: no working token, but the
    // segments the message will have — two in UCS-2 here, as the estimate counts them with real
    // links (the bare `/u/preview` of before said one).
    let text = preview["text"].as_str().unwrap();
    let prefix = format!(
        "Bonjour Zoë de Douala & Yaoundé\nSTOP : {}/u/preview-0",
        server.config.public_url
    );
    assert!(text.starts_with(&prefix), "{text}");
    assert!(text[prefix.len()..].bytes().all(|b| b == b'0'), "{text}");
    assert_eq!(preview["encoding"], "ucs2", "ë is not GSM-7");
    assert_eq!(preview["non_gsm_characters"], json!(["ë"]));
    assert_eq!(preview["segments"], 2);
    assert_eq!(preview["contact_id"], contact["id"]);
    let estimate = api.call(
        "POST",
        &format!("/v1/campaigns/{}/estimate", sms["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(estimate.status, 200, "{}", estimate.text());
    assert_eq!(
        estimate.json()["segments"],
        json!([{"segments": 2, "recipients": 1}])
    );

    // Without a contact: the sample contact, whose city is absent, so `default` speaks.
    let sample = api.call("POST", &path, None).json();
    assert!(
        sample["text"]
            .as_str()
            .unwrap()
            .starts_with("Bonjour Ada de chez vous\nSTOP: "),
        "{sample}"
    );

    let email = created(api.post(
        "/v1/campaigns",
        json!({"name": "e", "channel": "email", "audience": {"all": true},
               "subject": "Pour {{ contact.name }}", "html": "<p>{{ contact.name }}</p>",
               "text": "{{ contact.name }}"}),
    ));
    let path = format!("/v1/campaigns/{}/preview", email["id"].as_str().unwrap());
    let preview = api.post(&path, json!({"contact_id": contact["id"]})).json();
    assert_eq!(preview["subject"], "Pour Zoë <Ngo>");
    assert_eq!(preview["html"], "<p>Zoë &lt;Ngo&gt;</p>");
    assert_eq!(preview["text"], "Zoë <Ngo>");
    assert_eq!(preview["segments"], Value::Null);

    // Someone else's contact, a malformed id: 422 on contact_id.
    let other = second_tenant(&owner, "other@example.com");
    let theirs = created(other.post(
        "/v1/contacts",
        &json!({"name": "T", "email": "t@example.com"}),
    ));
    for id in [theirs["id"].clone(), json!("con_nope"), json!(12)] {
        let refused = api.post(&path, json!({"contact_id": id}));
        assert_eq!(refused.status, 422, "{id}: {}", refused.text());
    }
}
