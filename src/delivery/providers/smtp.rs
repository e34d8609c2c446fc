//! PLACEHOLDER: being written.

use std::time::Duration;

use crate::delivery::settings::SmtpSettings;
use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct SmtpProvider {
    _settings: SmtpSettings,
}

impl SmtpProvider {
    pub fn new(settings: &SmtpSettings, _timeout: Duration) -> Result<SmtpProvider, String> {
        Ok(SmtpProvider {
            _settings: settings.clone(),
        })
    }
}

impl Provider for SmtpProvider {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send(&self, _message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        Err(Failure::retryable("unavailable", "not written yet"))
    }
}
