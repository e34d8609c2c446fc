//! SQL for payment sessions, their provider transactions and the webhook journal.

use crate::payments::SessionStatus;
use rusqlite::{Connection, OptionalExtension, Row, named_params};

use crate::error::AppError;
use crate::ids::{PaymentSessionId, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: PaymentSessionId,
    pub workspace_id: WorkspaceId,
    pub kind: String,
    pub plan_code: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub status: SessionStatus,
    pub provider: Option<String>,
    pub provider_reference: Option<String>,
    pub checkout_url: Option<String>,
    pub created_by: String,
    pub customer_email: String,
    pub expires_at: String,
    pub fulfilled_at: Option<String>,
    pub refunded_minor: i64,
    pub refund_debited_minor: i64,
    pub refund_shortfall_minor: i64,
    pub flag: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const SESSION_COLUMNS: &str = "id, workspace_id, kind, plan_code, amount_minor, currency, status, \
    provider, provider_reference, checkout_url, created_by, customer_email, expires_at, \
    fulfilled_at, refunded_minor, refund_debited_minor, refund_shortfall_minor, flag, \
    failure_reason, created_at, updated_at";

fn session_row(row: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        kind: row.get(2)?,
        plan_code: row.get(3)?,
        amount_minor: row.get(4)?,
        currency: row.get(5)?,
        status: row.get(6)?,
        provider: row.get(7)?,
        provider_reference: row.get(8)?,
        checkout_url: row.get(9)?,
        created_by: row.get(10)?,
        customer_email: row.get(11)?,
        expires_at: row.get(12)?,
        fulfilled_at: row.get(13)?,
        refunded_minor: row.get(14)?,
        refund_debited_minor: row.get(15)?,
        refund_shortfall_minor: row.get(16)?,
        flag: row.get(17)?,
        failure_reason: row.get(18)?,
        created_at: row.get(19)?,
        updated_at: row.get(20)?,
    })
}

pub fn insert_session(conn: &Connection, session: &SessionRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO payment_sessions ({SESSION_COLUMNS}) VALUES (:id, :workspace_id, :kind,
             :plan_code, :amount_minor, :currency, :status, NULL, NULL, NULL, :created_by,
             :customer_email, :expires_at, NULL, 0, 0, 0, NULL, NULL, :created_at, :created_at)"
    ))?
    .execute(named_params! {
        ":id": session.id,
        ":workspace_id": session.workspace_id,
        ":kind": session.kind,
        ":plan_code": session.plan_code,
        ":amount_minor": session.amount_minor,
        ":currency": session.currency,
        ":status": session.status,
        ":created_by": session.created_by,
        ":customer_email": session.customer_email,
        ":expires_at": session.expires_at,
        ":created_at": session.created_at,
    })?;
    Ok(())
}

/// The session `id`; within `workspace_id` when given (never another workspace's).
pub fn find_session(
    conn: &Connection,
    id: &PaymentSessionId,
    workspace_id: Option<&WorkspaceId>,
) -> Result<Option<SessionRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM payment_sessions
             WHERE id = :id AND (:workspace_id IS NULL OR workspace_id = :workspace_id)"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id },
            session_row,
        )
        .optional()?)
}

pub fn find_session_by_provider_reference(
    conn: &Connection,
    provider: &str,
    provider_reference: &str,
) -> Result<Option<SessionRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM payment_sessions
             WHERE provider = :provider AND provider_reference = :reference"
        ))?
        .query_row(
            named_params! { ":provider": provider, ":reference": provider_reference },
            session_row,
        )
        .optional()?)
}

/// The workspace's sessions, newest first, after the cursor `before`.
pub fn list_sessions(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<SessionRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM payment_sessions
         WHERE workspace_id = :workspace_id
           AND (:before IS NULL OR rowid < (SELECT rowid FROM payment_sessions WHERE id = :before))
         ORDER BY rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":before": before, ":limit": limit as i64 },
        session_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes the session's mutable fields back (the caller changed them inside its transaction).
pub fn update_session(conn: &Connection, session: &SessionRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE payment_sessions SET status = :status, provider = :provider,
             provider_reference = :provider_reference, checkout_url = :checkout_url,
             fulfilled_at = :fulfilled_at, refunded_minor = :refunded_minor,
             refund_debited_minor = :refund_debited_minor,
             refund_shortfall_minor = :refund_shortfall_minor, flag = :flag,
             failure_reason = :failure_reason, updated_at = :updated_at
         WHERE id = :id",
    )?
    .execute(named_params! {
        ":id": session.id,
        ":status": session.status,
        ":provider": session.provider,
        ":provider_reference": session.provider_reference,
        ":checkout_url": session.checkout_url,
        ":fulfilled_at": session.fulfilled_at,
        ":refunded_minor": session.refunded_minor,
        ":refund_debited_minor": session.refund_debited_minor,
        ":refund_shortfall_minor": session.refund_shortfall_minor,
        ":flag": session.flag,
        ":failure_reason": session.failure_reason,
        ":updated_at": session.updated_at,
    })?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    pub id: String,
    pub session_id: PaymentSessionId,
    pub provider: String,
    pub operation: String,
    pub outcome: String,
    pub provider_reference: Option<String>,
    pub raw_status: Option<String>,
    pub status: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub duration_ms: i64,
    pub created_at: String,
}

pub fn insert_transaction(conn: &Connection, tx: &TransactionRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO payment_transactions (id, session_id, provider, operation, outcome,
             provider_reference, raw_status, status, error_code, error_message, duration_ms,
             created_at)
         VALUES (:id, :session_id, :provider, :operation, :outcome, :provider_reference,
             :raw_status, :status, :error_code, :error_message, :duration_ms, :created_at)",
    )?
    .execute(named_params! {
        ":id": tx.id,
        ":session_id": tx.session_id,
        ":provider": tx.provider,
        ":operation": tx.operation,
        ":outcome": tx.outcome,
        ":provider_reference": tx.provider_reference,
        ":raw_status": tx.raw_status,
        ":status": tx.status,
        ":error_code": tx.error_code,
        ":error_message": tx.error_message,
        ":duration_ms": tx.duration_ms,
        ":created_at": tx.created_at,
    })?;
    Ok(())
}

pub fn list_transactions(
    conn: &Connection,
    session_id: &PaymentSessionId,
) -> Result<Vec<TransactionRow>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, session_id, provider, operation, outcome, provider_reference, raw_status,
                status, error_code, error_message, duration_ms, created_at
         FROM payment_transactions WHERE session_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map([session_id], |row| {
        Ok(TransactionRow {
            id: row.get(0)?,
            session_id: row.get(1)?,
            provider: row.get(2)?,
            operation: row.get(3)?,
            outcome: row.get(4)?,
            provider_reference: row.get(5)?,
            raw_status: row.get(6)?,
            status: row.get(7)?,
            error_code: row.get(8)?,
            error_message: row.get(9)?,
            duration_ms: row.get(10)?,
            created_at: row.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sessions the janitor reconciles: open (`pending`, `redirected`) ones whose expiry is before
/// `cutoff`, and `processing` ones past it, oldest first.
pub fn sessions_to_reconcile(
    conn: &Connection,
    cutoff: &str,
    limit: usize,
) -> Result<Vec<SessionRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM payment_sessions
         WHERE status IN ('pending', 'redirected', 'processing') AND expires_at <= :cutoff
         ORDER BY expires_at LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":cutoff": cutoff, ":limit": limit as i64 },
        session_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An open session → `expired`, unless something moved it meanwhile.
pub fn expire_open_session(
    conn: &Connection,
    id: &PaymentSessionId,
    now: &str,
) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "UPDATE payment_sessions SET status = 'expired', updated_at = :now
             WHERE id = :id AND status IN ('pending', 'redirected')",
        )?
        .execute(named_params! { ":id": id, ":now": now })?
        == 1)
}

/// A webhook journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: String,
    pub provider: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub signature: String,
    pub payload: String,
    pub session_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    /// What the event says, as read on arrival (`None` for a request that is not an event).
    pub claimed_status: Option<String>,
    pub provider_reference: Option<String>,
    pub refunded_minor: Option<i64>,
    pub received_at: String,
}

/// Journals a webhook; a `received` row is due for the payments worker at once. For a signed
/// event already journalled, counts the delivery instead and returns the row's (id, outcome)
/// after it: a new delivery of an event still pending makes it due now, and one of an event
/// that changed nothing re-opens it (the provider, or an operator resending from its
/// dashboard, asks for another look; the state machine makes that harmless). An applied event
/// is never re-opened.
pub fn journal_webhook(
    conn: &Connection,
    row: &WebhookRow,
) -> Result<Option<(String, String)>, AppError> {
    if let Some(event_id) = &row.event_id {
        let existing: Option<(String, String)> = conn
            .prepare_cached(
                "UPDATE payment_webhook_events SET deliveries = deliveries + 1, updated_at = :now,
                     outcome = CASE outcome WHEN 'not_applied' THEN 'received' ELSE outcome END,
                     attempts = CASE outcome WHEN 'not_applied' THEN 0 ELSE attempts END,
                     next_attempt_at = CASE WHEN outcome IN ('received', 'not_applied')
                                            THEN :now ELSE next_attempt_at END
                 WHERE provider = :provider AND event_id = :event_id
                 RETURNING id, outcome",
            )?
            .query_row(
                named_params! { ":provider": row.provider, ":event_id": event_id, ":now": row.received_at },
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if existing.is_some() {
            return Ok(existing);
        }
    }
    conn.prepare_cached(
        "INSERT INTO payment_webhook_events (id, provider, event_id, event_type, signature,
             payload, session_id, outcome, reason, claimed_status, provider_reference,
             refunded_minor, next_attempt_at, received_at, updated_at)
         VALUES (:id, :provider, :event_id, :event_type, :signature, :payload, :session_id,
             :outcome, :reason, :claimed_status, :provider_reference, :refunded_minor,
             CASE :outcome WHEN 'received' THEN :received_at END, :received_at, :received_at)",
    )?
    .execute(named_params! {
        ":id": row.id,
        ":provider": row.provider,
        ":event_id": row.event_id,
        ":event_type": row.event_type,
        ":signature": row.signature,
        ":payload": row.payload,
        ":session_id": row.session_id,
        ":outcome": row.outcome,
        ":reason": row.reason,
        ":claimed_status": row.claimed_status,
        ":provider_reference": row.provider_reference,
        ":refunded_minor": row.refunded_minor,
        ":received_at": row.received_at,
    })?;
    Ok(None)
}

/// A journalled event waiting for the payments worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub id: String,
    pub provider: String,
    pub event_type: Option<String>,
    pub session_id: Option<String>,
    pub claimed_status: Option<String>,
    pub provider_reference: Option<String>,
    pub refunded_minor: Option<i64>,
    pub attempts: u32,
}

/// Pending events due by `now`, the longest-waiting first.
pub fn due_webhook_events(
    conn: &Connection,
    now: &str,
    limit: usize,
) -> Result<Vec<PendingEvent>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, provider, event_type, session_id, claimed_status, provider_reference,
                refunded_minor, attempts
         FROM payment_webhook_events
         WHERE outcome = 'received' AND next_attempt_at <= :now
         ORDER BY next_attempt_at, rowid LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! { ":now": now, ":limit": limit as i64 },
        |row| {
            Ok(PendingEvent {
                id: row.get(0)?,
                provider: row.get(1)?,
                event_type: row.get(2)?,
                session_id: row.get(3)?,
                claimed_status: row.get(4)?,
                provider_reference: row.get(5)?,
                refunded_minor: row.get(6)?,
                attempts: row.get(7)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Leaves a pending event for a later try: one more attempt, when, and why this one did not
/// settle it.
pub fn postpone_webhook(
    conn: &Connection,
    id: &str,
    next_attempt_at: &str,
    why: &str,
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE payment_webhook_events SET attempts = attempts + 1,
             next_attempt_at = :next_attempt_at, last_error = :why, updated_at = :now
         WHERE id = :id AND outcome = 'received'",
    )?
    .execute(named_params! {
        ":id": id, ":next_attempt_at": next_attempt_at, ":why": why, ":now": now,
    })?;
    Ok(())
}

/// Records what became of a journalled event; a settled event is no longer due.
pub fn settle_webhook(
    conn: &Connection,
    id: &str,
    (outcome, reason): (&str, Option<&str>),
    session_id: Option<&PaymentSessionId>,
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE payment_webhook_events SET outcome = :outcome, reason = :reason,
             session_id = COALESCE(:session_id, session_id), next_attempt_at = NULL,
             updated_at = :now
         WHERE id = :id",
    )?
    .execute(named_params! {
        ":id": id, ":outcome": outcome, ":reason": reason, ":session_id": session_id, ":now": now,
    })?;
    Ok(())
}

/// A journalled event still waiting to be applied, as `crier doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LingeringEvent {
    pub id: String,
    pub received_at: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Deletes up to `limit` journal events settled or rejected before `cutoff` (events waiting for
/// the payments worker stay); how many went.
pub fn delete_old_webhook_events(
    conn: &Connection,
    cutoff: &str,
    limit: usize,
) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM payment_webhook_events WHERE rowid IN
                 (SELECT rowid FROM payment_webhook_events
                  WHERE outcome != 'received' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
        )?
        .execute(rusqlite::params![cutoff, limit as i64])?)
}

/// Events still pending that arrived before `cutoff`, oldest first.
pub fn webhook_events_pending_since(
    conn: &Connection,
    cutoff: &str,
) -> Result<Vec<LingeringEvent>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, received_at, attempts, last_error FROM payment_webhook_events
         WHERE outcome = 'received' AND received_at < :cutoff ORDER BY received_at",
    )?;
    let rows = stmt.query_map(named_params! { ":cutoff": cutoff }, |row| {
        Ok(LingeringEvent {
            id: row.get(0)?,
            received_at: row.get(1)?,
            attempts: row.get(2)?,
            last_error: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sessions whose fulfilment is not matched by its ledger credits, and refunds whose debits do
/// not add up: (session id, problem). For `crier doctor`.
pub fn fulfilment_discrepancies(conn: &Connection) -> Result<Vec<(String, String)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.status, s.kind,
                (SELECT COUNT(*) FROM wallet_ledger l
                 WHERE l.reference = s.id AND l.kind = 'topup') AS credits,
                (SELECT COALESCE(-SUM(l.amount_minor), 0) FROM wallet_ledger l
                 WHERE l.reference = s.id AND l.kind = 'adjustment') AS debited,
                s.refund_debited_minor
         FROM payment_sessions s",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut problems = Vec::new();
    for row in rows {
        let (id, status, kind, credits, debited, recorded) = row?;
        let fulfilled = status == "succeeded" || status == "refunded";
        // A top-up is credited exactly when fulfilled; a plan at most once (when it could not
        // be activated and was paid out to the wallet instead).
        let credits_wrong = match kind.as_str() {
            "topup" => credits != i64::from(fulfilled),
            _ => credits > i64::from(fulfilled),
        };
        if credits_wrong {
            problems.push((
                id.clone(),
                format!("{status} with {credits} wallet credit(s)"),
            ));
        }
        if debited != recorded {
            problems.push((
                id,
                format!("refund debits sum to {debited} but {recorded} is recorded"),
            ));
        }
    }
    Ok(problems)
}

/// The email a checkout is made out to: the user's, or for an API key the workspace's first
/// owner's.
pub fn find_buyer_email(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: Option<&UserId>,
) -> Result<Option<String>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = :workspace_id
               AND (m.user_id = :user_id OR (:user_id IS NULL AND m.role = 'owner'))
             ORDER BY m.created_at LIMIT 1",
        )?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":user_id": user_id },
            |row| row.get(0),
        )
        .optional()?)
}

/// Whether the session's fulfilment credited the wallet (a top-up, or a plan paid out to it).
pub fn credited_wallet(conn: &Connection, session_id: &PaymentSessionId) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM wallet_ledger WHERE reference = ?1 AND kind = 'topup' LIMIT 1",
        )?
        .query_row([session_id], |_| Ok(()))
        .optional()?
        .is_some())
}
