//! MboaSMS (mboadeals.net), a Cameroonian SMS aggregator.
//!
//! Sending: `POST {base_url}/api/v1/sms/sendsms` with JSON
//! `{"user_id", "password", "message", "phone_str": "237650000000", "sender_name"}` (the number
//! without its `+`; the credentials travel in the body, so the body is never logged or quoted).
//! Success is a 2xx whose body says `"success": true` or `"message": "SUCCESS"`; the provider id
//! is `id`, `messageId` or `reference` (string or number) when present. Anything else is a
//! refusal: its code is the body's `code`/`errorCode` when given, else `mboasms_http_{status}`
//! (or `mboasms_rejected` for a 2xx that does not say success). MboaSMS sends no delivery
//! receipts.

use crate::delivery::providers::http;
use crate::delivery::settings::MboaSmsSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider, SmsOut};
use crate::outbound::{self, HttpClient, Payload};

/// Sends SMS through MboaSMS.
pub struct MboaSmsProvider {
    settings: MboaSmsSettings,
    http: HttpClient,
}

impl MboaSmsProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &MboaSmsSettings, http: HttpClient) -> MboaSmsProvider {
        MboaSmsProvider {
            settings: settings.clone(),
            http,
        }
    }

    /// The JSON body of one send.
    fn request_body(&self, sms: &SmsOut<'_>) -> serde_json::Value {
        serde_json::json!({
            "user_id": self.settings.user_id,
            "password": self.settings.password.expose(),
            "message": sms.text,
            "phone_str": http::digits_only(sms.to),
            "sender_name": sms.sender,
        })
    }
}

/// Whether a 2xx body reports success.
fn says_success(body: &serde_json::Value) -> bool {
    body.get("success") == Some(&serde_json::Value::Bool(true))
        || body.get("message").and_then(serde_json::Value::as_str) == Some("SUCCESS")
}

impl Provider for MboaSmsProvider {
    fn name(&self) -> &'static str {
        "mboasms"
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let sms = http::sms(message)?;
        let url = outbound::join_url(&self.settings.base_url, "api/v1/sms/sendsms");
        let reply = self.http.post(
            &url,
            &[],
            &[("Accept", "application/json")],
            Payload::Json(self.request_body(sms).to_string().into_bytes()),
        )?;
        let json = reply.json();
        if reply.is_success() && json.as_ref().is_some_and(says_success) {
            let provider_message_id =
                http::first_text(json.as_ref(), &["id", "messageId", "reference"]);
            return Ok(Accepted {
                provider_message_id,
            });
        }
        let (code, detail) = http::error_fields(json.as_ref());
        let fallback = if reply.is_success() {
            // A 2xx that does not say success: MboaSMS reports some refusals this way. Without
            // a code we cannot tell what went wrong, so `http::refusal` keeps it retryable.
            "mboasms_rejected".to_owned()
        } else {
            format!("mboasms_http_{}", reply.status)
        };
        Err(http::refusal(
            reply.status,
            code.as_deref(),
            detail.as_deref(),
            &fallback,
            &[sms.text, self.settings.password.expose()],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn body_uses_bare_digits_and_the_credentials() {
        let provider = MboaSmsProvider::new(
            &MboaSmsSettings {
                base_url: "http://127.0.0.1:1".to_owned(),
                user_id: "u1".to_owned(),
                password: Secret::new("pw"),
            },
            HttpClient::new(std::time::Duration::from_secs(1)),
        );
        let sms = SmsOut {
            message_id: "msg_1",
            to: "+237650000000",
            sender: "infos",
            text: "Hello",
            receipt_url: None,
        };
        assert_eq!(
            provider.request_body(&sms),
            serde_json::json!({"user_id": "u1", "password": "pw", "message": "Hello",
                "phone_str": "237650000000", "sender_name": "infos"})
        );
    }

    #[test]
    fn success_shapes() {
        assert!(says_success(&serde_json::json!({"success": true})));
        assert!(says_success(&serde_json::json!({"message": "SUCCESS"})));
        assert!(!says_success(&serde_json::json!({"success": "true"})));
        assert!(!says_success(
            &serde_json::json!({"success": false, "message": "FAILED"})
        ));
    }
}
