//! PLACEHOLDER: being written.

use crate::delivery::providers::http::HttpClient;
use crate::delivery::settings::AvlyTextSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct AvlyTextProvider {
    _settings: AvlyTextSettings,
    _http: HttpClient,
}

impl AvlyTextProvider {
    pub fn new(settings: &AvlyTextSettings, http: HttpClient) -> AvlyTextProvider {
        AvlyTextProvider {
            _settings: settings.clone(),
            _http: http,
        }
    }
}

impl Provider for AvlyTextProvider {
    fn name(&self) -> &'static str {
        "avlytext"
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable("unavailable", "not written yet"))
    }
}
