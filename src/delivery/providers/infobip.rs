//! PLACEHOLDER: being written.

use crate::delivery::providers::http::HttpClient;
use crate::delivery::settings::InfobipSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct InfobipProvider {
    _settings: InfobipSettings,
    _http: HttpClient,
}

impl InfobipProvider {
    pub fn new(settings: &InfobipSettings, http: HttpClient) -> InfobipProvider {
        InfobipProvider {
            _settings: settings.clone(),
            _http: http,
        }
    }
}

impl Provider for InfobipProvider {
    fn name(&self) -> &'static str {
        "infobip"
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable("unavailable", "not written yet"))
    }
}
