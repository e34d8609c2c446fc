//! Stripe Checkout Sessions, the fallback payment path.
//!
//! Checkout: `POST {base_url}/v1/checkout/sessions`, HTTP Basic auth (secret key, empty
//! password), our idempotency key as `Idempotency-Key`, form-encoded: one `price_data` line item
//! (lower-case currency, `unit_amount` in minor units, the description as product name),
//! `client_reference_id` = our session id, `metadata[session_id|workspace_id|kind|plan_code]`,
//! and the same session and workspace ids in `payment_intent_data[metadata]` so the payment's
//! charge (and so its `charge.refunded` event) carries them too.
//!
//! Amounts: crier's minor unit is Stripe's smallest unit for every currency `money.rs` knows
//! (Stripe's zero-decimal list is the same as crier's exponent-0 list; Stripe's special cases,
//! ISK, HUF, TWD, are not currencies crier takes), so `unit_amount` is `amount_minor` as it is.
//! Stripe wants three-decimal amounts (BHD, KWD, …) to end in 0; it refuses others itself.
//!
//! Expiry: Stripe's `expires_at` must lie 30 minutes to 24 hours after creation. crier sends the
//! session's own expiry, clamped into that window; the lower bound has a minute of slack
//! (`EXPIRY_SLACK_SECS`) for the time the request takes, so with a session lifetime of exactly
//! 30 minutes the Stripe checkout outlives the session by about a minute.
//!
//! Errors: Stripe answers `{"error": {"type", "code", "message", "param"}}`. A refusal about the
//! currency (`param` naming a currency, or `currency_not_supported`) is `unsupported_currency`
//! and one about Stripe's amount limits (`amount_too_small`, `amount_too_large`) is
//! `unsupported_amount`, both worth the next provider; other 4xx refusals keep Stripe's code.
//!
//! Verification: `GET {base_url}/v1/checkout/sessions/{cs_…}`. `payment_status` `paid` or
//! `no_payment_required` → succeeded; `status` `expired` → expired; anything else (open, or
//! complete but unpaid while a delayed method settles) → pending.
//!
//! Webhooks: `Stripe-Signature: t=…,v1=…[,v1=…][,v0=…]`; the expected `v1` is
//! hex(HMAC-SHA256(signing secret, "{t}.{raw body}")), any `v1` may match (a rolled secret signs
//! twice), every other scheme is ignored. The timestamp must be within the tolerance of now in
//! **both** directions: Stripe's own libraries reject only old timestamps, but a timestamp far in
//! the future is not one Stripe wrote, and accepting it would let a captured request be replayed
//! for longer. Events: the four `checkout.session.*` outcomes, and `charge.refunded`, which
//! crier links to a session through the charge's `metadata.session_id` (its provider reference is
//! the PaymentIntent `pi_…`, not the `cs_…` the session holds). Other event types are read as
//! `Pending` and ignored by the caller.

use crate::money::Currency;
use crate::outbound::{self, HttpClient, Payload};
use crate::payments::adapter;
use crate::payments::provider::{
    Checkout, CheckoutRequest, PaymentLookup, PaymentProvider, PaymentStatus, ProviderError,
    ProviderName, SignatureVerdict, Verification, WebhookEvent, WebhookRequest,
};
use crate::payments::settings::StripeSettings;
use crate::secrets::constant_time_eq;
use serde_json::Value;

const PROVIDER: &str = "Stripe";

/// Stripe's shortest checkout lifetime.
const MIN_EXPIRY_SECS: i64 = 30 * 60;
/// Stripe's longest checkout lifetime.
const MAX_EXPIRY_SECS: i64 = 24 * 60 * 60;
/// Added to the shortest lifetime, for the time between our "now" and Stripe's.
const EXPIRY_SLACK_SECS: i64 = 60;

/// Payments through Stripe Checkout.
pub struct StripeProvider {
    settings: StripeSettings,
    http: HttpClient,
}

impl StripeProvider {
    /// The adapter for `settings`, calling out through the shared `http` client.
    pub fn new(settings: &StripeSettings, http: HttpClient) -> StripeProvider {
        StripeProvider {
            settings: settings.clone(),
            http,
        }
    }

    /// Values that must never appear in an error message.
    fn sensitive(&self) -> Vec<&str> {
        [&self.settings.secret_key, &self.settings.webhook_secret]
            .into_iter()
            .flatten()
            .map(crate::config::Secret::expose)
            .collect()
    }
}

/// `expires_at` clamped into Stripe's window (30 minutes + slack to 24 hours from now).
fn stripe_expires_at(expires_at_unix: i64, now_unix: i64) -> i64 {
    expires_at_unix
        .max(now_unix.saturating_add(MIN_EXPIRY_SECS + EXPIRY_SLACK_SECS))
        .min(now_unix.saturating_add(MAX_EXPIRY_SECS))
}

/// The `POST /v1/checkout/sessions` form, in order.
fn checkout_form(request: &CheckoutRequest<'_>) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("mode", "payment".to_owned()),
        (
            "line_items[0][price_data][currency]",
            request.amount.currency.to_ascii_lowercase(),
        ),
        (
            "line_items[0][price_data][unit_amount]",
            request.amount.amount_minor.to_string(),
        ),
        (
            "line_items[0][price_data][product_data][name]",
            request.description.to_owned(),
        ),
        ("line_items[0][quantity]", "1".to_owned()),
        ("success_url", request.return_url.to_owned()),
        ("cancel_url", request.cancel_url.to_owned()),
        ("client_reference_id", request.session_id.to_owned()),
        ("customer_email", request.customer_email.to_owned()),
        ("metadata[session_id]", request.session_id.to_owned()),
        ("metadata[workspace_id]", request.workspace_id.to_owned()),
        ("metadata[kind]", request.kind.to_owned()),
    ];
    if let Some(plan_code) = request.plan_code {
        fields.push(("metadata[plan_code]", plan_code.to_owned()));
    }
    fields.extend([
        (
            "payment_intent_data[metadata][session_id]",
            request.session_id.to_owned(),
        ),
        (
            "payment_intent_data[metadata][workspace_id]",
            request.workspace_id.to_owned(),
        ),
        (
            "expires_at",
            stripe_expires_at(request.expires_at_unix, request.now_unix).to_string(),
        ),
    ]);
    fields
}

/// A Stripe object id (`cs_…`): letters, digits and underscores only, so it can go into a URL
/// path as it is.
fn is_object_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// A non-2xx answer, read from Stripe's error object.
fn stripe_error(status: u16, json: Option<&Value>, sensitive: &[&str]) -> ProviderError {
    let error = json.and_then(|json| json.get("error"));
    let field = |name: &str| error.and_then(|error| adapter::str_field(error, name));
    let code = field("code").filter(|code| !code.is_empty());
    let param = field("param").unwrap_or("");
    let detail = field("message");
    if status == 400 {
        let problem = if code == Some("currency_not_supported")
            || param == "currency"
            || param.ends_with("[currency]")
        {
            Some("unsupported_currency")
        } else if matches!(code, Some("amount_too_small" | "amount_too_large")) {
            Some("unsupported_amount")
        } else {
            None
        };
        if let Some(problem) = problem {
            return ProviderError {
                try_next: true,
                code: problem.to_owned(),
                message: adapter::message(PROVIDER, status, detail, sensitive),
            };
        }
    }
    let mut refused = adapter::refused(PROVIDER, status, detail, sensitive);
    if !refused.try_next
        && let Some(code) = code
    {
        refused.code = code.chars().take(64).collect();
    }
    refused
}

/// The verification facts in a Checkout Session object.
fn verification_from(session: &Value) -> Verification {
    let status = adapter::str_field(session, "status").unwrap_or("");
    let payment_status = adapter::str_field(session, "payment_status").unwrap_or("");
    let normalised = if matches!(payment_status, "paid" | "no_payment_required") {
        PaymentStatus::Succeeded
    } else if status == "expired" {
        PaymentStatus::Expired
    } else {
        PaymentStatus::Pending
    };
    Verification {
        status: normalised,
        raw_status: format!("{status}/{payment_status}"),
        reference: adapter::text(session, "client_reference_id"),
        amount_minor: session.get("amount_total").and_then(Value::as_i64),
        currency: adapter::str_field(session, "currency").map(str::to_ascii_uppercase),
        provider_reference: adapter::text(session, "id"),
    }
}

/// The signature check on the raw request, with the signing `secret` and `tolerance` seconds.
fn check_webhook(secret: &str, tolerance: i64, request: &WebhookRequest<'_>) -> SignatureVerdict {
    let invalid = |reason: &str| SignatureVerdict::Invalid(reason.to_owned());
    let Some(header) = request.header("Stripe-Signature") else {
        return invalid("no Stripe-Signature header");
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(',') {
        let Some((scheme, value)) = element.trim().split_once('=') else {
            continue;
        };
        match scheme {
            "t" => timestamp = Some(value),
            "v1" => signatures.push(value),
            // v0 (test mode's fake scheme) and anything else: ignored, so no downgrade.
            _ => {}
        }
    }
    let Some(timestamp_text) = timestamp else {
        return invalid("no timestamp in Stripe-Signature");
    };
    let Ok(timestamp) = timestamp_text.parse::<i64>() else {
        return invalid("the Stripe-Signature timestamp is not an integer");
    };
    if signatures.is_empty() {
        return invalid("no v1 signature in Stripe-Signature");
    }
    let mut signed = format!("{timestamp_text}.").into_bytes();
    signed.extend_from_slice(request.body);
    let expected = outbound::hmac_sha256_hex(secret.as_bytes(), &signed);
    let matched = signatures.iter().fold(false, |matched, signature| {
        constant_time_eq(signature.as_bytes(), expected.as_bytes()) | matched
    });
    if !matched {
        return invalid("no v1 signature matches");
    }
    if request.now_unix.saturating_sub(timestamp) > tolerance {
        return invalid("the Stripe-Signature timestamp is too old");
    }
    if timestamp.saturating_sub(request.now_unix) > tolerance {
        return invalid("the Stripe-Signature timestamp is in the future");
    }
    SignatureVerdict::Valid
}

/// Reads an event body.
fn parse_stripe_event(body: &[u8]) -> Result<WebhookEvent, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| "the webhook body is not JSON".to_owned())?;
    let id = adapter::str_field(&json, "id")
        .filter(|id| !id.is_empty())
        .ok_or("the event has no id")?;
    let event_type = adapter::str_field(&json, "type")
        .filter(|kind| !kind.is_empty())
        .ok_or("the event has no type")?;
    let object = json
        .get("data")
        .and_then(|data| data.get("object"))
        .filter(|object| object.is_object());
    let metadata_session = |object: &Value| {
        object
            .get("metadata")
            .and_then(|metadata| adapter::text(metadata, "session_id"))
    };
    let mut event = WebhookEvent {
        event_id: id.to_owned(),
        event_type: event_type.to_owned(),
        session_id: None,
        provider_reference: None,
        status: PaymentStatus::Pending,
        refunded_minor: None,
    };
    let session_status = match event_type {
        "checkout.session.completed" => Some(None),
        "checkout.session.async_payment_succeeded" => Some(Some(PaymentStatus::Succeeded)),
        "checkout.session.async_payment_failed" => Some(Some(PaymentStatus::Failed)),
        "checkout.session.expired" => Some(Some(PaymentStatus::Expired)),
        _ => None,
    };
    if let Some(status) = session_status {
        let object = object.ok_or("the event has no data.object")?;
        event.status =
            status.unwrap_or_else(|| match adapter::str_field(object, "payment_status") {
                Some("paid" | "no_payment_required") => PaymentStatus::Succeeded,
                _ => PaymentStatus::Pending,
            });
        event.session_id =
            adapter::text(object, "client_reference_id").or_else(|| metadata_session(object));
        event.provider_reference = adapter::text(object, "id");
    } else if event_type == "charge.refunded" {
        let object = object.ok_or("the event has no data.object")?;
        event.status = PaymentStatus::Refunded;
        event.refunded_minor = object.get("amount_refunded").and_then(Value::as_i64);
        event.session_id = metadata_session(object);
        event.provider_reference = adapter::text(object, "payment_intent");
    }
    Ok(event)
}

impl PaymentProvider for StripeProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Stripe
    }

    fn create_checkout(&self, request: &CheckoutRequest<'_>) -> Result<Checkout, ProviderError> {
        let secret = adapter::configured(self.settings.secret_key.as_ref())
            .ok_or_else(|| adapter::not_configured(PROVIDER))?;
        let currency = request.amount.currency.as_str();
        if Currency::parse(currency).is_none() {
            return Err(adapter::unsupported_currency(PROVIDER, currency));
        }
        let fields = checkout_form(request);
        let form = fields
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let authorization = outbound::basic_auth(secret, "");
        let reply = self
            .http
            .post(
                &outbound::join_url(&self.settings.base_url, "v1/checkout/sessions"),
                &[],
                &[
                    ("Authorization", &authorization),
                    ("Idempotency-Key", request.idempotency_key),
                ],
                Payload::Form(form),
            )
            .map_err(adapter::transport)?;
        let json = reply.json();
        if !reply.is_success() {
            return Err(stripe_error(reply.status, json.as_ref(), &self.sensitive()));
        }
        let created = json.as_ref().and_then(|json| {
            let id = adapter::str_field(json, "id").filter(|id| !id.is_empty())?;
            let url = adapter::str_field(json, "url").filter(|url| !url.is_empty())?;
            let status = adapter::str_field(json, "status").unwrap_or("open");
            Some(Checkout {
                provider_reference: Some(id.to_owned()),
                checkout_url: url.to_owned(),
                raw_status: status.to_owned(),
            })
        });
        created.ok_or_else(|| adapter::bad_response(PROVIDER, reply.status, "a session id and url"))
    }

    fn verify(&self, lookup: &PaymentLookup<'_>) -> Result<Verification, ProviderError> {
        let Some(reference) = lookup.provider_reference else {
            // No checkout session was created, so there is nothing Stripe could say.
            return Ok(Verification {
                status: PaymentStatus::Pending,
                raw_status: "unknown".to_owned(),
                reference: None,
                amount_minor: None,
                currency: None,
                provider_reference: None,
            });
        };
        let secret = adapter::configured(self.settings.secret_key.as_ref())
            .ok_or_else(|| adapter::not_configured(PROVIDER))?;
        if !is_object_id(reference) {
            return Err(ProviderError {
                try_next: false,
                code: "bad_reference".to_owned(),
                message: "the Stripe checkout session id has unexpected characters".to_owned(),
            });
        }
        let authorization = outbound::basic_auth(secret, "");
        let reply = self
            .http
            .get(
                &outbound::join_url(
                    &self.settings.base_url,
                    &format!("v1/checkout/sessions/{reference}"),
                ),
                &[],
                &[("Authorization", &authorization)],
            )
            .map_err(adapter::transport)?;
        let json = reply.json();
        if !reply.is_success() {
            return Err(stripe_error(reply.status, json.as_ref(), &self.sensitive()));
        }
        json.as_ref()
            .filter(|json| json.is_object() && adapter::str_field(json, "id").is_some())
            .map(verification_from)
            .ok_or_else(|| adapter::bad_response(PROVIDER, reply.status, "the checkout session"))
    }

    fn check_signature(&self, request: &WebhookRequest<'_>) -> SignatureVerdict {
        let Some(secret) = adapter::configured(self.settings.webhook_secret.as_ref()) else {
            return SignatureVerdict::Invalid("not configured".to_owned());
        };
        let tolerance =
            i64::try_from(self.settings.webhook_tolerance.as_secs()).unwrap_or(i64::MAX);
        check_webhook(secret, tolerance, request)
    }

    fn parse_event(&self, body: &[u8]) -> Result<WebhookEvent, String> {
        parse_stripe_event(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use serde_json::json;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        outbound::hmac_sha256_hex(secret.as_bytes(), &signed)
    }

    fn verdict(header: Option<&str>, body: &[u8]) -> SignatureVerdict {
        let headers: Vec<(String, String)> = header
            .map(|value| vec![("stripe-signature".to_owned(), value.to_owned())])
            .unwrap_or_default();
        check_webhook(
            SECRET,
            300,
            &WebhookRequest {
                headers: &headers,
                body,
                now_unix: NOW,
            },
        )
    }

    fn invalid(verdict: &SignatureVerdict) -> bool {
        matches!(verdict, SignatureVerdict::Invalid(_))
    }

    #[test]
    fn a_valid_signature_passes() {
        let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
        assert_eq!(verdict(Some(&header), BODY), SignatureVerdict::Valid);
        // Within the tolerance either way.
        let old = NOW - 300;
        let header = format!("t={old},v1={}", sign(SECRET, old, BODY));
        assert_eq!(verdict(Some(&header), BODY), SignatureVerdict::Valid);
    }

    #[test]
    fn a_tampered_body_or_wrong_secret_fails() {
        let header = format!("t={NOW},v1={}", sign(SECRET, NOW, BODY));
        assert!(invalid(&verdict(Some(&header), br#"{"id":"evt_2"}"#)));
        let header = format!("t={NOW},v1={}", sign("whsec_other", NOW, BODY));
        assert_eq!(
            verdict(Some(&header), BODY),
            SignatureVerdict::Invalid("no v1 signature matches".to_owned())
        );
        // The timestamp is part of what is signed.
        let header = format!("t={},v1={}", NOW + 1, sign(SECRET, NOW, BODY));
        assert!(invalid(&verdict(Some(&header), BODY)));
    }

    #[test]
    fn timestamps_out_of_tolerance_fail() {
        let old = NOW - 301;
        let header = format!("t={old},v1={}", sign(SECRET, old, BODY));
        assert_eq!(
            verdict(Some(&header), BODY),
            SignatureVerdict::Invalid("the Stripe-Signature timestamp is too old".to_owned())
        );
        let future = NOW + 301;
        let header = format!("t={future},v1={}", sign(SECRET, future, BODY));
        assert_eq!(
            verdict(Some(&header), BODY),
            SignatureVerdict::Invalid("the Stripe-Signature timestamp is in the future".to_owned())
        );
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let good = sign(SECRET, NOW, BODY);
        let other = sign("whsec_old", NOW, BODY);
        let header = format!("t={NOW},v1={other},v1={good},v0={other}");
        assert_eq!(verdict(Some(&header), BODY), SignatureVerdict::Valid);
        let v0_only = format!("t={NOW},v0={good}");
        assert_eq!(
            verdict(Some(&v0_only), BODY),
            SignatureVerdict::Invalid("no v1 signature in Stripe-Signature".to_owned())
        );
        // A good value under another scheme name does not count either.
        let v2 = format!("t={NOW},v2={good},v1={other}");
        assert!(invalid(&verdict(Some(&v2), BODY)));
    }

    #[test]
    fn malformed_headers_fail() {
        let good = sign(SECRET, NOW, BODY);
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={good}"),
            format!("t=soon,v1={good}"),
            format!("t={NOW}"),
            format!("t={NOW};v1={good}"),
        ] {
            assert!(invalid(&verdict(Some(&header), BODY)), "{header:?}");
        }
        assert_eq!(
            verdict(None, BODY),
            SignatureVerdict::Invalid("no Stripe-Signature header".to_owned())
        );
    }

    #[test]
    fn expiry_is_clamped_into_stripes_window() {
        assert_eq!(stripe_expires_at(NOW + 3600, NOW), NOW + 3600);
        assert_eq!(stripe_expires_at(NOW + 1800, NOW), NOW + 1860);
        assert_eq!(stripe_expires_at(NOW + 10, NOW), NOW + 1860);
        assert_eq!(stripe_expires_at(NOW + 3 * 86_400, NOW), NOW + 86_400);
    }

    #[test]
    fn checkout_form_has_every_field() {
        let amount = Money::new(5000, "XAF");
        let request = CheckoutRequest {
            session_id: "pay_1",
            idempotency_key: "idem_1",
            workspace_id: "wsp_1",
            kind: "topup",
            plan_code: None,
            amount: &amount,
            description: "Wallet top-up",
            customer_email: "a@b.c",
            return_url: "https://crier.example/billing/return?session=pay_1",
            cancel_url: "https://crier.example/billing/return?session=pay_1&cancelled=1",
            expires_at_unix: NOW + 3600,
            now_unix: NOW,
        };
        let form = checkout_form(&request);
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(field("mode"), Some("payment"));
        assert_eq!(field("line_items[0][price_data][currency]"), Some("xaf"));
        assert_eq!(
            field("line_items[0][price_data][unit_amount]"),
            Some("5000")
        );
        assert_eq!(field("client_reference_id"), Some("pay_1"));
        assert_eq!(
            field("payment_intent_data[metadata][session_id]"),
            Some("pay_1")
        );
        assert_eq!(field("expires_at"), Some((NOW + 3600).to_string().as_str()));
        assert_eq!(field("metadata[plan_code]"), None);
        let plan = CheckoutRequest {
            plan_code: Some("growth"),
            ..request
        };
        let form = checkout_form(&plan);
        assert!(form.contains(&("metadata[plan_code]", "growth".to_owned())));
    }

    #[test]
    fn errors_are_classified() {
        let currency = json!({"error": {"type": "invalid_request_error",
            "message": "Invalid currency: zzz.", "param": "line_items[0][price_data][currency]"}});
        let error = stripe_error(400, Some(&currency), &[]);
        assert_eq!(
            (error.try_next, error.code.as_str()),
            (true, "unsupported_currency")
        );
        let small = json!({"error": {"type": "invalid_request_error", "code": "amount_too_small",
            "message": "Amount must be at least 50 cents"}});
        let error = stripe_error(400, Some(&small), &[]);
        assert_eq!(
            (error.try_next, error.code.as_str()),
            (true, "unsupported_amount")
        );
        let missing = json!({"error": {"type": "invalid_request_error",
            "code": "parameter_missing", "message": "Missing sk_live_abcd param"}});
        let error = stripe_error(400, Some(&missing), &["sk_live_abcd"]);
        assert_eq!(
            (error.try_next, error.code.as_str()),
            (false, "parameter_missing")
        );
        assert!(!error.message.contains("sk_live_abcd"));
        let error = stripe_error(400, None, &[]);
        assert_eq!((error.try_next, error.code.as_str()), (false, "http_400"));
        let error = stripe_error(500, Some(&missing), &[]);
        assert_eq!((error.try_next, error.code.as_str()), (true, "http_500"));
        let error = stripe_error(429, None, &[]);
        assert_eq!(
            (error.try_next, error.code.as_str()),
            (true, "rate_limited")
        );
        let error = stripe_error(401, None, &[]);
        assert_eq!(
            (error.try_next, error.code.as_str()),
            (true, "unauthorized")
        );
    }

    #[test]
    fn sessions_verify() {
        let table = [
            ("complete", "paid", PaymentStatus::Succeeded),
            ("complete", "no_payment_required", PaymentStatus::Succeeded),
            ("complete", "unpaid", PaymentStatus::Pending),
            ("open", "unpaid", PaymentStatus::Pending),
            ("expired", "unpaid", PaymentStatus::Expired),
        ];
        for (status, payment_status, expected) in table {
            let session = json!({"id": "cs_1", "status": status, "payment_status": payment_status,
                                 "amount_total": 5000, "currency": "xaf",
                                 "client_reference_id": "pay_1"});
            let verification = verification_from(&session);
            assert_eq!(verification.status, expected, "{status}/{payment_status}");
            assert_eq!(
                verification.raw_status,
                format!("{status}/{payment_status}")
            );
            assert_eq!(verification.amount_minor, Some(5000));
            assert_eq!(verification.currency.as_deref(), Some("XAF"));
            assert_eq!(verification.reference.as_deref(), Some("pay_1"));
            assert_eq!(verification.provider_reference.as_deref(), Some("cs_1"));
        }
        assert!(is_object_id("cs_test_a1B2"));
        assert!(!is_object_id("cs_1/../../v1/balance"));
        assert!(!is_object_id(""));
    }

    fn event(kind: &str, object: Value) -> WebhookEvent {
        let body = json!({"id": "evt_9", "type": kind, "data": {"object": object}});
        parse_stripe_event(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn session_events_parse() {
        let session = |payment_status: &str| {
            json!({"id": "cs_1", "object": "checkout.session", "client_reference_id": "pay_1",
                   "payment_status": payment_status, "metadata": {"session_id": "pay_meta"}})
        };
        let table = [
            (
                "checkout.session.completed",
                "paid",
                PaymentStatus::Succeeded,
            ),
            (
                "checkout.session.completed",
                "no_payment_required",
                PaymentStatus::Succeeded,
            ),
            (
                "checkout.session.completed",
                "unpaid",
                PaymentStatus::Pending,
            ),
            (
                "checkout.session.async_payment_succeeded",
                "paid",
                PaymentStatus::Succeeded,
            ),
            (
                "checkout.session.async_payment_failed",
                "unpaid",
                PaymentStatus::Failed,
            ),
            ("checkout.session.expired", "unpaid", PaymentStatus::Expired),
        ];
        for (kind, payment_status, status) in table {
            assert_eq!(
                event(kind, session(payment_status)),
                WebhookEvent {
                    event_id: "evt_9".to_owned(),
                    event_type: kind.to_owned(),
                    session_id: Some("pay_1".to_owned()),
                    provider_reference: Some("cs_1".to_owned()),
                    status,
                    refunded_minor: None,
                },
                "{kind} {payment_status}"
            );
        }
        // Without client_reference_id, the metadata says whose it is.
        let bare = json!({"id": "cs_2", "payment_status": "paid",
                          "metadata": {"session_id": "pay_2"}});
        assert_eq!(
            event("checkout.session.completed", bare)
                .session_id
                .as_deref(),
            Some("pay_2")
        );
    }

    #[test]
    fn refunds_and_other_events_parse() {
        let charge = json!({"id": "ch_1", "object": "charge", "amount": 5000,
                            "amount_refunded": 2000, "payment_intent": "pi_1",
                            "metadata": {"session_id": "pay_1", "workspace_id": "wsp_1"}});
        assert_eq!(
            event("charge.refunded", charge),
            WebhookEvent {
                event_id: "evt_9".to_owned(),
                event_type: "charge.refunded".to_owned(),
                session_id: Some("pay_1".to_owned()),
                provider_reference: Some("pi_1".to_owned()),
                status: PaymentStatus::Refunded,
                refunded_minor: Some(2000),
            }
        );
        let other = event("customer.created", json!({"id": "cus_1"}));
        assert_eq!(other.status, PaymentStatus::Pending);
        assert_eq!(other.session_id, None);
        assert_eq!(other.provider_reference, None);
        for bad in [
            &br#"{"type": "checkout.session.completed"}"#[..],
            br#"{"id": "evt_1"}"#,
            br#"{"id": "evt_1", "type": "checkout.session.completed"}"#,
            b"[]",
            b"not json",
        ] {
            assert!(parse_stripe_event(bad).is_err());
        }
    }
}
