//! Login throttling: attempts counted per email and per client IP (IPv6 per /64) in a sliding
//! window, in memory (one process serves the instance; a restart forgets, which only ever helps a
//! user). Successful attempts are taken back, so what remains counted are failures.

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

    /// Counts one login attempt for `email` and `ip`, or refuses it with the seconds to wait when
    /// either already used its allowance. The attempt is counted *before* the slow password
    /// check, so concurrent guesses cannot all slip through; `record_success` takes it back.
    pub fn begin_attempt(&self, email: &str, ip: &str, now: Timestamp) -> Result<(), u64> {
        let mut failures = self.lock();
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, times| !recent(times, now).is_empty());
        }
        let keys = [
            (email_key(email), FAILURES_PER_EMAIL),
            (ip_key(ip), FAILURES_PER_IP),
        ];
        let wait = keys
            .iter()
            .filter_map(|(key, limit)| {
                let recent = recent(failures.get_mut(key)?, now);
                (recent.len() >= *limit).then(|| {
                    let oldest = recent[recent.len() - limit];
                    (oldest + window() - now).num_seconds().max(1) as u64
                })
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in keys {
            failures.entry(key).or_default().push(now);
        }
        Ok(())
    }

    /// A successful login: the email's count starts over, and the IP gets its attempt back.
    pub fn record_success(&self, email: &str, ip: &str, at: Timestamp) {
        let mut failures = self.lock();
        failures.remove(&email_key(email));
        if let Some(times) = failures.get_mut(&ip_key(ip))
            && let Some(position) = times.iter().rposition(|time| *time == at)
        {
            times.remove(position);
        }
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

/// IPv6 clients are counted per /64, the block one subscriber usually holds.
fn ip_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let segments = v6.segments();
            format!(
                "ip:{:x}:{:x}:{:x}:{:x}::/64",
                segments[0], segments[1], segments[2], segments[3]
            )
        }
        _ => format!("ip:{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn start() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_sixth_attempt_for_an_email_waits_until_the_first_leaves_the_window() {
        let limiter = LoginLimiter::new();
        for minute in 0..5 {
            let at = start() + Duration::minutes(minute);
            assert!(limiter.begin_attempt("a@x.io", "1.1.1.1", at).is_ok());
        }
        let now = start() + Duration::minutes(5);
        assert_eq!(limiter.begin_attempt("a@x.io", "1.1.1.1", now), Err(600));
        assert!(
            limiter.begin_attempt("b@x.io", "2.2.2.2", now).is_ok(),
            "other emails are unaffected"
        );
        let later = start() + Duration::minutes(15) + Duration::seconds(1);
        assert!(limiter.begin_attempt("a@x.io", "1.1.1.1", later).is_ok());
    }

    #[test]
    fn an_ip_is_limited_across_emails_and_ipv6_per_64() {
        let limiter = LoginLimiter::new();
        for n in 0..FAILURES_PER_IP {
            limiter
                .begin_attempt(&format!("user{n}@x.io"), "2001:db8:1:2::7", start())
                .unwrap();
        }
        assert!(
            limiter
                .begin_attempt("new@x.io", "2001:db8:1:2:ffff::1", start())
                .is_err()
        );
        assert!(
            limiter
                .begin_attempt("new@x.io", "2001:db8:1:3::1", start())
                .is_ok()
        );
    }

    #[test]
    fn success_gives_the_attempts_back() {
        let limiter = LoginLimiter::new();
        for _ in 0..FAILURES_PER_EMAIL - 1 {
            limiter.begin_attempt("a@x.io", "1.1.1.1", start()).unwrap();
        }
        limiter.begin_attempt("a@x.io", "1.1.1.1", start()).unwrap();
        limiter.record_success("a@x.io", "1.1.1.1", start());
        assert!(limiter.begin_attempt("a@x.io", "1.1.1.1", start()).is_ok());
    }
}
