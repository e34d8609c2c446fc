//! What every HTTP provider adapter shares on top of the outbound client (`crate::outbound`):
//! turning transport errors and refusals into a classified `Failure`, and the provider
//! error-code table.
//!
//! Adapters only build their request and read their provider's body shape; every decision about
//! whether a failure is worth another try lives here, so the providers cannot drift apart.
//!
//! Nothing here puts a URL, a header or a request body into a `Failure` message: URLs can carry
//! credentials (AvlyText's `api_key` query parameter), and bodies carry the message text.

use crate::delivery::{Disposition, Failure, Outgoing, SmsOut};
use crate::outbound::{TransportError, redact};

impl From<TransportError> for Failure {
    /// A transport failure is always worth another try: the provider was not heard.
    fn from(error: TransportError) -> Failure {
        Failure::retryable(error.code, error.message)
    }
}

/// The first of `fields` a JSON body has as non-empty text or a number (a provider's message id
/// under whichever name it uses).
pub fn first_text(json: Option<&serde_json::Value>, fields: &[&str]) -> Option<String> {
    let json = json?;
    fields
        .iter()
        .find_map(|field| crate::outbound::json_text(json, field))
}

/// The error code (`code` or `errorCode`) and explanation (`message` or `error`) of a JSON
/// refusal body, the shape the Cameroonian aggregators share; `refusal`'s `code` and `detail`.
pub fn error_fields(json: Option<&serde_json::Value>) -> (Option<String>, Option<String>) {
    let code = first_text(json, &["code", "errorCode"]);
    let detail = json.and_then(|json| {
        json.get("message")
            .or_else(|| json.get("error"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    });
    (code, detail)
}

/// Classifies a non-2xx answer (or a 2xx whose body says "refused"). `code` is the provider's
/// own error code when its body has one; `detail` its human explanation; `fallback_code` the
/// code to record when the provider gave none (`http_400`, `avlytext_http_400`, …).
///
/// In order:
/// - 429 → Retryable `rate_limited`; 5xx and 408 → Retryable: the provider is overloaded or
///   broken, whatever code it names.
/// - 401/403 → Retryable `unauthorized`, 402 → Retryable `payment_required`, 404 → Retryable:
///   rejected credentials, an empty account or a wrong URL are operator problems, not the
///   message's; another provider (or this one, once fixed) can still deliver it, so they must
///   not fail it for good.
/// - Any other status with a provider code: `classify_code` decides.
/// - Any other 4xx without a code: Final; the provider understood the request and refused it.
/// - Other statuses (1xx/3xx: a proxy or redirect where an API should be): Retryable.
pub fn refusal(
    status: u16,
    code: Option<&str>,
    detail: Option<&str>,
    fallback_code: &str,
    sensitive: &[&str],
) -> Failure {
    let code = code.map(str::trim).filter(|code| !code.is_empty());
    let message = refusal_message(status, code, detail, sensitive);
    let (disposition, recorded) = match status {
        429 => (Disposition::Retryable, "rate_limited"),
        401 | 403 => (Disposition::Retryable, "unauthorized"),
        402 => (Disposition::Retryable, "payment_required"),
        404 | 408 | 500..=599 => (Disposition::Retryable, code.unwrap_or(fallback_code)),
        _ => match code {
            Some(code) => (classify_code(code), code),
            None if (400..500).contains(&status) => (Disposition::Final, fallback_code),
            None => (Disposition::Retryable, fallback_code),
        },
    };
    Failure::new(disposition, recorded, message)
}

fn refusal_message(
    status: u16,
    code: Option<&str>,
    detail: Option<&str>,
    sensitive: &[&str],
) -> String {
    let mut message = format!("the provider refused the message (HTTP {status}");
    if let Some(code) = code {
        message.push_str(&format!(", code {code}"));
    }
    message.push(')');
    if let Some(detail) = detail.map(str::trim).filter(|detail| !detail.is_empty()) {
        message.push_str(": ");
        message.push_str(&redact(detail, sensitive));
    }
    message
}

/// Provider error codes that mean the message itself can never be delivered, whichever provider
/// tries (compared case-insensitively).
const FINAL_CODES: &[&str] = &[
    "invalid_number",
    "number_blacklisted",
    "opt_out",
    "unsubscribed",
    "do_not_contact",
    // Twilio: invalid To number; To is not a mobile number; To has opted out (STOP);
    // invalid and unreachable To number; message from an unregistered (A2P 10DLC) number.
    "21211",
    "21614",
    "21610",
    "21217",
    "30034",
    // Infobip error codes for a bad destination.
    "ec_0002",
    "ec_0004",
    // Infobip REJECTED statuses about the destination itself. The other REJECTED_* statuses
    // (REJECTED_NOT_ENOUGH_CREDITS, REJECTED_SENDER, REJECTED_NETWORK, REJECTED_ROUTE_NOT_AVAILABLE,
    // …) are account or routing problems another provider may not have: they stay retryable.
    "rejected_destination",
    "rejected_invalid_destination",
    "rejected_prefix_missing",
    "rejected_destination_not_registered",
    "rejected_dnd",
    "missing_to",
];

/// Whether a provider error code is worth another try. Only codes known to condemn the message
/// are Final; everything else, unknown codes included, is Retryable, because failing a message
/// for good on a code we do not understand loses it, while a retry costs at most a few attempts.
pub fn classify_code(code: &str) -> Disposition {
    let code = code.trim().to_ascii_lowercase();
    // LMT's insufficient balance, and our transport codes: said explicitly so a future entry
    // in FINAL_CODES cannot swallow them.
    if code == "bal01"
        || code.starts_with("rate")
        || code.starts_with("timeout")
        || code.starts_with("network")
    {
        return Disposition::Retryable;
    }
    if FINAL_CODES.contains(&code.as_str()) {
        Disposition::Final
    } else {
        Disposition::Retryable
    }
}

/// The SMS inside `message`. SMS adapters are only ever given SMS; an email here is a wiring
/// mistake that no retry fixes.
pub fn sms<'m, 'a>(message: &'m Outgoing<'a>) -> Result<&'m SmsOut<'a>, Failure> {
    match message {
        Outgoing::Sms(sms) => Ok(sms),
        Outgoing::Email(_) => Err(Failure::final_(
            "unsupported_channel",
            "this provider sends SMS only",
        )),
    }
}

/// The number without its leading `+`, for providers that want bare digits.
pub fn digits_only(e164: &str) -> &str {
    e164.strip_prefix('+').unwrap_or(e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table: &[(&str, Disposition)] = &[
            ("invalid_number", Disposition::Final),
            ("INVALID_NUMBER", Disposition::Final),
            ("number_blacklisted", Disposition::Final),
            ("opt_out", Disposition::Final),
            ("unsubscribed", Disposition::Final),
            ("do_not_contact", Disposition::Final),
            ("21211", Disposition::Final),
            ("21614", Disposition::Final),
            ("21610", Disposition::Final),
            ("21217", Disposition::Final),
            ("30034", Disposition::Final),
            ("EC_0002", Disposition::Final),
            ("EC_0004", Disposition::Final),
            ("REJECTED_DESTINATION", Disposition::Final),
            ("REJECTED_PREFIX_MISSING", Disposition::Final),
            ("REJECTED_DND", Disposition::Final),
            ("REJECTED_NOT_ENOUGH_CREDITS", Disposition::Retryable),
            ("REJECTED_SENDER", Disposition::Retryable),
            ("BAL01", Disposition::Retryable),
            ("rate_limited", Disposition::Retryable),
            ("rate", Disposition::Retryable),
            ("timeout", Disposition::Retryable),
            ("timeout_upstream", Disposition::Retryable),
            ("network", Disposition::Retryable),
            ("network_error", Disposition::Retryable),
            ("21408", Disposition::Retryable),
            ("something_new", Disposition::Retryable),
            ("", Disposition::Retryable),
        ];
        for (code, expected) in table {
            assert_eq!(classify_code(code), *expected, "code {code:?}");
        }
    }

    #[test]
    fn refusal_table() {
        let table: &[(u16, Option<&str>, Disposition, &str)] = &[
            (400, Some("21211"), Disposition::Final, "21211"),
            (
                400,
                Some("something_new"),
                Disposition::Retryable,
                "something_new",
            ),
            (400, None, Disposition::Final, "http_400"),
            (422, None, Disposition::Final, "http_422"),
            (400, Some("  "), Disposition::Final, "http_400"),
            (401, None, Disposition::Retryable, "unauthorized"),
            (
                403,
                Some("invalid_number"),
                Disposition::Retryable,
                "unauthorized",
            ),
            (402, None, Disposition::Retryable, "payment_required"),
            (404, None, Disposition::Retryable, "http_404"),
            (408, None, Disposition::Retryable, "http_408"),
            (
                429,
                Some("invalid_number"),
                Disposition::Retryable,
                "rate_limited",
            ),
            (429, None, Disposition::Retryable, "rate_limited"),
            (500, None, Disposition::Retryable, "http_500"),
            (
                503,
                Some("invalid_number"),
                Disposition::Retryable,
                "invalid_number",
            ),
            (302, None, Disposition::Retryable, "http_302"),
            (
                200,
                Some("REJECTED_DESTINATION"),
                Disposition::Final,
                "REJECTED_DESTINATION",
            ),
        ];
        for (status, code, disposition, recorded) in table {
            let failure = refusal(*status, *code, None, &format!("http_{status}"), &[]);
            assert_eq!(failure.disposition, *disposition, "{status} {code:?}");
            assert_eq!(failure.code, *recorded, "{status} {code:?}");
        }
    }

    #[test]
    fn refusal_messages_name_the_status_and_code_and_hide_secrets() {
        let failure = refusal(
            400,
            Some("21211"),
            Some("bad To; key s3cr3t-key; text Hello there"),
            "http_400",
            &["s3cr3t-key", "Hello there", "ab"],
        );
        assert_eq!(
            failure.message,
            "the provider refused the message (HTTP 400, code 21211): bad To; key ***; text ***"
        );
        let long = refusal(400, None, Some(&"x".repeat(1000)), "http_400", &[]);
        assert!(long.message.chars().count() < 400);
    }

    #[test]
    fn numbers() {
        assert_eq!(digits_only("+237650000000"), "237650000000");
    }
}
