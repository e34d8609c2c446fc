//! The activity log (docs/API.md, "Activity"): what is recorded, by whom, from where; nothing
//! for a change that did not happen; redaction; filters and pages; who may read which log; the
//! operator's commands; the retention sweep.

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::auth_fixtures::{
    Console, OWNER_EMAIL, add_member, assert_bad_limits_are_422, bearer, count, create_key,
    encode_query_value, second_tenant, setup, try_login, walk_pages,
};
use crate::harness::{TestResponse, TestServer};

/// The console's workspace log (every page), newest first.
fn log(console: &Console<'_>, query: &str) -> Vec<Value> {
    walk_pages(console, &format!("/v1/activity{query}"), 100)
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect()
}

/// The newest entry of `action` in the console's log.
fn newest(console: &Console<'_>, action: &str) -> Value {
    log(console, &format!("?action={action}"))
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {action} entry"))
}

/// Every stored row, every column, as one text: what a redaction check greps.
fn stored_text(server: &TestServer) -> String {
    let db = server.db();
    let mut statement = db
        .prepare(
            "SELECT coalesce(workspace_id, '') || ' ' || coalesce(mode, '') || ' ' || actor_type
                    || ' ' || coalesce(actor_id, '') || ' ' || action || ' '
                    || coalesce(target_id, '') || ' ' || details || ' ' || coalesce(ip, '')
                    || ' ' || coalesce(request_id, '') || ' ' || created_at
               FROM activity",
        )
        .unwrap();
    let rows: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

fn request_id(response: &TestResponse) -> String {
    response.header("X-Request-Id").unwrap().to_owned()
}

#[test]
fn actions_are_recorded_with_their_actor_target_ip_and_request_id() {
    let server = TestServer::start();
    let owner = setup(&server);
    let set_up = newest(&owner, "instance.set_up");
    assert_eq!(
        set_up["actor"],
        json!({"type": "user", "id": owner.user_id})
    );
    assert_eq!(set_up["workspace_id"], owner.workspace_id());
    assert_eq!(set_up["created_at"], crate::auth_fixtures::EPOCH);

    let created = owner.post(
        "/v1/api-keys",
        &json!({"name": "ci", "scopes": ["messages:send"], "mode": "live"}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let key_id = created.json()["id"].as_str().unwrap().to_owned();
    let entry = newest(&owner, "api_key.created");
    assert_eq!(entry["actor"], json!({"type": "user", "id": owner.user_id}));
    assert_eq!(entry["target_id"], key_id.as_str());
    assert_eq!(entry["workspace_id"], owner.workspace_id());
    assert_eq!(entry["mode"], "live");
    assert_eq!(entry["ip"], "127.0.0.1");
    assert_eq!(entry["request_id"], request_id(&created).as_str());
    assert_eq!(
        entry["details"],
        json!({"name": "ci", "scopes": ["messages:send"]})
    );

    let rotated = owner.post(&format!("/v1/api-keys/{key_id}/rotate"), &json!({}));
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    let new_id = rotated.json()["api_key"]["id"].as_str().unwrap().to_owned();
    let entry = newest(&owner, "api_key.rotated");
    assert_eq!(entry["target_id"], key_id.as_str());
    assert_eq!(entry["details"]["replaced_by"], new_id.as_str());
    let revoked = owner.delete(&format!("/v1/api-keys/{new_id}"));
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(
        newest(&owner, "api_key.revoked")["request_id"],
        request_id(&revoked).as_str()
    );

    // Members: invited, joined (by the new user), role changed, removed.
    let member = add_member(&owner, "mia@example.com", "member");
    let joined = newest(&owner, "member.joined");
    assert_eq!(joined["actor"]["id"], member.user_id.as_str());
    assert_eq!(joined["target_id"], member.user_id.as_str());
    let path = format!("/v1/workspace/members/{}", member.user_id);
    assert_eq!(owner.patch(&path, &json!({"role": "admin"})).status, 200);
    assert_eq!(
        newest(&owner, "member.role_changed")["details"],
        json!({"role": "admin"})
    );
    assert_eq!(owner.delete(&path).status, 204);
    assert_eq!(
        newest(&owner, "member.removed")["target_id"],
        member.user_id.as_str()
    );

    // Signing out, in, and the mode switch.
    let mode = owner.request("PUT", "/v1/auth/mode", Some(&json!({"mode": "test"})));
    assert_eq!(mode.status, 200, "{}", mode.text());
    assert_eq!(
        newest(&owner, "session.mode_switched")["details"],
        json!({"mode": "test"})
    );
    assert_eq!(owner.request("POST", "/v1/auth/logout", None).status, 204);
    let again = crate::auth_fixtures::login(&server, OWNER_EMAIL, crate::auth_fixtures::PASSWORD);
    let signed_in = newest(&again, "session.signed_in");
    assert_eq!(signed_in["actor"]["id"], again.user_id.as_str());
    let entries = log(&again, "");
    let every = actions(&entries);
    for action in [
        "instance.set_up",
        "api_key.created",
        "api_key.rotated",
        "api_key.revoked",
        "member.invited",
        "member.joined",
        "member.role_changed",
        "member.removed",
        "session.mode_switched",
        "session.signed_out",
        "session.signed_in",
    ] {
        assert!(every.contains(&action), "{action} missing from {every:?}");
    }
}

#[test]
fn a_change_that_fails_records_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (key_id, _) = create_key(&owner, &["messages:send"], "live");
    assert_eq!(owner.delete(&format!("/v1/api-keys/{key_id}")).status, 200);
    let before = count(&server, "SELECT count(*) FROM activity");
    // Refused changes: a revoked key cannot be rotated; a bad body changes nothing.
    owner
        .post(&format!("/v1/api-keys/{key_id}/rotate"), &json!({}))
        .assert_error(409, "conflict");
    owner
        .post(
            "/v1/api-keys",
            &json!({"name": "", "scopes": [], "mode": "live"}),
        )
        .assert_error(422, "validation_failed");
    owner
        .patch(
            &format!("/v1/workspace/members/{}", owner.user_id),
            &json!({"role": "member"}),
        )
        .assert_error(409, "conflict");
    assert_eq!(count(&server, "SELECT count(*) FROM activity"), before);

    // An entry recorded inside a transaction that then fails goes with it.
    let app = server.app();
    let failed: Result<(), _> = app.db.write(|conn| {
        crier::activity::record(
            conn,
            &app.ids,
            &crier::activity::Actor::operator(),
            crier::activity::Event::new(crier::activity::Action::PlanChanged),
            app.clock.now(),
        )?;
        Err(crier::error::AppError::Conflict("rolled back".to_owned()))
    });
    assert!(failed.is_err());
    assert_eq!(count(&server, "SELECT count(*) FROM activity"), before);
}

#[test]
fn stored_entries_never_hold_an_email_a_secret_or_a_password_in_clear() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:send"], "live");
    let invitation = crate::auth_fixtures::invite(&owner, "secret.person@example.org", "member");
    let token = invitation["token"].as_str().unwrap().to_owned();
    try_login(&server, "someone.else@example.net", "wrong password")
        .assert_error(401, "invalid_credentials");
    // A second later, so the newest-first order is known.
    server.clock.advance(chrono::Duration::seconds(1));
    try_login(&server, OWNER_EMAIL, "not the password").assert_error(401, "invalid_credentials");

    let stored = stored_text(&server);
    for secret in [
        key.as_str(),
        token.as_str(),
        "secret.person",
        "someone.else",
        OWNER_EMAIL,
        "wrong password",
        "not the password",
        crate::auth_fixtures::PASSWORD,
    ] {
        assert!(!stored.contains(secret), "{secret:?} is stored: {stored}");
    }
    let invited = newest(&owner, "member.invited");
    assert_eq!(
        invited["details"],
        json!({"email": "s•••@example.org", "role": "member"})
    );
    // Failed sign-ins are nobody's workspace's: only the instance admin sees them.
    let failures = walk_pages(
        &owner,
        "/v1/admin/activity?action=session.sign_in_failed",
        100,
    );
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(
        failures[0]["actor"],
        json!({"type": "anonymous", "id": null})
    );
    assert_eq!(failures[0]["target_id"], owner.user_id.as_str());
    assert_eq!(failures[0]["details"], json!({"email": "o•••@example.com"}));
    assert_eq!(failures[1]["target_id"], Value::Null);
    assert_eq!(failures[1]["workspace_id"], Value::Null);
    assert!(log(&owner, "?action=session.sign_in_failed").is_empty());
}

#[test]
fn filters_narrow_and_pages_walk_the_log() {
    let server = TestServer::start();
    let owner = setup(&server);
    let mut keys = Vec::new();
    for _ in 0..5 {
        server.clock.advance(chrono::Duration::minutes(1));
        keys.push(create_key(&owner, &["messages:send"], "live").0);
    }
    let all = log(&owner, "");
    // Newest first, and pages of 2 give the same entries as one page.
    let ids: Vec<&str> = all
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    let paged = walk_pages(&owner, "/v1/activity", 2);
    assert_eq!(paged, all);

    let created = log(&owner, "?action=api_key.created");
    assert_eq!(created.len(), 5);
    let targets: Vec<&str> = created
        .iter()
        .rev()
        .map(|entry| entry["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(targets, keys.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(log(&owner, &format!("?target_id={}", keys[2])).len(), 1);
    assert_eq!(
        log(&owner, &format!("?actor_id={}", owner.user_id)).len(),
        all.len()
    );
    assert_eq!(log(&owner, "?actor_type=user").len(), all.len());
    assert!(log(&owner, "?actor_type=operator").is_empty());

    // A time range: created_from inclusive, created_to exclusive.
    let second = created[3]["created_at"].as_str().unwrap().to_owned();
    let fourth = created[1]["created_at"].as_str().unwrap().to_owned();
    let range = log(
        &owner,
        &format!(
            "?action=api_key.created&created_from={}&created_to={}",
            encode_query_value(&second),
            encode_query_value(&fourth)
        ),
    );
    assert_eq!(
        range
            .iter()
            .map(|entry| entry["target_id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![keys[2].as_str(), keys[1].as_str()]
    );

    // Bad filters are 422 naming each field.
    let envelope = owner
        .get("/v1/activity?action=api_key.eaten&actor_type=robot&created_from=yesterday")
        .assert_error(422, "validation_failed");
    let fields = &envelope["error"]["details"]["fields"];
    for field in ["action", "actor_type", "created_from"] {
        assert!(fields[field].is_string(), "{field}: {envelope}");
    }
    assert_bad_limits_are_422(&owner, "/v1/activity");
}

#[test]
fn only_owners_admins_and_keys_with_the_scope_read_the_log_of_their_own_workspace_and_mode() {
    let server = TestServer::start();
    let owner = setup(&server);
    let member = add_member(&owner, "mia@example.com", "member");
    member.get("/v1/activity").assert_error(403, "forbidden");
    let admin = add_member(&owner, "ada@example.com", "admin");
    assert_eq!(admin.get("/v1/activity").status, 200);
    server
        .get("/v1/activity")
        .assert_error(401, "unauthenticated");

    let (_, without) = create_key(&owner, &["messages:read"], "live");
    let refused = bearer(&server, &without, "GET", "/v1/activity", None);
    let envelope = refused.assert_error(403, "insufficient_scope");
    assert_eq!(
        envelope["error"]["details"]["missing_scopes"],
        json!(["activity:read"])
    );
    // A test key sees the test world's entries and those of both, never the live world's.
    let (live_key_id, _) = create_key(&owner, &["messages:send"], "live");
    let (test_key_id, test_key) = create_key(&owner, &["activity:read"], "test");
    let response = bearer(&server, &test_key, "GET", "/v1/activity?limit=100", None);
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = response.json()["data"].as_array().unwrap().clone();
    let targets: Vec<&str> = seen
        .iter()
        .filter_map(|entry| entry["target_id"].as_str())
        .collect();
    assert!(targets.contains(&test_key_id.as_str()), "{seen:?}");
    assert!(!targets.contains(&live_key_id.as_str()), "{seen:?}");
    assert!(seen.iter().all(|entry| entry["mode"] != "live"), "{seen:?}");
    assert!(actions(&seen).contains(&"member.joined"));

    // Another workspace's log is never visible, either way.
    let other = second_tenant(&owner, "gus@example.com");
    let (other_key, _) = create_key(&other, &["messages:send"], "live");
    let theirs = log(&other, "");
    assert!(!theirs.is_empty());
    assert!(
        theirs
            .iter()
            .all(|entry| entry["workspace_id"] == other.workspace_id()),
        "{theirs:?}"
    );
    let ours = log(&owner, "");
    assert!(
        ours.iter()
            .all(|entry| entry["workspace_id"] == owner.workspace_id()),
        "{ours:?}"
    );
    assert!(
        ours.iter()
            .all(|entry| entry["target_id"] != other_key.as_str())
    );
}

#[test]
fn the_instance_admin_sees_every_workspace_and_no_one_else_does() {
    let server = TestServer::start();
    let owner = setup(&server);
    let other = second_tenant(&owner, "gus@example.com");
    let (other_key, _) = create_key(&other, &["messages:send"], "test");
    let (own_key, _) = create_key(&owner, &["messages:send"], "live");

    let every = walk_pages(&owner, "/v1/admin/activity", 3);
    let targets: Vec<&str> = every
        .iter()
        .filter_map(|entry| entry["target_id"].as_str())
        .collect();
    assert!(targets.contains(&other_key.as_str()) && targets.contains(&own_key.as_str()));
    let narrowed = walk_pages(
        &owner,
        &format!("/v1/admin/activity?workspace_id={}", other.workspace_id()),
        100,
    );
    assert!(!narrowed.is_empty());
    assert!(
        narrowed
            .iter()
            .all(|entry| entry["workspace_id"] == other.workspace_id())
    );
    owner
        .get("/v1/admin/activity?workspace_id=nope")
        .assert_error(422, "validation_failed");
    assert_bad_limits_are_422(&owner, "/v1/admin/activity");

    other
        .get("/v1/admin/activity")
        .assert_error(403, "forbidden");
    let (_, key) = create_key(&owner, &["activity:read"], "live");
    bearer(&server, &key, "GET", "/v1/admin/activity", None).assert_error(403, "forbidden");

    // The instance admin's own decisions are logged in the workspace they touch.
    let adjusted = owner.post(
        &format!(
            "/v1/admin/workspaces/{}/wallet-adjustments",
            other.workspace_id()
        ),
        &json!({"amount_minor": 500, "reason": "goodwill"}),
    );
    assert_eq!(adjusted.status, 201, "{}", adjusted.text());
    let entry = newest(&other, "wallet.adjusted");
    assert_eq!(entry["actor"]["id"], owner.user_id.as_str());
    assert_eq!(
        entry["details"],
        json!({"amount_minor": 500, "reason": "goodwill"})
    );
    let plan = owner.request(
        "PUT",
        &format!("/v1/admin/workspaces/{}/plan", other.workspace_id()),
        Some(&json!({"plan_code": "growth"})),
    );
    assert_eq!(plan.status, 200, "{}", plan.text());
    let entry = newest(&other, "plan.changed");
    assert_eq!(entry["details"]["plan_code"], "growth");
    assert_eq!(entry["target_id"], other.workspace_id());
}

#[test]
fn the_janitor_deletes_entries_older_than_the_retention() {
    let server = TestServer::start_with(
        // Days in production; two hours here, within a console session's life.
        |config| config.activity_retention = std::time::Duration::from_secs(2 * 3600),
        crier::web::router::Router::standard(),
    );
    let owner = setup(&server);
    server.clock.advance(chrono::Duration::hours(1));
    let (kept, _) = create_key(&owner, &["messages:send"], "live");
    server
        .clock
        .advance(chrono::Duration::hours(1) + chrono::Duration::seconds(1));
    crier::janitor::sweep(server.app()).unwrap();
    let left = log(&owner, "");
    assert!(
        !actions(&left).contains(&"instance.set_up"),
        "the setup entry is older than 2 hours: {left:?}"
    );
    assert!(left.iter().any(|entry| entry["target_id"] == kept.as_str()));
}

/// actor_type, actor_id, action, ip, workspace_id, details.
type OperatorRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
);

#[test]
fn operator_commands_are_recorded_as_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = crate::process::crier()
            .args(args)
            .env("CRIER_PASSWORD_ITERATIONS", "100000")
            .arg("--data-dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let user = run(
        &[
            "admin",
            "create-user",
            "--email",
            "op@example.com",
            "--workspace",
            "Ops",
            "--password-stdin",
            "--json",
        ],
        "a long enough password\n",
    );
    let workspace = user["workspace_id"].as_str().unwrap().to_owned();
    run(
        &[
            "admin",
            "create-api-key",
            "--workspace",
            &workspace,
            "--name",
            "deploy",
            "--scopes",
            "messages:send",
            "--json",
        ],
        "",
    );
    run(
        &[
            "admin",
            "adjust-wallet",
            "--workspace",
            "Ops",
            "--amount-minor",
            "700",
            "--reason",
            "opening balance",
            "--json",
        ],
        "",
    );
    let db = rusqlite::Connection::open(dir.path().join("crier.db")).unwrap();
    let rows: Vec<OperatorRow> = db
        .prepare(
            "SELECT actor_type, actor_id, action, ip, workspace_id, details
               FROM activity ORDER BY id",
        )
        .unwrap()
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| (row.0.as_str(), row.2.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("operator", "user.created"),
            ("operator", "api_key.created"),
            ("operator", "wallet.adjusted"),
        ]
    );
    for row in &rows {
        assert_eq!((&row.1, &row.3), (&None, &None), "{row:?}");
        assert_eq!(row.4.as_deref(), Some(workspace.as_str()));
    }
    assert!(!rows[0].5.contains("op@example.com"), "{}", rows[0].5);
}

#[test]
fn contact_work_is_recorded_by_id_never_by_phone_email_or_body() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (key_id, key) = create_key(
        &owner,
        &["contacts:read", "contacts:write", "campaigns:write"],
        "live",
    );
    let call = |method: &str, path: &str, body: Option<&Value>| {
        let response = bearer(&server, &key, method, path, body);
        assert!(
            response.status < 300,
            "{method} {path}: {} {}",
            response.status,
            response.text()
        );
        response
    };
    let contact = call(
        "POST",
        "/v1/contacts",
        Some(
            &json!({"name": "Zed Zebra", "phone": "+237 677 12 34 56", "email": "zed@zoo.example"}),
        ),
    )
    .json();
    let contact_id = contact["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/contacts/{contact_id}");
    call("PATCH", &path, Some(&json!({"phone": "+237 699 98 76 54"})));
    let group = call("POST", "/v1/groups", Some(&json!({"name": "VIP"}))).json();
    let group_id = group["id"].as_str().unwrap().to_owned();
    call(
        "POST",
        &format!("/v1/groups/{group_id}/contacts"),
        Some(&json!({"contact_ids": [contact_id]})),
    );
    let campaign = call(
        "POST",
        "/v1/campaigns",
        Some(&json!({
            "name": "Secret sale",
            "channel": "sms",
            "text": "The body nobody may log",
            "audience": {"groups": [group_id]},
        })),
    )
    .json();
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();
    let exported = call("GET", "/v1/contacts/export", None);
    assert!(exported.text().contains("Zed Zebra"));
    call("POST", &format!("{path}/erase"), None);

    let entries = log(&owner, &format!("?actor_id={key_id}"));
    // All at the test clock's one instant: ids order them to the millisecond only.
    let mut seen = actions(&entries);
    seen.sort_unstable();
    let mut expected = vec![
        "contact.created",
        "contact.updated",
        "group.created",
        "group.members_added",
        "campaign.created",
        "contacts.exported",
        "contact.erased",
    ];
    expected.sort_unstable();
    assert_eq!(seen, expected);
    assert!(
        entries
            .iter()
            .all(|entry| entry["actor"]["type"] == "api_key" && entry["mode"] == "live")
    );
    assert_eq!(
        newest(&owner, "campaign.created")["target_id"],
        campaign_id.as_str()
    );
    assert_eq!(
        newest(&owner, "contact.erased")["target_id"],
        contact_id.as_str()
    );
    let stored = stored_text(&server);
    for personal in [
        "677 12", "67712", "699 98", "69998", "zed@", "Zed", "Zebra", "The body",
    ] {
        assert!(
            !stored.contains(personal),
            "{personal:?} is stored: {stored}"
        );
    }
}

#[test]
fn a_payment_started_is_recorded_with_its_session_and_amount() {
    let fakes = crate::payments::Fakes::start();
    let server = crate::payments::start(
        &fakes,
        &[crier::payments::provider::ProviderName::Flutterwave],
    );
    let owner = setup(&server);
    let created = crate::payments::topup(&owner, 5000);
    let entry = newest(&owner, "payment.started");
    assert_eq!(entry["target_id"], created["id"]);
    assert_eq!(entry["mode"], "live");
    assert_eq!(entry["actor"]["id"], owner.user_id.as_str());
    assert_eq!(
        entry["details"],
        json!({"kind": "topup", "amount_minor": 5000, "currency": "XAF"})
    );
    assert!(!stored_text(&server).contains(OWNER_EMAIL));
}
