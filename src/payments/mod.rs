//! Payments (docs/rules/payments.md): checkouts via Flutterwave first, Stripe as fallback, verified
//! webhooks, one state machine and exactly-once fulfilment.
//!
//! - `provider`: the adapter interface; `flutterwave`, `stripe`: the adapters.
//! - `flow`: the orchestration that mixes provider calls (never inside a transaction) with
//!   short write transactions: creating a checkout, verifying, journalling a webhook.
//! - `worker`: the background thread that verifies journalled webhook events with their
//!   provider and applies the verdict, retrying later when the provider cannot answer.
//! - this file: the state machine and fulfilment, pure database work inside the caller's
//!   transaction — the one place a session becomes `succeeded`, so the one place value is given.
//!
//! States: `pending` → `redirected` → `processing` → `succeeded` | `failed` | `cancelled` |
//! `expired`, and `succeeded` → `refunded`. A terminal state is never left (a trigger holds
//! this too); a later or replayed event is journalled and not applied.

mod adapter;
pub mod flow;
pub mod flutterwave;
pub mod provider;
pub mod purchase;
pub mod settings;
pub mod store;
pub mod stripe;
pub mod view;
pub mod worker;

use std::sync::Arc;

use rusqlite::Connection;

use crate::billing;
use crate::billing::catalog::Catalog;
use crate::clock::{Timestamp, format_timestamp};
use crate::db::run_cached;
use crate::error::AppError;
use crate::ids::{Ids, PaymentSessionId};
use crate::outbound::HttpClient;
use crate::scope::WorkspaceScope;
use provider::{PaymentProvider, PaymentStatus, ProviderName};
use settings::PaymentSettings;
use store::SessionRow;

/// The payment providers, in the configured order.
pub struct Payments {
    ordered: Vec<Arc<dyn PaymentProvider>>,
    all: Vec<Arc<dyn PaymentProvider>>,
}

impl Payments {
    pub fn new(settings: &PaymentSettings) -> Payments {
        let http = HttpClient::new(settings.timeout);
        let all: Vec<Arc<dyn PaymentProvider>> = vec![
            Arc::new(flutterwave::FlutterwaveProvider::new(
                &settings.flutterwave,
                http.clone(),
            )),
            Arc::new(stripe::StripeProvider::new(&settings.stripe, http)),
        ];
        let ordered = settings
            .providers
            .iter()
            .filter_map(|name| all.iter().find(|p| p.name() == *name).cloned())
            .collect();
        Payments { ordered, all }
    }

    /// The providers a new checkout tries, in order.
    pub fn ordered(&self) -> &[Arc<dyn PaymentProvider>] {
        &self.ordered
    }

    pub fn provider(&self, name: ProviderName) -> Option<&Arc<dyn PaymentProvider>> {
        self.all.iter().find(|provider| provider.name() == name)
    }
}

crate::text_enum! {
    /// Where a checkout session stands (docs/rules/payments.md). It owns its moves: see
    /// `can_move_to`.
    pub enum SessionStatus {
        /// Created; no provider has a checkout for it yet.
        Pending = "pending",
        /// A provider's checkout page was handed to the payer.
        Redirected = "redirected",
        /// The provider reports a payment under way (an asynchronous method, e.g. mobile money).
        Processing = "processing",
        /// Paid and fulfilled (credited or activated) — once.
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Expired = "expired",
        /// Paid, then refunded in part or whole.
        Refunded = "refunded",
    }
}

impl SessionStatus {
    /// The states no event moves a session out of (`succeeded` only to `refunded`).
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            SessionStatus::Pending | SessionStatus::Redirected | SessionStatus::Processing
        )
    }

    /// Whether a session may move from `self` to `next`: forward only, an open session to any
    /// end, a paid one only to refunded, an ended one nowhere. Staying put is always allowed.
    pub fn can_move_to(self, next: SessionStatus) -> bool {
        use SessionStatus::*;
        self == next
            || matches!(
                (self, next),
                (Pending, Redirected)
                    | (Redirected, Processing)
                    | (
                        Pending | Redirected | Processing,
                        Succeeded | Failed | Cancelled | Expired
                    )
                    | (Succeeded, Refunded)
            )
    }

    /// `next`, if the machine allows the move; a move it forbids is a bug, refused loudly.
    pub fn move_to(self, next: SessionStatus) -> Result<SessionStatus, AppError> {
        if self.can_move_to(next) {
            Ok(next)
        } else {
            Err(AppError::internal(format!(
                "a payment session cannot move from {self} to {next}"
            )))
        }
    }
}

/// What a provider said about a session, from a verification or a signed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: PaymentStatus,
    /// Facts to check before giving value; `None` when the source is itself proof (a signed
    /// Stripe event) — success is then only accepted from a verification.
    pub facts: Option<Facts>,
    pub provider_reference: Option<String>,
    /// Cumulative refunded amount, for refunds.
    pub refunded_minor: Option<i64>,
    /// From a provider's event (it reports something happened), rather than our question.
    pub from_event: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub reference: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
}

impl Facts {
    /// Whether the reference the provider echoes is this session's id. One that cannot be a
    /// payment session id names no session of ours.
    fn names(&self, session_id: &PaymentSessionId) -> bool {
        self.reference
            .as_deref()
            .and_then(PaymentSessionId::parse)
            .is_some_and(|reference| reference == *session_id)
    }
}

/// Whether a verdict changed the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// Recorded, not applied, and why.
    Unchanged(String),
}

/// Applies a provider's verdict to the session inside the caller's write transaction: the
/// state machine, and — in the same transaction as the move to `succeeded` — fulfilment, so a
/// session gives value exactly once whoever (webhook, verify call, retry) gets there first.
pub fn apply_verdict(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    session_id: &PaymentSessionId,
    verdict: &Verdict,
    now: Timestamp,
) -> Result<Applied, AppError> {
    // Read inside the transaction: whoever wrote before us is seen.
    let mut session = store::find_session(conn, session_id, None)?.ok_or(AppError::NotFound)?;
    let now_text = format_timestamp(now);
    // Verified facts about another payment say nothing about this one, whatever their status.
    if let Some(facts) = &verdict.facts
        && !facts.names(&session.id)
    {
        let why = format!(
            "verification names another payment ({})",
            facts.reference.as_deref().unwrap_or("no reference")
        );
        if verdict.status == PaymentStatus::Succeeded {
            session.flag = Some(why.clone());
            session.updated_at = now_text;
            store::update_session(conn, &session)?;
        }
        return Ok(Applied::Unchanged(why));
    }
    if session.provider_reference.is_none() {
        session.provider_reference = verdict.provider_reference.clone();
    }
    let applied = match (session.status, verdict.status) {
        (_, PaymentStatus::Refunded) => record_refund(conn, ids, &mut session, verdict, now)?,
        (status, PaymentStatus::Succeeded) if status.is_terminal() => {
            // Paid although the session had ended (paid twice, or after it expired or failed):
            // nothing is given automatically, but an operator must see it.
            let why = format!("a payment was confirmed for a session already {status}");
            if status != SessionStatus::Succeeded
                && status != SessionStatus::Refunded
                && mismatch(&session, verdict).is_none()
            {
                session.flag = Some(why.clone());
            }
            Applied::Unchanged(why)
        }
        (status, _) if status.is_terminal() => {
            Applied::Unchanged(format!("the session is already {status}"))
        }
        (_, PaymentStatus::Succeeded) => match mismatch(&session, verdict) {
            Some(why) => {
                session.flag = Some(why.clone());
                Applied::Unchanged(why)
            }
            None => {
                fulfil(conn, ids, catalog, &session, now)?;
                session.status = session.status.move_to(SessionStatus::Succeeded)?;
                session.fulfilled_at = Some(now_text.clone());
                session.flag = overpayment(&session, verdict);
                // A refund reported before the success is settled now.
                if session.refunded_minor > 0 {
                    settle_refund(conn, ids, &mut session, now)?;
                }
                Applied::Changed
            }
        },
        (_, PaymentStatus::Failed | PaymentStatus::Cancelled | PaymentStatus::Expired) => {
            session.status = session.status.move_to(match verdict.status {
                PaymentStatus::Failed => SessionStatus::Failed,
                PaymentStatus::Cancelled => SessionStatus::Cancelled,
                _ => SessionStatus::Expired,
            })?;
            Applied::Changed
        }
        (status, PaymentStatus::Pending) => {
            if status == SessionStatus::Redirected && verdict.from_event {
                // The provider reports a payment under way (an async method, e.g. mobile money).
                session.status = session.status.move_to(SessionStatus::Processing)?;
                Applied::Changed
            } else {
                Applied::Unchanged("the payment is still pending".to_owned())
            }
        }
    };
    session.updated_at = now_text;
    store::update_session(conn, &session)?;
    Ok(applied)
}

/// A flag for a payment larger than due (value is given for what was due; the difference is
/// the operator's to return).
fn overpayment(session: &SessionRow, verdict: &Verdict) -> Option<String> {
    let paid = verdict.facts.as_ref()?.amount_minor?;
    (paid > session.amount_minor).then(|| {
        format!(
            "paid {paid} but {} was due; the difference was not credited",
            session.amount_minor
        )
    })
}

/// Why the provider's facts do not prove this session was paid in full, if they do not.
fn mismatch(session: &SessionRow, verdict: &Verdict) -> Option<String> {
    let Some(facts) = &verdict.facts else {
        return Some("success claimed without verification".to_owned());
    };
    if !facts.names(&session.id) {
        return Some(format!(
            "verification names another reference ({})",
            facts.reference.as_deref().unwrap_or("none")
        ));
    }
    if facts.currency.as_deref() != Some(session.currency.as_str()) {
        return Some(format!(
            "verification says {} but the session is in {}",
            facts.currency.as_deref().unwrap_or("no currency"),
            session.currency
        ));
    }
    match facts.amount_minor {
        Some(paid) if paid >= session.amount_minor => None,
        paid => Some(format!(
            "verification says {} was paid but {} is due",
            paid.map_or("nothing".to_owned(), |p| p.to_string()),
            session.amount_minor
        )),
    }
}

/// Gives the value: activates (or extends) the plan, or credits the wallet. A plan that cannot
/// be activated (another plan still runs, or the plan left the catalog) is credited to the
/// wallet instead: paid money is never lost.
fn fulfil(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    session: &SessionRow,
    now: Timestamp,
) -> Result<(), AppError> {
    let provider = session.provider.as_deref().unwrap_or("provider");
    let reason = match &session.plan_code {
        Some(plan_code) => {
            run_cached(conn, "SAVEPOINT activate_plan")?;
            match billing::activate_plan(
                conn,
                catalog,
                &WorkspaceScope::trusted(&session.workspace_id),
                plan_code,
                now,
            ) {
                Ok(_) => {
                    run_cached(conn, "RELEASE activate_plan")?;
                    return Ok(());
                }
                Err(error) => {
                    run_cached(conn, "ROLLBACK TO activate_plan")?;
                    run_cached(conn, "RELEASE activate_plan")?;
                    format!(
                        "plan {plan_code} paid via {provider} but not activated: {}",
                        error.public_message()
                    )
                }
            }
        }
        None => format!("top-up via {provider}"),
    };
    billing::move_wallet(
        conn,
        ids,
        &WorkspaceScope::trusted(&session.workspace_id),
        "topup",
        session.amount_minor,
        (session.id.as_str(), None, Some(&reason)),
        now,
    )?;
    Ok(())
}

/// A refund reported by the provider (cumulative). Recorded on any session — one that has not
/// succeeded yet keeps it for when it does (events arrive in any order). On a fulfilled session
/// the wallet credit it gave (a top-up, or a plan paid out to the wallet) is taken back as far
/// as the balance allows — never below zero — and the rest recorded as a shortfall; a plan that
/// was activated stays active and the session is flagged for the operator.
fn record_refund(
    conn: &Connection,
    ids: &Ids,
    session: &mut SessionRow,
    verdict: &Verdict,
    now: Timestamp,
) -> Result<Applied, AppError> {
    let reported = verdict
        .refunded_minor
        .unwrap_or(session.amount_minor)
        .clamp(0, session.amount_minor);
    if reported <= session.refunded_minor {
        return Ok(Applied::Unchanged(
            "this refund is already recorded".to_owned(),
        ));
    }
    session.refunded_minor = reported;
    if matches!(
        session.status,
        SessionStatus::Succeeded | SessionStatus::Refunded
    ) {
        settle_refund(conn, ids, session, now)?;
    }
    Ok(Applied::Changed)
}

/// Takes back what a fulfilled session's recorded refund still owes the wallet.
fn settle_refund(
    conn: &Connection,
    ids: &Ids,
    session: &mut SessionRow,
    now: Timestamp,
) -> Result<(), AppError> {
    session.status = session.status.move_to(SessionStatus::Refunded)?;
    let owed =
        session.refunded_minor - session.refund_debited_minor - session.refund_shortfall_minor;
    if owed <= 0 {
        return Ok(());
    }
    if !store::credited_wallet(conn, &session.id)? {
        session.refund_shortfall_minor += owed;
        session.flag = Some(
            "the plan payment was refunded; the plan stays active until an operator ends it"
                .to_owned(),
        );
        return Ok(());
    }
    let balance = billing::store::find_account(conn, &session.workspace_id)?
        .ok_or(AppError::NotFound)?
        .wallet_balance_minor;
    let debit = owed.min(balance);
    if debit > 0 {
        billing::move_wallet(
            conn,
            ids,
            &WorkspaceScope::trusted(&session.workspace_id),
            "adjustment",
            -debit,
            (
                session.id.as_str(),
                None,
                Some("payment refunded by the provider"),
            ),
            now,
        )?;
    }
    session.refund_debited_minor += debit;
    session.refund_shortfall_minor += owed - debit;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SessionStatus::{self, *};

    #[test]
    fn sessions_move_forward_only() {
        let open = [Pending, Redirected, Processing];
        let ends = [Succeeded, Failed, Cancelled, Expired];
        for from in SessionStatus::ALL {
            assert!(from.can_move_to(*from), "{from} may stay {from}");
            // Nothing goes back to the start.
            assert_eq!(
                from.can_move_to(Pending),
                *from == Pending,
                "{from} → pending"
            );
        }
        for from in open {
            assert!(!from.is_terminal());
            for to in ends {
                assert!(from.can_move_to(to), "{from} → {to}");
            }
            assert!(
                !from.can_move_to(Refunded),
                "{from} → refunded before it was paid"
            );
        }
        for from in ends.iter().chain([&Refunded]) {
            assert!(from.is_terminal());
            for to in SessionStatus::ALL.iter().filter(|to| *to != from) {
                let allowed = *from == Succeeded && *to == Refunded;
                assert_eq!(from.can_move_to(*to), allowed, "{from} → {to}");
            }
        }
        assert!(Pending.can_move_to(Redirected) && Redirected.can_move_to(Processing));
        assert!(!Processing.can_move_to(Redirected) && !Pending.can_move_to(Processing));
        assert!(Failed.move_to(Succeeded).is_err());
        assert_eq!(Succeeded.move_to(Refunded).unwrap(), Refunded);
    }
}
