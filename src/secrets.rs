//! Secret tokens and their hashes: session tokens, invitation tokens and API key bodies are
//! random base62 strings; only their SHA-256 is stored, and looked up by equality on the hash.

use ring::digest;

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

/// Compares two secrets without an early exit, so the time taken does not tell how much of a
/// guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
