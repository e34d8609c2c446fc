//! The calendar periods quotas are counted in (UTC), and the length of a plan's month.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::clock::Timestamp;

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
}
