//! Twilio's Programmable Messaging API.
//!
//! Sending: `POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json`, HTTP Basic auth
//! (account SID : auth token), form fields `To` (E.164 with `+`), `From`, `Body`, and
//! `StatusCallback` (our receipt URL) when receipts are configured. Twilio answers 201 with the
//! message resource; its `sid` is the provider id. Refusals carry
//! `{"code": 21211, "message": "…", "status": 400}`; the code decides (see
//! `http::classify_code`).
//!
//! Receipts: Twilio posts the StatusCallback form-encoded with `MessageSid`, `MessageStatus` and,
//! on failure, `ErrorCode`. Error codes 30003 (unreachable handset), 30005 (unknown destination)
//! and 30006 (landline or unreachable carrier) mean the number itself is bad.
//!
//! Inbound: Twilio posts an incoming SMS form-encoded (`From`, `To`, `Body`, …) with
//! `X-Twilio-Signature`: base64 of HMAC-SHA1 under the auth token of the URL it called followed
//! by every POST field's name and value, sorted by name. A request whose signature does not
//! match is refused.

use crate::delivery::providers::http;
use crate::delivery::settings::TwilioSettings;
use crate::delivery::{
    Accepted, Failure, Inbound, InboundRefusal, InboundRequest, Outgoing, Provider, Receipt,
    ReceiptRequest, ReceiptStatus, SmsOut,
};
use crate::outbound::{self, HttpClient, Payload};

/// Delivery error codes that mean the number will never receive anything.
const UNREACHABLE_CODES: &[&str] = &["30003", "30005", "30006"];

/// Sends SMS through Twilio.
pub struct TwilioProvider {
    settings: TwilioSettings,
    http: HttpClient,
}

impl TwilioProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &TwilioSettings, http: HttpClient) -> TwilioProvider {
        TwilioProvider {
            settings: settings.clone(),
            http,
        }
    }
}

/// The form fields of one send.
fn form_fields<'a>(sms: &SmsOut<'a>) -> Vec<(&'static str, &'a str)> {
    let mut fields = vec![("To", sms.to), ("From", sms.sender), ("Body", sms.text)];
    if let Some(receipt_url) = sms.receipt_url {
        fields.push(("StatusCallback", receipt_url));
    }
    fields
}

impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let sms = http::sms(message)?;
        let url = outbound::join_url(
            &self.settings.base_url,
            &format!(
                "2010-04-01/Accounts/{}/Messages.json",
                self.settings.account_sid
            ),
        );
        let authorization = outbound::basic_auth(
            &self.settings.account_sid,
            self.settings.auth_token.expose(),
        );
        let reply = self.http.post(
            &url,
            &[],
            &[("Authorization", &authorization)],
            Payload::Form(form_fields(sms)),
        )?;
        let json = reply.json();
        if reply.is_success() {
            return match json
                .as_ref()
                .and_then(|json| outbound::json_text(json, "sid"))
            {
                Some(sid) => Ok(Accepted {
                    provider_message_id: Some(sid),
                }),
                // Twilio always names the message it created; an answer without a sid did not
                // come from Twilio's API (a proxy, a captive portal), so nothing was sent.
                None => Err(Failure::retryable(
                    "bad_response",
                    format!(
                        "Twilio answered HTTP {} without a message sid",
                        reply.status
                    ),
                )),
            };
        }
        let code = json
            .as_ref()
            .and_then(|json| outbound::json_text(json, "code"));
        let detail = json.as_ref().and_then(|json| {
            json.get("message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        });
        Err(http::refusal(
            reply.status,
            code.as_deref(),
            detail.as_deref(),
            &format!("http_{}", reply.status),
            &[sms.text, self.settings.auth_token.expose()],
        ))
    }

    fn parse_receipts(&self, request: &ReceiptRequest<'_>) -> Option<Result<Vec<Receipt>, String>> {
        Some(parse_receipt(request.body))
    }

    fn parse_inbound(
        &self,
        request: &InboundRequest<'_>,
    ) -> Option<Result<Vec<Inbound>, InboundRefusal>> {
        Some(parse_inbound(self.settings.auth_token.expose(), request))
    }
}

/// Twilio's signature of a form POST to `url`: base64(HMAC-SHA1(auth token, url followed by
/// each field's name and value, sorted by name)).
pub fn signature(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    use base64::Engine as _;
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        auth_token.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, signed.as_bytes()))
}

/// One incoming SMS, its signature checked first.
fn parse_inbound(
    auth_token: &str,
    request: &InboundRequest<'_>,
) -> Result<Vec<Inbound>, InboundRefusal> {
    let fields = outbound::parse_form(request.body).map_err(InboundRefusal::Malformed)?;
    let expected = signature(auth_token, request.url, &fields);
    let presented = request.twilio_signature.unwrap_or_default();
    if !crate::secrets::constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
        return Err(InboundRefusal::Signature(
            "The X-Twilio-Signature header is missing or does not match this request.".to_owned(),
        ));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let from = field("From")
        .filter(|from| !from.is_empty())
        .ok_or_else(|| InboundRefusal::Malformed("the message has no From".to_owned()))?;
    Ok(vec![Inbound {
        from,
        text: field("Body").unwrap_or_default(),
    }])
}

/// One StatusCallback: always exactly one receipt.
fn parse_receipt(body: &[u8]) -> Result<Vec<Receipt>, String> {
    let fields = outbound::parse_form(body)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let sid = field("MessageSid").ok_or("the receipt has no MessageSid")?;
    let status = field("MessageStatus").ok_or("the receipt has no MessageStatus")?;
    // Twilio sends ErrorCode=0 or leaves it out when there is no error.
    let error_code = field("ErrorCode").filter(|code| *code != "0");
    let status = match status {
        "delivered" | "read" => ReceiptStatus::Delivered,
        "undelivered" | "failed" => ReceiptStatus::Failed {
            unreachable: error_code.is_some_and(|code| UNREACHABLE_CODES.contains(&code)),
        },
        // Only scheduled messages can be canceled; crier never schedules on Twilio, but a
        // canceled message is definitively not delivered.
        "canceled" => ReceiptStatus::Failed { unreachable: false },
        "accepted" | "scheduled" | "queued" | "sending" | "sent" | "partially_delivered" => {
            ReceiptStatus::Pending
        }
        other => return Err(format!("unknown MessageStatus {other:?}")),
    };
    Ok(vec![Receipt {
        provider_message_id: sid.to_owned(),
        status,
        error_code: error_code.map(str::to_owned),
        error_message: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_carries_every_field() {
        let sms = SmsOut {
            message_id: "msg_1",
            to: "+15005550006",
            sender: "+15005550001",
            text: "Hello",
            receipt_url: Some("https://crier.example/r"),
        };
        assert_eq!(
            form_fields(&sms),
            vec![
                ("To", "+15005550006"),
                ("From", "+15005550001"),
                ("Body", "Hello"),
                ("StatusCallback", "https://crier.example/r"),
            ]
        );
        let without = SmsOut {
            receipt_url: None,
            ..sms
        };
        assert_eq!(form_fields(&without).len(), 3);
    }

    #[test]
    fn receipts_parse() {
        let table: &[(&[u8], ReceiptStatus, Option<&str>)] = &[
            (
                b"MessageSid=SM1&MessageStatus=delivered&AccountSid=AC1",
                ReceiptStatus::Delivered,
                None,
            ),
            (
                b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30003",
                ReceiptStatus::Failed { unreachable: true },
                Some("30003"),
            ),
            (
                b"MessageSid=SM1&MessageStatus=failed&ErrorCode=30006",
                ReceiptStatus::Failed { unreachable: true },
                Some("30006"),
            ),
            (
                b"MessageSid=SM1&MessageStatus=undelivered&ErrorCode=30008",
                ReceiptStatus::Failed { unreachable: false },
                Some("30008"),
            ),
            (
                b"MessageSid=SM1&MessageStatus=sent&ErrorCode=0",
                ReceiptStatus::Pending,
                None,
            ),
            (
                b"MessageSid=SM1&MessageStatus=queued",
                ReceiptStatus::Pending,
                None,
            ),
        ];
        for (body, status, code) in table {
            let receipts = parse_receipt(body).unwrap();
            assert_eq!(receipts.len(), 1);
            assert_eq!(receipts[0].provider_message_id, "SM1");
            assert_eq!(
                receipts[0].status,
                *status,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(receipts[0].error_code.as_deref(), *code);
        }
    }

    #[test]
    fn malformed_receipts_are_errors() {
        for body in [
            &b"MessageStatus=delivered"[..],
            b"MessageSid=SM1",
            b"MessageSid=SM1&MessageStatus=teleported",
            b"MessageSid=SM1&MessageStatus=%zz",
            br#"{"MessageSid": "SM1"}"#,
            b"",
        ] {
            assert!(
                parse_receipt(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
