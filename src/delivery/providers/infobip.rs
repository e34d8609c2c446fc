//! Infobip's SMS API (`/sms/2/text/advanced`).
//!
//! Sending: `POST {base_url}/sms/2/text/advanced` with `Authorization: App {api_key}` and
//!
//! ```json
//! {"messages": [{"destinations": [{"to": "237650000000", "messageId": "msg_…"}],
//!   "from": "ACME", "text": "…", "notifyUrl": "https://…", "notifyContentType": "application/json"}]}
//! ```
//!
//! (`to` without the `+`; `notifyUrl`/`notifyContentType` only when receipts are configured).
//! Passing our id as `messageId` makes Infobip use it as its own, so receipts name our message.
//! A 2xx answers per message with `messages[0].status.groupName`: `PENDING` or `ACCEPTED` is
//! success (provider id `messages[0].messageId`); `REJECTED` is a refusal whose code is
//! `status.name` (`REJECTED_DESTINATION`, …), classified by `http::classify_code`. A non-2xx
//! carries `{"requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "…"}}}`.
//! Rejected credentials (401/403) are Retryable `unauthorized`: the message is fine, an operator
//! fix or the next provider in the chain can still deliver it.
//!
//! Receipts (`notifyUrl`): `{"results": [{"messageId", "to", "status": {"groupName", "name",
//! "description"}, "error": {"name", "groupName", "description"}}]}`. Groups: `DELIVERED` →
//! delivered; `PENDING`/`ACCEPTED` → pending; `UNDELIVERABLE`, `REJECTED`, `EXPIRED` → failed.
//! A failure counts as "the number is bad" (`unreachable`) when its status is one of the
//! destination rejections (`REJECTED_DESTINATION`, `REJECTED_INVALID_DESTINATION`,
//! `REJECTED_PREFIX_MISSING`, `REJECTED_DESTINATION_NOT_REGISTERED`, `MISSING_TO`) or its error is
//! `EC_UNKNOWN_SUBSCRIBER` / `EC_ILLEGAL_SUBSCRIBER`; everything else (an absent handset, an
//! operator failure, expiry) may work another time.

use serde::Deserialize;

use crate::delivery::providers::http;
use crate::delivery::settings::InfobipSettings;
use crate::delivery::{
    Accepted, Disposition, Failure, Outgoing, Provider, Receipt, ReceiptRequest, ReceiptStatus,
    SmsOut,
};
use crate::outbound::{self, HttpClient, Payload};

/// Status names that say the destination number itself is bad.
const UNREACHABLE_STATUSES: &[&str] = &[
    "REJECTED_DESTINATION",
    "REJECTED_INVALID_DESTINATION",
    "REJECTED_PREFIX_MISSING",
    "REJECTED_DESTINATION_NOT_REGISTERED",
    "MISSING_TO",
];

/// Error names that say the subscriber does not exist or is barred.
const UNREACHABLE_ERRORS: &[&str] = &["EC_UNKNOWN_SUBSCRIBER", "EC_ILLEGAL_SUBSCRIBER"];

/// Sends SMS through Infobip.
pub struct InfobipProvider {
    settings: InfobipSettings,
    http: HttpClient,
}

impl InfobipProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &InfobipSettings, http: HttpClient) -> InfobipProvider {
        InfobipProvider {
            settings: settings.clone(),
            http,
        }
    }
}

/// The JSON body of one send.
fn request_body(sms: &SmsOut<'_>) -> serde_json::Value {
    let mut message = serde_json::json!({
        "destinations": [{"to": http::digits_only(sms.to), "messageId": sms.message_id}],
        "from": sms.sender,
        "text": sms.text,
    });
    if let (Some(receipt_url), Some(object)) = (sms.receipt_url, message.as_object_mut()) {
        object.insert("notifyUrl".to_owned(), receipt_url.into());
        object.insert("notifyContentType".to_owned(), "application/json".into());
    }
    serde_json::json!({ "messages": [message] })
}

/// What a 2xx says about the one message sent.
fn accepted(body: Option<&serde_json::Value>, sensitive: &[&str]) -> Result<Accepted, Failure> {
    let message = body
        .and_then(|body| body.pointer("/messages/0"))
        .ok_or_else(|| {
            Failure::retryable(
                "bad_response",
                "Infobip answered 2xx without a per-message status",
            )
        })?;
    let status = message.get("status");
    let text = |field: &str| {
        status
            .and_then(|status| status.get(field))
            .and_then(serde_json::Value::as_str)
    };
    match text("groupName") {
        Some("PENDING" | "ACCEPTED") => Ok(Accepted {
            provider_message_id: outbound::json_text(message, "messageId"),
        }),
        group => {
            let code = text("name").unwrap_or("infobip_rejected");
            let failure = http::refusal(200, Some(code), text("description"), code, sensitive);
            // A group other than REJECTED (or none) at send time is not a refusal of the
            // message; only REJECTED lets the code condemn it.
            if group == Some("REJECTED") {
                Err(failure)
            } else {
                Err(Failure::new(
                    Disposition::Retryable,
                    failure.code,
                    failure.message,
                ))
            }
        }
    }
}

impl Provider for InfobipProvider {
    fn name(&self) -> &'static str {
        "infobip"
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let sms = http::sms(message)?;
        let url = outbound::join_url(&self.settings.base_url, "sms/2/text/advanced");
        let authorization = format!("App {}", self.settings.api_key.expose());
        let reply = self.http.post(
            &url,
            &[],
            &[
                ("Authorization", &authorization),
                ("Accept", "application/json"),
            ],
            Payload::Json(request_body(sms).to_string().into_bytes()),
        )?;
        let json = reply.json();
        let sensitive = [sms.text, self.settings.api_key.expose()];
        if reply.is_success() {
            return accepted(json.as_ref(), &sensitive);
        }
        let exception = json.as_ref().and_then(|json| {
            json.pointer("/requestError/serviceException")
                .or_else(|| json.pointer("/requestError/policyException"))
        });
        let code = exception.and_then(|exception| outbound::json_text(exception, "messageId"));
        let detail = exception.and_then(|exception| outbound::json_text(exception, "text"));
        Err(http::refusal(
            reply.status,
            code.as_deref(),
            detail.as_deref(),
            &format!("http_{}", reply.status),
            &sensitive,
        ))
    }

    fn parse_receipts(&self, request: &ReceiptRequest<'_>) -> Option<Result<Vec<Receipt>, String>> {
        Some(parse_receipts(request.body))
    }
}

#[derive(Deserialize)]
struct WireReceipts {
    results: Vec<WireResult>,
}

#[derive(Deserialize)]
struct WireResult {
    #[serde(rename = "messageId")]
    message_id: String,
    status: WireStatus,
    #[serde(default)]
    error: Option<WireStatus>,
}

#[derive(Deserialize)]
struct WireStatus {
    #[serde(rename = "groupName", default)]
    group_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn parse_receipts(body: &[u8]) -> Result<Vec<Receipt>, String> {
    let receipts: WireReceipts = serde_json::from_slice(body)
        .map_err(|_| "expected Infobip's {\"results\": [{\"messageId\", \"status\", …}]}")?;
    receipts
        .results
        .into_iter()
        .map(|result| {
            if result.message_id.is_empty() {
                return Err("a result has an empty messageId".to_owned());
            }
            // Infobip reports "no error" as an error object named NO_ERROR in group OK.
            let error = result
                .error
                .filter(|error| error.name.as_deref().is_some_and(|name| name != "NO_ERROR"));
            let status_name = result.status.name.as_deref();
            let error_name = error.as_ref().and_then(|error| error.name.as_deref());
            let unreachable = status_name.is_some_and(|name| UNREACHABLE_STATUSES.contains(&name))
                || error_name.is_some_and(|name| UNREACHABLE_ERRORS.contains(&name));
            let status = match result.status.group_name.as_deref() {
                Some("DELIVERED") => ReceiptStatus::Delivered,
                Some("PENDING" | "ACCEPTED") => ReceiptStatus::Pending,
                Some("UNDELIVERABLE" | "REJECTED") => ReceiptStatus::Failed { unreachable },
                Some("EXPIRED") => ReceiptStatus::Failed { unreachable: false },
                other => return Err(format!("unknown status group {other:?}")),
            };
            let (error_code, error_message) = match (&status, error) {
                (ReceiptStatus::Failed { .. }, Some(error)) => (error.name, error.description),
                (ReceiptStatus::Failed { .. }, None) => {
                    (result.status.name, result.status.description)
                }
                _ => (None, None),
            };
            Ok(Receipt {
                provider_message_id: result.message_id,
                status,
                error_code,
                error_message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(receipt_url: Option<&str>) -> SmsOut<'_> {
        SmsOut {
            message_id: "msg_1",
            to: "+237650000000",
            sender: "ACME",
            text: "Hello",
            receipt_url,
        }
    }

    #[test]
    fn body_uses_bare_digits_and_our_id() {
        assert_eq!(
            request_body(&sms(None)),
            serde_json::json!({"messages": [{
                "destinations": [{"to": "237650000000", "messageId": "msg_1"}],
                "from": "ACME", "text": "Hello"}]})
        );
        let with = request_body(&sms(Some("https://crier.example/r")));
        assert_eq!(with["messages"][0]["notifyUrl"], "https://crier.example/r");
        assert_eq!(with["messages"][0]["notifyContentType"], "application/json");
    }

    #[test]
    fn two_xx_answers() {
        let pending = serde_json::json!({"messages": [{"messageId": "msg_1",
            "status": {"groupName": "PENDING", "name": "PENDING_ACCEPTED"}}]});
        assert_eq!(
            accepted(Some(&pending), &[]),
            Ok(Accepted {
                provider_message_id: Some("msg_1".to_owned())
            })
        );
        let rejected = serde_json::json!({"messages": [{"messageId": "msg_1",
            "status": {"groupName": "REJECTED", "name": "REJECTED_DESTINATION",
                       "description": "Invalid destination"}}]});
        let failure = accepted(Some(&rejected), &[]).unwrap_err();
        assert_eq!(
            (failure.disposition, failure.code.as_str()),
            (Disposition::Final, "REJECTED_DESTINATION")
        );
        let credits = serde_json::json!({"messages": [{"messageId": "msg_1",
            "status": {"groupName": "REJECTED", "name": "REJECTED_NOT_ENOUGH_CREDITS"}}]});
        let failure = accepted(Some(&credits), &[]).unwrap_err();
        assert_eq!(
            (failure.disposition, failure.code.as_str()),
            (Disposition::Retryable, "REJECTED_NOT_ENOUGH_CREDITS")
        );
        let odd = serde_json::json!({"messages": [{"status": {"groupName": "UNDELIVERABLE",
            "name": "REJECTED_DESTINATION"}}]});
        assert_eq!(
            accepted(Some(&odd), &[]).unwrap_err().disposition,
            Disposition::Retryable
        );
        let empty = serde_json::json!({"messages": []});
        assert_eq!(
            accepted(Some(&empty), &[]).unwrap_err().code,
            "bad_response"
        );
        assert_eq!(accepted(None, &[]).unwrap_err().code, "bad_response");
    }

    #[test]
    fn receipts_parse() {
        let body = br#"{"results": [
            {"messageId": "m1", "to": "237650000000",
             "status": {"groupName": "DELIVERED", "name": "DELIVERED_TO_HANDSET"},
             "error": {"groupName": "OK", "name": "NO_ERROR"}},
            {"messageId": "m2", "status": {"groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_NOT_DELIVERED"},
             "error": {"groupName": "HANDSET_ERRORS", "name": "EC_UNKNOWN_SUBSCRIBER", "description": "Unknown subscriber"}},
            {"messageId": "m3", "status": {"groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_NOT_DELIVERED"},
             "error": {"groupName": "HANDSET_ERRORS", "name": "EC_ABSENT_SUBSCRIBER"}},
            {"messageId": "m4", "status": {"groupName": "REJECTED", "name": "REJECTED_DESTINATION",
             "description": "Invalid destination"}},
            {"messageId": "m5", "status": {"groupName": "EXPIRED", "name": "EXPIRED_EXPIRED"}},
            {"messageId": "m6", "status": {"groupName": "PENDING", "name": "PENDING_ENROUTE"}}
        ]}"#;
        let receipts = parse_receipts(body).unwrap();
        let summary: Vec<_> = receipts
            .iter()
            .map(|r| {
                (
                    r.provider_message_id.as_str(),
                    r.status,
                    r.error_code.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("m1", ReceiptStatus::Delivered, None),
                (
                    "m2",
                    ReceiptStatus::Failed { unreachable: true },
                    Some("EC_UNKNOWN_SUBSCRIBER")
                ),
                (
                    "m3",
                    ReceiptStatus::Failed { unreachable: false },
                    Some("EC_ABSENT_SUBSCRIBER")
                ),
                (
                    "m4",
                    ReceiptStatus::Failed { unreachable: true },
                    Some("REJECTED_DESTINATION")
                ),
                (
                    "m5",
                    ReceiptStatus::Failed { unreachable: false },
                    Some("EXPIRED_EXPIRED")
                ),
                ("m6", ReceiptStatus::Pending, None),
            ]
        );
        assert_eq!(
            receipts[1].error_message.as_deref(),
            Some("Unknown subscriber")
        );
    }

    #[test]
    fn malformed_receipts_are_errors() {
        for body in [
            &b"not json"[..],
            br#"{"results": {}}"#,
            br#"[{"messageId": "m1"}]"#,
            br#"{"results": [{"messageId": "m1"}]}"#,
            br#"{"results": [{"messageId": "m1", "status": {"groupName": "LOST"}}]}"#,
            br#"{"results": [{"messageId": "", "status": {"groupName": "DELIVERED"}}]}"#,
        ] {
            assert!(
                parse_receipts(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
