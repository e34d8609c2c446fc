//! The provider adapters and the registry the dispatcher picks from.

pub mod avlytext;
pub mod http;
pub mod infobip;
pub mod lmt;
pub mod log;
pub mod mboasms;
pub mod smtp;
pub mod twilio;
pub mod webhook;

use std::sync::Arc;

use crate::billing::Channel;
use crate::delivery::Provider;
use crate::delivery::settings::{DeliverySettings, EmailProviderName, SmsProviderName};

/// Every configured provider, built once at start.
pub struct Providers {
    sms: Vec<Arc<dyn Provider>>,
    email: Vec<Arc<dyn Provider>>,
    log_sms: Arc<dyn Provider>,
    log_email: Arc<dyn Provider>,
}

impl Providers {
    /// Builds the adapters each channel's list names. Fails (a configuration error) when a
    /// listed provider has no settings or cannot be set up.
    pub fn new(settings: &DeliverySettings) -> Result<Providers, String> {
        let http = crate::outbound::HttpClient::new(settings.provider_timeout);
        let log_sms: Arc<dyn Provider> = Arc::new(log::LogProvider);
        let log_email: Arc<dyn Provider> = Arc::new(log::LogProvider);
        let missing = |name: &str| format!("the {name} provider is listed but not configured");
        let mut sms: Vec<Arc<dyn Provider>> = Vec::new();
        for name in &settings.sms_providers {
            let provider: Arc<dyn Provider> = match name {
                SmsProviderName::Log => Arc::clone(&log_sms),
                SmsProviderName::Webhook => Arc::new(webhook::WebhookProvider::new(
                    settings
                        .webhook
                        .as_ref()
                        .ok_or_else(|| missing("webhook"))?,
                    http.clone(),
                )),
                SmsProviderName::Twilio => Arc::new(twilio::TwilioProvider::new(
                    settings.twilio.as_ref().ok_or_else(|| missing("twilio"))?,
                    http.clone(),
                )),
                SmsProviderName::Infobip => Arc::new(infobip::InfobipProvider::new(
                    settings
                        .infobip
                        .as_ref()
                        .ok_or_else(|| missing("infobip"))?,
                    http.clone(),
                )),
                SmsProviderName::AvlyText => Arc::new(avlytext::AvlyTextProvider::new(
                    settings
                        .avlytext
                        .as_ref()
                        .ok_or_else(|| missing("avlytext"))?,
                    http.clone(),
                )),
                SmsProviderName::MboaSms => Arc::new(mboasms::MboaSmsProvider::new(
                    settings
                        .mboasms
                        .as_ref()
                        .ok_or_else(|| missing("mboasms"))?,
                    http.clone(),
                )),
                SmsProviderName::Lmt => Arc::new(lmt::LmtProvider::new(
                    settings.lmt.as_ref().ok_or_else(|| missing("lmt"))?,
                    http.clone(),
                )),
            };
            sms.push(provider);
        }
        let mut email: Vec<Arc<dyn Provider>> = Vec::new();
        for name in &settings.email_providers {
            let provider: Arc<dyn Provider> = match name {
                EmailProviderName::Log => Arc::clone(&log_email),
                EmailProviderName::Smtp => Arc::new(smtp::SmtpProvider::new(
                    settings.smtp.as_ref().ok_or_else(|| missing("smtp"))?,
                    settings.provider_timeout,
                )?),
            };
            email.push(provider);
        }
        Ok(Providers {
            sms,
            email,
            log_sms,
            log_email,
        })
    }

    /// The providers a live message of `channel` tries, in order.
    pub fn chain(&self, channel: Channel) -> &[Arc<dyn Provider>] {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
        }
    }

    /// Test-mode messages go to the `log` provider only, whatever is configured.
    pub fn test_chain(&self, channel: Channel) -> &[Arc<dyn Provider>] {
        match channel {
            Channel::Sms => std::slice::from_ref(&self.log_sms),
            Channel::Email => std::slice::from_ref(&self.log_email),
        }
    }

    /// The configured SMS provider called `name`, for its delivery receipts.
    pub fn sms_provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.sms.iter().find(|provider| provider.name() == name)
    }
}
