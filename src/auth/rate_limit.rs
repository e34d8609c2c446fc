//! Login throttling (docs/rules/access.md, "Login throttling"). Failed logins are counted per
//! (account, client IP) and per client IP across accounts (IPv6 per /64) — never per account
//! alone, so a stranger's guesses cannot lock the owner out: the right password from an address
//! that has not been failing is judged at once.
//!
//! - (account, IP): `FREE_FAILURES` failures cost nothing; after that each further attempt waits
//!   `delay_after(failures)` from the last failure (1 s, 2 s, 4 s … capped at 15 minutes). The
//!   pair is forgotten `PAIR_MEMORY` after its last failure; a successful login clears it.
//! - IP: `FAILURES_PER_IP` failures in a 15-minute window that begins at the window's first
//!   failure; then the IP waits for the window's end. A success does not give failures back
//!   (an attacker's own account must not refill the allowance).
//!
//! Decisions are taken on the in-memory counters; every failure is also written to
//! `login_failures` (its own small transaction), read back at start, so a restart forgets
//! nothing. Attempts still being verified count as failures until they resolve, so concurrent
//! guesses cannot all slip through before the first one is counted.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Duration;

use crate::auth::store::{self, LoginFailureRow};
use crate::clock::{Timestamp, format_timestamp, parse_timestamp};
use crate::db::Db;
use crate::error::AppError;

/// Failures per (account, IP) answered without delay.
pub const FREE_FAILURES: u32 = 3;
/// The longest wait between two attempts of one (account, IP).
pub fn max_delay() -> Duration {
    Duration::minutes(15)
}
/// An (account, IP) pair with no failure for this long starts over.
pub fn pair_memory() -> Duration {
    Duration::hours(24)
}
/// Failures allowed per client IP, across accounts, within one window.
pub const FAILURES_PER_IP: u32 = 50;
/// The IP's window: 15 minutes from its first failure.
pub fn ip_window() -> Duration {
    Duration::minutes(15)
}

/// Counters with nothing left to remember are dropped once the table grows past this.
const PRUNE_ABOVE: usize = 10_000;

/// How long an (account, IP) pair with `failures` failures waits after its last one: nothing
/// for the first `FREE_FAILURES`, then 1 s, doubling with each failure, at most `max_delay()`.
pub fn delay_after(failures: u32) -> Option<Duration> {
    let beyond_free = failures.checked_sub(FREE_FAILURES)?;
    // 2^10 s is already past the cap; the exponent is bounded so the shift cannot overflow.
    let seconds = 1i64 << beyond_free.min(20);
    Some(Duration::seconds(seconds).min(max_delay()))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// An account (the email as typed, trimmed and lower-cased) from one IP block.
    Pair { ip_block: String, email: String },
    /// One IP block across accounts.
    Ip { ip_block: String },
}

impl Key {
    fn ip_block(&self) -> &str {
        match self {
            Key::Pair { ip_block, .. } | Key::Ip { ip_block } => ip_block,
        }
    }

    /// The `email` column: empty for an IP's own counter.
    fn email(&self) -> &str {
        match self {
            Key::Pair { email, .. } => email,
            Key::Ip { .. } => "",
        }
    }

    /// When a counter whose window began at `first` and last failed at `last` is forgotten.
    fn expiry(&self, first: Timestamp, last: Timestamp) -> Timestamp {
        match self {
            Key::Pair { .. } => last + pair_memory(),
            Key::Ip { .. } => first + ip_window(),
        }
    }
}

#[derive(Debug, Clone)]
struct Counter {
    failures: u32,
    first_failed_at: Timestamp,
    last_failed_at: Timestamp,
    expires_at: Timestamp,
    /// Attempts let through and not yet resolved.
    in_flight: u32,
}

impl Counter {
    fn empty(now: Timestamp) -> Counter {
        Counter {
            failures: 0,
            first_failed_at: now,
            last_failed_at: now,
            expires_at: now,
            in_flight: 0,
        }
    }

    /// The failures still remembered at `now`.
    fn live_failures(&self, now: Timestamp) -> u32 {
        if now < self.expires_at {
            self.failures
        } else {
            0
        }
    }

    /// Seconds `key` must wait at `now` before another attempt, if any.
    fn wait(&self, key: &Key, now: Timestamp) -> Option<u64> {
        let failures = self.live_failures(now);
        match key {
            Key::Pair { .. } => {
                if failures + self.in_flight < FREE_FAILURES {
                    return None;
                }
                let allowed_at = delay_after(failures).map(|delay| self.last_failed_at + delay);
                let remaining = allowed_at.map(|at| seconds_until(at, now)).unwrap_or(0);
                // One attempt at a time once the free ones are used.
                (remaining > 0 || self.in_flight > 0).then(|| remaining.max(1))
            }
            Key::Ip { .. } => (failures + self.in_flight >= FAILURES_PER_IP).then(|| {
                let window_end = (failures > 0).then(|| self.first_failed_at + ip_window());
                window_end.map_or(1, |end| seconds_until(end, now).max(1))
            }),
        }
    }

    fn is_idle(&self, now: Timestamp) -> bool {
        self.in_flight == 0 && self.live_failures(now) == 0
    }
}

/// Whole seconds from `now` until `at`, rounded up; 0 once it has passed.
fn seconds_until(at: Timestamp, now: Timestamp) -> u64 {
    let millis = (at - now).num_milliseconds();
    if millis <= 0 {
        0
    } else {
        (millis as u64).div_ceil(1000)
    }
}

#[derive(Default)]
pub struct LoginLimiter {
    counters: Mutex<HashMap<Key, Counter>>,
}

impl LoginLimiter {
    /// An empty limiter (nothing remembered).
    pub fn new() -> LoginLimiter {
        LoginLimiter::default()
    }

    /// The limiter with every counter the database still remembers at `now` (after a restart).
    pub fn load(db: &Db, now: Timestamp) -> Result<LoginLimiter, AppError> {
        let rows = db.read(|conn| store::live_login_failures(conn, &format_timestamp(now)))?;
        let limiter = LoginLimiter::new();
        {
            let mut counters = limiter.lock();
            for row in rows {
                if let Some((key, counter)) = from_row(row) {
                    counters.insert(key, counter);
                }
            }
        }
        Ok(limiter)
    }

    /// Lets one login attempt for `email` from `ip` go on to the password check, or refuses it
    /// with the seconds to wait. The attempt counts as a failure until it is resolved
    /// (`LoginAttempt::failed` / `succeeded`; dropping it unresolved takes it back).
    pub fn begin_attempt(
        &self,
        email: &str,
        ip: &str,
        now: Timestamp,
    ) -> Result<LoginAttempt<'_>, u64> {
        let ip_block = ip_block(ip);
        let keys = [
            Key::Pair {
                ip_block: ip_block.clone(),
                email: email.to_owned(),
            },
            Key::Ip { ip_block },
        ];
        let mut counters = self.lock();
        if counters.len() > PRUNE_ABOVE {
            counters.retain(|_, counter| !counter.is_idle(now));
        }
        let wait = keys
            .iter()
            .filter_map(|key| counters.get(key)?.wait(key, now))
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in &keys {
            let counter = counters
                .entry(key.clone())
                .or_insert_with(|| Counter::empty(now));
            counter.in_flight += 1;
        }
        Ok(LoginAttempt {
            limiter: self,
            keys: Some(keys),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Counter>> {
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends an attempt on `keys`: a failure is counted on both; a success clears the pair.
    /// Returns whether the pair had failures (which a success must then delete).
    fn resolve(&self, keys: &[Key; 2], outcome: Outcome, now: Timestamp) -> bool {
        let mut counters = self.lock();
        let mut pair_had_failures = false;
        for key in keys {
            let counter = counters
                .entry(key.clone())
                .or_insert_with(|| Counter::empty(now));
            counter.in_flight = counter.in_flight.saturating_sub(1);
            match (outcome, key) {
                (Outcome::Failed, _) => {
                    if counter.live_failures(now) == 0 {
                        counter.failures = 0;
                        counter.first_failed_at = now;
                    }
                    counter.failures += 1;
                    counter.last_failed_at = counter.last_failed_at.max(now);
                    counter.expires_at =
                        key.expiry(counter.first_failed_at, counter.last_failed_at);
                }
                (Outcome::Succeeded, Key::Pair { .. }) => {
                    pair_had_failures = counter.failures > 0;
                    counter.failures = 0;
                    counter.expires_at = now;
                }
                (Outcome::Succeeded, Key::Ip { .. }) | (Outcome::Abandoned, _) => {}
            }
            if counter.is_idle(now) {
                counters.remove(key);
            }
        }
        pair_had_failures
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Failed,
    Succeeded,
    Abandoned,
}

/// A login attempt let through by `LoginLimiter::begin_attempt`, until its password is judged.
pub struct LoginAttempt<'a> {
    limiter: &'a LoginLimiter,
    /// `None` once resolved.
    keys: Option<[Key; 2]>,
}

impl LoginAttempt<'_> {
    /// The password (or the email) was wrong: one more failure for the (account, IP) pair and
    /// for the IP, written to the database in one small transaction of its own. A write that
    /// fails is logged: the counters in memory still hold until the next restart.
    pub fn failed(mut self, db: &Db, now: Timestamp) {
        let Some(keys) = self.keys.take() else { return };
        self.limiter.resolve(&keys, Outcome::Failed, now);
        let at = format_timestamp(now);
        let written = db.write(|conn| {
            for key in &keys {
                // A fresh counter's expiry; `count_login_failure` keeps an IP window's own.
                let expires_at = format_timestamp(key.expiry(now, now));
                store::count_login_failure(conn, key.ip_block(), key.email(), &at, &expires_at)?;
            }
            Ok(())
        });
        if let Err(err) = written {
            log::warn!(error:% = err; "could not record a failed login; counted in memory only");
        }
    }

    /// The password was right: the (account, IP) pair starts over. Writes only when the pair
    /// had failures to forget.
    pub fn succeeded(mut self, db: &Db, now: Timestamp) {
        let Some(keys) = self.keys.take() else { return };
        if !self.limiter.resolve(&keys, Outcome::Succeeded, now) {
            return;
        }
        let [pair, _] = &keys;
        let cleared =
            db.write(|conn| store::clear_login_failures(conn, pair.ip_block(), pair.email()));
        if let Err(err) = cleared {
            log::warn!(error:% = err; "could not clear the failed logins of a successful login");
        }
    }
}

impl Drop for LoginAttempt<'_> {
    /// An attempt that ended in neither (an error before the password was judged) is taken back.
    fn drop(&mut self) {
        if let Some(keys) = self.keys.take() {
            // `now` only matters for counting a failure, which this is not.
            let now = chrono::DateTime::<chrono::Utc>::MIN_UTC;
            self.limiter.resolve(&keys, Outcome::Abandoned, now);
        }
    }
}

fn from_row(row: LoginFailureRow) -> Option<(Key, Counter)> {
    let key = if row.email.is_empty() {
        Key::Ip {
            ip_block: row.ip_block,
        }
    } else {
        Key::Pair {
            ip_block: row.ip_block,
            email: row.email,
        }
    };
    let counter = Counter {
        failures: row.failures,
        first_failed_at: parse_timestamp(&row.first_failed_at)?,
        last_failed_at: parse_timestamp(&row.last_failed_at)?,
        expires_at: parse_timestamp(&row.expires_at)?,
        in_flight: 0,
    };
    Some((key, counter))
}

/// Counters expired at `now` deleted per janitor transaction.
const SWEEP_BATCH: usize = 500;

/// Deletes the expired counters from the database, a batch per transaction; returns how many.
/// For the janitor (the limiter drops its own in memory).
pub fn sweep_expired(db: &Db, now: Timestamp) -> Result<usize, AppError> {
    let now = format_timestamp(now);
    crate::db::sweep_in_batches(db, SWEEP_BATCH, |conn, limit| {
        store::delete_expired_login_failures(conn, &now, limit)
    })
}

/// The block a client is counted by: its IP, or for IPv6 its /64 (the block one subscriber
/// usually holds).
fn ip_block(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let segments = v6.segments();
            format!(
                "{:x}:{:x}:{:x}:{:x}::/64",
                segments[0], segments[1], segments[2], segments[3]
            )
        }
        _ => ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn start() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn fail(limiter: &LoginLimiter, email: &str, ip: &str, at: Timestamp) {
        let attempt = limiter.begin_attempt(email, ip, at).expect("let through");
        let keys = attempt_keys(attempt);
        limiter.resolve(&keys, Outcome::Failed, at);
    }

    /// Resolves nothing: takes the keys out so the test can resolve without a database.
    fn attempt_keys(mut attempt: LoginAttempt<'_>) -> [Key; 2] {
        attempt.keys.take().unwrap()
    }

    #[test]
    fn the_delay_schedule_is_free_then_doubling_then_capped() {
        let seconds = |failures| delay_after(failures).map(|delay| delay.num_seconds());
        assert_eq!(seconds(0), None);
        assert_eq!(seconds(FREE_FAILURES - 1), None);
        assert_eq!(seconds(FREE_FAILURES), Some(1));
        assert_eq!(seconds(FREE_FAILURES + 1), Some(2));
        assert_eq!(seconds(FREE_FAILURES + 2), Some(4));
        assert_eq!(seconds(FREE_FAILURES + 9), Some(512));
        assert_eq!(
            seconds(FREE_FAILURES + 10),
            Some(900),
            "1 024 s is past the cap"
        );
        assert_eq!(seconds(u32::MAX), Some(900));
    }

    #[test]
    fn a_pair_waits_a_growing_delay_after_its_free_failures() {
        let limiter = LoginLimiter::new();
        let mut now = start();
        for _ in 0..FREE_FAILURES {
            fail(&limiter, "a@x.io", "1.1.1.1", now);
        }
        for expected in [1, 2, 4, 8] {
            assert_eq!(
                limiter.begin_attempt("a@x.io", "1.1.1.1", now).err(),
                Some(expected)
            );
            now += Duration::milliseconds(expected as i64 * 1000 - 1);
            assert_eq!(
                limiter.begin_attempt("a@x.io", "1.1.1.1", now).err(),
                Some(1),
                "rounded up"
            );
            now += Duration::milliseconds(1);
            fail(&limiter, "a@x.io", "1.1.1.1", now);
        }
        // Another IP on the same account, and the same IP on another account, are untouched.
        assert!(limiter.begin_attempt("a@x.io", "2.2.2.2", now).is_ok());
        assert!(limiter.begin_attempt("b@x.io", "1.1.1.1", now).is_ok());
    }

    #[test]
    fn a_success_clears_the_pair_but_not_the_ips_failures() {
        let limiter = LoginLimiter::new();
        for _ in 0..FREE_FAILURES {
            fail(&limiter, "a@x.io", "1.1.1.1", start());
        }
        let later = start() + Duration::seconds(1);
        let keys = attempt_keys(limiter.begin_attempt("a@x.io", "1.1.1.1", later).unwrap());
        assert!(limiter.resolve(&keys, Outcome::Succeeded, later));
        for _ in 0..FREE_FAILURES {
            fail(&limiter, "a@x.io", "1.1.1.1", later);
        }
        let counters = limiter.lock();
        let ip = &counters[&Key::Ip {
            ip_block: "1.1.1.1".into(),
        }];
        assert_eq!(ip.failures, 2 * FREE_FAILURES);
    }

    #[test]
    fn concurrent_attempts_count_as_failures_until_resolved() {
        let limiter = LoginLimiter::new();
        let held: Vec<_> = (0..FREE_FAILURES)
            .map(|_| limiter.begin_attempt("a@x.io", "1.1.1.1", start()).unwrap())
            .collect();
        assert_eq!(
            limiter.begin_attempt("a@x.io", "1.1.1.1", start()).err(),
            Some(1)
        );
        drop(held);
        assert!(
            limiter.lock().is_empty(),
            "abandoned attempts leave nothing"
        );
        assert!(limiter.begin_attempt("a@x.io", "1.1.1.1", start()).is_ok());
    }

    #[test]
    fn an_ip_is_limited_across_accounts_per_window_and_ipv6_per_64() {
        let limiter = LoginLimiter::new();
        for n in 0..FAILURES_PER_IP {
            let at = start() + Duration::seconds(n as i64);
            fail(&limiter, &format!("user{n}@x.io"), "2001:db8:1:2::7", at);
        }
        let now = start() + Duration::minutes(5);
        assert_eq!(
            limiter
                .begin_attempt("new@x.io", "2001:db8:1:2:ffff::1", now)
                .err(),
            Some(600)
        );
        assert!(
            limiter
                .begin_attempt("new@x.io", "2001:db8:1:3::1", now)
                .is_ok()
        );
        let window_end = start() + ip_window();
        assert!(
            limiter
                .begin_attempt("new@x.io", "2001:db8:1:2::1", window_end)
                .is_ok()
        );
    }

    #[test]
    fn a_pair_is_forgotten_a_day_after_its_last_failure() {
        let limiter = LoginLimiter::new();
        for n in 0..FREE_FAILURES + 12 {
            fail(
                &limiter,
                "a@x.io",
                "1.1.1.1",
                start() + Duration::hours(n as i64),
            );
        }
        let last = start() + Duration::hours((FREE_FAILURES + 11) as i64);
        assert_eq!(
            limiter
                .begin_attempt("a@x.io", "1.1.1.1", last + Duration::minutes(14))
                .err(),
            Some(60)
        );
        assert!(
            limiter
                .begin_attempt("a@x.io", "1.1.1.1", last + pair_memory())
                .is_ok()
        );
    }

    /// What memory decided and what the table holds agree, expiries included, so a restart
    /// picks up exactly the counters memory had.
    #[test]
    fn the_table_keeps_what_memory_counts_and_a_restart_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::for_tests(dir.path());
        let db = Db::open(&crate::db::DbSettings::from_config(&config)).unwrap();
        let limiter = LoginLimiter::new();
        let fail_and_write = |at: Timestamp| {
            limiter
                .begin_attempt("a@x.io", "2001:db8::1", at)
                .unwrap()
                .failed(&db, at);
        };
        // Four failures, the last two after the IP's window and a day-long pause: both counters
        // start over in memory and in the table.
        fail_and_write(start());
        fail_and_write(start() + Duration::seconds(1));
        let later = start() + pair_memory() + Duration::seconds(1);
        fail_and_write(later);
        fail_and_write(later);
        let reloaded = LoginLimiter::load(&db, later).unwrap();
        let snapshot = |limiter: &LoginLimiter| {
            let mut counters: Vec<_> = limiter
                .lock()
                .iter()
                .map(|(key, c)| {
                    let times = (c.first_failed_at, c.last_failed_at, c.expires_at);
                    (format!("{key:?}"), c.failures, times)
                })
                .collect();
            counters.sort();
            counters
        };
        assert_eq!(snapshot(&reloaded), snapshot(&limiter));
        assert_eq!(
            snapshot(&reloaded).iter().map(|c| c.1).collect::<Vec<_>>(),
            [2, 2]
        );

        // A success deletes the pair's row; the IP's stays.
        limiter
            .begin_attempt("a@x.io", "2001:db8::2", later)
            .unwrap()
            .succeeded(&db, later);
        let reloaded = LoginLimiter::load(&db, later).unwrap();
        assert_eq!(snapshot(&reloaded), snapshot(&limiter));
        assert_eq!(snapshot(&reloaded).len(), 1);
        // Nothing is read back once expired, and the sweep deletes it.
        let end = later + ip_window();
        assert!(LoginLimiter::load(&db, end).unwrap().lock().is_empty());
        assert_eq!(sweep_expired(&db, end).unwrap(), 1);
    }
}
