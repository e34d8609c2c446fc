//! The API key format, scopes and modes (docs/rules/access.md). Pure: no database, no clock.
//!
//! A key is `crier_live_` or `crier_test_`, then 32 base62 characters of randomness (184 bits),
//! then a 6-character base62 checksum of everything before it. The checksum lets a malformed or
//! truncated key be refused before any database access, and lets secret scanners recognise
//! crier keys. Changing the prefix or the layout invalidates every key ever issued.

use crate::vocabulary::Mode;
use std::fmt;

use ring::digest;

use crate::ids::Ids;
use crate::secrets::{base62, is_base62};

const BODY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
/// `crier_live_` + 6 characters of the body: enough to tell keys apart in a list.
pub const DISPLAY_PREFIX_LEN: usize = 17;

/// The text every key of `mode` starts with.
fn key_prefix(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "crier_live_",
        Mode::Test => "crier_test_",
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    MessagesSend,
    MessagesRead,
    ContactsRead,
    ContactsWrite,
    CampaignsRead,
    CampaignsWrite,
    BillingRead,
    PaymentsWrite,
    ActivityRead,
    WebhooksRead,
    WebhooksWrite,
    DomainsRead,
    DomainsWrite,
    ProvidersRead,
    ProvidersWrite,
}

impl Scope {
    pub const ALL: [Scope; 15] = [
        Scope::MessagesSend,
        Scope::MessagesRead,
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::CampaignsRead,
        Scope::CampaignsWrite,
        Scope::BillingRead,
        Scope::PaymentsWrite,
        Scope::ActivityRead,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
        Scope::DomainsRead,
        Scope::DomainsWrite,
        Scope::ProvidersRead,
        Scope::ProvidersWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MessagesSend => "messages:send",
            Scope::MessagesRead => "messages:read",
            Scope::ContactsRead => "contacts:read",
            Scope::ContactsWrite => "contacts:write",
            Scope::CampaignsRead => "campaigns:read",
            Scope::CampaignsWrite => "campaigns:write",
            Scope::BillingRead => "billing:read",
            Scope::PaymentsWrite => "payments:write",
            Scope::ActivityRead => "activity:read",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::DomainsRead => "domains:read",
            Scope::DomainsWrite => "domains:write",
            Scope::ProvidersRead => "providers:read",
            Scope::ProvidersWrite => "providers:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A well-formed key as presented by a client. Its `Debug` never shows the key.
pub struct PresentedKey {
    text: String,
    mode: Mode,
}

impl fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedKey({}…)", &self.text[..DISPLAY_PREFIX_LEN])
    }
}

impl PresentedKey {
    /// Checks prefix, length, alphabet and checksum; `None` for anything else.
    pub fn parse(text: &str) -> Option<PresentedKey> {
        let mode = [Mode::Live, Mode::Test]
            .into_iter()
            .find(|mode| text.starts_with(key_prefix(*mode)))?;
        let rest = &text[key_prefix(mode).len()..];
        if rest.len() != BODY_LEN + CHECKSUM_LEN || !is_base62(rest) {
            return None;
        }
        let (without_checksum, checksum) = text.split_at(text.len() - CHECKSUM_LEN);
        (checksum_of(without_checksum) == checksum).then(|| PresentedKey {
            text: text.to_owned(),
            mode,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn display_prefix(&self) -> &str {
        &self.text[..DISPLAY_PREFIX_LEN]
    }
}

/// A new random key of `mode`.
pub fn generate_key(mode: Mode, ids: &Ids) -> PresentedKey {
    let body = base62(&ids.random_bytes(23), BODY_LEN);
    let without_checksum = format!("{}{body}", key_prefix(mode));
    let checksum = checksum_of(&without_checksum);
    PresentedKey {
        text: format!("{without_checksum}{checksum}"),
        mode,
    }
}

fn checksum_of(text: &str) -> String {
    let hash = digest::digest(&digest::SHA256, text.as_bytes());
    base62(&hash.as_ref()[..4], CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::ids::SeededRandom;
    use std::sync::Arc;

    fn ids() -> Ids {
        Ids::new(Arc::new(SystemClock), Arc::new(SeededRandom::new(9)))
    }

    #[test]
    fn generated_keys_parse_back() {
        for mode in [Mode::Live, Mode::Test] {
            let key = generate_key(mode, &ids());
            let text = key.as_str().to_owned();
            assert_eq!(text.len(), 11 + 32 + 6, "{text}");
            assert!(text.starts_with(&format!("crier_{}_", mode.as_str())));
            let parsed = PresentedKey::parse(&text).unwrap();
            assert_eq!(parsed.mode(), mode);
            assert_eq!(parsed.display_prefix(), &text[..17]);
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = generate_key(Mode::Live, &ids()).as_str().to_owned();
        let mut flipped = good.clone().into_bytes();
        let last = flipped.len() - 10;
        flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
        let cases = [
            good[..good.len() - 1].to_owned(),
            format!("{good}0"),
            good.replacen("crier_live_", "crier_prod_", 1),
            good.replacen("crier_live_", "", 1),
            String::from_utf8(flipped).unwrap(),
            format!("{}-{}", &good[..20], &good[21..]),
            String::new(),
        ];
        for case in cases {
            assert!(
                PresentedKey::parse(&case).is_none(),
                "{case:?} was accepted"
            );
        }
    }

    #[test]
    fn scopes_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("messages:delete"), None);
    }
}
