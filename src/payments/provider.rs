//! What crier needs from a payment provider, whichever it is: create a hosted checkout, ask for
//! the truth about a payment, check a webhook's signature and read its event. Adapters
//! (`flutterwave`, `stripe`) only speak the wire format and normalise what comes back; the state
//! machine and fulfilment (`payments::mod`) never see a provider's own vocabulary.
//! No adapter call may happen inside a database transaction.

use crate::money::Money;

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderName {
    Flutterwave,
    Stripe,
}

impl ProviderName {
    pub const ALL: [ProviderName; 2] = [ProviderName::Flutterwave, ProviderName::Stripe];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Flutterwave => "flutterwave",
            ProviderName::Stripe => "stripe",
        }
    }

    pub fn parse(name: &str) -> Option<ProviderName> {
        ProviderName::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == name)
    }
}

/// A checkout to create for one payment session.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    /// Our payment session id (`pay_…`): Flutterwave's `tx_ref`, Stripe's `client_reference_id`.
    pub session_id: &'a str,
    /// Sent as the provider's idempotency key (Stripe `Idempotency-Key`), stable across retries
    /// of the same session creation.
    pub idempotency_key: &'a str,
    pub workspace_id: &'a str,
    /// `plan` or `topup`; goes into the provider's metadata.
    pub kind: &'a str,
    pub plan_code: Option<&'a str>,
    pub amount: &'a Money,
    /// A line the payer sees ("Growth plan, 1 month", "Wallet top-up").
    pub description: &'a str,
    pub customer_email: &'a str,
    /// Where the provider sends the payer back (our return page, with `?session=pay_…`).
    pub return_url: &'a str,
    /// Where Stripe sends a payer who gives up (the same page).
    pub cancel_url: &'a str,
    /// Unix seconds; the checkout should not outlive the session (Stripe `expires_at`;
    /// Flutterwave `session_duration` in minutes).
    pub expires_at_unix: i64,
    /// Unix seconds now, from the caller's clock: Flutterwave wants a duration rather than an
    /// instant, and Stripe's `expires_at` must lie 30 minutes to 24 hours ahead.
    pub now_unix: i64,
}

/// A created checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The provider's id for it, when it gives one at creation (Stripe `cs_…`).
    pub provider_reference: Option<String>,
    /// Where to send the payer.
    pub checkout_url: String,
    /// The provider's raw status or answer summary, for the transaction record.
    pub raw_status: String,
}

/// A provider's verdict on a payment, normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Not paid yet, or paid by a method that confirms later.
    Pending,
    Succeeded,
    Failed,
    /// The payer abandoned it.
    Cancelled,
    Expired,
    /// Paid, then (partly or fully) refunded.
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Cancelled,
        PaymentStatus::Expired,
        PaymentStatus::Refunded,
    ];

    /// The status `as_str` wrote (the journal keeps an event's claimed status as text).
    pub fn parse(text: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// What the provider says about a payment when asked (verification), as facts to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub status: PaymentStatus,
    /// The provider's own status words (`successful`, `paid`/`complete`, …).
    pub raw_status: String,
    /// Our session id as the provider recorded it (`tx_ref` / `client_reference_id`).
    pub reference: Option<String>,
    /// What was paid, in the currency's minor unit (converted from major units for Flutterwave).
    pub amount_minor: Option<i64>,
    /// Upper-case ISO code.
    pub currency: Option<String>,
    /// The provider's id of the payment (Flutterwave transaction id, Stripe `cs_…`).
    pub provider_reference: Option<String>,
}

/// Which payment to ask about.
#[derive(Debug, Clone, Copy)]
pub struct PaymentLookup<'a> {
    pub session_id: &'a str,
    /// Flutterwave transaction id or Stripe checkout session id, when known.
    pub provider_reference: Option<&'a str>,
}

/// A provider failure when creating or verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// True when another provider (or a later try) may succeed: network errors, timeouts, 5xx,
    /// 429, unsupported currency, not configured. False when the request itself is refused.
    pub try_next: bool,
    /// Short stable code (`network`, `timeout`, `http_502`, `unsupported_currency`, …).
    pub code: String,
    /// A sentence without secrets.
    pub message: String,
}

/// A webhook request, as received.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// Every header as (name, value), names as sent.
    pub headers: &'a [(String, String)],
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
    /// Unix seconds now (for Stripe's timestamp tolerance).
    pub now_unix: i64,
}

impl WebhookRequest<'_> {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A signature verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureVerdict {
    Valid,
    /// Missing header, no matching signature, timestamp out of tolerance, …: the reason.
    Invalid(String),
}

/// What a verified webhook says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id, for de-duplication (Stripe `evt_…`; Flutterwave: its `data.id`
    /// with the event type, since v3 events have no id of their own).
    pub event_id: String,
    /// The provider's event type (`checkout.session.completed`, `charge.completed`, …).
    pub event_type: String,
    /// Our session id if the event carries it (`tx_ref`, `client_reference_id`).
    pub session_id: Option<String>,
    /// The provider's payment id (Flutterwave transaction id, Stripe `cs_…`).
    pub provider_reference: Option<String>,
    /// The status the event claims. For Flutterwave this is only a hint: crier re-verifies.
    pub status: PaymentStatus,
    /// For refunds: how much was refunded in total, minor units, if the event says.
    pub refunded_minor: Option<i64>,
}

/// A payment provider adapter.
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> ProviderName;
    /// Creates a hosted checkout. Blocking, bounded by the provider timeout.
    fn create_checkout(&self, request: &CheckoutRequest<'_>) -> Result<Checkout, ProviderError>;
    /// Asks the provider about the payment now.
    fn verify(&self, lookup: &PaymentLookup<'_>) -> Result<Verification, ProviderError>;
    /// Checks the webhook's signature on the raw bytes, before anything is parsed.
    fn check_signature(&self, request: &WebhookRequest<'_>) -> SignatureVerdict;
    /// Reads a webhook whose signature is valid. `Err`: not an event we understand.
    fn parse_event(&self, body: &[u8]) -> Result<WebhookEvent, String>;
}
