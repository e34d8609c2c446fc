//! A send request as the API receives it, validated into what would go out: channel, normalised
//! recipient, sender, content, category, schedule, and the units it costs. Shared by the estimate
//! and (next) the send endpoint, so both refuse exactly the same things. Pure: no I/O.

use serde::Deserialize;

use crate::billing::Channel;
use crate::clock::{Timestamp, parse_timestamp};
use crate::error::{AppError, FieldErrors};
use crate::messages::segments::{MAX_SEGMENTS, Segmentation, segment};
use crate::recipients::{normalize_email, normalize_phone};

/// A message as its sender describes it, before validation: what `compose` turns into a
/// `Composition`. The send and estimate endpoints read their JSON body straight into it (field
/// names are the API's; unknown fields are refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub channel: String,
    pub to: String,
    pub text: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    /// SMS only: must equal the workspace's effective sender if given.
    pub from: Option<String>,
    pub category: Option<String>,
    pub scheduled_at: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

crate::text_enum! {
    /// Transactional (the default) or marketing: stored and shown; crier keeps no opt-outs yet.
    pub enum Category {
        Transactional = "transactional",
        Marketing = "marketing",
    }
}

/// A validated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composition {
    pub channel: Channel,
    /// E.164 for SMS, a lower-cased address for email.
    pub to: String,
    /// SMS: the sender it goes out from.
    pub sender: Option<String>,
    pub text: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub category: Category,
    pub scheduled_at: Option<Timestamp>,
    pub metadata: serde_json::Value,
    /// SMS only.
    pub segmentation: Option<Segmentation>,
    /// Billable units: SMS segments, or 1 per email.
    pub units: u64,
    /// SMS: the route its number takes (`+23767=avlytext,mboasms`), stored on the message.
    /// `compose` leaves it `None`; the caller sets it from the delivery settings
    /// (`DeliverySettings::route_to_store`), which this domain cannot see.
    pub route: Option<String>,
}

/// Limits on what a message may carry.
const MAX_SUBJECT_CHARS: usize = 998;
const MAX_EMAIL_PART_BYTES: usize = 512 * 1024;
const MAX_METADATA_BYTES: usize = 4 * 1024;
const MAX_SCHEDULE_DAYS: i64 = 365;

/// Validates `body` for a workspace whose numbers default to `default_country`. Every problem is
/// reported at once (422 `validation_failed`).
///
/// The SMS sender is the workspace's, settled in the send's transaction (`settle_sender`), so
/// composing needs no database. Only an SMS that names a `from` needs the sender now, to report a
/// wrong one with the other problems: `effective_sender` is called then, and only then.
pub fn compose(
    body: Draft,
    default_country: &str,
    now: Timestamp,
    effective_sender: impl FnOnce() -> Result<String, AppError>,
) -> Result<Composition, AppError> {
    let mut fields = FieldErrors::new();
    let channel = Channel::parse(&body.channel);
    if channel.is_none() {
        fields.add("channel", "must be sms or email");
    }
    let category = match body.category.as_deref() {
        None => Category::Transactional,
        Some(text) => Category::parse(text).unwrap_or_else(|| {
            fields.add("category", "must be transactional or marketing");
            Category::Transactional
        }),
    };
    let scheduled_at = body
        .scheduled_at
        .as_deref()
        .and_then(|text| match parse_timestamp(text) {
            Some(at) if at > now && at <= now + chrono::Duration::days(MAX_SCHEDULE_DAYS) => {
                Some(at)
            }
            Some(_) => {
                fields.add(
                    "scheduled_at",
                    "must be in the future, at most a year ahead",
                );
                None
            }
            None => {
                fields.add("scheduled_at", "must be an RFC 3339 timestamp");
                None
            }
        });
    let metadata = body.metadata.unwrap_or_else(|| serde_json::json!({}));
    if !metadata.is_object() || metadata.to_string().len() > MAX_METADATA_BYTES {
        fields.add("metadata", "must be a JSON object of at most 4 KiB");
    }

    let mut composition = None;
    match channel {
        Some(Channel::Sms) => {
            let to = normalize_phone(&body.to, default_country)
                .map_err(|why| fields.add("to", why))
                .ok();
            for (field, sent) in [("subject", &body.subject), ("html", &body.html)] {
                if sent.is_some() {
                    fields.add(field, "SMS take only text; subject and html are for email");
                }
            }
            let sender = match body.from.as_deref().map(str::trim) {
                Some(from) => {
                    let effective_sender = effective_sender()?;
                    if from.eq_ignore_ascii_case(&effective_sender) {
                        Some(Some(effective_sender))
                    } else {
                        fields.add("from", wrong_sender(&effective_sender));
                        None
                    }
                }
                None => Some(None),
            };
            let segmentation = match body.text.as_deref() {
                Some(text) if !text.trim().is_empty() => {
                    let segmentation = segment(text);
                    if segmentation.segments > MAX_SEGMENTS {
                        fields.add(
                            "text",
                            format!(
                                "is {} segments long; an SMS may have at most {MAX_SEGMENTS}",
                                segmentation.segments
                            ),
                        );
                    }
                    Some(segmentation)
                }
                _ => {
                    fields.add("text", "is required and must not be blank");
                    None
                }
            };
            if let (Some(to), Some(sender), Some(segmentation)) = (to, sender, segmentation) {
                composition = Some(Composition {
                    channel: Channel::Sms,
                    to,
                    sender,
                    text: body.text.clone(),
                    subject: None,
                    html: None,
                    category,
                    scheduled_at,
                    metadata: metadata.clone(),
                    units: u64::from(segmentation.segments),
                    segmentation: Some(segmentation),
                    route: None,
                });
            }
        }
        Some(Channel::Email) => {
            let to = normalize_email(&body.to)
                .map_err(|why| fields.add("to", why))
                .ok();
            if body.from.is_some() {
                fields.add(
                    "from",
                    "the email From is the workspace's, set on its sending domain (PUT /v1/sending-domains/{id}), or the instance's",
                );
            }
            let subject = body.subject.as_deref().map(str::trim).unwrap_or("");
            if subject.is_empty()
                || subject.chars().count() > MAX_SUBJECT_CHARS
                || subject.contains(['\r', '\n'])
            {
                fields.add("subject", "is required: one line of at most 998 characters");
            }
            let blank = |part: &Option<String>| part.as_deref().is_none_or(|p| p.trim().is_empty());
            if blank(&body.text) && blank(&body.html) {
                fields.add("text", "an email needs text, html or both");
            }
            for (name, part) in [("text", &body.text), ("html", &body.html)] {
                if part
                    .as_ref()
                    .is_some_and(|p| p.len() > MAX_EMAIL_PART_BYTES)
                {
                    fields.add(name, "must be at most 512 KiB");
                }
            }
            if let Some(to) = to {
                composition = Some(Composition {
                    channel: Channel::Email,
                    to,
                    sender: None,
                    text: body.text.clone().filter(|t| !t.trim().is_empty()),
                    subject: Some(subject.to_owned()),
                    html: body.html.clone().filter(|h| !h.trim().is_empty()),
                    category,
                    scheduled_at,
                    metadata: metadata.clone(),
                    segmentation: None,
                    units: 1,
                    route: None,
                });
            }
        }
        None => {}
    }
    fields.into_result()?;
    composition.ok_or_else(|| AppError::internal("validated composition missing"))
}

impl Composition {
    /// Gives an SMS the sender it goes out with: the workspace's effective sender, read in the
    /// send's transaction. An SMS composed with a `from` keeps it only if it is still the
    /// workspace's sender (an approval can land in between): otherwise 422 on `from`. Email has
    /// no sender here.
    pub fn settle_sender(&mut self, effective_sender: &str) -> Result<(), AppError> {
        if self.channel != Channel::Sms {
            return Ok(());
        }
        if let Some(chosen) = &self.sender
            && !chosen.eq_ignore_ascii_case(effective_sender)
        {
            let mut fields = FieldErrors::new();
            fields.add("from", wrong_sender(effective_sender));
            return fields.into_result();
        }
        self.sender = Some(effective_sender.to_owned());
        Ok(())
    }
}

fn wrong_sender(effective_sender: &str) -> String {
    format!("must be the workspace's sender, {effective_sender}, or be left out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
    }

    fn body(json: serde_json::Value) -> Draft {
        serde_json::from_value(json).unwrap()
    }

    fn fields(json: serde_json::Value) -> Vec<String> {
        match compose(body(json), "CM", now(), || Ok("CRIER".to_owned())) {
            Err(AppError::Validation(fields)) => fields.iter().map(|(k, _)| k.clone()).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn an_sms_is_normalised_segmented_and_sent_from_the_effective_sender() {
        let mut sms = compose(
            body(serde_json::json!({"channel": "sms", "to": "677 12 34 56", "text": "Bonjour ! Votre code : 1234"})),
            "CM",
            now(),
            || panic!("no `from`: the sender is not needed to compose"),
        )
        .unwrap();
        assert_eq!(sms.to, "+237677123456");
        assert_eq!(sms.sender, None);
        sms.settle_sender("ACME").unwrap();
        assert_eq!(sms.sender.as_deref(), Some("ACME"));
        assert_eq!(sms.units, 1);
        assert_eq!(sms.category, Category::Transactional);
        let long = "é".repeat(200) + "€";
        let mut sms = compose(body(serde_json::json!({"channel": "sms", "to": "+237677123456", "text": long, "from": "acme"})), "CM", now(), || Ok("ACME".to_owned())).unwrap();
        assert_eq!(sms.units, 2);
        assert_eq!(sms.sender.as_deref(), Some("ACME"));
        // The workspace's sender changed between composing and sending: the named one is refused.
        match sms.settle_sender("NEWCO") {
            Err(AppError::Validation(fields)) => {
                assert_eq!(
                    fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                    ["from"]
                );
            }
            other => panic!("expected 422 on from, got {other:?}"),
        }
        sms.settle_sender("acme").unwrap();
    }

    #[test]
    fn an_email_needs_a_subject_and_a_body() {
        let email = compose(
            body(serde_json::json!({"channel": "email", "to": " Ada@Example.com ", "subject": "Hi", "html": "<p>Hi</p>", "category": "marketing"})),
            "CM",
            now(),
            || panic!("email has no sender to check"),
        )
        .unwrap();
        assert_eq!(
            (email.to.as_str(), email.units, email.category),
            ("ada@example.com", 1, Category::Marketing)
        );
        assert_eq!(
            fields(serde_json::json!({"channel": "email", "to": "a@b.io"})),
            vec!["subject", "text"]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        assert_eq!(
            fields(serde_json::json!({
                "channel": "sms", "to": "12", "text": " ", "from": "OTHER", "category": "spam",
                "scheduled_at": "2020-01-01T00:00:00Z", "metadata": [1]
            })),
            vec!["category", "from", "metadata", "scheduled_at", "text", "to"]
        );
        assert_eq!(
            fields(serde_json::json!({"channel": "fax", "to": "x"})),
            vec!["channel"]
        );
        // Each email-only field is named as itself.
        assert_eq!(
            fields(
                serde_json::json!({"channel": "sms", "to": "+237677123456", "text": "x", "html": "<p>x</p>"})
            ),
            vec!["html"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"channel": "sms", "to": "+237677123456", "text": "x", "subject": "s", "html": "<p>x</p>"})
            ),
            vec!["html", "subject"]
        );
        let too_long = "a".repeat(1531);
        assert_eq!(
            fields(serde_json::json!({"channel": "sms", "to": "+237677123456", "text": too_long})),
            vec!["text"]
        );
    }
}
