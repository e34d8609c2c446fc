//! The provider adapters and the registry the dispatcher picks from.

pub mod account;
pub mod avlytext;
pub mod http;
pub mod infobip;
pub mod lmt;
pub mod log;
pub mod mboasms;
pub mod smtp;
pub mod twilio;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;

use crate::billing::Channel;
use crate::delivery::Provider;
use crate::delivery::routes::{self, Chosen, SmsRoute};
use crate::delivery::settings::{DeliverySettings, EmailProviderName, SmsProviderName};

/// Every configured provider, built once at start, and the SMS chains of the routes.
pub struct Providers {
    /// The default SMS chain (`--sms-providers`).
    sms: Vec<Arc<dyn Provider>>,
    email: Vec<Arc<dyn Provider>>,
    log_sms: Arc<dyn Provider>,
    log_email: Arc<dyn Provider>,
    /// Each SMS provider a chain names, once.
    every_sms: Vec<Arc<dyn Provider>>,
    /// The chain of each route a message can store (`+23767=avlytext,mboasms`, `default=…`).
    sms_routes: HashMap<String, Vec<Arc<dyn Provider>>>,
    /// The routes and default chain, to route a message whose stored route is no longer
    /// configured.
    routes: (Vec<SmsRoute>, Vec<SmsProviderName>),
    /// Workspaces' own provider accounts, built when first used (`delivery::accounts`).
    pub accounts: account::AccountProviders,
}

impl Providers {
    /// Builds the adapters each channel's list and each SMS route names, each one once. Fails
    /// (a configuration error) when a listed provider has no settings or cannot be set up.
    pub fn new(settings: &DeliverySettings) -> Result<Providers, String> {
        Providers::with_client(
            settings,
            crate::outbound::HttpClient::new(settings.provider_timeout),
        )
    }

    /// The adapters of a workspace's own provider account: as `new`, over the guarded client of
    /// webhooks, so a URL a workspace gave cannot reach the instance's private network (a
    /// hostname resolving to loopback, a private range or the metadata address) unless the
    /// operator allows private targets (`--webhook-allow-private`); no redirect is followed.
    /// An SMTP host (lettre connects by itself) is resolved here and refused the same way.
    pub fn for_account(
        settings: &DeliverySettings,
        policy: crate::outbound::TargetPolicy,
    ) -> Result<Providers, String> {
        if let Some(smtp) = &settings.smtp
            && !policy.allow_private
        {
            use std::net::ToSocketAddrs;
            let addresses: Vec<_> = (smtp.host.as_str(), smtp.port)
                .to_socket_addrs()
                .map_err(|why| format!("the smtp host cannot be resolved: {why}"))?
                .collect();
            if addresses
                .iter()
                .any(|address| crate::outbound::is_private_target(address.ip()))
            {
                return Err(
                    "the smtp host resolves to a private, loopback or link-local address".into(),
                );
            }
        }
        Providers::with_client(
            settings,
            crate::outbound::guarded_client(settings.provider_timeout, policy),
        )
    }

    fn with_client(
        settings: &DeliverySettings,
        http: crate::outbound::HttpClient,
    ) -> Result<Providers, String> {
        let log_sms: Arc<dyn Provider> = Arc::new(log::LogProvider);
        let log_email: Arc<dyn Provider> = Arc::new(log::LogProvider);
        let missing = |name: &str| format!("the {name} provider is listed but not configured");
        let mut built: Vec<(SmsProviderName, Arc<dyn Provider>)> = Vec::new();
        let named = settings.sms_providers.iter().chain(
            settings
                .sms_routes
                .iter()
                .flat_map(|route| &route.providers),
        );
        for name in named {
            if built.iter().any(|(done, _)| done == name) {
                continue;
            }
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
            built.push((*name, provider));
        }
        let chain_of = |names: &[SmsProviderName]| -> Vec<Arc<dyn Provider>> {
            names
                .iter()
                .filter_map(|name| built.iter().find(|(done, _)| done == name))
                .map(|(_, provider)| Arc::clone(provider))
                .collect()
        };
        let sms = chain_of(&settings.sms_providers);
        let mut sms_routes = HashMap::new();
        let default = Chosen {
            matched: routes::DEFAULT_ROUTE,
            providers: &settings.sms_providers,
        };
        sms_routes.insert(default.stored(), sms.clone());
        for route in &settings.sms_routes {
            for matcher in &route.matches {
                let chosen = Chosen {
                    matched: matcher.as_str(),
                    providers: &route.providers,
                };
                sms_routes.insert(chosen.stored(), chain_of(&route.providers));
            }
        }
        let mut email: Vec<Arc<dyn Provider>> = Vec::new();
        for name in &settings.email_providers {
            let provider: Arc<dyn Provider> = match name {
                EmailProviderName::Log => Arc::clone(&log_email),
                EmailProviderName::Smtp => {
                    let smtp = smtp::SmtpProvider::new(
                        settings.smtp.as_ref().ok_or_else(|| missing("smtp"))?,
                        settings.provider_timeout,
                    )?;
                    Arc::new(match &settings.dkim {
                        Some(dkim) => smtp.with_dkim(dkim, &settings.email_from)?,
                        None => smtp,
                    })
                }
            };
            email.push(provider);
        }
        Ok(Providers {
            sms,
            email,
            log_sms,
            log_email,
            every_sms: built.into_iter().map(|(_, provider)| provider).collect(),
            sms_routes,
            routes: (settings.sms_routes.clone(), settings.sms_providers.clone()),
            accounts: account::AccountProviders::default(),
        })
    }

    /// The chain a live SMS tries, in order: the one of the route it stored when it was created
    /// (`route`), while the configuration still has that route; else the route its number `to`
    /// takes now.
    pub fn sms_chain(&self, route: Option<&str>, to: &str) -> &[Arc<dyn Provider>] {
        if let Some(chain) = route.and_then(|route| self.sms_routes.get(route)) {
            return chain;
        }
        let chosen = routes::choose(&self.routes.0, &self.routes.1, to).stored();
        self.sms_routes
            .get(&chosen)
            .map_or(&self.sms, Vec::as_slice)
    }

    /// The most providers one message may try in a delivery cycle.
    pub fn longest_chain(&self) -> usize {
        self.sms_routes
            .values()
            .map(Vec::len)
            .chain([self.sms.len(), self.email.len()])
            .max()
            .unwrap_or(1)
    }

    /// The default providers a live message of `channel` tries, in order (SMS: the chain of
    /// numbers no route matches).
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

    /// The configured SMS provider called `name` (in any chain), for its delivery receipts.
    pub fn sms_provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.every_sms
            .iter()
            .find(|provider| provider.name() == name)
    }
}
