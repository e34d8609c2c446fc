//! Unsubscribing and what delivery learns: marketing email carries a signed link (RFC 8058
//! headers and a line in the body) that unsubscribes in one POST; forged links get an HTML 404;
//! marketing sends to unsubscribed or bad addresses are refused and not charged; an inbound STOP
//! unsubscribes the sender's phone; receipts and SMTP refusals mark addresses.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use crier::config::{Config, Secret};
use crier::delivery::settings::{
    EmailProviderName, SmsProviderName, SmtpSecurity, SmtpSettings, TwilioSettings, WebhookSettings,
};
use crier::web::router::Router;
use mailin_embedded::response::{NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server, SslConfig};
use serde_json::{Value, json};

use crate::auth_fixtures::{Caller, count, create_key, second_tenant};
use crate::campaign_sending::{Shop, sms_campaign};
use crate::fake_http::{FakeHttp, Reply};
use crate::harness::{TestResponse, TestServer};
use crate::sending::Sender;

const PUBLIC_URL: &str = "https://crier.example.com";
const RECEIPT_TOKEN: &str = "receipt-token-0123456789";
const PHONE: &str = "+237677123456";

/// An SMTP server that keeps every message's DATA, or refuses every recipient (550).
#[derive(Clone, Default)]
struct Sink {
    messages: Arc<Mutex<Vec<String>>>,
    current: Arc<Mutex<Vec<u8>>>,
    refuse: bool,
}

impl Handler for Sink {
    fn rcpt(&mut self, _to: &str) -> Response {
        if self.refuse { NO_MAILBOX } else { OK }
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.current.lock().unwrap().extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let data = std::mem::take(&mut *self.current.lock().unwrap());
        self.messages
            .lock()
            .unwrap()
            .push(String::from_utf8(data).unwrap());
        OK
    }
}

impl Sink {
    /// Listens on a free port (ready before this returns); serves until the test ends.
    fn start(refuse: bool) -> (Sink, u16) {
        let sink = Sink {
            refuse,
            ..Sink::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server = Server::new(sink.clone());
        server
            .with_name("mx.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_num_threads(2)
            .with_tcp_listener(listener);
        thread::spawn(move || {
            let _ = server.serve();
        });
        (sink, port)
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// Email through the SMTP sink on `port`; SMS through a webhook that accepts everything as
/// `wh-1`; receipts on.
fn configured(smtp_port: Option<u16>, webhook: Option<&FakeHttp>) -> impl FnOnce(&mut Config) {
    let webhook = webhook.map(FakeHttp::url);
    move |config: &mut Config| {
        config.public_url = PUBLIC_URL.to_owned();
        let delivery = &mut config.delivery;
        if let Some(port) = smtp_port {
            delivery.email_providers = vec![EmailProviderName::Smtp];
            delivery.smtp = Some(SmtpSettings {
                host: "127.0.0.1".to_owned(),
                port,
                security: SmtpSecurity::None,
                credentials: None,
            });
        }
        if let Some(url) = webhook {
            delivery.sms_providers = vec![SmsProviderName::Webhook];
            delivery.webhook = Some(WebhookSettings {
                url: format!("{url}/sms"),
                secret: None,
            });
        }
        delivery.receipt_token = Some(Secret::new(RECEIPT_TOKEN));
    }
}

fn contacts_caller<'s>(sender: &Sender<'s>, mode: &str) -> Caller<'s> {
    let (_, key) = create_key(&sender.console, &["contacts:read", "contacts:write"], mode);
    Caller {
        server: sender.server,
        key,
    }
}

fn create_contact(api: &Caller<'_>, body: Value) -> Value {
    let response = api.post("/v1/contacts", body);
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

fn contact(api: &Caller<'_>, id: &str) -> Value {
    let response = api.get(&format!("/v1/contacts/{id}"));
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn email(to: &str, category: &str) -> Value {
    json!({
        "channel": "email", "to": to, "subject": "News", "category": category,
        "text": "Hello", "html": "<html><body><p>Hello</p></body></html>",
    })
}

fn sms(to: &str, category: &str) -> Value {
    json!({"channel": "sms", "to": to, "text": "Hello", "category": category})
}

/// The raw message with its header lines unfolded and quoted-printable soft breaks removed.
fn unfolded(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
}

/// The URL of the `List-Unsubscribe` header of a raw message, if it has one.
fn list_unsubscribe(raw: &str) -> Option<String> {
    let raw = unfolded(raw);
    let start = raw.find("\r\nList-Unsubscribe: <")? + "\r\nList-Unsubscribe: <".len();
    let end = raw[start..].find('>')?;
    Some(raw[start..start + end].to_owned())
}

fn is_html(response: &TestResponse) -> bool {
    response
        .header("Content-Type")
        .is_some_and(|value| value.starts_with("text/html"))
}

fn post_form(server: &TestServer, path: &str, body: &str) -> TestResponse {
    server.request(
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

#[test]
fn a_marketing_email_carries_a_link_that_unsubscribes_in_one_post() {
    let (sink, port) = Sink::start(false);
    let server = TestServer::start_with(configured(Some(port), None), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(
        &api,
        json!({"name": "Ada", "email": "ada@example.org", "language": "fr"}),
    );
    let ada_id = ada["id"].as_str().unwrap();

    let marketing = sender.sent(&email("ada@example.org", "marketing"), "m1");
    sender.wait_for(marketing["id"].as_str().unwrap(), "sent");
    let transactional = sender.sent(&email("ada@example.org", "transactional"), "t1");
    sender.wait_for(transactional["id"].as_str().unwrap(), "sent");
    let messages = sink.messages();
    assert_eq!(messages.len(), 2);
    let (marketing_raw, transactional_raw) = if messages[0].contains("List-Unsubscribe") {
        (&messages[0], &messages[1])
    } else {
        (&messages[1], &messages[0])
    };
    // RFC 8058: the HTTPS link and the one-click statement; transactional mail has neither.
    let url = list_unsubscribe(marketing_raw).expect("a List-Unsubscribe header");
    assert!(url.starts_with(&format!("{PUBLIC_URL}/u/")), "{url}");
    assert!(
        unfolded(marketing_raw)
            .contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "{marketing_raw}"
    );
    assert!(
        !transactional_raw.contains("List-Unsubscribe"),
        "{transactional_raw}"
    );
    // The visible line, in the contact's language, in both parts.
    let body = unfolded(marketing_raw);
    assert!(body.contains(&format!(" {url}\r\n")), "text part: {body}");
    assert!(
        body.contains(&format!("href=3D\"{url}\"")),
        "html part: {body}"
    );
    assert!(body.contains("Se d=C3=A9sabonner"), "French: {body}");

    let path = url.strip_prefix(PUBLIC_URL).unwrap().to_owned();
    // The page asks and changes nothing; English by default, French by Accept-Language.
    let page = server.get(&path);
    assert_eq!(page.status, 200);
    assert!(is_html(&page));
    let csp = page.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!page.text().contains("<script"), "{}", page.text());
    assert!(
        page.text().contains("<html lang=\"en\">"),
        "{}",
        page.text()
    );
    assert!(page.text().contains("method=\"post\""), "{}", page.text());
    assert!(page.text().contains("href=\"?lang=fr\""), "{}", page.text());
    let french = server.request(
        "GET",
        &path,
        &[("Accept-Language", "fr-CM,fr;q=0.9,en;q=0.5")],
        b"",
    );
    assert_eq!(french.status, 200);
    assert!(
        french.text().contains("<html lang=\"fr\">"),
        "{}",
        french.text()
    );
    assert!(french.text().contains("Me désabonner"), "{}", french.text());
    assert!(
        server
            .get(&format!("{path}?lang=fr"))
            .text()
            .contains("Me désabonner")
    );
    assert!(contact(&api, ada_id)["email_unsubscribed_at"].is_null());

    // One-click: no cookie, no login, no CSRF token.
    let first = post_form(&server, &path, "List-Unsubscribe=One-Click");
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(is_html(&first));
    let unsubscribed = contact(&api, ada_id);
    assert_eq!(unsubscribed["email_unsubscribed_via"], "one_click");
    assert!(unsubscribed["sms_unsubscribed_at"].is_null());
    let at = unsubscribed["email_unsubscribed_at"].clone();
    // Again, and by the page's button: still 200, the first time and way stay.
    server.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(
        post_form(&server, &path, "List-Unsubscribe=One-Click").status,
        200
    );
    assert_eq!(post_form(&server, &path, "confirm=yes").status, 200);
    let again = contact(&api, ada_id);
    assert_eq!(again["email_unsubscribed_at"], at);
    assert_eq!(again["email_unsubscribed_via"], "one_click");

    // A marketing send to her now is refused, not charged, not stored; transactional still goes.
    let balance = sender.balance();
    let messages_before = count(&server, "SELECT count(*) FROM messages");
    sender
        .send(&email("ada@example.org", "marketing"), "m2")
        .assert_error(422, "recipient_unsubscribed");
    assert_eq!(sender.balance(), balance);
    assert_eq!(
        count(&server, "SELECT count(*) FROM messages"),
        messages_before
    );
    sender.sent(&email("ada@example.org", "transactional"), "t2");
    // The refusal was not stored under its key: once she resubscribes, the same key sends.
    let resubscribed = api.patch(
        &format!("/v1/contacts/{ada_id}"),
        json!({"unsubscribed": {"email": false}}),
    );
    assert_eq!(resubscribed.status, 200, "{}", resubscribed.text());
    sender.sent(&email("ada@example.org", "marketing"), "m2");
}

#[test]
fn a_page_click_records_link_and_a_deleted_contact_changes_nothing() {
    let server = TestServer::start_with(configured(None, None), Router::standard());
    let sender = Sender::new(&server, "test");
    let api = contacts_caller(&sender, "test");
    // A marketing send to a stranger creates a contact for the address, in the sender's mode.
    let message = sender.sent(&email("grace@example.org", "marketing"), "m1");
    let listed = api.get("/v1/contacts?q=grace").json();
    let grace = &listed["data"][0];
    assert_eq!(grace["email"], "grace@example.org");
    assert_eq!(grace["name"], "grace@example.org");
    assert_eq!(grace["mode"], "test");
    let grace_id = grace["id"].as_str().unwrap();
    let linked: String = server
        .db()
        .query_row(
            "SELECT contact_id FROM messages WHERE id = ?1",
            [message["id"].as_str().unwrap()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(linked, grace_id);

    let url = crier::contacts::unsubscribe::unsubscribe_url(
        &server.app().unsubscribe_key,
        PUBLIC_URL,
        &crier::ids::WorkspaceId::parse(sender.console.workspace_id()).unwrap(),
        crier::vocabulary::Mode::Test,
        &crier::ids::ContactId::parse(grace_id).unwrap(),
        crier::billing::Channel::Sms,
    );
    let path = url.strip_prefix(PUBLIC_URL).unwrap();
    let done = post_form(&server, &format!("{path}?lang=fr"), "confirm=yes");
    assert_eq!(done.status, 200);
    assert!(done.text().contains("SMS"), "{}", done.text());
    assert!(done.text().contains("lang=\"fr\""), "{}", done.text());
    let grace = contact(&api, grace_id);
    assert_eq!(grace["sms_unsubscribed_via"], "link");
    assert!(
        grace["email_unsubscribed_at"].is_null(),
        "only the token's channel"
    );

    // Deleted since: still 200, nothing changes.
    assert_eq!(api.delete(&format!("/v1/contacts/{grace_id}")).status, 204);
    let before: String = server
        .db()
        .query_row(
            "SELECT updated_at FROM contacts WHERE id = ?1",
            [grace_id],
            |row| row.get(0),
        )
        .unwrap();
    server.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(
        post_form(&server, path, "List-Unsubscribe=One-Click").status,
        200
    );
    let after: String = server
        .db()
        .query_row(
            "SELECT updated_at FROM contacts WHERE id = ?1",
            [grace_id],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn forged_altered_and_truncated_tokens_get_an_html_404_and_change_nothing() {
    let server = TestServer::start_with(configured(None, None), Router::standard());
    let sender = Sender::new(&server, "live");
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, json!({"name": "Ada", "email": "ada@example.org"}));
    let ada_id = ada["id"].as_str().unwrap();
    let url = crier::contacts::unsubscribe::unsubscribe_url(
        &server.app().unsubscribe_key,
        PUBLIC_URL,
        &crier::ids::WorkspaceId::parse(sender.console.workspace_id()).unwrap(),
        crier::vocabulary::Mode::Live,
        &crier::ids::ContactId::parse(ada_id).unwrap(),
        crier::billing::Channel::Email,
    );
    let token = url.rsplit('/').next().unwrap().to_owned();
    let mut altered = token.clone().into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    // Signed with another key: the same payload cannot be re-signed without ours.
    let foreign = crier::contacts::unsubscribe::unsubscribe_url(
        &crier::secrets::ServerKey::from_bytes(&[9; 32]),
        PUBLIC_URL,
        &crier::ids::WorkspaceId::parse(sender.console.workspace_id()).unwrap(),
        crier::vocabulary::Mode::Live,
        &crier::ids::ContactId::parse(ada_id).unwrap(),
        crier::billing::Channel::Email,
    );
    let foreign = foreign.rsplit('/').next().unwrap().to_owned();
    for bad in [
        altered.as_str(),
        &token[..token.len() - 1],
        &token[..20],
        foreign.as_str(),
        "not-a-token",
        "%3Cscript%3E",
    ] {
        let page = server.get(&format!("/u/{bad}"));
        assert_eq!(page.status, 404, "{bad}");
        assert!(is_html(&page), "{bad}");
        assert!(page.text().contains("not valid"), "{}", page.text());
        assert!(!page.text().contains("<script"), "{}", page.text());
        let post = post_form(&server, &format!("/u/{bad}"), "List-Unsubscribe=One-Click");
        assert_eq!(post.status, 404, "{bad}");
        assert!(is_html(&post));
    }
    assert!(contact(&api, ada_id)["email_unsubscribed_at"].is_null());
    // The real token works.
    assert_eq!(server.get(&format!("/u/{token}")).status, 200);
}

/// POSTs an inbound SMS as the webhook provider forwards it.
fn inbound(server: &TestServer, token: &str, from: &str, text: &str) -> TestResponse {
    server.request(
        "POST",
        &format!("/v1/webhooks/sms/webhook/inbound?token={token}"),
        &[("Content-Type", "application/json")],
        json!({"from": from, "to": "CRIER", "text": text})
            .to_string()
            .as_bytes(),
    )
}

#[test]
fn an_inbound_stop_unsubscribes_the_phone_where_it_was_written_to() {
    let webhook = FakeHttp::start(|_| Reply::json(200, json!({"id": "wh-1"})));
    let server = TestServer::start_with(configured(None, Some(&webhook)), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let written_to = create_contact(&api, json!({"name": "Ada", "phone": PHONE}));
    let written_to = written_to["id"].as_str().unwrap();
    let test_api = contacts_caller(&sender, "test");
    let test_twin = create_contact(&test_api, json!({"name": "Ada", "phone": PHONE}));
    let test_twin = test_twin["id"].as_str().unwrap();
    // Another workspace has the number but never wrote to it.
    let other = second_tenant(&sender.console, "globex@example.org");
    let (_, other_key) = create_key(&other, &["contacts:read", "contacts:write"], "live");
    let other_api = Caller {
        server: &server,
        key: other_key,
    };
    let stranger = create_contact(&other_api, json!({"name": "Ada", "phone": PHONE}));
    let stranger = stranger["id"].as_str().unwrap();
    let message = sender.sent(&sms(PHONE, "transactional"), "s1");
    sender.wait_for(message["id"].as_str().unwrap(), "sent");

    inbound(&server, "wrong-token-000000000000", PHONE, "STOP")
        .assert_error(401, "invalid_signature");
    let ignored = inbound(
        &server,
        RECEIPT_TOKEN,
        PHONE,
        "stop sending me the promo please",
    );
    assert_eq!(ignored.status, 200, "{}", ignored.text());
    assert_eq!(ignored.json()["unsubscribed"], 0);
    assert!(contact(&api, written_to)["sms_unsubscribed_at"].is_null());

    let stop = inbound(&server, RECEIPT_TOKEN, "677 12 34 56", "  Arrêt ! ");
    assert_eq!(stop.status, 200, "{}", stop.text());
    assert_eq!(stop.json(), json!({"received": 1, "unsubscribed": 1}));
    let ada = contact(&api, written_to);
    assert_eq!(ada["sms_unsubscribed_via"], "sms_keyword");
    assert!(ada["email_unsubscribed_at"].is_null());
    assert!(
        contact(&test_api, test_twin)["sms_unsubscribed_at"].is_null(),
        "live only"
    );
    assert!(
        contact(&other_api, stranger)["sms_unsubscribed_at"].is_null(),
        "never written to"
    );
    // A marketing SMS to her is now refused; a transactional one still goes.
    sender
        .send(&sms(PHONE, "marketing"), "s2")
        .assert_error(422, "recipient_unsubscribed");
    sender.sent(&sms(PHONE, "transactional"), "s3");
    // Not a body we understand: 400.
    server
        .request(
            "POST",
            &format!("/v1/webhooks/sms/webhook/inbound?token={RECEIPT_TOKEN}"),
            &[("Content-Type", "application/json")],
            b"[1, 2]",
        )
        .assert_error(400, "bad_request");
}

/// base64(HMAC-SHA1(token, url ‖ sorted name+value)), computed here with ring directly.
pub fn twilio_signature(auth_token: &str, url: &str, fields: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        auth_token.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()))
}

#[test]
fn a_signed_twilio_stop_unsubscribes_and_an_unsigned_one_is_refused() {
    let twilio = FakeHttp::start(|_| Reply::json(201, json!({"sid": "SM1", "status": "queued"})));
    let twilio_url = twilio.url();
    let server = TestServer::start_with(
        move |config: &mut Config| {
            config.public_url = PUBLIC_URL.to_owned();
            config.delivery.sms_providers = vec![SmsProviderName::Twilio];
            config.delivery.twilio = Some(TwilioSettings {
                base_url: twilio_url,
                account_sid: "AC123".to_owned(),
                auth_token: Secret::new("twilio-token"),
            });
            config.delivery.receipt_token = Some(Secret::new(RECEIPT_TOKEN));
        },
        Router::standard(),
    );
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, json!({"name": "Ada", "phone": PHONE}));
    let ada_id = ada["id"].as_str().unwrap();
    let message = sender.sent(&sms(PHONE, "marketing"), "s1");
    sender.wait_for(message["id"].as_str().unwrap(), "sent");

    let path = format!("/v1/webhooks/sms/twilio/inbound?token={RECEIPT_TOKEN}");
    let fields = [("From", PHONE), ("To", "+15005550006"), ("Body", "STOP")];
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let post = |signature: &str| {
        server.request(
            "POST",
            &path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", signature),
            ],
            body.as_bytes(),
        )
    };
    let wrong = twilio_signature("another-token", &format!("{PUBLIC_URL}{path}"), &fields);
    post(&wrong).assert_error(401, "invalid_signature");
    post("").assert_error(401, "invalid_signature");
    assert!(contact(&api, ada_id)["sms_unsubscribed_at"].is_null());

    let right = twilio_signature("twilio-token", &format!("{PUBLIC_URL}{path}"), &fields);
    let answered = post(&right);
    assert_eq!(answered.status, 200, "{}", answered.text());
    assert!(
        answered.text().contains("<Response></Response>"),
        "{}",
        answered.text()
    );
    assert_eq!(contact(&api, ada_id)["sms_unsubscribed_via"], "sms_keyword");
}

#[test]
fn an_unreachable_receipt_marks_the_phone_and_stops_marketing_only() {
    let webhook = FakeHttp::start(|_| Reply::json(200, json!({"id": "wh-1"})));
    let server = TestServer::start_with(configured(None, Some(&webhook)), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, json!({"name": "Ada", "phone": PHONE}));
    let ada_id = ada["id"].as_str().unwrap();
    let message = sender.sent(&sms(PHONE, "transactional"), "s1");
    sender.wait_for(message["id"].as_str().unwrap(), "sent");
    let receipt = server.request(
        "POST",
        &format!("/v1/webhooks/sms/webhook?token={RECEIPT_TOKEN}"),
        &[("Content-Type", "application/json")],
        json!({"id": "wh-1", "status": "undeliverable", "error_code": "unknown_subscriber"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(receipt.status, 200, "{}", receipt.text());
    assert_eq!(receipt.json()["applied"], 1);
    assert_eq!(contact(&api, ada_id)["phone_state"], "unreachable");
    let balance = sender.balance();
    sender
        .send(&sms(PHONE, "marketing"), "s2")
        .assert_error(422, "recipient_invalid");
    sender
        .client_estimate(&sms(PHONE, "marketing"))
        .assert_error(422, "recipient_invalid");
    assert_eq!(sender.balance(), balance, "a refused send is not charged");
    // Unreachable is not invalid: a transactional message still goes.
    sender.sent(&sms(PHONE, "transactional"), "s3");
}

/// A provider refusing the number itself (`invalid_number`) marks the contact's phone
/// `invalid`: later sends to it are refused before anything is charged, and campaigns leave it
/// out. Another final refusal (an opt-out at the provider) says nothing about the number.
#[test]
fn a_provider_refusing_the_number_marks_the_phone_invalid() {
    const OTHER: &str = "+237677123457";
    let webhook = FakeHttp::start(|request| {
        if String::from_utf8_lossy(&request.body).contains("677123456\"") {
            Reply::json(400, json!({"code": "invalid_number"}))
        } else {
            Reply::json(400, json!({"code": "opt_out"}))
        }
    });
    let server = TestServer::start_with(configured(None, Some(&webhook)), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, json!({"name": "Ada", "phone": PHONE}));
    let bob = create_contact(&api, json!({"name": "Bob", "phone": OTHER}));
    for (to, key) in [(PHONE, "s1"), (OTHER, "s2")] {
        let message = sender.sent(&sms(to, "transactional"), key);
        sender.wait_for(message["id"].as_str().unwrap(), "failed");
    }
    assert_eq!(
        contact(&api, ada["id"].as_str().unwrap())["phone_state"],
        "invalid"
    );
    assert_eq!(
        contact(&api, bob["id"].as_str().unwrap())["phone_state"],
        "valid"
    );
    let balance = sender.balance();
    sender
        .send(&sms(PHONE, "transactional"), "s3")
        .assert_error(422, "recipient_invalid");
    assert_eq!(sender.balance(), balance, "a refused send is not charged");
}

#[test]
fn a_permanent_smtp_refusal_bounces_the_address_and_stops_transactional_email_too() {
    let (_sink, port) = Sink::start(true);
    let server = TestServer::start_with(configured(Some(port), None), Router::standard());
    let sender = Sender::new(&server, "live");
    sender.credit(1000);
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, json!({"name": "Ada", "email": "ada@example.org"}));
    let ada_id = ada["id"].as_str().unwrap();
    let message = sender.sent(&email("ada@example.org", "transactional"), "e1");
    let failed = sender.wait_for(message["id"].as_str().unwrap(), "failed");
    assert_eq!(failed["error"]["code"], "smtp_550");
    assert_eq!(contact(&api, ada_id)["email_state"], "bounced");
    let balance = sender.balance();
    sender
        .send(&email("ada@example.org", "transactional"), "e2")
        .assert_error(422, "recipient_invalid");
    assert_eq!(sender.balance(), balance);
    // Another workspace's contact with the same address is not touched by ours.
    let other = second_tenant(&sender.console, "globex@example.org");
    let (_, other_key) = create_key(&other, &["contacts:read", "contacts:write"], "live");
    let other_api = Caller {
        server: &server,
        key: other_key,
    };
    let twin = create_contact(
        &other_api,
        json!({"name": "Ada", "email": "ada@example.org"}),
    );
    assert_eq!(twin["email_state"], "valid");
}

impl Sender<'_> {
    /// `POST /v1/messages/estimate` with this sender's key.
    fn client_estimate(&self, body: &Value) -> TestResponse {
        crate::auth_fixtures::bearer(
            self.server,
            &self.key,
            "POST",
            "/v1/messages/estimate",
            Some(body),
        )
    }
}

/// The campaign's messages as stored, in fan-out order: recipient and text.
fn campaign_messages(server: &TestServer, campaign: &str) -> Vec<(String, String)> {
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT to_address, text FROM messages WHERE campaign_id = ?1 ORDER BY rowid")
        .unwrap();
    stmt.query_map([campaign], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_stop_and_an_erasure_reach_campaign_messages_through_their_contacts() {
    const ADA: &str = "+237677000001";
    const BOB: &str = "+237677000002";
    const CY: &str = "+237677000003";
    let webhook = FakeHttp::start(|_| Reply::json(200, json!({"id": "wh-1"})));
    let server = TestServer::start_with(configured(None, Some(&webhook)), Router::standard());
    let shop = Shop::open(&server, "live");
    shop.credit(100_000);
    let ada = shop.contact(json!({"name": "Ada", "first_name": "Ada", "phone": ADA}));
    let bob = shop.contact(json!({"name": "Bob", "first_name": "Bob", "phone": BOB}));
    let cy = shop.contact(json!({"name": "Cy", "first_name": "Cy", "phone": CY}));
    let campaign = shop.campaign(sms_campaign(json!({"all": true})));
    shop.launched(&campaign, "launch-1");
    shop.wait_status(&campaign, "completed");
    let sent = campaign_messages(&server, &campaign);
    assert_eq!(
        sent.iter().map(|(to, _)| to.as_str()).collect::<Vec<_>>(),
        [ADA, BOB, CY]
    );

    // Only a campaign wrote to Cy: her STOP still counts.
    let stop = inbound(&server, RECEIPT_TOKEN, CY, "STOP");
    assert_eq!(stop.json(), json!({"received": 1, "unsubscribed": 1}));
    assert_eq!(
        contact(&shop.api, &cy)["sms_unsubscribed_via"],
        "sms_keyword"
    );

    // Bob is deleted and comes back as a new contact with the same phone: the campaign wrote
    // to that phone (through the deleted contact), so his STOP counts, and erasing the new
    // contact scrubs the message the deleted one was sent.
    assert_eq!(
        shop.api
            .call("DELETE", &format!("/v1/contacts/{bob}"), None)
            .status,
        204
    );
    let bob_again = shop.contact(json!({"name": "Bob", "phone": BOB}));
    let stop = inbound(&server, RECEIPT_TOKEN, BOB, "STOP");
    assert_eq!(stop.json(), json!({"received": 1, "unsubscribed": 1}));
    let erased = shop
        .api
        .call("POST", &format!("/v1/contacts/{bob_again}/erase"), None);
    assert_eq!(erased.status, 200, "{}", erased.text());
    assert_eq!(erased.json()["messages_scrubbed"], 1);

    // Erasing Ada scrubs her own campaign message; Cy's is untouched.
    let erased = shop
        .api
        .call("POST", &format!("/v1/contacts/{ada}/erase"), None);
    assert_eq!(erased.json()["messages_scrubbed"], 1);
    let after = campaign_messages(&server, &campaign);
    assert_eq!(after[0], ("[erased]".to_owned(), String::new()));
    assert_eq!(after[1], ("[erased]".to_owned(), String::new()));
    assert_eq!(after[2], sent[2]);
    assert!(after[2].1.contains("Hi Cy,"), "{after:?}");
}

/// An email campaign's `from_name` is the display name of the From it goes out from (here the
/// instance's address).
#[test]
fn an_email_campaigns_from_name_is_the_display_name_of_its_from() {
    let (sink, port) = Sink::start(false);
    let server = TestServer::start_with(configured(Some(port), None), Router::standard());
    let shop = Shop::open(&server, "live");
    shop.credit(100_000);
    shop.contact(json!({"name": "Ada", "email": "ada@example.org"}));
    let campaign = shop.campaign(json!({
        "name": "News", "channel": "email", "audience": {"all": true},
        "from_name": "Acme Shop", "subject": "News", "text": "Hello"
    }));
    shop.launched(&campaign, "launch-1");
    shop.wait_status(&campaign, "completed");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let from = unfolded(&messages[0])
        .lines()
        .find(|line| line.starts_with("From: "))
        .map(str::to_owned)
        .expect("a From header");
    let address = &server.config.delivery.email_from;
    assert_eq!(from, format!("From: \"Acme Shop\" <{address}>"));
}

/// An unsubscribe link's token never reaches the log: the request line names the route's
/// template instead (the token is a lasting capability over the contact's subscriptions).
#[test]
fn an_unsubscribe_token_is_never_logged() {
    let server = TestServer::start_with(configured(None, None), Router::standard());
    let sender = Sender::new(&server, "live");
    let api = contacts_caller(&sender, "live");
    let ada = create_contact(&api, json!({"name": "Ada", "email": "ada@example.org"}));
    let url = crier::contacts::unsubscribe::unsubscribe_url(
        &server.app().unsubscribe_key,
        PUBLIC_URL,
        &crier::ids::WorkspaceId::parse(sender.console.workspace_id()).unwrap(),
        crier::vocabulary::Mode::Live,
        &crier::ids::ContactId::parse(ada["id"].as_str().unwrap()).unwrap(),
        crier::billing::Channel::Email,
    );
    let token = url.rsplit('/').next().unwrap().to_owned();
    for (method, body) in [("GET", ""), ("POST", "List-Unsubscribe=One-Click")] {
        let response = server.request(
            method,
            &format!("/u/{token}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        assert_eq!(response.status, 200, "{method}: {}", response.text());
        let request_id = response.header("X-Request-Id").unwrap();
        let lines = crate::harness::logs::for_request(request_id);
        assert!(!lines.is_empty());
        for line in lines {
            let text = format!("{line:?}");
            assert!(
                !text.contains(&token),
                "{method}: the token was logged: {text}"
            );
        }
    }
}
