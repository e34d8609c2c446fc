//! The one source of randomness, and the identifiers made from it.
//!
//! `Ids` turns random bytes into type-prefixed, time-ordered identifiers (`msg_01JD…`) and opaque
//! tokens. Production uses the operating system's CSPRNG through ring; tests may pass a
//! `SeededRandom` so ids are reproducible. Nothing else in the crate calls a random generator.

use std::sync::Arc;
use std::sync::Mutex;

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use crate::clock::{Clock, Timestamp};

mod typed;
pub use typed::{
    ApiKeyId, CampaignId, ContactFieldId, ContactId, ContactImportId, GroupId, MessageId,
    PaymentSessionId, ProviderAccountId, SegmentId, SendingDomainId, UserId, WebhookDeliveryId,
    WebhookEndpointId, WorkspaceId,
};

/// Where random bytes come from.
pub trait RandomSource: Send + Sync {
    /// Fills `buf` with random bytes. Implementations never fail: a CSPRNG that cannot be read is
    /// an unrecoverable condition of the host.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (via ring).
#[derive(Debug)]
pub struct SystemRandomSource(SystemRandom);

impl SystemRandomSource {
    pub fn new() -> SystemRandomSource {
        SystemRandomSource(SystemRandom::new())
    }
}

impl Default for SystemRandomSource {
    fn default() -> SystemRandomSource {
        SystemRandomSource::new()
    }
}

impl RandomSource for SystemRandomSource {
    fn fill(&self, buf: &mut [u8]) {
        if self.0.fill(buf).is_err() {
            // ring only fails here when the kernel's getrandom is unavailable; nothing secure can
            // be produced, so stopping is the only safe answer.
            std::process::abort();
        }
    }
}

/// ring's own generator, for what ring asks one of (the blinding of RSA signatures: DKIM). It
/// is made here so that randomness keeps one home; nothing reproducible depends on it.
pub fn signing_random() -> std::sync::Arc<dyn SecureRandom + Send + Sync> {
    std::sync::Arc::new(SystemRandom::new())
}

/// A deterministic stream (SHA-256 of seed and counter). For tests only: predictable by design.
#[derive(Debug)]
pub struct SeededRandom {
    seed: u64,
    counter: Mutex<u64>,
}

impl SeededRandom {
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom {
            seed,
            counter: Mutex::new(0),
        }
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut counter = self
            .counter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for chunk in buf.chunks_mut(32) {
            let mut input = [0u8; 16];
            input[..8].copy_from_slice(&self.seed.to_le_bytes());
            input[8..].copy_from_slice(&counter.to_le_bytes());
            *counter += 1;
            let block = digest::digest(&digest::SHA256, &input);
            chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
        }
    }
}

/// Crockford's base32 alphabet: no I, L, O, U, so ids survive being read aloud or retyped.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Makes identifiers and tokens from one clock and one random source.
#[derive(Clone)]
pub struct Ids {
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    id_bits: Arc<Mutex<IdBits>>,
}

/// The random bits of ids, drawn from the source a block at a time: an import or a campaign's
/// fan-out makes a million ids, and one `getrandom` call each was ~5 % of its writer's time.
/// Ids name things, they grant nothing; secrets and tokens (`random_bytes`) still come from the
/// source directly, never from this block.
struct IdBits {
    block: [u8; ID_BITS_BLOCK],
    /// Bytes of `block` handed out already (all of them at first: it is filled when needed).
    used: usize,
}

/// The bits of 128 ids.
const ID_BITS_BLOCK: usize = 10 * 128;

impl Ids {
    pub fn new(clock: Arc<dyn Clock>, random: Arc<dyn RandomSource>) -> Ids {
        Ids {
            clock,
            random,
            id_bits: Arc::new(Mutex::new(IdBits {
                block: [0; ID_BITS_BLOCK],
                used: ID_BITS_BLOCK,
            })),
        }
    }

    /// A new id `"{prefix}_{26 chars}"`: 48 bits of milliseconds since the epoch then 80 random
    /// bits, in Crockford base32 (the ULID layout). Ids made later sort later (to the
    /// millisecond), which keeps primary-key indexes append-mostly and cursors simple.
    pub fn new_id(&self, prefix: &str) -> String {
        let mut random = [0u8; 10];
        {
            let mut bits = self
                .id_bits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if bits.used == ID_BITS_BLOCK {
                self.random.fill(&mut bits.block);
                bits.used = 0;
            }
            let used = bits.used;
            random.copy_from_slice(&bits.block[used..used + 10]);
            bits.used += 10;
        }
        format!("{prefix}_{}", ulid_text(self.clock.now(), random))
    }

    /// `n` random bytes, e.g. for secrets and session tokens.
    pub fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; n];
        self.random.fill(&mut bytes);
        bytes
    }

    /// A new request id, `req_…`, for requests that did not bring a valid one.
    pub fn request_id(&self) -> String {
        self.new_id("req")
    }
}

/// Encodes (time, 80 random bits) as the 26-character ULID text.
fn ulid_text(at: Timestamp, random: [u8; 10]) -> String {
    let millis = u128::try_from(at.timestamp_millis()).unwrap_or(0) & ((1 << 48) - 1);
    let mut value = millis << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (8 * (9 - i));
    }
    ulid_of_bits(value)
}

/// The 26-character ULID text of 128 bits (26 characters × 5 bits = 130 bits; the top two are
/// always zero).
pub fn ulid_of_bits(value: u128) -> String {
    (0..26)
        .rev()
        .map(|position| char::from(CROCKFORD[((value >> (position * 5)) & 31) as usize]))
        .collect()
}

/// The 128 bits of a ULID text as crier writes it (26 characters of upper-case Crockford
/// base32, the first at most `7`); `None` for anything else, so `ulid_of_bits` gives the same
/// text back.
pub fn ulid_bits(text: &str) -> Option<u128> {
    if text.len() != 26 || text.as_bytes()[0] > b'7' {
        return None;
    }
    text.bytes().try_fold(0u128, |value, byte| {
        let digit = CROCKFORD.iter().position(|&c| c == byte)?;
        Some((value << 5) | digit as u128)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn a_ulid_text_and_its_bits_round_trip_and_nothing_else_decodes() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        ));
        let ids = ids_at(clock, 7);
        for _ in 0..100 {
            let id = ids.new_id("con");
            let body = &id[4..];
            let bits = ulid_bits(body).unwrap();
            assert_eq!(ulid_of_bits(bits), body);
        }
        assert_eq!(ulid_bits(&"0".repeat(26)), Some(0));
        assert_eq!(ulid_of_bits(u128::MAX), format!("7{}", "Z".repeat(25)));
        for bad in [
            "",
            "01JD",
            &"8".repeat(26),
            &format!("01{}", "i".repeat(24)),
            &"U".repeat(26),
        ] {
            assert_eq!(ulid_bits(bad), None, "{bad}");
        }
    }

    fn ids_at(clock: Arc<ManualClock>, seed: u64) -> Ids {
        Ids::new(clock, Arc::new(SeededRandom::new(seed)))
    }

    #[test]
    fn ids_have_prefix_and_crockford_body() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        ));
        let id = ids_at(clock, 1).new_id("msg");
        let body = id.strip_prefix("msg_").unwrap();
        assert_eq!(body.len(), 26);
        assert!(body.bytes().all(|b| CROCKFORD.contains(&b)), "{id}");
    }

    #[test]
    fn ulid_of_epoch_and_zero_bits_is_all_zero() {
        let at = Utc.timestamp_millis_opt(0).unwrap();
        assert_eq!(ulid_text(at, [0; 10]), "00000000000000000000000000");
        assert_eq!(ulid_text(at, [0xff; 10]), "0000000000ZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn later_ids_sort_later() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        ));
        let ids = ids_at(Arc::clone(&clock), 7);
        let mut previous = ids.new_id("msg");
        for _ in 0..100 {
            clock.advance(Duration::milliseconds(1));
            let next = ids.new_id("msg");
            assert!(next > previous, "{next} should sort after {previous}");
            previous = next;
        }
    }

    #[test]
    fn ids_draw_their_bits_a_block_at_a_time_and_never_repeat_them() {
        /// Counts the calls and bytes asked of it; gives a counter's bytes.
        struct Counting(Mutex<(usize, u64)>);
        impl RandomSource for Counting {
            fn fill(&self, buf: &mut [u8]) {
                let mut state = self.0.lock().unwrap();
                state.0 += 1;
                for chunk in buf.chunks_mut(8) {
                    state.1 += chunk.len() as u64;
                    chunk.copy_from_slice(&state.1.to_le_bytes()[..chunk.len()]);
                }
            }
        }
        let source = Arc::new(Counting(Mutex::new((0, 0))));
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        ));
        let ids = Ids::new(clock, Arc::clone(&source) as Arc<dyn RandomSource>);
        let made: std::collections::HashSet<String> =
            (0..300).map(|_| ids.clone().new_id("con")).collect();
        assert_eq!(made.len(), 300, "every id distinct, clones included");
        // 300 ids of 10 bytes: three blocks of 128 ids.
        assert_eq!(*source.0.lock().unwrap(), (3, 3 * ID_BITS_BLOCK as u64));
        // Secrets come from the source itself, not from the block.
        let secret = ids.random_bytes(32);
        assert_eq!(source.0.lock().unwrap().0, 4);
        assert_eq!(secret.len(), 32);
    }

    #[test]
    fn seeded_source_is_reproducible_and_seed_dependent() {
        let fill = |seed| {
            let mut buf = [0u8; 40];
            SeededRandom::new(seed).fill(&mut buf);
            buf
        };
        assert_eq!(fill(3), fill(3));
        assert_ne!(fill(3), fill(4));
    }

    #[test]
    fn system_source_does_not_repeat() {
        let source = SystemRandomSource::new();
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        source.fill(&mut a);
        source.fill(&mut b);
        assert_ne!(a, b);
    }
}
