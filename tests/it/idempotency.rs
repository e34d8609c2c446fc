//! Idempotency-Key (docs/rules/access.md): a retried POST replays the first answer and never repeats the
//! effect; a key is scoped to (workspace, API key or user); malformed keys change nothing; 5xx
//! outcomes are never stored; leased operations answer duplicates with 409 while in flight and
//! let a retry take over once the lease expired; records are swept after the retention.
//!
//! The routes under `/test/` exist only in these tests, to reach outcomes the product's own
//! endpoints cannot produce on demand (a failing first attempt, a 409 from the operation, a slow
//! provider call). Each has its own counters, used by one test only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crier::app::App;
use crier::clock::Clock;
use crier::config::Synchronous;
use crier::db::{Db, DbSettings};
use crier::error::AppError;
use crier::web::auth::authenticate_request;
use crier::web::idempotency::{self, Per, Requirement};
use crier::web::request::Request;
use crier::web::response::ApiResponse;
use crier::web::router::{Method, Route, Router};
use serde_json::{Value, json};

use crier::api_keys::format::Scope;

use crate::auth_fixtures::{Console, add_member, count, create_key, second_tenant, setup};
use crate::harness::{TestResponse, TestServer, open_connection, read_response, send_raw};

const REPLAYED: &str = "Idempotent-Replayed";
const WORKSPACES: &str = "SELECT count(*) FROM workspaces";
const RECORDS: &str = "SELECT count(*) FROM idempotency_records";
const EFFECTS: &str = "SELECT count(*) FROM test_effects";

// ---------------------------------------------------------------------------------------------
// Test-only routes.

/// Any caller; writes one row of `test_effects` with the JSON body and answers 201 with it.
fn record_effect(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let body: Value = request.json()?;
    idempotency::in_transaction(
        app,
        request,
        &principal,
        (Requirement::Optional, Per::Workspace),
        |conn| {
            conn.execute(
                "INSERT INTO test_effects (body) VALUES (?1)",
                [body.to_string()],
            )?;
            let effect = conn.last_insert_rowid();
            ApiResponse::json(201, &json!({"effect": effect, "body": body}))
        },
    )
}

static FLAKY_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

/// Key required; creates a workspace, but the first attempt fails with a 500 after the write.
fn flaky(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let user_id = principal.require_session()?.user_id().to_owned();
    let now = app.clock.now();
    idempotency::in_transaction(
        app,
        request,
        &principal,
        (Requirement::Required, Per::Workspace),
        |conn| {
            let workspace =
                crier::workspaces::create_workspace(conn, &app.ids, "Flaky", &user_id, "XAF", now)?;
            if FLAKY_ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(AppError::Internal(
                    "the first attempt fails after its write".to_owned(),
                ));
            }
            ApiResponse::json(201, &json!({"id": workspace.id, "name": workspace.name}))
        },
    )
}

static CONFLICT_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Writes a row, then refuses with 409 `conflict`.
fn conflicted(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    idempotency::in_transaction(
        app,
        request,
        &principal,
        (Requirement::Optional, Per::Workspace),
        |conn| {
            CONFLICT_RUNS.fetch_add(1, Ordering::SeqCst);
            conn.execute(
                "INSERT INTO test_effects (body) VALUES ('written before the conflict')",
                [],
            )?;
            Err(AppError::Conflict("The slot is already taken.".to_owned()))
        },
    )
}

static SLOW_GATE: Gate = Gate::new();
static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Leased; every call waits at `SLOW_GATE` before answering 201.
fn slow_provider(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    idempotency::leased(
        app,
        request,
        &principal,
        (Requirement::Required, Per::Workspace),
        |_reference| {
            let call = SLOW_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
            SLOW_GATE.arrive_and_wait();
            ApiResponse::json(201, &json!({"provider_call": call}))
        },
    )
}

static STUCK_GATE: Gate = Gate::new();
static STUCK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Leased; the first call hangs at `STUCK_GATE` (a provider that never answers in time), later
/// calls answer 201 at once.
fn stuck_provider(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    idempotency::leased(
        app,
        request,
        &principal,
        (Requirement::Required, Per::Workspace),
        |_reference| {
            let call = STUCK_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
            if call == 1 {
                STUCK_GATE.arrive_and_wait();
            }
            ApiResponse::json(201, &json!({"provider_call": call}))
        },
    )
}

static FAILING_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Leased; the first call fails with a 500, later calls answer 201.
fn failing_provider(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    idempotency::leased(
        app,
        request,
        &principal,
        (Requirement::Required, Per::Workspace),
        |_reference| {
            let call = FAILING_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
            if call == 1 {
                return Err(AppError::Internal("the provider timed out".to_owned()));
            }
            ApiResponse::json(201, &json!({"provider_call": call}))
        },
    )
}

fn router() -> Router {
    Router::standard()
        .with_route(Route::new(Method::Post, "/test/effects", record_effect))
        .with_route(Route::new(Method::Post, "/test/flaky", flaky))
        .with_route(Route::new(Method::Post, "/test/conflicted", conflicted))
        .with_route(Route::new(
            Method::Post,
            "/test/slow-provider",
            slow_provider,
        ))
        .with_route(Route::new(
            Method::Post,
            "/test/stuck-provider",
            stuck_provider,
        ))
        .with_route(Route::new(
            Method::Post,
            "/test/failing-provider",
            failing_provider,
        ))
}

/// A server with the test routes and the `test_effects` table they write to.
fn server_with(configure: impl FnOnce(&mut crier::config::Config)) -> TestServer {
    let server = TestServer::start_with(configure, router());
    server
        .db()
        .execute_batch("CREATE TABLE test_effects (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .unwrap();
    server
}

fn server() -> TestServer {
    server_with(|_| {})
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A door a test-only provider call waits at until the test opens it.
struct Gate {
    /// (calls that arrived, open)
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            state: Mutex::new((0, false)),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the provider: says it arrived, then waits until the test opens the gate (at
    /// most a minute, so a failed test cannot hold a server worker forever).
    fn arrive_and_wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut state = self.lock();
        state.0 += 1;
        self.changed.notify_all();
        while !state.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until `calls` provider calls are waiting at (or went through) the gate.
    fn wait_for_arrivals(&self, calls: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut state = self.lock();
        while state.0 < calls {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the provider call never started");
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn open(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }
}

/// Opens the gate when dropped, so a failing assertion never leaves a worker waiting.
struct OpenOnDrop(&'static Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A caller's credentials as plain data, so threads can share them: a console session (cookie
/// and CSRF token) or an API key.
#[derive(Clone)]
struct Caller {
    addr: SocketAddr,
    credentials: Vec<(String, String)>,
}

impl Caller {
    fn session(console: &Console<'_>) -> Caller {
        Caller {
            addr: console.server.addr,
            credentials: vec![
                ("Cookie".to_owned(), console.cookie()),
                ("X-CSRF-Token".to_owned(), console.csrf_token.clone()),
            ],
        }
    }

    fn api_key(server: &TestServer, key: &str) -> Caller {
        Caller {
            addr: server.addr,
            credentials: vec![("Authorization".to_owned(), format!("Bearer {key}"))],
        }
    }

    /// POSTs a JSON `body` with `Idempotency-Key: <key>` (no header when `key` is None).
    fn post(&self, path: &str, key: Option<&str>, body: &str) -> TestResponse {
        self.post_as(path, key, JSON, body)
    }

    /// POSTs `body` sent as `content_type`.
    fn post_as(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> TestResponse {
        send_raw(self.addr, &self.raw_post_as(path, key, content_type, body))
    }

    fn raw_post(&self, path: &str, key: Option<&str>, body: &str) -> Vec<u8> {
        self.raw_post_as(path, key, JSON, body)
    }

    fn raw_post_as(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Vec<u8> {
        let mut raw = format!("POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (name, value) in &self.credentials {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(key) = key {
            raw.push_str(&format!("Idempotency-Key: {key}\r\n"));
        }
        raw.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        raw.into_bytes()
    }
}

const JSON: &str = "application/json";
const CSV: &str = "text/csv";

/// Asserts `replay` is `original` replayed: same status, byte-identical body, marked replayed.
fn assert_replay_of(replay: &TestResponse, original: &TestResponse) {
    assert_eq!(replay.status, original.status, "replay: {}", replay.text());
    assert_eq!(
        replay.text(),
        original.text(),
        "the replayed body differs from the first"
    );
    assert_eq!(replay.body, original.body);
    assert_eq!(
        replay.header("Content-Type"),
        original.header("Content-Type")
    );
    assert_eq!(
        replay.header(REPLAYED),
        Some("true"),
        "{:?}",
        replay.headers
    );
}

/// Asserts `response` is the operation's own answer with `status`, not a replay.
fn assert_fresh(response: &TestResponse, status: u16) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header(REPLAYED), None, "{:?}", response.headers);
}

fn id_of(response: &TestResponse) -> String {
    response.json()["id"].as_str().unwrap().to_owned()
}

fn stored_keys(server: &TestServer) -> Vec<String> {
    let conn = server.db();
    let mut statement = conn
        .prepare("SELECT key FROM idempotency_records ORDER BY key")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Replay on the product endpoint.

#[test]
fn same_idempotency_key_replays_the_created_workspace() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    assert_eq!(count(&server, WORKSPACES), 1);

    let first = caller.post(
        "/v1/workspaces",
        Some("create-beta-1"),
        r#"{"name":"Beta"}"#,
    );
    assert_fresh(&first, 201);
    assert_eq!(first.json()["name"], "Beta");
    let replay = caller.post(
        "/v1/workspaces",
        Some("create-beta-1"),
        r#"{"name":"Beta"}"#,
    );
    assert_replay_of(&replay, &first);
    assert_ne!(
        replay.header("X-Request-Id"),
        first.header("X-Request-Id"),
        "each answer still has its own request id"
    );

    assert_eq!(count(&server, WORKSPACES), 2, "exactly one new workspace");
    let listed = owner.get("/v1/workspaces").json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn requests_without_a_key_are_not_deduplicated() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post("/v1/workspaces", None, r#"{"name":"Beta"}"#);
    let second = caller.post("/v1/workspaces", None, r#"{"name":"Beta"}"#);
    assert_fresh(&first, 201);
    assert_fresh(&second, 201);
    assert_ne!(id_of(&first), id_of(&second));
    assert_eq!(count(&server, WORKSPACES), 3);
    assert_eq!(count(&server, RECORDS), 0);
}

/// One POST of the API that takes part, as `every_post_of_the_api_replays_once_and_refuses_a_reused_key`
/// calls it.
struct Case<'c> {
    caller: &'c Caller,
    path: String,
    content_type: &'static str,
    body: String,
    /// Another request under the same key: another body (`{}` where the route takes none).
    other_body: String,
    status: u16,
    /// Counts what the request changes.
    effect: String,
    /// How much the first request changes that count, from its answer.
    change: fn(&Value) -> i64,
}

/// A JSON POST whose first call adds one to `effect`.
fn case<'c>(
    caller: &'c Caller,
    path: impl Into<String>,
    (body, other_body): (Value, Value),
    status: u16,
    effect: impl Into<String>,
) -> Case<'c> {
    Case {
        caller,
        path: path.into(),
        content_type: JSON,
        body: body.to_string(),
        other_body: other_body.to_string(),
        status,
        effect: effect.into(),
        change: |_| 1,
    }
}

/// A POST without a body (an action on the object its path names); the other request sends
/// `{}`.
fn action<'c>(
    caller: &'c Caller,
    path: impl Into<String>,
    status: u16,
    effect: impl Into<String>,
) -> Case<'c> {
    Case {
        body: String::new(),
        ..case(caller, path, (json!(null), json!({})), status, effect)
    }
}

fn activity(action: &str) -> String {
    format!("SELECT count(*) FROM activity WHERE action = '{action}'")
}

/// The id of a created object, after checking it was created.
fn created(response: &TestResponse) -> String {
    assert!(
        [200, 201, 202].contains(&response.status),
        "{}",
        response.text()
    );
    id_of(response)
}

#[test]
fn every_post_of_the_api_replays_once_and_refuses_a_reused_key() {
    let server = server_with(|config| {
        // Test events go to a closed port on loopback: attempts fail at once.
        config.webhooks.allow_private = true;
        config.webhooks.http_hosts = vec!["127.0.0.1".to_owned()];
    });
    let owner = setup(&server);
    let acme = owner.workspace_id().to_owned();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    let (_, key) = create_key(&owner, &scopes, "live");
    let api = Caller::api_key(&server, &key);
    let console = Caller::session(&owner);
    let globex = second_tenant(&owner, "globex@example.com");
    let globex_console = Caller::session(&globex);
    let globex_id = globex.workspace_id().to_owned();

    // What the actions act on, made without keys.
    let credited = console.post(
        &format!("/v1/admin/workspaces/{acme}/wallet-adjustments"),
        None,
        r#"{"amount_minor": 100000, "reason": "tests"}"#,
    );
    assert_eq!(credited.status, 201, "{}", credited.text());
    let contact = |name: &str, phone: &str| {
        let body = json!({"name": name, "phone": phone, "language": "fr"});
        created(&api.post("/v1/contacts", None, &body.to_string()))
    };
    let ann = contact("Ann", "+237677000001");
    let bob = contact("Bob", "+237677000002");
    let cyd = contact("Cyd", "+237677000003");
    let group = created(&api.post("/v1/groups", None, r#"{"name": "Members"}"#));
    let sale =
        json!({"name": "Sale", "channel": "sms", "text": "Hello", "audience": {"all": true}});
    let draft = created(&api.post("/v1/campaigns", None, &sale.to_string()));
    let mut later = sale.clone();
    later["scheduled_at"] = json!("2026-11-26T09:00:00Z");
    let scheduled = created(&api.post("/v1/campaigns", None, &later.to_string()));
    let launched = api.post(
        &format!("/v1/campaigns/{scheduled}/launch"),
        Some("launch-later"),
        "",
    );
    assert_eq!(launched.status, 200, "{}", launched.text());
    assert_eq!(launched.json()["status"], "scheduled");
    let message = created(
        &api.post(
            "/v1/messages",
            Some("send-later"),
            &json!({"channel": "sms", "to": "+237677000004", "text": "Later",
                "scheduled_at": "2026-11-26T09:00:00Z"})
            .to_string(),
        ),
    );
    let hook = json!({"url": "http://127.0.0.1:1/hook", "events": ["payment.refunded"]});
    let endpoint = created(&api.post("/v1/webhook-endpoints", None, &hook.to_string()));
    let delivery = created(&api.post(&format!("/v1/webhook-endpoints/{endpoint}/test"), None, ""));
    let domain = |name: &str| {
        let body = json!({"domain": name});
        created(&api.post("/v1/sending-domains", None, &body.to_string()))
    };
    let (to_approve, to_reject) = (domain("a.acme.example"), domain("b.acme.example"));
    for (who, sender_id) in [(&owner, "ACME"), (&globex, "GLOBEX")] {
        let requested = who.request(
            "PUT",
            "/v1/billing/sender-id",
            Some(&json!({"sender_id": sender_id})),
        );
        assert_eq!(requested.status, 200, "{}", requested.text());
    }
    let verification =
        |name: &str| json!({"business_name": name, "country": "CM", "document_refs": ["rccm-1"]});
    let submitted = globex_console.post(
        "/v1/billing/verification",
        None,
        &verification("Globex SARL").to_string(),
    );
    assert_eq!(submitted.status, 200, "{}", submitted.text());
    // Last, and cancelled first: an import still running.
    let mut rows = String::from("name,phone\n");
    for n in 0..60_000 {
        rows.push_str(&format!("Person {n},+23767{:07}\n", 100_000 + n));
    }
    let running = api.post_as("/v1/contacts/imports", None, CSV, &rows);
    let running = created(&running);

    let cases = [
        Case {
            change: |_| 1,
            ..action(
                &api,
                format!("/v1/contacts/imports/{running}/cancel"),
                200,
                "SELECT count(*) FROM contact_imports WHERE status = 'cancelled'",
            )
        },
        Case {
            change: |rolled| rolled["rolled_back"].as_i64().unwrap(),
            ..action(
                &api,
                format!("/v1/contacts/imports/{running}/rollback"),
                200,
                format!(
                    "SELECT count(*) FROM contacts WHERE import_id = '{running}' \
                     AND deleted_at IS NOT NULL"
                ),
            )
        },
        Case {
            content_type: CSV,
            body: "name,phone\nImp,+237677000005\n".to_owned(),
            other_body: "name,phone\nImp,+237677000006\n".to_owned(),
            ..action(
                &api,
                "/v1/contacts/imports",
                202,
                "SELECT count(*) FROM contact_imports",
            )
        },
        case(
            &api,
            "/v1/contacts",
            (
                json!({"name": "Dee", "phone": "+237677000007"}),
                json!({"name": "Dee", "phone": "+237677000008"}),
            ),
            201,
            // Not the imports' contacts, which their runner writes meanwhile.
            "SELECT count(*) FROM contacts WHERE import_id IS NULL",
        ),
        case(
            &api,
            "/v1/contact-fields",
            (
                json!({"key": "tier", "label": "Tier", "type": "text"}),
                json!({"key": "tier", "label": "Level", "type": "text"}),
            ),
            201,
            "SELECT count(*) FROM contact_fields",
        ),
        case(
            &api,
            "/v1/groups",
            (json!({"name": "VIP"}), json!({"name": "VIP 2"})),
            201,
            "SELECT count(*) FROM groups",
        ),
        case(
            &api,
            format!("/v1/groups/{group}/contacts"),
            (json!({"contact_ids": [ann]}), json!({"contact_ids": [bob]})),
            200,
            "SELECT count(*) FROM group_members",
        ),
        case(
            &api,
            "/v1/segments",
            (
                json!({"name": "French", "rules": {"all": [
                    {"field": "language", "op": "eq", "value": "fr"}]}}),
                json!({"name": "English", "rules": {"all": [
                    {"field": "language", "op": "eq", "value": "en"}]}}),
            ),
            201,
            "SELECT count(*) FROM segments",
        ),
        action(
            &api,
            format!("/v1/contacts/{cyd}/erase"),
            200,
            "SELECT count(*) FROM contacts WHERE erased_at IS NOT NULL",
        ),
        case(
            &api,
            "/v1/campaigns",
            (
                sale.clone(),
                json!({"name": "Other", "channel": "sms", "text": "Hi",
                                  "audience": {"all": true}}),
            ),
            201,
            "SELECT count(*) FROM campaigns",
        ),
        action(
            &api,
            format!("/v1/campaigns/{draft}/duplicate"),
            201,
            "SELECT count(*) FROM campaigns",
        ),
        action(
            &api,
            format!("/v1/campaigns/{scheduled}/cancel"),
            200,
            "SELECT count(*) FROM campaigns WHERE status = 'cancelled'",
        ),
        action(
            &api,
            format!("/v1/messages/{message}/cancel"),
            200,
            "SELECT count(*) FROM messages WHERE status = 'cancelled'",
        ),
        case(
            &api,
            "/v1/webhook-endpoints",
            (
                hook.clone(),
                json!({"url": "http://127.0.0.1:1/other", "events": ["payment.refunded"]}),
            ),
            201,
            "SELECT count(*) FROM webhook_endpoints",
        ),
        action(
            &api,
            format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            200,
            activity("webhook_endpoint.secret_rotated"),
        ),
        action(
            &api,
            format!("/v1/webhook-endpoints/{endpoint}/test"),
            202,
            "SELECT count(*) FROM webhook_deliveries",
        ),
        // A retry requeues its delivery, which the runner then works: no row to count, but the
        // replay below is the first answer, byte for byte.
        Case {
            change: |_| 0,
            ..action(
                &api,
                format!("/v1/webhook-deliveries/{delivery}/retry"),
                202,
                "SELECT count(*) FROM webhook_deliveries",
            )
        },
        case(
            &api,
            "/v1/sending-domains",
            (
                json!({"domain": "news.acme.example"}),
                json!({"domain": "mail.acme.example"}),
            ),
            201,
            "SELECT count(*) FROM sending_domains",
        ),
        case(
            &api,
            "/v1/provider-accounts",
            (
                json!({"channel": "sms", "provider": "webhook",
                       "settings": {"url": "https://sms.example.com/send"}}),
                json!({"channel": "sms", "provider": "webhook",
                       "settings": {"url": "https://sms.example.com/other"}}),
            ),
            201,
            "SELECT count(*) FROM provider_accounts",
        ),
        case(
            &console,
            "/v1/billing/verification",
            (verification("Acme SARL"), verification("Acme SA")),
            200,
            activity("verification.requested"),
        ),
        // Instance admins' decisions (the owner is one).
        action(
            &console,
            format!("/v1/admin/verifications/{acme}/approve"),
            200,
            activity("verification.approved"),
        ),
        case(
            &console,
            format!("/v1/admin/verifications/{globex_id}/reject"),
            (
                json!({"reason": "Unreadable"}),
                json!({"reason": "Expired"}),
            ),
            200,
            activity("verification.rejected"),
        ),
        action(
            &console,
            format!("/v1/admin/sender-ids/{acme}/approve"),
            200,
            activity("sender_id.approved"),
        ),
        case(
            &console,
            format!("/v1/admin/sender-ids/{globex_id}/reject"),
            (json!({"reason": "Not theirs"}), json!({"reason": "Taken"})),
            200,
            activity("sender_id.rejected"),
        ),
        action(
            &console,
            format!("/v1/admin/sending-domains/{to_approve}/approve"),
            200,
            activity("sending_domain.approved"),
        ),
        case(
            &console,
            format!("/v1/admin/sending-domains/{to_reject}/reject"),
            (json!({"reason": "Not theirs"}), json!({"reason": "Taken"})),
            200,
            activity("sending_domain.rejected"),
        ),
    ];

    for (n, case) in cases.iter().enumerate() {
        let key = format!("same-{n}");
        let send = |body: &str| {
            case.caller
                .post_as(&case.path, Some(&key), case.content_type, body)
        };
        let what = format!("POST {}", case.path);
        let (before, records) = (count(&server, &case.effect), count(&server, RECORDS));

        let first = send(&case.body);
        assert_eq!(first.status, case.status, "{what}: {}", first.text());
        assert_eq!(first.header(REPLAYED), None, "{what}");
        let after = count(&server, &case.effect);
        assert_eq!(after - before, (case.change)(&first.json()), "{what}");
        assert_eq!(count(&server, RECORDS), records + 1, "{what}");

        let replay = send(&case.body);
        assert_eq!(replay.status, first.status, "{what}: {}", replay.text());
        assert_eq!(replay.text(), first.text(), "{what}: another body");
        assert_eq!(replay.header(REPLAYED), Some("true"), "{what}");
        assert_eq!(count(&server, &case.effect), after, "{what}: done twice");

        let other = send(&case.other_body);
        assert_eq!(other.status, 422, "{what}: {}", other.text());
        other.assert_error(422, "idempotency_key_reused");
        assert_eq!(count(&server, &case.effect), after, "{what}: changed");
        assert_eq!(count(&server, RECORDS), records + 1, "{what}");
    }

    // The uploads of the replay and of the refused request were never adopted by a job: once
    // the imports have ended, no file is left.
    let imports = server.db_path().parent().unwrap().join("imports");
    let files = || std::fs::read_dir(&imports).map_or(0, |entries| entries.count());
    crate::harness::wait_until("every import file is gone", Duration::from_secs(60), || {
        files() == 0
    });
}

// ---------------------------------------------------------------------------------------------
// Fingerprints.

#[test]
fn whitespace_in_the_body_does_not_change_the_request() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post("/v1/workspaces", Some("ws-1"), r#"{"name":"Beta"}"#);
    assert_fresh(&first, 201);
    let spaced = caller.post(
        "/v1/workspaces",
        Some("ws-1"),
        "\n{ \"name\" :\t\"Beta\" }\r\n",
    );
    assert_replay_of(&spaced, &first);
    assert_eq!(count(&server, WORKSPACES), 2);
}

#[test]
fn key_order_in_the_body_does_not_change_the_request() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post(
        "/test/effects",
        Some("order-1"),
        r#"{"name":"Ada","count":3,"meta":{"x":1,"y":[1,2]}}"#,
    );
    assert_fresh(&first, 201);
    let reordered = caller.post(
        "/test/effects",
        Some("order-1"),
        r#"{"meta":{"y":[1,2],"x":1},"count":3,"name":"Ada"}"#,
    );
    assert_replay_of(&reordered, &first);
    assert_eq!(count(&server, EFFECTS), 1);

    // Array order is part of the value.
    let other_order = caller.post(
        "/test/effects",
        Some("order-1"),
        r#"{"meta":{"y":[2,1],"x":1},"count":3,"name":"Ada"}"#,
    );
    other_order.assert_error(422, "idempotency_key_reused");
    assert_eq!(count(&server, EFFECTS), 1);
}

#[test]
fn a_number_written_another_way_is_the_same_request() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post(
        "/test/effects",
        Some("number-1"),
        r#"{"name":"Ada","count":3}"#,
    );
    assert_fresh(&first, 201);
    // A client that re-serialises its retry may write 3 as 3.0 or 3e0: the same value.
    for spelled in [
        r#"{"name":"Ada","count":3.0}"#,
        r#"{"name":"Ada","count":3e0}"#,
    ] {
        let retry = caller.post("/test/effects", Some("number-1"), spelled);
        assert_replay_of(&retry, &first);
    }
    assert_eq!(count(&server, EFFECTS), 1);
}

#[test]
fn same_key_with_a_changed_value_is_422_and_creates_nothing() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post("/v1/workspaces", Some("reuse-1"), r#"{"name":"Beta"}"#);
    assert_fresh(&first, 201);

    let changed = caller.post("/v1/workspaces", Some("reuse-1"), r#"{"name":"Gamma"}"#);
    changed.assert_error(422, "idempotency_key_reused");
    assert_eq!(changed.header(REPLAYED), None);
    // Another request under the key (activating is scoped to the user, like creating; it reads
    // no body, so it is sent an empty object).
    let beta = id_of(&first);
    let elsewhere = caller.post(
        &format!("/v1/workspaces/{beta}/activate"),
        Some("reuse-1"),
        "{}",
    );
    elsewhere.assert_error(422, "idempotency_key_reused");
    // The path is part of the request: the same empty body to another workspace's path.
    let activated = caller.post(
        &format!("/v1/workspaces/{beta}/activate"),
        Some("path-1"),
        "{}",
    );
    assert_fresh(&activated, 200);
    let original = owner.workspace_id();
    let other_path = caller.post(
        &format!("/v1/workspaces/{original}/activate"),
        Some("path-1"),
        "{}",
    );
    other_path.assert_error(422, "idempotency_key_reused");

    assert_eq!(count(&server, WORKSPACES), 2, "no workspace Gamma");
    assert_eq!(count(&server, EFFECTS), 0);
    let names: Vec<Value> = owner.get("/v1/workspaces").json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["workspace"]["name"].clone())
        .collect();
    assert!(!names.contains(&json!("Gamma")), "{names:?}");
    // The refusal changed nothing: the first request still replays.
    let again = caller.post("/v1/workspaces", Some("reuse-1"), r#"{"name":"Beta"}"#);
    assert_replay_of(&again, &first);
}

// ---------------------------------------------------------------------------------------------
// Scope: (workspace, API key or user, key).

#[test]
fn the_same_key_from_another_user_is_a_different_request() {
    let server = server();
    let owner = setup(&server);
    let member = add_member(&owner, "member@example.com", "member");
    assert_eq!(member.workspace_id(), owner.workspace_id());
    let body = r#"{"name":"Beta"}"#;

    let by_owner = Caller::session(&owner).post("/v1/workspaces", Some("shared-key"), body);
    assert_fresh(&by_owner, 201);
    let by_member = Caller::session(&member).post("/v1/workspaces", Some("shared-key"), body);
    assert_fresh(&by_member, 201);
    assert_ne!(id_of(&by_owner), id_of(&by_member));
    assert_eq!(count(&server, WORKSPACES), 3);

    // Each keeps its own record: both replay their own answer.
    let owner_again = Caller::session(&owner).post("/v1/workspaces", Some("shared-key"), body);
    assert_replay_of(&owner_again, &by_owner);
    let member_again = Caller::session(&member).post("/v1/workspaces", Some("shared-key"), body);
    assert_replay_of(&member_again, &by_member);
    assert_eq!(count(&server, WORKSPACES), 3);
}

#[test]
fn the_same_key_in_another_workspace_is_a_different_request() {
    // /test/effects is scoped per workspace, like sends and launches.
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let body = r#"{"to":"+237600000000"}"#;
    let in_acme = caller.post("/test/effects", Some("per-workspace"), body);
    assert_fresh(&in_acme, 201);

    let created = caller.post("/v1/workspaces", None, r#"{"name":"Beta"}"#);
    let beta = id_of(&created);
    let activated = owner.request("POST", &format!("/v1/workspaces/{beta}/activate"), None);
    assert_eq!(activated.status, 200, "{}", activated.text());
    let in_beta = caller.post("/test/effects", Some("per-workspace"), body);
    assert_fresh(&in_beta, 201);
    assert_eq!(count(&server, EFFECTS), 2);

    // Back in the first workspace the key still means the first request.
    let acme = owner.workspace_id().to_owned();
    let back = owner.request("POST", &format!("/v1/workspaces/{acme}/activate"), None);
    assert_eq!(back.status, 200, "{}", back.text());
    let replay = caller.post("/test/effects", Some("per-workspace"), body);
    assert_replay_of(&replay, &in_acme);
    assert_eq!(count(&server, EFFECTS), 2);
}

#[test]
fn creating_a_workspace_replays_even_after_switching_workspaces() {
    // Creating and switching are about the user, not the active workspace: a retry after a
    // switch (another tab) must not create a second workspace.
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post("/v1/workspaces", Some("create-once"), r#"{"name":"Beta"}"#);
    assert_fresh(&first, 201);
    let beta = id_of(&first);
    let activate = format!("/v1/workspaces/{beta}/activate");
    let switched = caller.post(&activate, Some("switch-once"), "");
    assert_fresh(&switched, 200);
    let retry = caller.post("/v1/workspaces", Some("create-once"), r#"{"name":"Beta"}"#);
    assert_replay_of(&retry, &first);
    let switched_again = caller.post(&activate, Some("switch-once"), "");
    assert_replay_of(&switched_again, &switched);
    assert_eq!(count(&server, WORKSPACES), 2);
}

#[test]
fn the_same_key_from_another_api_key_is_a_different_request() {
    let server = server();
    let owner = setup(&server);
    let (_, first_key) = create_key(&owner, &["messages:send"], "live");
    let (_, second_key) = create_key(&owner, &["messages:send"], "live");
    let body = r#"{"to":"+237600000000"}"#;

    let by_first = Caller::api_key(&server, &first_key).post("/test/effects", Some("k"), body);
    let by_second = Caller::api_key(&server, &second_key).post("/test/effects", Some("k"), body);
    let by_user = Caller::session(&owner).post("/test/effects", Some("k"), body);
    for response in [&by_first, &by_second, &by_user] {
        assert_fresh(response, 201);
    }
    assert_eq!(count(&server, EFFECTS), 3);

    let first_again = Caller::api_key(&server, &first_key).post("/test/effects", Some("k"), body);
    assert_replay_of(&first_again, &by_first);
    assert_eq!(count(&server, EFFECTS), 3);
}

// ---------------------------------------------------------------------------------------------
// The header itself.

#[test]
fn malformed_idempotency_keys_are_400_and_create_nothing() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let too_long = "k".repeat(256);
    for (what, key) in [
        ("empty", ""),
        ("256 characters", too_long.as_str()),
        ("a space inside", "two words"),
        ("a tab inside", "tab\there"),
        ("an unbalanced quote", "\"abc"),
        ("an empty quoted string", "\"\""),
    ] {
        let response = caller.post("/v1/workspaces", Some(key), r#"{"name":"Nope"}"#);
        assert_eq!(response.status, 400, "{what}: {}", response.text());
        response.assert_error(400, "invalid_idempotency_key");
    }
    // A control character is refused by the HTTP parser itself, before crier sees the request:
    // a bare 400 without a body, and the connection closed.
    let response = caller.post("/v1/workspaces", Some("del\u{7f}ete"), r#"{"name":"Nope"}"#);
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(count(&server, WORKSPACES), 1);
    assert_eq!(count(&server, RECORDS), 0);
}

#[test]
fn a_non_ascii_key_creates_nothing() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let raw = caller.raw_post("/v1/workspaces", Some("cl\u{e9}-1"), r#"{"name":"Nope"}"#);
    let mut reader = open_connection(server.addr, &raw);
    let mut first_byte = [0u8; 1];
    // hyper passes non-ASCII header bytes on (RFC 9110 obs-text) and crier refuses the key; an
    // HTTP parser that refused them itself could close without an answer. Any answer is a 400.
    if std::io::Read::read(&mut reader, &mut first_byte).unwrap_or(0) == 1 {
        let mut bytes = first_byte.to_vec();
        std::io::Read::read_to_end(&mut reader, &mut bytes).unwrap_or(0);
        let response = read_response(&mut std::io::BufReader::new(bytes.as_slice()));
        assert_eq!(response.status, 400, "{}", response.text());
    }
    assert_eq!(count(&server, WORKSPACES), 1);
    assert_eq!(count(&server, RECORDS), 0);
}

#[test]
fn a_255_character_key_is_accepted() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let key = "k".repeat(255);
    let first = caller.post("/v1/workspaces", Some(&key), r#"{"name":"Beta"}"#);
    assert_fresh(&first, 201);
    let replay = caller.post("/v1/workspaces", Some(&key), r#"{"name":"Beta"}"#);
    assert_replay_of(&replay, &first);
    assert_eq!(count(&server, WORKSPACES), 2);
}

#[test]
fn a_quoted_key_is_the_same_key_unquoted() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let first = caller.post("/v1/workspaces", Some("\"abc\""), r#"{"name":"Beta"}"#);
    assert_fresh(&first, 201);
    let unquoted = caller.post("/v1/workspaces", Some("abc"), r#"{"name":"Beta"}"#);
    assert_replay_of(&unquoted, &first);
    assert_eq!(count(&server, WORKSPACES), 2);
    assert_eq!(stored_keys(&server), vec!["abc".to_owned()]);
}

#[test]
fn validation_failures_are_not_stored_and_leave_the_key_usable() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    caller
        .post("/v1/workspaces", Some("v-1"), r#"{"name":""}"#)
        .assert_error(422, "validation_failed");
    caller
        .post("/v1/workspaces", Some("v-1"), r#"{"name": "#)
        .assert_error(400, "invalid_json");
    assert_eq!(count(&server, RECORDS), 0);
    assert_eq!(count(&server, WORKSPACES), 1);

    let valid = caller.post("/v1/workspaces", Some("v-1"), r#"{"name":"Beta"}"#);
    assert_fresh(&valid, 201);
    assert_eq!(count(&server, WORKSPACES), 2);
}

#[test]
fn a_refusal_of_the_input_found_by_the_operation_is_not_stored_either() {
    // A contact's phone is checked by the domain as it writes, inside the key's transaction:
    // its 422 is not stored, so the corrected request goes through with the same key.
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    caller
        .post(
            "/v1/contacts",
            Some("c-1"),
            r#"{"name":"Ann","phone":"not a number"}"#,
        )
        .assert_error(422, "validation_failed");
    assert_eq!(count(&server, RECORDS), 0);
    let fixed = r#"{"name":"Ann","phone":"+237677000001"}"#;
    let created = caller.post("/v1/contacts", Some("c-1"), fixed);
    assert_fresh(&created, 201);
    assert_replay_of(&caller.post("/v1/contacts", Some("c-1"), fixed), &created);
    assert_eq!(count(&server, "SELECT count(*) FROM contacts"), 1);
}

#[test]
fn api_key_creation_ignores_the_idempotency_key_and_stores_no_secret() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let body = r#"{"name":"deploy","scopes":["messages:send"],"mode":"live"}"#;
    let first = caller.post("/v1/api-keys", Some("key-1"), body);
    let second = caller.post("/v1/api-keys", Some("key-1"), body);
    assert_fresh(&first, 201);
    assert_fresh(&second, 201);
    assert_ne!(first.json()["key"], second.json()["key"]);
    assert_eq!(owner.keys().len(), 2);
    assert_eq!(count(&server, RECORDS), 0, "a secret must never be stored");
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn fifty_concurrent_duplicates_create_exactly_one_workspace() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let responses: Vec<TestResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let caller = caller.clone();
                scope.spawn(move || {
                    caller.post("/v1/workspaces", Some("race-1"), r#"{"name":"Race"}"#)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
    let bodies: std::collections::BTreeSet<&[u8]> =
        responses.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies.len(), 1, "all answers must be the same body");
    let replayed = responses
        .iter()
        .filter(|r| r.header(REPLAYED) == Some("true"))
        .count();
    assert_eq!(replayed, 49);
    assert_eq!(count(&server, WORKSPACES), 2, "exactly one new workspace");
    assert_eq!(count(&server, RECORDS), 1);
}

// ---------------------------------------------------------------------------------------------
// What is stored: not 5xx, but 4xx outcomes of the operation.

#[test]
fn a_failed_attempt_stores_nothing_and_the_retry_runs_once() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);

    let failed = caller.post("/test/flaky", Some("flaky-1"), "{}");
    failed.assert_error(500, "internal");
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 1);
    assert_eq!(count(&server, RECORDS), 0, "a 5xx is never stored");
    assert_eq!(
        count(&server, WORKSPACES),
        1,
        "the failed effect rolled back"
    );

    let retried = caller.post("/test/flaky", Some("flaky-1"), "{}");
    assert_fresh(&retried, 201);
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 2);
    let replay = caller.post("/test/flaky", Some("flaky-1"), "{}");
    assert_replay_of(&replay, &retried);
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 2);
    assert_eq!(count(&server, WORKSPACES), 2, "the effect happened once");
    assert_eq!(count(&server, RECORDS), 1);

    let missing = caller.post("/test/flaky", None, "{}");
    missing.assert_error(400, "idempotency_key_required");
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::SeqCst), 2, "nothing ran");
    assert_eq!(count(&server, WORKSPACES), 2);
}

#[test]
fn a_conflict_from_the_operation_is_stored_and_replayed_without_its_effect() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);

    let conflict = caller.post("/test/conflicted", Some("c-1"), "{}");
    conflict.assert_error(409, "conflict");
    assert_eq!(conflict.header(REPLAYED), None);
    assert_eq!(
        count(&server, EFFECTS),
        0,
        "the write before the 409 rolled back"
    );
    assert_eq!(count(&server, RECORDS), 1, "a 4xx outcome is stored");

    let replay = caller.post("/test/conflicted", Some("c-1"), "{}");
    assert_replay_of(&replay, &conflict);
    assert_eq!(CONFLICT_RUNS.load(Ordering::SeqCst), 1, "not run again");
    assert_eq!(count(&server, EFFECTS), 0);
}

// ---------------------------------------------------------------------------------------------
// Leased operations (a provider call outside any transaction).

#[test]
fn a_duplicate_of_an_in_flight_call_is_409_then_replays_the_outcome() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let _open = OpenOnDrop(&SLOW_GATE);

    std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| caller.post("/test/slow-provider", Some("pay-1"), "{}"));
        SLOW_GATE.wait_for_arrivals(1);

        let duplicate = caller.post("/test/slow-provider", Some("pay-1"), "{}");
        duplicate.assert_error(409, "idempotency_key_in_use");
        assert_eq!(
            duplicate.header("Retry-After"),
            Some("60"),
            "the default lease is 60 s and the clock has not moved"
        );
        let changed = caller.post("/test/slow-provider", Some("pay-1"), r#"{"amount":2}"#);
        changed.assert_error(422, "idempotency_key_reused");
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);

        SLOW_GATE.open();
        let first = in_flight.join().unwrap();
        assert_fresh(&first, 201);
        assert_eq!(first.json(), json!({"provider_call": 1}));

        let replay = caller.post("/test/slow-provider", Some("pay-1"), "{}");
        assert_replay_of(&replay, &first);
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn an_expired_lease_lets_a_retry_take_over() {
    let server = server_with(|config| config.idempotency_lease = Duration::from_secs(30));
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let _open = OpenOnDrop(&STUCK_GATE);

    std::thread::scope(|scope| {
        let stuck = scope.spawn(|| caller.post("/test/stuck-provider", Some("pay-2"), "{}"));
        STUCK_GATE.wait_for_arrivals(1);

        let early = caller.post("/test/stuck-provider", Some("pay-2"), "{}");
        early.assert_error(409, "idempotency_key_in_use");
        assert_eq!(early.header("Retry-After"), Some("30"));
        server.clock.advance(chrono::Duration::seconds(20));
        let later = caller.post("/test/stuck-provider", Some("pay-2"), "{}");
        later.assert_error(409, "idempotency_key_in_use");
        assert_eq!(later.header("Retry-After"), Some("10"));
        assert_eq!(STUCK_CALLS.load(Ordering::SeqCst), 1);

        server.clock.advance(chrono::Duration::seconds(11));
        let takeover = caller.post("/test/stuck-provider", Some("pay-2"), "{}");
        assert_fresh(&takeover, 201);
        assert_eq!(takeover.json(), json!({"provider_call": 2}));
        assert_eq!(STUCK_CALLS.load(Ordering::SeqCst), 2);
        let replay = caller.post("/test/stuck-provider", Some("pay-2"), "{}");
        assert_replay_of(&replay, &takeover);

        // The abandoned call finally returns; its late outcome does not replace the record.
        STUCK_GATE.open();
        let _late = stuck.join().unwrap();
        let after = caller.post("/test/stuck-provider", Some("pay-2"), "{}");
        assert_replay_of(&after, &takeover);
        assert_eq!(STUCK_CALLS.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_failed_provider_call_frees_the_key_for_a_retry() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);

    caller
        .post("/test/failing-provider", Some("pay-3"), "{}")
        .assert_error(500, "internal");
    assert_eq!(count(&server, RECORDS), 0, "the lease is released");
    let retried = caller.post("/test/failing-provider", Some("pay-3"), "{}");
    assert_fresh(&retried, 201);
    assert_eq!(retried.json(), json!({"provider_call": 2}));
    let replay = caller.post("/test/failing-provider", Some("pay-3"), "{}");
    assert_replay_of(&replay, &retried);
    assert_eq!(FAILING_CALLS.load(Ordering::SeqCst), 2);

    caller
        .post("/test/failing-provider", None, "{}")
        .assert_error(400, "idempotency_key_required");
    assert_eq!(FAILING_CALLS.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------
// Retention.

#[test]
fn records_are_swept_after_the_retention_and_the_key_then_runs_anew() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    let db = Db::open(&DbSettings {
        path: server.db_path(),
        pool_size: 2,
        busy_timeout: Duration::from_secs(5),
        synchronous: Synchronous::Normal,
    })
    .unwrap();

    let early = caller.post("/v1/workspaces", Some("early"), r#"{"name":"Early"}"#);
    assert_fresh(&early, 201);
    server.clock.advance(chrono::Duration::hours(23));
    assert_eq!(
        crier::idempotency::sweep_expired(&db, server.clock.now()).unwrap(),
        0
    );
    assert_eq!(stored_keys(&server), vec!["early".to_owned()]);

    let late = caller.post("/v1/workspaces", Some("late"), r#"{"name":"Late"}"#);
    assert_fresh(&late, 201);
    server.clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        crier::idempotency::sweep_expired(&db, server.clock.now()).unwrap(),
        1
    );
    assert_eq!(stored_keys(&server), vec!["late".to_owned()]);

    let early_again = caller.post("/v1/workspaces", Some("early"), r#"{"name":"Early"}"#);
    assert_fresh(&early_again, 201);
    assert_ne!(id_of(&early_again), id_of(&early));
    let late_again = caller.post("/v1/workspaces", Some("late"), r#"{"name":"Late"}"#);
    assert_replay_of(&late_again, &late);
    assert_eq!(count(&server, WORKSPACES), 4);
}

#[test]
fn a_record_past_its_retention_no_longer_counts_even_before_the_sweep() {
    let server = server();
    let owner = setup(&server);
    // A key, because a console session would itself expire after a day of idleness.
    let (_, key) = create_key(&owner, &["messages:send"], "live");
    let caller = Caller::api_key(&server, &key);
    let first = caller.post("/test/effects", Some("old-key"), r#"{"to":"a"}"#);
    assert_fresh(&first, 201);
    server.clock.advance(chrono::Duration::hours(25));
    // Not swept yet, but expired: a different request with the key is simply a new request.
    let later = caller.post("/test/effects", Some("old-key"), r#"{"to":"b"}"#);
    assert_fresh(&later, 201);
    let again = caller.post("/test/effects", Some("old-key"), r#"{"to":"b"}"#);
    assert_replay_of(&again, &later);
    assert_eq!(count(&server, EFFECTS), 2);
}

#[test]
fn the_query_string_is_part_of_the_request_and_a_repeated_header_is_refused() {
    let server = server();
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    assert_fresh(
        &caller.post("/test/effects?mode=a", Some("q-key"), r#"{"to":"a"}"#),
        201,
    );
    caller
        .post("/test/effects?mode=b", Some("q-key"), r#"{"to":"a"}"#)
        .assert_error(422, "idempotency_key_reused");
    let cookie = owner.cookie();
    let twice = server.request(
        "POST",
        "/test/effects",
        &[
            ("Cookie", cookie.as_str()),
            ("X-CSRF-Token", owner.csrf_token.as_str()),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", "one"),
            ("Idempotency-Key", "two"),
        ],
        br#"{"to":"a"}"#,
    );
    twice.assert_error(400, "invalid_idempotency_key");
    assert_eq!(count(&server, EFFECTS), 1);
}

#[test]
fn the_janitor_thread_sweeps_expired_records_on_its_own() {
    let server = server_with(|config| config.janitor_interval = Duration::from_millis(20));
    let owner = setup(&server);
    let caller = Caller::session(&owner);
    assert_fresh(
        &caller.post("/v1/workspaces", Some("swept"), r#"{"name":"Swept"}"#),
        201,
    );
    assert_eq!(stored_keys(&server), vec!["swept".to_owned()]);
    server.clock.advance(chrono::Duration::hours(25));
    // Nothing but the background janitor deletes it; wait for it, boundedly.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !stored_keys(&server).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the janitor never swept the record"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
