//! Workspaces: tenant isolation (another workspace's objects are 404 and stay as they were), the
//! role matrix, invitations, leaving, renaming, and switching between workspaces.

use serde_json::json;

use crate::auth_fixtures::{
    Console, EPOCH, PASSWORD, accept_as_new_user, add_member, assert_bad_limits_are_422, bearer,
    count, create_key, invite, login, second_tenant, setup, walk_pages,
};
use crate::harness::{TestResponse, TestServer};

fn role_of(console: &Console<'_>, user_id: &str) -> Option<String> {
    console
        .members()
        .into_iter()
        .find(|(id, _)| id == user_id)
        .map(|(_, role)| role)
}

fn set_role(console: &Console<'_>, user_id: &str, role: &str) -> TestResponse {
    console.patch(
        &format!("/v1/workspace/members/{user_id}"),
        &json!({"role": role}),
    )
}

fn remove(console: &Console<'_>, user_id: &str) -> TestResponse {
    console.delete(&format!("/v1/workspace/members/{user_id}"))
}

fn invitation_ids(console: &Console<'_>) -> Vec<String> {
    let response = console.get("/v1/workspace/invitations");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|invitation| invitation["id"].as_str().unwrap().to_owned())
        .collect()
}

fn workspace_name(console: &Console<'_>) -> String {
    let response = console.get("/v1/workspace");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["name"].as_str().unwrap().to_owned()
}

/// Accepts as the signed-in user behind `console` (cookie and CSRF token).
fn accept_with_session(console: &Console<'_>, token: &str) -> TestResponse {
    console.post("/v1/invitations/accept", &json!({"token": token}))
}

fn workspace_ids(console: &Console<'_>) -> Vec<(String, String)> {
    let response = console.get("/v1/workspaces");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert!(body["next_cursor"].is_null());
    let mut ids: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["workspace"]["id"].as_str().unwrap().to_owned(),
                entry["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ids.sort();
    ids
}

// ---- Tenant isolation -------------------------------------------------------------------------

#[test]
fn another_workspaces_keys_are_404_and_stay_untouched() {
    let server = TestServer::start();
    let a = setup(&server);
    let b = second_tenant(&a, "bea@example.com");
    let (b_key_id, b_key) = create_key(&b, &["messages:send"], "live");
    let (a_key_id, a_key) = create_key(&a, &["messages:send"], "live");

    a.delete(&format!("/v1/api-keys/{b_key_id}"))
        .assert_error(404, "not_found");
    a.post(
        &format!("/v1/api-keys/{b_key_id}/rotate"),
        &json!({"grace_seconds": 60}),
    )
    .assert_error(404, "not_found");
    assert!(a.keys().iter().all(|key| key["id"] != b_key_id.as_str()));

    // A's key answers alike for B's key and its own: nothing tells it B's key exists.
    for id in [&b_key_id, &a_key_id] {
        bearer(
            &server,
            &a_key,
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            None,
        )
        .assert_error(403, "forbidden");
    }
    let seen_by_a_key = bearer(&server, &a_key, "GET", "/v1/workspace", None);
    assert_eq!(seen_by_a_key.json()["id"], a.workspace_id());

    let b_keys = b.keys();
    assert_eq!(b_keys.len(), 1);
    assert_eq!(b_keys[0]["id"], b_key_id.as_str());
    for unset in ["revoked_at", "expires_at", "replaced_by"] {
        assert!(b_keys[0][unset].is_null(), "{unset}: {}", b_keys[0]);
    }
    let seen_by_b_key = bearer(&server, &b_key, "GET", "/v1/workspace", None);
    assert_eq!(seen_by_b_key.status, 200);
    assert_eq!(seen_by_b_key.json()["id"], b.workspace_id());
    assert_eq!(count(&server, "SELECT count(*) FROM api_keys"), 2);
}

#[test]
fn another_workspaces_members_are_404_and_stay_untouched() {
    let server = TestServer::start();
    let a = setup(&server);
    let b = second_tenant(&a, "bea@example.com");

    set_role(&a, &b.user_id, "member").assert_error(404, "not_found");
    remove(&a, &b.user_id).assert_error(404, "not_found");
    assert!(role_of(&a, &b.user_id).is_none());

    assert_eq!(b.members(), [(b.user_id.clone(), "owner".to_owned())]);
    assert_eq!(
        workspace_ids(&b),
        [(b.workspace_id().to_owned(), "owner".to_owned())]
    );
}

#[test]
fn another_workspaces_invitations_are_404_and_stay_usable() {
    let server = TestServer::start();
    let a = setup(&server);
    let b = second_tenant(&a, "bea@example.com");
    let invitation = invite(&b, "guest@example.com", "member");
    let invitation_id = invitation["id"].as_str().unwrap();

    a.delete(&format!("/v1/workspace/invitations/{invitation_id}"))
        .assert_error(404, "not_found");
    assert!(!invitation_ids(&a).contains(&invitation_id.to_owned()));
    assert_eq!(invitation_ids(&b), [invitation_id]);

    let guest = accept_as_new_user(&server, invitation["token"].as_str().unwrap(), "Guest");
    assert_eq!(guest.workspace_id(), b.workspace_id());
}

#[test]
fn a_workspace_one_does_not_belong_to_cannot_be_activated() {
    let server = TestServer::start();
    let a = setup(&server);
    let b = second_tenant(&a, "bea@example.com");

    a.request(
        "POST",
        &format!("/v1/workspaces/{}/activate", b.workspace_id()),
        None,
    )
    .assert_error(404, "not_found");
    a.request("POST", "/v1/workspaces/wsp_nosuchthing/activate", None)
        .assert_error(404, "not_found");

    let active = a.get("/v1/workspace");
    assert_eq!(active.json()["id"], a.workspace_id());
    assert_eq!(
        workspace_ids(&a),
        [(a.workspace_id().to_owned(), "owner".to_owned())]
    );
    assert_eq!(b.members(), [(b.user_id.clone(), "owner".to_owned())]);
}

// ---- Roles ------------------------------------------------------------------------------------

#[test]
fn a_member_cannot_invite_change_roles_remove_others_or_rename() {
    let server = TestServer::start();
    let owner = setup(&server);
    let admin = add_member(&owner, "admin@example.com", "admin");
    let member = add_member(&owner, "member@example.com", "member");
    let pending = invite(&owner, "pending@example.com", "member");
    let pending_id = pending["id"].as_str().unwrap();
    let invitations_before = count(&server, "SELECT count(*) FROM invitations");

    member
        .post(
            "/v1/workspace/invitations",
            &json!({"email": "friend@example.com", "role": "member"}),
        )
        .assert_error(403, "forbidden");
    member
        .delete(&format!("/v1/workspace/invitations/{pending_id}"))
        .assert_error(403, "forbidden");
    set_role(&member, &admin.user_id, "member").assert_error(403, "forbidden");
    set_role(&member, &member.user_id, "admin").assert_error(403, "forbidden");
    remove(&member, &admin.user_id).assert_error(403, "forbidden");
    remove(&member, &owner.user_id).assert_error(403, "forbidden");
    member
        .patch("/v1/workspace", &json!({"name": "Mine now"}))
        .assert_error(403, "forbidden");

    // A member may still see who is there.
    let mut members = member.members();
    members.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        members,
        [
            (admin.user_id.clone(), "admin".to_owned()),
            (member.user_id.clone(), "member".to_owned()),
            (owner.user_id.clone(), "owner".to_owned()),
        ]
    );
    assert_eq!(workspace_name(&owner), "Acme");
    assert_eq!(
        count(&server, "SELECT count(*) FROM invitations"),
        invitations_before
    );
    assert_eq!(invitation_ids(&owner), [pending_id]);
}

#[test]
fn an_admin_cannot_remove_or_demote_the_owner_or_grant_owner() {
    let server = TestServer::start();
    let owner = setup(&server);
    let admin = add_member(&owner, "admin@example.com", "admin");
    let member = add_member(&owner, "member@example.com", "member");
    let invitations_before = count(&server, "SELECT count(*) FROM invitations");

    set_role(&admin, &owner.user_id, "admin").assert_error(403, "forbidden");
    remove(&admin, &owner.user_id).assert_error(403, "forbidden");
    set_role(&admin, &member.user_id, "owner").assert_error(403, "forbidden");
    set_role(&admin, &admin.user_id, "owner").assert_error(403, "forbidden");
    admin
        .post(
            "/v1/workspace/invitations",
            &json!({"email": "boss@example.com", "role": "owner"}),
        )
        .assert_error(403, "forbidden");

    assert_eq!(role_of(&owner, &owner.user_id).as_deref(), Some("owner"));
    assert_eq!(role_of(&owner, &admin.user_id).as_deref(), Some("admin"));
    assert_eq!(role_of(&owner, &member.user_id).as_deref(), Some("member"));
    assert_eq!(
        count(&server, "SELECT count(*) FROM invitations"),
        invitations_before
    );

    // What an admin may do.
    let promoted = set_role(&admin, &member.user_id, "admin");
    assert_eq!(promoted.status, 200, "{}", promoted.text());
    assert_eq!(promoted.json()["role"], "admin");
    assert_eq!(set_role(&admin, &member.user_id, "member").status, 200);
    invite(&admin, "friend@example.com", "member");
    assert_eq!(remove(&admin, &member.user_id).status, 204);
    assert!(role_of(&owner, &member.user_id).is_none());
}

#[test]
fn the_last_owner_cannot_leave_or_be_demoted() {
    let server = TestServer::start();
    let owner = setup(&server);
    let admin = add_member(&owner, "admin@example.com", "admin");

    remove(&owner, &owner.user_id).assert_error(409, "conflict");
    set_role(&owner, &owner.user_id, "admin").assert_error(409, "conflict");
    set_role(&owner, &owner.user_id, "member").assert_error(409, "conflict");
    assert_eq!(role_of(&owner, &owner.user_id).as_deref(), Some("owner"));

    // With a second owner the first may step down; then the second is the last one.
    assert_eq!(set_role(&owner, &admin.user_id, "owner").status, 200);
    let stepped_down = set_role(&owner, &owner.user_id, "admin");
    assert_eq!(stepped_down.status, 200, "{}", stepped_down.text());
    let new_owner = admin;
    set_role(&new_owner, &new_owner.user_id, "member").assert_error(409, "conflict");
    remove(&new_owner, &new_owner.user_id).assert_error(409, "conflict");
    assert_eq!(
        role_of(&owner, &new_owner.user_id).as_deref(),
        Some("owner")
    );
    assert_eq!(role_of(&owner, &owner.user_id).as_deref(), Some("admin"));
}

#[test]
fn an_owner_can_change_roles_and_remove_members() {
    let server = TestServer::start();
    let owner = setup(&server);
    let member = add_member(&owner, "member@example.com", "member");

    let response = set_role(&owner, &member.user_id, "admin");
    assert_eq!(response.status, 200, "{}", response.text());
    let view = response.json();
    assert_eq!(view["user"]["id"], member.user_id.as_str());
    assert_eq!(view["user"]["email"], "member@example.com");
    assert_eq!(view["role"], "admin");
    assert_eq!(view["joined_at"], EPOCH);

    set_role(&owner, &member.user_id, "superuser").assert_error(422, "validation_failed");
    set_role(&owner, "usr_nosuchuser", "admin").assert_error(404, "not_found");
    assert_eq!(role_of(&owner, &member.user_id).as_deref(), Some("admin"));

    let removed = remove(&owner, &member.user_id);
    assert_eq!(removed.status, 204, "{}", removed.text());
    assert!(role_of(&owner, &member.user_id).is_none());
    // The removed user's session no longer reaches the workspace.
    member
        .get("/v1/workspace/members")
        .assert_error(404, "not_found");
}

#[test]
fn a_member_may_leave_the_workspace() {
    let server = TestServer::start();
    let owner = setup(&server);
    let member = add_member(&owner, "member@example.com", "member");
    let left = remove(&member, &member.user_id);
    assert_eq!(left.status, 204, "{}", left.text());
    assert_eq!(
        owner.members(),
        [(owner.user_id.clone(), "owner".to_owned())]
    );

    // With no workspace left, the user logs in to none.
    let response = crate::auth_fixtures::try_login(&server, "member@example.com", PASSWORD);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.json()["workspace"].is_null());
    let session = Console::from_response(&server, &response);
    session.get("/v1/workspace").assert_error(404, "not_found");
    let me = session.get("/v1/auth/me").json();
    assert!(me["workspace"].is_null() && me["role"].is_null(), "{me}");
    assert_eq!(me["memberships"], json!([]));
}

// ---- Invitations ------------------------------------------------------------------------------

#[test]
fn an_accepted_invitation_creates_the_user_and_logs_them_in() {
    let server = TestServer::start();
    let owner = setup(&server);
    let invitation = invite(&owner, "new@example.com", "admin");
    let token = invitation["token"].as_str().unwrap();
    assert!(invitation["id"].as_str().unwrap().starts_with("inv_"));
    assert_eq!(invitation["email"], "new@example.com");
    assert_eq!(invitation["role"], "admin");
    assert_eq!(invitation["created_at"], EPOCH);
    assert_eq!(invitation["expires_at"], "2026-12-02T09:30:00.000Z");
    let accept_url = invitation["accept_url"].as_str().unwrap();
    assert!(
        accept_url.starts_with("http://127.0.0.1") && accept_url.contains(token),
        "{accept_url}"
    );

    // Pending, without its token.
    let pending = owner.get("/v1/workspace/invitations");
    assert!(!pending.text().contains(token));
    assert_eq!(invitation_ids(&owner), [invitation["id"].as_str().unwrap()]);

    let body = json!({"token": token, "name": "Nia New", "password": PASSWORD});
    let response = server.post_json("/v1/invitations/accept", &body.to_string());
    assert_eq!(response.status, 200, "{}", response.text());
    let accepted = response.json();
    assert_eq!(accepted["user"]["email"], "new@example.com");
    assert_eq!(accepted["user"]["name"], "Nia New");
    assert_eq!(accepted["user"]["is_instance_admin"], false);
    assert_eq!(accepted["workspace"]["id"], owner.workspace_id());
    assert_eq!(accepted["role"], "admin");

    let newcomer = Console::from_response(&server, &response);
    let me = newcomer.get("/v1/auth/me").json();
    assert_eq!(me["workspace"]["id"], owner.workspace_id());
    assert_eq!(me["role"], "admin");
    assert_eq!(role_of(&owner, &newcomer.user_id).as_deref(), Some("admin"));
    assert!(invitation_ids(&owner).is_empty());
    login(&server, "new@example.com", PASSWORD);
}

#[test]
fn accepting_an_invitation_twice_is_404() {
    let server = TestServer::start();
    let owner = setup(&server);
    let invitation = invite(&owner, "new@example.com", "member");
    let token = invitation["token"].as_str().unwrap();
    accept_as_new_user(&server, token, "Nia New");

    let again = json!({"token": token, "name": "Someone Else", "password": "a different password"});
    server
        .post_json("/v1/invitations/accept", &again.to_string())
        .assert_error(404, "not_found");
    assert_eq!(count(&server, "SELECT count(*) FROM users"), 2);
    assert_eq!(count(&server, "SELECT count(*) FROM memberships"), 2);
    login(&server, "new@example.com", PASSWORD);
}

#[test]
fn an_unknown_revoked_or_expired_invitation_is_404_and_creates_no_user() {
    let server = TestServer::start();
    let owner = setup(&server);
    let accept = |token: &str| {
        let body = json!({"token": token, "name": "Late", "password": PASSWORD});
        server.post_json("/v1/invitations/accept", &body.to_string())
    };
    accept("no-such-invitation-token").assert_error(404, "not_found");

    let revoked = invite(&owner, "revoked@example.com", "member");
    let expiring = invite(&owner, "late@example.com", "member");
    let response = owner.delete(&format!(
        "/v1/workspace/invitations/{}",
        revoked["id"].as_str().unwrap()
    ));
    assert_eq!(response.status, 204, "{}", response.text());
    assert_eq!(invitation_ids(&owner), [expiring["id"].as_str().unwrap()]);
    accept(revoked["token"].as_str().unwrap()).assert_error(404, "not_found");

    server
        .clock
        .advance(chrono::Duration::days(7) + chrono::Duration::seconds(1));
    accept(expiring["token"].as_str().unwrap()).assert_error(404, "not_found");

    assert_eq!(count(&server, "SELECT count(*) FROM users"), 1);
    assert_eq!(count(&server, "SELECT count(*) FROM memberships"), 1);
}

/// The owner of "Acme", and Bea (owner of "Globex" only), invited to Acme as a member.
fn invited_existing_user(server: &TestServer) -> (Console<'_>, Console<'_>, String) {
    let owner = setup(server);
    let bea = second_tenant(&owner, "bea@example.com");
    let invitation = invite(&owner, "bea@example.com", "member");
    let token = invitation["token"].as_str().unwrap().to_owned();
    (owner, bea, token)
}

#[test]
fn an_invitation_for_an_existing_user_without_a_session_is_401() {
    let server = TestServer::start();
    let (_owner, bea, token) = invited_existing_user(&server);
    let anonymous = json!({"token": token, "name": "Bea", "password": PASSWORD});
    server
        .post_json("/v1/invitations/accept", &anonymous.to_string())
        .assert_error(401, "unauthenticated");
    assert_eq!(
        workspace_ids(&bea),
        [(bea.workspace_id().to_owned(), "owner".to_owned())]
    );
    // Still usable by Bea herself.
    assert_eq!(accept_with_session(&bea, &token).status, 200);
}

#[test]
fn an_invitation_for_an_existing_user_with_another_users_session_is_403() {
    // Signed in, but as the wrong account: the caller is known and refused, hence 403.
    let server = TestServer::start();
    let (owner, bea, token) = invited_existing_user(&server);
    accept_with_session(&owner, &token).assert_error(403, "forbidden");
    assert_eq!(
        workspace_ids(&bea),
        [(bea.workspace_id().to_owned(), "owner".to_owned())]
    );
    assert_eq!(
        owner.get("/v1/workspace").json()["id"],
        owner.workspace_id()
    );
}

#[test]
fn accepting_with_a_session_needs_its_csrf_token() {
    let server = TestServer::start();
    let (_owner, bea, token) = invited_existing_user(&server);
    let before = workspace_ids(&bea);
    bea.request_with_csrf(
        "POST",
        "/v1/invitations/accept",
        None,
        Some(&json!({"token": token})),
    )
    .assert_error(403, "csrf_failed");
    assert_eq!(workspace_ids(&bea), before);
    assert_eq!(accept_with_session(&bea, &token).status, 200);
}

#[test]
fn an_existing_user_accepts_with_their_own_session() {
    let server = TestServer::start();
    let (owner, bea, token) = invited_existing_user(&server);
    // A second invitation, still pending when the first is accepted.
    let second = invite(&owner, "bea@example.com", "admin");
    let response = accept_with_session(&bea, &token);
    assert_eq!(response.status, 200, "{}", response.text());
    let accepted = response.json();
    assert_eq!(accepted["user"]["id"], bea.user_id.as_str());
    assert_eq!(accepted["workspace"]["id"], owner.workspace_id());
    assert_eq!(accepted["role"], "member");
    let me = bea.get("/v1/auth/me").json();
    assert_eq!(me["workspace"]["id"], owner.workspace_id());
    assert_eq!(me["role"], "member");
    let mut expected = vec![
        (owner.workspace_id().to_owned(), "member".to_owned()),
        (bea.workspace_id().to_owned(), "owner".to_owned()),
    ];
    expected.sort();
    assert_eq!(workspace_ids(&bea), expected);

    // Accepting the second one now: already a member.
    accept_with_session(&bea, second["token"].as_str().unwrap()).assert_error(409, "conflict");
    assert_eq!(role_of(&owner, &bea.user_id).as_deref(), Some("member"));

    // A fresh login lands in the first workspace joined: her own.
    let fresh = login(&server, "bea@example.com", PASSWORD);
    assert_eq!(fresh.workspace_id(), bea.workspace_id());
}

// ---- The workspace itself ---------------------------------------------------------------------

#[test]
fn an_owner_or_admin_can_rename_the_workspace() {
    let server = TestServer::start();
    let owner = setup(&server);
    let admin = add_member(&owner, "admin@example.com", "admin");

    let response = owner.patch("/v1/workspace", &json!({"name": "Acme Ltd"}));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"id": owner.workspace_id(), "name": "Acme Ltd", "created_at": EPOCH})
    );
    assert_eq!(workspace_name(&admin), "Acme Ltd");

    let response = admin.patch("/v1/workspace", &json!({"name": "Acme Group"}));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(workspace_name(&owner), "Acme Group");

    let envelope = owner
        .patch("/v1/workspace", &json!({"name": ""}))
        .assert_error(422, "validation_failed");
    assert!(envelope["error"]["details"]["fields"]["name"].is_string());
    assert_eq!(workspace_name(&owner), "Acme Group");
}

#[test]
fn a_second_workspace_can_be_created_listed_and_activated() {
    let server = TestServer::start();
    let owner = setup(&server);
    let (acme_key_id, _) = create_key(&owner, &["messages:send"], "live");

    let response = owner.post("/v1/workspaces", &json!({"name": "Side Project"}));
    assert_eq!(response.status, 201, "{}", response.text());
    let side = response.json();
    let side_id = side["id"].as_str().unwrap();
    assert!(side_id.starts_with("wsp_"));
    assert_eq!(side["name"], "Side Project");
    assert_eq!(side["created_at"], EPOCH);

    // Creating does not switch.
    let active = owner.get("/v1/workspace").json();
    assert_eq!(active["id"], owner.workspace_id());
    assert_eq!(active["role"], "owner");
    let mut expected = vec![
        (owner.workspace_id().to_owned(), "owner".to_owned()),
        (side_id.to_owned(), "owner".to_owned()),
    ];
    expected.sort();
    assert_eq!(workspace_ids(&owner), expected);

    let response = owner.request("POST", &format!("/v1/workspaces/{side_id}/activate"), None);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"workspace": side, "role": "owner"}));
    let active = owner.get("/v1/workspace").json();
    assert_eq!(active["id"], side_id);
    assert_eq!(active["role"], "owner");
    assert_eq!(owner.get("/v1/auth/me").json()["workspace"]["id"], side_id);

    // Everything now acts in the new workspace.
    assert!(owner.keys().is_empty());
    assert_eq!(
        owner.members(),
        [(owner.user_id.clone(), "owner".to_owned())]
    );
    let (_, side_key) = create_key(&owner, &["messages:send"], "test");
    let seen = bearer(&server, &side_key, "GET", "/v1/workspace", None).json();
    assert_eq!(seen["id"], side_id);
    owner
        .delete(&format!("/v1/api-keys/{acme_key_id}"))
        .assert_error(404, "not_found");
}

#[test]
fn a_bad_list_limit_is_422() {
    let server = TestServer::start();
    let owner = setup(&server);
    for path in [
        "/v1/api-keys?limit=0",
        "/v1/api-keys?limit=101",
        "/v1/workspace/members?limit=0",
        "/v1/workspaces?limit=abc",
    ] {
        let envelope = owner.get(path).assert_error(422, "validation_failed");
        assert!(
            envelope["error"]["details"]["fields"]["limit"].is_string(),
            "{path}: {envelope}"
        );
    }
}

// ---- Pagination -------------------------------------------------------------------------------

fn ids_at(items: &[serde_json::Value], pointer: &str) -> Vec<String> {
    items
        .iter()
        .map(|item| item.pointer(pointer).unwrap().as_str().unwrap().to_owned())
        .collect()
}

fn create_workspace(console: &Console<'_>, name: &str) -> String {
    let created = console.post("/v1/workspaces", &json!({ "name": name }));
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn the_workspace_list_pages_in_join_order_each_workspace_once() {
    let server = TestServer::start();
    let owner = setup(&server);
    // Two joined in the same millisecond, then one a second: both halves of the sort key count.
    let mut expected = vec![owner.workspace_id().to_owned()];
    for name in ["Zeta", "Alpha"] {
        expected.push(create_workspace(&owner, name));
    }
    for name in ["Mid", "Beta", "Omega"] {
        server.clock.advance(chrono::Duration::seconds(1));
        expected.push(create_workspace(&owner, name));
    }

    for limit in [1, 2, 5] {
        let items = walk_pages(&owner, "/v1/workspaces", limit);
        assert_eq!(ids_at(&items, "/workspace/id"), expected, "limit {limit}");
        assert!(items.iter().all(|item| item["role"] == "owner"));
    }
    let first = &walk_pages(&owner, "/v1/workspaces", 2)[0];
    let mut keys: Vec<&String> = first["workspace"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["created_at", "id", "name"], "{first}");
}

#[test]
fn the_member_list_pages_in_join_order_each_member_once() {
    let server = TestServer::start();
    let owner = setup(&server);
    let mut expected = vec![owner.user_id.clone()];
    for n in 0..2 {
        expected.push(add_member(&owner, &format!("same{n}@example.com"), "member").user_id);
    }
    for n in 0..3 {
        server.clock.advance(chrono::Duration::seconds(1));
        expected.push(add_member(&owner, &format!("later{n}@example.com"), "admin").user_id);
    }

    for limit in [1, 2, 6] {
        let items = walk_pages(&owner, "/v1/workspace/members", limit);
        assert_eq!(ids_at(&items, "/user/id"), expected, "limit {limit}");
    }
    let items = walk_pages(&owner, "/v1/workspace/members", 4);
    assert_eq!(items[0]["role"], "owner");
    assert_eq!(items[5]["role"], "admin");
    assert_eq!(items[0]["joined_at"], EPOCH);
}

#[test]
fn the_invitation_list_pages_newest_id_first_and_its_cursor_outlives_a_revocation() {
    let server = TestServer::start();
    let owner = setup(&server);
    let mut expected: Vec<String> = (0..5)
        .map(|n| {
            if n == 3 {
                server.clock.advance(chrono::Duration::seconds(1));
            }
            invite(&owner, &format!("guest{n}@example.com"), "member")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    expected.sort();
    expected.reverse();

    for limit in [1, 2, 5] {
        let items = walk_pages(&owner, "/v1/workspace/invitations", limit);
        assert_eq!(ids_at(&items, "/id"), expected, "limit {limit}");
        assert!(items.iter().all(|item| item.get("token").is_none()));
    }

    // The last invitation of a page is revoked before the next page is asked for: its id still
    // marks the place.
    let page = owner.get("/v1/workspace/invitations?limit=2").json();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, expected[1]);
    let revoked = owner.delete(&format!("/v1/workspace/invitations/{cursor}"));
    assert_eq!(revoked.status, 204, "{}", revoked.text());
    let next = owner
        .get(&format!(
            "/v1/workspace/invitations?limit=2&cursor={cursor}"
        ))
        .json();
    assert_eq!(
        ids_at(next["data"].as_array().unwrap(), "/id"),
        expected[2..4]
    );
}

#[test]
fn every_list_checks_limit_and_cursor_as_the_message_list_does() {
    let server = TestServer::start();
    let owner = setup(&server);
    let lists = [
        "/v1/messages",
        "/v1/workspaces",
        "/v1/workspace/members",
        "/v1/workspace/invitations",
        "/v1/api-keys",
        "/v1/billing/ledger",
        "/v1/billing/plans",
        "/v1/payments/sessions",
        "/v1/admin/sender-ids",
        "/v1/admin/verifications?status=pending",
        "/v1/admin/workspaces",
    ];
    let unknown_cursor = |path: &str| {
        let separator = if path.contains('?') { '&' } else { '?' };
        let response = owner.get(&format!("{path}{separator}cursor=nothing_by_this_id"));
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        response.json()
    };
    let messages = unknown_cursor("/v1/messages");
    assert_eq!(messages, json!({"data": [], "next_cursor": null}));
    for path in lists {
        assert_bad_limits_are_422(&owner, path);
        assert_eq!(unknown_cursor(path), messages, "{path}");
    }
}

#[test]
fn a_member_path_id_that_cannot_be_a_user_id_is_404() {
    let server = TestServer::start();
    let owner = setup(&server);
    let member = add_member(&owner, "member@example.com", "member");
    let workspace_id = owner.get("/v1/workspace").json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in ["nosuchuser", "usr_", workspace_id.as_str(), "usr_a.b"] {
        set_role(&owner, bad, "admin").assert_error(404, "not_found");
        remove(&owner, bad).assert_error(404, "not_found");
    }
    assert_eq!(role_of(&owner, &member.user_id).as_deref(), Some("member"));
}
