//! The payment provider adapters against `FakeHttp` speaking Flutterwave v3's and Stripe's wire
//! formats: the requests each one sends (paths, auth, units), how answers are read, and which
//! failures let the next provider try. The adapters report facts; comparing them with the
//! session is the caller's job, so a mismatching answer is passed through as it came.

use std::time::Duration;

use crier::config::Secret;
use crier::money::Money;
use crier::outbound::HttpClient;
use crier::payments::flutterwave::FlutterwaveProvider;
use crier::payments::provider::{
    CheckoutRequest, PaymentLookup, PaymentProvider, PaymentStatus, ProviderError, Verification,
};
use crier::payments::settings::{FlutterwaveSettings, StripeSettings};
use crier::payments::stripe::StripeProvider;
use serde_json::json;

use crate::fake_http::{FakeHttp, Reply, closed_port_url};

const NOW: i64 = 1_800_000_000;
const FLW_SECRET: &str = "FLWSECK_TEST-secret-key-X";
const STRIPE_SECRET: &str = "sk_test_secret_key_123";

fn http() -> HttpClient {
    HttpClient::new(Duration::from_secs(5))
}

fn flutterwave(base_url: &str, configured: bool) -> FlutterwaveProvider {
    FlutterwaveProvider::new(
        &FlutterwaveSettings {
            base_url: base_url.to_owned(),
            secret_key: configured.then(|| Secret::new(FLW_SECRET)),
            webhook_hash: Some(Secret::new("hash-123")),
        },
        http(),
    )
}

fn stripe(base_url: &str, configured: bool) -> StripeProvider {
    StripeProvider::new(
        &StripeSettings {
            base_url: base_url.to_owned(),
            secret_key: configured.then(|| Secret::new(STRIPE_SECRET)),
            webhook_secret: Some(Secret::new("whsec_123")),
            webhook_tolerance: Duration::from_secs(300),
        },
        http(),
    )
}

fn checkout<'a>(amount: &'a Money, plan_code: Option<&'a str>) -> CheckoutRequest<'a> {
    CheckoutRequest {
        session_id: "pay_0001",
        idempotency_key: "idem_pay_0001",
        workspace_id: "wsp_0001",
        kind: if plan_code.is_some() { "plan" } else { "topup" },
        plan_code,
        amount,
        description: "Wallet top-up",
        customer_email: "owner@example.com",
        return_url: "https://crier.example/billing/return?session=pay_0001",
        cancel_url: "https://crier.example/billing/return?session=pay_0001&cancelled=1",
        expires_at_unix: NOW + 3600,
        now_unix: NOW,
    }
}

fn assert_try_next(error: &ProviderError, try_next: bool, code: &str) {
    assert_eq!(
        (error.try_next, error.code.as_str()),
        (try_next, code),
        "{error:?}"
    );
    assert!(!error.message.contains(FLW_SECRET), "{error:?}");
    assert!(!error.message.contains(STRIPE_SECRET), "{error:?}");
}

fn flw_link() -> Reply {
    Reply::json(
        200,
        json!({"status": "success", "message": "Hosted Link",
               "data": {"link": "https://checkout.flutterwave.com/v3/hosted/pay/abc"}}),
    )
}

// ---------------------------------------------------------------- Flutterwave: checkout

#[test]
fn flutterwave_checkout_sends_major_units_and_reads_the_link() {
    let fake = FakeHttp::start(|_| flw_link());
    let provider = flutterwave(&fake.url(), true);
    let xaf = Money::new(5000, "XAF");
    let created = provider.create_checkout(&checkout(&xaf, None)).unwrap();
    assert_eq!(created.provider_reference, None);
    assert_eq!(
        created.checkout_url,
        "https://checkout.flutterwave.com/v3/hosted/pay/abc"
    );
    assert_eq!(created.raw_status, "link_created");

    let usd = Money::new(1050, "USD");
    provider
        .create_checkout(&checkout(&usd, Some("growth")))
        .unwrap();

    let sent = fake.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path(), "/v3/payments");
    assert_eq!(
        sent[0].header("Authorization"),
        Some(format!("Bearer {FLW_SECRET}").as_str())
    );
    assert!(
        sent[0]
            .header("Content-Type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = sent[0].json();
    assert_eq!(
        body,
        json!({
            "tx_ref": "pay_0001",
            "amount": 5000,
            "currency": "XAF",
            "redirect_url": "https://crier.example/billing/return?session=pay_0001",
            "customer": {"email": "owner@example.com"},
            "customizations": {"title": "crier", "description": "Wallet top-up"},
            "meta": {"workspace_id": "wsp_0001", "session_id": "pay_0001", "kind": "topup"},
            "session_duration": 60,
        })
    );
    // The exact text on the wire: an integer, not 5000.0.
    assert!(sent[0].text().contains(r#""amount":5000,"#));

    let body = sent[1].json();
    assert_eq!(body["amount"], json!(10.5));
    assert!(sent[1].text().contains(r#""amount":10.5,"#));
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["meta"]["plan_code"], "growth");
    assert_eq!(body["meta"]["kind"], "plan");
}

#[test]
fn flutterwave_checkout_failures_are_classified() {
    let xaf = Money::new(5000, "XAF");
    let request = checkout(&xaf, None);

    let fake = FakeHttp::start(|_| Reply::text(502, "<html>Bad Gateway</html>"));
    let error = flutterwave(&fake.url(), true)
        .create_checkout(&request)
        .unwrap_err();
    assert_try_next(&error, true, "http_502");

    let fake = FakeHttp::start(|_| {
        Reply::json(
            400,
            json!({"status": "error", "message": format!("Invalid tx_ref; key {FLW_SECRET}"),
                   "data": null}),
        )
    });
    let error = flutterwave(&fake.url(), true)
        .create_checkout(&request)
        .unwrap_err();
    assert_try_next(&error, false, "http_400");
    assert!(error.message.contains("Invalid tx_ref"), "{error:?}");

    let fake = FakeHttp::start(|_| Reply::empty(429));
    let error = flutterwave(&fake.url(), true)
        .create_checkout(&request)
        .unwrap_err();
    assert_try_next(&error, true, "rate_limited");

    // A 200 without a link did not come from Flutterwave's API.
    let fake = FakeHttp::start(|_| Reply::text(200, "<html>captive portal</html>"));
    let error = flutterwave(&fake.url(), true)
        .create_checkout(&request)
        .unwrap_err();
    assert_try_next(&error, true, "bad_response");

    let error = flutterwave(&closed_port_url(), true)
        .create_checkout(&request)
        .unwrap_err();
    assert_try_next(&error, true, "network");
}

#[test]
fn flutterwave_not_configured_or_unsupported_currency_makes_no_call() {
    let fake = FakeHttp::start(|_| flw_link());
    let xaf = Money::new(5000, "XAF");
    let error = flutterwave(&fake.url(), false)
        .create_checkout(&checkout(&xaf, None))
        .unwrap_err();
    assert_try_next(&error, true, "not_configured");

    for code in ["JPY", "KWD", "CAD", "xaf"] {
        let amount = Money::new(5000, code);
        let error = flutterwave(&fake.url(), true)
            .create_checkout(&checkout(&amount, None))
            .unwrap_err();
        assert_try_next(&error, true, "unsupported_currency");
    }
    assert!(fake.requests().is_empty());
}

// ---------------------------------------------------------------- Flutterwave: verify

fn flw_transaction(status: &str, amount: serde_json::Value, currency: &str) -> Reply {
    Reply::json(
        200,
        json!({"status": "success", "message": "Transaction fetched successfully",
               "data": {"id": 288_200_108, "tx_ref": "pay_0001", "flw_ref": "FLW-MOCK-1",
                        "amount": amount, "charged_amount": amount, "currency": currency,
                        "status": status}}),
    )
}

#[test]
fn flutterwave_verify_by_id_and_by_reference() {
    let fake = FakeHttp::scripted([
        flw_transaction("successful", json!(5000), "XAF"),
        flw_transaction("pending", json!(12.5), "USD"),
    ]);
    let provider = flutterwave(&fake.url(), true);
    let by_id = provider
        .verify(&PaymentLookup {
            session_id: "pay_0001",
            provider_reference: Some("288200108"),
        })
        .unwrap();
    assert_eq!(
        by_id,
        Verification {
            status: PaymentStatus::Succeeded,
            raw_status: "successful".to_owned(),
            reference: Some("pay_0001".to_owned()),
            amount_minor: Some(5000),
            currency: Some("XAF".to_owned()),
            provider_reference: Some("288200108".to_owned()),
        }
    );
    let by_reference = provider
        .verify(&PaymentLookup {
            session_id: "pay_0001",
            provider_reference: None,
        })
        .unwrap();
    assert_eq!(by_reference.status, PaymentStatus::Pending);
    assert_eq!(by_reference.amount_minor, Some(1250));
    assert_eq!(by_reference.currency.as_deref(), Some("USD"));

    let sent = fake.requests();
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].path(), "/v3/transactions/288200108/verify");
    assert_eq!(
        sent[0].header("Authorization"),
        Some(format!("Bearer {FLW_SECRET}").as_str())
    );
    assert_eq!(sent[1].path(), "/v3/transactions/verify_by_reference");
    assert_eq!(
        sent[1].query(),
        vec![("tx_ref".to_owned(), "pay_0001".to_owned())]
    );
}

#[test]
fn flutterwave_verify_passes_mismatches_through() {
    // Another reference, currency and a smaller amount: facts for the caller to compare.
    let fake = FakeHttp::start(|_| {
        Reply::json(
            200,
            json!({"status": "success", "data": {"id": 7, "tx_ref": "pay_other",
                   "amount": 4999, "currency": "XOF", "status": "successful"}}),
        )
    });
    let verification = flutterwave(&fake.url(), true)
        .verify(&PaymentLookup {
            session_id: "pay_0001",
            provider_reference: Some("7"),
        })
        .unwrap();
    assert_eq!(verification.status, PaymentStatus::Succeeded);
    assert_eq!(verification.reference.as_deref(), Some("pay_other"));
    assert_eq!(verification.amount_minor, Some(4999));
    assert_eq!(verification.currency.as_deref(), Some("XOF"));
}

#[test]
fn flutterwave_verify_not_found_is_pending() {
    let not_found = Verification {
        status: PaymentStatus::Pending,
        raw_status: "not_found".to_owned(),
        reference: None,
        amount_minor: None,
        currency: None,
        provider_reference: None,
    };
    let lookup = PaymentLookup {
        session_id: "pay_0001",
        provider_reference: None,
    };
    let fake = FakeHttp::start(|_| {
        Reply::json(
            404,
            json!({"status": "error", "message": "No transaction was found for this id",
                   "data": null}),
        )
    });
    assert_eq!(
        flutterwave(&fake.url(), true).verify(&lookup).unwrap(),
        not_found
    );
    // Flutterwave also says it with a 400.
    let fake = FakeHttp::start(|_| {
        Reply::json(
            400,
            json!({"status": "error", "message": "No transaction was found for this id",
                   "data": null}),
        )
    });
    assert_eq!(
        flutterwave(&fake.url(), true).verify(&lookup).unwrap(),
        not_found
    );
    // A reference that is not a transaction id never goes into the path.
    let fake = FakeHttp::start(|_| flw_transaction("successful", json!(5000), "XAF"));
    flutterwave(&fake.url(), true)
        .verify(&PaymentLookup {
            session_id: "pay_0001",
            provider_reference: Some("../../v3/balances"),
        })
        .unwrap();
    assert_eq!(
        fake.requests()[0].path(),
        "/v3/transactions/verify_by_reference"
    );
    // Other failures are errors.
    let fake = FakeHttp::start(|_| Reply::empty(503));
    let error = flutterwave(&fake.url(), true).verify(&lookup).unwrap_err();
    assert_try_next(&error, true, "http_503");
}

// ---------------------------------------------------------------- Stripe: checkout

fn stripe_session(status: &str, payment_status: &str) -> serde_json::Value {
    json!({"id": "cs_test_a1", "object": "checkout.session",
           "url": "https://checkout.stripe.com/c/pay/cs_test_a1",
           "status": status, "payment_status": payment_status,
           "amount_total": 5000, "currency": "xaf", "client_reference_id": "pay_0001"})
}

#[test]
fn stripe_checkout_sends_minor_units_and_reads_the_session() {
    let fake = FakeHttp::start(|_| Reply::json(200, stripe_session("open", "unpaid")));
    let provider = stripe(&fake.url(), true);
    let xaf = Money::new(5000, "XAF");
    let created = provider.create_checkout(&checkout(&xaf, None)).unwrap();
    assert_eq!(created.provider_reference.as_deref(), Some("cs_test_a1"));
    assert_eq!(
        created.checkout_url,
        "https://checkout.stripe.com/c/pay/cs_test_a1"
    );
    assert_eq!(created.raw_status, "open");
    let usd = Money::new(1050, "USD");
    provider
        .create_checkout(&checkout(&usd, Some("growth")))
        .unwrap();

    let sent = fake.requests();
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path(), "/v1/checkout/sessions");
    assert_eq!(
        sent[0].header("Authorization"),
        Some("Basic c2tfdGVzdF9zZWNyZXRfa2V5XzEyMzo=") // sk_test_secret_key_123:
    );
    assert_eq!(sent[0].header("Idempotency-Key"), Some("idem_pay_0001"));
    assert!(
        sent[0]
            .header("Content-Type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let expected: Vec<(String, String)> = [
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "xaf"),
        ("line_items[0][price_data][unit_amount]", "5000"),
        (
            "line_items[0][price_data][product_data][name]",
            "Wallet top-up",
        ),
        ("line_items[0][quantity]", "1"),
        (
            "success_url",
            "https://crier.example/billing/return?session=pay_0001",
        ),
        (
            "cancel_url",
            "https://crier.example/billing/return?session=pay_0001&cancelled=1",
        ),
        ("client_reference_id", "pay_0001"),
        ("customer_email", "owner@example.com"),
        ("metadata[session_id]", "pay_0001"),
        ("metadata[workspace_id]", "wsp_0001"),
        ("metadata[kind]", "topup"),
        ("payment_intent_data[metadata][session_id]", "pay_0001"),
        ("payment_intent_data[metadata][workspace_id]", "wsp_0001"),
        ("expires_at", &(NOW + 3600).to_string()),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .collect();
    assert_eq!(sent[0].form(), expected);

    assert_eq!(
        sent[1]
            .form_field("line_items[0][price_data][currency]")
            .as_deref(),
        Some("usd")
    );
    assert_eq!(
        sent[1]
            .form_field("line_items[0][price_data][unit_amount]")
            .as_deref(),
        Some("1050")
    );
    assert_eq!(
        sent[1].form_field("metadata[plan_code]").as_deref(),
        Some("growth")
    );
    assert_eq!(
        sent[1].form_field("metadata[kind]").as_deref(),
        Some("plan")
    );
}

fn stripe_error(status: u16, code: Option<&str>, param: Option<&str>, message: &str) -> Reply {
    let mut error = json!({"type": "invalid_request_error", "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    Reply::json(status, json!({"error": error}))
}

#[test]
fn stripe_checkout_failures_are_classified() {
    let xaf = Money::new(5000, "XAF");
    let request = checkout(&xaf, None);
    let attempt = |reply: Reply| {
        let fake = FakeHttp::start(move |_| reply.clone());
        stripe(&fake.url(), true)
            .create_checkout(&request)
            .unwrap_err()
    };

    assert_try_next(&attempt(Reply::empty(502)), true, "http_502");
    assert_try_next(&attempt(Reply::empty(429)), true, "rate_limited");
    let error = attempt(stripe_error(
        400,
        Some("parameter_invalid_empty"),
        Some("customer_email"),
        &format!("Bad email (key {STRIPE_SECRET})"),
    ));
    assert_try_next(&error, false, "parameter_invalid_empty");
    assert!(error.message.contains("Bad email"), "{error:?}");
    assert_try_next(
        &attempt(stripe_error(
            400,
            None,
            Some("line_items[0][price_data][currency]"),
            "Invalid currency: xaf.",
        )),
        true,
        "unsupported_currency",
    );
    assert_try_next(
        &attempt(stripe_error(
            400,
            Some("amount_too_small"),
            None,
            "Amount must convert to at least 50 cents.",
        )),
        true,
        "unsupported_amount",
    );
    assert_try_next(
        &attempt(stripe_error(
            401,
            None,
            None,
            "Invalid API Key provided: sk_test_****_123",
        )),
        true,
        "unauthorized",
    );
    let error = stripe(&closed_port_url(), true)
        .create_checkout(&request)
        .unwrap_err();
    assert_try_next(&error, true, "network");
}

#[test]
fn stripe_not_configured_makes_no_call() {
    let fake = FakeHttp::start(|_| Reply::json(200, stripe_session("open", "unpaid")));
    let xaf = Money::new(5000, "XAF");
    let error = stripe(&fake.url(), false)
        .create_checkout(&checkout(&xaf, None))
        .unwrap_err();
    assert_try_next(&error, true, "not_configured");
    let unknown = Money::new(5000, "ZZZ");
    let error = stripe(&fake.url(), true)
        .create_checkout(&checkout(&unknown, None))
        .unwrap_err();
    assert_try_next(&error, true, "unsupported_currency");
    assert!(fake.requests().is_empty());
}

// ---------------------------------------------------------------- Stripe: verify

#[test]
fn stripe_verify_reads_the_session() {
    let fake = FakeHttp::scripted([
        Reply::json(200, stripe_session("complete", "paid")),
        Reply::json(200, stripe_session("complete", "unpaid")),
        Reply::json(200, stripe_session("expired", "unpaid")),
        Reply::json(
            200,
            json!({"id": "cs_test_a1", "status": "complete", "payment_status": "paid",
                   "amount_total": 4000, "currency": "eur", "client_reference_id": "pay_other"}),
        ),
        stripe_error(
            404,
            Some("resource_missing"),
            Some("session"),
            "No such session",
        ),
    ]);
    let provider = stripe(&fake.url(), true);
    let lookup = PaymentLookup {
        session_id: "pay_0001",
        provider_reference: Some("cs_test_a1"),
    };
    assert_eq!(
        provider.verify(&lookup).unwrap(),
        Verification {
            status: PaymentStatus::Succeeded,
            raw_status: "complete/paid".to_owned(),
            reference: Some("pay_0001".to_owned()),
            amount_minor: Some(5000),
            currency: Some("XAF".to_owned()),
            provider_reference: Some("cs_test_a1".to_owned()),
        }
    );
    assert_eq!(
        provider.verify(&lookup).unwrap().status,
        PaymentStatus::Pending
    );
    assert_eq!(
        provider.verify(&lookup).unwrap().status,
        PaymentStatus::Expired
    );
    let mismatch = provider.verify(&lookup).unwrap();
    assert_eq!(
        (
            mismatch.reference.as_deref(),
            mismatch.amount_minor,
            mismatch.currency.as_deref()
        ),
        (Some("pay_other"), Some(4000), Some("EUR"))
    );
    let error = provider.verify(&lookup).unwrap_err();
    assert_try_next(&error, true, "http_404");

    let sent = fake.requests();
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0].method, "GET");
    assert_eq!(sent[0].path(), "/v1/checkout/sessions/cs_test_a1");
    assert_eq!(
        sent[0].header("Authorization"),
        Some("Basic c2tfdGVzdF9zZWNyZXRfa2V5XzEyMzo=")
    );
}

#[test]
fn stripe_verify_without_a_session_id_asks_nothing() {
    let fake = FakeHttp::start(|_| Reply::json(200, stripe_session("complete", "paid")));
    let verification = stripe(&fake.url(), true)
        .verify(&PaymentLookup {
            session_id: "pay_0001",
            provider_reference: None,
        })
        .unwrap();
    assert_eq!(
        verification,
        Verification {
            status: PaymentStatus::Pending,
            raw_status: "unknown".to_owned(),
            reference: None,
            amount_minor: None,
            currency: None,
            provider_reference: None,
        }
    );
    let error = stripe(&fake.url(), true)
        .verify(&PaymentLookup {
            session_id: "pay_0001",
            provider_reference: Some("cs_1/../../v1/balance"),
        })
        .unwrap_err();
    assert_try_next(&error, false, "bad_reference");
    assert!(fake.requests().is_empty());
}
