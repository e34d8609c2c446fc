//! The payments worker: one background thread that applies the payment webhook events the
//! webhook handler journalled (`payment_webhook_events` rows in `received`).
//!
//! For each due event it finds the session, asks the provider where the event alone is not proof
//! (every Flutterwave event, a Stripe success) with no transaction open, then — in one write —
//! records the call and applies the verdict through the state machine, settling the journal row
//! in the same transaction. Value is given exactly once however the worker, the return page's
//! verify call and the janitor race: `apply_verdict` re-reads the session inside the write.
//!
//! An event the provider cannot answer about (network error, timeout, 5xx), or a success the
//! provider does not confirm yet, stays `received`, one attempt more, due again after a backoff
//! (`RETRY_BASE` doubling per attempt up to `RETRY_MAX`); after `MAX_ATTEMPTS` it is settled
//! `not_applied` with why (the janitor still verifies the session before it expires). Pending
//! events live in the database, so a crash between journalling and applying only delays them:
//! the next worker picks them up. The worker is woken when an event is journalled and also polls,
//! since retries come due by time alone. On shutdown it finishes the event in hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::Connection;

use crate::app::App;
use crate::clock::{Timestamp, format_timestamp, span};
use crate::error::{AppError, StartupError};
use crate::ids::PaymentSessionId;
use crate::payments::flow::ask_provider;
use crate::payments::provider::{PaymentProvider, PaymentStatus, ProviderName};
use crate::payments::store::{self, PendingEvent, SessionRow};
use crate::payments::{Applied, Verdict, apply_verdict};

/// Events looked at per round.
const BATCH: usize = 20;
/// The wait after a first failed attempt; it doubles with each further one.
const RETRY_BASE: Duration = Duration::from_secs(30);
/// The longest wait between attempts.
const RETRY_MAX: Duration = Duration::from_secs(60 * 60);
/// Attempts before an event is given up (about 19 hours of retries with the waits above).
pub const MAX_ATTEMPTS: u32 = 25;

/// The running worker thread; `stop` (or drop) ends it.
pub struct PaymentsWorker {
    app: Arc<App>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<PaymentsWorker, StartupError> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
        thread::Builder::new()
            .name("payments".to_owned())
            .spawn(move || run(&app, &stop))
            .map_err(|err| StartupError(format!("cannot start the payments worker: {err}")))?
    };
    Ok(PaymentsWorker {
        app,
        stop,
        thread: Some(thread),
    })
}

impl PaymentsWorker {
    /// Lets the worker finish the event in hand (a provider call is bounded by its timeout).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.app.webhook_journal.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PaymentsWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(app: &App, stop: &AtomicBool) {
    let poll = app.config.payments.worker_poll;
    while !stop.load(Ordering::SeqCst) {
        // Read before the round: an event journalled during it ends the wait at once.
        let seen = app.webhook_journal.generation();
        match guarded(|| apply_due_events(app, stop)) {
            // A full batch: more may be due.
            Ok(handled) if handled >= BATCH => {}
            Ok(_) => app.webhook_journal.wait(seen, poll),
            Err(err) => {
                log::warn!(target: "crier::payments", error:% = err; "payments worker round failed; retrying");
                app.webhook_journal.wait(seen, poll);
            }
        }
    }
}

/// Runs one round, turning a panic (a bug in a provider adapter, say) into an error so the
/// thread lives on; the event stays pending and is tried again.
fn guarded(round: impl FnOnce() -> Result<usize, AppError>) -> Result<usize, AppError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(round))
        .unwrap_or_else(|_| Err(AppError::internal("a payments worker round panicked")))
}

/// One round: the events due now, longest-waiting first, each settled or postponed, until
/// `stop` is set. Returns how many were looked at.
pub fn apply_due_events(app: &App, stop: &AtomicBool) -> Result<usize, AppError> {
    let now = format_timestamp(app.clock.now());
    let due = app
        .db
        .read(|conn| store::due_webhook_events(conn, &now, BATCH))?;
    let mut handled = 0;
    for event in &due {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Err(err) = apply_event(app, event) {
            // Its write was rolled back. It waits like an event whose provider failed, so one
            // that always fails cannot keep the worker busy.
            log::warn!(
                target: "crier::payments", event = event.id.as_str(), error:% = err;
                "a journalled payment event could not be applied; it will be tried again"
            );
            let why = err.to_string();
            app.db
                .write(|conn| postpone_or_give_up(conn, event, &why, app.clock.now()))?;
        }
        handled += 1;
    }
    Ok(handled)
}

/// What became of one event, for the webhook metrics.
fn verdict_word(applied: &Applied) -> &'static str {
    match applied {
        Applied::Changed => "applied",
        Applied::Unchanged(_) => "not_applied",
    }
}

/// Verifies (where needed) and applies one journalled event, or settles it as not applied.
fn apply_event(app: &App, event: &PendingEvent) -> Result<(), AppError> {
    let Some((name, provider)) = ProviderName::parse(&event.provider)
        .and_then(|name| Some((name, app.payments.provider(name)?)))
    else {
        return settle_unapplied(app, event, "not a payment provider crier knows", None);
    };
    let Some(claimed) = event
        .claimed_status
        .as_deref()
        .and_then(PaymentStatus::parse)
    else {
        return settle_unapplied(app, event, "the event's status was not journalled", None);
    };
    let Some(session) = session_of(app, name, event)? else {
        return settle_unapplied(app, event, "no such payment session", None);
    };
    // Only a success may come from a provider the session did not end up with (the payer used
    // an earlier checkout); anything else from it is about a checkout nobody uses.
    let other_provider = session
        .provider
        .as_deref()
        .is_some_and(|used| used != name.as_str());
    if other_provider && claimed != PaymentStatus::Succeeded {
        let why = "about a checkout of another provider";
        return settle_unapplied(app, event, why, Some(&session.id));
    }
    // Flutterwave's signature proves only that the sender knows the hash, so everything it
    // says is re-verified; a Stripe event is signed proof of itself, but a success is still
    // checked against the amounts before value is given.
    let verdict = if name == ProviderName::Flutterwave || claimed == PaymentStatus::Succeeded {
        verify_and_apply(app, provider.as_ref(), event, &session, claimed)?
    } else {
        let verdict = Verdict {
            status: claimed,
            facts: None,
            provider_reference: event.provider_reference.clone(),
            refunded_minor: event.refunded_minor,
            from_event: true,
        };
        apply_signed_event(app, event, &session, &verdict)?
    };
    app.metrics.record_webhook(name.as_str(), verdict);
    Ok(())
}

/// The session an event is about: by our id, else by the provider's payment id.
fn session_of(
    app: &App,
    name: ProviderName,
    event: &PendingEvent,
) -> Result<Option<SessionRow>, AppError> {
    app.db.read(|conn| {
        if let Some(id) = event
            .session_id
            .as_deref()
            .and_then(PaymentSessionId::parse)
            && let Some(session) = store::find_session(conn, &id, None)?
        {
            return Ok(Some(session));
        }
        match &event.provider_reference {
            Some(reference) => {
                store::find_session_by_provider_reference(conn, name.as_str(), reference)
            }
            None => Ok(None),
        }
    })
}

/// Settles an event that cannot change anything, with why.
fn settle_unapplied(
    app: &App,
    event: &PendingEvent,
    why: &str,
    session_id: Option<&PaymentSessionId>,
) -> Result<(), AppError> {
    let now = format_timestamp(app.clock.now());
    app.db.write(|conn| {
        store::settle_webhook(
            conn,
            &event.id,
            ("not_applied", Some(why)),
            session_id,
            &now,
        )
    })?;
    app.metrics.record_webhook(&event.provider, "not_applied");
    Ok(())
}

/// Applies what a signed event says by itself (a Stripe failure, expiry or refund) and settles
/// it, in one write.
fn apply_signed_event(
    app: &App,
    event: &PendingEvent,
    session: &SessionRow,
    verdict: &Verdict,
) -> Result<&'static str, AppError> {
    let now = app.clock.now();
    app.db.write(|conn| {
        let applied = apply_verdict(
            conn,
            &app.ids,
            &app.config.billing_catalog,
            &session.id,
            verdict,
            now,
        )?;
        settle(conn, event, &applied, &session.id, now)?;
        Ok(verdict_word(&applied))
    })
}

/// Asks the provider (no transaction open), then in one write records the call and either
/// applies the answer and settles the event, or — the provider could not answer, or does not
/// confirm a success the event claims — postpones it.
fn verify_and_apply(
    app: &App,
    provider: &dyn PaymentProvider,
    event: &PendingEvent,
    session: &SessionRow,
    claimed: PaymentStatus,
) -> Result<&'static str, AppError> {
    let asked = ask_provider(
        app,
        provider,
        session,
        event.provider_reference.as_deref(),
        true,
    );
    let now = app.clock.now();
    app.db.write(|conn| {
        store::insert_transaction(conn, &asked.transaction)?;
        let verdict = match &asked.verdict {
            Ok(verdict) => verdict,
            Err(error) => return postpone_or_give_up(conn, event, &error.message, now),
        };
        let applied = apply_verdict(
            conn,
            &app.ids,
            &app.config.billing_catalog,
            &session.id,
            verdict,
            now,
        )?;
        if claimed == PaymentStatus::Succeeded && verdict.status == PaymentStatus::Pending {
            // Said paid, not confirmed yet (the money may still be on its way): look again.
            let why = "the provider does not confirm the payment yet";
            return postpone_or_give_up(conn, event, why, now);
        }
        settle(conn, event, &applied, &session.id, now)?;
        Ok(verdict_word(&applied))
    })
}

fn settle(
    conn: &Connection,
    event: &PendingEvent,
    applied: &Applied,
    session_id: &PaymentSessionId,
    now: Timestamp,
) -> Result<(), AppError> {
    let reason = match applied {
        Applied::Changed => None,
        Applied::Unchanged(why) => Some(why.as_str()),
    };
    store::settle_webhook(
        conn,
        &event.id,
        (verdict_word(applied), reason),
        Some(session_id),
        &format_timestamp(now),
    )
}

/// When an event that failed `attempts` times is tried next: `RETRY_BASE`, doubling per
/// attempt, at most `RETRY_MAX`.
pub fn retry_delay(attempts: u32) -> Duration {
    // A jitter of 0.5 is a factor of exactly 1: one worker needs no spreading out.
    crate::delivery::backoff(RETRY_BASE, RETRY_MAX, attempts, 0.5)
}

/// Postpones the event after one more failed attempt, or settles it `not_applied` once it has
/// had `MAX_ATTEMPTS`. Returns the verdict for the metrics.
fn postpone_or_give_up(
    conn: &Connection,
    event: &PendingEvent,
    why: &str,
    now: Timestamp,
) -> Result<&'static str, AppError> {
    let attempts = event.attempts.saturating_add(1);
    let now_text = format_timestamp(now);
    if attempts >= MAX_ATTEMPTS {
        let reason = format!("given up after {attempts} attempts: {why}");
        store::postpone_webhook(conn, &event.id, &now_text, why, &now_text)?;
        store::settle_webhook(
            conn,
            &event.id,
            ("not_applied", Some(&reason)),
            None,
            &now_text,
        )?;
        return Ok("abandoned");
    }
    let next = format_timestamp(now + span(retry_delay(attempts)));
    store::postpone_webhook(conn, &event.id, &next, why, &now_text)?;
    Ok("deferred")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        assert_eq!(retry_delay(1), Duration::from_secs(30));
        assert_eq!(retry_delay(2), Duration::from_secs(60));
        assert_eq!(retry_delay(3), Duration::from_secs(120));
        assert_eq!(retry_delay(8), Duration::from_secs(3600));
        assert_eq!(retry_delay(MAX_ATTEMPTS), Duration::from_secs(3600));
        let total: Duration = (1..MAX_ATTEMPTS).map(retry_delay).sum();
        assert!(
            total > Duration::from_secs(12 * 3600) && total < Duration::from_secs(24 * 3600),
            "{total:?}"
        );
    }
}
