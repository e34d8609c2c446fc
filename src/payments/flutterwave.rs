//! Flutterwave v3: Standard hosted checkout, transaction verification, webhooks.
//!
//! Checkout: `POST {base_url}/v3/payments`, `Authorization: Bearer {secret key}`, JSON with
//! `tx_ref` (our session id), `amount` in **major** units, `currency`, `redirect_url`,
//! `customer.email`, `customizations`, `meta` and `session_duration` (minutes, 1–1440). The
//! answer's `data.link` is where the payer goes; Flutterwave gives no id of its own until the
//! payer pays, so the checkout has no provider reference.
//!
//! Currencies: only those Flutterwave collects and crier knows (`SUPPORTED_CURRENCIES`: XAF, XOF,
//! NGN, GHS, KES, UGX, TZS, RWF, ZAR, USD, EUR, GBP); any other is `unsupported_currency` so the
//! next provider is tried.
//!
//! Amounts: crier holds integer minor units; Flutterwave speaks major units as JSON numbers.
//! Out, `major_units` writes the exact decimal (5000 XAF → `5000`, 1050 USD cents → `10.5`) and
//! refuses an amount a JSON number would not carry exactly. In, `minor_units` reads the number's
//! decimal text (never a float multiplication): integer digits, then the fraction padded or
//! **truncated** to the currency's exponent. Truncating can only make a payment look smaller than
//! it was, so the caller's "paid ≥ expected" check stays conservative.
//!
//! Verification: `GET {base_url}/v3/transactions/{id}/verify` when the Flutterwave transaction id
//! is known (digits only; anything else is not trusted into a URL path), else
//! `GET {base_url}/v3/transactions/verify_by_reference?tx_ref={session id}`. "Not found" (HTTP
//! 404, or Flutterwave's "No transaction was found" message) means the payer has not paid yet:
//! `Pending`, not an error. The adapter reports facts (status, reference, amount, currency); the
//! caller compares them with the session.
//!
//! Webhooks: the dashboard's secret hash comes back verbatim in `verif-hash` (v3), or keys
//! `flutterwave-signature` = base64(HMAC-SHA256(hash, raw body)) (v4); either is accepted,
//! compared in constant time. Only the v3 event shape is read (`{"event": "charge.completed",
//! "data": {"id", "tx_ref", "status", …}}`); the older top-level shape is not. A v3 event has no
//! id of its own, so its id is `{event}:{data.id}:{data.status}`: a later status of the same
//! transaction is a different event, while a redelivery of the same one is a duplicate. Event
//! statuses are only hints: crier verifies before giving value.

use base64::Engine as _;
use serde_json::{Number, Value, json};

use crate::money::Currency;
use crate::outbound::{self, HttpClient, Payload};
use crate::payments::adapter;
use crate::payments::provider::{
    Checkout, CheckoutRequest, PaymentLookup, PaymentProvider, PaymentStatus, ProviderError,
    ProviderName, SignatureVerdict, Verification, WebhookEvent, WebhookRequest,
};
use crate::payments::settings::FlutterwaveSettings;
use crate::secrets::constant_time_eq;

const PROVIDER: &str = "Flutterwave";

/// The currencies crier sends to Flutterwave (upper-case ISO 4217).
pub const SUPPORTED_CURRENCIES: &[&str] = &[
    "XAF", "XOF", "NGN", "GHS", "KES", "UGX", "TZS", "RWF", "ZAR", "USD", "EUR", "GBP",
];

/// Flutterwave's upper bound for `session_duration`, in minutes.
const MAX_SESSION_MINUTES: i64 = 1440;

/// Payments through Flutterwave v3.
pub struct FlutterwaveProvider {
    settings: FlutterwaveSettings,
    http: HttpClient,
}

impl FlutterwaveProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &FlutterwaveSettings, http: HttpClient) -> FlutterwaveProvider {
        FlutterwaveProvider {
            settings: settings.clone(),
            http,
        }
    }

    /// Values that must never appear in an error message.
    fn sensitive(&self) -> Vec<&str> {
        [&self.settings.secret_key, &self.settings.webhook_hash]
            .into_iter()
            .flatten()
            .map(crate::config::Secret::expose)
            .collect()
    }
}

/// `amount_minor` in major units as an exact JSON number: an integer when there is no fraction
/// (5000 XAF → `5000`, 5000 USD cents → `50`), else the shortest exact decimal (1050 → `10.5`).
/// `None` for a negative amount, or one a JSON number cannot carry exactly.
pub fn major_units(amount_minor: i64, exponent: u32) -> Option<Number> {
    if amount_minor < 0 {
        return None;
    }
    let scale = 10_i64.checked_pow(exponent)?;
    let (whole, fraction) = (amount_minor / scale, amount_minor % scale);
    if fraction == 0 {
        return Some(Number::from(whole));
    }
    let fraction = format!("{fraction:0width$}", width = exponent as usize);
    let text = format!("{whole}.{}", fraction.trim_end_matches('0'));
    let number: Number = serde_json::from_str(&text).ok()?;
    // Without serde_json's arbitrary precision a fractional number is an f64: keep it only if
    // it writes back as exactly this decimal.
    (number.to_string() == text).then_some(number)
}

/// A non-negative decimal amount in major units (`5000`, `12.5`, `0.1`, `1e3`, as a JSON number
/// writes or a string holds) in minor units, exactly: the digits past the currency's exponent are
/// dropped (truncation). `None` when it is not such a number or does not fit in an `i64`.
pub fn minor_units(major: &str, exponent: u32) -> Option<i64> {
    let text = major.trim();
    let (mantissa, exp10) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    // How many of `digits` lie before the point once the amount is in minor units.
    let point = i64::try_from(whole.len())
        .ok()?
        .checked_add(exp10)?
        .checked_add(i64::from(exponent))?;
    if point <= 0 {
        return Some(0);
    }
    let point = usize::try_from(point).ok()?;
    let kept = if point <= digits.len() {
        digits[..point].to_owned()
    } else {
        // Anything this long overflows an i64 anyway; refuse before padding a huge string.
        if point - digits.len() > 20 {
            return None;
        }
        format!("{digits}{}", "0".repeat(point - digits.len()))
    };
    let kept = kept.trim_start_matches('0');
    if kept.is_empty() {
        return Some(0);
    }
    kept.parse::<i64>().ok()
}

/// `value[field]` as decimal text: a JSON number as serde_json writes it, or a string.
fn amount_text(value: &Value, field: &str) -> Option<String> {
    match value.get(field)? {
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// Flutterwave's transaction status words, normalised. Unknown words are `Pending`: nothing is
/// given or taken on a word we do not understand.
fn status_of(raw: &str) -> PaymentStatus {
    match raw.to_ascii_lowercase().as_str() {
        "successful" => PaymentStatus::Succeeded,
        "failed" => PaymentStatus::Failed,
        "cancelled" | "canceled" => PaymentStatus::Cancelled,
        _ => PaymentStatus::Pending,
    }
}

/// The exponent of `currency` if Flutterwave takes it.
fn supported_exponent(currency: &str) -> Option<u32> {
    if !SUPPORTED_CURRENCIES.contains(&currency) {
        return None;
    }
    Currency::parse(currency).map(|currency| currency.exponent)
}

/// Whole minutes from now to `expires_at` (never past it), within Flutterwave's 1–1440.
fn session_minutes(expires_at_unix: i64, now_unix: i64) -> i64 {
    (expires_at_unix.saturating_sub(now_unix) / 60).clamp(1, MAX_SESSION_MINUTES)
}

/// The `POST /v3/payments` body. `Err` when the amount cannot be written exactly.
fn checkout_body(request: &CheckoutRequest<'_>, exponent: u32) -> Result<Value, ProviderError> {
    let amount =
        major_units(request.amount.amount_minor, exponent).ok_or_else(|| ProviderError {
            try_next: false,
            code: "invalid_amount".to_owned(),
            message: format!(
                "{} minor units of {} cannot be sent to Flutterwave exactly",
                request.amount.amount_minor, request.amount.currency
            ),
        })?;
    let mut meta = json!({
        "workspace_id": request.workspace_id,
        "session_id": request.session_id,
        "kind": request.kind,
    });
    if let (Some(plan_code), Some(meta)) = (request.plan_code, meta.as_object_mut()) {
        meta.insert("plan_code".to_owned(), Value::from(plan_code));
    }
    Ok(json!({
        "tx_ref": request.session_id,
        "amount": amount,
        "currency": request.amount.currency,
        "redirect_url": request.return_url,
        "customer": {"email": request.customer_email},
        "customizations": {"title": "crier", "description": request.description},
        "meta": meta,
        "session_duration": session_minutes(request.expires_at_unix, request.now_unix),
    }))
}

/// A Flutterwave transaction id: digits only, so it can go into a URL path as it is.
fn is_transaction_id(reference: &str) -> bool {
    !reference.is_empty() && reference.len() <= 20 && reference.bytes().all(|b| b.is_ascii_digit())
}

/// The verification facts in a transaction object (`data` of a verify answer).
fn verification_from(data: &Value) -> Verification {
    let raw_status = adapter::str_field(data, "status").unwrap_or("").to_owned();
    let currency = adapter::str_field(data, "currency").map(str::to_ascii_uppercase);
    let amount_minor = currency
        .as_deref()
        .and_then(Currency::parse)
        .zip(amount_text(data, "amount"))
        .and_then(|(currency, amount)| minor_units(&amount, currency.exponent));
    Verification {
        status: status_of(&raw_status),
        raw_status,
        reference: adapter::text(data, "tx_ref"),
        amount_minor,
        currency,
        provider_reference: adapter::text(data, "id"),
    }
}

/// Flutterwave has no such transaction (yet).
fn not_found(status: u16, message: Option<&str>) -> bool {
    status == 404
        || message.is_some_and(|message| {
            message
                .to_ascii_lowercase()
                .contains("no transaction was found")
        })
}

/// Reads a v3 webhook body.
fn parse_v3_event(body: &[u8]) -> Result<WebhookEvent, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| "the webhook body is not JSON".to_owned())?;
    let event = adapter::str_field(&json, "event")
        .filter(|event| !event.is_empty())
        .ok_or("the webhook has no \"event\" (not a Flutterwave v3 event)")?;
    let data = json
        .get("data")
        .filter(|data| data.is_object())
        .ok_or("the webhook has no \"data\" object")?;
    let id = adapter::text(data, "id").ok_or("the webhook has no data.id")?;
    let raw_status = adapter::str_field(data, "status").unwrap_or("");
    let status = if event == "charge.completed" {
        status_of(raw_status)
    } else {
        PaymentStatus::Pending
    };
    Ok(WebhookEvent {
        event_id: format!("{event}:{id}:{raw_status}"),
        event_type: event.to_owned(),
        session_id: adapter::text(data, "tx_ref"),
        provider_reference: Some(id),
        status,
        refunded_minor: None,
    })
}

/// The webhook signature check on the raw request.
fn check_webhook(hash: &str, request: &WebhookRequest<'_>) -> SignatureVerdict {
    let verif_hash = request.header("verif-hash").map(str::trim);
    let signature = request.header("flutterwave-signature").map(str::trim);
    if let Some(verif_hash) = verif_hash
        && constant_time_eq(verif_hash.as_bytes(), hash.as_bytes())
    {
        return SignatureVerdict::Valid;
    }
    if let Some(signature) = signature {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, hash.as_bytes());
        let tag = ring::hmac::sign(&key, request.body);
        let expected = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        if constant_time_eq(signature.as_bytes(), expected.as_bytes()) {
            return SignatureVerdict::Valid;
        }
    }
    SignatureVerdict::Invalid(
        match (verif_hash, signature) {
            (None, None) => "no verif-hash or flutterwave-signature header",
            (Some(_), None) => "verif-hash does not match the configured hash",
            (None, Some(_)) => "flutterwave-signature does not match the body",
            (Some(_), Some(_)) => "neither verif-hash nor flutterwave-signature matches",
        }
        .to_owned(),
    )
}

impl PaymentProvider for FlutterwaveProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Flutterwave
    }

    fn create_checkout(&self, request: &CheckoutRequest<'_>) -> Result<Checkout, ProviderError> {
        let secret = adapter::configured(self.settings.secret_key.as_ref())
            .ok_or_else(|| adapter::not_configured(PROVIDER))?;
        let currency = request.amount.currency.as_str();
        let exponent = supported_exponent(currency)
            .ok_or_else(|| adapter::unsupported_currency(PROVIDER, currency))?;
        let body = checkout_body(request, exponent)?;
        let url = outbound::join_url(&self.settings.base_url, "v3/payments");
        let authorization = format!("Bearer {secret}");
        let reply = self
            .http
            .post(
                &url,
                &[],
                &[("Authorization", &authorization)],
                Payload::Json(body.to_string().into_bytes()),
            )
            .map_err(adapter::transport)?;
        let json = reply.json();
        if reply.is_success() {
            let link = json
                .as_ref()
                .filter(|json| adapter::str_field(json, "status") == Some("success"))
                .and_then(|json| json.get("data"))
                .and_then(|data| adapter::str_field(data, "link"))
                .filter(|link| !link.is_empty());
            return match link {
                Some(link) => Ok(Checkout {
                    provider_reference: None,
                    checkout_url: link.to_owned(),
                    raw_status: "link_created".to_owned(),
                }),
                None => Err(adapter::bad_response(
                    PROVIDER,
                    reply.status,
                    "a checkout link",
                )),
            };
        }
        let detail = json
            .as_ref()
            .and_then(|json| adapter::str_field(json, "message"));
        Err(adapter::refused(
            PROVIDER,
            reply.status,
            detail,
            &self.sensitive(),
        ))
    }

    fn verify(&self, lookup: &PaymentLookup<'_>) -> Result<Verification, ProviderError> {
        let secret = adapter::configured(self.settings.secret_key.as_ref())
            .ok_or_else(|| adapter::not_configured(PROVIDER))?;
        let authorization = format!("Bearer {secret}");
        let headers = [("Authorization", authorization.as_str())];
        let reply = match lookup.provider_reference.filter(|id| is_transaction_id(id)) {
            Some(id) => self.http.get(
                &outbound::join_url(
                    &self.settings.base_url,
                    &format!("v3/transactions/{id}/verify"),
                ),
                &[],
                &headers,
            ),
            None => self.http.get(
                &outbound::join_url(
                    &self.settings.base_url,
                    "v3/transactions/verify_by_reference",
                ),
                &[("tx_ref", lookup.session_id)],
                &headers,
            ),
        }
        .map_err(adapter::transport)?;
        let json = reply.json();
        let data = json
            .as_ref()
            .and_then(|json| json.get("data"))
            .filter(|data| data.is_object());
        if reply.is_success()
            && let Some(data) = data
        {
            return Ok(verification_from(data));
        }
        let detail = json
            .as_ref()
            .and_then(|json| adapter::str_field(json, "message"));
        if not_found(reply.status, detail) {
            return Ok(Verification {
                status: PaymentStatus::Pending,
                raw_status: "not_found".to_owned(),
                reference: None,
                amount_minor: None,
                currency: None,
                provider_reference: None,
            });
        }
        if reply.is_success() {
            return Err(adapter::bad_response(
                PROVIDER,
                reply.status,
                "the transaction",
            ));
        }
        Err(adapter::refused(
            PROVIDER,
            reply.status,
            detail,
            &self.sensitive(),
        ))
    }

    fn check_signature(&self, request: &WebhookRequest<'_>) -> SignatureVerdict {
        match adapter::configured(self.settings.webhook_hash.as_ref()) {
            Some(hash) => check_webhook(hash, request),
            None => SignatureVerdict::Invalid("not configured".to_owned()),
        }
    }

    fn parse_event(&self, body: &[u8]) -> Result<WebhookEvent, String> {
        parse_v3_event(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;

    #[test]
    fn minor_to_major_is_exact() {
        let table: &[(i64, u32, &str)] = &[
            (5000, 0, "5000"),
            (0, 0, "0"),
            (1050, 2, "10.5"),
            (1250, 2, "12.5"),
            (10, 2, "0.1"),
            (1, 2, "0.01"),
            (5000, 2, "50"),
            (500_000, 2, "5000"),
            (1234, 3, "1.234"),
            (1230, 3, "1.23"),
            (1000, 3, "1"),
            (5, 3, "0.005"),
        ];
        for (minor, exponent, expected) in table {
            let number = major_units(*minor, *exponent).unwrap();
            assert_eq!(number.to_string(), *expected, "{minor} e{exponent}");
        }
        // Integers stay integers on the wire.
        assert!(major_units(5000, 0).unwrap().is_i64());
        assert!(major_units(5000, 2).unwrap().is_i64());
        assert_eq!(major_units(-1, 2), None);
        // Beyond what an f64 writes back exactly.
        assert_eq!(major_units(i64::MAX, 2), None);
    }

    #[test]
    fn major_to_minor_is_exact_and_truncates() {
        let table: &[(&str, u32, Option<i64>)] = &[
            ("5000", 0, Some(5000)),
            ("5000.0", 0, Some(5000)),
            ("5000", 2, Some(500_000)),
            ("12.5", 2, Some(1250)),
            ("12.5", 0, Some(12)),
            ("0.1", 2, Some(10)),
            ("0.1", 3, Some(100)),
            ("10.5", 2, Some(1050)),
            ("1.234", 3, Some(1234)),
            ("1.2345", 3, Some(1234)),
            ("0.009", 2, Some(0)),
            ("1e3", 0, Some(1000)),
            ("1.5E2", 2, Some(15000)),
            ("1e-2", 2, Some(1)),
            ("0", 2, Some(0)),
            ("0e400", 2, Some(0)),
            (" 7 ", 0, Some(7)),
            ("-5", 0, None),
            ("", 0, None),
            (".", 0, None),
            ("abc", 0, None),
            ("1.2.3", 0, None),
            ("1e", 0, None),
            ("1e99", 0, None),
            ("99999999999999999999", 0, None),
        ];
        for (text, exponent, expected) in table {
            assert_eq!(
                minor_units(text, *exponent),
                *expected,
                "{text:?} e{exponent}"
            );
        }
        // As serde_json writes JSON numbers back.
        let value = json!({"a": 5000, "b": 12.5, "c": 0.1, "d": "250"});
        assert_eq!(
            minor_units(&amount_text(&value, "a").unwrap(), 0),
            Some(5000)
        );
        assert_eq!(
            minor_units(&amount_text(&value, "b").unwrap(), 2),
            Some(1250)
        );
        assert_eq!(minor_units(&amount_text(&value, "c").unwrap(), 2), Some(10));
        assert_eq!(
            minor_units(&amount_text(&value, "d").unwrap(), 0),
            Some(250)
        );
    }

    #[test]
    fn round_trips() {
        for exponent in 0..=3 {
            for minor in [0, 1, 7, 10, 99, 100, 1050, 123_456, 10_000_000_001] {
                let major = major_units(minor, exponent).unwrap().to_string();
                assert_eq!(minor_units(&major, exponent), Some(minor), "{major}");
            }
        }
    }

    #[test]
    fn statuses_and_currencies() {
        assert_eq!(status_of("successful"), PaymentStatus::Succeeded);
        assert_eq!(status_of("failed"), PaymentStatus::Failed);
        assert_eq!(status_of("pending"), PaymentStatus::Pending);
        assert_eq!(status_of("cancelled"), PaymentStatus::Cancelled);
        assert_eq!(status_of("something-new"), PaymentStatus::Pending);
        assert_eq!(supported_exponent("XAF"), Some(0));
        assert_eq!(supported_exponent("USD"), Some(2));
        assert_eq!(supported_exponent("JPY"), None);
        assert_eq!(supported_exponent("xaf"), None);
        for code in SUPPORTED_CURRENCIES {
            assert!(Currency::parse(code).is_some(), "{code}");
        }
    }

    #[test]
    fn session_duration_is_whole_minutes_within_bounds() {
        assert_eq!(session_minutes(1_000 + 1800, 1_000), 30);
        assert_eq!(session_minutes(1_000 + 1799, 1_000), 29);
        assert_eq!(session_minutes(1_000 + 30, 1_000), 1);
        assert_eq!(session_minutes(900, 1_000), 1);
        assert_eq!(session_minutes(1_000 + 3 * 86_400, 1_000), 1440);
    }

    #[test]
    fn checkout_body_has_every_field() {
        let amount = Money::new(1050, "USD");
        let request = CheckoutRequest {
            session_id: "pay_1",
            idempotency_key: "idem_1",
            workspace_id: "wsp_1",
            kind: "plan",
            plan_code: Some("growth"),
            amount: &amount,
            description: "Growth plan, 1 month",
            customer_email: "a@b.c",
            return_url: "https://crier.example/billing/return?session=pay_1",
            cancel_url: "https://crier.example/billing/return?session=pay_1",
            expires_at_unix: 10_000 + 1800,
            now_unix: 10_000,
        };
        let body = checkout_body(&request, 2).unwrap();
        assert_eq!(
            body,
            json!({
                "tx_ref": "pay_1",
                "amount": 10.5,
                "currency": "USD",
                "redirect_url": "https://crier.example/billing/return?session=pay_1",
                "customer": {"email": "a@b.c"},
                "customizations": {"title": "crier", "description": "Growth plan, 1 month"},
                "meta": {"workspace_id": "wsp_1", "session_id": "pay_1", "kind": "plan",
                         "plan_code": "growth"},
                "session_duration": 30,
            })
        );
        let topup = CheckoutRequest {
            plan_code: None,
            kind: "topup",
            ..request
        };
        let body = checkout_body(&topup, 2).unwrap();
        assert!(body["meta"].get("plan_code").is_none());
    }

    #[test]
    fn transaction_ids_are_digits() {
        assert!(is_transaction_id("288200108"));
        assert!(!is_transaction_id(""));
        assert!(!is_transaction_id("../../v3/balances"));
        assert!(!is_transaction_id("12a"));
    }

    #[test]
    fn verification_reads_the_transaction() {
        let data = json!({"id": 288_200_108, "tx_ref": "pay_1", "status": "successful",
                          "amount": 12.5, "currency": "usd", "charged_amount": 12.9});
        assert_eq!(
            verification_from(&data),
            Verification {
                status: PaymentStatus::Succeeded,
                raw_status: "successful".to_owned(),
                reference: Some("pay_1".to_owned()),
                amount_minor: Some(1250),
                currency: Some("USD".to_owned()),
                provider_reference: Some("288200108".to_owned()),
            }
        );
        let unknown_currency =
            json!({"id": 1, "status": "pending", "amount": 5, "currency": "ZZZ"});
        let verification = verification_from(&unknown_currency);
        assert_eq!(verification.amount_minor, None);
        assert_eq!(verification.status, PaymentStatus::Pending);
        assert!(not_found(404, None));
        assert!(not_found(400, Some("No transaction was found for this id")));
        assert!(!not_found(400, Some("Invalid authorization key")));
    }

    fn request<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> WebhookRequest<'a> {
        WebhookRequest {
            headers,
            body,
            now_unix: 0,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    const HASH: &str = "my-secret-hash";
    const BODY: &[u8] = br#"{"event":"charge.completed","data":{"id":1}}"#;

    fn v4_signature(key: &str, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, body).as_ref())
    }

    #[test]
    fn verif_hash_must_equal_the_configured_hash() {
        let ok = headers(&[("Verif-Hash", HASH)]);
        assert_eq!(
            check_webhook(HASH, &request(&ok, BODY)),
            SignatureVerdict::Valid
        );
        let wrong = headers(&[("verif-hash", "my-secret-hasH")]);
        assert!(matches!(
            check_webhook(HASH, &request(&wrong, BODY)),
            SignatureVerdict::Invalid(_)
        ));
        let prefix = headers(&[("verif-hash", "my-secret")]);
        assert!(matches!(
            check_webhook(HASH, &request(&prefix, BODY)),
            SignatureVerdict::Invalid(_)
        ));
    }

    #[test]
    fn flutterwave_signature_is_an_hmac_of_the_body() {
        let ok = headers(&[("flutterwave-signature", &v4_signature(HASH, BODY))]);
        assert_eq!(
            check_webhook(HASH, &request(&ok, BODY)),
            SignatureVerdict::Valid
        );
        // Another body, or another key.
        assert!(matches!(
            check_webhook(HASH, &request(&ok, b"{}")),
            SignatureVerdict::Invalid(_)
        ));
        let other_key = headers(&[("flutterwave-signature", &v4_signature("other", BODY))]);
        assert!(matches!(
            check_webhook(HASH, &request(&other_key, BODY)),
            SignatureVerdict::Invalid(_)
        ));
        // A wrong verif-hash does not spoil a good signature.
        let both = headers(&[
            ("verif-hash", "nope"),
            ("flutterwave-signature", &v4_signature(HASH, BODY)),
        ]);
        assert_eq!(
            check_webhook(HASH, &request(&both, BODY)),
            SignatureVerdict::Valid
        );
    }

    #[test]
    fn no_header_or_no_hash_is_invalid() {
        let none = headers(&[("content-type", "application/json")]);
        assert_eq!(
            check_webhook(HASH, &request(&none, BODY)),
            SignatureVerdict::Invalid("no verif-hash or flutterwave-signature header".to_owned())
        );
        let provider = FlutterwaveProvider::new(
            &FlutterwaveSettings {
                base_url: "http://127.0.0.1:9".to_owned(),
                secret_key: None,
                webhook_hash: None,
            },
            HttpClient::new(std::time::Duration::from_secs(1)),
        );
        let ok = headers(&[("verif-hash", HASH)]);
        assert_eq!(
            provider.check_signature(&request(&ok, BODY)),
            SignatureVerdict::Invalid("not configured".to_owned())
        );
    }

    #[test]
    fn v3_events_parse() {
        let body = json!({"event": "charge.completed", "data": {
            "id": 285_959_875, "tx_ref": "pay_1", "status": "successful",
            "amount": 5000, "currency": "XAF"}});
        let event = parse_v3_event(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            event,
            WebhookEvent {
                event_id: "charge.completed:285959875:successful".to_owned(),
                event_type: "charge.completed".to_owned(),
                session_id: Some("pay_1".to_owned()),
                provider_reference: Some("285959875".to_owned()),
                status: PaymentStatus::Succeeded,
                refunded_minor: None,
            }
        );
        for (raw, status) in [
            ("failed", PaymentStatus::Failed),
            ("pending", PaymentStatus::Pending),
            ("cancelled", PaymentStatus::Cancelled),
        ] {
            let body = json!({"event": "charge.completed",
                              "data": {"id": 1, "tx_ref": "pay_1", "status": raw}});
            let event = parse_v3_event(body.to_string().as_bytes()).unwrap();
            assert_eq!(event.status, status);
            assert_eq!(event.event_id, format!("charge.completed:1:{raw}"));
        }
        // Another event type is read but claims nothing.
        let transfer = json!({"event": "transfer.completed",
                              "data": {"id": 9, "status": "SUCCESSFUL"}});
        let event = parse_v3_event(transfer.to_string().as_bytes()).unwrap();
        assert_eq!(event.status, PaymentStatus::Pending);
        assert_eq!(event.session_id, None);
        // Not v3, or not JSON.
        for bad in [
            &br#"{"id": 1, "txRef": "pay_1", "status": "successful"}"#[..],
            br#"{"event": "charge.completed"}"#,
            br#"{"event": "charge.completed", "data": {"status": "successful"}}"#,
            b"not json",
        ] {
            assert!(parse_v3_event(bad).is_err());
        }
    }
}
