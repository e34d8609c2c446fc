//! The instance admin's list of every workspace (`GET /v1/admin/workspaces` and one workspace by
//! id): who sees it, what each row says, search, and keyset pages.

use serde_json::{Value, json};

use crate::harness::TestServer;

use crate::auth_fixtures::{
    Console, add_member, assert_bad_limits_are_422, bearer, create_key, encode_query_value,
    second_tenant, setup, walk_pages,
};

/// A workspace id no workspace has.
const UNKNOWN_WORKSPACE: &str = "wsp_00000000000000000000000000";

/// Every row of the admin list (all pages, 2 at a time), checking the paging on the way.
fn all_workspaces(admin: &Console<'_>, query: &str) -> Vec<Value> {
    walk_pages(admin, &format!("/v1/admin/workspaces{query}"), 2)
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect()
}

fn row_of<'r>(rows: &'r [Value], workspace_id: &str) -> &'r Value {
    rows.iter()
        .find(|row| row["id"] == workspace_id)
        .unwrap_or_else(|| panic!("{workspace_id} is not listed: {rows:?}"))
}

/// A new workspace made by `console` (who owns it), by name; its id.
fn create_workspace(console: &Console<'_>, name: &str) -> String {
    let created = console.post("/v1/workspaces", &json!({"name": name}));
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn the_instance_admin_sees_every_workspace_with_its_plan_wallet_reviews_members_and_owner() {
    let server = TestServer::start();
    let admin = setup(&server);
    let acme = admin.workspace_id().to_owned();
    add_member(&admin, "member@example.com", "member");
    let globex_owner = second_tenant(&admin, "globex@example.com");
    let globex = globex_owner.workspace_id().to_owned();

    // Globex asks for a sender ID and verification; the admin credits Acme and sets Globex on
    // the custom plan.
    let requested = globex_owner.request(
        "PUT",
        "/v1/billing/sender-id",
        Some(&json!({"sender_id": "Globex"})),
    );
    assert_eq!(requested.status, 200, "{}", requested.text());
    let submitted = globex_owner.post(
        "/v1/billing/verification",
        &json!({"business_name": "Globex SA", "country": "CM", "document_refs": ["rccm-1"]}),
    );
    assert_eq!(submitted.status, 200, "{}", submitted.text());
    let credited = admin.post(
        &format!("/v1/admin/workspaces/{acme}/wallet-adjustments"),
        &json!({"amount_minor": 15000, "reason": "opening credit"}),
    );
    assert_eq!(credited.status, 201, "{}", credited.text());
    let plan = admin.request(
        "PUT",
        &format!("/v1/admin/workspaces/{globex}/plan"),
        Some(&json!({
            "plan_code": "custom", "included_sms_per_month": 500, "included_email_per_day": 20,
            "period_end": "2027-01-31T00:00:00Z",
        })),
    );
    assert_eq!(plan.status, 200, "{}", plan.text());

    let rows = all_workspaces(&admin, "");
    assert_eq!(names(&rows), ["Globex", "Acme"], "newest first");
    let globex_row = row_of(&rows, &globex);
    assert_eq!(globex_row["owner_email"], "globex@example.com");
    assert_eq!(globex_row["member_count"], 1);
    assert_eq!(
        globex_row["plan"],
        json!({
            "code": "custom", "name": globex_row["plan"]["name"], "status": "active",
            "period_end": "2027-01-31T00:00:00.000Z",
            "included_sms_per_month": 500, "included_email_per_day": 20,
        })
    );
    assert!(globex_row["plan"]["name"].is_string());
    assert_eq!(
        globex_row["wallet"],
        json!({"balance": {"amount_minor": 0, "currency": "XAF"}})
    );
    assert_eq!(globex_row["verification_status"], "pending");
    assert_eq!(
        globex_row["sender_id"],
        json!({"value": "GLOBEX", "status": "pending"})
    );

    let acme_row = row_of(&rows, &acme);
    assert_eq!(acme_row["owner_email"], "owner@example.com");
    assert_eq!(acme_row["member_count"], 2, "the owner and the member");
    assert_eq!(acme_row["plan"]["code"], "free");
    assert_eq!(acme_row["plan"]["status"], "none");
    assert_eq!(acme_row["plan"]["period_end"], Value::Null);
    assert_eq!(acme_row["plan"]["included_sms_per_month"], Value::Null);
    assert_eq!(acme_row["wallet"]["balance"]["amount_minor"], 15000);
    assert_eq!(acme_row["verification_status"], "unverified");
    assert_eq!(acme_row["sender_id"], Value::Null);

    // One workspace by id says what its row says.
    let one = admin.get(&format!("/v1/admin/workspaces/{globex}"));
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(&one.json(), globex_row);
    for unknown in [UNKNOWN_WORKSPACE, "wsp_nope", "nothing"] {
        admin
            .get(&format!("/v1/admin/workspaces/{unknown}"))
            .assert_error(404, "not_found");
    }

    // An approval shows in the row.
    let approved = admin.post(
        &format!("/v1/admin/verifications/{globex}/approve"),
        &json!({}),
    );
    assert_eq!(approved.status, 200, "{}", approved.text());
    let one = admin.get(&format!("/v1/admin/workspaces/{globex}")).json();
    assert_eq!(one["verification_status"], "verified");
}

#[test]
fn only_instance_admins_list_workspaces_never_a_member_or_an_api_key() {
    let server = TestServer::start();
    let admin = setup(&server);
    let acme = admin.workspace_id().to_owned();
    let workspace_admin = add_member(&admin, "admin@example.com", "admin");
    let other_owner = second_tenant(&admin, "globex@example.com");
    let every_scope: Vec<&str> = crier::api_keys::format::Scope::ALL
        .iter()
        .map(|scope| scope.as_str())
        .collect();
    let (_, live_key) = create_key(&admin, &every_scope, "live");
    let (_, test_key) = create_key(&admin, &every_scope, "test");
    let paths = [
        "/v1/admin/workspaces".to_owned(),
        "/v1/admin/workspaces?q=acme".to_owned(),
        format!("/v1/admin/workspaces/{acme}"),
    ];
    for path in &paths {
        for caller in [&workspace_admin, &other_owner] {
            caller.get(path).assert_error(403, "forbidden");
        }
        for key in [&live_key, &test_key] {
            bearer(&server, key, "GET", path, None).assert_error(403, "forbidden");
        }
        server.get(path).assert_error(401, "unauthenticated");
    }
}

#[test]
fn the_search_keeps_names_containing_the_text_without_regard_to_case() {
    let server = TestServer::start();
    let admin = setup(&server);
    for name in [
        "Boutique Akwa",
        "Pharmacie du Lac",
        "AKWA Motors",
        "100% Bio",
    ] {
        create_workspace(&admin, name);
    }
    let search = |q: &str| {
        let rows = all_workspaces(&admin, &format!("?q={}", encode_query_value(q)));
        names(&rows)
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(search("akwa"), ["AKWA Motors", "Boutique Akwa"]);
    assert_eq!(
        search("  Akwa "),
        ["AKWA Motors", "Boutique Akwa"],
        "trimmed"
    );
    assert_eq!(search("LAC"), ["Pharmacie du Lac"]);
    // `%` and `_` are plain characters, not patterns.
    assert_eq!(search("%"), ["100% Bio"]);
    assert!(search("_").is_empty());
    assert!(search("nowhere").is_empty());
    assert_eq!(search("").len(), 5, "an empty q is no filter");

    // Too long, or a NUL (which would end the text SQLite compares and match every workspace).
    for q in ["a".repeat(201), "%00nowhere".to_owned()] {
        let envelope = admin
            .get(&format!("/v1/admin/workspaces?q={q}"))
            .assert_error(422, "validation_failed");
        assert!(
            envelope["error"]["details"]["fields"]["q"].is_string(),
            "{envelope}"
        );
    }
}

#[test]
fn the_list_pages_newest_first_each_workspace_once_and_refuses_bad_limits() {
    let server = TestServer::start();
    let admin = setup(&server);
    let mut created = vec![admin.workspace_id().to_owned()];
    for n in 1..=6 {
        created.push(create_workspace(&admin, &format!("Shop {n}")));
    }
    created.reverse();
    for limit in [1, 2, 3, 7, 100] {
        let rows = walk_pages(&admin, "/v1/admin/workspaces", limit);
        let ids: Vec<&str> = rows.iter().map(|row| row["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids, created,
            "limit {limit}: every workspace once, newest first"
        );
    }
    // Pages of a search follow the search.
    let rows = walk_pages(&admin, "/v1/admin/workspaces?q=shop", 4);
    assert_eq!(
        names(&rows),
        ["Shop 6", "Shop 5", "Shop 4", "Shop 3", "Shop 2", "Shop 1"]
    );

    assert_bad_limits_are_422(&admin, "/v1/admin/workspaces");
    let unknown = admin.get("/v1/admin/workspaces?cursor=nothing_by_this_id");
    assert_eq!(unknown.status, 200, "{}", unknown.text());
    assert_eq!(unknown.json(), json!({"data": [], "next_cursor": null}));
}
