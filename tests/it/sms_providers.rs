//! The HTTP SMS provider adapters against `FakeHttp` speaking each provider's wire format: the
//! request each one sends, and how each answer is classified.

use std::time::{Duration, Instant};

use crier::config::Secret;
use crier::delivery::providers::avlytext::AvlyTextProvider;
use crier::delivery::providers::infobip::InfobipProvider;
use crier::delivery::providers::lmt::LmtProvider;
use crier::delivery::providers::mboasms::MboaSmsProvider;
use crier::delivery::providers::twilio::TwilioProvider;
use crier::delivery::providers::webhook::WebhookProvider;
use crier::delivery::settings::{
    AvlyTextSettings, InfobipSettings, LmtSettings, MboaSmsSettings, TwilioSettings,
    WebhookSettings,
};
use crier::delivery::{
    Accepted, Disposition, Failure, Outgoing, Provider, ReceiptRequest, ReceiptStatus, SmsOut,
};
use crier::outbound::HttpClient;
use serde_json::json;

use crate::fake_http::{FakeHttp, Reply, closed_port_url};

const TEXT: &str = "Votre code : 1234 & merci";
const RECEIPT_URL: &str = "https://crier.example/v1/webhooks/sms/x?token=t0k";

fn sms(receipt_url: Option<&'static str>) -> Outgoing<'static> {
    Outgoing::Sms(SmsOut {
        message_id: "msg_0001",
        to: "+237650000000",
        sender: "ACME",
        text: TEXT,
        receipt_url,
    })
}

fn http() -> HttpClient {
    HttpClient::new(Duration::from_secs(5))
}

fn webhook(url: &str, secret: Option<&str>) -> WebhookProvider {
    WebhookProvider::new(
        &WebhookSettings {
            url: url.to_owned(),
            secret: secret.map(Secret::new),
        },
        http(),
    )
}

fn twilio(base_url: &str) -> TwilioProvider {
    TwilioProvider::new(
        &TwilioSettings {
            base_url: base_url.to_owned(),
            account_sid: "AC123".to_owned(),
            auth_token: Secret::new("tok_secret"),
        },
        http(),
    )
}

fn infobip_with(base_url: &str, http: HttpClient) -> InfobipProvider {
    InfobipProvider::new(
        &InfobipSettings {
            base_url: base_url.to_owned(),
            api_key: Secret::new("ib_key_secret"),
        },
        http,
    )
}

fn infobip(base_url: &str) -> InfobipProvider {
    infobip_with(base_url, http())
}

/// The key has characters that must be percent-encoded in a query string.
const AVLY_KEY: &str = "av key&secret=1";

fn avlytext(base_url: &str) -> AvlyTextProvider {
    AvlyTextProvider::new(
        &AvlyTextSettings {
            base_url: base_url.to_owned(),
            api_key: Secret::new(AVLY_KEY),
        },
        http(),
    )
}

fn mboasms(base_url: &str) -> MboaSmsProvider {
    MboaSmsProvider::new(
        &MboaSmsSettings {
            base_url: base_url.to_owned(),
            user_id: "mboa_user".to_owned(),
            password: Secret::new("mboa_pw_secret"),
        },
        http(),
    )
}

fn lmt(base_url: &str) -> LmtProvider {
    LmtProvider::new(
        &LmtSettings {
            base_url: base_url.to_owned(),
            api_key: Secret::new("lmt_key_secret"),
            secret: Secret::new("lmt_x_secret"),
        },
        http(),
    )
}

/// Every HTTP provider, configured against `base_url` (the webhook at `{base_url}/hook`).
fn all_providers(base_url: &str) -> Vec<Box<dyn Provider>> {
    vec![
        Box::new(webhook(&format!("{base_url}/hook"), Some("whsec"))),
        Box::new(twilio(base_url)),
        Box::new(infobip(base_url)),
        Box::new(avlytext(base_url)),
        Box::new(mboasms(base_url)),
        Box::new(lmt(base_url)),
    ]
}

const SECRETS: &[&str] = &[
    "whsec",
    "tok_secret",
    "ib_key_secret",
    "av key",
    "av+key",
    "av%20key",
    "mboa_pw_secret",
    "lmt_key_secret",
    "lmt_x_secret",
    TEXT,
];

#[track_caller]
fn assert_failure(result: Result<Accepted, Failure>, disposition: Disposition, code: &str) {
    let failure = result.unwrap_err();
    assert_eq!(
        (failure.disposition, failure.code.as_str()),
        (disposition, code),
        "{failure:?}"
    );
    for secret in SECRETS {
        assert!(
            !failure.message.contains(secret),
            "{failure:?} leaks {secret}"
        );
    }
}

fn accepted(id: &str) -> Result<Accepted, Failure> {
    Ok(Accepted {
        provider_message_id: Some(id.to_owned()),
    })
}

// --- webhook ---------------------------------------------------------------------------------

#[test]
fn webhook_posts_signed_json_and_takes_the_id() {
    let fake = FakeHttp::start(|_| Reply::json(202, json!({"id": "w-1"})));
    let provider = webhook(&format!("{}/hook", fake.url()), Some("whsec"));
    assert_eq!(provider.name(), "webhook");
    assert_eq!(provider.send(&sms(Some(RECEIPT_URL))), accepted("w-1"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"id": "msg_0001", "to": "+237650000000", "from": "ACME", "text": TEXT,
            "receipt_url": RECEIPT_URL})
    );
    // Recomputed here from the raw bytes received, as a receiver would.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"whsec");
    let tag = ring::hmac::sign(&key, &request.body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        request.header("x-crier-signature"),
        Some(format!("sha256={hex}").as_str())
    );
}

#[test]
fn webhook_without_secret_is_unsigned_and_any_2xx_accepts() {
    let fake = FakeHttp::scripted([Reply::empty(204), Reply::json(200, json!({"id": 7}))]);
    let provider = webhook(&fake.url(), None);
    let none = Ok(Accepted {
        provider_message_id: None,
    });
    assert_eq!(provider.send(&sms(None)), none);
    assert_eq!(provider.send(&sms(None)), none);
    let requests = fake.requests();
    assert_eq!(requests[0].path(), "/");
    assert_eq!(requests[0].header("x-crier-signature"), None);
    assert_eq!(requests[0].json()["receipt_url"], serde_json::Value::Null);
}

#[test]
fn webhook_refusals_are_classified_by_code_then_status() {
    let fake = FakeHttp::scripted([
        Reply::json(
            400,
            json!({"error": {"code": "invalid_number", "message": "no such number"}}),
        ),
        Reply::json(400, json!({"code": "opt_out"})),
        Reply::json(422, json!({"detail": "whatever"})),
        Reply::json(400, json!({"code": "queue_full"})),
        Reply::text(503, "down"),
        Reply::empty(429),
        Reply::empty(408),
    ]);
    let provider = webhook(&fake.url(), Some("whsec"));
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "invalid_number",
    );
    assert_failure(provider.send(&sms(None)), Disposition::Final, "opt_out");
    assert_failure(provider.send(&sms(None)), Disposition::Final, "http_422");
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "queue_full",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "http_503",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "rate_limited",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "http_408",
    );
}

#[test]
fn webhook_receipts_parse() {
    let provider = webhook("http://127.0.0.1:9", None);
    let request = ReceiptRequest {
        content_type: Some("application/json"),
        query: "token=t0k",
        body: br#"[{"id": "w-1", "status": "undeliverable", "error_code": "invalid_number"}]"#,
    };
    let receipts = provider.parse_receipts(&request).unwrap().unwrap();
    assert_eq!(receipts[0].provider_message_id, "w-1");
    assert_eq!(
        receipts[0].status,
        ReceiptStatus::Failed { unreachable: true }
    );
    let broken = ReceiptRequest {
        body: b"{",
        ..request
    };
    assert!(provider.parse_receipts(&broken).unwrap().is_err());
}

// --- Twilio ----------------------------------------------------------------------------------

#[test]
fn twilio_posts_a_basic_auth_form_and_takes_the_sid() {
    let fake = FakeHttp::start(|_| {
        Reply::json(
            201,
            json!({"sid": "SM0001", "status": "queued", "error_code": null}),
        )
    });
    let provider = twilio(&format!("{}/", fake.url()));
    assert_eq!(provider.name(), "twilio");
    assert_eq!(provider.send(&sms(Some(RECEIPT_URL))), accepted("SM0001"));

    let request = &fake.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "/2010-04-01/Accounts/AC123/Messages.json");
    // base64("AC123:tok_secret")
    assert_eq!(
        request.header("authorization"),
        Some("Basic QUMxMjM6dG9rX3NlY3JldA==")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = request.form();
    let field = |name: &str| request.form_field(name);
    assert_eq!(form.len(), 4, "{form:?}");
    assert_eq!(field("To").as_deref(), Some("+237650000000"));
    assert_eq!(field("From").as_deref(), Some("ACME"));
    assert_eq!(field("Body").as_deref(), Some(TEXT));
    assert_eq!(field("StatusCallback").as_deref(), Some(RECEIPT_URL));
    // The `+` and `&` are escaped on the wire, not sent raw.
    assert!(
        request.text().starts_with("To=%2B237650000000&"),
        "{}",
        request.text()
    );
}

#[test]
fn twilio_refusals_are_classified() {
    let fake = FakeHttp::scripted([
        Reply::json(
            400,
            json!({"code": 21211, "message": "The 'To' number is not a valid phone number.",
                "status": 400, "more_info": "https://www.twilio.com/docs/errors/21211"}),
        ),
        Reply::json(
            400,
            json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient"}),
        ),
        Reply::json(
            401,
            json!({"code": 20003, "message": "Authenticate", "status": 401}),
        ),
        Reply::json(
            429,
            json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
        ),
        Reply::text(503, "Service Unavailable"),
        Reply::json(201, json!({"status": "queued"})),
    ]);
    let provider = twilio(&fake.url());
    assert_failure(provider.send(&sms(None)), Disposition::Final, "21211");
    assert_failure(provider.send(&sms(None)), Disposition::Final, "21610");
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "unauthorized",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "rate_limited",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "http_503",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "bad_response",
    );
    // Without a receipt URL there is no StatusCallback.
    assert_eq!(fake.requests()[0].form_field("StatusCallback"), None);
}

#[test]
fn twilio_status_callbacks_parse() {
    let provider = twilio("http://127.0.0.1:9");
    let request = ReceiptRequest {
        content_type: Some("application/x-www-form-urlencoded"),
        query: "token=t0k",
        body: b"SmsSid=SM0001&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B237650000000\
                &MessageSid=SM0001&AccountSid=AC123&ErrorCode=30005",
    };
    let receipts = provider.parse_receipts(&request).unwrap().unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].provider_message_id, "SM0001");
    assert_eq!(
        receipts[0].status,
        ReceiptStatus::Failed { unreachable: true }
    );
    assert_eq!(receipts[0].error_code.as_deref(), Some("30005"));
    let broken = ReceiptRequest {
        body: b"MessageStatus=delivered",
        ..request
    };
    assert!(provider.parse_receipts(&broken).unwrap().is_err());
}

// --- Infobip ---------------------------------------------------------------------------------

#[test]
fn infobip_posts_app_auth_json_and_takes_the_message_id() {
    let fake = FakeHttp::start(|request| {
        let id = request.json()["messages"][0]["destinations"][0]["messageId"].clone();
        Reply::json(
            200,
            json!({"bulkId": "b1", "messages": [{"to": "237650000000", "messageId": id,
                "status": {"groupId": 1, "groupName": "PENDING", "id": 26,
                           "name": "PENDING_ACCEPTED", "description": "Message sent to next instance"}}]}),
        )
    });
    let provider = infobip(&fake.url());
    assert_eq!(provider.name(), "infobip");
    assert_eq!(provider.send(&sms(Some(RECEIPT_URL))), accepted("msg_0001"));

    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("POST", "/sms/2/text/advanced")
    );
    assert_eq!(request.header("authorization"), Some("App ib_key_secret"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"messages": [{
            "destinations": [{"to": "237650000000", "messageId": "msg_0001"}],
            "from": "ACME", "text": TEXT,
            "notifyUrl": RECEIPT_URL, "notifyContentType": "application/json"}]})
    );
}

#[test]
fn infobip_refusals_are_classified() {
    let rejected = |name: &str| {
        Reply::json(
            200,
            json!({"messages": [{"messageId": "msg_0001",
                "status": {"groupId": 5, "groupName": "REJECTED", "name": name}}]}),
        )
    };
    let exception = |status: u16, id: &str| {
        Reply::json(
            status,
            json!({"requestError": {"serviceException": {"messageId": id, "text": "nope"}}}),
        )
    };
    let fake = FakeHttp::scripted([
        rejected("REJECTED_DESTINATION"),
        rejected("REJECTED_NOT_ENOUGH_CREDITS"),
        exception(401, "UNAUTHORIZED"),
        exception(400, "EC_0002"),
        exception(429, "TOO_MANY_REQUESTS"),
        Reply::text(503, "<html>down</html>"),
    ]);
    let provider = infobip(&fake.url());
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "REJECTED_DESTINATION",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "REJECTED_NOT_ENOUGH_CREDITS",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "unauthorized",
    );
    assert_failure(provider.send(&sms(None)), Disposition::Final, "EC_0002");
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "rate_limited",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "http_503",
    );
    // Without a receipt URL, no notifyUrl.
    let body = fake.requests()[0].json();
    assert!(body["messages"][0].get("notifyUrl").is_none(), "{body}");
}

#[test]
fn infobip_slower_than_the_timeout_is_retryable() {
    let fake = FakeHttp::start(|_| Reply::json(200, json!({})).after(Duration::from_secs(10)));
    let provider = infobip_with(&fake.url(), HttpClient::new(Duration::from_millis(300)));
    let started = Instant::now();
    assert_failure(provider.send(&sms(None)), Disposition::Retryable, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn infobip_delivery_reports_parse() {
    let provider = infobip("http://127.0.0.1:9");
    let request = ReceiptRequest {
        content_type: Some("application/json"),
        query: "token=t0k",
        body: br#"{"results": [{"bulkId": "b1", "messageId": "msg_0001", "to": "237650000000",
            "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
            "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": false}}]}"#,
    };
    let receipts = provider.parse_receipts(&request).unwrap().unwrap();
    assert_eq!(receipts[0].provider_message_id, "msg_0001");
    assert_eq!(receipts[0].status, ReceiptStatus::Delivered);
    assert_eq!(receipts[0].error_code, None);
    let broken = ReceiptRequest {
        body: br#"{"results": "x"}"#,
        ..request
    };
    assert!(provider.parse_receipts(&broken).unwrap().is_err());
}

// --- AvlyText --------------------------------------------------------------------------------

#[test]
fn avlytext_posts_json_with_the_key_in_the_query() {
    let fake =
        FakeHttp::start(|_| Reply::json(200, json!({"id": "avly-1", "cost": 25, "parts": 1})));
    let provider = avlytext(&fake.url());
    assert_eq!(provider.name(), "avlytext");
    assert_eq!(provider.send(&sms(Some(RECEIPT_URL))), accepted("avly-1"));

    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path()),
        ("POST", "/v1/sms")
    );
    assert_eq!(
        request.query(),
        vec![("api_key".to_owned(), AVLY_KEY.to_owned())]
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"sender": "ACME", "recipient": "+237650000000", "text": TEXT})
    );
    // AvlyText sends no receipts.
    let receipt = ReceiptRequest {
        content_type: None,
        query: "",
        body: b"{}",
    };
    assert!(provider.parse_receipts(&receipt).is_none());
}

#[test]
fn avlytext_refusals_are_classified_and_never_show_the_key() {
    let fake = FakeHttp::scripted([
        Reply::json(
            400,
            json!({"code": "invalid_number", "message": "bad recipient"}),
        ),
        Reply::json(400, json!({"errorCode": "number_blacklisted"})),
        Reply::text(400, "bad request"),
        // A provider quoting the key back must not leak it through our failure message.
        Reply::json(402, json!({"message": "av key&secret=1 has no credit"})),
        Reply::text(503, ""),
        Reply::json(200, json!({"status": "ok"})),
    ]);
    let provider = avlytext(&fake.url());
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "invalid_number",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "number_blacklisted",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "avlytext_http_400",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "payment_required",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "avlytext_http_503",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "avlytext_http_200",
    );
}

// --- MboaSMS ---------------------------------------------------------------------------------

#[test]
fn mboasms_posts_credentials_and_bare_digits() {
    let fake = FakeHttp::scripted([
        Reply::json(200, json!({"success": true, "id": 98765})),
        Reply::json(200, json!({"message": "SUCCESS", "reference": "ref-1"})),
        Reply::json(200, json!({"success": true})),
    ]);
    let provider = mboasms(&fake.url());
    assert_eq!(provider.name(), "mboasms");
    assert_eq!(provider.send(&sms(Some(RECEIPT_URL))), accepted("98765"));
    assert_eq!(provider.send(&sms(None)), accepted("ref-1"));
    assert_eq!(
        provider.send(&sms(None)),
        Ok(Accepted {
            provider_message_id: None
        })
    );

    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("POST", "/api/v1/sms/sendsms")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"user_id": "mboa_user", "password": "mboa_pw_secret", "message": TEXT,
            "phone_str": "237650000000", "sender_name": "ACME"})
    );
}

#[test]
fn mboasms_refusals_are_classified() {
    let fake = FakeHttp::scripted([
        Reply::json(200, json!({"success": false, "code": "invalid_number"})),
        Reply::json(200, json!({"success": false, "message": "FAILED"})),
        Reply::json(400, json!({"message": "mboa_pw_secret is wrong"})),
        Reply::text(500, "oops"),
        Reply::text(200, "<html>maintenance</html>"),
    ]);
    let provider = mboasms(&fake.url());
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "invalid_number",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "mboasms_rejected",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "mboasms_http_400",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "mboasms_http_500",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "mboasms_rejected",
    );
}

// --- LMT Group ------------------------------------------------------------------------------

#[test]
fn lmt_pushes_json_with_key_and_secret_headers_and_takes_201_only() {
    let fake = FakeHttp::scripted([
        Reply::json(201, json!({"id": "lmt-push-1", "status": "pending"})),
        Reply::json(201, json!({"pushId": 4242})),
        Reply::json(201, json!({})),
    ]);
    let provider = lmt(&fake.url());
    assert_eq!(provider.name(), "lmt");
    assert_eq!(
        provider.send(&sms(Some(RECEIPT_URL))),
        accepted("lmt-push-1")
    );
    assert_eq!(provider.send(&sms(None)), accepted("4242"));
    assert_eq!(
        provider.send(&sms(None)),
        Ok(Accepted {
            provider_message_id: None
        })
    );

    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.url.as_str()),
        ("POST", "/api/v1/pushes")
    );
    assert_eq!(request.header("x-api-key"), Some("lmt_key_secret"));
    assert_eq!(request.header("x-secret"), Some("lmt_x_secret"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    // The number without its `+`, in a list of one; the credentials are not in the body.
    assert_eq!(
        request.json(),
        json!({"senderId": "ACME", "message": TEXT, "msisdn": ["237650000000"]})
    );
    // LMT sends no receipts.
    let receipt = ReceiptRequest {
        content_type: None,
        query: "",
        body: b"{}",
    };
    assert!(provider.parse_receipts(&receipt).is_none());
}

#[test]
fn lmt_refusals_are_classified() {
    let fake = FakeHttp::scripted([
        // Insufficient balance: an operator's top-up (or the next provider) still delivers.
        Reply::json(
            400,
            json!({"code": "BAL01", "message": "Solde insuffisant"}),
        ),
        Reply::json(402, json!({"errorCode": "BAL01"})),
        // Key or secret refused, even when LMT quotes them back: final, never shown.
        Reply::json(
            401,
            json!({"message": "lmt_key_secret / lmt_x_secret unknown"}),
        ),
        Reply::json(400, json!({"code": "invalid_number"})),
        Reply::text(400, "bad request"),
        Reply::text(500, "oops"),
        // 200 is not how LMT says it created a push.
        Reply::json(200, json!({"id": "x"})),
    ]);
    let provider = lmt(&fake.url());
    assert_failure(provider.send(&sms(None)), Disposition::Retryable, "BAL01");
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "payment_required",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "lmt_unauthorized",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "invalid_number",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Final,
        "lmt_http_400",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "lmt_http_500",
    );
    assert_failure(
        provider.send(&sms(None)),
        Disposition::Retryable,
        "lmt_not_created",
    );
}

// --- every provider --------------------------------------------------------------------------

#[test]
fn every_provider_retries_on_503_and_429() {
    // Each provider gets a 503, then a 429.
    let fake = FakeHttp::scripted((0..6).flat_map(|_| {
        [
            Reply::text(503, "busy"),
            Reply::json(429, json!({"code": "x"})),
        ]
    }));
    for provider in all_providers(&fake.url()) {
        let unavailable = provider.send(&sms(None)).unwrap_err();
        assert_eq!(
            unavailable.disposition,
            Disposition::Retryable,
            "{}",
            provider.name()
        );
        assert!(
            unavailable.code.ends_with("_503"),
            "{} {unavailable:?}",
            provider.name()
        );
        assert_failure(
            provider.send(&sms(None)),
            Disposition::Retryable,
            "rate_limited",
        );
    }
    assert_eq!(fake.requests().len(), 12);
}

#[test]
fn every_provider_retries_when_nothing_listens() {
    let url = closed_port_url();
    for provider in all_providers(&url) {
        let started = Instant::now();
        assert_failure(provider.send(&sms(None)), Disposition::Retryable, "network");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{}",
            provider.name()
        );
    }
}

#[test]
fn every_provider_refuses_email_for_good() {
    let fake = FakeHttp::start(|_| Reply::empty(500));
    let email = Outgoing::Email(crier::delivery::EmailOut {
        message_id: "msg_0002",
        to: "a@example.com",
        from: "crier <crier@localhost>",
        subject: "s",
        text: Some("t"),
        html: None,
        list_unsubscribe: None,
        dkim: None,
    });
    for provider in all_providers(&fake.url()) {
        assert_failure(
            provider.send(&email),
            Disposition::Final,
            "unsupported_channel",
        );
    }
    assert!(fake.requests().is_empty());
}
