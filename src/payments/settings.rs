//! Payment settings, typed: provider order, each provider's keys and base URL, session lifetime,
//! webhook tolerance. Built from `CRIER_*` settings by `config::RawSettings::validate`. A
//! provider without its secret key is "not configured" and skipped when creating checkouts.

use std::time::Duration;

use crate::config::Secret;
use crate::payments::provider::ProviderName;

#[derive(Debug, Clone)]
pub struct FlutterwaveSettings {
    /// `https://api.flutterwave.com` unless overridden.
    pub base_url: String,
    pub secret_key: Option<Secret>,
    /// The dashboard's webhook secret hash (`verif-hash`, and the key of `flutterwave-signature`).
    pub webhook_hash: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `https://api.stripe.com` unless overridden.
    pub base_url: String,
    pub secret_key: Option<Secret>,
    /// The endpoint's signing secret (`whsec_…`).
    pub webhook_secret: Option<Secret>,
    /// How old a signed timestamp may be.
    pub webhook_tolerance: Duration,
}

#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// Tried in this order when creating a checkout.
    pub providers: Vec<ProviderName>,
    pub flutterwave: FlutterwaveSettings,
    pub stripe: StripeSettings,
    /// How long a session may stay unpaid before it expires.
    pub session_lifetime: Duration,
    /// Where providers send the payer back; defaults to `{public_url}/billing/return`.
    pub return_url: Option<String>,
    /// Provider call limit.
    pub timeout: Duration,
}

impl Default for PaymentSettings {
    fn default() -> PaymentSettings {
        PaymentSettings {
            providers: vec![ProviderName::Flutterwave, ProviderName::Stripe],
            flutterwave: FlutterwaveSettings {
                base_url: "https://api.flutterwave.com".to_owned(),
                secret_key: None,
                webhook_hash: None,
            },
            stripe: StripeSettings {
                base_url: "https://api.stripe.com".to_owned(),
                secret_key: None,
                webhook_secret: None,
                webhook_tolerance: Duration::from_secs(300),
            },
            session_lifetime: Duration::from_secs(30 * 60),
            return_url: None,
            timeout: Duration::from_secs(15),
        }
    }
}
