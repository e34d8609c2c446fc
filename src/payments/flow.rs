//! The payment flows that mix provider calls with short write transactions. A provider call is
//! never made with a transaction open: each flow writes what it is about to do, calls, then
//! writes what happened — and the state machine (`apply_verdict`) decides, inside the
//! transaction, what the answer changes.

use std::time::Instant;

use crate::app::App;
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{PaymentSessionId, WorkspaceId};
use crate::money::Money;
use crate::payments::provider::{
    CheckoutRequest, PaymentLookup, PaymentProvider, PaymentStatus, ProviderError, ProviderName,
    SignatureVerdict, Verification, WebhookRequest,
};
use crate::payments::store::{self, SessionRow, TransactionRow, WebhookRow};
use crate::payments::{Applied, Facts, SessionStatus, Verdict, apply_verdict};

/// What is being bought.
#[derive(Debug, Clone)]
pub struct Purchase {
    pub kind: &'static str,
    pub plan_code: Option<String>,
    pub amount: Money,
    pub description: String,
}

/// Who buys.
#[derive(Debug, Clone, Copy)]
pub struct Buyer<'a> {
    pub workspace_id: &'a WorkspaceId,
    /// User or API key id.
    pub actor_id: &'a str,
    pub email: &'a str,
    /// Who starts the payment, for the activity log.
    pub actor: &'a crate::activity::Actor,
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Creates a session and a checkout for it, trying the providers in order: one that cannot
/// (network error, timeout, 5xx, unsupported currency, not configured) hands over to the next;
/// every attempt is recorded. `reference` is stable for the request's Idempotency-Key, so a
/// provider sees the same idempotency key when a retry takes over.
pub fn start_checkout(
    app: &App,
    buyer: Buyer<'_>,
    purchase: &Purchase,
    reference: &str,
) -> Result<SessionRow, AppError> {
    let settings = &app.config.payments;
    let now = app.clock.now();
    let now_text = format_timestamp(now);
    let expires_at = now + crate::clock::span(settings.session_lifetime);
    let session = SessionRow {
        id: PaymentSessionId::generate(&app.ids),
        workspace_id: buyer.workspace_id.clone(),
        kind: purchase.kind.to_owned(),
        plan_code: purchase.plan_code.clone(),
        amount_minor: purchase.amount.amount_minor,
        currency: purchase.amount.currency.clone(),
        status: SessionStatus::Pending,
        provider: None,
        provider_reference: None,
        checkout_url: None,
        created_by: buyer.actor_id.to_owned(),
        customer_email: buyer.email.to_owned(),
        expires_at: format_timestamp(expires_at),
        fulfilled_at: None,
        refunded_minor: 0,
        refund_debited_minor: 0,
        refund_shortfall_minor: 0,
        flag: None,
        failure_reason: None,
        created_at: now_text.clone(),
        updated_at: now_text,
    };
    app.db.write(|conn| {
        store::insert_session(conn, &session)?;
        // Payments are live only; the amount is the buyer's own, not a secret.
        let mut event = crate::activity::Event::new(crate::activity::Action::PaymentStarted)
            .workspace(&session.workspace_id)
            .mode(crate::vocabulary::Mode::Live)
            .target(session.id.as_str())
            .detail("kind", session.kind.as_str())
            .detail("amount_minor", session.amount_minor)
            .detail("currency", session.currency.as_str());
        if let Some(plan_code) = &session.plan_code {
            event = event.detail("plan_code", plan_code.as_str());
        }
        crate::activity::record(conn, &app.ids, buyer.actor, event, now)
    })?;
    let return_url = format!(
        "{}?session={}",
        settings
            .return_url
            .clone()
            .unwrap_or_else(|| format!("{}/billing/return", app.config.public_url)),
        session.id
    );
    let mut attempts = Vec::new();
    for provider in app.payments.ordered() {
        // Per request key *and* session: a retry that starts a new session (after a 502) must not
        // reuse a provider key with other parameters (Stripe refuses that for 24 hours).
        let idempotency_key = format!("{reference}-{}-{}", session.id, provider.name().as_str());
        let request = CheckoutRequest {
            session_id: session.id.as_str(),
            idempotency_key: &idempotency_key,
            workspace_id: buyer.workspace_id.as_str(),
            kind: purchase.kind,
            plan_code: purchase.plan_code.as_deref(),
            amount: &purchase.amount,
            description: &purchase.description,
            customer_email: buyer.email,
            return_url: &return_url,
            cancel_url: &return_url,
            expires_at_unix: expires_at.timestamp(),
            now_unix: now.timestamp(),
        };
        let started = Instant::now();
        let result = provider.create_checkout(&request);
        let mut transaction = new_transaction(app, &session.id, provider.name(), "create_checkout");
        transaction.duration_ms = elapsed_ms(started);
        match result {
            Ok(checkout) => {
                transaction.outcome = "ok".to_owned();
                transaction.provider_reference = checkout.provider_reference.clone();
                transaction.raw_status = Some(checkout.raw_status.clone());
                transaction.status = Some("redirected".to_owned());
                return app.db.write(|conn| {
                    store::insert_transaction(conn, &transaction)?;
                    let mut current =
                        store::find_session(conn, &session.id, None)?.ok_or(AppError::NotFound)?;
                    if current.status == SessionStatus::Pending {
                        current.status = current.status.move_to(SessionStatus::Redirected)?;
                        current.provider = Some(provider.name().as_str().to_owned());
                        current.provider_reference = checkout.provider_reference.clone();
                        current.checkout_url = Some(checkout.checkout_url.clone());
                        current.updated_at = format_timestamp(app.clock.now());
                        store::update_session(conn, &current)?;
                    }
                    Ok(current)
                });
            }
            Err(error) => {
                record_error(&mut transaction, &error);
                app.db
                    .write(|conn| store::insert_transaction(conn, &transaction))?;
                attempts.push((
                    provider.name().as_str().to_owned(),
                    error.code.clone(),
                    error.message.clone(),
                ));
                log::warn!(
                    target: "crier::payments",
                    session_id = session.id.as_str(), provider = provider.name().as_str(),
                    code = error.code.as_str();
                    "checkout not created: {}", error.message
                );
                if !error.try_next {
                    break;
                }
            }
        }
    }
    let reason = if attempts.is_empty() {
        "no payment provider is configured".to_owned()
    } else {
        "no payment provider could create a checkout".to_owned()
    };
    app.db.write(|conn| {
        let mut failed = store::find_session(conn, &session.id, None)?.ok_or(AppError::NotFound)?;
        // Nobody else moves a session without a checkout, but an ended one stays as it ended.
        if failed.status.is_terminal() {
            return Ok(());
        }
        failed.status = failed.status.move_to(SessionStatus::Failed)?;
        failed.failure_reason = Some(reason.clone());
        failed.updated_at = format_timestamp(app.clock.now());
        store::update_session(conn, &failed)
    })?;
    Err(AppError::PaymentProviderUnavailable { attempts })
}

fn new_transaction(
    app: &App,
    session_id: &PaymentSessionId,
    provider: ProviderName,
    operation: &str,
) -> TransactionRow {
    TransactionRow {
        id: app.ids.new_id("ptx"),
        session_id: session_id.clone(),
        provider: provider.as_str().to_owned(),
        operation: operation.to_owned(),
        outcome: "error".to_owned(),
        provider_reference: None,
        raw_status: None,
        status: None,
        error_code: None,
        error_message: None,
        duration_ms: 0,
        created_at: format_timestamp(app.clock.now()),
    }
}

fn record_error(transaction: &mut TransactionRow, error: &ProviderError) {
    transaction.outcome = "error".to_owned();
    transaction.error_code = Some(error.code.clone());
    transaction.error_message = Some(error.message.clone());
}

/// What a provider said when asked about a session: the record of the call, and its verdict
/// (or why there is none).
pub(crate) struct Asked {
    pub transaction: TransactionRow,
    pub verdict: Result<Verdict, ProviderError>,
}

/// Asks the session's provider about the payment. No transaction may be open: this is the slow
/// part (bounded by the provider timeout), and it writes nothing.
pub(crate) fn ask_provider(
    app: &App,
    provider: &dyn PaymentProvider,
    session: &SessionRow,
    provider_reference: Option<&str>,
    from_event: bool,
) -> Asked {
    let started = Instant::now();
    let result = provider.verify(&PaymentLookup {
        session_id: session.id.as_str(),
        provider_reference: provider_reference.or(session.provider_reference.as_deref()),
    });
    let mut transaction = new_transaction(app, &session.id, provider.name(), "verify");
    transaction.duration_ms = elapsed_ms(started);
    let verification: Verification = match result {
        Ok(verification) => verification,
        Err(error) => {
            record_error(&mut transaction, &error);
            return Asked {
                transaction,
                verdict: Err(error),
            };
        }
    };
    transaction.outcome = "ok".to_owned();
    transaction.provider_reference = verification.provider_reference.clone();
    transaction.raw_status = Some(verification.raw_status.clone());
    transaction.status = Some(verification.status.as_str().to_owned());
    // A failed or abandoned Flutterwave transaction is one attempt on a checkout the payer can
    // still pay (same tx_ref): the session stays open until it expires.
    let status = match (provider.name(), verification.status) {
        (ProviderName::Flutterwave, PaymentStatus::Failed | PaymentStatus::Cancelled) => {
            PaymentStatus::Pending
        }
        (_, status) => status,
    };
    Asked {
        transaction,
        verdict: Ok(Verdict {
            status,
            facts: Some(Facts {
                reference: verification.reference,
                amount_minor: verification.amount_minor,
                currency: verification.currency,
            }),
            provider_reference: verification.provider_reference,
            refunded_minor: None,
            from_event,
        }),
    }
}

/// Asks the session's provider about the payment (no transaction open), then records the
/// answer and applies it in one write. Returns the verdict's effect.
fn verify_with(
    app: &App,
    provider: &dyn PaymentProvider,
    session: &SessionRow,
) -> Result<Applied, AppError> {
    let asked = ask_provider(app, provider, session, None, false);
    let now = app.clock.now();
    let verdict = match asked.verdict {
        Ok(verdict) => verdict,
        Err(error) => {
            app.db
                .write(|conn| store::insert_transaction(conn, &asked.transaction))?;
            return Err(AppError::PaymentProviderUnavailable {
                attempts: vec![(
                    provider.name().as_str().to_owned(),
                    error.code,
                    error.message,
                )],
            });
        }
    };
    app.db.write(|conn| {
        store::insert_transaction(conn, &asked.transaction)?;
        apply_verdict(
            conn,
            &app.ids,
            &app.config.billing_catalog,
            &session.id,
            &verdict,
            now,
        )
    })
}

/// `POST /v1/payments/sessions/{id}/verify`: the truth from the provider, now. Synchronous (the
/// payer waits on the return page), bounded by the provider timeout; it may race the payments
/// worker on the same session, and `apply_verdict` re-reading the session inside the write
/// makes the second one a no-op.
pub fn verify_session(app: &App, session: &SessionRow) -> Result<Applied, AppError> {
    if session.status.is_terminal() {
        return Ok(Applied::Unchanged(format!(
            "the session is already {}",
            session.status
        )));
    }
    let Some(provider) = session
        .provider
        .as_deref()
        .and_then(ProviderName::parse)
        .and_then(|name| app.payments.provider(name))
    else {
        return Ok(Applied::Unchanged(
            "the session has no checkout to verify".to_owned(),
        ));
    };
    verify_with(app, provider.as_ref(), session)
}

/// Largest payload kept in the journal for an event whose signature holds.
const MAX_JOURNALLED_PAYLOAD: usize = 64 * 1024;

/// What the journal keeps of a request whose signature does not hold: anyone can send one, so
/// only its first characters (enough to see what was sent) and its size.
const REJECTED_PAYLOAD_PREFIX: usize = 256;

/// What became of a signed webhook event: journalled now, or a repeat of one journalled before
/// (with what became of that one: `received`, `applied`, `not_applied`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journalled {
    New,
    Repeat { outcome: String },
}

/// A provider's webhook: signature on the raw bytes first (401 and nothing journalled as an
/// event when it fails), then the journal, and the answer. Verifying with the provider and
/// applying the verdict is the payments worker's (`payments::worker`), woken here: a provider
/// that is slow or down never holds an HTTP worker. A repeat of an event already journalled is
/// counted on its row and answered the same way, never journalled or applied twice.
pub fn receive_webhook(
    app: &App,
    name: ProviderName,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Journalled, AppError> {
    let provider = app.payments.provider(name).ok_or(AppError::NotFound)?;
    let now = app.clock.now();
    let payload: String = String::from_utf8_lossy(body)
        .chars()
        .take(MAX_JOURNALLED_PAYLOAD)
        .collect();
    let mut journal = WebhookRow {
        id: app.ids.new_id("whk"),
        provider: name.as_str().to_owned(),
        event_id: None,
        event_type: None,
        signature: "invalid".to_owned(),
        payload,
        session_id: None,
        outcome: "rejected".to_owned(),
        reason: None,
        claimed_status: None,
        provider_reference: None,
        refunded_minor: None,
        received_at: format_timestamp(now),
    };
    let request = WebhookRequest {
        headers,
        body,
        now_unix: now.timestamp(),
    };
    if let SignatureVerdict::Invalid(why) = provider.check_signature(&request) {
        journal.payload = journal
            .payload
            .chars()
            .take(REJECTED_PAYLOAD_PREFIX)
            .collect();
        journal.reason = Some(format!(
            "signature: {why} (body of {} bytes; its first {REJECTED_PAYLOAD_PREFIX} characters kept)",
            body.len()
        ));
        app.db
            .write(|conn| store::journal_webhook(conn, &journal))?;
        app.metrics.record_webhook(name.as_str(), "unauthenticated");
        return Err(AppError::InvalidSignature(format!(
            "The {} webhook signature is missing or does not match ({why}); check the webhook \
             secret configured for it.",
            name.as_str()
        )));
    }
    journal.signature = "valid".to_owned();
    let event = match provider.parse_event(body) {
        Ok(event) => event,
        Err(why) => {
            journal.reason = Some(format!("not an event: {why}"));
            app.db
                .write(|conn| store::journal_webhook(conn, &journal))?;
            app.metrics.record_webhook(name.as_str(), "rejected");
            return Err(AppError::BadRequest(format!(
                "The webhook body is not an event crier understands: {why}."
            )));
        }
    };
    journal.event_id = Some(event.event_id);
    journal.event_type = Some(event.event_type);
    journal.session_id = event.session_id;
    journal.claimed_status = Some(event.status.as_str().to_owned());
    journal.provider_reference = event.provider_reference;
    journal.refunded_minor = event.refunded_minor;
    journal.outcome = "received".to_owned();
    let earlier = app
        .db
        .write(|conn| store::journal_webhook(conn, &journal))?;
    // Committed: from here the event survives a crash and the worker will apply it.
    let journalled = match earlier {
        None => {
            app.metrics.record_webhook(name.as_str(), "received");
            Journalled::New
        }
        Some((_, outcome)) => {
            app.metrics.record_webhook(name.as_str(), "duplicate");
            Journalled::Repeat { outcome }
        }
    };
    app.webhook_journal.notify();
    Ok(journalled)
}

/// How long after its own expiry an unpaid session is given before the janitor expires it: a
/// provider's checkout may outlive ours a little (Stripe's cannot close sooner than about 31
/// minutes after it opened), and a payer still on it must not pay for an expired session.
const EXPIRY_GRACE_MINUTES: i64 = 10;
/// Sessions the janitor looks at per round.
const JANITOR_BATCH: usize = 50;

/// The janitor's part of the webhook journal: events settled or rejected longer ago than the
/// retention are deleted, a batch per round. Returns how many went.
pub fn prune_webhook_journal(app: &App, now: Timestamp) -> Result<usize, AppError> {
    let retention = chrono::Duration::from_std(app.config.payments.webhook_retention)
        .map_err(|_| AppError::internal("webhook retention out of range"))?;
    let cutoff = format_timestamp(now - retention);
    app.db
        .write(|conn| store::delete_old_webhook_events(conn, &cutoff, JANITOR_PRUNE_BATCH))
}

/// Journal events deleted per janitor round at most, so one round never holds the writer long.
const JANITOR_PRUNE_BATCH: usize = 5_000;

/// The janitor's part. Open sessions past their lifetime (plus a grace period) are verified
/// with their provider first — a payment whose webhook never came is credited, not lost — and
/// expire only if still unpaid. Sessions a provider reported as under way (`processing`) are
/// verified again, never expired by time. A provider that cannot be reached leaves the session
/// for the next round. Returns how many sessions changed.
pub fn expire_sessions(app: &App, now: Timestamp) -> Result<usize, AppError> {
    let cutoff = format_timestamp(now - chrono::Duration::minutes(EXPIRY_GRACE_MINUTES));
    let due = app
        .db
        .read(|conn| store::sessions_to_reconcile(conn, &cutoff, JANITOR_BATCH))?;
    let mut changed = 0;
    for session in due {
        let provider = session
            .provider
            .as_deref()
            .and_then(ProviderName::parse)
            .and_then(|name| app.payments.provider(name));
        if let Some(provider) = provider {
            match verify_with(app, provider.as_ref(), &session) {
                Ok(Applied::Changed) => {
                    changed += 1;
                    continue;
                }
                Ok(Applied::Unchanged(_)) => {}
                Err(_) => continue,
            }
        }
        if session.status != SessionStatus::Processing {
            let expired = app.db.write(|conn| {
                store::expire_open_session(conn, &session.id, &format_timestamp(app.clock.now()))
            })?;
            changed += usize::from(expired);
        }
    }
    Ok(changed)
}
