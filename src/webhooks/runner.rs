//! The webhook runner: one background thread that prepares recorded events into deliveries and
//! sends the due ones, between short transactions (never a network call inside one).
//!
//! A round: prepare up to `PREPARE_BATCH` events (one write); claim up to `SEND_BATCH` due
//! deliveries, each leased past the attempt's timeout (one write); send them, `SENDERS` at a
//! time, each through the guarded client (the target's addresses checked as it connects, no
//! redirects); record every outcome (one write). A crash between the claim and the record
//! loses nothing: at the next start every delivery still leased is due again and is sent again
//! (consumers dedupe by event id). The thread is woken by the routes that queue a delivery and polls otherwise, since
//! events are recorded by triggers and retries come due by time alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::clock::span;
use crate::error::{AppError, StartupError};
use crate::outbound::{HttpClient, Payload, TargetPolicy, guarded_client};
use crate::webhooks::{self, AttemptResult, Claimed};

/// Events prepared per write.
const PREPARE_BATCH: usize = 200;
/// Deliveries claimed per round.
const SEND_BATCH: usize = 64;
/// Attempts in flight at once.
const SENDERS: usize = 8;
/// The wait between rounds when there was nothing to do.
const POLL: Duration = Duration::from_millis(200);
/// A claim lasts the attempt's timeout and this much more.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The running thread; `stop` (or drop) ends it after the round in hand.
pub struct WebhookRunner {
    app: Arc<App>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<WebhookRunner, StartupError> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
        thread::Builder::new()
            .name("webhooks".to_owned())
            .spawn(move || run(&app, &stop))
            .map_err(|err| StartupError(format!("cannot start the webhook runner: {err}")))?
    };
    Ok(WebhookRunner {
        app,
        stop,
        thread: Some(thread),
    })
}

impl WebhookRunner {
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.app.webhooks.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WebhookRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(app: &App, stop: &AtomicBool) {
    let settings = &app.config.webhooks;
    let client = guarded_client(
        settings.timeout,
        TargetPolicy {
            allow_private: settings.allow_private,
        },
    );
    match app
        .db
        .write(|conn| webhooks::release_leases(conn, app.clock.now()))
    {
        Ok(0) => {}
        Ok(released) => {
            log::info!(target: "crier::webhooks", released; "webhook deliveries cut by a stop are due again");
        }
        Err(err) => {
            log::warn!(target: "crier::webhooks", error:% = err; "could not release the webhook leases");
        }
    }
    while !stop.load(Ordering::SeqCst) {
        let seen = app.webhooks.generation();
        let round =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| round(app, &client, stop)))
                .unwrap_or_else(|_| Err(AppError::internal("a webhook round panicked")));
        match round {
            Ok(true) => {}
            Ok(false) => app.webhooks.wait(seen, POLL),
            Err(err) => {
                log::warn!(target: "crier::webhooks", error:% = err; "webhook round failed; retrying");
                app.webhooks.wait(seen, POLL);
            }
        }
    }
}

/// One round; `true` when it found work (another round follows at once).
pub fn round(app: &App, client: &HttpClient, stop: &AtomicBool) -> Result<bool, AppError> {
    let prepared = app
        .db
        .write(|conn| webhooks::prepare_events(conn, &app.ids, app.clock.now(), PREPARE_BATCH))?;
    if stop.load(Ordering::SeqCst) {
        return Ok(false);
    }
    let now = app.clock.now();
    let lease_until = now + span(app.config.webhooks.timeout + LEASE_MARGIN);
    let claimed = app
        .db
        .write(|conn| webhooks::claim_due(conn, now, lease_until, SEND_BATCH))?;
    if claimed.is_empty() {
        return Ok(prepared > 0);
    }
    let results = send_all(app, client, &claimed);
    let now = app.clock.now();
    app.db.write(|conn| {
        for (claim, result) in claimed.iter().zip(&results) {
            webhooks::record_attempt(conn, &claim.delivery, result, now, jitter(app))?;
        }
        Ok(())
    })?;
    for (claim, result) in claimed.iter().zip(&results) {
        let outcome = match &result.reply {
            Ok(reply) => reply.status.to_string(),
            Err(failure) => failure.code.clone(),
        };
        log::info!(
            target: "crier::webhooks",
            delivery = claim.delivery.id.as_str(), event = claim.delivery.event_id.as_str(),
            outcome = outcome.as_str(), latency_ms = result.latency_ms;
            "webhook attempt"
        );
    }
    Ok(true)
}

/// Sends every claimed delivery, `SENDERS` at a time; results in the same order.
fn send_all(app: &App, client: &HttpClient, claimed: &[Claimed]) -> Vec<AttemptResult> {
    let chunk = claimed.len().div_ceil(SENDERS).max(1);
    thread::scope(|scope| {
        let handles: Vec<_> = claimed
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|c| send(app, client, c)).collect()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Vec::<AttemptResult>::new())
            })
            .collect()
    })
}

fn send(app: &App, client: &HttpClient, claim: &Claimed) -> AttemptResult {
    let unix_seconds = app.clock.now().timestamp();
    let signature = webhooks::signature_header(&claim.secrets, unix_seconds, &claim.payload);
    let started = Instant::now();
    let reply = client.post_guarded(
        &claim.url,
        &[
            ("Crier-Signature", signature.as_str()),
            ("Crier-Event-Id", claim.delivery.event_id.as_str()),
            ("Crier-Event-Type", claim.delivery.event_type.as_str()),
            ("Crier-Delivery-Id", claim.delivery.id.as_str()),
            ("User-Agent", "crier-webhooks/1"),
        ],
        Payload::Json(claim.payload.clone().into_bytes()),
    );
    AttemptResult {
        reply,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// A value in [0, 1) from the id source, for the backoff's jitter.
fn jitter(app: &App) -> f64 {
    let bytes = app.ids.random_bytes(4);
    let value = bytes
        .iter()
        .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
    f64::from(value) / (f64::from(u32::MAX) + 1.0)
}
