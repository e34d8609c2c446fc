//! AvlyText, a Cameroonian SMS aggregator.
//!
//! Sending: `POST {base_url}/v1/sms?api_key={api_key}` with JSON
//! `{"sender": "ACME", "recipient": "+237650000000", "text": "…"}` (recipient in E.164 with the
//! `+`). Success is a 2xx whose body has a string `id`. A refusal's code is the body's `code` or
//! `errorCode`, else `avlytext_http_{status}`. AvlyText sends no delivery receipts.
//!
//! The API key travels in the query string, so the URL is a secret here: it is handed to the
//! HTTP client as a separate query parameter and never formatted into a log line or a failure
//! message.

use crate::delivery::providers::http;
use crate::delivery::settings::AvlyTextSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider, SmsOut};
use crate::outbound::{self, HttpClient, Payload};

/// Sends SMS through AvlyText.
pub struct AvlyTextProvider {
    settings: AvlyTextSettings,
    http: HttpClient,
}

impl AvlyTextProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &AvlyTextSettings, http: HttpClient) -> AvlyTextProvider {
        AvlyTextProvider {
            settings: settings.clone(),
            http,
        }
    }
}

/// The JSON body of one send.
fn request_body(sms: &SmsOut<'_>) -> serde_json::Value {
    serde_json::json!({
        "sender": sms.sender,
        "recipient": sms.to,
        "text": sms.text,
    })
}

impl Provider for AvlyTextProvider {
    fn name(&self) -> &'static str {
        "avlytext"
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let sms = http::sms(message)?;
        let url = outbound::join_url(&self.settings.base_url, "v1/sms");
        let reply = self.http.post(
            &url,
            &[("api_key", self.settings.api_key.expose())],
            &[("Accept", "application/json")],
            Payload::Json(request_body(sms).to_string().into_bytes()),
        )?;
        let json = reply.json();
        if reply.is_success() {
            let id = json.as_ref().and_then(|json| {
                json.get("id")
                    .and_then(serde_json::Value::as_str)
                    .filter(|id| !id.is_empty())
            });
            return match id {
                Some(id) => Ok(Accepted {
                    provider_message_id: Some(id.to_owned()),
                }),
                // The documented success carries the id; without it we cannot tell the message
                // was taken, and the original system counted this as a failure too.
                None => Err(Failure::retryable(
                    format!("avlytext_http_{}", reply.status),
                    format!(
                        "AvlyText answered HTTP {} without a message id",
                        reply.status
                    ),
                )),
            };
        }
        let (code, detail) = http::error_fields(json.as_ref());
        Err(http::refusal(
            reply.status,
            code.as_deref(),
            detail.as_deref(),
            &format!("avlytext_http_{}", reply.status),
            &[sms.text, self.settings.api_key.expose()],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keeps_the_plus() {
        let sms = SmsOut {
            message_id: "msg_1",
            to: "+237650000000",
            sender: "ACME",
            text: "Hello",
            receipt_url: Some("https://crier.example/r"),
        };
        assert_eq!(
            request_body(&sms),
            serde_json::json!({"sender": "ACME", "recipient": "+237650000000", "text": "Hello"})
        );
    }
}
