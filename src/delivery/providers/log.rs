//! The `log` provider, the embedded default for both channels: it accepts every message and
//! sends it nowhere. The message stays visible through the API and console; the log line names
//! the message, never its recipient or body.

use crate::delivery::{Accepted, Failure, Outgoing, Provider};

pub struct LogProvider;

impl Provider for LogProvider {
    fn name(&self) -> &'static str {
        "log"
    }

    fn has_outside_effect(&self) -> bool {
        false
    }

    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure> {
        let (channel, id) = match message {
            Outgoing::Sms(sms) => ("sms", sms.message_id),
            Outgoing::Email(email) => ("email", email.message_id),
        };
        log::info!(target: "crier::delivery", message_id = id, channel = channel; "log provider: message recorded, not sent");
        Ok(Accepted {
            provider_message_id: Some(format!("log_{id}")),
        })
    }
}
