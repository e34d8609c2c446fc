//! LMT Group (sms.lmtgroup.com), a Cameroonian SMS aggregator the original system used.
//!
//! Sending: `POST {base_url}/api/v1/pushes` with the headers `X-Api-Key` and `X-Secret` and JSON
//! `{"senderId": "ACME", "message": "…", "msisdn": ["237650000000"]}` (one number, without its
//! `+`). Success is HTTP 201 only; the provider id is the body's `id` (or `pushId`, `messageId`;
//! string or number) when present. Any other status is a refusal: its code is the body's
//! `code`/`errorCode` when given, else `lmt_http_{status}` (`lmt_not_created` for another 2xx,
//! which is not how LMT says it took a push; kept retryable).
//!
//! Two answers are LMT's own: `BAL01` (the account's balance is too low) is retryable, like any
//! empty account (`http::classify_code`); 401 (the key or secret is refused) is final
//! (`lmt_unauthorized`), as the original system treated it: LMT answers 401 for a push it will
//! never take under these credentials, and the message is not sent to the next provider.
//!
//! LMT's public documentation was not at hand: the path, headers and body fields above are
//! those the original system and other LMT clients send; the fake in `tests/it/sms_providers.rs`
//! speaks this format. LMT sends no delivery receipts to crier.
//!
//! The key and secret travel in headers; they are never formatted into a failure message.

use crate::delivery::providers::http;
use crate::delivery::settings::LmtSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider, SmsOut};
use crate::outbound::{self, HttpClient, Payload};

/// Sends SMS through LMT Group.
pub struct LmtProvider {
    settings: LmtSettings,
    http: HttpClient,
}

impl LmtProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &LmtSettings, http: HttpClient) -> LmtProvider {
        LmtProvider {
            settings: settings.clone(),
            http,
        }
    }
}

/// The JSON body of one push.
fn request_body(sms: &SmsOut<'_>) -> serde_json::Value {
    serde_json::json!({
        "senderId": sms.sender,
        "message": sms.text,
        "msisdn": [http::digits_only(sms.to)],
    })
}

impl Provider for LmtProvider {
    fn name(&self) -> &'static str {
        "lmt"
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let sms = http::sms(message)?;
        let url = outbound::join_url(&self.settings.base_url, "api/v1/pushes");
        let reply = self.http.post(
            &url,
            &[],
            &[
                ("Accept", "application/json"),
                ("X-Api-Key", self.settings.api_key.expose()),
                ("X-Secret", self.settings.secret.expose()),
            ],
            Payload::Json(request_body(sms).to_string().into_bytes()),
        )?;
        let json = reply.json();
        if reply.status == 201 {
            let provider_message_id =
                http::first_text(json.as_ref(), &["id", "pushId", "messageId"]);
            return Ok(Accepted {
                provider_message_id,
            });
        }
        if reply.status == 401 {
            return Err(Failure::final_(
                "lmt_unauthorized",
                "LMT refused the API key or secret (HTTP 401)",
            ));
        }
        let (code, detail) = http::error_fields(json.as_ref());
        let fallback = if reply.is_success() {
            "lmt_not_created".to_owned()
        } else {
            format!("lmt_http_{}", reply.status)
        };
        Err(http::refusal(
            reply.status,
            code.as_deref(),
            detail.as_deref(),
            &fallback,
            &[
                sms.text,
                self.settings.api_key.expose(),
                self.settings.secret.expose(),
            ],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_one_bare_number() {
        let sms = SmsOut {
            message_id: "msg_1",
            to: "+237690000000",
            sender: "ACME",
            text: "Hello",
            receipt_url: None,
        };
        assert_eq!(
            request_body(&sms),
            serde_json::json!({"senderId": "ACME", "message": "Hello",
                "msisdn": ["237690000000"]})
        );
    }
}
