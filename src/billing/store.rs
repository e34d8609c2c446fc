//! SQL for wallets, the ledger, usage counters and reservations.

use rusqlite::{CachedStatement, Connection, OptionalExtension, named_params, params};

use crate::billing::catalog::PlanCode;
use crate::error::AppError;
use crate::ids::WorkspaceId;

/// Reads a count column (stored as INTEGER, never negative by its CHECK).
fn get_u64(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0))
}

/// The billing columns of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccount {
    pub workspace_id: WorkspaceId,
    pub plan_code: PlanCode,
    pub plan_activated_at: Option<String>,
    pub plan_period_end: Option<String>,
    pub wallet_currency: String,
    pub wallet_balance_minor: i64,
    /// The `custom` plan's quotas, set by an instance admin.
    pub custom_included_sms_per_month: Option<u64>,
    pub custom_included_email_per_day: Option<u64>,
    /// The wallet balance below which a debit records `wallet.low_balance`; `None`: no alert.
    pub low_balance_threshold_minor: Option<i64>,
}

impl BillingAccount {
    /// Reads the account from nine columns of `row` starting at `first`, in the order
    /// `id, plan_code, plan_activated_at, plan_period_end, wallet_currency,
    /// wallet_balance_minor, custom_included_sms_per_month, custom_included_email_per_day,
    /// low_balance_threshold_minor` (of `workspaces`), so a query that joins more can share the
    /// mapping.
    pub fn from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<BillingAccount> {
        let quota = |index: usize| -> rusqlite::Result<Option<u64>> {
            Ok(row
                .get::<_, Option<i64>>(first + index)?
                .and_then(|n| u64::try_from(n).ok()))
        };
        Ok(BillingAccount {
            workspace_id: row.get(first)?,
            plan_code: row.get(first + 1)?,
            plan_activated_at: row.get(first + 2)?,
            plan_period_end: row.get(first + 3)?,
            wallet_currency: row.get(first + 4)?,
            wallet_balance_minor: row.get(first + 5)?,
            custom_included_sms_per_month: quota(6)?,
            custom_included_email_per_day: quota(7)?,
            low_balance_threshold_minor: row.get(first + 8)?,
        })
    }
}

pub fn find_account(
    conn: &Connection,
    workspace_id: &WorkspaceId,
) -> Result<Option<BillingAccount>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, plan_code, plan_activated_at, plan_period_end, wallet_currency,
                    wallet_balance_minor, custom_included_sms_per_month,
                    custom_included_email_per_day, low_balance_threshold_minor
             FROM workspaces WHERE id = ?1",
        )?
        .query_row([workspace_id], |row| BillingAccount::from_row(row, 0))
        .optional()?)
}

pub fn set_low_balance_threshold(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    threshold_minor: Option<i64>,
) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE workspaces SET low_balance_threshold_minor = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![workspace_id, threshold_minor])?;
    Ok(())
}

/// Sets the plan; `period_end` None is a plan without end.
pub fn set_plan(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    plan_code: &str,
    activated_at: &str,
    period_end: Option<&str>,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE workspaces SET plan_code = ?2, plan_activated_at = ?3, plan_period_end = ?4
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        workspace_id,
        plan_code,
        activated_at,
        period_end
    ])?;
    Ok(())
}

/// Sets the `custom` plan's quotas on a workspace.
pub fn set_custom_quotas(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    sms_per_month: u64,
    email_per_day: u64,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE workspaces SET custom_included_sms_per_month = ?2, custom_included_email_per_day = ?3
         WHERE id = ?1",
    )?
    .execute(rusqlite::params![workspace_id, sms_per_month as i64, email_per_day as i64])?;
    Ok(())
}

/// Sets the wallet currency of a workspace whose wallet has never moved.
pub fn set_wallet_currency(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    currency: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE workspaces SET wallet_currency = ?2
         WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM wallet_ledger WHERE workspace_id = ?1)",
    )?
    .execute(rusqlite::params![workspace_id, currency])?;
    Ok(())
}

/// Usage of one channel: (quota period start, quota used, billing month start, billable units).
pub fn find_usage(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    channel: &str,
) -> Result<Option<(String, u64, String, u64)>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT quota_period_start, quota_used, billing_month_start, billable_units
             FROM usage_counters WHERE workspace_id = ?1 AND channel = ?2",
        )?
        .query_row(rusqlite::params![workspace_id, channel], |row| {
            Ok((row.get(0)?, get_u64(row, 1)?, row.get(2)?, get_u64(row, 3)?))
        })
        .optional()?)
}

/// Adds usage in one statement; a stored period that is not the given one restarts from zero.
pub fn add_usage(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    channel: &str,
    (quota_period_start, quota_units): (&str, u64),
    (billing_month_start, billable_units): (&str, u64),
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO usage_counters
             (workspace_id, channel, quota_period_start, quota_used, billing_month_start, billable_units)
         VALUES (:workspace_id, :channel, :qps, :quota, :bms, :billable)
         ON CONFLICT (workspace_id, channel) DO UPDATE SET
             quota_used = CASE WHEN quota_period_start = :qps THEN quota_used + :quota ELSE :quota END,
             quota_period_start = :qps,
             billable_units = CASE WHEN billing_month_start = :bms
                                   THEN billable_units + :billable ELSE :billable END,
             billing_month_start = :bms",
    )?
    .execute(named_params! {
        ":workspace_id": workspace_id, ":channel": channel, ":qps": quota_period_start,
        ":quota": quota_units as i64, ":bms": billing_month_start, ":billable": billable_units as i64,
    })?;
    Ok(())
}

/// Takes usage back, but only from the periods it was counted in (a period that has since
/// rolled over is left alone).
pub fn remove_usage(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    channel: &str,
    (quota_period_start, quota_units): (&str, u64),
    (billing_month_start, billable_units): (&str, u64),
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE usage_counters SET
             quota_used = CASE WHEN quota_period_start = :qps
                               THEN max(quota_used - :quota, 0) ELSE quota_used END,
             billable_units = CASE WHEN billing_month_start = :bms
                                   THEN max(billable_units - :billable, 0) ELSE billable_units END
         WHERE workspace_id = :workspace_id AND channel = :channel",
    )?
    .execute(named_params! {
        ":workspace_id": workspace_id, ":channel": channel, ":qps": quota_period_start,
        ":quota": quota_units as i64, ":bms": billing_month_start, ":billable": billable_units as i64,
    })?;
    Ok(())
}

/// A ledger row to append; the database checks it continues the balance and moves the balance.
pub struct NewLedgerEntry<'a> {
    pub id: &'a str,
    pub workspace_id: &'a WorkspaceId,
    pub kind: &'a str,
    pub amount_minor: i64,
    pub balance_after_minor: i64,
    pub currency: &'a str,
    pub reference: &'a str,
    pub actor: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub created_at: &'a str,
}

pub fn append_ledger(conn: &Connection, entry: &NewLedgerEntry<'_>) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO wallet_ledger (id, workspace_id, kind, amount_minor, balance_after_minor,
                                    currency, reference, actor, reason, created_at)
         VALUES (:id, :workspace_id, :kind, :amount, :balance_after, :currency, :reference,
                 :actor, :reason, :created_at)",
    )?
    .execute(named_params! {
        ":id": entry.id, ":workspace_id": entry.workspace_id, ":kind": entry.kind,
        ":amount": entry.amount_minor, ":balance_after": entry.balance_after_minor,
        ":currency": entry.currency, ":reference": entry.reference, ":actor": entry.actor,
        ":reason": entry.reason, ":created_at": entry.created_at,
    })?;
    Ok(())
}

/// One row of a workspace's wallet ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: String,
    pub kind: String,
    pub amount_minor: i64,
    pub balance_after_minor: i64,
    pub currency: String,
    pub reference: String,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub created_at: String,
}

const LEDGER_COLUMNS: &str =
    "id, kind, amount_minor, balance_after_minor, currency, reference, actor, reason, created_at";

/// Ledger rows of a workspace, newest first (append order: rows written in the same millisecond
/// keep their order); `before` is the last id of the previous page.
pub fn list_ledger(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<LedgerEntry>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LEDGER_COLUMNS}
         FROM wallet_ledger
         WHERE workspace_id = :workspace_id
           AND (:before IS NULL OR rowid < (SELECT rowid FROM wallet_ledger WHERE id = :before))
         ORDER BY rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":before": before, ":limit": limit as i64 },
        ledger_entry,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn find_ledger_entry(conn: &Connection, id: &str) -> Result<Option<LedgerEntry>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {LEDGER_COLUMNS} FROM wallet_ledger WHERE id = ?1"
        ))?
        .query_row([id], ledger_entry)
        .optional()?)
}

fn ledger_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerEntry> {
    Ok(LedgerEntry {
        id: row.get(0)?,
        kind: row.get(1)?,
        amount_minor: row.get(2)?,
        balance_after_minor: row.get(3)?,
        currency: row.get(4)?,
        reference: row.get(5)?,
        actor: row.get(6)?,
        reason: row.get(7)?,
        created_at: row.get(8)?,
    })
}

/// What a reservation took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRow {
    pub reference: String,
    pub workspace_id: WorkspaceId,
    pub channel: String,
    pub units: u64,
    pub included_units: u64,
    pub billable_units: u64,
    pub charge_minor: i64,
    pub currency: String,
    pub quota_period_start: String,
    pub billing_month_start: String,
}

pub fn insert_reservation(
    conn: &Connection,
    row: &ReservationRow,
    now: &str,
) -> Result<(), AppError> {
    ReservationInserts::new(conn)?.insert(row, now)
}

/// The insert of `insert_reservation`, prepared once for many: a campaign's fan-out writes one
/// per message.
pub struct ReservationInserts<'conn> {
    statement: CachedStatement<'conn>,
}

impl<'conn> ReservationInserts<'conn> {
    pub fn new(conn: &'conn Connection) -> Result<ReservationInserts<'conn>, AppError> {
        Ok(ReservationInserts {
            statement: conn.prepare_cached(
                "INSERT INTO billing_reservations
                     (reference, workspace_id, channel, units, included_units, billable_units,
                      charge_minor, currency, quota_period_start, billing_month_start, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (reference) DO NOTHING",
            )?,
        })
    }

    /// Stores `row`, made at `now`; a conflict when its reference already has one.
    pub fn insert(&mut self, row: &ReservationRow, now: &str) -> Result<(), AppError> {
        // Positional, in column order.
        let inserted = self.statement.execute(params![
            row.reference,
            row.workspace_id,
            row.channel,
            row.units as i64,
            row.included_units as i64,
            row.billable_units as i64,
            row.charge_minor,
            row.currency,
            row.quota_period_start,
            row.billing_month_start,
            now,
        ])?;
        if inserted == 0 {
            return Err(AppError::Conflict(format!(
                "{} already has a reservation.",
                row.reference
            )));
        }
        Ok(())
    }
}

/// Marks the reservation refunded and returns it — only the first time (`None` after, and for an
/// unknown reference).
pub fn claim_refund(
    conn: &Connection,
    reference: &str,
    now: &str,
) -> Result<Option<ReservationRow>, AppError> {
    Ok(conn
        .prepare_cached(
            "UPDATE billing_reservations SET refunded_at = ?2
             WHERE reference = ?1 AND refunded_at IS NULL
             RETURNING reference, workspace_id, channel, units, included_units, billable_units,
                       charge_minor, currency, quota_period_start, billing_month_start",
        )?
        .query_row([reference, now], reservation_row)
        .optional()?)
}

/// Workspaces whose balance differs from their ledger's sum (or is negative), with both values.
pub fn wallet_discrepancies(conn: &Connection) -> Result<Vec<(String, i64, i64)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.id, w.wallet_balance_minor, COALESCE(sum(l.amount_minor), 0) AS ledger_sum
         FROM workspaces w LEFT JOIN wallet_ledger l ON l.workspace_id = w.id
         GROUP BY w.id
         HAVING w.wallet_balance_minor <> ledger_sum OR w.wallet_balance_minor < 0",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A usage counter that disagrees with the live reservations of its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDiscrepancy {
    pub workspace_id: WorkspaceId,
    pub channel: String,
    /// `quota used` or `billable units`.
    pub counter: &'static str,
    pub counted: i64,
    pub reserved: i64,
}

/// Every usage counter that differs from the sum of its period's unrefunded reservations.
pub fn usage_discrepancies(conn: &Connection) -> Result<Vec<UsageDiscrepancy>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.workspace_id, c.channel, c.quota_used,
                (SELECT COALESCE(sum(r.included_units), 0) FROM billing_reservations r
                 WHERE r.workspace_id = c.workspace_id AND r.channel = c.channel
                   AND r.quota_period_start = c.quota_period_start AND r.refunded_at IS NULL),
                c.billable_units,
                (SELECT COALESCE(sum(r.billable_units), 0) FROM billing_reservations r
                 WHERE r.workspace_id = c.workspace_id AND r.channel = c.channel
                   AND r.billing_month_start = c.billing_month_start AND r.refunded_at IS NULL)
         FROM usage_counters c",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, WorkspaceId>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (workspace, channel, quota_used, included, billable, billed) = row?;
        for (counter, counted, reserved) in [
            ("quota used", quota_used, included),
            ("billable units", billable, billed),
        ] {
            if counted != reserved {
                out.push(UsageDiscrepancy {
                    workspace_id: workspace.clone(),
                    channel: channel.clone(),
                    counter,
                    counted,
                    reserved,
                });
            }
        }
    }
    Ok(out)
}

/// When the reservation for `reference` was refunded, if it was.
pub fn find_refunded_at(conn: &Connection, reference: &str) -> Result<Option<String>, AppError> {
    Ok(conn
        .prepare_cached("SELECT refunded_at FROM billing_reservations WHERE reference = ?1")?
        .query_row([reference], |row| row.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

fn reservation_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReservationRow> {
    Ok(ReservationRow {
        reference: row.get(0)?,
        workspace_id: row.get(1)?,
        channel: row.get(2)?,
        units: get_u64(row, 3)?,
        included_units: get_u64(row, 4)?,
        billable_units: get_u64(row, 5)?,
        charge_minor: row.get(6)?,
        currency: row.get(7)?,
        quota_period_start: row.get(8)?,
        billing_month_start: row.get(9)?,
    })
}

/// The reservation `reference` while it is not refunded.
pub fn find_open_reservation(
    conn: &Connection,
    reference: &str,
) -> Result<Option<ReservationRow>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT reference, workspace_id, channel, units, included_units, billable_units,
                    charge_minor, currency, quota_period_start, billing_month_start
             FROM billing_reservations WHERE reference = ?1 AND refunded_at IS NULL",
        )?
        .query_row([reference], reservation_row)
        .optional()?)
}

/// Adds to (positive) or takes from (negative) an open reservation's units and charge; the
/// database refuses a result below zero.
pub fn resize_reservation(
    conn: &Connection,
    reference: &str,
    (included_units, billable_units, charge_minor): (i64, i64, i64),
) -> Result<(), AppError> {
    let changed = conn
        .prepare_cached(
            "UPDATE billing_reservations SET
                 units = units + :included + :billable,
                 included_units = included_units + :included,
                 billable_units = billable_units + :billable,
                 charge_minor = charge_minor + :charge
             WHERE reference = :reference AND refunded_at IS NULL",
        )?
        .execute(named_params! {
            ":reference": reference, ":included": included_units, ":billable": billable_units,
            ":charge": charge_minor,
        })?;
    if changed != 1 {
        return Err(AppError::internal(format!(
            "reservation {reference} is not open"
        )));
    }
    Ok(())
}
