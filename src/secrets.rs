//! Secret tokens and their hashes: session tokens, invitation tokens and API key bodies are
//! random base62 strings; only their SHA-256 is stored, and looked up by equality on the hash.
//! And crier's own keys (`ServerKey`): made once, at first start, and kept in `server_keys`.

use ring::{digest, hmac};
use rusqlite::{Connection, OptionalExtension};

use crate::error::AppError;
use crate::ids::Ids;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes `bytes` (a big-endian number) in base62, left-padded with '0' to `width` characters.
pub fn base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

pub fn is_base62(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A new random token: 32 bytes (256 bits) in base62, 43 characters.
pub fn new_token(ids: &Ids) -> String {
    base62(&ids.random_bytes(32), 43)
}

/// SHA-256 of a token, the only form in which tokens are stored.
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// A token derived from a secret token by HMAC-SHA256 keyed by it, for `purpose`: 43 base62
/// characters. Whoever holds the secret can recompute it; nobody else (nor a reader of the
/// database, which keeps only the secret's SHA-256) can. The CSRF token of a session is one.
pub fn derived_token(secret: &str, purpose: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    base62(hmac::sign(&key, purpose.as_bytes()).as_ref(), 43)
}

/// Compares two secrets without an early exit, so the time taken does not tell how much of a
/// guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// A 256-bit key crier made for itself (random bytes from `Ids`) and keeps in the database, so
/// what it signed stays valid across restarts. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ServerKey(hmac::Key);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

impl ServerKey {
    pub fn from_bytes(bytes: &[u8]) -> ServerKey {
        ServerKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The key called `name`, made (32 random bytes) and stored the first time it is asked for.
    /// Runs inside the caller's write transaction, so two first starts cannot make two keys.
    pub fn load_or_create(
        conn: &Connection,
        ids: &Ids,
        name: &str,
        now: &str,
    ) -> Result<ServerKey, AppError> {
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT key FROM server_keys WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?;
        let bytes = match stored {
            Some(bytes) => bytes,
            None => {
                let bytes = ids.random_bytes(32);
                conn.prepare_cached(
                    "INSERT INTO server_keys (name, key, created_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(rusqlite::params![name, bytes, now])?;
                bytes
            }
        };
        Ok(ServerKey::from_bytes(&bytes))
    }

    /// HMAC-SHA256 of `parts`, each preceded by its length so no two lists sign alike. The
    /// first part names the purpose, so one key serves several without one's tags passing for
    /// another's.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.0);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut tag = [0u8; 32];
        tag.copy_from_slice(context.sign().as_ref());
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_depend_on_the_secret_and_the_purpose_and_hide_both() {
        let token = derived_token("secret-a", "csrf");
        assert_eq!(token, derived_token("secret-a", "csrf"));
        assert_eq!(token.len(), 43);
        assert!(is_base62(&token));
        assert_ne!(token, derived_token("secret-b", "csrf"));
        assert_ne!(token, derived_token("secret-a", "other"));
        assert_ne!(token.as_bytes(), token_hash("secret-a").as_slice());
    }

    #[test]
    fn server_key_tags_depend_on_the_key_and_the_parts_split() {
        let key = ServerKey::from_bytes(&[7; 32]);
        let other = ServerKey::from_bytes(&[8; 32]);
        assert_eq!(key.sign(&[b"a", b"bc"]), key.sign(&[b"a", b"bc"]));
        assert_ne!(key.sign(&[b"a", b"bc"]), key.sign(&[b"ab", b"c"]));
        assert_ne!(key.sign(&[b"a", b"bc"]), other.sign(&[b"a", b"bc"]));
        assert_eq!(format!("{key:?}"), "ServerKey(…)");
    }

    #[test]
    fn base62_encodes_big_endian_numbers_with_padding() {
        assert_eq!(base62(&[0], 3), "000");
        assert_eq!(base62(&[61], 1), "z");
        assert_eq!(base62(&[62], 1), "10");
        assert_eq!(base62(&[1, 0], 0), "48"); // 256 = 4*62 + 8
        assert_eq!(base62(&[0xff; 32], 43).len(), 43);
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
