//! Secret tokens and their hashes: session tokens, invitation tokens and API key bodies are
//! random base62 strings; only their SHA-256 is stored, and looked up by equality on the hash.
//! And crier's own keys (`ServerKey`): made once, at first start, and kept in `server_keys`.
//! And `SecretBox`: the secrets crier must read back (a workspace's provider credentials, its
//! DKIM keys), sealed with a key kept in a file beside the database, not in it.

use std::io::{self, Read, Write};
use std::path::Path;

use ring::{aead, digest, hmac};
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

/// Seals and opens the secrets crier must read back, with ChaCha20-Poly1305 under a 256-bit key
/// kept in its own file (`secrets.key` in the data directory, `0600`), never in the database: a
/// copy of the database alone — a backup, a replica, a stolen file — does not give the secrets
/// away. Losing the key file loses only those secrets (they are entered again); the rest of the
/// database does not depend on it.
///
/// A sealed value is `1 · key fingerprint (8) · nonce (12) · ciphertext · tag (16)`, and is bound
/// to its `context` (e.g. `provider_account/pac_…/auth_token`) as associated data, so a value
/// copied into another row or field does not open there. Its `Debug` never shows the key.
pub struct SecretBox {
    key: aead::LessSafeKey,
    fingerprint: [u8; 8],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsealed {
    /// Sealed under another key (the key file was replaced or lost): enter the secret again.
    OtherKey,
    /// Not a sealed value, altered, or sealed for another context.
    Damaged,
}

const SEALED_VERSION: u8 = 1;
const SECRET_KEY_FILE_LEN: usize = 64;

impl SecretBox {
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretBox {
        let mut fingerprint = [0u8; 8];
        let digest = digest::digest(&digest::SHA256, bytes);
        fingerprint.copy_from_slice(&digest.as_ref()[..8]);
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, bytes)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is ChaCha20-Poly1305's length"));
        SecretBox {
            key: aead::LessSafeKey::new(unbound),
            fingerprint,
        }
    }

    /// The key in `path` (64 hex digits), made and written `0600` the first time (a second
    /// process racing the first reads what the first wrote).
    pub fn load_or_create(path: &Path, ids: &Ids) -> io::Result<SecretBox> {
        match crate::db::files::create_private_file(path) {
            Ok(mut file) => {
                let bytes = ids.random_bytes(32);
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                file.write_all(format!("{hex}\n").as_bytes())?;
                file.sync_all()?;
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                // A key file restored or copied by hand readable by others: the database's
                // files get the same treatment (`db::files::make_database_private`).
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(
                        path,
                        std::fs::Permissions::from_mode(crate::db::files::PRIVATE_FILE_MODE),
                    )?;
                    log::warn!(file:% = path.display(); "the secrets key was readable by others; it is now 0600");
                }
            }
            Err(error) => return Err(error),
        }
        let mut text = String::new();
        std::fs::File::open(path)?.read_to_string(&mut text)?;
        let hex = text.trim();
        let invalid = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} must hold 64 hex digits", path.display()),
            )
        };
        if hex.len() != SECRET_KEY_FILE_LEN {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(SecretBox::from_bytes(&bytes))
    }

    /// `secret` sealed for `context` under a fresh random nonce.
    pub fn seal(&self, ids: &Ids, context: &str, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce.copy_from_slice(&ids.random_bytes(aead::NONCE_LEN));
        let mut sealed = Vec::with_capacity(1 + 8 + aead::NONCE_LEN + secret.len() + 16);
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&self.fingerprint);
        sealed.extend_from_slice(&nonce);
        let mut body = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!("sealing fails only past 256 GiB"));
        sealed.extend_from_slice(&body);
        sealed
    }

    /// The secret `sealed` holds, if it was sealed under this key for `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, Unsealed> {
        let head = 1 + 8 + aead::NONCE_LEN;
        if sealed.len() < head + aead::CHACHA20_POLY1305.tag_len() || sealed[0] != SEALED_VERSION {
            return Err(Unsealed::Damaged);
        }
        if sealed[1..9] != self.fingerprint {
            return Err(Unsealed::OtherKey);
        }
        let mut nonce = [0u8; aead::NONCE_LEN];
        nonce.copy_from_slice(&sealed[9..head]);
        let mut body = sealed[head..].to_vec();
        let opened = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| Unsealed::Damaged)?;
        Ok(opened.to_vec())
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

    fn test_ids() -> Ids {
        Ids::new(
            std::sync::Arc::new(crate::clock::SystemClock),
            std::sync::Arc::new(crate::ids::SeededRandom::new(7)),
        )
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_context() {
        let ids = test_ids();
        let secret_box = SecretBox::from_bytes(&[1; 32]);
        let sealed = secret_box.seal(&ids, "provider_account/pac_1/auth_token", b"tok-123");
        assert!(!sealed.windows(7).any(|w| w == b"tok-123"));
        assert_eq!(
            secret_box.open("provider_account/pac_1/auth_token", &sealed),
            Ok(b"tok-123".to_vec())
        );
        assert_ne!(
            sealed,
            secret_box.seal(&ids, "provider_account/pac_1/auth_token", b"tok-123"),
            "a fresh nonce each time"
        );
        assert_eq!(
            secret_box.open("provider_account/pac_2/auth_token", &sealed),
            Err(Unsealed::Damaged)
        );
        let other = SecretBox::from_bytes(&[2; 32]);
        assert_eq!(
            other.open("provider_account/pac_1/auth_token", &sealed),
            Err(Unsealed::OtherKey)
        );
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(
            secret_box.open("provider_account/pac_1/auth_token", &altered),
            Err(Unsealed::Damaged)
        );
        assert_eq!(secret_box.open("x", b"short"), Err(Unsealed::Damaged));
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("crier-secretbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.key");
        let ids = test_ids();
        let first = SecretBox::load_or_create(&path, &ids).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = first.seal(&ids, "c", b"s");
        let again = SecretBox::load_or_create(&path, &ids).unwrap();
        assert_eq!(again.open("c", &sealed), Ok(b"s".to_vec()));
        // Copied back readable by others (a restore by hand): tightened when read.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let restored = SecretBox::load_or_create(&path, &ids).unwrap();
        assert_eq!(restored.open("c", &sealed), Ok(b"s".to_vec()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(SecretBox::load_or_create(&path, &ids).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
