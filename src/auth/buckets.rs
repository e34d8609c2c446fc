//! Request rate limits (docs/API.md, "Rate limits"): a token bucket per API key, and one per
//! client IP for the routes anyone may call without credentials. In memory: one process serves
//! the instance, and a restart only ever gives callers a full bucket.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` a second; each request takes one.
//! An empty bucket refuses the request with the seconds until a token is back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A bucket's shape; `per_second` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    pub const OFF: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    /// `per_second` with bursts of `burst_factor` times as many.
    pub fn with_burst_factor(per_second: u32, burst_factor: u32) -> Rate {
        Rate {
            per_second,
            burst: per_second.saturating_mul(burst_factor),
        }
    }

    pub fn is_off(self) -> bool {
        self.per_second == 0
    }

    /// The seconds an empty bucket takes to fill: the window its `burst` is a quota of.
    pub fn window_secs(self) -> u64 {
        u64::from(self.burst).div_ceil(u64::from(self.per_second.max(1)))
    }
}

/// What one request found in its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub allowed: bool,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until one token is back (what a refused caller waits); 0 when allowed.
    pub retry_after_secs: u64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets past this many are pruned of the full ones (a full bucket is the same as none).
const PRUNE_ABOVE: usize = 100_000;

pub struct Buckets {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    pub fn new(rate: Rate) -> Buckets {
        Buckets {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes a token from `key`'s bucket at `now`, at the buckets' own rate; `None` when the
    /// limit is off.
    pub fn take(&self, key: &str, now: Instant) -> Option<Allowance> {
        self.take_at(key, self.rate, now)
    }

    /// Takes a token from `key`'s bucket at `now` with `shape` as the bucket's rate (a key whose
    /// plan sets its own); a bucket whose shape changed keeps its tokens, up to the new burst.
    /// `None` when `shape` is off.
    pub fn take_at(&self, key: &str, shape: Rate, now: Instant) -> Option<Allowance> {
        if shape.is_off() {
            return None;
        }
        let rate = f64::from(shape.per_second);
        let burst = f64::from(shape.burst.max(1));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| {
                bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate
                    < burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let seconds = |tokens_missing: f64| (tokens_missing.max(0.0) / rate).ceil() as u64;
        Some(Allowance {
            allowed,
            remaining: bucket.tokens.floor() as u32,
            reset_secs: seconds(burst - bucket.tokens),
            retry_after_secs: if allowed {
                0
            } else {
                seconds(1.0 - bucket.tokens).max(1)
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rate(per_second: u32, burst: u32) -> Buckets {
        Buckets::new(Rate { per_second, burst })
    }

    #[test]
    fn a_burst_then_the_rate() {
        let buckets = rate(2, 4);
        let start = Instant::now();
        let taken: Vec<bool> = (0..5)
            .map(|_| buckets.take("k", start).unwrap().allowed)
            .collect();
        assert_eq!(taken, [true, true, true, true, false]);
        let refused = buckets.take("k", start).unwrap();
        assert_eq!((refused.remaining, refused.retry_after_secs), (0, 1));
        assert_eq!(refused.reset_secs, 2, "4 tokens at 2 a second");
        // Half a second brings one token back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(buckets.take("k", later).unwrap().allowed);
        assert!(!buckets.take("k", later).unwrap().allowed);
        // A long pause refills to the burst, not beyond.
        let much_later = start + Duration::from_secs(60);
        let first = buckets.take("k", much_later).unwrap();
        assert_eq!((first.allowed, first.remaining), (true, 3));
    }

    #[test]
    fn a_bucket_takes_the_shape_it_is_asked_with() {
        let buckets = rate(1, 1);
        let now = Instant::now();
        let wider = Rate::with_burst_factor(5, 2);
        assert_eq!(wider.burst, 10);
        let taken: Vec<bool> = (0..11)
            .map(|_| buckets.take_at("k", wider, now).unwrap().allowed)
            .collect();
        assert_eq!(taken.iter().filter(|allowed| **allowed).count(), 10);
        // Back to the buckets' own shape: empty, and refilled at 1 a second, not 5.
        assert!(!buckets.take("k", now).unwrap().allowed);
        let later = now + Duration::from_millis(500);
        assert!(!buckets.take("k", later).unwrap().allowed);
        assert_eq!(buckets.take_at("k", Rate::OFF, later), None);
    }

    #[test]
    fn keys_have_their_own_buckets_and_off_is_off() {
        let buckets = rate(1, 1);
        let now = Instant::now();
        assert!(buckets.take("a", now).unwrap().allowed);
        assert!(!buckets.take("a", now).unwrap().allowed);
        assert!(buckets.take("b", now).unwrap().allowed);
        assert_eq!(Buckets::new(Rate::OFF).take("a", now), None);
        assert_eq!(
            Rate {
                per_second: 100,
                burst: 200
            }
            .window_secs(),
            2
        );
    }
}
