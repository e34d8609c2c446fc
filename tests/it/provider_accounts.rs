//! A workspace's own provider accounts against fake providers on loopback: the CRUD and its
//! bad paths, secrets sealed (never in a response nor in clear in the database), who may manage
//! them, live sends through the workspace's accounts in priority order with failover while
//! another workspace keeps the instance's chain, receipts verified with the account's own
//! secret, a replaced `secrets.key`, and a deleted account with messages still queued for it.

use std::time::Duration;

use serde_json::{Value, json};

use crier::config::Config;
use crier::delivery::settings::{SmsProviderName, WebhookSettings as SmsWebhookSettings};
use crier::web::router::Router;
use crier::webhooks::WebhookSettings;

use crate::auth_fixtures::{Caller, Console, add_member, count, create_key, second_tenant, setup};
use crate::fake_http::{FakeHttp, Reply};
use crate::harness::{TestServer, wait_for_value};
use crate::sending::sms;

const SCOPES: &[&str] = &[
    "messages:send",
    "messages:read",
    "providers:read",
    "providers:write",
];

const TWILIO_TOKEN: &str = "twilio-secret-token-89ab";
const WEBHOOK_SECRET: &str = "whsec-account-secret-cd12";

/// A server whose provider calls may reach loopback over http (the fakes), with the instance's
/// SMS chain a webhook fake of its own (`instance`).
fn loopback_server(instance: &FakeHttp) -> TestServer {
    instance_webhook_server(
        instance,
        WebhookSettings {
            allow_private: true,
            http_hosts: vec!["127.0.0.1".to_owned()],
            timeout: Duration::from_secs(5),
        },
    )
}

/// A server with `targets` as the rule of which addresses workspaces' URLs may reach, and the
/// instance's SMS chain a webhook fake of its own (`instance`).
fn instance_webhook_server(instance: &FakeHttp, targets: WebhookSettings) -> TestServer {
    let instance_url = instance.url();
    TestServer::start_with(
        move |config: &mut Config| {
            config.webhooks = targets;
            config.delivery.sms_providers = vec![SmsProviderName::Webhook];
            config.delivery.webhook = Some(SmsWebhookSettings {
                url: instance_url,
                secret: None,
            });
        },
        Router::standard(),
    )
}

fn accepting(id: &'static str) -> FakeHttp {
    FakeHttp::start(move |_| Reply::json(200, json!({"id": id, "sid": id})))
}

/// The owner's console and a live key with every scope these tests use.
fn owner(server: &TestServer) -> (Console<'_>, Caller<'_>) {
    let console = setup(server);
    let (_, key) = create_key(&console, SCOPES, "live");
    (console, Caller { server, key })
}

fn twilio_account(base_url: &str, priority: i64) -> Value {
    json!({
        "channel": "sms",
        "provider": "twilio",
        "settings": {"account_sid": "AC-client", "base_url": base_url},
        "secrets": {"auth_token": TWILIO_TOKEN},
        "priority": priority,
        "description": "the client's Twilio",
    })
}

fn webhook_account(url: &str, priority: i64) -> Value {
    json!({
        "channel": "sms",
        "provider": "webhook",
        "settings": {"url": url},
        "secrets": {"secret": WEBHOOK_SECRET},
        "priority": priority,
    })
}

impl Caller<'_> {
    fn account(&self, body: Value) -> Value {
        let response = self.post("/v1/provider-accounts", body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }

    fn send_to(&self, to: &str, key: &str) -> Value {
        let authorization = format!("Bearer {}", self.key);
        let response = crate::auth_fixtures::send(
            self.server,
            "POST",
            "/v1/messages",
            vec![
                ("Authorization", authorization.as_str()),
                ("Idempotency-Key", key),
            ],
            Some(&sms(to, "hello")),
        );
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }

    fn await_message(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        wait_for_value(
            &format!("message {id}: {what}"),
            Duration::from_secs(20),
            || self.get(&format!("/v1/messages/{id}")).json(),
            done,
        )
    }
}

fn credit(console: &Console<'_>, workspace_id: &str) {
    let response = console.post(
        &format!("/v1/admin/workspaces/{workspace_id}/wallet-adjustments"),
        &json!({"amount_minor": 10000, "reason": "test credit"}),
    );
    assert_eq!(response.status, 201, "{}", response.text());
}

fn providers_called(message: &Value) -> Vec<String> {
    message["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["provider"].as_str().unwrap().to_owned())
        .collect()
}

/// The bytes of the database and its WAL, where a secret in clear would show.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut bytes = std::fs::read(server.db_path()).unwrap();
    let wal = server.db_path().with_extension("db-wal");
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn accounts_are_created_read_changed_and_deleted_with_secrets_kept_sealed() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (_console, caller) = owner(&server);
    let fake = accepting("SM1");

    let created = caller.account(twilio_account(&fake.url(), 1));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pac_"), "{created}");
    assert_eq!(created["channel"], "sms");
    assert_eq!(created["provider"], "twilio");
    assert_eq!(created["settings"]["account_sid"], "AC-client");
    assert_eq!(
        created["secrets"],
        json!({"auth_token": {"set": true, "last4": "…89ab"}})
    );
    assert_eq!(created["status"], "active");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["priority"], 1);
    let receipts_url = created["receipts_url"].as_str().unwrap();
    assert!(
        receipts_url.starts_with(&format!(
            "http://127.0.0.1/v1/webhooks/sms/twilio/accounts/{id}?token="
        )),
        "{receipts_url}"
    );

    let shown = caller.get(&format!("/v1/provider-accounts/{id}"));
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json(), created);
    let listed = caller.get("/v1/provider-accounts");
    assert_eq!(listed.json()["data"], json!([created]));

    // A change keeps the secret it does not name; a new secret replaces the old one.
    let changed = caller.patch(
        &format!("/v1/provider-accounts/{id}"),
        json!({"priority": 7, "description": null, "settings": {"account_sid": "AC-other"}}),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    let changed = changed.json();
    assert_eq!(changed["priority"], 7);
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["settings"]["account_sid"], "AC-other");
    assert_eq!(changed["secrets"]["auth_token"]["last4"], "…89ab");
    let rotated = caller.patch(
        &format!("/v1/provider-accounts/{id}"),
        json!({"secrets": {"auth_token": "another-token-77ef"}}),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    assert_eq!(rotated.json()["secrets"]["auth_token"]["last4"], "…77ef");
    let short = caller.patch(
        &format!("/v1/provider-accounts/{id}"),
        json!({"secrets": {"auth_token": "tiny"}}),
    );
    assert_eq!(
        short.json()["secrets"]["auth_token"],
        json!({"set": true, "last4": null}),
        "a short secret shows no hint"
    );
    let restored = caller.patch(
        &format!("/v1/provider-accounts/{id}"),
        json!({"secrets": {"auth_token": TWILIO_TOKEN}}),
    );
    assert_eq!(restored.status, 200, "{}", restored.text());

    // Two secrets: replacing one keeps the other.
    let lmt = caller.account(json!({
        "channel": "sms", "provider": "lmt",
        "secrets": {"api_key": "lmt-key-0001", "secret": "lmt-secret-0002"},
    }));
    let lmt_path = format!("/v1/provider-accounts/{}", lmt["id"].as_str().unwrap());
    let one = caller.patch(&lmt_path, json!({"secrets": {"api_key": "lmt-key-0003"}}));
    assert_eq!(
        one.json()["secrets"],
        json!({"api_key": {"set": true, "last4": "…0003"},
               "secret": {"set": true, "last4": "…0002"}}),
        "{}",
        one.text()
    );
    caller
        .patch(&lmt_path, json!({"secrets": {"secret": null}}))
        .assert_error(422, "validation_failed");
    assert_eq!(caller.delete(&lmt_path).status, 204);

    // No response and no byte of the database holds a secret in clear; the activity log names
    // the secrets changed, never their values.
    for response in [&shown, &listed, &restored] {
        assert!(
            !response.text().contains(TWILIO_TOKEN),
            "{}",
            response.text()
        );
    }
    for secret in [
        TWILIO_TOKEN,
        "another-token-77ef",
        "lmt-secret-0002",
        "lmt-key-0003",
    ] {
        assert!(
            !contains(&database_bytes(&server), secret),
            "{secret} in the database"
        );
    }
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM activity WHERE action LIKE 'provider_account.%'"
        ),
        8
    );

    let deleted = caller.delete(&format!("/v1/provider-accounts/{id}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    caller
        .get(&format!("/v1/provider-accounts/{id}"))
        .assert_error(404, "not_found");
    assert_eq!(
        count(&server, "SELECT count(*) FROM provider_account_secrets"),
        0
    );
    assert_eq!(
        count(
            &server,
            "SELECT count(*) FROM activity WHERE action = 'provider_account.deleted'"
        ),
        2
    );
}

#[test]
fn bad_accounts_are_refused_naming_the_field_and_change_nothing() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (_console, caller) = owner(&server);
    let fake = accepting("SM1");
    let refused = |body: Value, field: &str| {
        let response = caller.post("/v1/provider-accounts", body.clone());
        let envelope = response.assert_error(422, "validation_failed");
        assert!(
            envelope["error"]["details"]["fields"][field].is_string(),
            "{body} → {envelope}"
        );
        envelope["error"]["details"]["fields"][field]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let with = |change: Value| {
        let mut body = twilio_account(&fake.url(), 1);
        for (name, value) in change.as_object().unwrap() {
            body[name] = value.clone();
        }
        body
    };

    let why = refused(with(json!({"provider": "sms77"})), "provider");
    assert!(why.contains("twilio"), "{why}");
    refused(with(json!({"provider": "log"})), "provider");
    refused(with(json!({"channel": "fax"})), "channel");
    refused(
        with(json!({"settings": {"base_url": fake.url()}})),
        "settings.account_sid",
    );
    refused(with(json!({"secrets": {}})), "secrets.auth_token");
    refused(
        with(json!({"settings": {"account_sid": "AC1", "colour": "blue"}})),
        "settings.colour",
    );
    refused(
        with(json!({"secrets": {"auth_token": "x", "password": "y"}})),
        "secrets.password",
    );
    let why = refused(
        with(json!({"settings": {"account_sid": "AC1", "base_url": "ftp://example.com"}})),
        "settings.base_url",
    );
    assert!(why.contains("URL"), "{why}");
    let response = caller.post(
        "/v1/provider-accounts",
        json!({"channel": "sms", "provider": "webhook", "settings": {"url": "ftp://x"}}),
    );
    assert_eq!(
        response.assert_error(422, "validation_failed")["error"]["details"]["fields"],
        json!({"settings.url": "must be an http:// or https:// URL such as \
                                https://crier.example.com, got \"ftp://x\""}),
        "the bad value alone, not its consequence in the instance's words"
    );
    refused(with(json!({"priority": 5000})), "priority");
    refused(
        json!({"channel": "email", "provider": "smtp", "settings": {"host": "smtp.example.com", "port": "x"}}),
        "settings.port",
    );
    let why = refused(
        json!({"channel": "email", "provider": "smtp",
               "settings": {"host": "smtp.example.com", "username": "me"}}),
        "settings.username",
    );
    assert!(why.contains("password"), "{why}");
    refused(
        json!({"channel": "email", "provider": "smtp",
               "settings": {"host": "smtp.example.com", "from": "not a mailbox"}}),
        "settings.from",
    );
    let unknown = caller.post("/v1/provider-accounts", with(json!({"fallback": true})));
    assert_eq!(unknown.status, 422, "{}", unknown.text());
    assert_eq!(count(&server, "SELECT count(*) FROM provider_accounts"), 0);

    // A provider URL on a private address is refused unless the operator allows it.
    let strict = TestServer::start();
    let (_console, strict_caller) = owner(&strict);
    let response = strict_caller.post("/v1/provider-accounts", twilio_account(&fake.url(), 1));
    let envelope = response.assert_error(422, "validation_failed");
    assert!(
        envelope["error"]["details"]["fields"]["settings.base_url"].is_string(),
        "{envelope}"
    );

    // A valid email account, then PATCH bad paths: nothing changes.
    let smtp = caller.account(json!({
        "channel": "email", "provider": "smtp",
        "settings": {"host": "smtp.example.com", "port": 465, "security": "tls",
                     "username": "me", "from": "Client <news@client.example>"},
        "secrets": {"password": "smtp-password-1234"},
    }));
    assert_eq!(smtp["settings"]["port"], "465");
    assert_eq!(smtp["receipts_url"], Value::Null);
    let path = format!("/v1/provider-accounts/{}", smtp["id"].as_str().unwrap());
    let removed_password = caller.patch(&path, json!({"secrets": {"password": null}}));
    let envelope = removed_password.assert_error(422, "validation_failed");
    assert!(
        envelope["error"]["details"]["fields"]["settings.username"].is_string(),
        "{envelope}"
    );
    caller
        .patch(&path, json!({"settings": {"host": null}}))
        .assert_error(422, "validation_failed");
    assert_eq!(caller.get(&path).json(), smtp);
}

#[test]
fn only_owners_and_admins_or_scoped_live_keys_manage_their_own_workspace_accounts() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (console, caller) = owner(&server);
    let fake = accepting("SM1");
    let account = caller.account(twilio_account(&fake.url(), 1));
    let path = format!("/v1/provider-accounts/{}", account["id"].as_str().unwrap());

    // An owner's session works; a member's does not.
    assert_eq!(console.get(&path).status, 200);
    let member = add_member(&console, "member@example.com", "member");
    member.get(&path).assert_error(403, "forbidden");
    member
        .post("/v1/provider-accounts", &twilio_account(&fake.url(), 1))
        .assert_error(403, "forbidden");

    // A key without the scope.
    let (_, sender_key) = create_key(&console, &["messages:send"], "live");
    let sender = Caller {
        server: &server,
        key: sender_key,
    };
    sender.get(&path).assert_error(403, "insufficient_scope");
    sender
        .post("/v1/provider-accounts", twilio_account(&fake.url(), 1))
        .assert_error(403, "insufficient_scope");

    // A test key: an empty world, and no writes.
    let (_, test_key) = create_key(&console, SCOPES, "test");
    let tester = Caller {
        server: &server,
        key: test_key,
    };
    assert_eq!(
        tester.get("/v1/provider-accounts").json()["data"],
        json!([])
    );
    tester.get(&path).assert_error(404, "not_found");
    tester
        .post("/v1/provider-accounts", twilio_account(&fake.url(), 1))
        .assert_error(403, "forbidden");

    // Another workspace's owner finds nothing.
    let other = second_tenant(&console, "globex@example.com");
    other.get(&path).assert_error(404, "not_found");
    other
        .patch(&path, &json!({"priority": 3}))
        .assert_error(404, "not_found");
    other.delete(&path).assert_error(404, "not_found");
    assert_eq!(other.get("/v1/provider-accounts").json()["data"], json!([]));
    assert_eq!(caller.get(&path).json(), account);
}

#[test]
fn live_sends_take_the_workspace_accounts_in_priority_order_and_others_the_instance_chain() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (console, caller) = owner(&server);
    credit(&console, console.workspace_id());
    let busy_twilio = FakeHttp::start(|_| Reply::text(503, "busy"));
    let client_webhook = accepting("client-1");
    // Created second, tried first: priority decides, not age.
    let second = caller.account(webhook_account(&client_webhook.url(), 2));
    let first = caller.account(twilio_account(&busy_twilio.url(), 1));
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let route = json!({"matched": "accounts", "providers": [first_id, second_id]});

    let estimate = caller.post("/v1/messages/estimate", sms("+237677123456", "hello"));
    assert_eq!(estimate.json()["route"], route, "{}", estimate.text());
    let created = caller.send_to("+237677123456", "one");
    assert_eq!(created["route"], route);
    let id = created["id"].as_str().unwrap();
    let sent = caller.await_message(id, "sent", |m| m["status"] == "sent");
    assert_eq!(providers_called(&sent), ["twilio", "webhook"]);
    assert_eq!(sent["provider"], "webhook");
    assert_eq!(sent["provider_message_id"], "client-1");
    assert_eq!(busy_twilio.requests().len(), 1);
    let delivered_to = client_webhook.requests();
    assert_eq!(delivered_to.len(), 1);
    assert_eq!(
        delivered_to[0].json()["receipt_url"],
        second["receipts_url"],
        "the provider is given the account's own receipt URL"
    );
    assert!(instance.requests().is_empty(), "never the instance's chain");

    // A receipt at the account's URL, verified with its own secret; a wrong token is refused.
    let receipts_url = second["receipts_url"].as_str().unwrap();
    let path = &receipts_url[receipts_url.find("/v1/").unwrap()..];
    let receipt = json!({"id": "client-1", "status": "delivered"}).to_string();
    let forged = path.replace("token=", "token=x");
    server
        .post_json(&forged, &receipt)
        .assert_error(401, "invalid_signature");
    let instance_url = format!("/v1/webhooks/sms/webhook/accounts/{first_id}?token=x");
    server
        .post_json(&instance_url, &receipt)
        .assert_error(404, "not_found");
    let applied = server.post_json(path, &receipt);
    assert_eq!(applied.status, 200, "{}", applied.text());
    assert_eq!(applied.json()["applied"], 1);
    assert_eq!(
        caller.get(&format!("/v1/messages/{id}")).json()["status"],
        "delivered"
    );

    // Another workspace, without accounts, keeps the instance's chain.
    let other = second_tenant(&console, "globex@example.com");
    credit(&console, other.workspace_id());
    let (_, other_key) = create_key(&other, SCOPES, "live");
    let other_caller = Caller {
        server: &server,
        key: other_key,
    };
    let theirs = other_caller.send_to("+237677123456", "theirs");
    assert_eq!(
        theirs["route"],
        json!({"matched": "default", "providers": ["webhook"]})
    );
    let theirs = other_caller.await_message(theirs["id"].as_str().unwrap(), "sent", |m| {
        m["status"] == "sent"
    });
    assert_eq!(theirs["provider_message_id"], "instance-1");
    assert_eq!(instance.requests().len(), 1);
    assert_eq!(client_webhook.requests().len(), 1);

    // The account's receipt URL changes only its own workspace's messages, whatever id it names
    // (both are `webhook` messages here).
    let foreign = json!({"id": "instance-1", "status": "failed"}).to_string();
    let ignored = server.post_json(path, &foreign);
    assert_eq!(ignored.status, 200, "{}", ignored.text());
    assert_eq!(ignored.json()["applied"], 0);
    let theirs_id = theirs["id"].as_str().unwrap();
    assert_eq!(
        other_caller
            .get(&format!("/v1/messages/{theirs_id}"))
            .json()["status"],
        "sent"
    );

    // A STOP sent to the account's numbers unsubscribes the sender in this workspace only,
    // though the other one wrote to the same phone too.
    let ours = console.post(
        "/v1/contacts",
        &json!({"name": "Ada", "phone": "+237677123456"}),
    );
    assert_eq!(ours.status, 201, "{}", ours.text());
    let theirs_contact = other.post(
        "/v1/contacts",
        &json!({"name": "Ada", "phone": "+237677123456"}),
    );
    assert_eq!(theirs_contact.status, 201, "{}", theirs_contact.text());
    let inbound_url = second["inbound_url"].as_str().unwrap();
    let inbound_path = &inbound_url[inbound_url.find("/v1/").unwrap()..];
    assert_eq!(inbound_path, path.replace("?token=", "/inbound?token="));
    let stop = json!({"from": "+237677123456", "to": "ACME", "text": "STOP"}).to_string();
    server
        .post_json(&inbound_path.replace("token=", "token=x"), &stop)
        .assert_error(401, "invalid_signature");
    let stopped = server.post_json(inbound_path, &stop);
    assert_eq!(stopped.status, 200, "{}", stopped.text());
    assert_eq!(stopped.json()["unsubscribed"], 1);
    let contact_of = |console: &Console<'_>, id: &Value| {
        console
            .get(&format!("/v1/contacts/{}", id.as_str().unwrap()))
            .json()
    };
    assert_eq!(
        contact_of(&console, &ours.json()["id"])["sms_unsubscribed_via"],
        "sms_keyword"
    );
    assert!(contact_of(&other, &theirs_contact.json()["id"])["sms_unsubscribed_at"].is_null());

    // A test key of the first workspace: the log provider, as always.
    let (_, test_key) = create_key(&console, SCOPES, "test");
    let tester = Caller {
        server: &server,
        key: test_key,
    };
    let test = tester.send_to("+237677123456", "test");
    assert_eq!(
        test["route"],
        json!({"matched": "test", "providers": ["log"]})
    );

    // A disabled account is skipped by new messages: the route names the other one only.
    let disabled = caller.patch(
        &format!("/v1/provider-accounts/{first_id}"),
        json!({"enabled": false}),
    );
    assert_eq!(disabled.json()["status"], "disabled");
    let created = caller.send_to("+237677123456", "two");
    assert_eq!(
        created["route"],
        json!({"matched": "accounts", "providers": [second_id]})
    );
    let sent = caller.await_message(created["id"].as_str().unwrap(), "sent", |m| {
        m["status"] == "sent"
    });
    assert_eq!(providers_called(&sent), ["webhook"]);
    assert_eq!(busy_twilio.requests().len(), 1);
}

#[test]
fn a_replaced_key_file_or_a_deleted_account_never_breaks_delivery() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (console, caller) = owner(&server);
    credit(&console, console.workspace_id());
    let client = accepting("client-1");
    let account = caller.account(webhook_account(&client.url(), 1));
    let path = format!("/v1/provider-accounts/{}", account["id"].as_str().unwrap());
    let key = caller.key.clone();
    drop(console);

    // Restart with another secrets.key: the account needs its secrets again.
    let data = server.stop_keeping_data();
    let key_file = data.config.data_dir.join("secrets.key");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    let server = TestServer::start_on(data, Router::standard());
    let caller = Caller {
        server: &server,
        key,
    };
    let shown = caller.get(&path);
    assert_eq!(shown.status, 200, "{}", shown.text());
    let shown = shown.json();
    assert_eq!(shown["status"], "needs_secrets");
    assert_eq!(shown["receipts_url"], Value::Null);
    assert_eq!(shown["secrets"]["secret"]["set"], true);
    assert_eq!(caller.get("/v1/provider-accounts").status, 200);

    // A send meanwhile fails retryably with the reason, and waits: never the instance's chain.
    let created = caller.send_to("+237677123456", "locked");
    let id = created["id"].as_str().unwrap().to_owned();
    let waiting = caller.await_message(&id, "retried", |m| {
        m["status"] == "queued" && m["delivery_cycles"] == 1
    });
    assert_eq!(waiting["error"]["code"], "provider_account_unavailable");
    assert_eq!(providers_called(&waiting), ["provider_account"]);
    assert!(instance.requests().is_empty());
    assert!(client.requests().is_empty());

    // Secrets entered again: the account sends, the waiting message goes out at its retry.
    let fixed = caller.patch(&path, json!({"secrets": {"secret": "new-secret-0000"}}));
    assert_eq!(fixed.json()["status"], "active", "{}", fixed.text());
    server.clock.advance(chrono::Duration::hours(1));
    let sent = caller.await_message(&id, "sent", |m| m["status"] == "sent");
    assert_eq!(sent["provider"], "webhook");
    assert_eq!(client.requests().len(), 1);

    // A message queued for an account deleted since: retried with the reason, never a crash,
    // then failed and refunded after its last cycle.
    let busy = FakeHttp::start(|_| Reply::text(503, "busy"));
    caller
        .patch(&path, json!({"settings": {"url": busy.url()}}))
        .json();
    let created = caller.send_to("+237677123456", "orphan");
    let id = created["id"].as_str().unwrap().to_owned();
    caller.await_message(&id, "retried", |m| {
        m["status"] == "queued" && m["delivery_cycles"] == 1
    });
    assert_eq!(caller.delete(&path).status, 204);
    server.clock.advance(chrono::Duration::hours(2));
    let retried = caller.await_message(&id, "retried without its account", |m| {
        m["delivery_cycles"] == 2 && m["status"] == "queued"
    });
    assert_eq!(retried["error"]["code"], "provider_account_unavailable");
    let failed = wait_for_value(
        "the orphan fails after its last cycle",
        Duration::from_secs(30),
        || {
            server.clock.advance(chrono::Duration::hours(2));
            caller.get(&format!("/v1/messages/{id}")).json()
        },
        |m| m["status"] == "failed",
    );
    assert_eq!(failed["error"]["code"], "provider_account_unavailable");
    assert!(instance.requests().is_empty());
}

#[test]
fn live_email_goes_through_the_workspace_smtp_account_with_its_own_from() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (console, caller) = owner(&server);
    credit(&console, console.workspace_id());
    let recorder = crate::smtp_provider::Recorder::default();
    let port = crate::smtp_provider::start(&recorder, false);
    let account = caller.account(json!({
        "channel": "email", "provider": "smtp",
        "settings": {"host": "127.0.0.1", "port": port, "security": "none",
                     "from": "Client <news@client.example>"},
    }));
    assert_eq!(
        account["secrets"],
        json!({"password": {"set": false, "last4": null}})
    );

    let authorization = format!("Bearer {}", caller.key);
    let created = crate::auth_fixtures::send(
        &server,
        "POST",
        "/v1/messages",
        vec![
            ("Authorization", authorization.as_str()),
            ("Idempotency-Key", "email-1"),
        ],
        Some(
            &json!({"channel": "email", "to": "ada@example.com", "subject": "Hello",
                     "text": "Hi"}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let created = created.json();
    assert_eq!(
        created["route"],
        json!({"matched": "accounts", "providers": [account["id"]]})
    );
    let sent = caller.await_message(created["id"].as_str().unwrap(), "sent", |m| {
        m["status"] == "sent"
    });
    assert_eq!(sent["provider"], "smtp");
    let received = recorder.received.lock().unwrap();
    assert_eq!(received.mail_from, ["news@client.example"]);
    assert!(
        received.messages[0].contains("From: Client <news@client.example>"),
        "{}",
        received.messages[0]
    );

    // An SMS of the same workspace, with no SMS account, keeps the instance's chain.
    drop(received);
    let sms = caller.send_to("+237677123456", "sms-1");
    assert_eq!(
        sms["route"],
        json!({"matched": "default", "providers": ["webhook"]})
    );

    // An SMTP host on a private address needs the operator's permission.
    let strict = TestServer::start();
    let (_console, strict_caller) = owner(&strict);
    let refused = strict_caller.post(
        "/v1/provider-accounts",
        json!({"channel": "email", "provider": "smtp", "settings": {"host": "10.0.0.7"}}),
    );
    let envelope = refused.assert_error(422, "validation_failed");
    assert!(
        envelope["error"]["details"]["fields"]["settings.host"]
            .as_str()
            .unwrap()
            .contains("private"),
        "{envelope}"
    );
}

#[test]
fn a_stop_to_a_twilio_account_is_checked_with_the_accounts_own_auth_token() {
    let instance = accepting("instance-1");
    let server = loopback_server(&instance);
    let (console, caller) = owner(&server);
    credit(&console, console.workspace_id());
    let twilio = accepting("SM1");
    let account = caller.account(twilio_account(&twilio.url(), 1));
    let sent = caller.send_to("+237677123456", "to-ada");
    caller.await_message(sent["id"].as_str().unwrap(), "sent", |m| {
        m["status"] == "sent"
    });
    let ada = console.post(
        "/v1/contacts",
        &json!({"name": "Ada", "phone": "+237677123456"}),
    );
    assert_eq!(ada.status, 201, "{}", ada.text());
    let ada_path = format!("/v1/contacts/{}", ada.json()["id"].as_str().unwrap());

    let inbound_url = account["inbound_url"].as_str().unwrap();
    let path = &inbound_url[inbound_url.find("/v1/").unwrap()..];
    let fields = [
        ("From", "+237677123456"),
        ("To", "+15005550006"),
        ("Body", "STOP"),
    ];
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let post = |signature: &str| {
        server.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", signature),
            ],
            body.as_bytes(),
        )
    };
    // Signed with the instance's token or another: refused, nothing changes.
    let wrong = crate::unsubscribe::twilio_signature("instance-token", inbound_url, &fields);
    post(&wrong).assert_error(401, "invalid_signature");
    assert!(console.get(&ada_path).json()["sms_unsubscribed_at"].is_null());

    let right = crate::unsubscribe::twilio_signature(TWILIO_TOKEN, inbound_url, &fields);
    let answered = post(&right);
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert!(answered.text().contains("<Response></Response>"));
    assert_eq!(
        console.get(&ada_path).json()["sms_unsubscribed_via"],
        "sms_keyword"
    );
}

/// A URL a workspace gives is called through the guarded client: a name that resolves to
/// loopback is refused at connect time unless the operator allows private targets, and nothing
/// reaches the address; the instance's own providers are the operator's and are not guarded.
#[test]
fn an_account_url_resolving_to_a_private_address_is_refused_at_connect_time() {
    let instance = accepting("instance-1");
    let server = instance_webhook_server(
        &instance,
        WebhookSettings {
            allow_private: false,
            http_hosts: vec!["localhost".to_owned()],
            timeout: Duration::from_secs(5),
        },
    );
    let (console, caller) = owner(&server);
    credit(&console, console.workspace_id());
    let client = accepting("client-1");
    let url = format!("http://localhost:{}/sms", client.addr().port());
    caller.account(webhook_account(&url, 1));

    let created = caller.send_to("+237677123456", "guarded");
    let id = created["id"].as_str().unwrap().to_owned();
    let refused = caller.await_message(&id, "refused, to be retried", |m| {
        m["status"] == "queued" && m["delivery_cycles"] == 1
    });
    assert_eq!(refused["error"]["code"], "forbidden_target", "{refused}");
    assert!(client.requests().is_empty());
    assert!(instance.requests().is_empty(), "never the instance's chain");

    // An SMTP host is a name lettre resolves itself: crier resolves it first, the same way.
    let recorder = crate::smtp_provider::Recorder::default();
    let port = crate::smtp_provider::start(&recorder, false);
    caller.account(json!({
        "channel": "email", "provider": "smtp",
        "settings": {"host": "localhost", "port": port, "security": "none",
                     "from": "Client <news@client.example>"},
    }));
    let authorization = format!("Bearer {}", caller.key);
    let created = crate::auth_fixtures::send(
        &server,
        "POST",
        "/v1/messages",
        vec![
            ("Authorization", authorization.as_str()),
            ("Idempotency-Key", "guarded-email"),
        ],
        Some(&json!({"channel": "email", "to": "ada@example.com", "subject": "Hi", "text": "Hi"})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let waiting = caller.await_message(&id, "its account unusable", |m| {
        m["status"] == "queued" && m["delivery_cycles"] == 1
    });
    assert_eq!(waiting["error"]["code"], "provider_account_unavailable");
    assert!(recorder.received.lock().unwrap().messages.is_empty());
}
