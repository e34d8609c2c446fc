//! Pools (docs/rules/billing.md, "Campaign pools"): one reservation made for many messages at
//! once — a campaign's launch reserves its whole charge under the campaign's id — from which each
//! message then takes its share as a reservation of its own. Every message so has a reservation
//! like a single send's, refunded by the same `billing::refund`; the pool holds what is not
//! carved yet, and is refunded (once) when nothing more will be.
//!
//! Everything here runs inside the caller's write transaction, like the rest of billing.

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::store::{self, NewLedgerEntry, ReservationRow};
use crate::billing::{Usage, quote};
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::Ids;
use crate::money::Money;
use crate::scope::WorkspaceScope;

/// What a message carved out of a pool carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share {
    pub units: u64,
    pub included_units: u64,
    pub charge_minor: i64,
}

/// The charge that goes with `billable` of the pool's `pool_billable` units: proportional,
/// rounded down, and all of it with the pool's last billable unit — so the shares of a pool
/// carved to the end add up to its charge exactly, and a pool never gives more than it holds.
pub fn charge_share(pool_charge: i64, pool_billable: u64, billable: u64) -> i64 {
    if billable == 0 || pool_billable == 0 {
        return 0;
    }
    if billable >= pool_billable {
        return pool_charge;
    }
    let share = i128::from(pool_charge) * i128::from(billable) / i128::from(pool_billable);
    i64::try_from(share).unwrap_or(pool_charge)
}

/// An open pool being carved inside one transaction: read once, what is carved counted in
/// memory, and the pool written back once by `close` — a fan-out chunk carves a thousand shares,
/// and two statements per share less is most of a chunk's time in the pool.
pub struct Carver<'conn> {
    conn: &'conn Connection,
    inserts: store::ReservationInserts<'conn>,
    open: ReservationRow,
    /// Carved so far and not yet written to the pool: included units, billable units, charge.
    carved: (u64, u64, i64),
    created_at: String,
}

impl<'conn> Carver<'conn> {
    /// The open pool `pool`, ready to carve; `None` when it is not open.
    pub fn open(
        conn: &'conn Connection,
        pool: &str,
        now: Timestamp,
    ) -> Result<Option<Carver<'conn>>, AppError> {
        let Some(open) = store::find_open_reservation(conn, pool)? else {
            return Ok(None);
        };
        Ok(Some(Carver {
            conn,
            inserts: store::ReservationInserts::new(conn)?,
            open,
            carved: (0, 0, 0),
            created_at: format_timestamp(now),
        }))
    }

    /// Moves `units` out of the pool into a new reservation `reference` (a message): the pool's
    /// included units first, then billable units with their share of its charge
    /// (`charge_share`). `None` — and nothing changes — when the pool holds fewer units. The
    /// new reservation counts in the pool's periods, so the usage counters do not move.
    pub fn carve(&mut self, reference: &str, units: u64) -> Result<Option<Share>, AppError> {
        let (carved_included, carved_billable, carved_charge) = self.carved;
        let left_included = self.open.included_units - carved_included;
        let left_billable = self.open.billable_units - carved_billable;
        let left_charge = self.open.charge_minor - carved_charge;
        if units == 0 || units > left_included + left_billable {
            return Ok(None);
        }
        let included = units.min(left_included);
        let billable = units - included;
        let charge = charge_share(left_charge, left_billable, billable);
        self.inserts.insert(
            &ReservationRow {
                reference: reference.to_owned(),
                units,
                included_units: included,
                billable_units: billable,
                charge_minor: charge,
                ..self.open.clone()
            },
            &self.created_at,
        )?;
        self.carved = (
            carved_included + included,
            carved_billable + billable,
            carved_charge + charge,
        );
        Ok(Some(Share {
            units,
            included_units: included,
            charge_minor: charge,
        }))
    }

    /// Writes what was carved out of the pool (one statement).
    pub fn close(self) -> Result<(), AppError> {
        let (included, billable, charge) = self.carved;
        if (included, billable, charge) == (0, 0, 0) {
            return Ok(());
        }
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        store::resize_reservation(
            self.conn,
            &self.open.reference,
            (-signed(included), -signed(billable), -charge),
        )
    }
}

/// Reserves `usage.units` more into the open pool `usage.reference` (a fan-out that meets
/// recipients longer than at launch): priced like any reservation at `now` — included quota
/// first, then graduated prices — with its own `charge` ledger row naming the pool. Refused
/// with `insufficient_funds` when the wallet cannot pay, and with a conflict when the quota
/// period or billing month has turned since the pool was made (its units count in those).
pub fn enlarge(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    usage: Usage<'_>,
    now: Timestamp,
) -> Result<Money, AppError> {
    let open = store::find_open_reservation(conn, usage.reference)?
        .ok_or_else(|| AppError::internal("enlarging a pool that is not open"))?;
    let quota_period = format_timestamp(usage.channel.quota_period_start(now));
    let billing_month = format_timestamp(super::plans::month_start(now));
    if open.quota_period_start != quota_period || open.billing_month_start != billing_month {
        return Err(AppError::Conflict(
            "The quota period has turned since the launch; the pool cannot grow.".to_owned(),
        ));
    }
    let quote = quote(conn, catalog, usage.scope, usage.channel, usage.units, now)?;
    quote.ensure_affordable()?;
    let workspace_id = usage.scope.id();
    store::add_usage(
        conn,
        workspace_id,
        usage.channel.as_str(),
        (&quota_period, quote.included_units),
        (&billing_month, quote.billable_units),
    )?;
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    store::resize_reservation(
        conn,
        usage.reference,
        (
            signed(quote.included_units),
            signed(quote.billable_units),
            quote.charge.amount_minor,
        ),
    )?;
    quote.charge_to_wallet(
        conn,
        ids,
        (
            workspace_id,
            usage.reference,
            Some("campaign fan-out beyond its launch reservation"),
        ),
        &format_timestamp(now),
    )?;
    Ok(quote.charge)
}

/// Refunds the open reservations `references` of the scope's workspace together: each is
/// marked refunded and its units go back to their periods, as `billing::refund` does one by
/// one, but their charges return as one `refund` ledger row under `ledger_reference` (a
/// campaign's cancel refunds thousands of messages at once). Returns the amount refunded
/// (`None` when no reference was open).
pub fn refund_together(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    references: &[&str],
    ledger_reference: &str,
    now: Timestamp,
) -> Result<Option<Money>, AppError> {
    let now_text = format_timestamp(now);
    let mut total: Option<(i64, String)> = None;
    for reference in references {
        let Some(taken) = store::claim_refund(conn, reference, &now_text)? else {
            continue;
        };
        if taken.workspace_id != *scope.id() {
            return Err(AppError::internal(format!(
                "{reference} is not a reservation of {}",
                scope.id()
            )));
        }
        give_back_usage(conn, &taken)?;
        let (sum, _) = total.get_or_insert_with(|| (0, taken.currency.clone()));
        *sum = super::credited(*sum, taken.charge_minor)?;
    }
    let Some((charge, currency)) = total else {
        return Ok(None);
    };
    if charge > 0 {
        let account = store::find_account(conn, scope.id())?.ok_or(AppError::NotFound)?;
        store::append_ledger(
            conn,
            &NewLedgerEntry {
                id: &ids.new_id("led"),
                workspace_id: scope.id(),
                kind: "refund",
                amount_minor: charge,
                balance_after_minor: super::credited(account.wallet_balance_minor, charge)?,
                currency: &currency,
                reference: ledger_reference,
                actor: None,
                reason: None,
                created_at: &now_text,
            },
        )?;
    }
    Ok(Some(Money::new(charge, &currency)))
}

/// Takes a refunded reservation's units out of the counters of the periods it was counted in.
pub(super) fn give_back_usage(conn: &Connection, taken: &ReservationRow) -> Result<(), AppError> {
    store::remove_usage(
        conn,
        &taken.workspace_id,
        &taken.channel,
        (&taken.quota_period_start, taken.included_units),
        (&taken.billing_month_start, taken.billable_units),
    )
}

#[cfg(test)]
mod tests {
    use super::charge_share;

    #[test]
    fn shares_of_a_pool_carved_to_the_end_add_up_to_its_charge() {
        // 7 billable units for 100: carving 1, 2, 4 in turn from what is left.
        let (mut charge, mut billable) = (100_i64, 7_u64);
        let mut total = 0;
        for take in [1, 2, 4] {
            let share = charge_share(charge, billable, take);
            assert!(share <= charge);
            total += share;
            charge -= share;
            billable -= take;
        }
        assert_eq!((total, charge, billable), (100, 0, 0));
        assert_eq!(charge_share(100, 7, 0), 0);
        assert_eq!(charge_share(0, 7, 3), 0);
        assert_eq!(charge_share(i64::MAX, u64::MAX, u64::MAX - 1), i64::MAX - 1);
    }
}
