//! Payment settings: provider order, each provider's keys and base URL, session lifetime,
//! webhook tolerance. `PaymentArgs` declares them for the command line (flattened by
//! `cli::Settings`); `PaymentArgs::validate` types them into `PaymentSettings`. A provider without
//! its secret key is "not configured" and skipped when creating checkouts.

use std::time::Duration;

use clap::Args;

use crate::payments::provider::ProviderName;
use crate::settings::values::{optional_secret, public_url, whole_number};
use crate::settings::{Problems, Secret, Setting, SettingArg};

/// Payment settings as given, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PaymentArgs {
    /// Payment providers tried in order when creating a checkout, comma-separated: flutterwave, stripe. One without its secret key is skipped.
    #[arg(crier_setting = PAYMENT_PROVIDERS, default_value = "flutterwave,stripe")]
    pub payment_providers: String,

    /// Flutterwave API base URL.
    #[arg(crier_setting = FLUTTERWAVE_BASE_URL, default_value = "https://api.flutterwave.com")]
    pub flutterwave_base_url: String,

    /// Flutterwave secret key (secret); without it Flutterwave is not configured.
    #[arg(crier_setting = FLUTTERWAVE_SECRET_KEY)]
    pub flutterwave_secret_key: Option<String>,

    /// The secret hash set in the Flutterwave dashboard (secret): checked against `verif-hash`, and the key of `flutterwave-signature`. Without it Flutterwave webhooks get 401.
    #[arg(crier_setting = FLUTTERWAVE_WEBHOOK_HASH)]
    pub flutterwave_webhook_hash: Option<String>,

    /// Stripe API base URL.
    #[arg(crier_setting = STRIPE_BASE_URL, default_value = "https://api.stripe.com")]
    pub stripe_base_url: String,

    /// Stripe secret key (secret); without it Stripe is not configured.
    #[arg(crier_setting = STRIPE_SECRET_KEY)]
    pub stripe_secret_key: Option<String>,

    /// The Stripe endpoint's signing secret `whsec_…` (secret). Without it Stripe webhooks get 401.
    #[arg(crier_setting = STRIPE_WEBHOOK_SECRET)]
    pub stripe_webhook_secret: Option<String>,

    /// How old (or how far ahead) a Stripe-Signature timestamp may be, in seconds.
    #[arg(crier_setting = STRIPE_WEBHOOK_TOLERANCE_SECS, default_value = "300")]
    pub stripe_webhook_tolerance_secs: String,

    /// How long a checkout session may stay unpaid before the janitor expires it (30–1440; Stripe needs at least 30).
    #[arg(crier_setting = PAYMENT_SESSION_MINUTES, default_value = "30")]
    pub payment_session_minutes: String,

    /// Where providers send the payer back (`?session=pay_…` is appended) [default: PUBLIC_URL/billing/return].
    #[arg(crier_setting = PAYMENT_RETURN_URL)]
    pub payment_return_url: Option<String>,

    /// Limit on one payment provider call, in seconds.
    #[arg(crier_setting = PAYMENT_TIMEOUT_SECS, default_value = "15")]
    pub payment_timeout_secs: String,

    /// Days the webhook journal keeps a settled or rejected event before the janitor deletes it (1–3650).
    #[arg(crier_setting = WEBHOOK_RETENTION_DAYS, default_value = "30")]
    pub webhook_retention_days: String,
}

// Each payment setting's flag and variable, named once for its `#[arg]` and its problems.
const PAYMENT_PROVIDERS: Setting = Setting::new("payment-providers", "CRIER_PAYMENT_PROVIDERS");
const FLUTTERWAVE_BASE_URL: Setting =
    Setting::new("flutterwave-base-url", "CRIER_FLUTTERWAVE_BASE_URL");
const FLUTTERWAVE_SECRET_KEY: Setting =
    Setting::new("flutterwave-secret-key", "CRIER_FLUTTERWAVE_SECRET_KEY");
const FLUTTERWAVE_WEBHOOK_HASH: Setting =
    Setting::new("flutterwave-webhook-hash", "CRIER_FLUTTERWAVE_WEBHOOK_HASH");
const STRIPE_BASE_URL: Setting = Setting::new("stripe-base-url", "CRIER_STRIPE_BASE_URL");
const STRIPE_SECRET_KEY: Setting = Setting::new("stripe-secret-key", "CRIER_STRIPE_SECRET_KEY");
const STRIPE_WEBHOOK_SECRET: Setting =
    Setting::new("stripe-webhook-secret", "CRIER_STRIPE_WEBHOOK_SECRET");
const STRIPE_WEBHOOK_TOLERANCE_SECS: Setting = Setting::new(
    "stripe-webhook-tolerance-secs",
    "CRIER_STRIPE_WEBHOOK_TOLERANCE_SECS",
);
const PAYMENT_SESSION_MINUTES: Setting =
    Setting::new("payment-session-minutes", "CRIER_PAYMENT_SESSION_MINUTES");
const PAYMENT_RETURN_URL: Setting = Setting::new("payment-return-url", "CRIER_PAYMENT_RETURN_URL");
const PAYMENT_TIMEOUT_SECS: Setting =
    Setting::new("payment-timeout-secs", "CRIER_PAYMENT_TIMEOUT_SECS");
const WEBHOOK_RETENTION_DAYS: Setting =
    Setting::new("webhook-retention-days", "CRIER_WEBHOOK_RETENTION_DAYS");

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
    /// How long the webhook journal keeps an event once it is settled or rejected.
    pub webhook_retention: Duration,
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
            webhook_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

impl PaymentArgs {
    /// Types the payment settings, or gives every problem with them.
    pub fn validate(&self) -> Result<PaymentSettings, Vec<String>> {
        let mut problems = Problems::default();
        let settings = self.typed(&mut problems);
        problems.finish(settings)
    }

    /// Each setting typed, with a sentence in `problems` for each bad one.
    fn typed(&self, problems: &mut Problems) -> Option<PaymentSettings> {
        let p = problems;
        let providers = p.check(PAYMENT_PROVIDERS, provider_list(&self.payment_providers));
        let flutterwave_base_url =
            p.check(FLUTTERWAVE_BASE_URL, public_url(&self.flutterwave_base_url));
        let stripe_base_url = p.check(STRIPE_BASE_URL, public_url(&self.stripe_base_url));
        let tolerance = p.check(
            STRIPE_WEBHOOK_TOLERANCE_SECS,
            whole_number(&self.stripe_webhook_tolerance_secs, 1, 86_400),
        );
        let minutes = p.check(
            PAYMENT_SESSION_MINUTES,
            whole_number(&self.payment_session_minutes, 30, 1440),
        );
        let timeout = p.check(
            PAYMENT_TIMEOUT_SECS,
            whole_number(&self.payment_timeout_secs, 1, 300),
        );
        let retention_days = p.check(
            WEBHOOK_RETENTION_DAYS,
            whole_number(&self.webhook_retention_days, 1, 3650),
        );
        let return_url = match self.payment_return_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Some(p.check(PAYMENT_RETURN_URL, public_url(url))?),
            _ => None,
        };
        Some(PaymentSettings {
            providers: providers?,
            flutterwave: FlutterwaveSettings {
                base_url: flutterwave_base_url?,
                secret_key: optional_secret(&self.flutterwave_secret_key),
                webhook_hash: optional_secret(&self.flutterwave_webhook_hash),
            },
            stripe: StripeSettings {
                base_url: stripe_base_url?,
                secret_key: optional_secret(&self.stripe_secret_key),
                webhook_secret: optional_secret(&self.stripe_webhook_secret),
                webhook_tolerance: Duration::from_secs(tolerance?),
            },
            session_lifetime: Duration::from_secs(minutes? * 60),
            return_url,
            timeout: Duration::from_secs(timeout?),
            webhook_retention: Duration::from_secs(retention_days? * 86_400),
            ..PaymentSettings::default()
        })
    }
}

/// A comma-separated, non-empty list of payment providers without repeats.
fn provider_list(text: &str) -> Result<Vec<ProviderName>, String> {
    let mut providers = Vec::new();
    let mut problem = None;
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_defaults_validate() {
        let settings = crate::settings::defaults::<PaymentArgs>()
            .validate()
            .unwrap();
        assert_eq!(
            settings.providers,
            vec![ProviderName::Flutterwave, ProviderName::Stripe]
        );
        assert_eq!(settings.session_lifetime, Duration::from_secs(30 * 60));
    }

    #[test]
    fn every_problem_is_reported() {
        let args = PaymentArgs {
            payment_providers: "stripe,paypal".into(),
            payment_session_minutes: "5".into(),
            ..crate::settings::defaults()
        };
        assert_eq!(
            args.validate().unwrap_err(),
            vec![
                "--payment-providers / CRIER_PAYMENT_PROVIDERS: \"paypal\" is not flutterwave or \
                 stripe",
                "--payment-session-minutes / CRIER_PAYMENT_SESSION_MINUTES: must be a whole \
                 number from 30 to 1440, got \"5\"",
            ]
        );
    }
}
