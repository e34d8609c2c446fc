//! API keys: the format, shown once and never stored, Bearer authentication, malformed, revoked
//! and expired keys, rotation with a grace period, and who may manage keys.
//!
//! No product endpoint requires a scope yet (GET /v1/workspace takes any key), so the scope check
//! is exercised through a test-only route that asks for `messages:send`.

use rusqlite::types::ValueRef;
use serde_json::{Value, json};

use crate::auth_fixtures::{Console, EPOCH, add_member, bearer, count, create_key, setup};
use crate::harness::{TestServer, logs};
use crier::api_keys::format::Scope;
use crier::app::App;
use crier::error::AppError;
use crier::web::auth::authenticate_request;
use crier::web::request::Request;
use crier::web::response::ApiResponse;
use crier::web::router::{Method, Route, Router};

/// A stand-in for the first scoped endpoints: answers 200 to a caller allowed `messages:send`.
fn needs_messages_send(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesSend)?;
    ApiResponse::json(200, &json!({ "workspace_id": scope.id() }))
}

#[test]
fn revoking_a_replacement_also_revokes_the_key_it_replaced() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (old_id, old_key) = create_key(&owner, &["messages:send"], "live");
    let rotated = owner.post(
        &format!("/v1/api-keys/{old_id}/rotate"),
        &json!({"grace_seconds": 3600}),
    );
    assert_eq!(rotated.status, 201, "{}", rotated.text());
    let new_id = rotated.json()["api_key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        workspace_with(&server, &old_key).status,
        200,
        "the old key works during grace"
    );

    let revoked = owner.request("DELETE", &format!("/v1/api-keys/{new_id}"), None);
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    workspace_with(&server, &old_key).assert_error(401, "api_key_revoked");
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_logged_with_the_workspace() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:read"], "test");
    let header = format!("bearer {key}");
    let response = server.request(
        "GET",
        "/v1/workspace",
        &[("Authorization", header.as_str())],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let request_id = response.header("X-Request-Id").unwrap();
    let line = logs::for_request(request_id)
        .into_iter()
        .find(|line| line.message == "request")
        .unwrap();
    assert_eq!(line.fields["workspace"], owner.workspace_id());
    assert!(
        !format!("{line:?}").contains(&key),
        "the key reached the log"
    );
}

/// Two `Authorization` headers (a test key and a live key, or the same one twice) are refused:
/// which one a proxy or crier would read could differ, so neither is.
#[test]
fn two_authorization_headers_are_refused() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, test_key) = create_key(&owner, &["messages:read"], "test");
    let (_, live_key) = create_key(&owner, &["messages:read"], "live");
    let (test, live) = (format!("Bearer {test_key}"), format!("Bearer {live_key}"));
    for pair in [[&test, &live], [&live, &test], [&test, &test]] {
        let response = server.request(
            "GET",
            "/v1/messages",
            &[
                ("Authorization", pair[0].as_str()),
                ("Authorization", pair[1].as_str()),
            ],
            b"",
        );
        let envelope = response.assert_error(400, "bad_request");
        assert!(
            envelope["error"]["message"]
                .as_str()
                .unwrap()
                .contains("one Authorization header"),
            "{envelope}"
        );
    }
    // One of them alone still works.
    assert_eq!(
        bearer(&server, &live_key, "GET", "/v1/messages", None).status,
        200
    );
}

#[test]
fn a_key_without_the_needed_scope_is_403_insufficient_scope() {
    let router = Router::standard().with_route(Route::new(
        Method::Post,
        "/test/needs-messages-send",
        needs_messages_send,
    ));
    let server = TestServer::start_with(|_| {}, router);
    let owner = setup(&server);
    let (_, reader) = create_key(&owner, &["messages:read", "billing:read"], "live");
    let (_, sender) = create_key(&owner, &["messages:send"], "test");

    let refused = bearer(&server, &reader, "POST", "/test/needs-messages-send", None);
    let envelope = refused.assert_error(403, "insufficient_scope");
    assert_eq!(
        envelope["error"]["details"]["missing_scopes"],
        json!(["messages:send"])
    );

    let allowed = bearer(&server, &sender, "POST", "/test/needs-messages-send", None);
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.json()["workspace_id"], owner.workspace_id());

    // A member's console session may send (docs/rules/access.md, "Roles").
    let member = add_member(&owner, "member@example.com", "member");
    assert_eq!(
        member.post("/test/needs-messages-send", &json!({})).status,
        200
    );
}

const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn create(console: &Console<'_>, body: &Value) -> Value {
    let response = console.post("/v1/api-keys", body);
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

/// GET /v1/workspace with the key: the status (and the body when it worked).
fn workspace_with(server: &TestServer, key: &str) -> crate::harness::TestResponse {
    bearer(server, key, "GET", "/v1/workspace", None)
}

/// The workspace still has exactly this one key, neither revoked nor rotated, and it works.
fn assert_only_key_untouched(server: &TestServer, owner: &Console<'_>, id: &str, key: &str) {
    assert_eq!(count(server, "SELECT count(*) FROM api_keys"), 1);
    let view = key_view(owner, id);
    assert!(view["revoked_at"].is_null() && view["replaced_by"].is_null());
    assert_eq!(workspace_with(server, key).status, 200);
}

fn key_view(console: &Console<'_>, id: &str) -> Value {
    console
        .keys()
        .into_iter()
        .find(|key| key["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed"))
}

/// `key` with the character at `index` swapped for another base62 character.
fn flip(key: &str, index: usize) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    chars[index] = if chars[index] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

fn assert_well_formed(key: &str, prefix: &str) {
    assert_eq!(key.len(), 49, "{key}");
    let body = key.strip_prefix(prefix).unwrap_or_else(|| panic!("{key}"));
    assert_eq!(body.len(), 38);
    assert!(body.chars().all(|c| BASE62.contains(c)), "{key}");
}

#[test]
fn a_created_key_is_shown_once_in_the_documented_format() {
    let server = TestServer::start();
    let owner = setup(&server);
    let created = create(
        &owner,
        &json!({"name": "ci", "scopes": ["messages:send", "messages:read"], "mode": "live"}),
    );
    let key = created["key"].as_str().unwrap();
    assert_well_formed(key, "crier_live_");
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(created["display_prefix"], &key[..17]);
    assert_eq!(created["name"], "ci");
    assert_eq!(created["mode"], "live");
    let mut scopes: Vec<&str> = created["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["messages:read", "messages:send"]);
    assert_eq!(created["created_by"], owner.user_id.as_str());
    assert_eq!(created["created_at"], EPOCH);
    for unset in ["last_used_at", "expires_at", "revoked_at", "replaced_by"] {
        assert!(created[unset].is_null(), "{unset}: {created}");
    }

    let test = create(
        &owner,
        &json!({"name": "sandbox", "scopes": ["messages:send"], "mode": "test"}),
    );
    let test_key = test["key"].as_str().unwrap();
    assert_well_formed(test_key, "crier_test_");
    assert_eq!(test["display_prefix"], &test_key[..17]);
    assert_eq!(test["mode"], "test");
    assert_ne!(key, test_key);
}

#[test]
fn the_key_list_never_contains_the_key_and_is_newest_first() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (first_id, first_key) = create_key(&owner, &["messages:send"], "live");
    server.clock.advance(chrono::Duration::seconds(5));
    let (second_id, second_key) = create_key(&owner, &["messages:read"], "test");

    let response = owner.get("/v1/api-keys");
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    assert!(!text.contains(&first_key) && !text.contains(&second_key));
    assert!(!text.contains(&first_key[17..]) && !text.contains(&second_key[17..]));
    let list = response.json();
    assert!(list["next_cursor"].is_null());
    let data = list["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|key| key["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second_id.as_str(), first_id.as_str()]);
    for view in data {
        assert!(view.get("key").is_none(), "{view}");
    }
    assert_eq!(data[1]["display_prefix"], &first_key[..17]);
}

#[test]
fn the_database_never_contains_the_key() {
    let server = TestServer::start();
    let owner = setup(&server);
    let response = owner.post(
        "/v1/api-keys",
        &json!({"name": "ci", "scopes": ["messages:send"], "mode": "live"}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let key = response.json()["key"].as_str().unwrap().to_owned();
    // Use it too, so whatever authentication writes is in the database as well.
    assert_eq!(workspace_with(&server, &key).status, 200);

    let secret = &key[11..];
    let db = server.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(tables.iter().any(|t| t == "api_keys"));
    let mut values_seen = 0;
    for table in tables {
        let mut statement = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for column in 0..columns {
                let bytes = match row.get_ref(column).unwrap() {
                    ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
                    _ => continue,
                };
                values_seen += 1;
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{table} column {column} holds the key"
                );
            }
        }
    }
    assert!(values_seen > 0);

    // Nor does the log of the request that created it.
    let request_id = response.header("X-Request-Id").unwrap();
    for line in logs::for_request(request_id) {
        assert!(!format!("{line:?}").contains(secret), "{line:?}");
    }
}

#[test]
fn a_key_authenticates_get_workspace() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(&owner, &["messages:send"], "test");
    let response = workspace_with(&server, &key);
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["id"], owner.workspace_id());
    assert_eq!(body["name"], "Acme");
    assert_eq!(body["created_at"], EPOCH);
    assert_eq!(
        body["api_key"],
        json!({"id": id, "mode": "test", "scopes": ["messages:send"]})
    );
    assert!(body.get("role").is_none(), "{body}");
}

#[test]
fn malformed_keys_are_401_invalid_api_key() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (_, key) = create_key(&owner, &["messages:send"], "live");
    let body_part = &key[11..];
    let malformed = [
        ("truncated", key[..48].to_owned()),
        ("one character too many", format!("{key}a")),
        ("wrong prefix", format!("crier_prod_{body_part}")),
        (
            "test prefix on a live key",
            format!("crier_test_{body_part}"),
        ),
        ("no prefix", body_part.to_owned()),
        ("bad checksum", flip(&key, 48)),
        ("changed body", flip(&key, 20)),
        ("outside the alphabet", format!("{}-", &key[..48])),
    ];
    for (what, bad) in malformed {
        let response = workspace_with(&server, &bad);
        assert_eq!(response.status, 401, "{what}: {}", response.text());
        response.assert_error(401, "invalid_api_key");
    }
    // The real key was not disturbed by any of that.
    assert_eq!(workspace_with(&server, &key).status, 200);
}

#[test]
fn a_well_formed_key_of_another_instance_is_401_invalid_api_key() {
    let elsewhere = TestServer::start();
    let (_, foreign_key) = create_key(&setup(&elsewhere), &["messages:send"], "live");
    let server = TestServer::start();
    setup(&server);
    workspace_with(&server, &foreign_key).assert_error(401, "invalid_api_key");
}

#[test]
fn a_revoked_key_is_401_api_key_revoked() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(&owner, &["messages:send"], "live");
    let other = create_key(&owner, &["messages:send"], "live");
    server.clock.advance(chrono::Duration::minutes(1));
    let revoked_at = "2026-11-25T09:31:00.000Z";

    let response = owner.delete(&format!("/v1/api-keys/{id}"));
    assert_eq!(response.status, 200, "{}", response.text());
    let view = response.json();
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["revoked_at"], revoked_at);
    assert!(view.get("key").is_none());
    workspace_with(&server, &key).assert_error(401, "api_key_revoked");

    // Revoking again changes nothing, not even the time.
    server.clock.advance(chrono::Duration::minutes(1));
    let again = owner.delete(&format!("/v1/api-keys/{id}"));
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["revoked_at"], revoked_at);
    assert_eq!(key_view(&owner, &id)["revoked_at"], revoked_at);
    // Only that key.
    assert_eq!(workspace_with(&server, &other.1).status, 200);
}

#[test]
fn revoking_an_unknown_key_is_404() {
    let server = TestServer::start();
    let owner = setup(&server);
    owner
        .delete("/v1/api-keys/key_doesnotexist")
        .assert_error(404, "not_found");
}

#[test]
fn a_key_path_id_that_cannot_be_a_key_id_is_404() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(&owner, &["messages:send"], "live");
    let user_id = owner.user_id.clone();
    for bad in ["nosuchkey", "key_", user_id.as_str(), "key_a.b"] {
        owner
            .delete(&format!("/v1/api-keys/{bad}"))
            .assert_error(404, "not_found");
        owner
            .post(&format!("/v1/api-keys/{bad}/rotate"), &json!({}))
            .assert_error(404, "not_found");
    }
    assert_only_key_untouched(&server, &owner, &id, &key);
}

#[test]
fn expires_at_in_the_past_is_422_and_creates_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let envelope = owner
        .post(
            "/v1/api-keys",
            &json!({
                "name": "stale",
                "scopes": ["messages:send"],
                "mode": "live",
                "expires_at": "2026-11-25T09:29:59.000Z",
            }),
        )
        .assert_error(422, "validation_failed");
    assert!(envelope["error"]["details"]["fields"]["expires_at"].is_string());
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 0);
}

#[test]
fn a_key_expires_at_its_expires_at() {
    let server = TestServer::start();
    let owner = setup(&server);
    let created = create(
        &owner,
        &json!({
            "name": "temporary",
            "scopes": ["messages:send"],
            "mode": "live",
            "expires_at": "2026-11-25T10:30:00.000Z",
        }),
    );
    assert_eq!(created["expires_at"], "2026-11-25T10:30:00.000Z");
    let key = created["key"].as_str().unwrap();
    assert_eq!(workspace_with(&server, key).status, 200);
    server.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(workspace_with(&server, key).status, 200);
    server.clock.advance(chrono::Duration::minutes(1));
    workspace_with(&server, key).assert_error(401, "api_key_expired");
}

#[test]
fn rotation_keeps_the_old_key_working_until_the_grace_period_ends() {
    let server = TestServer::start();
    let owner = setup(&server);
    let original = create(
        &owner,
        &json!({"name": "ci", "scopes": ["messages:send"], "mode": "live"}),
    );
    let old_id = original["id"].as_str().unwrap();
    let old_key = original["key"].as_str().unwrap();

    let response = owner.post(
        &format!("/v1/api-keys/{old_id}/rotate"),
        &json!({"grace_seconds": 3600}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    let rotated = response.json();
    let new = &rotated["api_key"];
    let new_key = new["key"].as_str().unwrap();
    assert_well_formed(new_key, "crier_live_");
    assert_ne!(new_key, old_key);
    assert_ne!(new["id"], old_id);
    assert_eq!(new["name"], "ci");
    assert_eq!(new["scopes"], json!(["messages:send"]));
    assert_eq!(new["mode"], "live");
    assert_eq!(new["display_prefix"], &new_key[..17]);
    let replaced = &rotated["replaced"];
    assert_eq!(replaced["id"], old_id);
    assert_eq!(replaced["replaced_by"], new["id"]);
    assert_eq!(replaced["expires_at"], "2026-11-25T10:30:00.000Z");
    assert!(replaced["revoked_at"].is_null());
    assert!(replaced.get("key").is_none());

    assert_eq!(workspace_with(&server, old_key).status, 200);
    assert_eq!(workspace_with(&server, new_key).status, 200);
    server.clock.advance(chrono::Duration::seconds(3599));
    assert_eq!(workspace_with(&server, old_key).status, 200);
    server.clock.advance(chrono::Duration::seconds(1));
    workspace_with(&server, old_key).assert_error(401, "api_key_expired");
    let still = workspace_with(&server, new_key);
    assert_eq!(still.status, 200, "{}", still.text());
    assert_eq!(still.json()["api_key"]["id"], new["id"]);
}

#[test]
fn rotation_without_a_grace_period_expires_the_old_key_at_once() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (old_id, old_key) = create_key(&owner, &["messages:send"], "test");
    let response = owner.post(&format!("/v1/api-keys/{old_id}/rotate"), &json!({}));
    assert_eq!(response.status, 201, "{}", response.text());
    let rotated = response.json();
    assert_eq!(rotated["replaced"]["expires_at"], EPOCH);
    workspace_with(&server, &old_key).assert_error(401, "api_key_expired");
    let new_key = rotated["api_key"]["key"].as_str().unwrap();
    assert_well_formed(new_key, "crier_test_");
    assert_eq!(workspace_with(&server, new_key).status, 200);

    // The old key is expired now, so it cannot be rotated again.
    owner
        .post(&format!("/v1/api-keys/{old_id}/rotate"), &json!({}))
        .assert_error(409, "conflict");
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 2);
}

#[test]
fn rotating_a_revoked_key_is_409_and_issues_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, _) = create_key(&owner, &["messages:send"], "live");
    assert_eq!(owner.delete(&format!("/v1/api-keys/{id}")).status, 200);
    owner
        .post(
            &format!("/v1/api-keys/{id}/rotate"),
            &json!({"grace_seconds": 60}),
        )
        .assert_error(409, "conflict");
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 1);
    let view = key_view(&owner, &id);
    assert!(view["replaced_by"].is_null() && view["expires_at"].is_null());
}

#[test]
fn a_grace_period_over_seven_days_is_422_and_changes_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(&owner, &["messages:send"], "live");
    for grace in [json!(604_801), json!(-1), json!("3600")] {
        let envelope = owner
            .post(
                &format!("/v1/api-keys/{id}/rotate"),
                &json!({"grace_seconds": grace}),
            )
            .assert_error(422, "validation_failed");
        assert!(
            envelope["error"]["details"]["fields"]["grace_seconds"].is_string(),
            "{envelope}"
        );
    }
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 1);
    let view = key_view(&owner, &id);
    assert!(view["expires_at"].is_null() && view["replaced_by"].is_null());
    assert_eq!(workspace_with(&server, &key).status, 200);

    // Exactly seven days is allowed.
    let response = owner.post(
        &format!("/v1/api-keys/{id}/rotate"),
        &json!({"grace_seconds": 604_800}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(
        response.json()["replaced"]["expires_at"],
        "2026-12-02T09:30:00.000Z"
    );
}

#[test]
fn an_api_key_cannot_manage_keys() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(
        &owner,
        &[
            "messages:send",
            "messages:read",
            "contacts:read",
            "contacts:write",
            "campaigns:read",
            "campaigns:write",
            "billing:read",
            "payments:write",
        ],
        "live",
    );
    let new_key = json!({"name": "sneaky", "scopes": ["messages:send"], "mode": "live"});
    bearer(&server, &key, "POST", "/v1/api-keys", Some(&new_key)).assert_error(403, "forbidden");
    bearer(&server, &key, "GET", "/v1/api-keys", None).assert_error(403, "forbidden");
    bearer(
        &server,
        &key,
        "POST",
        &format!("/v1/api-keys/{id}/rotate"),
        Some(&json!({"grace_seconds": 0})),
    )
    .assert_error(403, "forbidden");
    bearer(&server, &key, "DELETE", &format!("/v1/api-keys/{id}"), None)
        .assert_error(403, "forbidden");

    assert_only_key_untouched(&server, &owner, &id, &key);
}

#[test]
fn unknown_scope_or_mode_is_422_and_creates_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let cases = [
        (
            "scopes",
            json!({"name": "x", "scopes": ["messages:send", "messages:delete"], "mode": "live"}),
        ),
        (
            "scopes",
            json!({"name": "x", "scopes": ["admin"], "mode": "live"}),
        ),
        (
            "mode",
            json!({"name": "x", "scopes": ["messages:send"], "mode": "prod"}),
        ),
    ];
    for (field, body) in cases {
        let envelope = owner
            .post("/v1/api-keys", &body)
            .assert_error(422, "validation_failed");
        assert!(
            envelope["error"]["details"]["fields"][field].is_string(),
            "{envelope}"
        );
    }
    owner
        .post(
            "/v1/api-keys",
            &json!({"name": "x", "scopes": [], "mode": "live", "workspace_id": "wsp_x"}),
        )
        .assert_error(422, "validation_failed");
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 0);
}

#[test]
fn a_member_cannot_create_list_rotate_or_revoke_keys() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(&owner, &["messages:send"], "live");
    let member = add_member(&owner, "member@example.com", "member");

    member
        .post(
            "/v1/api-keys",
            &json!({"name": "mine", "scopes": ["messages:send"], "mode": "live"}),
        )
        .assert_error(403, "forbidden");
    member.get("/v1/api-keys").assert_error(403, "forbidden");
    member
        .post(&format!("/v1/api-keys/{id}/rotate"), &json!({}))
        .assert_error(403, "forbidden");
    member
        .delete(&format!("/v1/api-keys/{id}"))
        .assert_error(403, "forbidden");

    assert_only_key_untouched(&server, &owner, &id, &key);
}

#[test]
fn an_admin_can_manage_keys() {
    let server = TestServer::start();
    let owner = setup(&server);
    let admin = add_member(&owner, "admin@example.com", "admin");
    let (id, key) = create_key(&admin, &["messages:send"], "live");
    assert_eq!(key_view(&owner, &id)["created_by"], admin.user_id.as_str());
    assert_eq!(workspace_with(&server, &key).status, 200);
    assert_eq!(admin.delete(&format!("/v1/api-keys/{id}")).status, 200);
    workspace_with(&server, &key).assert_error(401, "api_key_revoked");
}

#[test]
fn last_used_at_is_set_on_use_and_written_at_most_once_a_minute() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (id, key) = create_key(&owner, &["messages:send"], "live");
    assert!(key_view(&owner, &id)["last_used_at"].is_null());

    server.clock.advance(chrono::Duration::seconds(10));
    assert_eq!(workspace_with(&server, &key).status, 200);
    assert_eq!(
        key_view(&owner, &id)["last_used_at"],
        "2026-11-25T09:30:10.000Z"
    );

    server.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(workspace_with(&server, &key).status, 200);
    assert_eq!(
        key_view(&owner, &id)["last_used_at"],
        "2026-11-25T09:30:10.000Z",
        "rewritten within a minute"
    );

    server.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(workspace_with(&server, &key).status, 200);
    assert_eq!(
        key_view(&owner, &id)["last_used_at"],
        "2026-11-25T09:32:40.000Z"
    );
}

#[test]
fn the_key_list_pages_with_a_cursor() {
    let server = TestServer::start();
    let owner = setup(&server);
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(create_key(&owner, &["messages:send"], "live").0);
        server.clock.advance(chrono::Duration::seconds(1));
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut path = "/v1/api-keys?limit=2".to_owned();
    for _ in 0..3 {
        let response = owner.get(&path);
        assert_eq!(response.status, 200, "{}", response.text());
        let page = response.json();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2, "{page}");
        seen.extend(
            data.iter()
                .map(|key| key["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/api-keys?limit=2&cursor={}", encode(cursor)),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
