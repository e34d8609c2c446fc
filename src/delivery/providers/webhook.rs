//! The generic JSON webhook: crier hands each SMS to an HTTP endpoint of the operator's choosing
//! (their own gateway, a modem bridge, a test sink). This is our own format, documented here.
//!
//! **Sending.** `POST {url}` with `Content-Type: application/json` and the body
//!
//! ```json
//! {"id": "msg_…", "to": "+237650000000", "from": "ACME", "text": "…", "receipt_url": "https://…" | null}
//! ```
//!
//! When a secret is configured, the header `X-Crier-Signature: sha256=<hex>` carries the
//! HMAC-SHA256 of the exact body bytes keyed with the secret; the receiver recomputes it over the
//! raw body before parsing.
//!
//! **Answers.** Any 2xx accepts the message; when its body is a JSON object with a string `id`,
//! that is the provider's id for it (receipts refer to it), else there is none. A refusal may
//! carry `{"error": {"code": "…", "message": "…"}}` or `{"code": "…", "message": "…"}`:
//! - codes that condemn the message (`invalid_number`, `number_blacklisted`, `opt_out`,
//!   `unsubscribed`, `do_not_contact`, …) fail it for good; other codes are retried;
//! - a 4xx without a code fails it for good (`http_4xx`), except 401/402/403/404/408/429;
//! - 5xx, timeouts and connection failures are retried.
//!
//! **Receipts.** `POST {receipt_url}` with a JSON object, or an array of them:
//!
//! ```json
//! {"id": "<the id from the send answer>", "status": "delivered" | "failed" | "undeliverable" | "pending",
//!  "error_code": "…", "error_message": "…"}
//! ```
//!
//! `undeliverable` means the number itself is bad (it does not exist, it is barred); `failed`
//! is any other definitive failure; `pending` changes nothing.

use serde::Deserialize;

use crate::delivery::providers::http;
use crate::delivery::settings::WebhookSettings;
use crate::delivery::{
    Accepted, Failure, Inbound, InboundRefusal, InboundRequest, Outgoing, Provider, Receipt,
    ReceiptRequest, ReceiptStatus, SmsOut,
};
use crate::outbound::{self, HttpClient, Payload};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Crier-Signature";

/// Sends SMS to the operator's webhook.
pub struct WebhookProvider {
    settings: WebhookSettings,
    http: HttpClient,
}

impl WebhookProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &WebhookSettings, http: HttpClient) -> WebhookProvider {
        WebhookProvider {
            settings: settings.clone(),
            http,
        }
    }
}

/// The JSON body of one send.
fn request_body(sms: &SmsOut<'_>) -> serde_json::Value {
    serde_json::json!({
        "id": sms.message_id,
        "to": sms.to,
        "from": sms.sender,
        "text": sms.text,
        "receipt_url": sms.receipt_url,
    })
}

/// The `X-Crier-Signature` value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        outbound::hmac_sha256_hex(secret.as_bytes(), body)
    )
}

/// The error code and message of a refusal body, in either accepted shape.
fn error_of(body: &serde_json::Value) -> (Option<String>, Option<String>) {
    let source = match body.get("error") {
        Some(error) if error.is_object() => error,
        _ => body,
    };
    let message = source
        .get("message")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            body.get("error")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        });
    (outbound::json_text(source, "code"), message)
}

impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let sms = http::sms(message)?;
        let body = request_body(sms).to_string().into_bytes();
        let signature = self
            .settings
            .secret
            .as_ref()
            .map(|secret| signature(secret.expose(), &body));
        let mut headers = Vec::new();
        if let Some(signature) = &signature {
            headers.push((SIGNATURE_HEADER, signature.as_str()));
        }
        let reply = self
            .http
            .post(&self.settings.url, &[], &headers, Payload::Json(body))?;
        let json = reply.json();
        if reply.is_success() {
            let provider_message_id = json.as_ref().and_then(|json| {
                json.get("id")
                    .and_then(serde_json::Value::as_str)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
            });
            return Ok(Accepted {
                provider_message_id,
            });
        }
        let (code, detail) = json.as_ref().map(error_of).unwrap_or_default();
        let mut sensitive = vec![sms.text];
        if let Some(secret) = &self.settings.secret {
            sensitive.push(secret.expose());
        }
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

    fn parse_inbound(
        &self,
        request: &InboundRequest<'_>,
    ) -> Option<Result<Vec<Inbound>, InboundRefusal>> {
        Some(parse_inbound(request.body))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Receipts {
    One(WireReceipt),
    Many(Vec<WireReceipt>),
}

#[derive(Deserialize)]
struct WireReceipt {
    id: String,
    status: String,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// An inbound SMS as the generic webhook provider forwards it.
#[derive(Deserialize)]
struct WireInbound {
    from: String,
    #[serde(default)]
    text: String,
}

/// `{"from": "+237…", "to": "…", "text": "…"}` (other fields ignored).
fn parse_inbound(body: &[u8]) -> Result<Vec<Inbound>, InboundRefusal> {
    let inbound: WireInbound = serde_json::from_slice(body).map_err(|_| {
        InboundRefusal::Malformed("expected a JSON message {\"from\", \"to\", \"text\"}".to_owned())
    })?;
    Ok(vec![Inbound {
        from: inbound.from,
        text: inbound.text,
    }])
}

fn parse_receipts(body: &[u8]) -> Result<Vec<Receipt>, String> {
    let receipts = match serde_json::from_slice::<Receipts>(body) {
        Ok(Receipts::One(receipt)) => vec![receipt],
        Ok(Receipts::Many(receipts)) => receipts,
        Err(_) => {
            return Err(
                "expected a JSON receipt {\"id\", \"status\", …} or an array of them".to_owned(),
            );
        }
    };
    receipts
        .into_iter()
        .map(|receipt| {
            let status = match receipt.status.as_str() {
                "delivered" => ReceiptStatus::Delivered,
                "failed" => ReceiptStatus::Failed { unreachable: false },
                "undeliverable" => ReceiptStatus::Failed { unreachable: true },
                "pending" => ReceiptStatus::Pending,
                other => return Err(format!("unknown receipt status {other:?}")),
            };
            if receipt.id.is_empty() {
                return Err("a receipt has an empty id".to_owned());
            }
            Ok(Receipt {
                provider_message_id: receipt.id,
                status,
                error_code: receipt.error_code,
                error_message: receipt.error_message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_every_field() {
        let sms = SmsOut {
            message_id: "msg_1",
            to: "+237650000000",
            sender: "ACME",
            text: "Hello",
            receipt_url: None,
        };
        assert_eq!(
            request_body(&sms),
            serde_json::json!({"id": "msg_1", "to": "+237650000000", "from": "ACME",
                "text": "Hello", "receipt_url": null})
        );
        let with_receipts = SmsOut {
            receipt_url: Some("https://crier.example/r"),
            ..sms
        };
        assert_eq!(
            request_body(&with_receipts)["receipt_url"],
            "https://crier.example/r"
        );
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn errors_in_both_shapes() {
        let nested = serde_json::json!({"error": {"code": "opt_out", "message": "STOP received"}});
        assert_eq!(
            error_of(&nested),
            (Some("opt_out".to_owned()), Some("STOP received".to_owned()))
        );
        let flat = serde_json::json!({"code": 42, "message": "nope"});
        assert_eq!(
            error_of(&flat),
            (Some("42".to_owned()), Some("nope".to_owned()))
        );
        let bare = serde_json::json!({"error": "nope"});
        assert_eq!(error_of(&bare), (None, Some("nope".to_owned())));
    }

    #[test]
    fn receipts_parse() {
        let one = parse_receipts(br#"{"id": "w1", "status": "delivered"}"#).unwrap();
        assert_eq!(
            one,
            vec![Receipt {
                provider_message_id: "w1".to_owned(),
                status: ReceiptStatus::Delivered,
                error_code: None,
                error_message: None,
            }]
        );
        let many = parse_receipts(
            br#"[{"id": "w1", "status": "undeliverable", "error_code": "invalid_number",
                  "error_message": "no such number"},
                 {"id": "w2", "status": "failed"}, {"id": "w3", "status": "pending"}]"#,
        )
        .unwrap();
        assert_eq!(
            many.iter().map(|r| r.status).collect::<Vec<_>>(),
            vec![
                ReceiptStatus::Failed { unreachable: true },
                ReceiptStatus::Failed { unreachable: false },
                ReceiptStatus::Pending,
            ]
        );
        assert_eq!(many[0].error_code.as_deref(), Some("invalid_number"));
        assert_eq!(many[0].error_message.as_deref(), Some("no such number"));
    }

    #[test]
    fn malformed_receipts_are_errors() {
        for body in [
            &b"not json"[..],
            br#"{"status": "delivered"}"#,
            br#"{"id": "w1", "status": "lost"}"#,
            br#"{"id": "", "status": "delivered"}"#,
            br#"{"id": 5, "status": "delivered"}"#,
            b"",
        ] {
            assert!(
                parse_receipts(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
