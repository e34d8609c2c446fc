//! The `smtp` email provider: hands each email to one configured SMTP server (STARTTLS,
//! implicit TLS or plain; optional AUTH), over connections it keeps open between messages.
//!
//! It owns three things: building the MIME message (From, To, Subject, a Message-ID derived from
//! our message id, text/plain, text/html or a multipart/alternative of both, UTF-8 throughout),
//! carrying it over a pooled connection (`pool`: `RSET` between messages, PIPELINING when the
//! server offers it — with CHUNKING too, the whole message in one write and one round trip — a
//! dropped idle connection replaced without sending twice), and mapping what
//! the SMTP conversation ends with onto `Accepted` or a classified `Failure`. lettre builds the
//! message and opens connections (TLS, STARTTLS, AUTH); the message transaction is ours, so a
//! message leaves in as few writes as possible. The dispatchers' concurrency bounds how many
//! connections are open at once: one per dispatcher at most.

mod dkim;
mod pool;

use std::error::Error as _;
use std::io;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::{Address, Message};

use crate::delivery::settings::{DkimSettings, SmtpSecurity, SmtpSettings};
use crate::delivery::{Accepted, Disposition, EmailOut, Failure, Outgoing, Provider};
pub use dkim::DkimSigner;
use pool::{Body, Connector, Pool, Session, TransmitError};

/// Our message id, in a header of its own, so a bounce or a complaint that quotes the headers
/// leads straight back to the message even when the Message-ID was rewritten on the way.
const CRIER_MESSAGE_ID: HeaderName = HeaderName::new_from_ascii_str("X-Crier-Message-Id");
/// RFC 2369's unsubscribe link, and RFC 8058's statement that a POST to it unsubscribes.
const LIST_UNSUBSCRIBE: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe");
const LIST_UNSUBSCRIBE_POST: HeaderName = HeaderName::new_from_ascii_str("List-Unsubscribe-Post");

/// The right-hand side of the Message-ID when the From domain cannot be used as is (see
/// `message_id_for`).
const FALLBACK_MESSAGE_ID_DOMAIN: &str = "crier.localhost";

/// Sends email through one SMTP server.
pub struct SmtpProvider {
    connector: Connector,
    pool: Pool,
    security: SmtpSecurity,
    /// Signs every message when DKIM is configured.
    dkim: Option<DkimSigner>,
}

impl SmtpProvider {
    /// Sets up the provider once; no connection is made until the first send. `timeout`
    /// bounds the connect and each read and write of the SMTP conversation. Fails with a
    /// sentence when the settings cannot describe a usable server.
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<SmtpProvider, String> {
        let host = settings.host.as_str();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "the SMTP host {host:?} is not a host name or an IP address"
            ));
        }
        if settings.port == 0 {
            return Err("the SMTP port must be between 1 and 65535".to_owned());
        }
        let tls = || {
            TlsParameters::new(host.to_owned())
                .map_err(|error| format!("the SMTP host {host} cannot be used with TLS: {error}"))
        };
        // STARTTLS required, not opportunistic: a server (or a man in the middle) that does not
        // offer it gets neither the credentials nor the message.
        let (implicit_tls, starttls) = match settings.security {
            SmtpSecurity::StartTls => (None, Some(tls()?)),
            SmtpSecurity::Tls => (Some(tls()?), None),
            SmtpSecurity::None => (None, None),
        };
        let credentials = settings
            .credentials
            .as_ref()
            .map(|(user, password)| Credentials::new(user.clone(), password.expose().to_owned()));
        Ok(SmtpProvider {
            connector: Connector {
                host: host.to_owned(),
                port: settings.port,
                timeout,
                implicit_tls,
                starttls,
                credentials,
            },
            pool: Pool::new(),
            security: settings.security,
            dkim: None,
        })
    }

    /// Signs every message with the key of `settings` for the domain of `email_from` (the
    /// `d=` tag; DMARC wants the From domain). Reads the key file now: a missing or unusable
    /// key stops the start with a sentence. Logs the DNS record to publish (never the key).
    pub fn with_dkim(
        mut self,
        settings: &DkimSettings,
        email_from: &str,
    ) -> Result<SmtpProvider, String> {
        let signer = DkimSigner::load(settings, email_from)?;
        log::info!(
            target: "crier::delivery",
            name = signer.record_name().as_str(), record = signer.record().as_str();
            "DKIM signing on: publish this TXT record"
        );
        self.dkim = Some(signer);
        Ok(self)
    }

    /// The DKIM signer, when DKIM is on.
    pub fn dkim(&self) -> Option<&DkimSigner> {
        self.dkim.as_ref()
    }

    /// Carries one message: over an idle pooled connection when there is one, else (or when
    /// that connection turns out to be gone before the message was written) over a fresh one.
    fn transmit(&self, envelope: &Envelope, body: &Body) -> Result<(), Failure> {
        if let Some(mut session) = self.pool.take() {
            match session.transmit(envelope, body) {
                Ok(()) => {
                    self.pool.put(session);
                    return Ok(());
                }
                // The server closed the idle connection: it cannot have the message, which
                // goes once more, on a fresh connection.
                Err(TransmitError::NotSent { gone: true, .. }) => drop(session),
                Err(error) => return Err(self.fail(session, error)),
            }
        }
        let mut session = self
            .connector
            .open()
            .map_err(|error| classify_error(&error, self.security))?;
        match session.transmit(envelope, body) {
            Ok(()) => {
                self.pool.put(session);
                Ok(())
            }
            Err(error) => Err(self.fail(session, error)),
        }
    }

    /// Ends a session that failed, and says why. A server that refused the message gets a
    /// `QUIT`; a connection that failed, or a server waiting for a body, is just closed.
    fn fail(&self, session: Session, error: TransmitError) -> Failure {
        match error {
            TransmitError::NotSent {
                error,
                gone,
                awaiting_body,
            } => {
                session.close(!gone && !awaiting_body);
                classify_error(&error, self.security)
            }
            TransmitError::Unsure { error, gone } => {
                session.close(!gone);
                classify_error(&error, self.security)
            }
            TransmitError::Unsupported(why) => {
                session.close(true);
                Failure::retryable(
                    "smtp_client",
                    format!("The SMTP conversation stopped: {why}."),
                )
            }
        }
    }
}

impl Provider for SmtpProvider {
    fn name(&self) -> &'static str {
        "smtp"
    }

    /// On success, `provider_message_id` is the Message-ID we set, without its angle brackets
    /// (`msg_…@example.com`).
    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let Outgoing::Email(email) = message else {
            // A dispatcher bug, not a property of the message: no other provider of this
            // chain could take it either.
            return Err(Failure::final_(
                "unsupported_channel",
                "The smtp provider sends email only.",
            ));
        };
        let (mail, message_id) = build_message(email)?;
        // lettre's output is ASCII (every part is encoded), so this never refuses in practice.
        let mut formatted = mail.formatted();
        // The workspace's own domain's key when it sends From its domain, else the instance's.
        if let Some(signer) = email.dkim.or(self.dkim.as_ref()) {
            // A signing failure is the key's, not the message's: retryable.
            let header = signer.sign(&formatted).map_err(|why| {
                Failure::retryable("dkim", format!("The DKIM signature failed: {why}."))
            })?;
            formatted.splice(0..0, header.into_bytes());
        }
        let body = Body::new(formatted).ok_or_else(|| {
            Failure::final_("invalid_message", "The email could not be encoded as text.")
        })?;
        self.transmit(mail.envelope(), &body)?;
        Ok(Accepted {
            provider_message_id: Some(message_id),
        })
    }
}

/// The MIME message for `email`, and its Message-ID without angle brackets.
fn build_message(email: &EmailOut<'_>) -> Result<(Message, String), Failure> {
    // The From mailbox is a setting shared by every email: when it is wrong the operator can
    // fix it and the same message will then go, so it is not the message's fault (Retryable).
    let from: Mailbox = email.from.parse().map_err(|error| {
        Failure::retryable(
            "invalid_from",
            format!("The configured From mailbox is not a valid address ({error})."),
        )
    })?;
    let to: Address = email.to.parse().map_err(|error| {
        Failure::final_(
            "invalid_address",
            format!("The recipient is not a valid email address ({error})."),
        )
    })?;
    let message_id = message_id_for(email.message_id, from.email.domain());
    // The envelope is the From address and the one recipient, as lettre would read them back
    // from the headers it was given: handing them over spares it parsing both once more.
    let envelope = Envelope::new(Some(from.email.clone()), vec![to.clone()]).map_err(not_built)?;
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(email.subject)
        .message_id(Some(format!("<{message_id}>")))
        .raw_header(HeaderValue::new(
            CRIER_MESSAGE_ID,
            email.message_id.to_owned(),
        ));
    if let Some(url) = email.list_unsubscribe {
        builder = builder
            .raw_header(HeaderValue::new(LIST_UNSUBSCRIBE, format!("<{url}>")))
            .raw_header(HeaderValue::new(
                LIST_UNSUBSCRIBE_POST,
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    // lettre picks 7bit, quoted-printable or base64 per part, so the bytes on the wire are
    // ASCII whatever the text and the server need not offer 8BITMIME.
    let built = match (email.text, email.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        )),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.to_owned())),
        (text, None) => {
            // Validation guarantees a text or an html body; an empty text part keeps this
            // total rather than inventing an error for a case that cannot arrive.
            builder.singlepart(SinglePart::plain(text.unwrap_or_default().to_owned()))
        }
    };
    let mail = built.map_err(not_built)?;
    Ok((mail, message_id))
}

/// lettre refused to build the message from what the message holds: its fault, Final.
fn not_built(error: impl std::fmt::Display) -> Failure {
    Failure::final_(
        "invalid_message",
        format!("The email could not be built ({error})."),
    )
}

/// `{message_id}@{domain of the From address}`: derived, not random, so a message sent again
/// (another cycle, another provider) carries the same Message-ID and receivers can tell it is
/// one message. A non-ASCII (internationalised) domain cannot stand in a Message-ID as is, so
/// it falls back to a fixed name that still keeps the id unique through our id.
fn message_id_for(message_id: &str, from_domain: &str) -> String {
    let domain = if from_domain.is_ascii() && !from_domain.is_empty() {
        from_domain
    } else {
        FALLBACK_MESSAGE_ID_DOMAIN
    };
    format!("{message_id}@{domain}")
}

/// What a negative SMTP reply code means for this message: its disposition and our code.
///
/// - 530, 534, 535, 538 (authentication required, mechanism too weak, credentials invalid,
///   encryption required for the mechanism): `smtp_auth`, Retryable. The credentials are a
///   setting, not a property of the message: another provider may take it now, and this one
///   once the operator has fixed them.
/// - 500–504 (syntax error, command not implemented, bad sequence): the conversation went
///   wrong, not the message; Retryable.
/// - Any other 5xx (550 mailbox unavailable, 551, 552 too big, 553 bad address, 554 rejected,
///   …): the server refuses this message for good; Final. This includes a 554 greeting
///   ("no SMTP service here"): lettre does not say at which step a reply came, and refusals of
///   the message are far more common.
/// - 4xx and anything else: transient; Retryable.
fn classify_reply(code: u16) -> (Disposition, String) {
    match code {
        530 | 534 | 535 | 538 => (Disposition::Retryable, "smtp_auth".to_owned()),
        500..=504 => (Disposition::Retryable, format!("smtp_{code}")),
        505..=599 => (Disposition::Final, format!("smtp_{code}")),
        _ => (Disposition::Retryable, format!("smtp_{code}")),
    }
}

/// Maps a failed SMTP conversation onto a `Failure`. Only a refusing reply can be Final;
/// everything that went wrong before the server could judge the message (connection, TLS,
/// timeouts, an unreadable answer) is Retryable. The sentence is lettre's description, which
/// carries the server's reply text and never the credentials or the message.
fn classify_error(error: &SmtpError, security: SmtpSecurity) -> Failure {
    if let Some(code) = error.status() {
        let (disposition, tag) = classify_reply(u16::from(code));
        return Failure::new(
            disposition,
            tag,
            format!("The SMTP server refused the message: {error}"),
        );
    }
    if has_io_error(error, |kind| {
        // A read that hits the socket timeout reports WouldBlock on Unix, TimedOut elsewhere.
        matches!(kind, io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
    }) {
        return Failure::retryable(
            "timeout",
            format!("The SMTP server did not answer in time: {error}"),
        );
    }
    if error.is_tls() {
        return Failure::retryable("tls", format!("TLS with the SMTP server failed: {error}"));
    }
    if error.is_client() {
        // lettre raises these before anything reaches the server; its wording is the only way
        // to tell them apart, and the fallback is Retryable anyway.
        let text = error.to_string();
        let code = if text.contains("STARTTLS") {
            "tls"
        } else if text.contains("authentication mechanism") {
            "smtp_auth"
        } else {
            "smtp_client"
        };
        return Failure::retryable(code, format!("The SMTP conversation stopped: {error}"));
    }
    if error.is_response() {
        return Failure::retryable(
            "smtp_protocol",
            format!("The SMTP server's answer could not be understood: {error}"),
        );
    }
    // A failed TLS handshake or certificate check surfaces as an I/O error of kind InvalidData
    // on the first read through the TLS stream; on a plain connection that kind means garbage.
    if security != SmtpSecurity::None
        && has_io_error(error, |kind| kind == io::ErrorKind::InvalidData)
    {
        return Failure::retryable("tls", format!("TLS with the SMTP server failed: {error}"));
    }
    Failure::retryable(
        "network",
        format!("Could not talk to the SMTP server: {error}"),
    )
}

/// Whether an I/O error of a kind matching `wanted` is somewhere in `error`'s source chain.
fn has_io_error(error: &SmtpError, wanted: impl Fn(io::ErrorKind) -> bool) -> bool {
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(io_error) = inner.downcast_ref::<io::Error>()
            && wanted(io_error.kind())
        {
            return true;
        }
        source = inner.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn email<'a>(text: Option<&'a str>, html: Option<&'a str>) -> EmailOut<'a> {
        EmailOut {
            message_id: "msg_01JD5X",
            to: "ada@example.org",
            from: "Crier <noreply@mail.example.com>",
            subject: "Your code",
            text,
            html,
            list_unsubscribe: None,
            dkim: None,
        }
    }

    fn formatted(email: &EmailOut<'_>) -> (String, String) {
        let (mail, id) = build_message(email).unwrap();
        (String::from_utf8(mail.formatted()).unwrap(), id)
    }

    #[test]
    fn marketing_email_carries_the_rfc_8058_headers_and_transactional_none() {
        let url = "https://crier.example/u/AQBd3NwXzAx-_tok";
        let mut marketing = email(Some("Hello"), None);
        marketing.list_unsubscribe = Some(url);
        let (raw, _) = formatted(&marketing);
        assert!(
            raw.contains(&format!("List-Unsubscribe: <{url}>\r\n")),
            "{raw}"
        );
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{raw}"
        );
        let (raw, _) = formatted(&email(Some("Hello"), None));
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
    }

    #[test]
    fn the_message_id_is_derived_from_ours_and_the_from_domain() {
        let (raw, id) = formatted(&email(Some("Hello"), None));
        assert_eq!(id, "msg_01JD5X@mail.example.com");
        assert!(
            raw.contains("Message-ID: <msg_01JD5X@mail.example.com>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("X-Crier-Message-Id: msg_01JD5X\r\n"), "{raw}");
        assert!(
            raw.contains("From: Crier <noreply@mail.example.com>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("To: ada@example.org\r\n"), "{raw}");
        assert!(raw.contains("Subject: Your code\r\n"), "{raw}");
        // Sent again, the same message has the same Message-ID.
        assert_eq!(formatted(&email(Some("Hello"), None)).1, id);
        assert_eq!(
            message_id_for("msg_1", "bücher.example"),
            "msg_1@crier.localhost"
        );
    }

    #[test]
    fn one_body_is_a_single_part_and_both_make_an_alternative() {
        let (text_only, _) = formatted(&email(Some("Hello"), None));
        assert!(text_only.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(!text_only.contains("multipart"));

        let (html_only, _) = formatted(&email(None, Some("<p>Hello</p>")));
        assert!(html_only.contains("Content-Type: text/html; charset=utf-8"));
        assert!(!html_only.contains("text/plain"));

        let (both, _) = formatted(&email(Some("Hello"), Some("<p>Hello</p>")));
        assert!(both.contains("Content-Type: multipart/alternative;"));
        let plain = both.find("Content-Type: text/plain").unwrap();
        let html = both.find("Content-Type: text/html").unwrap();
        assert!(plain < html, "the text part comes first: {both}");
        assert!(both.contains("<p>Hello</p>"));
    }

    #[test]
    fn a_bare_from_address_and_a_non_ascii_subject_are_accepted() {
        let mut out = email(Some("Merci à vous"), None);
        out.from = "noreply@example.com";
        out.subject = "Votre code – é";
        let (raw, id) = formatted(&out);
        assert_eq!(id, "msg_01JD5X@example.com");
        assert!(raw.is_ascii(), "everything on the wire is encoded: {raw}");
        // RFC 2047: only the words that need it are encoded ("– é" in base64).
        assert!(
            raw.contains("Subject: Votre code =?utf-8?b?4oCTIMOp?=\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Merci =C3=A0 vous"), "{raw}");
    }

    #[test]
    fn a_subject_cannot_inject_headers() {
        let mut out = email(Some("Hello"), None);
        out.subject = "Hi\r\nBcc: eve@example.net";
        let (raw, _) = formatted(&out);
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn bad_addresses_are_classified() {
        let mut out = email(Some("Hello"), None);
        out.to = "not an address";
        let failure = build_message(&out).unwrap_err();
        assert_eq!(
            (failure.disposition, failure.code.as_str()),
            (Disposition::Final, "invalid_address")
        );

        let mut out = email(Some("Hello"), None);
        out.from = "Crier <nowhere>";
        let failure = build_message(&out).unwrap_err();
        assert_eq!(
            (failure.disposition, failure.code.as_str()),
            (Disposition::Retryable, "invalid_from")
        );
    }

    #[test]
    fn reply_codes_are_classified() {
        let cases = [
            (550, Disposition::Final, "smtp_550"),
            (551, Disposition::Final, "smtp_551"),
            (552, Disposition::Final, "smtp_552"),
            (553, Disposition::Final, "smtp_553"),
            (554, Disposition::Final, "smtp_554"),
            (530, Disposition::Retryable, "smtp_auth"),
            (534, Disposition::Retryable, "smtp_auth"),
            (535, Disposition::Retryable, "smtp_auth"),
            (538, Disposition::Retryable, "smtp_auth"),
            (500, Disposition::Retryable, "smtp_500"),
            (503, Disposition::Retryable, "smtp_503"),
            (421, Disposition::Retryable, "smtp_421"),
            (450, Disposition::Retryable, "smtp_450"),
            (451, Disposition::Retryable, "smtp_451"),
            (452, Disposition::Retryable, "smtp_452"),
        ];
        for (code, disposition, tag) in cases {
            assert_eq!(
                classify_reply(code),
                (disposition, tag.to_owned()),
                "{code}"
            );
        }
    }

    #[test]
    fn unusable_settings_are_refused() {
        let settings = |host: &str, port: u16| SmtpSettings {
            host: host.to_owned(),
            port,
            security: SmtpSecurity::StartTls,
            credentials: Some(("user".to_owned(), Secret::new("hunter2"))),
        };
        let timeout = Duration::from_secs(5);
        assert!(SmtpProvider::new(&settings("", 587), timeout).is_err());
        assert!(SmtpProvider::new(&settings("smtp example.com", 587), timeout).is_err());
        assert!(SmtpProvider::new(&settings("smtp.example.com", 0), timeout).is_err());
        let provider = SmtpProvider::new(&settings("smtp.example.com", 587), timeout).unwrap();
        assert_eq!(provider.name(), "smtp");
    }
}
