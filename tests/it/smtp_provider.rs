//! The smtp provider against a real SMTP server (mailin-embedded) on 127.0.0.1: what arrives on
//! the wire (envelope, headers, MIME parts), and how refusals and broken connections are
//! classified. No crier server is needed: the provider is called directly.

use std::io;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crier::config::Secret;
use crier::delivery::providers::smtp::SmtpProvider;
use crier::delivery::settings::{SmtpSecurity, SmtpSettings};
use crier::delivery::{Disposition, EmailOut, Failure, Outgoing, Provider};
use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK, TRANSACTION_FAILED};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

/// What the server saw, across all sessions.
#[derive(Debug, Default)]
pub struct Received {
    /// EHLO or HELO commands, across all sessions.
    greetings: usize,
    pub mail_from: Vec<String>,
    rcpt_to: Vec<String>,
    /// The DATA of every message the server accepted, dot-unstuffed, CRLF line ends.
    pub messages: Vec<String>,
    current: Vec<u8>,
}

/// Records each command and answers as told.
#[derive(Clone, Default)]
pub struct Recorder {
    pub received: Arc<Mutex<Received>>,
    rcpt_reply: Option<Response>,
    data_end_reply: Option<Response>,
}

impl Handler for Recorder {
    fn helo(&mut self, _ip: std::net::IpAddr, _domain: &str) -> Response {
        self.received.lock().unwrap().greetings += 1;
        OK
    }

    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        self.received
            .lock()
            .unwrap()
            .mail_from
            .push(from.to_owned());
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if let Some(reply) = &self.rcpt_reply {
            return reply.clone();
        }
        self.received.lock().unwrap().rcpt_to.push(to.to_owned());
        OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.received.lock().unwrap().current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut received = self.received.lock().unwrap();
        let data = std::mem::take(&mut received.current);
        if let Some(reply) = &self.data_end_reply {
            return reply.clone();
        }
        received
            .messages
            .push(String::from_utf8(data).expect("the DATA is ASCII"));
        OK
    }
}

/// Starts the server on a free port; it is listening (and so ready) before this returns.
pub fn start(recorder: &Recorder, auth: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::new(recorder.clone());
    server
        .with_name("mx.test")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_num_threads(2)
        .with_tcp_listener(listener);
    if auth {
        server
            .with_auth(AuthMechanism::Plain)
            .with_auth(AuthMechanism::Login);
    }
    // Serves until the test process ends; an error would only end this thread (the error type
    // is not Send), and the test then fails on its own.
    thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

fn provider(
    port: u16,
    security: SmtpSecurity,
    credentials: Option<(&str, &str)>,
    timeout: Duration,
) -> SmtpProvider {
    let settings = SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port,
        security,
        credentials: credentials.map(|(user, password)| (user.to_owned(), Secret::new(password))),
    };
    SmtpProvider::new(&settings, timeout).unwrap()
}

fn plain(port: u16) -> SmtpProvider {
    provider(port, SmtpSecurity::None, None, Duration::from_secs(5))
}

fn email<'a>(message_id: &'a str, text: Option<&'a str>, html: Option<&'a str>) -> EmailOut<'a> {
    EmailOut {
        message_id,
        to: "ada@example.org",
        from: "Crier <noreply@example.com>",
        subject: "Welcome aboard",
        text,
        html,
        list_unsubscribe: None,
        dkim: None,
    }
}

fn send(provider: &SmtpProvider, email: EmailOut<'_>) -> Result<Option<String>, Failure> {
    provider
        .send(&Outgoing::Email(email))
        .map(|accepted| accepted.provider_message_id)
}

fn assert_failure(result: Result<Option<String>, Failure>, disposition: Disposition, code: &str) {
    let failure = result.expect_err("the send should fail");
    assert_eq!(
        (failure.disposition, failure.code.as_str()),
        (disposition, code),
        "{}",
        failure.message
    );
    assert!(!failure.message.is_empty());
}

#[test]
fn text_and_html_arrive_as_an_alternative_with_our_message_id() {
    let recorder = Recorder::default();
    let port = start(&recorder, false);
    let id = "msg_01JD5XTEXTHTML";
    let accepted = send(
        &plain(port),
        email(
            id,
            Some("Hello Ada.\nSee you soon."),
            Some("<p>Hello <b>Ada</b>.</p>"),
        ),
    )
    .unwrap();
    assert_eq!(accepted.as_deref(), Some("msg_01JD5XTEXTHTML@example.com"));

    let received = recorder.received.lock().unwrap();
    assert_eq!(received.mail_from, ["noreply@example.com"]);
    assert_eq!(received.rcpt_to, ["ada@example.org"]);
    assert_eq!(received.messages.len(), 1);
    let mail = Mime::parse(&received.messages[0]);
    assert_eq!(mail.header("From"), Some("Crier <noreply@example.com>"));
    assert_eq!(mail.header("To"), Some("ada@example.org"));
    assert_eq!(mail.header("Subject"), Some("Welcome aboard"));
    assert_eq!(
        mail.header("Message-ID"),
        Some("<msg_01JD5XTEXTHTML@example.com>")
    );
    assert_eq!(mail.header("X-Crier-Message-Id"), Some(id));
    assert_eq!(mail.header("MIME-Version"), Some("1.0"));
    assert!(mail.header("Date").is_some());
    assert!(
        mail.content_type().starts_with("multipart/alternative;"),
        "{}",
        mail.content_type()
    );
    let parts: Vec<(&str, &str)> = mail
        .parts
        .iter()
        .map(|part| (part.content_type(), part.body.as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            ("text/plain; charset=utf-8", "Hello Ada.\r\nSee you soon."),
            ("text/html; charset=utf-8", "<p>Hello <b>Ada</b>.</p>"),
        ]
    );
}

#[test]
fn a_single_body_is_a_single_part() {
    let recorder = Recorder::default();
    let port = start(&recorder, false);
    let provider = plain(port);
    send(&provider, email("msg_01TEXTONLY", Some("Just text"), None)).unwrap();
    send(
        &provider,
        email("msg_01HTMLONLY", None, Some("<p>Just html</p>")),
    )
    .unwrap();

    let received = recorder.received.lock().unwrap();
    let text = Mime::parse(&received.messages[0]);
    assert_eq!(text.content_type(), "text/plain; charset=utf-8");
    assert_eq!(text.body, "Just text");
    assert!(text.parts.is_empty());
    let html = Mime::parse(&received.messages[1]);
    assert_eq!(html.content_type(), "text/html; charset=utf-8");
    assert_eq!(html.body, "<p>Just html</p>");
    assert_eq!(
        html.header("Message-ID"),
        Some("<msg_01HTMLONLY@example.com>")
    );
}

#[test]
fn non_ascii_subject_names_and_bodies_round_trip() {
    let recorder = Recorder::default();
    let port = start(&recorder, false);
    let subject = "Bienvenue à bord – 🚀";
    let text = "Merci, à bientôt ✓\nÇa marche déjà.";
    let html = "<p>Déjà là — 日本語</p>";
    let mut out = email("msg_01UTF8", Some(text), Some(html));
    out.subject = subject;
    out.from = "Équipe Crier <noreply@example.com>";
    send(&plain(port), out).unwrap();

    let received = recorder.received.lock().unwrap();
    let raw = &received.messages[0];
    assert!(raw.is_ascii(), "the wire form is encoded: {raw}");
    let mail = Mime::parse(raw);
    let encoded_subject = mail.header("Subject").unwrap();
    assert!(encoded_subject.contains("=?utf-8?b?"), "{encoded_subject}");
    assert_eq!(decode_words(encoded_subject), subject);
    assert_eq!(
        decode_words(mail.header("From").unwrap()),
        "Équipe Crier <noreply@example.com>"
    );
    assert_eq!(mail.parts[0].body, text.replace('\n', "\r\n"));
    assert_eq!(mail.parts[1].body, html);
}

#[test]
fn messages_to_a_real_server_share_one_connection() {
    let recorder = Recorder::default();
    let port = start(&recorder, false);
    let provider = plain(port);
    for n in 0..3 {
        let id = format!("msg_01REUSE{n}");
        assert_eq!(
            send(&provider, email(&id, Some("Hi"), None)).unwrap(),
            Some(format!("{id}@example.com"))
        );
    }
    let received = recorder.received.lock().unwrap();
    assert_eq!(received.messages.len(), 3);
    assert_eq!(received.rcpt_to.len(), 3);
    // One connection: lettre's EHLO and the provider's own, then three messages (RSET between).
    assert_eq!(received.greetings, 2);
}

#[test]
fn a_refused_recipient_is_final() {
    let recorder = Recorder {
        rcpt_reply: Some(NO_MAILBOX),
        ..Recorder::default()
    };
    let port = start(&recorder, false);
    let result = send(&plain(port), email("msg_01NOBODY", Some("Hi"), None));
    assert_failure(result, Disposition::Final, "smtp_550");
    let received = recorder.received.lock().unwrap();
    assert_eq!(received.mail_from, ["noreply@example.com"]);
    assert!(received.messages.is_empty());
}

#[test]
fn refusals_after_the_data_are_final_or_retryable_by_their_code() {
    let cases = [
        (TRANSACTION_FAILED, Disposition::Final, "smtp_554"),
        (INTERNAL_ERROR, Disposition::Retryable, "smtp_451"),
        (
            Response::custom(552, "Message too big".to_owned()),
            Disposition::Final,
            "smtp_552",
        ),
    ];
    for (reply, disposition, code) in cases {
        let recorder = Recorder {
            data_end_reply: Some(reply),
            ..Recorder::default()
        };
        let port = start(&recorder, false);
        // After refusing the DATA, mailin stays in its DATA state and never answers lettre's
        // QUIT; a short timeout keeps that wait short. The reply has been classified by then.
        let provider = provider(port, SmtpSecurity::None, None, Duration::from_millis(500));
        let result = send(&provider, email("msg_01DATAEND", Some("Hi"), None));
        assert_failure(result, disposition, code);
    }
}

#[test]
fn a_port_with_nothing_listening_is_retryable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = send(&plain(port), email("msg_01NOSERVER", Some("Hi"), None));
    assert_failure(result, Disposition::Retryable, "network");
}

#[test]
fn a_server_that_never_greets_times_out_as_retryable() {
    // The kernel completes the connection into the backlog; nobody ever answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let provider = provider(port, SmtpSecurity::None, None, Duration::from_millis(300));
    let result = send(&provider, email("msg_01SILENT", Some("Hi"), None));
    assert_failure(result, Disposition::Retryable, "timeout");
    drop(listener);
}

#[test]
fn starttls_is_required_not_opportunistic() {
    // This server offers no STARTTLS: nothing may be sent in the clear.
    let recorder = Recorder::default();
    let port = start(&recorder, false);
    let provider = provider(
        port,
        SmtpSecurity::StartTls,
        Some(("crier", "s3cret-password")),
        Duration::from_secs(5),
    );
    let result = send(&provider, email("msg_01NOTLS", Some("Hi"), None));
    let failure = result.clone().unwrap_err();
    assert!(!failure.message.contains("s3cret-password"));
    assert_failure(result, Disposition::Retryable, "tls");
    let received = recorder.received.lock().unwrap();
    assert!(received.mail_from.is_empty() && received.messages.is_empty());
}

#[test]
fn implicit_tls_against_a_plain_server_fails_as_tls() {
    let recorder = Recorder::default();
    let port = start(&recorder, false);
    let provider = provider(port, SmtpSecurity::Tls, None, Duration::from_secs(5));
    let result = send(&provider, email("msg_01TLSPLAIN", Some("Hi"), None));
    assert_failure(result, Disposition::Retryable, "tls");
    assert!(recorder.received.lock().unwrap().mail_from.is_empty());
}

#[test]
fn authentication_problems_are_retryable() {
    // mailin only offers AUTH over TLS, and its TLS needs a certificate lettre would trust, so
    // a successful AUTH cannot be shown here; what can be: credentials are never sent to a
    // server that does not offer AUTH, and a server that requires it refuses the mail.
    let recorder = Recorder::default();
    let port = start(&recorder, true);
    let with_credentials = provider(
        port,
        SmtpSecurity::None,
        Some(("crier", "s3cret-password")),
        Duration::from_secs(5),
    );
    let result = send(&with_credentials, email("msg_01AUTH", Some("Hi"), None));
    let failure = result.clone().unwrap_err();
    assert!(!failure.message.contains("s3cret-password"));
    assert_failure(result, Disposition::Retryable, "smtp_auth");

    // Without credentials the server answers MAIL FROM with 503 (AUTH first): the conversation
    // failed, not the message.
    let result = send(&plain(port), email("msg_01NOAUTH", Some("Hi"), None));
    assert_failure(result, Disposition::Retryable, "smtp_503");
    let received = recorder.received.lock().unwrap();
    assert!(received.mail_from.is_empty() && received.messages.is_empty());
}

/// Just enough MIME to check what lettre wrote: headers (unfolded, still encoded), and the
/// body decoded from its Content-Transfer-Encoding, or the parts of a multipart.
struct Mime {
    headers: Vec<(String, String)>,
    body: String,
    parts: Vec<Mime>,
}

impl Mime {
    fn parse(raw: &str) -> Mime {
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .expect("a blank line ends the headers");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a continuation follows a header");
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("a header line");
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        let mut mime = Mime {
            headers,
            body: String::new(),
            parts: Vec::new(),
        };
        let content_type = mime.content_type().to_owned();
        if let Some(boundary) = content_type
            .split(';')
            .find_map(|param| param.trim().strip_prefix("boundary="))
        {
            let delimiter = format!("--{}", boundary.trim_matches('"'));
            let mut sections = body.split(delimiter.as_str());
            sections.next(); // the preamble
            for section in sections {
                if section.starts_with("--") {
                    break; // the closing delimiter
                }
                let section = section.strip_prefix("\r\n").unwrap();
                mime.parts.push(Mime::parse(section));
            }
        } else {
            let body = body.trim_end_matches("\r\n");
            let decoded = match mime.header("Content-Transfer-Encoding") {
                Some("quoted-printable") => decode_quoted_printable(body),
                Some("base64") => decode_base64(&body.replace("\r\n", "")),
                _ => body.as_bytes().to_vec(),
            };
            mime.body = String::from_utf8(decoded).unwrap();
        }
        mime
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("text/plain")
    }
}

fn decode_quoted_printable(encoded: &str) -> Vec<u8> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3; // a soft line break
                continue;
            }
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn decode_base64(encoded: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in encoded.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET.iter().position(|&a| a == byte).unwrap() as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// Decodes the RFC 2047 `=?utf-8?b?…?=` words of a header value; the space between two
/// encoded words is not part of the text.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_was_encoded = false;
    for (index, token) in value.split(' ').enumerate() {
        let encoded = token
            .strip_prefix("=?utf-8?b?")
            .and_then(|rest| rest.strip_suffix("?="));
        if index > 0 && !(previous_was_encoded && encoded.is_some()) {
            out.push(' ');
        }
        match encoded {
            Some(word) => out.push_str(&String::from_utf8(decode_base64(word)).unwrap()),
            None => out.push_str(token),
        }
        previous_was_encoded = encoded.is_some();
    }
    out
}
