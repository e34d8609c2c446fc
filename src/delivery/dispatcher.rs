//! The outbox dispatcher and the scheduler: background threads that deliver stored messages.
//!
//! A dispatcher claims a batch of due messages in one write (`queued` → `sending`, with a lease
//! naming it), then for each message walks the channel's providers in order with no transaction
//! open, and records every call with the settlement it leads to:
//! - accepted → `sent`;
//! - a final error → `failed`, refunded in the same transaction;
//! - a retryable error → the next provider; after the last one the message goes back to
//!   `queued` with exponential backoff, or — after `max_delivery_cycles` — `failed` and refunded.
//!
//! Settlements are written together, one write (one commit) for many messages: when the batch
//! is done, when the oldest has waited `SETTLE_WITHIN` (a slow provider), before a fallback to
//! the next provider (which must know the message is still ours), and before stopping. Each
//! message's settlement runs in its own savepoint (`Db::write_each`), so one that fails changes
//! nothing for the others.
//!
//! A dispatcher that dies leaves its messages `sending` — those it delivered but had not settled
//! yet too — until their lease expires; any dispatcher then claims them again (delivery is
//! at-least-once towards providers; a crash re-sends at most one batch per dispatcher). A
//! settlement names the lease owner, so a dispatcher whose claim was taken over changes nothing,
//! and a refund happens only in the transaction that moved the message to `failed` — at most
//! once.
//!
//! A delivery cycle (one walk of the chain) is counted when delivery comes to it, not when the
//! batch is claimed: one small write just before the first call of a window of messages counts
//! the cycle of each (`store::begin_cycles`). The window is one message while calls are slow
//! and grows to `MAX_CYCLE_WINDOW` while they are quick (from one batch to the next: it starts
//! again at one only after a slow call, an idle round or an error), so a crash spends the cycle of the
//! message in hand — and, against a fast provider, of at most a window behind it — never those
//! of the rest of the batch; a graceful stop gives back the cycles of the window's messages not
//! yet called. (A write for every message halved the drain to `log`.) A chain of `log` alone
//! (test mode, the embedded default) has no such write: its settlement counts the cycle, as a
//! call that a crash left unsettled sent nothing anywhere.
//!
//! On shutdown a dispatcher finishes the message in hand and hands the rest of its batch back.

use crate::vocabulary::Mode;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::billing::{self, Channel};
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::reach;
use crate::contacts::unsubscribe::unsubscribe_url;
use crate::contacts::{EmailState, PhoneState};
use crate::delivery::accounts::{self, store::AccountRow};
use crate::delivery::marketing::{self, MarketingEmail};
use crate::delivery::providers::account::{AccountProvider, NoUsableAccount};
use crate::delivery::providers::smtp::DkimSigner;
use crate::delivery::{
    Disposition, EmailOut, Outgoing, Provider, Providers, SmsOut, backoff, routes,
};
use crate::error::{AppError, StartupError};
use crate::ids::{MessageId, ProviderAccountId};
use crate::messages::compose::Category;
use crate::messages::store::{self, AttemptRow, MessageRow, Settlement};
use crate::scope::WorkspaceScope;
use crate::sending_domains;

/// Scheduled messages moved to `queued` per scheduler write.
const SCHEDULER_BATCH: usize = 1000;

/// Longest a delivered message waits for its settlement to be written with others'. Short next
/// to any lease, so a settlement lands well before the lease it relies on runs out.
const SETTLE_WITHIN: Duration = Duration::from_millis(50);

/// The most messages whose cycles one write counts, just before the first of them is called.
/// The window starts at one message and doubles up to this while calls come back within
/// `FAST_CALL`, falling back to one after a slower call: against a slow provider every cycle is
/// counted exactly (a write costs nothing next to the call), against a fast one (`log`, a local
/// relay) a crash may spend the cycles of at most this many messages less one (the one in hand was
/// called) that it had not called, per dispatcher.
pub const MAX_CYCLE_WINDOW: usize = 64;

/// A call this quick is about as long as the write that counts its cycle.
const FAST_CALL: Duration = Duration::from_millis(5);

/// The running dispatcher and scheduler threads; `stop` (or drop) ends them.
pub struct Delivery {
    app: Arc<App>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<Delivery, StartupError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut delivery = Delivery {
        app: Arc::clone(&app),
        stop: Arc::clone(&stop),
        threads: Vec::new(),
    };
    let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
        thread::Builder::new()
            .name(name.clone())
            .spawn(body)
            .map_err(|err| StartupError(format!("cannot start the {name} thread: {err}")))
    };
    for worker in 0..app.config.delivery.dispatch_workers {
        let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
        delivery.threads.push(spawn(
            format!("dispatcher-{worker}"),
            Box::new(move || run_dispatcher(&app, &stop)),
        )?);
    }
    let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
    delivery.threads.push(spawn(
        "scheduler".to_owned(),
        Box::new(move || run_scheduler(&app, &stop)),
    )?);
    Ok(delivery)
}

impl Delivery {
    /// Stops claiming, lets each dispatcher finish its message in hand and release the rest.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.app.outbox.notify_stopping();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs one round, turning a panic (a bug in a provider adapter, say) into an error, so the
/// thread lives on; the messages of the round are reclaimed when their lease runs out.
fn guarded(round: impl FnOnce() -> Result<usize, AppError>) -> Result<usize, AppError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(round))
        .unwrap_or_else(|_| Err(AppError::internal("a delivery round panicked")))
}

fn run_dispatcher(app: &App, stop: &AtomicBool) {
    let poll = app.config.delivery.dispatch_poll;
    let mut claim = ClaimSize::new(app.config.delivery.dispatch_batch);
    // The cycle window carries over from batch to batch while calls stay quick, so a backlog
    // drained in batches of 50 does not begin each one with windows of 1, 2, 4 and 8.
    let mut window = 1;
    while !stop.load(Ordering::SeqCst) {
        let seen = app.outbox.generation();
        let started = Instant::now();
        match guarded(|| dispatch_round(app, stop, claim.size, &mut window)) {
            Ok(0) => {
                claim.reset();
                window = 1;
                app.outbox.wait(seen, poll);
            }
            Ok(claimed) => claim.adjust(claimed, started.elapsed()),
            Err(err) => {
                log::warn!(target: "crier::delivery", error:% = err; "dispatcher round failed; retrying");
                claim.reset();
                window = 1;
                app.outbox.wait(seen, poll);
            }
        }
    }
}

/// How many messages a dispatcher claims next. It starts at `--dispatch-batch`; while full
/// batches finish within `FAST_BATCH` (fast providers, a backlog), it doubles, up to
/// `MAX_BATCH_GROWTH` times that, so the claim and the settlement writes — whose cost is
/// mostly per write, not per message — carry more messages. A slow batch, a short one or an
/// idle round brings it back: with slow providers, small batches keep every dispatcher busy.
struct ClaimSize {
    base: usize,
    size: usize,
}

/// A batch that took longer than this is slow.
const FAST_BATCH: Duration = Duration::from_millis(50);

/// The claim grows to at most this many times `--dispatch-batch`.
const MAX_BATCH_GROWTH: usize = 8;

impl ClaimSize {
    fn new(base: usize) -> ClaimSize {
        let base = base.max(1);
        ClaimSize { base, size: base }
    }

    fn reset(&mut self) {
        self.size = self.base;
    }

    fn adjust(&mut self, claimed: usize, took: Duration) {
        if claimed >= self.size && took < FAST_BATCH {
            self.size = (self.size * 2).min(self.base * MAX_BATCH_GROWTH);
        } else if took >= FAST_BATCH || claimed < self.size {
            self.reset();
        }
    }
}

fn run_scheduler(app: &App, stop: &AtomicBool) {
    // A send never makes a scheduled message due, so the scheduler does not wake on the outbox
    // signal (that was one extra write transaction per send): it polls, and stops promptly.
    let poll = app.config.delivery.dispatch_poll;
    while !stop.load(Ordering::SeqCst) {
        match guarded(|| queue_due_scheduled(app)) {
            // A full batch: more may be due, go again at once.
            Ok(moved) if moved >= SCHEDULER_BATCH => app.outbox.notify(),
            Ok(moved) => {
                if moved > 0 {
                    app.outbox.notify();
                }
                app.outbox.sleep(poll, stop);
            }
            Err(err) => {
                log::warn!(target: "crier::delivery", error:% = err; "scheduler round failed; retrying");
                app.outbox.sleep(poll, stop);
            }
        }
    }
}

/// Moves the scheduled messages whose time has come to `queued`. Returns how many moved.
pub fn queue_due_scheduled(app: &App) -> Result<usize, AppError> {
    let now = format_timestamp(app.clock.now());
    app.db
        .write(|conn| store::queue_due_scheduled(conn, &now, SCHEDULER_BATCH))
}

/// Claims up to `limit` due messages and delivers them. Returns how many were claimed.
pub fn dispatch_batch(app: &App, stop: &AtomicBool, limit: usize) -> Result<usize, AppError> {
    dispatch_round(app, stop, limit, &mut 1)
}

/// `dispatch_batch`, starting with a cycle window of `window` messages (see `deliver_held`),
/// and leaving there the window the next batch may start with.
fn dispatch_round(
    app: &App,
    stop: &AtomicBool,
    limit: usize,
    window: &mut usize,
) -> Result<usize, AppError> {
    let settings = &app.config.delivery;
    let owner = app.ids.new_id("dsp");
    let now = app.clock.now();
    let lease_until = now + crate::clock::span(settings.dispatch_lease);
    let mut batch = app.db.write(|conn| {
        store::claim_due(
            conn,
            &owner,
            &format_timestamp(now),
            &format_timestamp(lease_until),
            limit,
        )
    })?;
    // In the claim's order (RETURNING gives none): transactional first, then oldest due first.
    batch.sort_by(|a, b| {
        let rank = |m: &MessageRow| m.category != Category::Transactional;
        (rank(a), &a.next_attempt_at).cmp(&(rank(b), &b.next_attempt_at))
    });
    let claimed = batch.len();
    let mut held: VecDeque<&MessageRow> = batch.iter().collect();
    let mut outcomes = Outcomes::default();
    let mut begun = HashMap::new();
    let delivered = deliver_held(
        app,
        &owner,
        stop,
        (&mut held, &mut begun),
        (lease_until, window),
        &mut outcomes,
    );
    // What the providers said is written down whatever happened next.
    let settled = outcomes.settle(app, &owner).map(drop);
    // Left in `held`: messages not delivered (stopping, or an error). They go back now; the
    // message in hand when an error struck is not among them, and is reclaimed after its lease.
    let released = if held.is_empty() {
        Ok(())
    } else {
        release(app, &owner, held.make_contiguous(), &begun)
    };
    delivered.and(settled).and(released).map(|()| claimed)
}

/// Delivers the held messages in order, until none is left, `stop` is set, or an error.
/// `begun` holds the cycle counted for each message of the current window not called yet;
/// `window` is the size of the next window, and is left for the next batch.
fn deliver_held<'a>(
    app: &App,
    owner: &str,
    stop: &AtomicBool,
    (held, begun): (&mut VecDeque<&'a MessageRow>, &mut HashMap<MessageId, u32>),
    (mut lease_until, window): (Timestamp, &mut usize),
    outcomes: &mut Outcomes<'a>,
) -> Result<(), AppError> {
    while !held.is_empty() && !stop.load(Ordering::SeqCst) {
        if outcomes.due() {
            outcomes.settle(app, owner)?;
        }
        if let Some((until, still_held)) =
            keep_lease(app, owner, held.make_contiguous(), lease_until)?
        {
            lease_until = until;
            held.retain(|message| still_held.contains(&message.id));
        }
        let Some(message) = held.pop_front() else {
            break;
        };
        let cycle = if !counted_before_call(app, message) {
            // Its settlement counts the cycle (`store::settle`).
            message.delivery_cycles + 1
        } else {
            if !begun.contains_key(&message.id) {
                // The cycle counts from here for this message and the next few, committed
                // before the first call: a crash during the window spends its cycles, none
                // beyond it.
                let ids: Vec<&MessageId> = std::iter::once(&message.id)
                    .chain(
                        held.iter()
                            .filter(|next| counted_before_call(app, next))
                            .take(window.saturating_sub(1))
                            .map(|next| &next.id),
                    )
                    .collect();
                begun.extend(
                    app.db
                        .write(|conn| store::begin_cycles(conn, &ids, owner))?,
                );
            }
            let Some(cycle) = begun.remove(&message.id) else {
                log::warn!(
                    target: "crier::delivery",
                    message_id = message.id.as_str();
                    "the lease ran out before delivery began; the message is left to its new owner"
                );
                continue;
            };
            cycle
        };
        let started = Instant::now();
        deliver(app, owner, (message, cycle), outcomes)?;
        *window = if started.elapsed() < FAST_CALL {
            (*window * 2).min(MAX_CYCLE_WINDOW)
        } else {
            1
        };
    }
    Ok(())
}

/// The workspace accounts a live message's stored route names (`accounts=pac_…,…`), if any.
fn routed_accounts(message: &MessageRow) -> Option<Vec<ProviderAccountId>> {
    if message.mode != Mode::Live {
        return None;
    }
    message.route.as_deref().and_then(routes::account_ids)
}

/// The providers a message is offered to, in order: test mode's `log`; a live message routed to
/// its workspace's accounts, those still usable (else `NoUsableAccount`); a live SMS's stored
/// route (routed again if the route is no longer configured); live email's chain.
fn chain_of<'a>(app: &'a App, message: &MessageRow) -> Cow<'a, [Arc<dyn Provider>]> {
    if let Some(ids) = routed_accounts(message) {
        return Cow::Owned(accounts_chain(app, message, &ids));
    }
    Cow::Borrowed(match (message.mode, message.channel) {
        (Mode::Test, channel) => app.providers.test_chain(channel),
        (Mode::Live, Channel::Sms) => app
            .providers
            .sms_chain(message.route.as_deref(), &message.to_address),
        (Mode::Live, Channel::Email) => app.providers.chain(Channel::Email),
    })
}

/// The adapters of the accounts `ids` that still exist in the message's workspace, are enabled
/// and open, in order; `NoUsableAccount` alone when none is left.
fn accounts_chain(
    app: &App,
    message: &MessageRow,
    ids: &[ProviderAccountId],
) -> Vec<Arc<dyn Provider>> {
    let rows = app
        .db
        .read(|conn| accounts::chain_rows(conn, &message.workspace_id, ids))
        .unwrap_or_else(|err| {
            log::warn!(
                target: "crier::delivery",
                message_id = message.id.as_str(), error:% = err;
                "the message's provider accounts could not be read; it is retried"
            );
            Vec::new()
        });
    let chain: Vec<Arc<dyn Provider>> = rows
        .iter()
        .filter_map(|row| account_provider(app, row))
        .collect();
    if chain.is_empty() {
        vec![Arc::new(NoUsableAccount)]
    } else {
        chain
    }
}

/// The adapter of a workspace's provider account, from the cache or built now (its secrets
/// opened, its settings validated, the instance's constructors); `None` when it cannot send
/// (its secrets no longer open: logged once per version of the account) or, this time, when
/// its secrets could not be read.
pub fn account_provider(app: &App, row: &AccountRow) -> Option<Arc<dyn Provider>> {
    let built = app
        .providers
        .accounts
        .get_or_build(&row.id, row.version, || {
            let secrets = app
                .db
                .read(|conn| accounts::store::secrets(conn, &row.id))?;
            let account = accounts::Account {
                row: row.clone(),
                secrets,
            };
            let built = accounts::open(&account, &app.secret_box, &app.config.delivery)
                .map_err(|why| format!("{why:?}"))
                .and_then(|opened| {
                    let policy = crate::outbound::TargetPolicy {
                        allow_private: app.config.webhooks.allow_private,
                    };
                    let providers = Providers::for_account(&opened.settings, policy)?;
                    let inner = providers
                        .chain(row.channel)
                        .first()
                        .cloned()
                        .ok_or_else(|| "no provider".to_owned())?;
                    Ok(AccountProvider::new(
                        row.id.clone(),
                        inner,
                        opened.email_from,
                        opened.receipt_token,
                    ))
                });
            Ok(match built {
                Ok(provider) => Some(Arc::new(provider) as Arc<dyn Provider>),
                Err(why) => {
                    log::warn!(
                        target: "crier::delivery",
                        account_id = row.id.as_str(), reason = why.as_str();
                        "a provider account cannot send; its messages skip it"
                    );
                    None
                }
            })
        });
    built.unwrap_or_else(|err| {
        log::warn!(
            target: "crier::delivery",
            account_id = row.id.as_str(), error:% = err;
            "a provider account's secrets could not be read; skipped this time"
        );
        None
    })
}

/// Whether a message's delivery cycle is counted in a write of its own before the first call
/// (`store::begin_cycles`): when any provider of its chain is seen outside crier. Through `log`
/// alone (test mode, the embedded default) the settlement counts it, and a crash before the
/// settlement leaves nothing spent, since nothing was sent. A message routed to accounts
/// always is (without reading them).
fn counted_before_call(app: &App, message: &MessageRow) -> bool {
    routed_accounts(message).is_some()
        || chain_of(app, message)
            .iter()
            .any(|provider| provider.has_outside_effect())
}

/// Extends the lease on the batch's remaining messages when it would not outlast delivering the
/// next one through every provider of its chain. `None` when the lease is long enough as it is;
/// else the new lease and the ids still held (a message whose lease ran out may have been taken
/// over). Checked before every message, so the common case allocates nothing.
fn keep_lease(
    app: &App,
    owner: &str,
    rest: &[&MessageRow],
    lease_until: Timestamp,
) -> Result<Option<(Timestamp, HashSet<MessageId>)>, AppError> {
    let settings = &app.config.delivery;
    // The next message may be routed to its workspace's accounts, a chain of its own.
    let accounts = rest
        .first()
        .is_some_and(|message| routed_accounts(message).is_some());
    let longest_chain = if accounts {
        app.providers.longest_chain().max(accounts::MAX_PER_CHANNEL) as u32
    } else {
        app.providers.longest_chain() as u32
    };
    let needed =
        crate::clock::span(settings.provider_timeout * longest_chain + Duration::from_secs(1));
    let now = app.clock.now();
    if lease_until - now >= needed {
        return Ok(None);
    }
    let ids: Vec<&MessageId> = rest.iter().map(|message| &message.id).collect();
    let extended = now + needed.max(crate::clock::span(settings.dispatch_lease));
    let held = app
        .db
        .write(|conn| store::extend_leases(conn, owner, &ids, &format_timestamp(extended)))?;
    if held.len() < ids.len() {
        log::warn!(
            target: "crier::delivery",
            lost = ids.len() - held.len();
            "leases ran out before they could be extended; those messages are left to their new owner"
        );
    }
    Ok(Some((extended, held.into_iter().collect())))
}

/// Hands `rest` back, queued; the cycles counted for those of them never called (`begun`) are
/// given back with them.
fn release(
    app: &App,
    owner: &str,
    rest: &[&MessageRow],
    begun: &HashMap<MessageId, u32>,
) -> Result<(), AppError> {
    let now = format_timestamp(app.clock.now());
    app.db.write(|conn| {
        for message in rest {
            if begun.contains_key(&message.id) {
                store::give_back_cycle(conn, &message.id, owner)?;
            }
            store::settle(conn, &message.id, owner, (Settlement::Released, 0), &now)?;
        }
        Ok(())
    })
}

/// What one provider call means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Final,
    /// Retryable, and another provider follows in the chain.
    NextProvider,
    /// Retryable, and it was the chain's last provider.
    ChainExhausted,
}

/// Walks the message's provider chain once (one delivery cycle); its settlement joins
/// `outcomes`.
fn deliver<'a>(
    app: &App,
    owner: &str,
    (message, cycle): (&'a MessageRow, u32),
    outcomes: &mut Outcomes<'a>,
) -> Result<(), AppError> {
    let chain = chain_of(app, message);
    let marketing = marketing_email(app, message);
    let identity = email_identity(app, message);
    for (position, provider) in chain.iter().enumerate() {
        let receipt_url = receipt_url(app, provider.as_ref());
        // The From: the workspace's own mailbox stamped on the message (its sending domain,
        // signed with that domain's key), else the From of the workspace's SMTP account, else
        // the instance's.
        let account_from = provider
            .account()
            .and_then(AccountProvider::email_from)
            .unwrap_or(&app.config.delivery.email_from);
        let (from, dkim) = match &identity {
            Ok(Some((from, signer))) => (from.as_str(), Some(signer.as_ref())),
            Ok(None) | Err(_) => (account_from, None),
        };
        // A campaign's From name shows with whichever address it goes out from.
        let named = message
            .from_name
            .as_deref()
            .and_then(|name| named_from(from, name));
        let from = named.as_deref().unwrap_or(from);
        let result = match (
            &identity,
            outgoing_of(
                message,
                (from, dkim),
                receipt_url.as_deref(),
                marketing.as_ref(),
            ),
        ) {
            (Err(failure), _) => Err((failure.clone(), 0)),
            (Ok(_), Some(outgoing)) => call(provider.as_ref(), &outgoing, message),
            (Ok(_), None) => Err((
                crate::delivery::Failure::final_(
                    "invalid_message",
                    "The stored message is incomplete.",
                ),
                0,
            )),
        };
        let (verdict, attempt) = judge(
            app,
            (message, cycle),
            provider.name(),
            result,
            position + 1 == chain.len(),
        );
        app.metrics
            .record_provider_call(provider.name(), &attempt.outcome);
        let outcome = Outcome {
            message,
            verdict,
            attempt,
            answered_at: app.clock.now(),
        };
        if verdict != Verdict::NextProvider {
            outcomes.push(outcome);
            break;
        }
        // Before calling another provider, the attempt is written and the claim checked.
        outcomes.push(outcome);
        let still_ours = outcomes
            .settle(app, owner)?
            .last()
            .copied()
            .unwrap_or(false);
        if !still_ours {
            break;
        }
    }
    Ok(())
}

type CallResult = Result<(crate::delivery::Accepted, u64), (crate::delivery::Failure, u64)>;

/// One provider call, timed and logged (never with the recipient or body).
fn call(provider: &dyn Provider, outgoing: &Outgoing<'_>, message: &MessageRow) -> CallResult {
    let started = Instant::now();
    let result = provider.send(outgoing);
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(accepted) => {
            log::info!(
                target: "crier::delivery",
                message_id = message.id.as_str(), provider = provider.name(),
                outcome = "accepted", duration_ms = duration_ms;
                "provider call"
            );
            Ok((accepted, duration_ms))
        }
        Err(failure) => {
            log::warn!(
                target: "crier::delivery",
                message_id = message.id.as_str(), provider = provider.name(),
                outcome = "error", code = failure.code.as_str(), duration_ms = duration_ms;
                "provider call failed: {}", failure.message
            );
            Err((failure, duration_ms))
        }
    }
}

fn judge(
    app: &App,
    (message, cycle): (&MessageRow, u32),
    provider: &str,
    result: CallResult,
    last: bool,
) -> (Verdict, AttemptRow) {
    let mut attempt = AttemptRow {
        id: app.ids.new_id("att"),
        message_id: message.id.clone(),
        attempt_no: 0,
        delivery_cycle: cycle,
        provider: provider.to_owned(),
        outcome: "accepted".to_owned(),
        provider_message_id: None,
        error_code: None,
        error_message: None,
        duration_ms: 0,
        created_at: format_timestamp(app.clock.now()),
    };
    let verdict = match result {
        Ok((accepted, duration_ms)) => {
            attempt.provider_message_id = accepted.provider_message_id;
            attempt.duration_ms = duration_ms;
            Verdict::Accepted
        }
        Err((failure, duration_ms)) => {
            attempt.duration_ms = duration_ms;
            attempt.error_code = Some(failure.code);
            attempt.error_message = Some(failure.message);
            match (failure.disposition, last) {
                (Disposition::Final, _) => {
                    attempt.outcome = "final_error".to_owned();
                    Verdict::Final
                }
                (Disposition::Retryable, false) => {
                    attempt.outcome = "retryable_error".to_owned();
                    Verdict::NextProvider
                }
                (Disposition::Retryable, true) => {
                    attempt.outcome = "retryable_error".to_owned();
                    Verdict::ChainExhausted
                }
            }
        }
    };
    (verdict, attempt)
}

/// One provider's answer for one message, waiting to be written.
struct Outcome<'a> {
    message: &'a MessageRow,
    verdict: Verdict,
    attempt: AttemptRow,
    answered_at: Timestamp,
}

/// Outcomes not written yet, oldest first.
#[derive(Default)]
struct Outcomes<'a> {
    pending: Vec<Outcome<'a>>,
    since: Option<Instant>,
}

impl<'a> Outcomes<'a> {
    fn push(&mut self, outcome: Outcome<'a>) {
        self.since.get_or_insert_with(Instant::now);
        self.pending.push(outcome);
    }

    /// Whether the oldest pending outcome has waited long enough.
    fn due(&self) -> bool {
        self.since
            .is_some_and(|since| since.elapsed() >= SETTLE_WITHIN)
    }

    /// Writes every pending outcome in one transaction. Accepted messages (the common case)
    /// settle together in two set-based statements, in one savepoint; every other outcome in a
    /// savepoint of its own, as does each accepted one should the set-based write fail. Returns,
    /// per outcome in order, whether this dispatcher still held the message; a settlement that
    /// failed is logged and counts as not held (the message stays `sending` until its lease runs
    /// out and is then delivered again). `Err` when the transaction did not commit.
    fn settle(&mut self, app: &App, owner: &str) -> Result<Vec<bool>, AppError> {
        self.since = None;
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        let (accepted, others): (Vec<usize>, Vec<usize>) =
            (0..pending.len()).partition(|&index| pending[index].verdict == Verdict::Accepted);
        let mut work: Vec<Work> = others.into_iter().map(Work::One).collect();
        match accepted.len() {
            0 => {}
            1 => work.extend(accepted.into_iter().map(Work::One)),
            _ => work.push(Work::Sent(accepted)),
        }
        let mut held: Vec<Option<Result<bool, AppError>>> = pending.iter().map(|_| None).collect();
        let mut retry = Vec::new();
        let results = app.db.write_each(&work, |conn, work| match work {
            Work::One(index) => settle_one(conn, app, owner, &pending[*index]).map(Settled::One),
            Work::Sent(indexes) => {
                settle_sent(conn, app, owner, &pending, indexes).map(Settled::Sent)
            }
        })?;
        for (work, result) in work.iter().zip(results) {
            match (work, result) {
                (Work::One(index), result) => {
                    held[*index] =
                        Some(result.map(|settled| matches!(settled, Settled::One(true))));
                }
                (Work::Sent(indexes), Ok(Settled::Sent(settled))) => {
                    for &index in indexes {
                        held[index] = Some(Ok(settled.contains(&pending[index].message.id)));
                    }
                }
                (Work::Sent(indexes), _) => retry.extend(indexes.iter().copied()),
            }
        }
        if !retry.is_empty() {
            let results = app.db.write_each(&retry, |conn, index| {
                settle_one(conn, app, owner, &pending[*index])
            })?;
            for (index, result) in retry.iter().zip(results) {
                held[*index] = Some(result);
            }
        }
        Ok(pending
            .iter()
            .zip(held)
            .map(|(outcome, result)| {
                let id = outcome.message.id.as_str();
                match result {
                    Some(Ok(true)) => true,
                    Some(Ok(false)) => {
                        log::warn!(
                            target: "crier::delivery", message_id = id;
                            "lease lost before settling; another dispatcher took the message over"
                        );
                        false
                    }
                    Some(Err(err)) => {
                        log::error!(
                            target: "crier::delivery", message_id = id, error:% = err;
                            "settling failed; the message is delivered again once its lease runs out"
                        );
                        false
                    }
                    None => false,
                }
            })
            .collect())
    }
}

/// A unit of a settlement write: one outcome, or the accepted ones together (indexes into the
/// pending outcomes).
enum Work {
    One(usize),
    Sent(Vec<usize>),
}

enum Settled {
    One(bool),
    /// The ids moved to `sent`.
    Sent(HashSet<MessageId>),
}

/// Records the accepted attempts and moves the messages still held to `sent`, two statements
/// for the lot, inside the caller's transaction. A message whose claim was taken over is sent
/// all the same (a provider took it), unless it already ended. Returns the ids still held.
fn settle_sent(
    conn: &rusqlite::Connection,
    app: &App,
    owner: &str,
    pending: &[Outcome<'_>],
    indexes: &[usize],
) -> Result<HashSet<MessageId>, AppError> {
    let attempts: Vec<&AttemptRow> = indexes
        .iter()
        .map(|&index| &pending[index].attempt)
        .collect();
    store::insert_attempts(conn, &attempts)?;
    let settled: HashSet<MessageId> = store::settle_sent(conn, owner, &attempts)?
        .into_iter()
        .collect();
    for attempt in attempts {
        if !settled.contains(&attempt.message_id) {
            accept_late(conn, app, attempt)?;
        }
    }
    Ok(settled)
}

/// Our claim on the message was taken over, but this attempt's provider took it: it is sent,
/// whatever the new owner is doing (unless it already ended, which the attempt records).
fn accept_late(
    conn: &rusqlite::Connection,
    app: &App,
    attempt: &AttemptRow,
) -> Result<(), AppError> {
    let late = (
        attempt.provider.as_str(),
        attempt.provider_message_id.as_deref(),
    );
    let now = format_timestamp(app.clock.now());
    if !store::accept_late(conn, &attempt.message_id, late, &now)? {
        log::warn!(
            target: "crier::delivery",
            message_id = attempt.message_id.as_str();
            "a provider accepted a message already settled by another dispatcher; see its attempts"
        );
    }
    Ok(())
}

/// Records the attempt and, unless another provider follows, settles the message — refunding a
/// message that fails without any acceptance — inside the caller's transaction. Returns whether
/// this dispatcher still holds the message (if not, it must not call another provider for it).
fn settle_one(
    conn: &rusqlite::Connection,
    app: &App,
    owner: &str,
    outcome: &Outcome<'_>,
) -> Result<bool, AppError> {
    let Outcome {
        message,
        verdict,
        attempt,
        answered_at: now,
    } = outcome;
    let (message, verdict, now) = (*message, *verdict, *now);
    let settings = &app.config.delivery;
    let now_text = format_timestamp(now);
    let error = (
        attempt.error_code.as_deref().unwrap_or(""),
        attempt.error_message.as_deref().unwrap_or(""),
    );
    // The cycle this attempt belongs to (counted when it began; the row read at the claim is
    // older).
    let cycle = attempt.delivery_cycle;
    let give_up = cycle >= settings.max_delivery_cycles;
    // Only a retry needs a time (and a jitter draw).
    let retry_at = if verdict == Verdict::ChainExhausted && !give_up {
        format_timestamp(
            now + crate::clock::span(backoff(
                settings.retry_base_delay,
                settings.retry_max_delay,
                cycle,
                jitter(app),
            )),
        )
    } else {
        String::new()
    };
    let settlement = match verdict {
        Verdict::NextProvider => None,
        Verdict::Accepted => Some(Settlement::Sent {
            provider: &attempt.provider,
            provider_message_id: attempt.provider_message_id.as_deref(),
        }),
        Verdict::Final => Some(Settlement::Failed {
            provider: Some(&attempt.provider),
            error,
        }),
        Verdict::ChainExhausted if give_up => Some(Settlement::Failed {
            provider: Some(&attempt.provider),
            error,
        }),
        Verdict::ChainExhausted => Some(Settlement::Retry {
            next_attempt_at: &retry_at,
            error,
        }),
    };
    store::insert_attempt(conn, attempt)?;
    let Some(mut settlement) = settlement else {
        return store::holds_lease(conn, &message.id, owner);
    };
    // A message some provider took (in an earlier cycle whose dispatcher lost its lease
    // before settling) is sent, whatever this call said: never failed, never refunded.
    let acceptance = match settlement {
        Settlement::Sent { .. } => None,
        _ => store::find_acceptance(conn, &message.id)?,
    };
    if let Some((provider, provider_message_id)) = &acceptance {
        settlement = Settlement::Sent {
            provider,
            provider_message_id: provider_message_id.as_deref(),
        };
    }
    let settled = store::settle(conn, &message.id, owner, (settlement, cycle), &now_text)?;
    if settled && matches!(settlement, Settlement::Failed { .. }) {
        billing::refund(conn, &app.ids, message.id.as_str(), now)?;
        if verdict == Verdict::Final {
            learn_from_refusal(conn, message, &attempt.error_code, now)?;
        }
    }
    if !settled && verdict == Verdict::Accepted {
        accept_late(conn, app, attempt)?;
    }
    Ok(settled)
}

/// What a provider's final refusal says about the recipient's address, if anything. Email:
/// `invalid_address` (not an address at all) and SMTP 553 (mailbox name not allowed) →
/// `invalid`; 550, 551 and 554 (mailbox unavailable, not local, rejected) → `bounced`; 552
/// (message too big, mailbox full) says nothing about the address. SMS: only the codes that name
/// the number itself as invalid — `invalid_number` (the code crier's HTTP providers use), and
/// Twilio's 21211 (invalid To number) and 21614 (not a mobile number) → `invalid`; the other
/// final codes mix opt-outs and content refusals, and a receipt's `unreachable` marks a phone
/// that exists but cannot be reached.
fn address_verdict(channel: Channel, code: &str) -> Option<AddressState> {
    match channel {
        Channel::Email => match code {
            "invalid_address" | "smtp_553" => Some(AddressState::Email(EmailState::Invalid)),
            "smtp_550" | "smtp_551" | "smtp_554" => Some(AddressState::Email(EmailState::Bounced)),
            _ => None,
        },
        Channel::Sms => ["invalid_number", "21211", "21614"]
            .iter()
            .any(|invalid| code.eq_ignore_ascii_case(invalid))
            .then_some(AddressState::Phone(PhoneState::Invalid)),
    }
}

/// What delivery learned about a contact's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressState {
    Email(EmailState),
    Phone(PhoneState),
}

/// Marks the address of a message that failed for good on the workspace's contact with it (same
/// mode), in the transaction that failed the message.
fn learn_from_refusal(
    conn: &rusqlite::Connection,
    message: &MessageRow,
    code: &Option<String>,
    now: Timestamp,
) -> Result<(), AppError> {
    let Some(state) = code
        .as_deref()
        .and_then(|code| address_verdict(message.channel, code))
    else {
        return Ok(());
    };
    // The message's own workspace: crier acting on a row it stores.
    let scope = WorkspaceScope::trusted(&message.workspace_id);
    let (owner, address) = ((&scope, message.mode), message.to_address.as_str());
    match state {
        AddressState::Email(state) => reach::mark_email(conn, owner, address, state, now),
        AddressState::Phone(state) => reach::mark_phone(conn, owner, address, state, now),
    }?;
    Ok(())
}

/// A value in [0, 1) from the injected random source.
fn jitter(app: &App) -> f64 {
    let bytes = app.ids.random_bytes(4);
    let value = bytes
        .iter()
        .fold(0u32, |acc, byte| (acc << 8) | u32::from(*byte));
    f64::from(value) / (f64::from(u32::MAX) + 1.0)
}

/// Where `provider` should post receipts, when receipts are configured: a workspace account's
/// own URL (verified with its own secret), else the instance's.
fn receipt_url(app: &App, provider: &dyn Provider) -> Option<String> {
    if let Some(account) = provider.account() {
        return account.receipt_url(&app.config.public_url);
    }
    let token = app.config.delivery.receipt_token.as_ref()?;
    Some(format!(
        "{}/v1/webhooks/sms/{}?token={}",
        app.config.public_url,
        provider.name(),
        token.expose()
    ))
}

/// A marketing email to a contact: its unsubscribe link and its parts with the unsubscribe
/// line, in the contact's language (one read). `None` for everything else — SMS (a direct
/// marketing SMS goes out as written), transactional email, a message with no contact.
fn marketing_email(app: &App, message: &MessageRow) -> Option<MarketingEmail> {
    if message.channel != Channel::Email || message.category != Category::Marketing {
        return None;
    }
    let contact_id = message.contact_id.as_ref()?;
    let language = app
        .db
        .read(|conn| reach::language_of(conn, contact_id))
        .unwrap_or_else(|err| {
            log::warn!(
                target: "crier::delivery",
                message_id = message.id.as_str(), error:% = err;
                "the contact's language could not be read; the unsubscribe line is in English"
            );
            None
        });
    let url = unsubscribe_url(
        &app.unsubscribe_key,
        &app.config.public_url,
        &message.workspace_id,
        message.mode,
        contact_id,
        Channel::Email,
    );
    Some(marketing::with_unsubscribe(
        url,
        language,
        message.text.as_deref(),
        message.html.as_deref(),
    ))
}

/// `from` (a mailbox) with `name` as its display name; `None` when `from` is not a mailbox
/// (it then fails as it would without a name).
fn named_from(from: &str, name: &str) -> Option<String> {
    let mailbox: lettre::message::Mailbox = from.parse().ok()?;
    Some(lettre::message::Mailbox::new(Some(name.to_owned()), mailbox.email).to_string())
}

/// The From and DKIM signer of a live email its workspace sends From its own domain: the
/// mailbox stamped on it when it was created (`sender`), signed with the key of that domain,
/// which must still be one of the workspace's active sending domains. `None` for every other
/// message (the instance's From and signer). A domain deleted or rejected since the message was
/// created fails it for good (`sending_domain_inactive`): it will not go From a domain nobody
/// vouches for any more, nor silently From another address than the one it shows.
fn email_identity(
    app: &App,
    message: &MessageRow,
) -> Result<Option<(String, Arc<DkimSigner>)>, crate::delivery::Failure> {
    let (Channel::Email, Some(from)) = (message.channel, message.sender.as_deref()) else {
        return Ok(None);
    };
    let inactive = || {
        crate::delivery::Failure::final_(
            "sending_domain_inactive",
            format!("The workspace's sending domain of {from} is no longer active."),
        )
    };
    let mailbox: lettre::message::Mailbox = from.parse().map_err(|_| inactive())?;
    let scope = WorkspaceScope::trusted(&message.workspace_id);
    let key = app
        .db
        .read(|conn| sending_domains::active_key(conn, &scope, mailbox.email.domain()))
        .map_err(|error| {
            log::warn!(target: "crier::delivery", message_id = message.id.as_str();
                "the sending domain could not be read: {error}");
            crate::delivery::Failure::retryable(
                "database",
                "The sending domain could not be read; the message will be tried again.",
            )
        })?
        .ok_or_else(inactive)?;
    let signer = app
        .domain_signers
        .signer(&app.secret_box, &key)
        .map_err(|why| {
            crate::delivery::Failure::retryable(
                "dkim",
                format!("The DKIM key cannot be used: {why}."),
            )
        })?;
    Ok(Some((from.to_owned(), signer)))
}

fn outgoing_of<'a>(
    message: &'a MessageRow,
    (email_from, dkim): (&'a str, Option<&'a DkimSigner>),
    receipt_url: Option<&'a str>,
    marketing: Option<&'a MarketingEmail>,
) -> Option<Outgoing<'a>> {
    match message.channel {
        Channel::Sms => Some(Outgoing::Sms(SmsOut {
            message_id: message.id.as_str(),
            to: &message.to_address,
            sender: message.sender.as_deref()?,
            text: message.text.as_deref()?,
            receipt_url,
        })),
        Channel::Email => Some(Outgoing::Email(EmailOut {
            message_id: message.id.as_str(),
            to: &message.to_address,
            from: email_from,
            dkim,
            subject: message.subject.as_deref()?,
            text: match marketing {
                Some(marketing) => marketing.text.as_deref(),
                None => message.text.as_deref(),
            },
            html: match marketing {
                Some(marketing) => marketing.html.as_deref(),
                None => message.html.as_deref(),
            },
            list_unsubscribe: marketing.map(|marketing| marketing.url.as_str()),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_smtp_refusals_mark_the_address() {
        let email = |code| address_verdict(Channel::Email, code);
        let bounced = Some(AddressState::Email(EmailState::Bounced));
        let invalid = Some(AddressState::Email(EmailState::Invalid));
        assert_eq!(email("smtp_550"), bounced);
        assert_eq!(email("smtp_554"), bounced);
        assert_eq!(email("smtp_553"), invalid);
        assert_eq!(email("invalid_address"), invalid);
        assert_eq!(email("smtp_552"), None);
        assert_eq!(email("timeout"), None);
        assert_eq!(address_verdict(Channel::Sms, "smtp_550"), None);
    }

    #[test]
    fn only_refusals_of_the_number_itself_mark_a_phone_invalid() {
        let sms = |code| address_verdict(Channel::Sms, code);
        for code in ["invalid_number", "INVALID_NUMBER", "21211", "21614"] {
            assert_eq!(
                sms(code),
                Some(AddressState::Phone(PhoneState::Invalid)),
                "{code}"
            );
        }
        for code in [
            "opt_out",
            "number_blacklisted",
            "http_400",
            "21610",
            "invalid_address",
        ] {
            assert_eq!(sms(code), None, "{code}");
        }
    }

    #[test]
    fn the_claim_grows_with_fast_full_batches_and_falls_back_otherwise() {
        let fast = Duration::from_millis(5);
        let slow = FAST_BATCH;
        let mut claim = ClaimSize::new(50);
        let mut sizes = Vec::new();
        for _ in 0..5 {
            claim.adjust(claim.size, fast);
            sizes.push(claim.size);
        }
        assert_eq!(sizes, [100, 200, 400, 400, 400]);
        claim.adjust(claim.size, slow);
        assert_eq!(claim.size, 50, "a slow batch");
        claim.adjust(50, fast);
        claim.adjust(60, fast);
        assert_eq!(claim.size, 50, "a short batch: no backlog");
        claim.adjust(50, fast);
        claim.reset();
        assert_eq!(claim.size, 50, "an idle round or an error");
        assert_eq!(ClaimSize::new(0).size, 1);
    }
}
