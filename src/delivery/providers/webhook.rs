//! PLACEHOLDER: being written.

use crate::delivery::providers::http::HttpClient;
use crate::delivery::settings::WebhookSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct WebhookProvider {
    _settings: WebhookSettings,
    _http: HttpClient,
}

impl WebhookProvider {
    pub fn new(settings: &WebhookSettings, http: HttpClient) -> WebhookProvider {
        WebhookProvider {
            _settings: settings.clone(),
            _http: http,
        }
    }
}

impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable("unavailable", "not written yet"))
    }
}
