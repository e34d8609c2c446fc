//! PLACEHOLDER: being written.

use crate::delivery::providers::http::HttpClient;
use crate::delivery::settings::MboaSmsSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct MboaSmsProvider {
    _settings: MboaSmsSettings,
    _http: HttpClient,
}

impl MboaSmsProvider {
    pub fn new(settings: &MboaSmsSettings, http: HttpClient) -> MboaSmsProvider {
        MboaSmsProvider {
            _settings: settings.clone(),
            _http: http,
        }
    }
}

impl Provider for MboaSmsProvider {
    fn name(&self) -> &'static str {
        "mboasms"
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable("unavailable", "not written yet"))
    }
}
