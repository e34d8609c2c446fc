//! The one source of "now". Only `SystemClock` reads the system time; everything else takes a
//! `Timestamp` from `App::clock` (or a test's `ManualClock`), so tests can fix and advance time.

use std::sync::Mutex;

use chrono::{DateTime, Duration, SecondsFormat, Utc};

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Where time comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place allowed to read the system clock.
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that only moves when told to. For tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(Mutex::new(start))
    }

    pub fn set(&self, to: Timestamp) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A configured `std` duration as a span of timestamps (saturating: a huge setting means "never").
pub fn span(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Formats a timestamp the way the API and the database store it: RFC 3339, UTC, milliseconds,
/// `Z` suffix (`2026-11-25T10:36:44.123Z`). Fixed width, so text order is time order in SQL.
pub fn format_timestamp(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp with any offset into UTC.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::seconds(1));
        assert_eq!(
            clock.now(),
            Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn timestamps_are_fixed_width_utc_and_round_trip() {
        let at = Utc.with_ymd_and_hms(2026, 11, 5, 7, 8, 9).unwrap();
        assert_eq!(format_timestamp(at), "2026-11-05T07:08:09.000Z");
        assert_eq!(parse_timestamp("2026-11-05T08:08:09+01:00"), Some(at));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
