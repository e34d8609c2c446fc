//! Sending domains: a workspace's own From domain and DKIM key. The CRUD and its refusals, the
//! key never shown nor stored in clear, the admin's approval, and live email that reaches a
//! real SMTP server (mailin-embedded) From the workspace's mailbox with a signature that
//! verifies — independently, with tests/it/dkim.rs's canonicalisation — against the record the
//! API told the workspace to publish; other workspaces keep the instance's From and key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, Console, add_member, count, create_key, second_tenant, setup};
use crate::dkim::{RSA_PEM, RSA_PKCS1, RSA_SPKI, Sink, check, smtp_server, start};
use crate::harness::{TestResponse, TestServer};

/// A throwaway 512-bit RSA key (openssl genpkey), too short to sign with.
const SHORT_RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAsi4/gvnGwbre8vBQ
6O26xUQz/ofmRdRLMgFI7J81ovaNFXBJICXSgG/mjxkOol1isCCuWvNPPxM9VKLX
EqXqlwIDAQABAkEAp2tzO9MMIX4//I83xxWRF8f0/uWcxeIq4Yp5hfQ2xq5GKOWM
mYj8Z0oa2ywCe9W4kvYl7HvuUJAp9sxenijs2QIhAOubvKvqCuyEjvFhFX8G5wxk
+k0mZ/E8ncPtlKuzILkVAiEAwZoc4ulhYG5EkKsho+MVK/+3sn90Z0Hov61UDA71
Z/sCIA1pwVT8LwEGDuk5ALNJnk+7U/Cedh5quASWevdHbF59AiAET10DRDTRw8Kt
AdJO5rhK8Xdydtntjo8S7VXoqtCVzwIgXZ0vUpnfFUq9f8VxryfT1SZBuAufnAxw
9VAOw6eGCT0=
-----END PRIVATE KEY-----
";

const DOMAIN_SCOPES: &[&str] = &["domains:read", "domains:write"];

fn domains_key<'s>(console: &Console<'s>, scopes: &[&str], mode: &str) -> Caller<'s> {
    let (_, key) = create_key(console, scopes, mode);
    Caller {
        server: console.server,
        key,
    }
}

fn put(caller: &Caller<'_>, path: &str, body: Value) -> TestResponse {
    caller.call("PUT", path, Some(&body))
}

fn rows(server: &TestServer) -> i64 {
    count(server, "SELECT count(*) FROM sending_domains")
}

fn created(caller: &Caller<'_>, body: Value) -> Value {
    let response = caller.post("/v1/sending-domains", body);
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

fn decide(admin: &Console<'_>, id: &str, verb: &str, body: Value) -> TestResponse {
    admin.post(&format!("/v1/admin/sending-domains/{id}/{verb}"), &body)
}

/// The public key of a `v=DKIM1; k=…; p=…` record.
fn record_key(value: &str) -> (String, Vec<u8>) {
    let tags: Vec<(&str, &str)> = value
        .split(';')
        .map(|tag| tag.trim().split_once('=').unwrap())
        .collect();
    assert_eq!(tags[0], ("v", "DKIM1"), "{value}");
    let kind = tags.iter().find(|(n, _)| *n == "k").unwrap().1.to_owned();
    let p = tags.iter().find(|(n, _)| *n == "p").unwrap().1;
    (kind, BASE64.decode(p).unwrap())
}

#[test]
fn domains_are_added_listed_shown_and_deleted_and_bad_input_changes_nothing() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = domains_key(&owner, DOMAIN_SCOPES, "live");

    // Generated: Ed25519, the default selector, a record whose key is 32 bytes.
    let generated = created(&api, json!({"domain": " News.Acme.Example "}));
    assert_eq!(generated["domain"], "news.acme.example");
    assert_eq!(generated["status"], "pending");
    assert_eq!(generated["algorithm"], "ed25519-sha256");
    assert_eq!(generated["selector"], "crier2026");
    assert!(generated["id"].as_str().unwrap().starts_with("sdm_"));
    assert_eq!(generated["from"], Value::Null);
    let record = &generated["dns_record"];
    assert_eq!(record["name"], "crier2026._domainkey.news.acme.example");
    assert_eq!(record["type"], "TXT");
    let (kind, public) = record_key(record["value"].as_str().unwrap());
    assert_eq!(kind, "ed25519");
    assert_eq!(public.len(), 32);

    // Imported RSA: the record carries the key as openssl derives it.
    let imported = created(
        &api,
        json!({"domain": "acme.example", "selector": "s1.eu", "private_key_pem": RSA_PEM}),
    );
    assert_eq!(imported["algorithm"], "rsa-sha256");
    assert_eq!(
        imported["dns_record"]["value"],
        format!("v=DKIM1; k=rsa; p={RSA_SPKI}")
    );
    assert_eq!(
        imported["dns_record"]["name"],
        "s1.eu._domainkey.acme.example"
    );
    let id = imported["id"].as_str().unwrap().to_owned();

    // Bad input: 422 on its field, nothing stored.
    let before = rows(&server);
    for (body, field) in [
        (json!({"domain": "localhost"}), "domain"),
        (json!({"domain": "bücher.example"}), "domain"),
        (json!({"domain": "a..example"}), "domain"),
        (json!({"domain": "192.168.0.1"}), "domain"),
        (
            json!({"domain": "ok.example", "selector": "a b"}),
            "selector",
        ),
        (json!({"domain": "ok.example", "selector": ""}), "selector"),
        (
            json!({"domain": "ok.example", "private_key_pem": "not a key"}),
            "private_key_pem",
        ),
        (
            json!({"domain": "ok.example", "private_key_pem": SHORT_RSA_PEM}),
            "private_key_pem",
        ),
        (
            json!({"domain": "ok.example",
                   "private_key_pem": "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"}),
            "private_key_pem",
        ),
    ] {
        let response = api.post("/v1/sending-domains", body.clone());
        let error = response.assert_error(422, "validation_failed");
        assert!(
            error["error"]["details"]["fields"][field].is_string(),
            "{body}: {error}"
        );
    }
    let both = api.post(
        "/v1/sending-domains",
        json!({"domain": "nope", "private_key_pem": "nope"}),
    );
    let fields = &both.assert_error(422, "validation_failed")["error"]["details"]["fields"];
    assert!(fields["domain"].is_string() && fields["private_key_pem"].is_string());
    api.post(
        "/v1/sending-domains",
        json!({"domain": "ok.example", "dkim": true}),
    )
    .assert_error(422, "validation_failed");
    // The same domain twice in one workspace.
    api.post("/v1/sending-domains", json!({"domain": "ACME.example"}))
        .assert_error(409, "conflict");
    assert_eq!(rows(&server), before);

    // The private key is in no answer and not in the database file in clear.
    let list = api.get("/v1/sending-domains");
    assert_eq!(list.status, 200, "{}", list.text());
    let ids: Vec<String> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    // Newest first; two made in the same millisecond keep no order between them.
    let mut ids = ids;
    ids.sort();
    let mut expected = vec![id.clone(), generated["id"].as_str().unwrap().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);
    let shown = api.get(&format!("/v1/sending-domains/{id}"));
    assert_eq!(shown.status, 200);
    let pem_line = RSA_PEM.lines().nth(2).unwrap();
    assert!(pem_line.len() >= 60, "{pem_line}");
    for text in [list.text(), shown.text()] {
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains(pem_line),
            "{text}"
        );
        assert!(!text.contains("private_key"), "{text}");
    }
    let db_path = server.db_path();
    let mut bytes = std::fs::read(&db_path).unwrap();
    let mut wal_path = db_path.clone().into_os_string();
    wal_path.push("-wal");
    if let Ok(wal) = std::fs::read(&wal_path) {
        bytes.extend(wal);
    }
    for needle in [pem_line.as_bytes(), b"PRIVATE KEY"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} in the database file",
            String::from_utf8_lossy(needle)
        );
    }

    // Unknown ids, malformed ids: 404.
    api.get("/v1/sending-domains/sdm_01JD00000000000000000000")
        .assert_error(404, "not_found");
    api.get("/v1/sending-domains/whe_1")
        .assert_error(404, "not_found");

    // A From needs an active domain.
    put(
        &api,
        &format!("/v1/sending-domains/{id}"),
        json!({"from": "news@acme.example"}),
    )
    .assert_error(409, "conflict");
    put(&api, &format!("/v1/sending-domains/{id}"), json!({}))
        .assert_error(422, "validation_failed");

    // Deleted: gone, and a second delete is 404.
    let deleted = api.delete(&format!("/v1/sending-domains/{id}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    api.get(&format!("/v1/sending-domains/{id}"))
        .assert_error(404, "not_found");
    api.delete(&format!("/v1/sending-domains/{id}"))
        .assert_error(404, "not_found");
    assert_eq!(rows(&server), 1);

    let actions: Vec<String> = server
        .db()
        .prepare("SELECT action FROM activity WHERE action LIKE 'sending_domain.%' ORDER BY rowid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        actions,
        [
            "sending_domain.created",
            "sending_domain.created",
            "sending_domain.deleted"
        ]
    );
}

#[test]
fn only_owners_admins_and_scoped_live_keys_reach_domains_of_their_own_workspace() {
    let server = TestServer::start();
    let owner = setup(&server);
    let api = domains_key(&owner, DOMAIN_SCOPES, "live");
    let domain = created(&api, json!({"domain": "acme.example"}));
    let id = domain["id"].as_str().unwrap();
    let path = format!("/v1/sending-domains/{id}");

    // Scopes.
    let reader = domains_key(&owner, &["domains:read"], "live");
    assert_eq!(reader.get(&path).status, 200);
    reader
        .post("/v1/sending-domains", json!({"domain": "b.example"}))
        .assert_error(403, "insufficient_scope");
    reader.delete(&path).assert_error(403, "insufficient_scope");
    let other_scopes = domains_key(&owner, &["messages:send"], "live");
    other_scopes
        .get("/v1/sending-domains")
        .assert_error(403, "insufficient_scope");
    // Test keys: domains are managed in live mode.
    let test_key = domains_key(&owner, DOMAIN_SCOPES, "test");
    test_key.get(&path).assert_error(403, "forbidden");
    test_key
        .post("/v1/sending-domains", json!({"domain": "b.example"}))
        .assert_error(403, "forbidden");
    // Roles: the owner's session works, a member's does not.
    assert_eq!(owner.get(&path).status, 200);
    let member = add_member(&owner, "mia@example.com", "member");
    member.get(&path).assert_error(403, "forbidden");
    let admin = add_member(&owner, "adam@example.com", "admin");
    assert_eq!(admin.get(&path).status, 200);
    // Another workspace: 404 on every route naming it, and its list does not show it.
    let globex = second_tenant(&owner, "gus@globex.example");
    globex.get(&path).assert_error(404, "not_found");
    globex
        .request("PUT", &path, Some(&json!({"from": null})))
        .assert_error(404, "not_found");
    globex.delete(&path).assert_error(404, "not_found");
    assert_eq!(globex.get("/v1/sending-domains").json()["data"], json!([]));
    // Only instance admins review.
    globex
        .get("/v1/admin/sending-domains")
        .assert_error(403, "forbidden");
    decide(&globex, id, "approve", json!({})).assert_error(403, "forbidden");
    assert_eq!(owner.get(&path).json()["status"], "pending");
}

#[test]
fn an_instance_admin_approves_and_a_domain_is_active_in_one_workspace_at_most() {
    let server = TestServer::start();
    let owner = setup(&server);
    let acme = domains_key(&owner, DOMAIN_SCOPES, "live");
    let globex_owner = second_tenant(&owner, "gus@globex.example");
    let globex = domains_key(&globex_owner, DOMAIN_SCOPES, "live");

    let mine = created(&acme, json!({"domain": "shared.example"}));
    let theirs = created(&globex, json!({"domain": "shared.example"}));
    let (mine, theirs) = (mine["id"].as_str().unwrap(), theirs["id"].as_str().unwrap());

    let pending = owner.get("/v1/admin/sending-domains?status=pending");
    assert_eq!(pending.status, 200, "{}", pending.text());
    assert_eq!(pending.json()["data"].as_array().unwrap().len(), 2);
    owner
        .get("/v1/admin/sending-domains?status=bogus")
        .assert_error(422, "validation_failed");

    let approved = decide(&owner, mine, "approve", json!({}));
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(approved.json()["status"], "active");
    assert!(approved.json()["reviewed_at"].is_string());
    // Already active in Acme: Globex can neither have it approved nor add it again.
    decide(&owner, theirs, "approve", json!({})).assert_error(409, "conflict");
    let again = globex.post("/v1/sending-domains", json!({"domain": "other.example"}));
    assert_eq!(again.status, 201);
    let deleted = globex_owner.delete(&format!("/v1/sending-domains/{theirs}"));
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    globex
        .post("/v1/sending-domains", json!({"domain": "shared.example"}))
        .assert_error(409, "conflict");

    // A reject needs a reason; it stops the domain and drops its From.
    let path = format!("/v1/sending-domains/{mine}");
    let set = put(&acme, &path, json!({"from": "Acme <news@shared.example>"}));
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["from"], "Acme <news@shared.example>");
    put(&acme, &path, json!({"from": "news@other.example"})).assert_error(422, "validation_failed");
    decide(&owner, mine, "reject", json!({})).assert_error(422, "validation_failed");
    let rejected = decide(&owner, mine, "reject", json!({"reason": "not yours"}));
    assert_eq!(rejected.status, 200, "{}", rejected.text());
    assert_eq!(rejected.json()["status"], "rejected");
    assert_eq!(rejected.json()["rejection_reason"], "not yours");
    assert_eq!(rejected.json()["from"], Value::Null);
    // Now free for Globex.
    assert_eq!(
        globex
            .post("/v1/sending-domains", json!({"domain": "shared.example"}))
            .status,
        201
    );
    let from: String = server
        .db()
        .query_row(
            "SELECT details FROM activity WHERE action = 'sending_domain.from_changed'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(from.contains("n•••@shared.example"), "{from}");
    assert!(!from.contains("news@"), "{from}");
    let actions = count(
        &server,
        "SELECT count(*) FROM activity WHERE action IN \
         ('sending_domain.approved', 'sending_domain.rejected', 'sending_domain.from_changed')",
    );
    assert_eq!(actions, 3);
}

/// The message the sink received for our message `id`.
fn received(sink: &Sink, id: &str) -> String {
    let header = format!("X-Crier-Message-Id: {id}\r\n");
    sink.messages
        .lock()
        .unwrap()
        .iter()
        .find(|message| message.contains(&header))
        .unwrap_or_else(|| panic!("no message {id} received"))
        .clone()
}

fn from_header(message: &str) -> &str {
    message
        .split("\r\n")
        .find_map(|line| line.strip_prefix("From: "))
        .unwrap()
}

fn verify_rsa_instance_signature(message: &str) {
    let checked = check(message);
    assert!(checked.body_hash_ok);
    assert_eq!(checked.tag("d"), "example.net");
    assert_eq!(checked.tag("s"), "crier2026");
    UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        BASE64.decode(RSA_PKCS1).unwrap(),
    )
    .verify(&checked.signed, &checked.signature)
    .expect("the instance's signature verifies");
}

#[test]
fn live_email_goes_from_the_workspaces_domain_signed_with_its_key() {
    let sink = Sink::default();
    let port = start(&sink);
    let dir = tempfile::tempdir().unwrap();
    let server = smtp_server(port, &dir);
    let sender = crate::sending::Sender::new(&server, "live");
    sender.credit(1000);
    let api = domains_key(&sender.console, DOMAIN_SCOPES, "live");
    let email = |key: &str| {
        let message = sender.sent(
            &json!({"channel": "email", "to": "ada@example.org", "subject": "Hi",
                    "text": "Hello  there.\n", "category": "transactional"}),
            key,
        );
        let id = message["id"].as_str().unwrap().to_owned();
        sender.wait_for(&id, "sent");
        (message, received(&sink, &id))
    };

    // Pending: not used.
    let domain = created(&api, json!({"domain": "acme.example"}));
    let id = domain["id"].as_str().unwrap();
    let (message, mail) = email("e1");
    assert_eq!(message["sender"], Value::Null);
    assert_eq!(from_header(&mail), "news@example.net");
    verify_rsa_instance_signature(&mail);

    // Approved, with a From: the workspace's mailbox, signed with its Ed25519 key.
    let approved = decide(&sender.console, id, "approve", json!({}));
    assert_eq!(approved.status, 200, "{}", approved.text());
    let set = put(
        &api,
        &format!("/v1/sending-domains/{id}"),
        json!({"from": "Acme News <news@acme.example>"}),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let (message, mail) = email("e2");
    assert_eq!(message["sender"], "Acme News <news@acme.example>");
    let shown = sender.message(message["id"].as_str().unwrap());
    assert_eq!(shown["sender"], "Acme News <news@acme.example>");
    // lettre quotes a display name with a space in it.
    assert_eq!(from_header(&mail), "\"Acme News\" <news@acme.example>");
    let checked = check(&mail);
    assert!(checked.body_hash_ok, "{mail}");
    assert_eq!(checked.tag("a"), "ed25519-sha256");
    assert_eq!(checked.tag("d"), "acme.example");
    assert_eq!(checked.tag("s"), domain["selector"].as_str().unwrap());
    let (kind, public) = record_key(domain["dns_record"]["value"].as_str().unwrap());
    assert_eq!(kind, "ed25519");
    let prehash = ring::digest::digest(&ring::digest::SHA256, &checked.signed);
    UnparsedPublicKey::new(&signature::ED25519, &public)
        .verify(prehash.as_ref(), &checked.signature)
        .expect("the workspace's signature verifies with the published record");
    // Sent twice more: the same key (opened once, kept), still verifying.
    let (_, mail) = email("e3");
    let checked = check(&mail);
    let prehash = ring::digest::digest(&ring::digest::SHA256, &checked.signed);
    UnparsedPublicKey::new(&signature::ED25519, &public)
        .verify(prehash.as_ref(), &checked.signature)
        .unwrap();

    // Test mode keeps going to the log provider, without the workspace's From.
    let test_key = create_key(&sender.console, &["messages:send"], "test").1;
    let test_message = crate::auth_fixtures::send(
        &server,
        "POST",
        "/v1/messages",
        vec![
            ("Authorization", format!("Bearer {test_key}").as_str()),
            ("Idempotency-Key", "t1"),
        ],
        Some(
            &json!({"channel": "email", "to": "ada@example.org", "subject": "Hi",
                     "text": "Hello", "category": "transactional"}),
        ),
    );
    assert_eq!(test_message.status, 201, "{}", test_message.text());
    assert_eq!(test_message.json()["sender"], Value::Null);

    // Another workspace keeps the instance's From and key.
    let globex = second_tenant(&sender.console, "gus@globex.example");
    let credit = sender.console.post(
        &format!(
            "/v1/admin/workspaces/{}/wallet-adjustments",
            globex.workspace_id()
        ),
        &json!({"amount_minor": 1000, "reason": "test credit"}),
    );
    assert_eq!(credit.status, 201, "{}", credit.text());
    let globex_key = domains_key(&globex, &["messages:send", "messages:read"], "live");
    let sent = crate::auth_fixtures::send(
        &server,
        "POST",
        "/v1/messages",
        vec![
            (
                "Authorization",
                format!("Bearer {}", globex_key.key).as_str(),
            ),
            ("Idempotency-Key", "g1"),
        ],
        Some(
            &json!({"channel": "email", "to": "bob@example.org", "subject": "Hi",
                     "text": "Hello", "category": "transactional"}),
        ),
    );
    assert_eq!(sent.status, 201, "{}", sent.text());
    let globex_id = sent.json()["id"].as_str().unwrap().to_owned();
    crate::harness::wait_until(
        "Globex's email is received",
        std::time::Duration::from_secs(20),
        || {
            let header = format!("X-Crier-Message-Id: {globex_id}\r\n");
            sink.messages
                .lock()
                .unwrap()
                .iter()
                .any(|message| message.contains(&header))
        },
    );
    let mail = received(&sink, &globex_id);
    assert_eq!(from_header(&mail), "news@example.net");
    verify_rsa_instance_signature(&mail);

    // Stamped with the workspace's From, then the domain deleted before it goes: it fails
    // rather than leave From another address than the one it shows.
    let scheduled = sender.sent(
        &json!({"channel": "email", "to": "ada@example.org", "subject": "Later",
                "text": "Later", "category": "transactional",
                "scheduled_at": "2026-11-25T10:30:00Z"}),
        "e5",
    );
    assert_eq!(scheduled["sender"], "Acme News <news@acme.example>");
    let deleted = api.delete(&format!("/v1/sending-domains/{id}"));
    assert_eq!(deleted.status, 204);
    // The workspace's next email goes From the instance again.
    let (message, mail) = email("e4");
    assert_eq!(message["sender"], Value::Null);
    assert_eq!(from_header(&mail), "news@example.net");
    verify_rsa_instance_signature(&mail);
    server.clock.advance(chrono::Duration::hours(2));
    let failed = sender.wait_for(scheduled["id"].as_str().unwrap(), "failed");
    assert_eq!(
        failed["error"]["code"], "sending_domain_inactive",
        "{failed}"
    );
}

#[test]
fn a_live_email_campaign_goes_from_the_workspaces_domain_fixed_at_launch() {
    let sink = Sink::default();
    let port = start(&sink);
    let dir = tempfile::tempdir().unwrap();
    let server = smtp_server(port, &dir);
    let shop = crate::campaign_sending::Shop::open(&server, "live");
    let credit = shop.owner.post(
        &format!(
            "/v1/admin/workspaces/{}/wallet-adjustments",
            shop.owner.workspace_id()
        ),
        &json!({"amount_minor": 1000, "reason": "test credit"}),
    );
    assert_eq!(credit.status, 201, "{}", credit.text());
    let api = domains_key(&shop.owner, DOMAIN_SCOPES, "live");
    let domain = created(&api, json!({"domain": "acme.example"}));
    let id = domain["id"].as_str().unwrap();
    assert_eq!(decide(&shop.owner, id, "approve", json!({})).status, 200);
    let set = put(
        &api,
        &format!("/v1/sending-domains/{id}"),
        json!({"from": "news@acme.example"}),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    let contact = shop.api.post(
        "/v1/contacts",
        json!({"name": "Ann", "email": "ann@example.com"}),
    );
    assert_eq!(contact.status, 201, "{}", contact.text());
    let campaign = shop.api.post(
        "/v1/campaigns",
        json!({"name": "Mail", "channel": "email", "subject": "Autumn", "text": "Hello",
               "audience": {"all": true}}),
    );
    assert_eq!(campaign.status, 201, "{}", campaign.text());
    let campaign = campaign.json()["id"].as_str().unwrap().to_owned();
    let launched = crate::auth_fixtures::send(
        &server,
        "POST",
        &format!("/v1/campaigns/{campaign}/launch"),
        vec![
            ("Authorization", format!("Bearer {}", shop.api.key).as_str()),
            ("Idempotency-Key", "launch"),
        ],
        None,
    );
    assert_eq!(launched.status, 200, "{}", launched.text());
    assert_eq!(launched.json()["launch"]["sender"], "news@acme.example");
    crate::harness::wait_until(
        "the campaign's email is received",
        std::time::Duration::from_secs(30),
        || {
            sink.messages
                .lock()
                .unwrap()
                .iter()
                .any(|message| message.contains("Subject: Autumn\r\n"))
        },
    );
    let mail = sink
        .messages
        .lock()
        .unwrap()
        .iter()
        .find(|message| message.contains("Subject: Autumn\r\n"))
        .unwrap()
        .clone();
    assert_eq!(from_header(&mail), "news@acme.example");
    let checked = check(&mail);
    assert!(checked.body_hash_ok);
    assert_eq!(checked.tag("d"), "acme.example");
    let (_, public) = record_key(domain["dns_record"]["value"].as_str().unwrap());
    let prehash = ring::digest::digest(&ring::digest::SHA256, &checked.signed);
    UnparsedPublicKey::new(&signature::ED25519, &public)
        .verify(prehash.as_ref(), &checked.signature)
        .expect("the campaign's email verifies with the workspace's record");
}
