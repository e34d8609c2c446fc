//! DKIM signing by the smtp provider, checked independently of crier's own code: the message
//! that reaches a real SMTP server (mailin-embedded on 127.0.0.1) carries a `DKIM-Signature`
//! whose body hash and signature this file recomputes and verifies with its own relaxed
//! canonicalisation and ring's verifiers, against public keys that openssl derived (RSA) or ring
//! gave (Ed25519) — not the record crier prints, which is compared to openssl's separately.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crier::delivery::providers::smtp::SmtpProvider;
use crier::delivery::settings::{DkimSettings, SmtpSecurity, SmtpSettings};
use crier::delivery::{EmailOut, Outgoing, Provider};
use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server, SslConfig};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// The test key's public half as openssl prints it (`openssl rsa -pubout -outform der`), the
/// SubjectPublicKeyInfo a DKIM record carries.
pub const RSA_SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvKyQ2r6IQYJjnAxGSZZQj+hF4Esb76DlqB88k4Gzw+2yMJxZsYLjfqpx/aDMK5Ek8kKBtvEoyqqnQ42foT+bnDiM4tfhAo8Lu9+cl0UEpsALZW7+stvvECWo3wGfv+GF1k3cB/SC7tvAli9dI/3xbps6ebZtMYevGbFj587+8Bs1uMZEb2VwL2oKql7zFAIKpR25GQjEECWG2gXYz7sEozdoNeeqaPpBHM+G8aaDxk0gUUkjFOdUqDVFbPkp9Nqr9DQNMrt81lfQMBrnocMKdkC6fK+Ulk/IREJe43zB7+d9jwXyFq49QHBu4F2ff8UhRMGVvfWFrpCX1B6RNQsrXQIDAQAB";
/// The same key as a PKCS#1 RSAPublicKey (`-RSAPublicKey_out`), what ring verifies with.
pub const RSA_PKCS1: &str = "MIIBCgKCAQEAvKyQ2r6IQYJjnAxGSZZQj+hF4Esb76DlqB88k4Gzw+2yMJxZsYLjfqpx/aDMK5Ek8kKBtvEoyqqnQ42foT+bnDiM4tfhAo8Lu9+cl0UEpsALZW7+stvvECWo3wGfv+GF1k3cB/SC7tvAli9dI/3xbps6ebZtMYevGbFj587+8Bs1uMZEb2VwL2oKql7zFAIKpR25GQjEECWG2gXYz7sEozdoNeeqaPpBHM+G8aaDxk0gUUkjFOdUqDVFbPkp9Nqr9DQNMrt81lfQMBrnocMKdkC6fK+Ulk/IREJe43zB7+d9jwXyFq49QHBu4F2ff8UhRMGVvfWFrpCX1B6RNQsrXQIDAQAB";
pub const RSA_PEM: &str = include_str!("fixtures/dkim_test_rsa.pem");

/// Keeps each message's DATA (dot-unstuffed, CRLF line ends).
#[derive(Clone, Default)]
pub struct Sink {
    pub messages: Arc<Mutex<Vec<String>>>,
    current: Arc<Mutex<Vec<u8>>>,
}

impl Handler for Sink {
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

pub fn start(sink: &Sink) -> u16 {
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
    port
}

/// Sends one marketing email (text and HTML, List-Unsubscribe) signed with the key in `pem`;
/// returns what the server received and the provider (for its record).
fn signed_message(pem: &str, selector: &str) -> (String, SmtpProvider) {
    let sink = Sink::default();
    let port = start(&sink);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dkim.pem");
    std::fs::write(&key_file, pem).unwrap();
    let provider = SmtpProvider::new(
        &SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port,
            security: SmtpSecurity::None,
            credentials: None,
        },
        Duration::from_secs(5),
    )
    .unwrap()
    .with_dkim(
        &DkimSettings {
            selector: selector.to_owned(),
            key_file,
        },
        "Crier News <news@Example.com>",
    )
    .unwrap();
    let email = EmailOut {
        message_id: "msg_01JD5XDKIMSIGNED",
        to: "ada@example.org",
        from: "Crier News <news@Example.com>",
        subject: "Our   news,\twith spaces and a subject long enough to be folded by the builder",
        text: Some("Hello Ada.  \nTrailing spaces and\ttabs.\n\n\n"),
        html: Some("<p>Hello <b>Ada</b>.</p>"),
        list_unsubscribe: Some("https://crier.example.com/u/abc"),
        dkim: None,
    };
    provider.send(&Outgoing::Email(email)).unwrap();
    let message = sink.messages.lock().unwrap().pop().unwrap();
    (message, provider)
}

/// The header fields, unfolded but otherwise raw: (name, value after the colon).
fn fields(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n").filter(|line| !line.is_empty()) {
        if line.starts_with([' ', '\t']) {
            out.last_mut().unwrap().1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

fn relaxed_field(name: &str, value: &str) -> String {
    let value: Vec<&str> = value.split_whitespace().collect();
    format!("{}:{}", name.trim().to_lowercase(), value.join(" "))
}

fn relaxed_body(body: &str) -> String {
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|line| {
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let lead = if line.starts_with([' ', '\t']) && !words.is_empty() {
                " "
            } else {
                ""
            };
            format!("{lead}{}", words.join(" "))
        })
        .collect();
    while lines.last().is_some_and(|line| line.is_empty()) {
        lines.pop();
    }
    lines.iter().map(|line| format!("{line}\r\n")).collect()
}

/// The signature's tags, and the bytes its `b=` signs (RFC 6376 3.7), recomputed here.
pub struct Checked {
    pub tags: Vec<(String, String)>,
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
    pub body_hash_ok: bool,
}

impl Checked {
    pub fn tag(&self, name: &str) -> &str {
        &self.tags.iter().find(|(n, _)| n == name).unwrap().1
    }
}

pub fn check(message: &str) -> Checked {
    let (head, body) = message.split_once("\r\n\r\n").unwrap();
    let fields = fields(head);
    let dkim: Vec<&(String, String)> = fields
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("DKIM-Signature"))
        .collect();
    assert_eq!(dkim.len(), 1, "one DKIM-Signature in {head}");
    assert!(
        fields[0].0.eq_ignore_ascii_case("DKIM-Signature"),
        "it comes first"
    );
    let raw = &dkim[0].1;
    let tags: Vec<(String, String)> = raw
        .split(';')
        .filter(|tag| !tag.trim().is_empty())
        .map(|tag| {
            let (name, value) = tag.split_once('=').unwrap();
            let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            (name.trim().to_owned(), value)
        })
        .collect();
    let find = |name: &str| tags.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let body_hash = ring::digest::digest(&ring::digest::SHA256, relaxed_body(body).as_bytes());
    let body_hash_ok = BASE64.encode(body_hash) == find("bh");
    let mut signed = String::new();
    for name in find("h").split(':') {
        let (n, v) = fields
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap();
        signed.push_str(&relaxed_field(n, v));
        signed.push_str("\r\n");
    }
    // The signature header itself, its b= value emptied, without a final CRLF.
    let b_at = raw
        .match_indices("b=")
        .map(|(at, _)| at)
        .find(|&at| raw[..at].trim_end().ends_with(';'))
        .unwrap();
    let emptied = format!("{}b={}", &raw[..b_at], {
        let rest = &raw[b_at + 2..];
        rest.find(';').map(|at| &rest[at..]).unwrap_or("")
    });
    signed.push_str(&relaxed_field(&dkim[0].0, &emptied));
    Checked {
        signature: BASE64.decode(find("b")).unwrap(),
        tags,
        signed: signed.into_bytes(),
        body_hash_ok,
    }
}

#[test]
fn an_rsa_signature_verifies_with_the_published_key_and_breaks_when_altered() {
    let (message, provider) = signed_message(RSA_PEM, "crier2026");
    let checked = check(&message);
    assert!(checked.body_hash_ok, "bh= is the body's hash: {message}");
    assert_eq!(checked.tag("v"), "1");
    assert_eq!(checked.tag("a"), "rsa-sha256");
    assert_eq!(checked.tag("c"), "relaxed/relaxed");
    assert_eq!(checked.tag("d"), "example.com");
    assert_eq!(checked.tag("s"), "crier2026");
    let h = checked.tag("h");
    for name in [
        "from",
        "to",
        "subject",
        "message-id",
        "date",
        "list-unsubscribe",
    ] {
        assert!(h.split(':').any(|n| n == name), "{name} is signed: {h}");
    }
    let key = UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        BASE64.decode(RSA_PKCS1).unwrap(),
    );
    key.verify(&checked.signed, &checked.signature)
        .expect("the signature verifies");
    // A changed subject, or a changed body, no longer matches.
    let altered = message.replacen("Subject: Our", "Subject: Their", 1);
    assert_ne!(altered, message);
    let checked_altered = check(&altered);
    assert!(
        key.verify(&checked_altered.signed, &checked_altered.signature)
            .is_err()
    );
    let tampered = message.replacen("Trailing spaces", "Trailing  spices", 1);
    assert_ne!(tampered, message);
    assert!(!check(&tampered).body_hash_ok);
    // The record to publish carries the key as openssl derives it.
    let dkim = provider.dkim().unwrap();
    assert_eq!(dkim.record_name(), "crier2026._domainkey.example.com");
    assert_eq!(dkim.record(), format!("v=DKIM1; k=rsa; p={RSA_SPKI}"));
}

#[test]
fn an_ed25519_signature_verifies_over_the_hash_of_the_signed_headers() {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        BASE64.encode(pkcs8.as_ref())
    );
    let (message, provider) = signed_message(&pem, "ed");
    let checked = check(&message);
    assert!(checked.body_hash_ok);
    assert_eq!(checked.tag("a"), "ed25519-sha256");
    // RFC 8463: Ed25519 signs the SHA-256 of the data.
    let prehash = ring::digest::digest(&ring::digest::SHA256, &checked.signed);
    UnparsedPublicKey::new(&signature::ED25519, &public)
        .verify(prehash.as_ref(), &checked.signature)
        .expect("the signature verifies");
    assert_eq!(
        provider.dkim().unwrap().record(),
        format!("v=DKIM1; k=ed25519; p={}", BASE64.encode(&public))
    );
}

#[test]
fn an_unusable_key_file_is_refused_with_a_sentence() {
    let settings = SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: 25,
        security: SmtpSecurity::None,
        credentials: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let with = |pem: Option<&str>| {
        let key_file = dir.path().join("key.pem");
        match pem {
            Some(pem) => std::fs::write(&key_file, pem).unwrap(),
            None => {
                let _ = std::fs::remove_file(&key_file);
            }
        }
        SmtpProvider::new(&settings, Duration::from_secs(1))
            .unwrap()
            .with_dkim(
                &DkimSettings {
                    selector: "s".to_owned(),
                    key_file,
                },
                "news@example.com",
            )
            .map(|_| ())
            .unwrap_err()
    };
    assert!(with(None).contains("cannot be read"), "{}", with(None));
    let garbage = with(Some("not a key"));
    assert!(garbage.contains("no PEM block"), "{garbage}");
    let public = with(Some(
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
    ));
    assert!(public.contains("PUBLIC KEY"), "{public}");
    let broken = with(Some(
        "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
    ));
    assert!(broken.contains("neither a usable RSA key"), "{broken}");
}

#[test]
fn crier_dkim_record_prints_the_record_to_publish() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dkim.pem");
    std::fs::write(&key_file, RSA_PEM).unwrap();
    let run = |args: &[&str]| {
        crate::process::crier()
            .arg("dkim-record")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("CRIER_DKIM_SELECTOR")
            .env_remove("CRIER_DKIM_KEY_FILE")
            .output()
            .unwrap()
    };
    let key = key_file.to_str().unwrap();
    let output = run(&[
        "--dkim-selector",
        "crier2026",
        "--dkim-key-file",
        key,
        "--email-from",
        "Crier <news@example.org>",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("crier2026._domainkey.example.org TXT \"v=DKIM1; k=rsa; p={RSA_SPKI}\"\n")
    );
    let off = run(&[]);
    assert_eq!(off.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&off.stderr).contains("DKIM is off"));
    let half = run(&["--dkim-selector", "crier2026"]);
    assert_eq!(half.status.code(), Some(2));
    let missing = dir.path().join("none.pem");
    let unreadable = run(&[
        "--dkim-selector",
        "s",
        "--dkim-key-file",
        missing.to_str().unwrap(),
    ]);
    // A configuration problem, found with the others before anything is created.
    assert_eq!(unreadable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreadable.stderr).contains("cannot be read"));
    // The same for a server whose chain has no smtp (the key is still read at start).
    let serve = crate::process::crier()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--dkim-selector",
            "s",
            "--dkim-key-file",
        ])
        .arg(&missing)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&serve.stderr).contains("cannot be read"));
    assert!(
        !dir.path().join("data").exists(),
        "the data directory was created"
    );
    // Nothing was written where the database would be.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A server sending email through the SMTP sink on `port`, From `news@example.net`, signing
/// with `RSA_PEM` (written into `dir`) under the selector `crier2026`.
pub fn smtp_server(port: u16, dir: &tempfile::TempDir) -> crate::harness::TestServer {
    let key_file = dir.path().join("dkim.pem");
    std::fs::write(&key_file, RSA_PEM).unwrap();
    crate::harness::TestServer::start_with(
        move |config: &mut crier::config::Config| {
            let delivery = &mut config.delivery;
            delivery.email_providers = vec![crier::delivery::settings::EmailProviderName::Smtp];
            delivery.email_from = "news@example.net".to_owned();
            delivery.smtp = Some(SmtpSettings {
                host: "127.0.0.1".to_owned(),
                port,
                security: SmtpSecurity::None,
                credentials: None,
            });
            delivery.dkim = Some(DkimSettings {
                selector: "crier2026".to_owned(),
                key_file,
            });
        },
        crier::web::router::Router::standard(),
    )
}

#[test]
fn the_server_signs_what_its_dispatchers_send() {
    let sink = Sink::default();
    let port = start(&sink);
    let dir = tempfile::tempdir().unwrap();
    let server = smtp_server(port, &dir);
    let sender = crate::sending::Sender::new(&server, "live");
    sender.credit(1000);
    let message = sender.sent(
        &serde_json::json!({"channel": "email", "to": "ada@example.org", "subject": "Hi",
                            "text": "Hello", "category": "transactional"}),
        "d1",
    );
    sender.wait_for(message["id"].as_str().unwrap(), "sent");
    let received = sink.messages.lock().unwrap().pop().unwrap();
    let checked = check(&received);
    assert!(checked.body_hash_ok);
    assert_eq!(checked.tag("d"), "example.net");
    UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        BASE64.decode(RSA_PKCS1).unwrap(),
    )
    .verify(&checked.signed, &checked.signature)
    .expect("the signature verifies");
}
