//! Test and live are two worlds (docs/rules/access.md, "Test and live"): a key sees and changes
//! only the objects of its own mode, on every route that names an object, and a console session
//! looks at the world it chose. The sweep walks the router's own table, so a route added later
//! is covered or the test fails asking to be taught its object.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crier::api_keys::format::Scope;
use crier::payments::provider::ProviderName;
use crier::web::router::{Route, Router};

use crate::auth_fixtures::{Console, count, create_key, send, setup};
use crate::harness::{TestResponse, TestServer, test_epoch};
use crate::payments::{self, Fakes};

/// A time a scheduled message can wait for: a month after the test clock's now.
fn later() -> String {
    (test_epoch() + chrono::Duration::days(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A key of every scope in one mode.
struct World<'s> {
    server: &'s TestServer,
    key: String,
}

impl<'s> World<'s> {
    fn open(owner: &Console<'s>, mode: &str) -> World<'s> {
        let scopes: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
        let (_, key) = create_key(owner, &scopes, mode);
        World {
            server: owner.server,
            key,
        }
    }

    /// One call; writes carry an `Idempotency-Key` so that no route refuses them for lacking one.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> TestResponse {
        let authorization = format!("Bearer {}", self.key);
        let mut headers = vec![("Authorization", authorization.as_str())];
        let idempotency_key = format!("sweep-{method}-{path}");
        if method != "GET" {
            headers.push(("Idempotency-Key", idempotency_key.as_str()));
        }
        send(self.server, method, path, headers, body)
    }

    fn create(&self, path: &str, body: Value) -> String {
        let response = self.call("POST", path, Some(&body));
        assert!(
            response.status == 201 || response.status == 202,
            "POST {path}: {} {}",
            response.status,
            response.text()
        );
        response.json()["id"].as_str().unwrap().to_owned()
    }

    /// One object of every kind a route can name by `{id}`, in this key's world, by the path
    /// segment that comes before `{id}`.
    fn populate(&self, phone: &str, email: &str) -> BTreeMap<&'static str, String> {
        let contact = self.create(
            "/v1/contacts",
            json!({"name": "Ada", "phone": phone, "email": email}),
        );
        let mut objects = BTreeMap::new();
        objects.insert(
            "messages",
            self.create(
                "/v1/messages",
                json!({"channel": "sms", "to": phone, "text": "Later",
                       "scheduled_at": later()}),
            ),
        );
        objects.insert(
            "groups",
            self.create("/v1/groups", json!({"name": "Friends"})),
        );
        objects.insert(
            "segments",
            self.create(
                "/v1/segments",
                json!({"name": "Adas", "rules": {"all": [
                    {"field": "name", "op": "eq", "value": "Ada"}]}}),
            ),
        );
        objects.insert(
            "campaigns",
            self.create(
                "/v1/campaigns",
                json!({"name": "Sale", "channel": "sms", "text": "Sale today",
                       "audience": {"all": true}}),
            ),
        );
        let authorization = format!("Bearer {}", self.key);
        let import = self.server.request(
            "POST",
            "/v1/contacts/imports",
            &[
                ("Authorization", authorization.as_str()),
                ("Content-Type", "text/csv"),
            ],
            b"name,email\nBea,bea@example.com\n",
        );
        assert_eq!(import.status, 202, "{}", import.text());
        objects.insert("imports", import.json()["id"].as_str().unwrap().to_owned());
        objects.insert("contacts", contact);
        // Turned off, so its test event stays a pending delivery nobody sends.
        let endpoint = self.create(
            "/v1/webhook-endpoints",
            json!({"url": "https://hooks.example.com/crier", "events": ["*"],
                   "enabled": false}),
        );
        objects.insert(
            "webhook-deliveries",
            self.create(&format!("/v1/webhook-endpoints/{endpoint}/test"), json!({})),
        );
        objects.insert("webhook-endpoints", endpoint);
        objects
    }

    /// What this world shows of each object (`None`: not found), to compare before and after.
    fn snapshot(&self, objects: &BTreeMap<&'static str, String>) -> BTreeMap<String, Value> {
        objects
            .iter()
            .map(|(kind, id)| {
                let path = match *kind {
                    "imports" => format!("/v1/contacts/imports/{id}"),
                    "sessions" => format!("/v1/payments/sessions/{id}"),
                    "contact-fields" => "/v1/contact-fields".to_owned(),
                    kind => format!("/v1/{kind}/{id}"),
                };
                let response = self.call("GET", &path, None);
                assert_eq!(response.status, 200, "GET {path}: {}", response.text());
                let mut body = response.json();
                if let Some(object) = body.as_object_mut() {
                    object.remove("request_id");
                }
                (path, body)
            })
            .collect()
    }
}

/// The routes with a path parameter that do not name an object of a world: the caller's own
/// workspace's members, invitations and keys, the instance's admin, public links and files.
fn names_no_world_object(path: &str) -> bool {
    !path.starts_with("/v1/")
        || [
            "{user_id}",
            "{workspace_id}",
            "{provider}",
            "{token}",
            "{code}",
        ]
        .iter()
        .any(|parameter| path.contains(parameter))
        || path.starts_with("/v1/api-keys/")
        || path.starts_with("/v1/workspaces/")
        || path.starts_with("/v1/workspace/")
}

/// A body each write route would accept, so that the answer is about the object, not the input
/// (none for a route that reads none: it refuses any field).
fn body_for(route: &Route) -> Option<Value> {
    let (method, path) = (route.method.as_str(), route.path);
    if !route.takes_body {
        return None;
    }
    let body = match (method, path.rsplit('/').next().unwrap()) {
        ("POST" | "DELETE", "contacts") => json!({"contact_ids": []}),
        ("GET" | "DELETE", _) => return None,
        ("PATCH", _) if path.starts_with("/v1/webhook-endpoints/") => {
            json!({"description": "Changed"})
        }
        ("PATCH", _) => json!({"name": "Changed"}),
        ("POST", "test") => json!({"to": "+237677123456"}),
        ("POST", "preview") => json!({}),
        _ => json!({}),
    };
    Some(body)
}

/// Kinds both worlds share, which only the live world may change: a test caller is refused
/// with 403 on their write routes. Custom field definitions are the workspace's schema.
/// Sending domains belong to the workspace, not to a mode, and are managed in live mode only.
const SHARED: &[&str] = &["contact-fields", "sending-domains"];

/// Calls every route that names an object with `{id}` as `caller`, with the ids of the other
/// world's `objects`; every answer must be a 404 — or a 403 when a test caller writes to a
/// shared kind (`SHARED`, present in `objects` only on the live side).
fn sweep(caller: &World<'_>, objects: &BTreeMap<&'static str, String>) -> usize {
    let mut calls = 0;
    for route in Router::standard().routes() {
        let path = route.path;
        if !path.contains('{') || names_no_world_object(path) {
            continue;
        }
        let kind = path
            .split('/')
            .take_while(|segment| *segment != "{id}")
            .last()
            .unwrap();
        let Some(id) = objects.get(kind) else {
            // Kinds of which the test world has none of its own (live objects only).
            if SHARED.contains(&kind) || kind == "sessions" || kind == "provider-accounts" {
                continue;
            }
            panic!("{path} names an object this sweep does not know: teach it the `{kind}` kind");
        };
        let method = route.method.as_str();
        let concrete = path.replace("{id}", id);
        let body = body_for(route);
        let response = caller.call(method, &concrete, body.as_ref());
        let expected = if SHARED.contains(&kind) { 403 } else { 404 };
        assert_eq!(
            response.status,
            expected,
            "{method} {concrete} from the other world: {}",
            response.text()
        );
        calls += 1;
    }
    calls
}

/// What must not move while the sweep runs: messages by status, the wallet, the ledger.
fn money_and_messages(server: &TestServer) -> (i64, i64, i64, i64) {
    (
        count(
            server,
            "SELECT count(*) FROM messages WHERE status = 'scheduled'",
        ),
        count(server, "SELECT count(*) FROM messages"),
        count(server, "SELECT wallet_balance_minor FROM workspaces"),
        count(server, "SELECT count(*) FROM wallet_ledger"),
    )
}

#[test]
fn a_key_never_reaches_the_other_worlds_objects_on_any_route() {
    let fakes = Fakes::start();
    let server = payments::start(&fakes, &[ProviderName::Flutterwave]);
    let owner = setup(&server);
    let credit = owner.post(
        &format!(
            "/v1/admin/workspaces/{}/wallet-adjustments",
            owner.workspace_id()
        ),
        &json!({"amount_minor": 10_000, "reason": "test credit"}),
    );
    assert_eq!(credit.status, 201, "{}", credit.text());
    let live = World::open(&owner, "live");
    let test = World::open(&owner, "test");
    // The same phone and email in both worlds: no conflict, two contacts.
    let mut live_objects = live.populate("+237677123456", "ada@example.com");
    let test_objects = test.populate("+237677123456", "ada@example.com");
    live_objects.insert(
        "sessions",
        payments::topup(&owner, 5000)["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    live_objects.insert(
        "provider-accounts",
        live.create(
            "/v1/provider-accounts",
            json!({"channel": "sms", "provider": "twilio",
                   "settings": {"account_sid": "AC1", "base_url": "https://twilio.example.com"},
                   "secrets": {"auth_token": "token-of-the-client"}}),
        ),
    );
    let field = live.create(
        "/v1/contact-fields",
        json!({"key": "score", "label": "Score", "type": "number"}),
    );
    live_objects.insert("contact-fields", field);
    let domain = live.create("/v1/sending-domains", json!({"domain": "acme.example"}));
    live_objects.insert("sending-domains", domain);

    let live_before = live.snapshot(&live_objects);
    let test_before = test.snapshot(&test_objects);
    let before = money_and_messages(&server);
    let calls = sweep(&test, &live_objects) + sweep(&live, &test_objects);
    assert!(calls >= 60, "the sweep made only {calls} calls");
    assert_eq!(live.snapshot(&live_objects), live_before);
    assert_eq!(test.snapshot(&test_objects), test_before);
    assert_eq!(money_and_messages(&server), before);

    // Lists show each world its own objects only.
    for (list, kind) in [
        ("/v1/messages", "messages"),
        ("/v1/contacts", "contacts"),
        ("/v1/groups", "groups"),
        ("/v1/segments", "segments"),
        ("/v1/campaigns", "campaigns"),
        ("/v1/contacts/imports", "imports"),
    ] {
        for (world, own, other) in [
            (&live, &live_objects, &test_objects),
            (&test, &test_objects, &live_objects),
        ] {
            let response = world.call("GET", list, None);
            assert_eq!(response.status, 200, "{list}: {}", response.text());
            let ids: Vec<String> = response.json()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned())
                .collect();
            assert!(
                ids.contains(&own[kind]),
                "{list} misses its own {kind}: {ids:?}"
            );
            assert!(
                !ids.contains(&other[kind]),
                "{list} shows the other world's {kind}"
            );
        }
    }
    // Both worlds read the shared field definitions; only live defines them.
    for world in [&live, &test] {
        let fields = world.call("GET", "/v1/contact-fields", None).json();
        assert_eq!(
            fields["data"][0]["id"],
            live_objects["contact-fields"].as_str()
        );
    }
    test.call(
        "POST",
        "/v1/contact-fields",
        Some(&json!({"key": "rank", "label": "Rank", "type": "number"})),
    )
    .assert_error(403, "forbidden");
    assert_eq!(count(&server, "SELECT count(*) FROM contact_fields"), 1);

    // Payment sessions move real money: the test world has none and cannot start one.
    let listed = test.call("GET", "/v1/payments/sessions", None);
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json()["data"], json!([]));
    let sessions = count(&server, "SELECT count(*) FROM payment_sessions");
    test.call(
        "POST",
        "/v1/payments/sessions",
        Some(&json!({"kind": "topup", "amount_minor": 5000, "currency": "XAF"})),
    )
    .assert_error(403, "forbidden");
    assert_eq!(
        count(&server, "SELECT count(*) FROM payment_sessions"),
        sessions
    );
    assert_eq!(
        fakes.flutterwave.requests().len(),
        1,
        "only the live top-up reached the provider"
    );
}

#[test]
fn a_console_session_looks_at_the_world_it_chose() {
    let server = TestServer::start();
    let owner = setup(&server);
    assert_eq!(owner.get("/v1/auth/me").json()["mode"], "live");
    let send_one = |console: &Console<'_>, key: &str| {
        let cookie = console.cookie();
        send(
            &server,
            "POST",
            "/v1/messages",
            vec![
                ("Cookie", cookie.as_str()),
                ("X-CSRF-Token", console.csrf_token.as_str()),
                ("Idempotency-Key", key),
            ],
            Some(
                &json!({"channel": "sms", "to": "+237677123456", "text": "Hello",
                         "scheduled_at": later()}),
            ),
        )
    };
    let credit = owner.post(
        &format!(
            "/v1/admin/workspaces/{}/wallet-adjustments",
            owner.workspace_id()
        ),
        &json!({"amount_minor": 1_000, "reason": "test credit"}),
    );
    assert_eq!(credit.status, 201, "{}", credit.text());
    let live_sent = send_one(&owner, "same-key");
    assert_eq!(live_sent.status, 201, "{}", live_sent.text());
    let live_id = live_sent.json()["id"].as_str().unwrap().to_owned();

    let switched = owner.request("PUT", "/v1/auth/mode", Some(&json!({"mode": "test"})));
    assert_eq!(switched.status, 200, "{}", switched.text());
    assert_eq!(switched.json()["mode"], "test");
    assert_eq!(owner.get("/v1/auth/me").json()["mode"], "test");
    // The same Idempotency-Key in the test world is another request: a test message, not a
    // replay of the live one; the wallet does not move.
    let balance = count(&server, "SELECT wallet_balance_minor FROM workspaces");
    let test_sent = send_one(&owner, "same-key");
    assert_eq!(test_sent.status, 201, "{}", test_sent.text());
    let test_id = test_sent.json()["id"].as_str().unwrap().to_owned();
    assert_ne!(test_id, live_id);
    assert_eq!(
        count(&server, "SELECT wallet_balance_minor FROM workspaces"),
        balance
    );
    let listed = owner.get("/v1/messages").json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], test_id.as_str());
    owner
        .get(&format!("/v1/messages/{live_id}"))
        .assert_error(404, "not_found");
    owner
        .post(&format!("/v1/messages/{live_id}/cancel"), &json!({}))
        .assert_error(404, "not_found");

    // Bad switches change nothing.
    owner
        .request("PUT", "/v1/auth/mode", Some(&json!({"mode": "sandbox"})))
        .assert_error(422, "validation_failed");
    owner
        .request(
            "PUT",
            "/v1/auth/mode",
            Some(&json!({"mode": "live", "extra": 1})),
        )
        .assert_error(422, "validation_failed");
    let cookie = owner.cookie();
    send(
        &server,
        "PUT",
        "/v1/auth/mode",
        vec![("Cookie", cookie.as_str())],
        Some(&json!({"mode": "live"})),
    )
    .assert_error(403, "csrf_failed");
    let (_, key) = create_key(&owner, &["messages:read"], "live");
    crate::auth_fixtures::bearer(
        &server,
        &key,
        "PUT",
        "/v1/auth/mode",
        Some(&json!({"mode": "test"})),
    )
    .assert_error(403, "forbidden");
    assert_eq!(owner.get("/v1/auth/me").json()["mode"], "test");

    // Back to live: the live message is there again, and a new login starts in live.
    let back = owner.request("PUT", "/v1/auth/mode", Some(&json!({"mode": "live"})));
    assert_eq!(back.json()["mode"], "live");
    assert_eq!(
        owner.get("/v1/messages").json()["data"][0]["id"],
        live_id.as_str()
    );
    owner.request("PUT", "/v1/auth/mode", Some(&json!({"mode": "test"})));
    let again = crate::auth_fixtures::login(
        &server,
        crate::auth_fixtures::OWNER_EMAIL,
        crate::auth_fixtures::PASSWORD,
    );
    assert_eq!(again.get("/v1/auth/me").json()["mode"], "live");
    assert_eq!(owner.get("/v1/auth/me").json()["mode"], "test");
}
