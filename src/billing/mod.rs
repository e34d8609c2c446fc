//! Billing (docs/rules/billing.md): plans, quotas, the wallet and its ledger, graduated prices, the
//! reservation every send makes.
//!
//! Everything here runs inside the caller's `BEGIN IMMEDIATE` transaction (`Db::write`), which is
//! what makes it exact under any concurrency: a reservation reads the counters and the balance
//! and writes them back with no other writer in between. The database backs this up: the
//! balance cannot go negative, the ledger is append-only, each ledger row must continue the
//! balance and is what moves it, and a reference is refunded at most once.

pub mod catalog;
pub mod plans;
pub mod pools;
pub mod pricing;
pub mod sender;
pub mod store;

use rusqlite::Connection;

use crate::clock::{Timestamp, format_timestamp, parse_timestamp};
use crate::error::{AppError, FieldErrors};
use crate::ids::{Ids, UserId, WorkspaceId};
use crate::money::Money;
use crate::scope::WorkspaceScope;
use catalog::{Catalog, Plan, PlanCode};
use plans::{day_start, month_start};
use pricing::graduated_charge;
use store::{NewLedgerEntry, ReservationRow};

crate::text_enum! {
    /// How a message travels; each channel has its own quota, period and prices.
    pub enum Channel {
        Sms = "sms",
        Email = "email",
    }
}

impl Channel {
    /// Start of the quota period containing `now`: the UTC month for SMS, the UTC day for email.
    pub fn quota_period_start(self, now: Timestamp) -> Timestamp {
        match self {
            Channel::Sms => month_start(now),
            Channel::Email => day_start(now),
        }
    }

    /// Units the workspace's plan includes per quota period: the catalog's figure, or for the
    /// `custom` plan what an instance admin set on the workspace.
    pub fn included(self, plan: &Plan, account: &store::BillingAccount) -> u64 {
        match (self, plan.code.is_custom()) {
            (Channel::Sms, true) => account.custom_included_sms_per_month.unwrap_or(0),
            (Channel::Email, true) => account.custom_included_email_per_day.unwrap_or(0),
            (Channel::Sms, false) => plan.included_sms_per_month,
            (Channel::Email, false) => plan.included_email_per_day,
        }
    }
}

/// Live sends are charged; test-mode sends are priced but take nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charging {
    Live,
    Test,
}

/// What a send would take or took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Units of the included quota already used in the current period.
    pub quota_used: u64,
    pub units: u64,
    pub included_units: u64,
    pub included_remaining: u64,
    pub billable_units: u64,
    pub charge: Money,
    pub balance_minor: i64,
}

/// Prices `units` of `channel` for the workspace at `now` without changing anything: included
/// quota first, then graduated prices over this month's billable units.
pub fn quote(
    conn: &Connection,
    catalog: &Catalog,
    scope: &WorkspaceScope,
    channel: Channel,
    units: u64,
    now: Timestamp,
) -> Result<Quote, AppError> {
    let account = store::find_account(conn, scope.id())?.ok_or(AppError::NotFound)?;
    quote_account(conn, catalog, scope, &account, channel, units, now)
}

/// `quote` for the workspace's `account` already read (`GET /v1/billing` reads it once for
/// its wallet and both channels' quotes).
pub fn quote_account(
    conn: &Connection,
    catalog: &Catalog,
    scope: &WorkspaceScope,
    account: &store::BillingAccount,
    channel: Channel,
    units: u64,
    now: Timestamp,
) -> Result<Quote, AppError> {
    let workspace_id = scope.id();
    if account.wallet_currency != catalog.currency {
        // Prices are in one currency; a wallet in another cannot be charged from them.
        return Err(AppError::Conflict(format!(
            "This wallet holds {} but prices are in {}; an operator must align the billing catalog.",
            account.wallet_currency, catalog.currency
        )));
    }
    let plan_end = account.plan_period_end.as_deref().and_then(parse_timestamp);
    let plan = catalog.effective_plan(account.plan_code.as_str(), plan_end, now);
    let quota_period = format_timestamp(channel.quota_period_start(now));
    let billing_month = format_timestamp(month_start(now));
    let (quota_used, billed_this_month) =
        match store::find_usage(conn, workspace_id, channel.as_str())? {
            Some((qps, used, bms, billed)) => (
                if qps == quota_period { used } else { 0 },
                if bms == billing_month { billed } else { 0 },
            ),
            None => (0, 0),
        };
    let included_remaining = channel.included(plan, account).saturating_sub(quota_used);
    let included_units = units.min(included_remaining);
    let billable_units = units - included_units;
    let charge_minor = graduated_charge(catalog.tiers(channel), billed_this_month, billable_units)
        .ok_or_else(|| AppError::internal("charge overflows"))?;
    Ok(Quote {
        quota_used,
        units,
        included_units,
        included_remaining,
        billable_units,
        charge: Money::new(charge_minor, &account.wallet_currency),
        balance_minor: account.wallet_balance_minor,
    })
}

/// What a send asks the wallet for.
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    pub scope: &'a WorkspaceScope,
    pub channel: Channel,
    pub units: u64,
    /// The message or campaign the units are for; a refund names it again.
    pub reference: &'a str,
    pub charging: Charging,
}

/// Reserves the usage: takes included quota first, charges the rest to the wallet (one ledger
/// row), and records what was taken so `refund` can give exactly that back. Refuses with
/// `insufficient_funds` — changing nothing — when the wallet cannot pay. `Charging::Test` prices
/// the send and takes nothing. Must run inside the caller's write transaction.
pub fn reserve(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    usage: Usage<'_>,
    now: Timestamp,
) -> Result<Quote, AppError> {
    let Usage {
        scope,
        channel,
        units,
        reference,
        charging,
    } = usage;
    let quote = quote(conn, catalog, scope, channel, units, now)?;
    let workspace_id = scope.id();
    if charging == Charging::Test || units == 0 {
        return Ok(quote);
    }
    quote.ensure_affordable()?;
    let now_text = format_timestamp(now);
    let quota_period = format_timestamp(channel.quota_period_start(now));
    let billing_month = format_timestamp(month_start(now));
    // The reservation record first: a reference already reserved fails here, before anything
    // else is written, so a caller that carries on cannot keep half a reservation.
    store::insert_reservation(
        conn,
        &ReservationRow {
            reference: reference.to_owned(),
            workspace_id: workspace_id.to_owned(),
            channel: channel.as_str().to_owned(),
            units,
            included_units: quote.included_units,
            billable_units: quote.billable_units,
            charge_minor: quote.charge.amount_minor,
            currency: quote.charge.currency.clone(),
            quota_period_start: quota_period.clone(),
            billing_month_start: billing_month.clone(),
        },
        &now_text,
    )?;
    store::add_usage(
        conn,
        workspace_id,
        channel.as_str(),
        (&quota_period, quote.included_units),
        (&billing_month, quote.billable_units),
    )?;
    quote.charge_to_wallet(conn, ids, (workspace_id, reference, None), &now_text)?;
    Ok(quote)
}

impl Quote {
    /// 402 `insufficient_funds` with the quote's figures when the wallet cannot pay it.
    pub(crate) fn ensure_affordable(&self) -> Result<(), AppError> {
        if self.charge.amount_minor > self.balance_minor {
            return Err(AppError::InsufficientFunds {
                units: self.units,
                included_remaining: self.included_remaining,
                billable_units: self.billable_units,
                charge_minor: self.charge.amount_minor,
                balance_minor: self.balance_minor,
                currency: self.charge.currency.clone(),
            });
        }
        Ok(())
    }

    /// Appends the quote's `charge` ledger row (when it charges anything) naming `reference`.
    pub(crate) fn charge_to_wallet(
        &self,
        conn: &Connection,
        ids: &Ids,
        (workspace_id, reference, reason): (&WorkspaceId, &str, Option<&str>),
        now: &str,
    ) -> Result<(), AppError> {
        if self.charge.amount_minor == 0 {
            return Ok(());
        }
        store::append_ledger(
            conn,
            &NewLedgerEntry {
                id: &ids.new_id("led"),
                workspace_id,
                kind: "charge",
                amount_minor: -self.charge.amount_minor,
                balance_after_minor: self.balance_minor - self.charge.amount_minor,
                currency: &self.charge.currency,
                reference,
                actor: None,
                reason,
                created_at: now,
            },
        )
    }
}

/// Gives back exactly what the reservation for `reference` took — its quota units (if their
/// period is still current), its billable units and its charge (one `refund` ledger row) —
/// exactly once. Returns the amount refunded, or `None` when there is nothing (left) to refund.
/// Must run inside the caller's write transaction.
pub fn refund(
    conn: &Connection,
    ids: &Ids,
    reference: &str,
    now: Timestamp,
) -> Result<Option<Money>, AppError> {
    let now_text = format_timestamp(now);
    let Some(taken) = store::claim_refund(conn, reference, &now_text)? else {
        return Ok(None);
    };
    pools::give_back_usage(conn, &taken)?;
    if taken.charge_minor > 0 {
        let account = store::find_account(conn, &taken.workspace_id)?.ok_or(AppError::NotFound)?;
        store::append_ledger(
            conn,
            &NewLedgerEntry {
                id: &ids.new_id("led"),
                workspace_id: &taken.workspace_id,
                kind: "refund",
                amount_minor: taken.charge_minor,
                balance_after_minor: credited(account.wallet_balance_minor, taken.charge_minor)?,
                currency: &taken.currency,
                reference,
                actor: None,
                reason: None,
                created_at: &now_text,
            },
        )?;
    }
    Ok(Some(Money::new(taken.charge_minor, &taken.currency)))
}

/// Activates the priced plan `plan_code` for one month: from the current period's end when the
/// same plan is still running (buying again extends), else from `now`; another plan still running
/// is a 409. Returns the new period end.
/// Must run inside the caller's write transaction.
pub fn activate_plan(
    conn: &Connection,
    catalog: &Catalog,
    scope: &WorkspaceScope,
    plan_code: &str,
    now: Timestamp,
) -> Result<Timestamp, AppError> {
    let workspace_id = scope.id();
    let plan = catalog.plan(plan_code).ok_or(AppError::NotFound)?;
    if plan.price_minor.is_none() {
        return Err(AppError::Conflict(format!(
            "The {plan_code} plan cannot be bought."
        )));
    }
    let account = store::find_account(conn, workspace_id)?.ok_or(AppError::NotFound)?;
    let start = PlanState::of(&account, catalog, now).purchase_start(plan_code, now)?;
    let end = plans::one_month_after(start);
    // An extension keeps the period's original start.
    let activated_at = match (&account.plan_activated_at, start == now) {
        (Some(activated_at), false) => activated_at.clone(),
        _ => format_timestamp(now),
    };
    store::set_plan(
        conn,
        workspace_id,
        plan_code,
        &activated_at,
        Some(&format_timestamp(end)),
    )?;
    Ok(end)
}

/// The most a low-balance threshold may be, in minor units.
pub const MAX_LOW_BALANCE_THRESHOLD_MINOR: i64 = 1_000_000_000_000;

/// Sets (or with `None` clears) the balance below which a debit records `wallet.low_balance`
/// (docs/rules/billing.md, "Low balance").
pub fn set_low_balance_threshold(
    conn: &Connection,
    scope: &WorkspaceScope,
    threshold_minor: Option<i64>,
) -> Result<(), AppError> {
    if threshold_minor.is_some_and(|minor| !(1..=MAX_LOW_BALANCE_THRESHOLD_MINOR).contains(&minor))
    {
        return Err(AppError::invalid_field(
            "threshold_minor",
            format!(
                "must be from 1 to {MAX_LOW_BALANCE_THRESHOLD_MINOR}, or null to turn the alert off"
            ),
        ));
    }
    store::set_low_balance_threshold(conn, scope.id(), threshold_minor)
}

/// The object of a `wallet.low_balance` event: the workspace's balance now, its threshold and
/// the debit that crossed it (`ledger_entry_id`). `None` when the workspace is gone.
pub fn low_balance_json(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    ledger_entry_id: &str,
) -> Result<Option<serde_json::Value>, AppError> {
    let Some(account) = store::find_account(conn, workspace_id)? else {
        return Ok(None);
    };
    let currency = account.wallet_currency.as_str();
    let threshold = account.low_balance_threshold_minor;
    Ok(Some(serde_json::json!({
        "object": "wallet",
        "workspace_id": workspace_id.as_str(),
        "balance": Money::new(account.wallet_balance_minor, currency),
        "low_balance_threshold": threshold.map(|minor| Money::new(minor, currency)),
        "ledger_entry_id": ledger_entry_id,
    })))
}

/// The API request rate (requests per second, 0: no limit) the plan in force gives
/// `workspace_id`'s keys at `now`, when that plan sets one; `None`: the instance's default. Reads
/// nothing when no plan of the catalog sets a rate.
pub fn plan_api_rate(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<Option<u32>, AppError> {
    if !catalog.has_plan_rate_limits() {
        return Ok(None);
    }
    let Some(account) = store::find_account(conn, workspace_id)? else {
        return Ok(None);
    };
    let code = match PlanState::of(&account, catalog, now) {
        PlanState::Free => catalog::FREE,
        PlanState::Running { code, .. } => code.as_str(),
    };
    Ok(catalog
        .plan(code)
        .and_then(|plan| plan.api_requests_per_second))
}

/// Where a workspace's plan stands at a moment: the one place that decides whether a plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanState<'a> {
    /// The free plan, a plan whose period has ended, or one the catalog no longer has.
    Free,
    /// A plan in force: a bought one until `until`, or one an instance admin set (`custom`, or a
    /// gift) with or without an end.
    Running {
        code: &'a PlanCode,
        until: Option<Timestamp>,
    },
}

impl<'a> PlanState<'a> {
    pub fn of(account: &'a store::BillingAccount, catalog: &Catalog, now: Timestamp) -> Self {
        let until = account.plan_period_end.as_deref().and_then(parse_timestamp);
        let in_force = until.is_none_or(|end| end > now);
        let known = catalog.plan(account.plan_code.as_str()).is_some();
        if account.plan_code.is_free() || !in_force || !known {
            return PlanState::Free;
        }
        PlanState::Running {
            code: &account.plan_code,
            until,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, PlanState::Running { .. })
    }

    /// When a purchase of `plan_code` made at `now` starts: at the end of the same plan's period
    /// (an extension), else now. Switching plans while a bought period runs would throw away
    /// what was paid for: 409, not prorated.
    pub fn purchase_start(&self, plan_code: &str, now: Timestamp) -> Result<Timestamp, AppError> {
        match *self {
            PlanState::Running {
                code,
                until: Some(end),
            } if *code == *plan_code => Ok(end),
            PlanState::Running {
                code,
                until: Some(end),
            } => Err(AppError::Conflict(format!(
                "The {code} plan runs until {}; buy {plan_code} after it ends.",
                format_timestamp(end)
            ))),
            _ => Ok(now),
        }
    }
}

/// Gives a new workspace its wallet in `currency` (prices are in the catalog's currency). A
/// wallet that has already moved keeps its currency.
pub fn open_wallet(
    conn: &Connection,
    workspace_id: &crate::ids::WorkspaceId,
    currency: &str,
) -> Result<(), AppError> {
    store::set_wallet_currency(conn, workspace_id, currency)
}

/// The largest single operator adjustment, either way (1e12 minor units): far beyond any real
/// wallet. The admin endpoint and `crier admin adjust-wallet` share it (`check_adjustment`).
pub const MAX_ADJUSTMENT_MINOR: i64 = 1_000_000_000_000;

/// The largest balance an operator adjustment may leave (1e15 minor units). Only adjustments are
/// held to it: a top-up is money received and a refund is money given back, and neither may be
/// refused. Above the cap a balance can grow only by real payments and by refunds of charges it
/// paid, so reaching `i64::MAX` (9,223 times the cap) would take more than 9.2e18 minor units
/// actually paid in; that is what makes an overflowing refund impossible in practice. Were it to
/// happen all the same, the credit is refused with 409 `conflict`, never a 500.
pub const MAX_BALANCE_MINOR: i64 = 1_000_000_000_000_000;

/// Why an adjustment of `amount_minor` is refused before any wallet is read (`None`: it may be
/// tried). The reason reads after the field's name.
pub fn check_adjustment(amount_minor: i64) -> Option<String> {
    (amount_minor == 0 || amount_minor.unsigned_abs() > MAX_ADJUSTMENT_MINOR.unsigned_abs())
        .then(|| format!("must not be zero, and at most {MAX_ADJUSTMENT_MINOR} either way"))
}

/// The balance after crediting `amount_minor` to `balance_minor`; an overflow (impossible in
/// practice, see `MAX_BALANCE_MINOR`) is a 409, never a panic or a 500.
fn credited(balance_minor: i64, amount_minor: i64) -> Result<i64, AppError> {
    balance_minor.checked_add(amount_minor).ok_or_else(|| {
        AppError::Conflict(
            "The wallet balance would exceed the largest amount crier can hold.".to_owned(),
        )
    })
}

/// An operator's adjustment (the admin endpoint and `crier admin adjust-wallet`): one
/// `adjustment` ledger row with its reason, never below zero. Returns the row and the account as
/// it now stands. Must run inside the caller's write transaction.
pub fn adjust_wallet(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    amount_minor: i64,
    reason: &str,
    actor: Option<&UserId>,
    now: Timestamp,
) -> Result<(store::LedgerEntry, store::BillingAccount), AppError> {
    let workspace_id = scope.id();
    let before = store::find_account(conn, workspace_id)?.ok_or(AppError::NotFound)?;
    let mut fields = FieldErrors::new();
    if let Some(why) = check_adjustment(amount_minor) {
        fields.add("amount_minor", why);
    } else if amount_minor > 0
        && before.wallet_balance_minor.saturating_add(amount_minor) > MAX_BALANCE_MINOR
    {
        fields.add(
            "amount_minor",
            format!(
                "would take the balance ({}) above {MAX_BALANCE_MINOR}, the most an adjustment \
                 may leave",
                before.wallet_balance_minor
            ),
        );
    }
    fields.into_result()?;
    let reference = ids.new_id("adj");
    let entry_id = move_wallet(
        conn,
        ids,
        scope,
        "adjustment",
        amount_minor,
        (&reference, actor.map(UserId::as_str), Some(reason)),
        now,
    )?;
    let entry = store::find_ledger_entry(conn, &entry_id)?
        .ok_or_else(|| AppError::internal("ledger entry vanished"))?;
    let account = store::find_account(conn, workspace_id)?.ok_or(AppError::NotFound)?;
    Ok((entry, account))
}

/// Credits (positive) or debits (negative) the wallet by `amount_minor` with one ledger row of
/// `kind` (`topup`, `adjustment`, …). A debit below zero is refused with `insufficient_funds`.
/// Must run inside the caller's write transaction.
pub fn move_wallet(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    kind: &str,
    amount_minor: i64,
    (reference, actor, reason): (&str, Option<&str>, Option<&str>),
    now: Timestamp,
) -> Result<String, AppError> {
    let workspace_id = scope.id();
    let account = store::find_account(conn, workspace_id)?.ok_or(AppError::NotFound)?;
    let balance_after = credited(account.wallet_balance_minor, amount_minor)?;
    if balance_after < 0 {
        return Err(AppError::InsufficientFunds {
            units: 0,
            included_remaining: 0,
            billable_units: 0,
            charge_minor: -amount_minor,
            balance_minor: account.wallet_balance_minor,
            currency: account.wallet_currency,
        });
    }
    let id = ids.new_id("led");
    store::append_ledger(
        conn,
        &NewLedgerEntry {
            id: &id,
            workspace_id,
            kind,
            amount_minor,
            balance_after_minor: balance_after,
            currency: &account.wallet_currency,
            reference,
            actor,
            reason,
            created_at: &format_timestamp(now),
        },
    )?;
    Ok(id)
}

#[cfg(test)]
mod tests;
