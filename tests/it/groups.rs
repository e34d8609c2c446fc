//! Groups of contacts: CRUD and unique names, all-or-nothing membership lists (other
//! workspace, other mode, deleted, unknown and malformed ids refused), idempotent adds, counts
//! that leave deleted contacts out, the `?group=` filter, and the walls between workspaces and
//! modes.

use serde_json::json;

use crate::auth_fixtures::{Caller, Console, bearer, create_key, second_tenant, setup};
use crate::harness::{TestResponse, TestServer};

const BOTH: &[&str] = &["contacts:read", "contacts:write"];

impl Caller<'_> {
    fn contact(&self, email: &str) -> String {
        let response = self.post("/v1/contacts", json!({"name": "Someone", "email": email}));
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    fn group(&self, name: &str) -> String {
        let response = self.post("/v1/groups", json!({ "name": name }));
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    fn add(&self, group: &str, ids: &[String]) -> TestResponse {
        self.post(
            &format!("/v1/groups/{group}/contacts"),
            json!({ "contact_ids": ids }),
        )
    }

    fn remove(&self, group: &str, ids: &[String]) -> TestResponse {
        self.call(
            "DELETE",
            &format!("/v1/groups/{group}/contacts"),
            Some(&json!({ "contact_ids": ids })),
        )
    }

    fn member_count(&self, group: &str) -> i64 {
        let response = self.get(&format!("/v1/groups/{group}"));
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()["member_count"].as_i64().unwrap()
    }
}

fn caller<'s>(server: &'s TestServer, console: &Console<'s>, mode: &str) -> Caller<'s> {
    let (_, key) = create_key(console, BOTH, mode);
    Caller { server, key }
}

fn membership_count(server: &TestServer) -> i64 {
    server
        .db()
        .query_row("SELECT count(*) FROM group_members", [], |row| row.get(0))
        .unwrap()
}

/// `count` live contacts written straight into the database, in the workspace of `like`.
fn many_contacts(server: &TestServer, like: &str, count: usize) -> Vec<String> {
    let db = server.db();
    let workspace: String = db
        .query_row(
            "SELECT workspace_id FROM contacts WHERE id = ?1",
            [like],
            |row| row.get(0),
        )
        .unwrap();
    let ids: Vec<String> = (0..count).map(|n| format!("con_bulk{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        db.execute(
            "INSERT INTO contacts (id, workspace_id, mode, name, email, phone_state, email_state,
                created_at, updated_at)
             VALUES (?1, ?2, 'live', 'Bulk', ?3, 'valid', 'valid', '2026-01-01T00:00:00Z',
                '2026-01-01T00:00:00Z')",
            rusqlite::params![id, workspace, format!("bulk{n}@example.com")],
        )
        .unwrap();
    }
    ids
}

#[test]
fn a_group_is_created_shown_renamed_listed_and_deleted() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let created = api.post("/v1/groups", json!({"name": "  VIP  "}));
    assert_eq!(created.status, 201, "{}", created.text());
    let group = created.json();
    assert_eq!(group["name"], "VIP");
    assert_eq!(group["mode"], "live");
    assert_eq!(group["member_count"], 0);
    let id = group["id"].as_str().unwrap();
    assert!(id.starts_with("grp_"));
    let path = format!("/v1/groups/{id}");
    assert_eq!(api.get(&path).json(), group);
    let renamed = api.call("PATCH", &path, Some(&json!({"name": "Gold"})));
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    assert_eq!(renamed.json()["name"], "Gold");
    for bad in [
        json!({}),
        json!({"name": " "}),
        json!({"name": "x".repeat(101)}),
    ] {
        let envelope = api
            .post("/v1/groups", bad)
            .assert_error(422, "validation_failed");
        assert!(envelope["error"]["details"]["fields"]["name"].is_string());
    }
    let contact = api.contact("a@b.io");
    api.add(id, std::slice::from_ref(&contact));
    let listed = api.get("/v1/groups").json();
    assert_eq!(listed["data"][0]["name"], "Gold");
    assert_eq!(listed["data"][0]["member_count"], 1);
    let deleted = api.call("DELETE", &path, None);
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    api.get(&path).assert_error(404, "not_found");
    assert_eq!(membership_count(&server), 0);
    // The contact stays.
    assert_eq!(api.get(&format!("/v1/contacts/{contact}")).status, 200);
    api.get("/v1/groups/grp_nosuch")
        .assert_error(404, "not_found");
    api.get("/v1/groups/con_wrongkind")
        .assert_error(404, "not_found");
}

#[test]
fn a_duplicate_name_is_refused_naming_the_group() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let first = api.group("VIP");
    let envelope = api
        .post("/v1/groups", json!({"name": "VIP"}))
        .assert_error(409, "conflict");
    assert_eq!(envelope["error"]["details"]["existing_id"], first.as_str());
    let second = api.group("Others");
    api.call(
        "PATCH",
        &format!("/v1/groups/{second}"),
        Some(&json!({"name": "VIP"})),
    )
    .assert_error(409, "conflict");
    // The other mode has its own names.
    caller(&server, &owner, "test").group("VIP");
}

#[test]
fn members_are_added_and_removed_with_counts() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("VIP");
    let ids: Vec<String> = (0..3).map(|n| api.contact(&format!("c{n}@b.io"))).collect();
    let added = api.add(&group, &ids[..2]);
    assert_eq!(added.status, 200, "{}", added.text());
    assert_eq!(added.json(), json!({"added": 2, "already_members": 0}));
    // Adding again is no error.
    let again = api.add(&group, &ids);
    assert_eq!(again.json(), json!({"added": 1, "already_members": 2}));
    assert_eq!(api.member_count(&group), 3);
    let removed = api.remove(&group, &ids[..1]);
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert_eq!(removed.json(), json!({"removed": 1, "not_members": 0}));
    let again = api.remove(&group, &ids[..2]);
    assert_eq!(again.json(), json!({"removed": 1, "not_members": 1}));
    assert_eq!(api.member_count(&group), 1);
    let envelope = api.add(&group, &[]).assert_error(422, "validation_failed");
    assert!(envelope["error"]["details"]["fields"]["contact_ids"].is_string());
}

#[test]
fn more_than_ten_thousand_ids_are_refused() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("VIP");
    let ids: Vec<String> = (0..10_001).map(|n| format!("con_{n}")).collect();
    let envelope = api.add(&group, &ids).assert_error(422, "validation_failed");
    assert!(envelope["error"]["details"]["fields"]["contact_ids"].is_string());
    api.remove(&group, &ids)
        .assert_error(422, "validation_failed");
}

#[test]
fn one_bad_id_refuses_the_whole_list() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("VIP");
    let mut ids: Vec<String> = (0..3).map(|n| api.contact(&format!("c{n}@b.io"))).collect();
    let globex = second_tenant(&owner, "globex@example.com");
    let stranger = caller(&server, &globex, "live").contact("s@b.io");
    let other_mode = caller(&server, &owner, "test").contact("t@b.io");
    let deleted = api.contact("gone@b.io");
    api.call("DELETE", &format!("/v1/contacts/{deleted}"), None);
    for bad in [
        stranger,
        other_mode,
        deleted,
        "con_unknown".into(),
        "not an id".into(),
    ] {
        ids.push(bad.clone());
        let envelope = api.add(&group, &ids).assert_error(422, "validation_failed");
        assert_eq!(envelope["error"]["details"]["invalid_ids"], json!([bad]));
        let message = envelope["error"]["message"].as_str().unwrap();
        assert!(message.contains(&bad), "{message}");
        api.remove(&group, &ids)
            .assert_error(422, "validation_failed");
        assert_eq!(membership_count(&server), 0);
        ids.pop();
    }
}

#[test]
fn member_counts_and_lists_leave_deleted_contacts_out() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("VIP");
    let ids: Vec<String> = (0..2).map(|n| api.contact(&format!("c{n}@b.io"))).collect();
    api.add(&group, &ids);
    api.call("DELETE", &format!("/v1/contacts/{}", ids[0]), None);
    assert_eq!(api.member_count(&group), 1);
    let listed = api.get(&format!("/v1/contacts?group={group}")).json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], ids[1].as_str());
    // The membership stays, as the rules say.
    assert_eq!(membership_count(&server), 2);
}

#[test]
fn the_contacts_list_filters_by_group_page_by_page() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("VIP");
    let ids: Vec<String> = (0..5).map(|n| api.contact(&format!("c{n}@b.io"))).collect();
    let members = [
        ids[0].clone(),
        ids[2].clone(),
        ids[3].clone(),
        ids[4].clone(),
    ];
    api.add(&group, &members);
    let mut seen = Vec::new();
    let mut path = format!("/v1/contacts?group={group}&limit=3");
    loop {
        let page = api.get(&path).json();
        for contact in page["data"].as_array().unwrap() {
            seen.push(contact["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/contacts?group={group}&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, [&*ids[4], &ids[3], &ids[2], &ids[0]]);
    for bad in ["grp_nosuch", "nonsense"] {
        let envelope = api
            .get(&format!("/v1/contacts?group={bad}"))
            .assert_error(422, "validation_failed");
        assert!(envelope["error"]["details"]["fields"]["group"].is_string());
    }
}

#[test]
fn another_workspaces_and_the_other_modes_groups_are_not_found() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("VIP");
    let contact = api.contact("a@b.io");
    let globex = second_tenant(&owner, "globex@example.com");
    let stranger = caller(&server, &globex, "live");
    let test = caller(&server, &owner, "test");
    let path = format!("/v1/groups/{group}");
    for other in [&stranger, &test] {
        other.get(&path).assert_error(404, "not_found");
        other
            .call("PATCH", &path, Some(&json!({"name": "Mine"})))
            .assert_error(404, "not_found");
        other
            .call("DELETE", &path, None)
            .assert_error(404, "not_found");
        other
            .add(&group, std::slice::from_ref(&contact))
            .assert_error(404, "not_found");
        assert_eq!(other.get("/v1/groups").json()["data"], json!([]));
        other
            .get(&format!("/v1/contacts?group={group}"))
            .assert_error(422, "validation_failed");
    }
    // The console sees the live groups.
    assert_eq!(
        owner.get("/v1/groups").json()["data"][0]["id"],
        group.as_str()
    );
    let (_, reader) = create_key(&owner, &["contacts:read"], "live");
    bearer(
        &server,
        &reader,
        "POST",
        "/v1/groups",
        Some(&json!({"name": "X"})),
    )
    .assert_error(403, "insufficient_scope");
}

#[test]
fn three_thousand_contacts_join_in_one_call() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = caller(&server, &owner, "live");
    let group = api.group("Everyone");
    let first = api.contact("a@b.io");
    let mut ids = many_contacts(&server, &first, 3_000);
    ids.push(first);
    let added = api.add(&group, &ids);
    assert_eq!(added.status, 200, "{}", added.text());
    assert_eq!(added.json(), json!({"added": 3_001, "already_members": 0}));
    assert_eq!(api.member_count(&group), 3_001);
    let removed = api.remove(&group, &ids[..2_500]);
    assert_eq!(removed.json(), json!({"removed": 2_500, "not_members": 0}));
    assert_eq!(api.member_count(&group), 501);
}
