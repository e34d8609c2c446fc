//! The plan catalog (SPEC §5 defaults) and the calendar periods quotas are counted in.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::clock::Timestamp;

/// A plan of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub code: &'static str,
    pub name: &'static str,
    /// Price of one month, in the wallet currency's minor unit; `None` if it cannot be bought.
    pub price_minor: Option<i64>,
    /// SMS units included per calendar month (UTC).
    pub included_sms_per_month: u64,
    /// Email units included per day (UTC).
    pub included_email_per_day: u64,
}

/// SPEC §5 defaults, prices in XAF. `custom` is set per workspace by an instance admin.
pub const DEFAULT_PLANS: [Plan; 5] = [
    Plan {
        code: "free",
        name: "Free",
        price_minor: None,
        included_sms_per_month: 0,
        included_email_per_day: 0,
    },
    Plan {
        code: "basic",
        name: "Basic",
        price_minor: Some(5_000),
        included_sms_per_month: 150,
        included_email_per_day: 250,
    },
    Plan {
        code: "growth",
        name: "Growth",
        price_minor: Some(15_000),
        included_sms_per_month: 500,
        included_email_per_day: 1_000,
    },
    Plan {
        code: "pro",
        name: "Pro",
        price_minor: Some(50_000),
        included_sms_per_month: 2_000,
        included_email_per_day: 5_000,
    },
    Plan {
        code: "custom",
        name: "Custom",
        price_minor: None,
        included_sms_per_month: 0,
        included_email_per_day: 0,
    },
];

pub fn find_plan(code: &str) -> Option<&'static Plan> {
    DEFAULT_PLANS.iter().find(|plan| plan.code == code)
}

/// The plan in force at `now`: the stored one until its period ends, then `free`.
pub fn effective_plan(
    stored_code: &str,
    period_end: Option<Timestamp>,
    now: Timestamp,
) -> &'static Plan {
    let free = &DEFAULT_PLANS[0];
    match period_end {
        Some(end) if end > now => find_plan(stored_code).unwrap_or(free),
        // A plan without an end (free, or custom set open-ended) stays.
        None => find_plan(stored_code).unwrap_or(free),
        Some(_) => free,
    }
}

/// Start of the UTC calendar month containing `at`.
pub fn month_start(at: Timestamp) -> Timestamp {
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}

/// Start of the next UTC calendar month after `at`'s.
pub fn next_month_start(at: Timestamp) -> Timestamp {
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}

/// Start of the UTC day containing `at`.
pub fn day_start(at: Timestamp) -> Timestamp {
    let date: NaiveDate = at.date_naive();
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

pub fn next_day_start(at: Timestamp) -> Timestamp {
    day_start(at) + Duration::days(1)
}

/// One month after `from` (same day of month, clamped to the month's last day).
pub fn one_month_after(from: Timestamp) -> Timestamp {
    from.checked_add_months(chrono::Months::new(1))
        .unwrap_or(from + Duration::days(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    #[test]
    fn month_and_day_periods_roll_at_utc_midnight() {
        assert_eq!(month_start(at(2026, 1, 31, 23)), at(2026, 1, 1, 0));
        assert_eq!(next_month_start(at(2026, 1, 31, 23)), at(2026, 2, 1, 0));
        assert_eq!(next_month_start(at(2026, 12, 15, 0)), at(2027, 1, 1, 0));
        assert_eq!(day_start(at(2026, 2, 28, 23)), at(2026, 2, 28, 0));
        assert_eq!(next_day_start(at(2026, 2, 28, 23)), at(2026, 3, 1, 0));
        assert_eq!(next_day_start(at(2028, 2, 28, 5)), at(2028, 2, 29, 0));
    }

    #[test]
    fn a_month_of_plan_clamps_to_short_months() {
        assert_eq!(one_month_after(at(2026, 1, 31, 10)), at(2026, 2, 28, 10));
        assert_eq!(one_month_after(at(2026, 3, 15, 10)), at(2026, 4, 15, 10));
    }

    #[test]
    fn an_expired_plan_falls_back_to_free() {
        let end = at(2026, 2, 1, 0);
        assert_eq!(
            effective_plan("growth", Some(end), at(2026, 1, 31, 23)).code,
            "growth"
        );
        assert_eq!(effective_plan("growth", Some(end), end).code, "free");
        assert_eq!(effective_plan("free", None, end).code, "free");
        assert_eq!(effective_plan("unknown", None, end).code, "free");
    }
}
