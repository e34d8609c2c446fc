//! PLACEHOLDER: being written.

use crate::delivery::providers::http::HttpClient;
use crate::delivery::settings::TwilioSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct TwilioProvider {
    _settings: TwilioSettings,
    _http: HttpClient,
}

impl TwilioProvider {
    pub fn new(settings: &TwilioSettings, http: HttpClient) -> TwilioProvider {
        TwilioProvider {
            _settings: settings.clone(),
            _http: http,
        }
    }
}

impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable("unavailable", "not written yet"))
    }
}
