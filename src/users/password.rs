//! Password hashing: PBKDF2-HMAC-SHA256 (ring) with a random 16-byte salt.
//!
//! Stored as `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`, so the iteration count can be
//! raised later without invalidating existing hashes. The default count (600 000) follows
//! OWASP's 2023 guidance for PBKDF2-HMAC-SHA256. Hashing is slow on purpose: never call it
//! inside a database transaction.

use std::num::NonZeroU32;

use ring::pbkdf2;

use crate::ids::Ids;

const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const PREFIX: &str = "pbkdf2-sha256";

/// Hashes `password` with a fresh salt.
pub fn hash_password(password: &str, iterations: NonZeroU32, ids: &Ids) -> String {
    let salt = ids.random_bytes(16);
    let mut hash = [0u8; 32];
    pbkdf2::derive(ALGORITHM, iterations, &salt, password.as_bytes(), &mut hash);
    format!("{PREFIX}${iterations}${}${}", hex(&salt), hex(&hash))
}

/// Whether `password` matches `stored` (in constant time). A malformed stored value never
/// matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(PREFIX), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iterations), Some(salt), Some(hash)) = (
        iterations.parse::<u32>().ok().and_then(NonZeroU32::new),
        unhex(salt),
        unhex(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(ALGORITHM, iterations, &salt, password.as_bytes(), &hash).is_ok()
}

/// The iteration count a stored hash was made with.
pub fn password_iterations(stored: &str) -> Option<u32> {
    let mut parts = stored.split('$');
    (parts.next() == Some(PREFIX))
        .then(|| parts.next()?.parse().ok())
        .flatten()
}

/// Spends the same time as checking a real password, for logins with an unknown email: the
/// response time must not tell whether the account exists.
pub fn burn_verification_time(password: &str, iterations: NonZeroU32) {
    let mut hash = [0u8; 32];
    pbkdf2::derive(
        ALGORITHM,
        iterations,
        b"no-such-user-salt",
        password.as_bytes(),
        &mut hash,
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::ids::SeededRandom;
    use std::sync::Arc;

    fn ids() -> Ids {
        Ids::new(Arc::new(SystemClock), Arc::new(SeededRandom::new(5)))
    }

    #[test]
    fn a_hash_verifies_only_its_password() {
        let iterations = NonZeroU32::new(1000).unwrap();
        let stored = hash_password("correct horse battery", iterations, &ids());
        assert!(stored.starts_with("pbkdf2-sha256$1000$"));
        assert_eq!(password_iterations(&stored), Some(1000));
        assert_eq!(password_iterations("md5$1$00$00"), None);
        assert!(verify_password("correct horse battery", &stored));
        assert!(!verify_password("correct horse batterz", &stored));
        assert!(!verify_password("", &stored));
    }

    #[test]
    fn salts_differ_between_hashes() {
        let ids = ids();
        let iterations = NonZeroU32::new(1000).unwrap();
        assert_ne!(
            hash_password("same", iterations, &ids),
            hash_password("same", iterations, &ids)
        );
    }

    #[test]
    fn malformed_stored_values_never_match() {
        for stored in [
            "",
            "pbkdf2-sha256$1000$zz$00",
            "pbkdf2-sha256$0$00$00",
            "md5$1$00$00",
            "pbkdf2-sha256$1000$00$00$extra",
        ] {
            assert!(!verify_password("x", stored), "{stored:?}");
        }
    }
}
