//! Delivery settings, typed: which providers each channel uses, in fallback order, how to reach
//! each one, and how the dispatcher paces itself. Built from `CRIER_*` settings by
//! `config::RawSettings::validate`; a provider named in a channel's list must be configured.

use std::time::Duration;

use crate::config::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProviderName {
    Log,
    Webhook,
    Twilio,
    Infobip,
    AvlyText,
    MboaSms,
}

impl SmsProviderName {
    pub const ALL: [SmsProviderName; 6] = [
        SmsProviderName::Log,
        SmsProviderName::Webhook,
        SmsProviderName::Twilio,
        SmsProviderName::Infobip,
        SmsProviderName::AvlyText,
        SmsProviderName::MboaSms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsProviderName::Log => "log",
            SmsProviderName::Webhook => "webhook",
            SmsProviderName::Twilio => "twilio",
            SmsProviderName::Infobip => "infobip",
            SmsProviderName::AvlyText => "avlytext",
            SmsProviderName::MboaSms => "mboasms",
        }
    }

    pub fn parse(name: &str) -> Option<SmsProviderName> {
        SmsProviderName::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProviderName {
    Log,
    Smtp,
}

impl EmailProviderName {
    pub const ALL: [EmailProviderName; 2] = [EmailProviderName::Log, EmailProviderName::Smtp];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailProviderName::Log => "log",
            EmailProviderName::Smtp => "smtp",
        }
    }

    pub fn parse(name: &str) -> Option<EmailProviderName> {
        EmailProviderName::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == name)
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must be offered (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all: only for a relay on localhost or a test server.
    None,
}

impl SmtpSecurity {
    pub fn parse(text: &str) -> Option<SmtpSecurity> {
        match text {
            "starttls" => Some(SmtpSecurity::StartTls),
            "tls" => Some(SmtpSecurity::Tls),
            "none" => Some(SmtpSecurity::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Both or neither.
    pub credentials: Option<(String, Secret)>,
}

/// The generic JSON webhook: crier POSTs each SMS as JSON to `url`, signed with `secret`.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// `https://api.twilio.com` unless overridden (tests point it at a local fake).
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
}

#[derive(Debug, Clone)]
pub struct InfobipSettings {
    /// The account's own base URL (`https://xxxxx.api.infobip.com`).
    pub base_url: String,
    pub api_key: Secret,
}

#[derive(Debug, Clone)]
pub struct AvlyTextSettings {
    /// `https://api.avlytext.com` unless overridden.
    pub base_url: String,
    pub api_key: Secret,
}

#[derive(Debug, Clone)]
pub struct MboaSmsSettings {
    /// `https://mboadeals.net` unless overridden.
    pub base_url: String,
    pub user_id: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Fallback order per channel; never empty.
    pub sms_providers: Vec<SmsProviderName>,
    pub email_providers: Vec<EmailProviderName>,
    /// The From mailbox of every email (`Name <address>` or an address).
    pub email_from: String,
    /// Connect + whole-call limit for one provider call.
    pub provider_timeout: Duration,
    pub smtp: Option<SmtpSettings>,
    pub webhook: Option<WebhookSettings>,
    pub twilio: Option<TwilioSettings>,
    pub infobip: Option<InfobipSettings>,
    pub avlytext: Option<AvlyTextSettings>,
    pub mboasms: Option<MboaSmsSettings>,
    /// The secret token receipt URLs carry; receipts are not requested without it.
    pub receipt_token: Option<Secret>,
    /// Dispatcher threads.
    pub dispatch_workers: usize,
    /// Messages one dispatcher claims at a time.
    pub dispatch_batch: usize,
    /// How long a claim holds a message before another dispatcher may take it over (a crash).
    pub dispatch_lease: Duration,
    /// How often idle dispatchers and the scheduler look for due work.
    pub dispatch_poll: Duration,
    /// Delivery cycles (one pass over the channel's providers) before a message fails.
    pub max_delivery_cycles: u32,
    /// First retry delay; doubles per cycle, capped at `retry_max_delay`, ±20 % jitter.
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
}

impl Default for DeliverySettings {
    /// The embedded defaults: the `log` provider for both channels.
    fn default() -> DeliverySettings {
        DeliverySettings {
            sms_providers: vec![SmsProviderName::Log],
            email_providers: vec![EmailProviderName::Log],
            email_from: "crier@localhost".to_owned(),
            provider_timeout: Duration::from_secs(15),
            smtp: None,
            webhook: None,
            twilio: None,
            infobip: None,
            avlytext: None,
            mboasms: None,
            receipt_token: None,
            dispatch_workers: 4,
            dispatch_batch: 50,
            dispatch_lease: Duration::from_secs(120),
            dispatch_poll: Duration::from_millis(500),
            max_delivery_cycles: 5,
            retry_base_delay: Duration::from_secs(30),
            retry_max_delay: Duration::from_secs(3600),
        }
    }
}

impl crate::cli::DeliveryArgs {
    /// Types the delivery settings, adding one sentence to `problems` per bad setting.
    pub fn validate(&self, problems: &mut Vec<String>) -> Option<DeliverySettings> {
        use crate::config::{public_url, take, whole_number};
        let p = problems;
        let sms_providers = take(
            p,
            "--sms-providers / CRIER_SMS_PROVIDERS",
            provider_list(&self.sms_providers, SmsProviderName::parse, |n| n.as_str()),
        );
        let email_providers = take(
            p,
            "--email-providers / CRIER_EMAIL_PROVIDERS",
            provider_list(&self.email_providers, EmailProviderName::parse, |n| {
                n.as_str()
            }),
        );
        let email_from = take(
            p,
            "--email-from / CRIER_EMAIL_FROM",
            mailbox(&self.email_from),
        );
        let provider_timeout_secs = take(
            p,
            "--provider-timeout-secs / CRIER_PROVIDER_TIMEOUT_SECS",
            whole_number(&self.provider_timeout_secs, 1, 300),
        );
        let secret = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(crate::config::Secret::new)
        };
        let text = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut url = |setting: &str, value: &str| take(p, setting, public_url(value));

        let twilio_base_url = url(
            "--twilio-base-url / CRIER_TWILIO_BASE_URL",
            &self.twilio_base_url,
        );
        let avlytext_base_url = url(
            "--avlytext-base-url / CRIER_AVLYTEXT_BASE_URL",
            &self.avlytext_base_url,
        );
        let mboasms_base_url = url(
            "--mboasms-base-url / CRIER_MBOASMS_BASE_URL",
            &self.mboasms_base_url,
        );
        let infobip_base_url = match text(&self.infobip_base_url) {
            Some(value) => url("--infobip-base-url / CRIER_INFOBIP_BASE_URL", &value),
            None => None,
        };
        let webhook_url = match text(&self.sms_webhook_url) {
            Some(value) => url("--sms-webhook-url / CRIER_SMS_WEBHOOK_URL", &value),
            None => None,
        };

        let smtp_port = take(
            p,
            "--smtp-port / CRIER_SMTP_PORT",
            whole_number(&self.smtp_port, 1, 65535),
        );
        let smtp_security = take(
            p,
            "--smtp-security / CRIER_SMTP_SECURITY",
            SmtpSecurity::parse(self.smtp_security.trim()).ok_or_else(|| {
                format!(
                    "must be one of starttls, tls, none; got {:?}",
                    self.smtp_security
                )
            }),
        );
        let smtp_credentials = match (text(&self.smtp_username), secret(&self.smtp_password)) {
            (Some(user), Some(password)) => Some(Some((user, password))),
            (None, None) => Some(None),
            _ => {
                p.push(
                    "--smtp-username / CRIER_SMTP_USERNAME: give it together with \
                     --smtp-password / CRIER_SMTP_PASSWORD, or neither"
                        .to_owned(),
                );
                None
            }
        };
        let receipt_token = secret(&self.receipt_token);
        if receipt_token.as_ref().is_some_and(|token| {
            token.expose().len() < 16
                || !token
                    .expose()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            p.push(
                "--receipt-token / CRIER_RECEIPT_TOKEN: must be at least 16 letters, digits, \
                 '-' or '_'"
                    .to_owned(),
            );
        }
        let mut number = |setting: &str, value: &str, min: u64, max: u64| {
            take(p, setting, whole_number(value, min, max))
        };
        let dispatch_workers = number(
            "--dispatch-workers / CRIER_DISPATCH_WORKERS",
            &self.dispatch_workers,
            0,
            64,
        );
        let dispatch_batch = number(
            "--dispatch-batch / CRIER_DISPATCH_BATCH",
            &self.dispatch_batch,
            1,
            1000,
        );
        let dispatch_lease_secs = number(
            "--dispatch-lease-secs / CRIER_DISPATCH_LEASE_SECS",
            &self.dispatch_lease_secs,
            1,
            24 * 3600,
        );
        let dispatch_poll_ms = number(
            "--dispatch-poll-ms / CRIER_DISPATCH_POLL_MS",
            &self.dispatch_poll_ms,
            10,
            60_000,
        );
        let max_delivery_cycles = number(
            "--max-delivery-cycles / CRIER_MAX_DELIVERY_CYCLES",
            &self.max_delivery_cycles,
            1,
            100,
        );
        let retry_base_secs = number(
            "--retry-base-secs / CRIER_RETRY_BASE_SECS",
            &self.retry_base_secs,
            1,
            24 * 3600,
        );
        let retry_max_secs = number(
            "--retry-max-secs / CRIER_RETRY_MAX_SECS",
            &self.retry_max_secs,
            1,
            7 * 24 * 3600,
        );

        let settings = DeliverySettings {
            sms_providers: sms_providers?,
            email_providers: email_providers?,
            email_from: email_from?,
            provider_timeout: Duration::from_secs(provider_timeout_secs?),
            smtp: text(&self.smtp_host).map(|host| SmtpSettings {
                host,
                port: u16::try_from(smtp_port.unwrap_or(587)).unwrap_or(587),
                security: smtp_security.unwrap_or(SmtpSecurity::StartTls),
                credentials: smtp_credentials.clone().flatten(),
            }),
            webhook: webhook_url.map(|url| WebhookSettings {
                url,
                secret: secret(&self.sms_webhook_secret),
            }),
            twilio: match (
                text(&self.twilio_account_sid),
                secret(&self.twilio_auth_token),
            ) {
                (Some(account_sid), Some(auth_token)) => Some(TwilioSettings {
                    base_url: twilio_base_url.clone()?,
                    account_sid,
                    auth_token,
                }),
                _ => None,
            },
            infobip: match (infobip_base_url, secret(&self.infobip_api_key)) {
                (Some(base_url), Some(api_key)) => Some(InfobipSettings { base_url, api_key }),
                _ => None,
            },
            avlytext: secret(&self.avlytext_api_key).map(|api_key| AvlyTextSettings {
                base_url: avlytext_base_url.clone().unwrap_or_default(),
                api_key,
            }),
            mboasms: match (text(&self.mboasms_user_id), secret(&self.mboasms_password)) {
                (Some(user_id), Some(password)) => Some(MboaSmsSettings {
                    base_url: mboasms_base_url.clone().unwrap_or_default(),
                    user_id,
                    password,
                }),
                _ => None,
            },
            receipt_token,
            dispatch_workers: usize::try_from(dispatch_workers?).ok()?,
            dispatch_batch: usize::try_from(dispatch_batch?).ok()?,
            dispatch_lease: Duration::from_secs(dispatch_lease_secs?),
            dispatch_poll: Duration::from_millis(dispatch_poll_ms?),
            max_delivery_cycles: u32::try_from(max_delivery_cycles?).ok()?,
            retry_base_delay: Duration::from_secs(retry_base_secs?),
            retry_max_delay: Duration::from_secs(retry_max_secs?),
        };
        // Smaller problems found only once everything parsed.
        let before = p.len();
        for missing in settings.unconfigured() {
            p.push(missing);
        }
        if settings.dispatch_lease <= settings.provider_timeout {
            p.push(
                "--dispatch-lease-secs / CRIER_DISPATCH_LEASE_SECS: must be longer than \
                 --provider-timeout-secs, or a slow call would lose its claim"
                    .to_owned(),
            );
        }
        if smtp_port.is_none() || smtp_security.is_none() || smtp_credentials.is_none() {
            return None;
        }
        (p.len() == before).then_some(settings)
    }
}

impl DeliverySettings {
    /// A sentence for each provider a channel lists but whose settings are missing.
    fn unconfigured(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut need = |listed: bool, configured: bool, name: &str, settings: &str| {
            if listed && !configured {
                problems.push(format!(
                    "the {name} provider is listed but not configured: set {settings}"
                ));
            }
        };
        let sms = |name| self.sms_providers.contains(&name);
        need(
            self.email_providers.contains(&EmailProviderName::Smtp),
            self.smtp.is_some(),
            "smtp",
            "CRIER_SMTP_HOST",
        );
        need(
            sms(SmsProviderName::Webhook),
            self.webhook.is_some(),
            "webhook",
            "CRIER_SMS_WEBHOOK_URL",
        );
        need(
            sms(SmsProviderName::Twilio),
            self.twilio.is_some(),
            "twilio",
            "CRIER_TWILIO_ACCOUNT_SID and CRIER_TWILIO_AUTH_TOKEN",
        );
        need(
            sms(SmsProviderName::Infobip),
            self.infobip.is_some(),
            "infobip",
            "CRIER_INFOBIP_BASE_URL and CRIER_INFOBIP_API_KEY",
        );
        need(
            sms(SmsProviderName::AvlyText),
            self.avlytext.is_some(),
            "avlytext",
            "CRIER_AVLYTEXT_API_KEY",
        );
        need(
            sms(SmsProviderName::MboaSms),
            self.mboasms.is_some(),
            "mboasms",
            "CRIER_MBOASMS_USER_ID and CRIER_MBOASMS_PASSWORD",
        );
        problems
    }
}

/// A comma-separated, non-empty list of known provider names without repeats.
fn provider_list<T: PartialEq + Copy>(
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
    name: impl Fn(T) -> &'static str,
) -> Result<Vec<T>, String> {
    let mut providers = Vec::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let provider = parse(&word.to_ascii_lowercase())
            .ok_or_else(|| format!("{word:?} is not a provider name"))?;
        if providers.contains(&provider) {
            return Err(format!("{} is listed twice", name(provider)));
        }
        providers.push(provider);
    }
    if providers.is_empty() {
        return Err("must name at least one provider".to_owned());
    }
    Ok(providers)
}

/// `Name <address>` or `address`, with one `@` in the address.
fn mailbox(text: &str) -> Result<String, String> {
    let text = text.trim();
    let address = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => &text[open + 1..text.len() - 1],
        _ => text,
    };
    let valid = address.split('@').count() == 2
        && address.split('@').all(|part| !part.is_empty())
        && !address.contains(char::is_whitespace)
        && !text.contains(['\r', '\n']);
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "must be an address or Name <address>, got {text:?}"
        ))
    }
}
