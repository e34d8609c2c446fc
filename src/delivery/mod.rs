//! Delivery: getting stored messages to providers (docs/rules/messages.md, "Delivery").
//!
//! - `settings`: which providers each channel uses, in order, and how to reach them.
//! - `routes`: which SMS chain a number takes (prefix and country routes, the default chain).
//! - `providers`: one adapter per provider, all behind the `Provider` trait; `Providers` is the
//!   registry built once from the settings.
//! - `accounts`: workspaces' own provider accounts, which their live messages go through
//!   instead of the instance's providers.
//! - `dispatcher` / `scheduler`: the background threads that drain the outbox (the messages
//!   table) and settle each message.
//!
//! A provider call never runs inside a database transaction; adapters only speak to the
//! network and classify what came back.

pub mod accounts;
pub mod dispatcher;
pub mod domain_keys;
pub mod email_events;
pub mod marketing;
pub mod providers;
pub mod receipts;
pub mod routes;
pub mod settings;

use std::time::Duration;

pub use providers::Providers;
pub use receipts::{
    apply_account_receipts, apply_account_stops, apply_email_events, apply_receipts,
};

/// One SMS to hand to a provider.
#[derive(Debug, Clone, Copy)]
pub struct SmsOut<'a> {
    /// Our message id (`msg_…`), passed as the provider's reference where it takes one.
    pub message_id: &'a str,
    /// E.164, with the leading `+`.
    pub to: &'a str,
    /// Alphanumeric sender ID or number.
    pub sender: &'a str,
    pub text: &'a str,
    /// Where the provider should post delivery receipts, when receipts are configured
    /// (`{public_url}/v1/webhooks/sms/{provider}?token=…`).
    pub receipt_url: Option<&'a str>,
}

/// One email to hand to a provider.
#[derive(Debug, Clone, Copy)]
pub struct EmailOut<'a> {
    /// Our message id (`msg_…`); the Message-ID is derived from it.
    pub message_id: &'a str,
    /// A lower-cased address.
    pub to: &'a str,
    /// The From mailbox (`Name <address>` or a bare address): the instance's `--email-from`, or
    /// the workspace's own on one of its sending domains.
    pub from: &'a str,
    /// The workspace's sending domain's DKIM signer, when it sends From its own domain; `None`
    /// signs with the instance's key (if DKIM is on). Read by the smtp provider only.
    pub dkim: Option<&'a providers::smtp::DkimSigner>,
    pub subject: &'a str,
    /// At least one of `text` and `html` is present; both make a multipart/alternative.
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    /// Marketing email: its unsubscribe link, for the `List-Unsubscribe` and
    /// `List-Unsubscribe-Post` headers (RFC 8058). `None` for transactional email.
    pub list_unsubscribe: Option<&'a str>,
}

#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    Sms(SmsOut<'a>),
    Email(EmailOut<'a>),
}

impl Outgoing<'_> {
    pub fn message_id(&self) -> &str {
        match self {
            Outgoing::Sms(sms) => sms.message_id,
            Outgoing::Email(email) => email.message_id,
        }
    }
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id for it, used to match delivery receipts.
    pub provider_message_id: Option<String>,
}

/// Whether another try (here or at the next provider) can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Timeouts, connection failures, 5xx, rate limits, unknown errors: try the next provider,
    /// and later again with backoff.
    Retryable,
    /// The message itself is refused (invalid or blacklisted number, opt-out, bad address):
    /// stop at once. Account problems (rejected credentials, no credit, a wrong base URL) are
    /// retryable: an operator's fix, or the next provider, can still deliver the message.
    Final,
}

/// The provider did not take the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub disposition: Disposition,
    /// A short stable code: the provider's own error code where it gives one
    /// (`21211`, `EC_0002`, …), else ours (`timeout`, `network`, `http_503`, …).
    pub code: String,
    /// A human sentence for the message's attempt record. Never contains credentials or the
    /// message body; at most `MAX_FAILURE_MESSAGE` characters.
    pub message: String,
}

pub const MAX_FAILURE_MESSAGE: usize = 500;

impl Failure {
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure::new(Disposition::Retryable, code, message)
    }

    pub fn final_(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure::new(Disposition::Final, code, message)
    }

    pub fn new(
        disposition: Disposition,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Failure {
        let message: String = message.into();
        Failure {
            disposition,
            code: code.into(),
            message: message.chars().take(MAX_FAILURE_MESSAGE).collect(),
        }
    }
}

/// A delivery-receipt request as it arrived at `POST /v1/webhooks/sms/{provider}`, after the
/// receipt token was checked.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptRequest<'a> {
    pub content_type: Option<&'a str>,
    /// The raw query string (without `?`).
    pub query: &'a str,
    pub body: &'a [u8],
}

/// What a provider reports about one message it accepted earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub provider_message_id: String,
    pub status: ReceiptStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Handed to the handset.
    Delivered,
    /// Will not be delivered. `unreachable`: the number itself is bad (does not exist, barred).
    Failed { unreachable: bool },
    /// Still on its way (queued, sent to carrier): changes nothing.
    Pending,
}

/// An inbound-SMS request as it arrived at `POST /v1/webhooks/sms/{provider}/inbound`, after
/// the receipt token was checked.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub content_type: Option<&'a str>,
    /// The URL the provider was given and called: `{public_url}{path}?{query}` (Twilio signs
    /// it).
    pub url: &'a str,
    /// `X-Twilio-Signature`, when present.
    pub twilio_signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// One SMS a person sent to one of our numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The sender's number, as the provider wrote it.
    pub from: String,
    pub text: String,
}

/// Why an inbound request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundRefusal {
    /// The provider's signature is missing or wrong (401).
    Signature(String),
    /// Not an inbound message we understand (400).
    Malformed(String),
}

/// A provider adapter.
pub trait Provider: Send + Sync {
    /// The name used in settings, attempt records and the receipt URL (`twilio`, `smtp`, …).
    fn name(&self) -> &'static str;

    /// Hands one message over. Blocking; bounded by the configured provider timeout. Must never
    /// be called with a database transaction open.
    fn send(&self, message: &Outgoing<'_>) -> Result<Accepted, Failure>;

    /// Whether a call is seen outside crier. False only for `log`, which records and sends
    /// nothing: a delivery cycle through such a chain is counted by the settlement that records
    /// it, since a call a crash left unrecorded changed nothing anywhere.
    fn has_outside_effect(&self) -> bool {
        true
    }

    /// Parses a delivery-receipt request. `None`: this provider sends no receipts (the endpoint
    /// answers 404). `Some(Err(reason))`: the request is not a receipt we understand (400).
    fn parse_receipts(
        &self,
        _request: &ReceiptRequest<'_>,
    ) -> Option<Result<Vec<Receipt>, String>> {
        None
    }

    /// Parses (and, where the provider signs them, verifies) an inbound-SMS request. `None`:
    /// this provider forwards no inbound messages (the endpoint answers 404).
    fn parse_inbound(
        &self,
        _request: &InboundRequest<'_>,
    ) -> Option<Result<Vec<Inbound>, InboundRefusal>> {
        None
    }

    /// The workspace account this provider was built for; `None` for the instance's.
    fn account(&self) -> Option<&providers::account::AccountProvider> {
        None
    }
}

/// Exponential backoff with jitter for a message's next delivery cycle: `base × 2^(cycle-1)`,
/// capped at `max`, then scaled by a factor in [0.8, 1.2) taken from `jitter` (a value in [0, 1)).
pub fn backoff(base: Duration, max: Duration, cycle: u32, jitter: f64) -> Duration {
    let exponent = cycle.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exponent).min(max);
    raw.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_ends_a_wait_in_progress_and_one_given_an_older_generation() {
        use std::sync::Arc;
        use std::time::Instant;
        let signal = Arc::new(OutboxSignal::default());
        let seen = signal.generation();
        let waiter_signal = Arc::clone(&signal);
        let waiter = std::thread::spawn(move || {
            let started = Instant::now();
            waiter_signal.wait(seen, Duration::from_secs(60));
            started.elapsed()
        });
        // `notify` wakes only counted waiters: notify once this one is counted.
        while signal.lock().waiting == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        signal.notify();
        assert!(waiter.join().unwrap() < Duration::from_secs(30));
        assert_eq!(signal.lock().waiting, 0);
        // A notification that came before the wait began is not missed either.
        let started = Instant::now();
        signal.wait(seen, Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn sleep_ends_at_stop_not_at_other_notifications() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Instant;
        let signal = Arc::new(OutboxSignal::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (waker_signal, waker_stop) = (Arc::clone(&signal), Arc::clone(&stop));
        let waker = std::thread::spawn(move || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(20));
                waker_signal.notify();
            }
            waker_stop.store(true, Ordering::SeqCst);
            waker_signal.notify_stopping();
        });
        let started = Instant::now();
        signal.sleep(Duration::from_secs(60), &stop);
        waker.join().unwrap();
        // Woken by the stop, after the five plain notifications (100 ms), long before 60 s.
        assert!(stop.load(Ordering::SeqCst));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(30));
        // Once stopped, it does not sleep at all.
        let started = Instant::now();
        signal.sleep(Duration::from_secs(60), &stop);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn backoff_doubles_per_cycle_and_caps() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        assert_eq!(backoff(base, max, 1, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(base, max, 2, 0.5), Duration::from_secs(60));
        assert_eq!(backoff(base, max, 3, 0.5), Duration::from_secs(120));
        assert_eq!(backoff(base, max, 20, 0.5), max);
        assert_eq!(backoff(base, max, 1, 0.0), Duration::from_secs(24));
        assert!(backoff(base, max, 1, 0.999) < Duration::from_secs(36));
    }

    #[test]
    fn failure_messages_are_truncated() {
        let failure = Failure::retryable("x", "é".repeat(900));
        assert_eq!(failure.message.chars().count(), MAX_FAILURE_MESSAGE);
    }
}

/// Wakes idle dispatchers when a message becomes due (a send, the scheduler), so delivery does
/// not wait for the next poll.
///
/// A send notifies once per request, so `notify` stays cheap: it wakes the condition variable
/// only when someone waits on it, and the scheduler's `sleep` waits on another one that only
/// `notify_stopping` wakes (a send used to wake the sleeping scheduler, which went straight back
/// to sleep: two context switches and a contended lock per send, ~5 % of a send's CPU).
#[derive(Default)]
pub struct OutboxSignal {
    state: std::sync::Mutex<SignalState>,
    changed: std::sync::Condvar,
    stopping: std::sync::Condvar,
}

#[derive(Default)]
struct SignalState {
    generation: u64,
    /// Threads inside `wait`.
    waiting: usize,
}

impl OutboxSignal {
    fn lock(&self) -> std::sync::MutexGuard<'_, SignalState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends every `wait` in progress (and the next one given an older generation).
    pub fn notify(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        // Waiters count themselves under this lock before waiting: none can be missed.
        if state.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// `notify`, and ends every `sleep` in progress: for whoever has just set their `stop` flag.
    pub fn notify_stopping(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        self.changed.notify_all();
        self.stopping.notify_all();
    }

    /// The current generation, to pass to `wait`.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Waits until a notification after `seen`, or `timeout`.
    pub fn wait(&self, seen: u64, timeout: Duration) {
        let mut state = self.lock();
        state.waiting += 1;
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |state| state.generation == seen)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.waiting -= 1;
    }

    /// Sleeps for `timeout`, or until `stop` is set (whoever sets it then calls
    /// `notify_stopping`); other notifications do not end the sleep.
    pub fn sleep(&self, timeout: Duration, stop: &std::sync::atomic::AtomicBool) {
        let state = self.lock();
        let _ = self.stopping.wait_timeout_while(state, timeout, |_| {
            !stop.load(std::sync::atomic::Ordering::SeqCst)
        });
    }
}
