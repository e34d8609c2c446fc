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
            email_from: "crier <crier@localhost>".to_owned(),
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
