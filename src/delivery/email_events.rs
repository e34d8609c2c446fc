//! Bounce and complaint notifications that email relays post after they accepted a message
//! (`POST /v1/webhooks/email/{provider}`): parsing and checking them. What they change is
//! `receipts::apply_email_events`.
//!
//! Two forms (docs/API.md, "Email bounces and complaints"):
//! - `generic`: one JSON event `{"event": "bounce" | "complaint", "message_id", "recipient",
//!   "reason"?}` (or an array of them), for a relay script or a bridge from any provider; the
//!   receipt token in the URL authenticates it (checked by the web layer).
//! - `mailgun`: Mailgun's webhook body `{"signature": {"timestamp", "token", "signature"},
//!   "event-data": {…}}`, authenticated by its HMAC-SHA256 of timestamp + token under the
//!   webhook signing key. A `failed` event of `permanent` severity is a bounce, `complained` a
//!   complaint; every other event (deliveries, opens, temporary failures) is received and
//!   ignored.
//!
//! An event names the message by our id (`msg_…`, the `X-Crier-Message-Id` header) or by the
//! Message-ID crier set (`<msg_…@domain>`, with or without angle brackets): the message says
//! which workspace and mode the address belongs to. An event whose message crier cannot name is
//! kept as `message_id: None` and changes nothing.

use ring::hmac;
use serde::Deserialize;

use crate::ids::MessageId;
use crate::secrets::constant_time_eq;

/// The most events one generic request may carry.
pub const MAX_EVENTS: usize = 100;

/// What a relay reports about a message it had accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailEventKind {
    /// The receiving server refused the message for good (a hard bounce).
    Bounce,
    /// The recipient marked the message as spam (a feedback-loop report).
    Complaint,
}

/// One bounce or complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailEvent {
    pub kind: EmailEventKind,
    /// Our message, when the event names one crier sent.
    pub message_id: Option<MessageId>,
    /// The address it concerns, lower-cased.
    pub recipient: String,
    /// The relay's words about it (the remote server's reply for a bounce), at most 500
    /// characters.
    pub reason: Option<String>,
}

/// Why a notification is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsRefusal {
    /// Not signed by the relay (401).
    Signature(String),
    /// Not a notification of this form (400).
    Malformed(String),
}

/// Our message id from what an event quotes: `msg_…` itself, or a Message-ID whose left-hand
/// side is one (`<msg_…@example.com>`).
pub fn message_id_from(text: &str) -> Option<MessageId> {
    let text = text.trim().trim_start_matches('<').trim_end_matches('>');
    let local = text.split('@').next().unwrap_or_default();
    MessageId::parse(local)
}

fn reason_of(text: Option<String>) -> Option<String> {
    text.map(|text| {
        text.chars()
            .take(crate::delivery::MAX_FAILURE_MESSAGE)
            .collect()
    })
    .filter(|text: &String| !text.trim().is_empty())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GenericEvents {
    One(GenericEvent),
    Many(Vec<GenericEvent>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericEvent {
    event: String,
    message_id: String,
    recipient: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The generic form: one event or an array of 1 to `MAX_EVENTS`.
pub fn parse_generic(body: &[u8]) -> Result<Vec<EmailEvent>, EventsRefusal> {
    let malformed = |why: &str| EventsRefusal::Malformed(why.to_owned());
    let events = match serde_json::from_slice::<GenericEvents>(body) {
        Ok(GenericEvents::One(event)) => vec![event],
        Ok(GenericEvents::Many(events)) => events,
        Err(_) => {
            return Err(malformed(
                "expected a JSON event {\"event\", \"message_id\", \"recipient\", \"reason\"?} \
                 or an array of them",
            ));
        }
    };
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(EventsRefusal::Malformed(format!(
            "a request carries 1 to {MAX_EVENTS} events"
        )));
    }
    events
        .into_iter()
        .map(|event| {
            let kind = match event.event.as_str() {
                "bounce" => EmailEventKind::Bounce,
                "complaint" => EmailEventKind::Complaint,
                other => {
                    return Err(EventsRefusal::Malformed(format!(
                        "unknown event {other:?} (bounce or complaint)"
                    )));
                }
            };
            if event.recipient.trim().is_empty() {
                return Err(malformed("an event has an empty recipient"));
            }
            Ok(EmailEvent {
                kind,
                message_id: message_id_from(&event.message_id),
                recipient: event.recipient.trim().to_lowercase(),
                reason: reason_of(event.reason),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct MailgunBody {
    signature: MailgunSignature,
    #[serde(rename = "event-data")]
    event_data: MailgunEventData,
}

#[derive(Deserialize)]
struct MailgunSignature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Deserialize)]
struct MailgunEventData {
    event: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    message: Option<MailgunMessage>,
    #[serde(default, rename = "delivery-status")]
    delivery_status: Option<MailgunDeliveryStatus>,
}

#[derive(Deserialize)]
struct MailgunMessage {
    #[serde(default)]
    headers: Option<MailgunHeaders>,
}

#[derive(Deserialize)]
struct MailgunHeaders {
    #[serde(default, rename = "message-id")]
    message_id: Option<String>,
}

#[derive(Deserialize)]
struct MailgunDeliveryStatus {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Mailgun's HMAC-SHA256 of `timestamp` followed by `token` under the webhook signing key, in
/// lower-case hex (what its `signature` field carries).
pub fn mailgun_signature(signing_key: &[u8], timestamp: &str, token: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, signing_key);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.as_bytes());
    context.update(token.as_bytes());
    context
        .sign()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Mailgun's form, checked against `signing_key`. The signature is checked before anything
/// else in the body is read. Returns no event for the events that are not bounces or
/// complaints.
pub fn parse_mailgun(body: &[u8], signing_key: &[u8]) -> Result<Vec<EmailEvent>, EventsRefusal> {
    let body: MailgunBody = serde_json::from_slice(body).map_err(|_| {
        EventsRefusal::Malformed(
            "expected Mailgun's webhook body {\"signature\": {…}, \"event-data\": {…}}".to_owned(),
        )
    })?;
    let signature = &body.signature;
    let expected = mailgun_signature(signing_key, &signature.timestamp, &signature.token);
    if !constant_time_eq(
        expected.as_bytes(),
        signature.signature.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(EventsRefusal::Signature(
            "The Mailgun signature does not match the webhook signing key.".to_owned(),
        ));
    }
    let data = body.event_data;
    let kind = match (data.event.as_str(), data.severity.as_deref()) {
        ("failed", Some("permanent")) => EmailEventKind::Bounce,
        ("complained", _) => EmailEventKind::Complaint,
        _ => return Ok(Vec::new()),
    };
    let Some(recipient) = data.recipient.filter(|r| !r.trim().is_empty()) else {
        return Err(EventsRefusal::Malformed(
            "a bounce or complaint without a recipient".to_owned(),
        ));
    };
    let message_id = data
        .message
        .and_then(|message| message.headers)
        .and_then(|headers| headers.message_id)
        .and_then(|id| message_id_from(&id));
    let reason = data.delivery_status.and_then(|status| {
        status
            .description
            .filter(|d| !d.is_empty())
            .or(status.message)
    });
    Ok(vec![EmailEvent {
        kind,
        message_id,
        recipient: recipient.trim().to_lowercase(),
        reason: reason_of(reason),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MSG: &str = "msg_01JD0000000000000000000000";

    fn mailgun(key: &[u8], event: serde_json::Value) -> Vec<u8> {
        let signature = mailgun_signature(key, "1770920772", "tok");
        json!({
            "signature": {"timestamp": "1770920772", "token": "tok", "signature": signature},
            "event-data": event,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn message_ids_are_read_from_our_id_or_our_message_id() {
        let id = MessageId::parse(MSG);
        assert!(id.is_some());
        assert_eq!(message_id_from(MSG), id);
        assert_eq!(message_id_from(&format!("<{MSG}@example.com>")), id);
        assert_eq!(message_id_from(&format!("{MSG}@example.com")), id);
        assert_eq!(message_id_from("20130503182626.18666@mailgun.org"), None);
        assert_eq!(message_id_from(""), None);
    }

    #[test]
    fn the_generic_form_takes_bounces_and_complaints_and_refuses_the_rest() {
        let events = parse_generic(
            json!([
                {"event": "bounce", "message_id": MSG, "recipient": " Ada@Example.org ",
                 "reason": "550 5.1.1 no such user"},
                {"event": "complaint", "message_id": "other", "recipient": "b@example.org"},
            ])
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, EmailEventKind::Bounce);
        assert_eq!(events[0].recipient, "ada@example.org");
        assert_eq!(events[0].message_id, MessageId::parse(MSG));
        assert_eq!(events[0].reason.as_deref(), Some("550 5.1.1 no such user"));
        assert_eq!(events[1].kind, EmailEventKind::Complaint);
        assert_eq!(events[1].message_id, None);
        for bad in [
            json!({"event": "delivered", "message_id": MSG, "recipient": "a@b.c"}),
            json!({"event": "bounce", "message_id": MSG, "recipient": " "}),
            json!({"event": "bounce", "message_id": MSG}),
            json!({"event": "bounce", "message_id": MSG, "recipient": "a@b.c", "x": 1}),
            json!([]),
            json!("bounce"),
        ] {
            assert!(
                matches!(
                    parse_generic(bad.to_string().as_bytes()),
                    Err(EventsRefusal::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn mailgun_events_are_taken_only_with_a_good_signature() {
        let key = b"key-0123456789";
        let bounce = json!({
            "event": "failed", "severity": "permanent", "recipient": "Ada@example.org",
            "message": {"headers": {"message-id": format!("{MSG}@example.org")}},
            "delivery-status": {"description": "", "message": "550 No such user"},
        });
        let events = parse_mailgun(&mailgun(key, bounce.clone()), key).unwrap();
        assert_eq!(
            events,
            vec![EmailEvent {
                kind: EmailEventKind::Bounce,
                message_id: MessageId::parse(MSG),
                recipient: "ada@example.org".to_owned(),
                reason: Some("550 No such user".to_owned()),
            }]
        );
        assert!(matches!(
            parse_mailgun(&mailgun(b"another key", bounce.clone()), key),
            Err(EventsRefusal::Signature(_))
        ));
        let complaint = json!({"event": "complained", "recipient": "ada@example.org"});
        let events = parse_mailgun(&mailgun(key, complaint), key).unwrap();
        assert_eq!(events[0].kind, EmailEventKind::Complaint);
        assert_eq!(events[0].message_id, None);
        for ignored in [
            json!({"event": "failed", "severity": "temporary", "recipient": "a@b.c"}),
            json!({"event": "delivered", "recipient": "a@b.c"}),
        ] {
            assert_eq!(parse_mailgun(&mailgun(key, ignored), key), Ok(Vec::new()));
        }
        assert!(matches!(
            parse_mailgun(b"{}", key),
            Err(EventsRefusal::Malformed(_))
        ));
    }
}
