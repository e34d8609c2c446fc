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
    /// How often the payments worker looks for journalled webhook events that are due, besides
    /// being woken when one is journalled (retries come due by time alone).
    pub worker_poll: Duration,
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
            worker_poll: Duration::from_secs(5),
        }
    }
}

impl crate::cli::PaymentArgs {
    /// Types the payment settings, adding one sentence to `problems` per bad setting.
    pub fn validate(&self, problems: &mut Vec<String>) -> Option<PaymentSettings> {
        use crate::config::{public_url, take, whole_number};
        let p = problems;
        let secret = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        let providers = take(p, "--payment-providers / CRIER_PAYMENT_PROVIDERS", {
            let mut providers = Vec::new();
            let mut problem = None;
            for word in self
                .payment_providers
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                match ProviderName::parse(&word.to_ascii_lowercase()) {
                    Some(name) if !providers.contains(&name) => providers.push(name),
                    Some(name) => problem = Some(format!("{} is listed twice", name.as_str())),
                    None => problem = Some(format!("{word:?} is not flutterwave or stripe")),
                }
            }
            match (problem, providers.is_empty()) {
                (Some(problem), _) => Err(problem),
                (None, true) => Err("must name at least one provider".to_owned()),
                (None, false) => Ok(providers),
            }
        });
        let flutterwave_base_url = take(
            p,
            "--flutterwave-base-url / CRIER_FLUTTERWAVE_BASE_URL",
            public_url(&self.flutterwave_base_url),
        );
        let stripe_base_url = take(
            p,
            "--stripe-base-url / CRIER_STRIPE_BASE_URL",
            public_url(&self.stripe_base_url),
        );
        let tolerance = take(
            p,
            "--stripe-webhook-tolerance-secs / CRIER_STRIPE_WEBHOOK_TOLERANCE_SECS",
            whole_number(&self.stripe_webhook_tolerance_secs, 1, 86_400),
        );
        let minutes = take(
            p,
            "--payment-session-minutes / CRIER_PAYMENT_SESSION_MINUTES",
            whole_number(&self.payment_session_minutes, 30, 1440),
        );
        let timeout = take(
            p,
            "--payment-timeout-secs / CRIER_PAYMENT_TIMEOUT_SECS",
            whole_number(&self.payment_timeout_secs, 1, 300),
        );
        let return_url = match self.payment_return_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Some(take(
                p,
                "--payment-return-url / CRIER_PAYMENT_RETURN_URL",
                public_url(url),
            )?),
            _ => None,
        };
        Some(PaymentSettings {
            providers: providers?,
            flutterwave: FlutterwaveSettings {
                base_url: flutterwave_base_url?,
                secret_key: secret(&self.flutterwave_secret_key),
                webhook_hash: secret(&self.flutterwave_webhook_hash),
            },
            stripe: StripeSettings {
                base_url: stripe_base_url?,
                secret_key: secret(&self.stripe_secret_key),
                webhook_secret: secret(&self.stripe_webhook_secret),
                webhook_tolerance: Duration::from_secs(tolerance?),
            },
            session_lifetime: Duration::from_secs(minutes? * 60),
            return_url,
            timeout: Duration::from_secs(timeout?),
            ..PaymentSettings::default()
        })
    }
}
