//! Delivery settings: which providers each channel uses, in fallback order, how to reach each
//! one, and how the dispatcher paces itself. `DeliveryArgs` declares them for the command line
//! (flattened by `cli::Settings`); `DeliveryArgs::validate` types them into `DeliverySettings`. A
//! provider named in a channel's list must be configured.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::billing::Channel;
use crate::delivery::routes::{self, Chosen, SmsRoute, parse_routes};
use crate::settings::values::{optional_secret, optional_text, public_url, whole_number};
use crate::settings::{Problems, Secret, Setting, SettingArg};
use crate::vocabulary::Mode;

/// Delivery settings as given, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DeliveryArgs {
    /// SMS providers in fallback order, comma-separated: log, webhook, twilio, infobip, avlytext, mboasms, lmt. Each one listed must be configured.
    #[arg(crier_setting = SMS_PROVIDERS, default_value = "log")]
    pub sms_providers: String,

    /// SMS routes by destination, `;`-separated, each MATCHES=PROVIDERS: E.164 prefixes (+23767) and countries (CM), comma-separated, to a provider chain; the longest matching prefix wins, then the country, else --sms-providers. Each provider named must be configured.
    #[arg(crier_setting = SMS_ROUTES)]
    pub sms_routes: Option<String>,

    /// Email providers in fallback order, comma-separated: log, smtp.
    #[arg(crier_setting = EMAIL_PROVIDERS, default_value = "log")]
    pub email_providers: String,

    /// The From mailbox of email: `Name <address>` or an address (a workspace with a sending
    /// domain of its own uses its own From).
    #[arg(crier_setting = EMAIL_FROM, default_value = "crier@localhost")]
    pub email_from: String,

    /// Limit on one provider call (connect and whole exchange), in seconds.
    #[arg(crier_setting = PROVIDER_TIMEOUT_SECS, default_value = "15")]
    pub provider_timeout_secs: String,

    /// SMTP server host name; required by the smtp provider.
    #[arg(crier_setting = SMTP_HOST)]
    pub smtp_host: Option<String>,

    /// SMTP server port.
    #[arg(crier_setting = SMTP_PORT, default_value = "587")]
    pub smtp_port: String,

    /// SMTP connection security: starttls (required STARTTLS), tls (TLS from the start, usually port 465) or none (plain text; only for a local relay).
    #[arg(crier_setting = SMTP_SECURITY, default_value = "starttls")]
    pub smtp_security: String,

    /// SMTP AUTH user name; give it with --smtp-password or neither.
    #[arg(crier_setting = SMTP_USERNAME)]
    pub smtp_username: Option<String>,

    /// SMTP AUTH password (secret).
    #[arg(crier_setting = SMTP_PASSWORD)]
    pub smtp_password: Option<String>,

    /// URL the webhook SMS provider POSTs each message to as JSON; required by that provider.
    #[arg(crier_setting = SMS_WEBHOOK_URL)]
    pub sms_webhook_url: Option<String>,

    /// Key for the X-Crier-Signature HMAC-SHA256 of each webhook body (secret) [default: unsigned].
    #[arg(crier_setting = SMS_WEBHOOK_SECRET)]
    pub sms_webhook_secret: Option<String>,

    /// Twilio API base URL.
    #[arg(crier_setting = TWILIO_BASE_URL, default_value = "https://api.twilio.com")]
    pub twilio_base_url: String,

    /// Twilio account SID; required by the twilio provider.
    #[arg(crier_setting = TWILIO_ACCOUNT_SID)]
    pub twilio_account_sid: Option<String>,

    /// Twilio auth token (secret); required by the twilio provider.
    #[arg(crier_setting = TWILIO_AUTH_TOKEN)]
    pub twilio_auth_token: Option<String>,

    /// Your Infobip API base URL (`https://xxxxx.api.infobip.com`); required by the infobip provider.
    #[arg(crier_setting = INFOBIP_BASE_URL)]
    pub infobip_base_url: Option<String>,

    /// Infobip API key (secret); required by the infobip provider.
    #[arg(crier_setting = INFOBIP_API_KEY)]
    pub infobip_api_key: Option<String>,

    /// AvlyText API base URL.
    #[arg(crier_setting = AVLYTEXT_BASE_URL, default_value = "https://api.avlytext.com")]
    pub avlytext_base_url: String,

    /// AvlyText API key (secret); required by the avlytext provider.
    #[arg(crier_setting = AVLYTEXT_API_KEY)]
    pub avlytext_api_key: Option<String>,

    /// MboaSMS API base URL.
    #[arg(crier_setting = MBOASMS_BASE_URL, default_value = "https://mboadeals.net")]
    pub mboasms_base_url: String,

    /// MboaSMS user id; required by the mboasms provider.
    #[arg(crier_setting = MBOASMS_USER_ID)]
    pub mboasms_user_id: Option<String>,

    /// MboaSMS API password (secret); required by the mboasms provider.
    #[arg(crier_setting = MBOASMS_PASSWORD)]
    pub mboasms_password: Option<String>,

    /// LMT Group API base URL.
    #[arg(crier_setting = LMT_BASE_URL, default_value = "https://sms.lmtgroup.com")]
    pub lmt_base_url: String,

    /// LMT Group API key (the X-Api-Key header); required by the lmt provider.
    #[arg(crier_setting = LMT_API_KEY)]
    pub lmt_api_key: Option<String>,

    /// LMT Group API secret (the X-Secret header; secret); required by the lmt provider.
    #[arg(crier_setting = LMT_SECRET)]
    pub lmt_secret: Option<String>,

    /// Secret token that delivery-receipt callback URLs carry (at least 16 characters); without it crier asks providers for no receipts and POST /v1/webhooks/sms/{provider} (and its /inbound for STOP keywords) answers 404.
    #[arg(crier_setting = RECEIPT_TOKEN)]
    pub receipt_token: Option<String>,

    /// Mailgun's HTTP webhook signing key (secret); with it POST /v1/webhooks/email/mailgun takes Mailgun's signed bounce and complaint events, without it that endpoint answers 404.
    #[arg(crier_setting = MAILGUN_WEBHOOK_KEY)]
    pub mailgun_webhook_key: Option<String>,

    /// DKIM selector of the signing key (letters, digits, '-' and '.'); with --dkim-key-file, the smtp provider signs every email for the From domain (README, "Deliverability").
    #[arg(crier_setting = DKIM_SELECTOR)]
    pub dkim_selector: Option<String>,

    /// PEM file of the DKIM private key: PKCS#8 RSA (2048 bits advised) or Ed25519, or PKCS#1 RSA; give it with --dkim-selector or neither. Read at start: a missing or unusable key stops the start.
    #[arg(crier_setting = DKIM_KEY_FILE)]
    pub dkim_key_file: Option<String>,

    /// Dispatcher threads delivering messages (0 stops delivery; messages wait queued). Each
    /// makes one provider call at a time: against a provider that answers in 200 ms, each
    /// delivers about 5 messages a second, so raise it for slow providers.
    #[arg(crier_setting = DISPATCH_WORKERS, default_value = "4")]
    pub dispatch_workers: String,

    /// Messages a dispatcher claims at a time; while full batches go out within 50 ms it claims up to 8 times as many.
    #[arg(crier_setting = DISPATCH_BATCH, default_value = "50")]
    pub dispatch_batch: String,

    /// How long a claimed message stays with its dispatcher before another may take it over (after a crash).
    #[arg(crier_setting = DISPATCH_LEASE_SECS, default_value = "120")]
    pub dispatch_lease_secs: String,

    /// How often idle dispatchers and the scheduler look for due messages, in milliseconds (new sends wake them at once).
    #[arg(crier_setting = DISPATCH_POLL_MS, default_value = "500")]
    pub dispatch_poll_ms: String,

    /// Passes over a channel's providers before a message that only met retryable errors fails (and is refunded).
    #[arg(crier_setting = MAX_DELIVERY_CYCLES, default_value = "5")]
    pub max_delivery_cycles: String,

    /// Delay before the second pass; it doubles per pass, with ±20% jitter.
    #[arg(crier_setting = RETRY_BASE_SECS, default_value = "30")]
    pub retry_base_secs: String,

    /// Longest delay between passes.
    #[arg(crier_setting = RETRY_MAX_SECS, default_value = "3600")]
    pub retry_max_secs: String,
}

// Each delivery setting's flag and variable, named once for its `#[arg]` and its problems.
const SMS_PROVIDERS: Setting = Setting::new("sms-providers", "CRIER_SMS_PROVIDERS");
const SMS_ROUTES: Setting = Setting::new("sms-routes", "CRIER_SMS_ROUTES");
const EMAIL_PROVIDERS: Setting = Setting::new("email-providers", "CRIER_EMAIL_PROVIDERS");
const EMAIL_FROM: Setting = Setting::new("email-from", "CRIER_EMAIL_FROM");
const PROVIDER_TIMEOUT_SECS: Setting =
    Setting::new("provider-timeout-secs", "CRIER_PROVIDER_TIMEOUT_SECS");
const SMTP_HOST: Setting = Setting::new("smtp-host", "CRIER_SMTP_HOST");
const SMTP_PORT: Setting = Setting::new("smtp-port", "CRIER_SMTP_PORT");
const SMTP_SECURITY: Setting = Setting::new("smtp-security", "CRIER_SMTP_SECURITY");
const SMTP_USERNAME: Setting = Setting::new("smtp-username", "CRIER_SMTP_USERNAME");
const SMTP_PASSWORD: Setting = Setting::new("smtp-password", "CRIER_SMTP_PASSWORD");
const SMS_WEBHOOK_URL: Setting = Setting::new("sms-webhook-url", "CRIER_SMS_WEBHOOK_URL");
const SMS_WEBHOOK_SECRET: Setting = Setting::new("sms-webhook-secret", "CRIER_SMS_WEBHOOK_SECRET");
const TWILIO_BASE_URL: Setting = Setting::new("twilio-base-url", "CRIER_TWILIO_BASE_URL");
const TWILIO_ACCOUNT_SID: Setting = Setting::new("twilio-account-sid", "CRIER_TWILIO_ACCOUNT_SID");
const TWILIO_AUTH_TOKEN: Setting = Setting::new("twilio-auth-token", "CRIER_TWILIO_AUTH_TOKEN");
const INFOBIP_BASE_URL: Setting = Setting::new("infobip-base-url", "CRIER_INFOBIP_BASE_URL");
const INFOBIP_API_KEY: Setting = Setting::new("infobip-api-key", "CRIER_INFOBIP_API_KEY");
const AVLYTEXT_BASE_URL: Setting = Setting::new("avlytext-base-url", "CRIER_AVLYTEXT_BASE_URL");
const AVLYTEXT_API_KEY: Setting = Setting::new("avlytext-api-key", "CRIER_AVLYTEXT_API_KEY");
const MBOASMS_BASE_URL: Setting = Setting::new("mboasms-base-url", "CRIER_MBOASMS_BASE_URL");
const MBOASMS_USER_ID: Setting = Setting::new("mboasms-user-id", "CRIER_MBOASMS_USER_ID");
const MBOASMS_PASSWORD: Setting = Setting::new("mboasms-password", "CRIER_MBOASMS_PASSWORD");
const LMT_BASE_URL: Setting = Setting::new("lmt-base-url", "CRIER_LMT_BASE_URL");
const LMT_API_KEY: Setting = Setting::new("lmt-api-key", "CRIER_LMT_API_KEY");
const LMT_SECRET: Setting = Setting::new("lmt-secret", "CRIER_LMT_SECRET");
const RECEIPT_TOKEN: Setting = Setting::new("receipt-token", "CRIER_RECEIPT_TOKEN");
const MAILGUN_WEBHOOK_KEY: Setting =
    Setting::new("mailgun-webhook-key", "CRIER_MAILGUN_WEBHOOK_KEY");
const DKIM_SELECTOR: Setting = Setting::new("dkim-selector", "CRIER_DKIM_SELECTOR");
const DKIM_KEY_FILE: Setting = Setting::new("dkim-key-file", "CRIER_DKIM_KEY_FILE");
const DISPATCH_WORKERS: Setting = Setting::new("dispatch-workers", "CRIER_DISPATCH_WORKERS");
const DISPATCH_BATCH: Setting = Setting::new("dispatch-batch", "CRIER_DISPATCH_BATCH");
const DISPATCH_LEASE_SECS: Setting =
    Setting::new("dispatch-lease-secs", "CRIER_DISPATCH_LEASE_SECS");
const DISPATCH_POLL_MS: Setting = Setting::new("dispatch-poll-ms", "CRIER_DISPATCH_POLL_MS");
const MAX_DELIVERY_CYCLES: Setting =
    Setting::new("max-delivery-cycles", "CRIER_MAX_DELIVERY_CYCLES");
const RETRY_BASE_SECS: Setting = Setting::new("retry-base-secs", "CRIER_RETRY_BASE_SECS");
const RETRY_MAX_SECS: Setting = Setting::new("retry-max-secs", "CRIER_RETRY_MAX_SECS");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProviderName {
    Log,
    Webhook,
    Twilio,
    Infobip,
    AvlyText,
    MboaSms,
    Lmt,
}

impl SmsProviderName {
    pub const ALL: [SmsProviderName; 7] = [
        SmsProviderName::Log,
        SmsProviderName::Webhook,
        SmsProviderName::Twilio,
        SmsProviderName::Infobip,
        SmsProviderName::AvlyText,
        SmsProviderName::MboaSms,
        SmsProviderName::Lmt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsProviderName::Log => "log",
            SmsProviderName::Webhook => "webhook",
            SmsProviderName::Twilio => "twilio",
            SmsProviderName::Infobip => "infobip",
            SmsProviderName::AvlyText => "avlytext",
            SmsProviderName::MboaSms => "mboasms",
            SmsProviderName::Lmt => "lmt",
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

/// DKIM signing: the selector and the PEM file of the private key (read when the providers
/// are built, at start).
#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub selector: String,
    pub key_file: PathBuf,
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
pub struct LmtSettings {
    /// `https://sms.lmtgroup.com` unless overridden.
    pub base_url: String,
    pub api_key: Secret,
    pub secret: Secret,
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Fallback order per channel; never empty. For SMS, the default chain.
    pub sms_providers: Vec<SmsProviderName>,
    /// SMS routes by destination (`delivery::routes`); a number no route matches takes
    /// `sms_providers`.
    pub sms_routes: Vec<SmsRoute>,
    pub email_providers: Vec<EmailProviderName>,
    /// The From mailbox of email (`Name <address>` or an address), unless the workspace has its own.
    pub email_from: String,
    /// Connect + whole-call limit for one provider call.
    pub provider_timeout: Duration,
    pub smtp: Option<SmtpSettings>,
    pub webhook: Option<WebhookSettings>,
    pub twilio: Option<TwilioSettings>,
    pub infobip: Option<InfobipSettings>,
    pub avlytext: Option<AvlyTextSettings>,
    pub mboasms: Option<MboaSmsSettings>,
    pub lmt: Option<LmtSettings>,
    /// The secret token receipt URLs carry; receipts are not requested without it.
    pub receipt_token: Option<Secret>,
    /// Mailgun's webhook signing key: bounces and complaints it posts are checked with it.
    pub mailgun_webhook_key: Option<Secret>,
    /// DKIM signing of the smtp provider's email.
    pub dkim: Option<DkimSettings>,
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
            sms_routes: Vec::new(),
            email_providers: vec![EmailProviderName::Log],
            email_from: "crier@localhost".to_owned(),
            provider_timeout: Duration::from_secs(15),
            smtp: None,
            webhook: None,
            twilio: None,
            infobip: None,
            avlytext: None,
            mboasms: None,
            lmt: None,
            receipt_token: None,
            mailgun_webhook_key: None,
            dkim: None,
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

impl DeliveryArgs {
    /// Types the delivery settings, or gives every problem with them.
    pub fn validate(&self) -> Result<DeliverySettings, Vec<String>> {
        let mut problems = Problems::default();
        let settings = self.typed(&mut problems);
        if let Some(settings) = &settings {
            // Problems between settings, looked for once the settings could be typed at all.
            for missing in settings.unconfigured() {
                problems.add(missing);
            }
            // Read now, whichever chain signs with it: a missing or unusable key stops the
            // start with the other problems, before anything is created.
            if let Some(dkim) = &settings.dkim
                && let Err(why) =
                    super::providers::smtp::DkimSigner::load(dkim, &settings.email_from)
            {
                problems.add(format!("{DKIM_KEY_FILE}: {why}"));
            }
            if settings.dispatch_lease <= settings.provider_timeout {
                problems.add(format!(
                    "{DISPATCH_LEASE_SECS}: must be longer than {}, or a slow call would lose its \
                     claim",
                    PROVIDER_TIMEOUT_SECS.flag()
                ));
            }
        }
        problems.finish(settings)
    }

    /// Each setting typed, with a sentence in `problems` for each bad one.
    fn typed(&self, problems: &mut Problems) -> Option<DeliverySettings> {
        let p = problems;
        let sms_providers = p.check(
            SMS_PROVIDERS,
            provider_list(&self.sms_providers, SmsProviderName::parse, |n| n.as_str()),
        );
        let sms_routes = p.check(
            SMS_ROUTES,
            parse_routes(self.sms_routes.as_deref().unwrap_or_default()),
        );
        let email_providers = p.check(
            EMAIL_PROVIDERS,
            provider_list(&self.email_providers, EmailProviderName::parse, |n| {
                n.as_str()
            }),
        );
        let email_from = p.check(EMAIL_FROM, mailbox(&self.email_from));
        let provider_timeout_secs = p.check(
            PROVIDER_TIMEOUT_SECS,
            whole_number(&self.provider_timeout_secs, 1, 300),
        );

        let twilio_base_url = p.check(TWILIO_BASE_URL, public_url(&self.twilio_base_url));
        let avlytext_base_url = p.check(AVLYTEXT_BASE_URL, public_url(&self.avlytext_base_url));
        let mboasms_base_url = p.check(MBOASMS_BASE_URL, public_url(&self.mboasms_base_url));
        let lmt_base_url = p.check(LMT_BASE_URL, public_url(&self.lmt_base_url));
        let infobip_base_url = optional_text(&self.infobip_base_url)
            .and_then(|url| p.check(INFOBIP_BASE_URL, public_url(&url)));
        let webhook_url = optional_text(&self.sms_webhook_url)
            .and_then(|url| p.check(SMS_WEBHOOK_URL, public_url(&url)));

        let smtp_port = p.check(SMTP_PORT, whole_number(&self.smtp_port, 1, 65535));
        let smtp_security = p.check(
            SMTP_SECURITY,
            SmtpSecurity::parse(self.smtp_security.trim()).ok_or_else(|| {
                format!(
                    "must be one of starttls, tls, none; got {:?}",
                    self.smtp_security
                )
            }),
        );
        let smtp_credentials = match (
            optional_text(&self.smtp_username),
            optional_secret(&self.smtp_password),
        ) {
            (Some(user), Some(password)) => Some(Some((user, password))),
            (None, None) => Some(None),
            _ => {
                p.add(format!(
                    "{SMTP_USERNAME}: give it together with {SMTP_PASSWORD}, or neither"
                ));
                None
            }
        };
        let dkim = match (
            optional_text(&self.dkim_selector),
            optional_text(&self.dkim_key_file),
        ) {
            (Some(selector), Some(key_file)) => {
                if selector.len() > 63
                    || selector.starts_with(['.', '-'])
                    || !selector
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                {
                    p.add(format!(
                        "{DKIM_SELECTOR}: must be 1 to 63 letters, digits, '-' or '.'"
                    ));
                }
                Some(Some(DkimSettings {
                    selector,
                    key_file: PathBuf::from(key_file),
                }))
            }
            (None, None) => Some(None),
            _ => {
                p.add(format!(
                    "{DKIM_SELECTOR}: give it together with {DKIM_KEY_FILE}, or neither"
                ));
                None
            }
        };
        let receipt_token = optional_secret(&self.receipt_token);
        if receipt_token.as_ref().is_some_and(|token| {
            token.expose().len() < 16
                || !token
                    .expose()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) {
            p.add(format!(
                "{RECEIPT_TOKEN}: must be at least 16 letters, digits, '-' or '_'"
            ));
        }
        let mut number = |setting: Setting, value: &str, min: u64, max: u64| {
            p.check(setting, whole_number(value, min, max))
        };
        let dispatch_workers = number(DISPATCH_WORKERS, &self.dispatch_workers, 0, 64);
        let dispatch_batch = number(DISPATCH_BATCH, &self.dispatch_batch, 1, 1000);
        let dispatch_lease_secs =
            number(DISPATCH_LEASE_SECS, &self.dispatch_lease_secs, 1, 24 * 3600);
        let dispatch_poll_ms = number(DISPATCH_POLL_MS, &self.dispatch_poll_ms, 10, 60_000);
        let max_delivery_cycles = number(MAX_DELIVERY_CYCLES, &self.max_delivery_cycles, 1, 100);
        let retry_base_secs = number(RETRY_BASE_SECS, &self.retry_base_secs, 1, 24 * 3600);
        let retry_max_secs = number(RETRY_MAX_SECS, &self.retry_max_secs, 1, 7 * 24 * 3600);

        Some(DeliverySettings {
            sms_providers: sms_providers?,
            sms_routes: sms_routes?,
            email_providers: email_providers?,
            email_from: email_from?,
            provider_timeout: Duration::from_secs(provider_timeout_secs?),
            // A bad port, security or credential pair is already a problem: the stand-ins only
            // let the checks between settings run, so they are reported in the same go.
            smtp: optional_text(&self.smtp_host).map(|host| SmtpSettings {
                host,
                port: smtp_port
                    .and_then(|port| u16::try_from(port).ok())
                    .unwrap_or(587),
                security: smtp_security.unwrap_or(SmtpSecurity::StartTls),
                credentials: smtp_credentials.flatten(),
            }),
            webhook: webhook_url.map(|url| WebhookSettings {
                url,
                secret: optional_secret(&self.sms_webhook_secret),
            }),
            twilio: match (
                optional_text(&self.twilio_account_sid),
                optional_secret(&self.twilio_auth_token),
            ) {
                (Some(account_sid), Some(auth_token)) => Some(TwilioSettings {
                    base_url: twilio_base_url?,
                    account_sid,
                    auth_token,
                }),
                _ => None,
            },
            infobip: match (infobip_base_url, optional_secret(&self.infobip_api_key)) {
                (Some(base_url), Some(api_key)) => Some(InfobipSettings { base_url, api_key }),
                _ => None,
            },
            avlytext: optional_secret(&self.avlytext_api_key).map(|api_key| AvlyTextSettings {
                base_url: avlytext_base_url.clone().unwrap_or_default(),
                api_key,
            }),
            mboasms: match (
                optional_text(&self.mboasms_user_id),
                optional_secret(&self.mboasms_password),
            ) {
                (Some(user_id), Some(password)) => Some(MboaSmsSettings {
                    base_url: mboasms_base_url.clone().unwrap_or_default(),
                    user_id,
                    password,
                }),
                _ => None,
            },
            lmt: match (
                optional_secret(&self.lmt_api_key),
                optional_secret(&self.lmt_secret),
            ) {
                (Some(api_key), Some(secret)) => Some(LmtSettings {
                    base_url: lmt_base_url.clone().unwrap_or_default(),
                    api_key,
                    secret,
                }),
                _ => None,
            },
            receipt_token,
            mailgun_webhook_key: optional_secret(&self.mailgun_webhook_key),
            dkim: dkim?,
            dispatch_workers: usize::try_from(dispatch_workers?).ok()?,
            dispatch_batch: usize::try_from(dispatch_batch?).ok()?,
            dispatch_lease: Duration::from_secs(dispatch_lease_secs?),
            dispatch_poll: Duration::from_millis(dispatch_poll_ms?),
            max_delivery_cycles: u32::try_from(max_delivery_cycles?).ok()?,
            retry_base_delay: Duration::from_secs(retry_base_secs?),
            retry_max_delay: Duration::from_secs(retry_max_secs?),
        })
    }
}

impl DeliverySettings {
    /// The route of an SMS to `to` (E.164): its chain and what matched (`delivery::routes`).
    pub fn sms_route(&self, to: &str) -> Chosen<'_> {
        routes::choose(&self.sms_routes, &self.sms_providers, to)
    }

    /// What a new message stores as its route: `None` for email, `test=log` for a test-mode
    /// SMS, else the chosen route (`+23767=avlytext,mboasms`).
    pub fn route_to_store(&self, channel: Channel, mode: Mode, to: &str) -> Option<String> {
        match (channel, mode) {
            (Channel::Email, _) => None,
            (Channel::Sms, Mode::Test) => Some(routes::TEST_ROUTE.to_owned()),
            (Channel::Sms, Mode::Live) => Some(self.sms_route(to).stored()),
        }
    }

    /// A sentence for each provider a channel lists but whose settings are missing.
    fn unconfigured(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut need = |listed: bool, configured: bool, name: &str, settings: String| {
            if listed && !configured {
                problems.push(format!(
                    "the {name} provider is listed but not configured: set {settings}"
                ));
            }
        };
        let sms = |name| {
            self.sms_providers.contains(&name)
                || self
                    .sms_routes
                    .iter()
                    .any(|route| route.providers.contains(&name))
        };
        need(
            self.email_providers.contains(&EmailProviderName::Smtp),
            self.smtp.is_some(),
            "smtp",
            SMTP_HOST.env.to_owned(),
        );
        need(
            sms(SmsProviderName::Webhook),
            self.webhook.is_some(),
            "webhook",
            SMS_WEBHOOK_URL.env.to_owned(),
        );
        need(
            sms(SmsProviderName::Twilio),
            self.twilio.is_some(),
            "twilio",
            format!("{} and {}", TWILIO_ACCOUNT_SID.env, TWILIO_AUTH_TOKEN.env),
        );
        need(
            sms(SmsProviderName::Infobip),
            self.infobip.is_some(),
            "infobip",
            format!("{} and {}", INFOBIP_BASE_URL.env, INFOBIP_API_KEY.env),
        );
        need(
            sms(SmsProviderName::AvlyText),
            self.avlytext.is_some(),
            "avlytext",
            AVLYTEXT_API_KEY.env.to_owned(),
        );
        need(
            sms(SmsProviderName::MboaSms),
            self.mboasms.is_some(),
            "mboasms",
            format!("{} and {}", MBOASMS_USER_ID.env, MBOASMS_PASSWORD.env),
        );
        need(
            sms(SmsProviderName::Lmt),
            self.lmt.is_some(),
            "lmt",
            format!("{} and {}", LMT_API_KEY.env, LMT_SECRET.env),
        );
        problems
    }
}

/// One field of a workspace's provider account (`delivery::accounts`): its name in the API and
/// the instance setting whose validation it goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountField {
    pub name: &'static str,
    setting: Setting,
    /// Sealed, write-only (`secrets`), else shown (`settings`).
    pub secret: bool,
    /// The instance needs it to configure the provider.
    pub required: bool,
    /// A URL the provider's calls go to (checked like a webhook endpoint's as well).
    pub url: bool,
    /// A host the provider connects to (an address literal checked like a webhook URL's host).
    pub host: bool,
}

const fn field(name: &'static str, setting: Setting, required: bool) -> AccountField {
    AccountField {
        name,
        setting,
        secret: false,
        required,
        url: false,
        host: false,
    }
}

const fn url_field(name: &'static str, setting: Setting, required: bool) -> AccountField {
    AccountField {
        url: true,
        ..field(name, setting, required)
    }
}

const fn secret_field(name: &'static str, setting: Setting, required: bool) -> AccountField {
    AccountField {
        secret: true,
        ..field(name, setting, required)
    }
}

const TWILIO_FIELDS: &[AccountField] = &[
    field("account_sid", TWILIO_ACCOUNT_SID, true),
    url_field("base_url", TWILIO_BASE_URL, false),
    secret_field("auth_token", TWILIO_AUTH_TOKEN, true),
];
const INFOBIP_FIELDS: &[AccountField] = &[
    url_field("base_url", INFOBIP_BASE_URL, true),
    secret_field("api_key", INFOBIP_API_KEY, true),
];
const AVLYTEXT_FIELDS: &[AccountField] = &[
    url_field("base_url", AVLYTEXT_BASE_URL, false),
    secret_field("api_key", AVLYTEXT_API_KEY, true),
];
const MBOASMS_FIELDS: &[AccountField] = &[
    field("user_id", MBOASMS_USER_ID, true),
    url_field("base_url", MBOASMS_BASE_URL, false),
    secret_field("password", MBOASMS_PASSWORD, true),
];
const LMT_FIELDS: &[AccountField] = &[
    url_field("base_url", LMT_BASE_URL, false),
    secret_field("api_key", LMT_API_KEY, true),
    secret_field("secret", LMT_SECRET, true),
];
const WEBHOOK_FIELDS: &[AccountField] = &[
    url_field("url", SMS_WEBHOOK_URL, true),
    secret_field("secret", SMS_WEBHOOK_SECRET, false),
];
const SMTP_FIELDS: &[AccountField] = &[
    AccountField {
        host: true,
        ..field("host", SMTP_HOST, true)
    },
    field("port", SMTP_PORT, false),
    field("security", SMTP_SECURITY, false),
    field("username", SMTP_USERNAME, false),
    field("from", EMAIL_FROM, false),
    secret_field("password", SMTP_PASSWORD, false),
];

/// The providers a workspace may bring its own account for, by channel (never `log`).
pub fn account_providers(channel: Channel) -> Vec<&'static str> {
    match channel {
        Channel::Sms => SmsProviderName::ALL
            .into_iter()
            .filter(|name| *name != SmsProviderName::Log)
            .map(SmsProviderName::as_str)
            .collect(),
        Channel::Email => vec![EmailProviderName::Smtp.as_str()],
    }
}

/// The fields of an account of `provider` on `channel`; `None` for a provider no account can
/// name there.
pub fn account_fields(channel: Channel, provider: &str) -> Option<&'static [AccountField]> {
    match channel {
        Channel::Sms => match SmsProviderName::parse(provider)? {
            SmsProviderName::Log => None,
            SmsProviderName::Webhook => Some(WEBHOOK_FIELDS),
            SmsProviderName::Twilio => Some(TWILIO_FIELDS),
            SmsProviderName::Infobip => Some(INFOBIP_FIELDS),
            SmsProviderName::AvlyText => Some(AVLYTEXT_FIELDS),
            SmsProviderName::MboaSms => Some(MBOASMS_FIELDS),
            SmsProviderName::Lmt => Some(LMT_FIELDS),
        },
        Channel::Email => match EmailProviderName::parse(provider)? {
            EmailProviderName::Log => None,
            EmailProviderName::Smtp => Some(SMTP_FIELDS),
        },
    }
}

/// Puts `value` in the instance setting `setting` of `args`.
fn set_setting(args: &mut DeliveryArgs, setting: Setting, value: String) {
    let slot: &mut String = match setting {
        s if s == SMTP_PORT => &mut args.smtp_port,
        s if s == SMTP_SECURITY => &mut args.smtp_security,
        s if s == EMAIL_FROM => &mut args.email_from,
        s if s == TWILIO_BASE_URL => &mut args.twilio_base_url,
        s if s == AVLYTEXT_BASE_URL => &mut args.avlytext_base_url,
        s if s == MBOASMS_BASE_URL => &mut args.mboasms_base_url,
        s if s == LMT_BASE_URL => &mut args.lmt_base_url,
        _ => {
            let optional = match setting {
                s if s == SMTP_HOST => &mut args.smtp_host,
                s if s == SMTP_USERNAME => &mut args.smtp_username,
                s if s == SMTP_PASSWORD => &mut args.smtp_password,
                s if s == SMS_WEBHOOK_URL => &mut args.sms_webhook_url,
                s if s == SMS_WEBHOOK_SECRET => &mut args.sms_webhook_secret,
                s if s == TWILIO_ACCOUNT_SID => &mut args.twilio_account_sid,
                s if s == TWILIO_AUTH_TOKEN => &mut args.twilio_auth_token,
                s if s == INFOBIP_BASE_URL => &mut args.infobip_base_url,
                s if s == INFOBIP_API_KEY => &mut args.infobip_api_key,
                s if s == AVLYTEXT_API_KEY => &mut args.avlytext_api_key,
                s if s == MBOASMS_USER_ID => &mut args.mboasms_user_id,
                s if s == MBOASMS_PASSWORD => &mut args.mboasms_password,
                s if s == LMT_API_KEY => &mut args.lmt_api_key,
                s if s == LMT_SECRET => &mut args.lmt_secret,
                _ => return,
            };
            *optional = Some(value);
            return;
        }
    };
    *slot = value;
}

/// The settings of a workspace's account of `provider` on `channel` (`values`: each given field
/// by name, secrets included), validated by the very checks the instance's own settings go
/// through: the instance's `DeliveryArgs` with only this provider listed and these values set,
/// on the instance's timeout and lease. The result lists that one provider for the channel,
/// with the instance's From for email unless the account gives its own (`from`). `Err`: each
/// problem with the field it is about (`settings` when it is about none).
pub fn account_settings(
    channel: Channel,
    provider: &str,
    values: &[(&str, String)],
    instance: &DeliverySettings,
) -> Result<DeliverySettings, Vec<(&'static str, String)>> {
    let Some(fields) = account_fields(channel, provider) else {
        return Err(vec![(
            "provider",
            format!("{provider:?} is not a provider for {channel}"),
        )]);
    };
    let mut problems = Vec::new();
    for field in fields {
        let given = values
            .iter()
            .any(|(name, value)| *name == field.name && !value.trim().is_empty());
        if field.required && !given {
            problems.push((field.name, "is required".to_owned()));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut args: DeliveryArgs =
        crate::settings::declared_defaults().map_err(|why| vec![("settings", why)])?;
    args.provider_timeout_secs = instance.provider_timeout.as_secs().to_string();
    args.dispatch_lease_secs = instance.dispatch_lease.as_secs().to_string();
    args.email_from = instance.email_from.clone();
    match channel {
        Channel::Sms => args.sms_providers = provider.to_owned(),
        Channel::Email => args.email_providers = provider.to_owned(),
    }
    for (name, value) in values {
        if let Some(field) = fields.iter().find(|field| field.name == *name) {
            set_setting(&mut args, field.setting, value.clone());
        }
    }
    args.validate().map_err(|problems| {
        // A bad value leaves its provider unconfigured too: that consequence, in the instance's
        // words (its variables), says nothing more to a workspace.
        let unconfigured = |problem: &String| problem.contains("is listed but not configured");
        let only_consequences = problems.iter().all(unconfigured);
        problems
            .into_iter()
            .filter(|problem| only_consequences || !unconfigured(problem))
            .map(|problem| {
                let (name, reason) = fields
                    .iter()
                    .find_map(|field| {
                        problem
                            .strip_prefix(&format!("{}: ", field.setting))
                            .map(|reason| (field.name, reason.to_owned()))
                    })
                    .unwrap_or(("settings", problem));
                // In the API's words: a field's name, not the instance's flag.
                let reason = fields.iter().fold(reason, |reason, field| {
                    reason.replace(&field.setting.to_string(), field.name)
                });
                (name, reason)
            })
            .collect()
    })
}

/// A comma-separated, non-empty list of known provider names without repeats.
pub(crate) fn provider_list<T: PartialEq + Copy>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_defaults_validate() {
        let settings = crate::settings::defaults::<DeliveryArgs>()
            .validate()
            .unwrap();
        assert_eq!(settings.sms_providers, vec![SmsProviderName::Log]);
        assert_eq!(settings.email_from, "crier@localhost");
        assert_eq!(settings.dispatch_lease, Duration::from_secs(120));
    }

    #[test]
    fn dkim_takes_a_selector_and_a_key_file_together() {
        let with = |selector: Option<&str>, key_file: Option<&str>| DeliveryArgs {
            dkim_selector: selector.map(str::to_owned),
            dkim_key_file: key_file.map(str::to_owned),
            ..crate::settings::defaults()
        };
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("dkim.pem");
        std::fs::write(
            &key_file,
            include_str!("../../tests/it/fixtures/dkim_test_rsa.pem"),
        )
        .unwrap();
        let key = key_file.to_str().unwrap();
        let settings = with(Some("crier2026"), Some(key)).validate().unwrap();
        let dkim = settings.dkim.unwrap();
        assert_eq!(dkim.selector, "crier2026");
        assert_eq!(dkim.key_file, key_file);
        // The key is read as the settings are checked: a missing one is a problem among them.
        let missing = with(Some("crier2026"), Some("/nonexistent/dkim.pem"))
            .validate()
            .unwrap_err();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with("--dkim-key-file / CRIER_DKIM_KEY_FILE: the DKIM key file")
                && missing[0].contains("cannot be read"),
            "{missing:?}"
        );
        assert!(with(None, None).validate().unwrap().dkim.is_none());
        assert_eq!(
            with(Some("crier2026"), None).validate().unwrap_err(),
            vec![
                "--dkim-selector / CRIER_DKIM_SELECTOR: give it together with --dkim-key-file / \
                 CRIER_DKIM_KEY_FILE, or neither"
            ]
        );
        for bad in ["a b", "-x", "s_1", &"s".repeat(64)] {
            assert_eq!(
                with(Some(bad), Some(key)).validate().unwrap_err(),
                vec![
                    "--dkim-selector / CRIER_DKIM_SELECTOR: must be 1 to 63 letters, digits, \
                     '-' or '.'"
                ],
                "{bad}"
            );
        }
    }

    #[test]
    fn problems_name_settings_by_flag_and_variable() {
        let args = DeliveryArgs {
            sms_providers: "twilio".into(),
            dispatch_lease_secs: "10".into(),
            provider_timeout_secs: "20".into(),
            ..crate::settings::defaults()
        };
        assert_eq!(
            args.validate().unwrap_err(),
            vec![
                "the twilio provider is listed but not configured: set CRIER_TWILIO_ACCOUNT_SID \
                 and CRIER_TWILIO_AUTH_TOKEN",
                "--dispatch-lease-secs / CRIER_DISPATCH_LEASE_SECS: must be longer than \
                 --provider-timeout-secs, or a slow call would lose its claim",
            ]
        );
    }

    #[test]
    fn an_account_goes_through_the_instance_checks_and_problems_name_its_fields() {
        let instance = DeliverySettings::default();
        let values = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
            pairs
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned()))
                .collect()
        };
        let twilio = account_settings(
            Channel::Sms,
            "twilio",
            &values(&[("account_sid", "AC1"), ("auth_token", "tok")]),
            &instance,
        )
        .unwrap();
        assert_eq!(twilio.sms_providers, vec![SmsProviderName::Twilio]);
        let settings = twilio.twilio.unwrap();
        assert_eq!(settings.base_url, "https://api.twilio.com");
        assert_eq!(settings.auth_token.expose(), "tok");
        assert_eq!(
            account_settings(Channel::Sms, "twilio", &values(&[]), &instance).unwrap_err(),
            vec![
                ("account_sid", "is required".to_owned()),
                ("auth_token", "is required".to_owned())
            ]
        );
        assert_eq!(
            account_settings(
                Channel::Email,
                "smtp",
                &values(&[
                    ("host", "smtp.example.com"),
                    ("port", "0"),
                    ("username", "me")
                ]),
                &instance,
            )
            .unwrap_err(),
            vec![
                (
                    "port",
                    "must be a whole number from 1 to 65535, got \"0\"".to_owned()
                ),
                (
                    "username",
                    "give it together with password, or neither".to_owned()
                ),
            ]
        );
        let smtp = account_settings(
            Channel::Email,
            "smtp",
            &values(&[("host", "smtp.example.com")]),
            &instance,
        )
        .unwrap();
        assert_eq!(smtp.email_providers, vec![EmailProviderName::Smtp]);
        assert_eq!(smtp.email_from, instance.email_from);
        assert!(account_settings(Channel::Sms, "log", &values(&[]), &instance).is_err());
        assert!(account_settings(Channel::Email, "twilio", &values(&[]), &instance).is_err());
    }

    #[test]
    fn lmt_needs_its_key_and_secret() {
        let listed = DeliveryArgs {
            sms_providers: "lmt,log".into(),
            lmt_api_key: Some("key".into()),
            ..crate::settings::defaults()
        };
        assert_eq!(
            listed.validate().unwrap_err(),
            vec![
                "the lmt provider is listed but not configured: set CRIER_LMT_API_KEY and \
                 CRIER_LMT_SECRET"
            ]
        );
        let configured = DeliveryArgs {
            lmt_secret: Some("secret".into()),
            ..listed
        }
        .validate()
        .unwrap();
        assert_eq!(
            configured.sms_providers,
            vec![SmsProviderName::Lmt, SmsProviderName::Log]
        );
        let lmt = configured.lmt.unwrap();
        assert_eq!(lmt.base_url, "https://sms.lmtgroup.com");
        assert_eq!(
            (lmt.api_key.expose(), lmt.secret.expose()),
            ("key", "secret")
        );
    }

    #[test]
    fn providers_named_by_a_route_must_be_configured() {
        let args = DeliveryArgs {
            sms_routes: Some("+23767=avlytext,mboasms".into()),
            mboasms_user_id: Some("u".into()),
            mboasms_password: Some("p".into()),
            ..crate::settings::defaults()
        };
        assert_eq!(
            args.validate().unwrap_err(),
            vec!["the avlytext provider is listed but not configured: set CRIER_AVLYTEXT_API_KEY"]
        );
        let bad = DeliveryArgs {
            sms_routes: Some("+23767=sms77".into()),
            ..crate::settings::defaults()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            vec![
                "--sms-routes / CRIER_SMS_ROUTES: route \"+23767=sms77\": \"sms77\" is not a \
                 provider name"
            ]
        );
        let settings = DeliveryArgs {
            avlytext_api_key: Some("k".into()),
            ..args
        }
        .validate()
        .unwrap();
        assert_eq!(
            settings.route_to_store(Channel::Sms, Mode::Live, "+237677000000"),
            Some("+23767=avlytext,mboasms".to_owned())
        );
        assert_eq!(
            settings.route_to_store(Channel::Sms, Mode::Live, "+33612345678"),
            Some("default=log".to_owned())
        );
        assert_eq!(
            settings.route_to_store(Channel::Sms, Mode::Test, "+237677000000"),
            Some("test=log".to_owned())
        );
        assert_eq!(
            settings.route_to_store(Channel::Email, Mode::Live, "a@example.com"),
            None
        );
    }
}
