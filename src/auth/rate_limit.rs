//! Login throttling: failures counted per email and per client IP in a sliding window, in
//! memory (one process serves the instance; a restart forgets, which only ever helps a user).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Duration;

use crate::clock::Timestamp;

/// Failed logins allowed per email within the window.
pub const FAILURES_PER_EMAIL: usize = 5;
/// Failed logins allowed per client IP within the window.
pub const FAILURES_PER_IP: usize = 20;
/// The window: 15 minutes.
pub fn window() -> Duration {
    Duration::minutes(15)
}

/// Keys with no failure in the window are dropped once the table grows past this.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Timestamp>>>,
}

impl LoginLimiter {
    pub fn new() -> LoginLimiter {
        LoginLimiter::default()
    }

    /// `Err(seconds)` to wait when `email` or `ip` already has its allowance of failures.
    pub fn check(&self, email: &str, ip: &str, now: Timestamp) -> Result<(), u64> {
        let mut failures = self.lock();
        let wait = [
            (email_key(email), FAILURES_PER_EMAIL),
            (ip_key(ip), FAILURES_PER_IP),
        ]
        .into_iter()
        .filter_map(|(key, limit)| {
            let recent = recent(failures.get_mut(&key)?, now);
            (recent.len() >= limit).then(|| {
                let oldest = recent[recent.len() - limit];
                (oldest + window() - now).num_seconds().max(1) as u64
            })
        })
        .max();
        wait.map_or(Ok(()), Err)
    }

    pub fn record_failure(&self, email: &str, ip: &str, now: Timestamp) {
        let mut failures = self.lock();
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, times| !recent(times, now).is_empty());
        }
        for key in [email_key(email), ip_key(ip)] {
            failures.entry(key).or_default().push(now);
        }
    }

    /// A successful login forgets the email's failures (not the IP's).
    pub fn record_success(&self, email: &str) {
        self.lock().remove(&email_key(email));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Timestamp>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Drops failures older than the window; returns the rest.
fn recent(times: &mut Vec<Timestamp>, now: Timestamp) -> &[Timestamp] {
    times.retain(|at| *at > now - window());
    times
}

fn email_key(email: &str) -> String {
    format!("email:{email}")
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_sixth_failure_for_an_email_waits_until_the_first_leaves_the_window() {
        let limiter = LoginLimiter::new();
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for minute in 0..5 {
            let at = start + Duration::minutes(minute);
            assert!(limiter.check("a@x.io", "1.1.1.1", at).is_ok());
            limiter.record_failure("a@x.io", "1.1.1.1", at);
        }
        let now = start + Duration::minutes(5);
        assert_eq!(limiter.check("a@x.io", "1.1.1.1", now), Err(600));
        assert!(
            limiter.check("b@x.io", "2.2.2.2", now).is_ok(),
            "other emails are unaffected"
        );
        assert!(
            limiter
                .check(
                    "a@x.io",
                    "1.1.1.1",
                    start + Duration::minutes(15) + Duration::seconds(1)
                )
                .is_ok()
        );
    }

    #[test]
    fn an_ip_is_limited_across_emails() {
        let limiter = LoginLimiter::new();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for n in 0..FAILURES_PER_IP {
            limiter.record_failure(&format!("user{n}@x.io"), "9.9.9.9", now);
        }
        assert!(limiter.check("new@x.io", "9.9.9.9", now).is_err());
        assert!(limiter.check("new@x.io", "8.8.8.8", now).is_ok());
    }

    #[test]
    fn success_forgets_the_email() {
        let limiter = LoginLimiter::new();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for _ in 0..FAILURES_PER_EMAIL {
            limiter.record_failure("a@x.io", "1.1.1.1", now);
        }
        limiter.record_success("a@x.io");
        assert!(limiter.check("a@x.io", "1.1.1.1", now).is_ok());
    }
}
