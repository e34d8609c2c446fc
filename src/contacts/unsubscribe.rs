//! Unsubscribe links and SMS keywords (docs/rules/contacts.md, "Unsubscribe links").
//!
//! A token names a workspace, a mode, a contact and a channel, signed with HMAC-SHA256 under
//! the server's `unsubscribe` key: `base64url(payload ‖ tag)`. It never expires (a link in a
//! years-old email must still work) and carries nothing secret; only the key can make one, so a
//! token is its own authentication — no cookie, no login, no CSRF token (RFC 8058 one-click).
//!
//! Two formats, told apart by their first byte; both are read forever. Version 2 (made
//! whenever both ids are ULIDs, as crier's own are) holds the ids as their 16 bytes and the
//! first 16 bytes of the tag: 67 characters, so an SMS opt-out line stays short. Version 1
//! holds the ids' text and the whole tag (127 characters); it is what the first releases
//! sent, and what an id of another form still gets.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::Connection;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::UnsubscribeVia;
use crate::contacts::store;
use crate::error::AppError;
use crate::ids::{ContactId, WorkspaceId, ulid_bits, ulid_of_bits};
use crate::scope::WorkspaceScope;
use crate::secrets::{ServerKey, constant_time_eq};
use crate::vocabulary::Mode;

/// The first byte of a token of the first format: the ids' text, the whole tag.
const VERSION_TEXT: u8 = 1;
/// The first byte of a token of the short format: the ids' ULID bytes, a 128-bit tag.
const VERSION_SHORT: u8 = 2;
/// What the tag signs first, so the key's other uses (address hashes) never pass for tokens.
const PURPOSE: &[u8] = b"crier unsubscribe token";
/// The tag's length in each format: HMAC-SHA256 whole, or its first 128 bits (RFC 2104
/// allows a truncation to half the output; 2^-128 is no guess anyone makes).
const TAG_LEN_TEXT: usize = 32;
const TAG_LEN_SHORT: usize = 16;
/// A token longer than this is not one of ours (ids are short); refused before decoding.
const MAX_TOKEN_LEN: usize = 256;

/// What a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeToken {
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub contact_id: ContactId,
    pub channel: Channel,
}

fn flags(mode: Mode, channel: Channel) -> u8 {
    let mode_bit = match mode {
        Mode::Live => 0,
        Mode::Test => 1,
    };
    let channel_bit = match channel {
        Channel::Sms => 0,
        Channel::Email => 2,
    };
    mode_bit | channel_bit
}

impl UnsubscribeToken {
    /// The payload and the tag's length: `[2][flags][workspace ULID][contact ULID]` when both
    /// ids are ULIDs, else `[1][flags]workspace_id contact_id`. Flags bit 0 is the mode (test),
    /// bit 1 the channel (email).
    fn payload(&self) -> (Vec<u8>, usize) {
        let flags = flags(self.mode, self.channel);
        let short = ulid_of(self.workspace_id.as_str(), WorkspaceId::PREFIX)
            .zip(ulid_of(self.contact_id.as_str(), ContactId::PREFIX));
        match short {
            Some((workspace, contact)) => {
                let mut payload = vec![VERSION_SHORT, flags];
                payload.extend_from_slice(&workspace.to_be_bytes());
                payload.extend_from_slice(&contact.to_be_bytes());
                (payload, TAG_LEN_SHORT)
            }
            None => {
                let mut payload = vec![VERSION_TEXT, flags];
                payload.extend_from_slice(self.workspace_id.as_str().as_bytes());
                payload.push(b' ');
                payload.extend_from_slice(self.contact_id.as_str().as_bytes());
                (payload, TAG_LEN_TEXT)
            }
        }
    }

    /// The token text: URL-safe base64 without padding.
    pub fn encode(&self, key: &ServerKey) -> String {
        let (mut bytes, tag_len) = self.payload();
        let tag = key.sign(&[PURPOSE, &bytes]);
        bytes.extend_from_slice(&tag[..tag_len]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The token `text` if `key` signed it, exactly as it is; `None` for anything else (forged,
    /// truncated, altered, another key's, not base64).
    pub fn verify(key: &ServerKey, text: &str) -> Option<UnsubscribeToken> {
        if text.len() > MAX_TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        // Only the canonical text: base64 can spell the same bytes with other trailing bits.
        if URL_SAFE_NO_PAD.encode(&bytes) != text {
            return None;
        }
        let tag_len = match *bytes.first()? {
            VERSION_TEXT => TAG_LEN_TEXT,
            VERSION_SHORT => TAG_LEN_SHORT,
            _ => return None,
        };
        if bytes.len() < 2 + tag_len {
            return None;
        }
        let (payload, tag) = bytes.split_at(bytes.len() - tag_len);
        if !constant_time_eq(&key.sign(&[PURPOSE, payload])[..tag_len], tag) {
            return None;
        }
        let (&version, rest) = payload.split_first()?;
        let (&flags, ids) = rest.split_first()?;
        if flags > 3 {
            return None;
        }
        let (workspace_id, contact_id) = if version == VERSION_SHORT {
            let (workspace, contact) = ids.split_at_checked(16)?;
            let workspace = u128::from_be_bytes(workspace.try_into().ok()?);
            let contact = u128::from_be_bytes(contact.try_into().ok()?);
            (
                format!("{}_{}", WorkspaceId::PREFIX, ulid_of_bits(workspace)),
                format!("{}_{}", ContactId::PREFIX, ulid_of_bits(contact)),
            )
        } else {
            let (workspace, contact) = std::str::from_utf8(ids).ok()?.split_once(' ')?;
            (workspace.to_owned(), contact.to_owned())
        };
        Some(UnsubscribeToken {
            workspace_id: WorkspaceId::parse(&workspace_id)?,
            mode: if flags & 1 == 1 {
                Mode::Test
            } else {
                Mode::Live
            },
            contact_id: ContactId::parse(&contact_id)?,
            channel: if flags & 2 == 2 {
                Channel::Email
            } else {
                Channel::Sms
            },
        })
    }
}

/// The ULID bits of an id `{prefix}_{ULID}`; `None` for an id of another form.
fn ulid_of(id: &str, prefix: &str) -> Option<u128> {
    ulid_bits(id.strip_prefix(prefix)?.strip_prefix('_')?)
}

/// `{public_url}/u/{token}`: the link that unsubscribes the contact from `channel` — in the
/// `List-Unsubscribe` header and the footer of marketing email, and for SMS campaigns.
pub fn unsubscribe_url(
    key: &ServerKey,
    public_url: &str,
    workspace_id: &WorkspaceId,
    mode: Mode,
    contact_id: &ContactId,
    channel: Channel,
) -> String {
    url_of(
        Some(key),
        public_url,
        workspace_id,
        mode,
        contact_id,
        channel,
    )
}

/// The unsubscribe URL `unsubscribe_url` gives, with its tag left zero: exactly as long and of
/// the same characters (URL-safe base64), so a text holding it counts the same SMS segments.
/// What a campaign's estimate renders with, without signing a token per recipient; it is no
/// working link.
pub fn unsubscribe_url_unsigned(
    public_url: &str,
    workspace_id: &WorkspaceId,
    mode: Mode,
    contact_id: &ContactId,
    channel: Channel,
) -> String {
    url_of(None, public_url, workspace_id, mode, contact_id, channel)
}

/// What a campaign's preview and test send show where `{{ unsubscribe_url }}` stands:
/// `{public_url}/u/preview-000…`, as long as the contact's real link (a generated contact id's
/// for the sample contact) and of characters that count alike in an SMS, so a preview shows
/// the segments the campaign's messages will have. It unsubscribes nobody.
pub fn preview_unsubscribe_url(
    public_url: &str,
    workspace_id: &WorkspaceId,
    mode: Mode,
    contact_id: Option<&ContactId>,
    channel: Channel,
) -> String {
    let sample = ContactId::sample();
    let real = unsubscribe_url_unsigned(
        public_url,
        workspace_id,
        mode,
        contact_id.unwrap_or(&sample),
        channel,
    );
    let mut url = format!("{}/u/preview-", public_url.trim_end_matches('/'));
    while url.len() < real.len() {
        url.push('0');
    }
    url
}

/// The URL of the token signed by `key`, or with a zero tag without one.
fn url_of(
    key: Option<&ServerKey>,
    public_url: &str,
    workspace_id: &WorkspaceId,
    mode: Mode,
    contact_id: &ContactId,
    channel: Channel,
) -> String {
    let token = UnsubscribeToken {
        workspace_id: workspace_id.clone(),
        mode,
        contact_id: contact_id.clone(),
        channel,
    };
    let text = match key {
        Some(key) => token.encode(key),
        None => {
            let (mut bytes, tag_len) = token.payload();
            bytes.resize(bytes.len() + tag_len, 0);
            URL_SAFE_NO_PAD.encode(bytes)
        }
    };
    format!("{}/u/{text}", public_url.trim_end_matches('/'))
}

/// Unsubscribes the token's contact from its channel (`link` or `one_click`). A contact already
/// unsubscribed keeps its first time and way; one deleted or erased since is left alone. Returns
/// whether this changed anything; either way the person is told they are unsubscribed.
pub fn unsubscribe_with_token(
    conn: &Connection,
    token: &UnsubscribeToken,
    via: UnsubscribeVia,
    now: Timestamp,
) -> Result<bool, AppError> {
    store::unsubscribe(
        conn,
        &token.workspace_id,
        token.mode,
        &token.contact_id,
        token.channel,
        via,
        &format_timestamp(now),
    )
}

/// The words that unsubscribe from SMS, compared without case, accents, surrounding spaces or
/// punctuation.
const STOP_WORDS: &[&str] = &["STOP", "ARRET", "STOPALL", "UNSUBSCRIBE", "DESABONNER"];

/// Whether an inbound SMS asks to stop: one of `STOP_WORDS`, alone (`Stop.`, ` arrêt! `).
pub fn is_stop_keyword(text: &str) -> bool {
    let word = text.trim_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() || word.len() > 40 {
        return false;
    }
    let folded: String = word
        .chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' | 'Ä' => 'A',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'î' | 'ï' | 'Î' | 'Ï' => 'I',
            'ô' | 'ö' | 'Ô' | 'Ö' => 'O',
            'ù' | 'û' | 'ü' | 'Ù' | 'Û' | 'Ü' => 'U',
            'ç' | 'Ç' => 'C',
            other => other.to_ascii_uppercase(),
        })
        .collect();
    STOP_WORDS.contains(&folded.as_str())
}

/// An inbound STOP from `phone` (E.164): unsubscribes from SMS (`sms_keyword`) every live
/// contact with that phone in the workspaces that have sent it a live SMS — the senders the
/// person can be answering; a workspace that never wrote to the number is not theirs to stop.
/// Returns how many contacts changed.
pub fn unsubscribe_by_keyword(
    conn: &Connection,
    phone: &str,
    now: Timestamp,
) -> Result<usize, AppError> {
    store::unsubscribe_phone_by_keyword(conn, phone, None, &format_timestamp(now))
}

/// `unsubscribe_by_keyword` for a STOP that came through the workspace's own provider account
/// (its own numbers): only that workspace's contact changes.
pub fn unsubscribe_by_keyword_in(
    conn: &Connection,
    scope: &WorkspaceScope,
    phone: &str,
    now: Timestamp,
) -> Result<usize, AppError> {
    store::unsubscribe_phone_by_keyword(conn, phone, Some(scope.id()), &format_timestamp(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> UnsubscribeToken {
        UnsubscribeToken {
            workspace_id: WorkspaceId::parse("wsp_01JD0000000000000000000000").unwrap(),
            mode: Mode::Test,
            contact_id: ContactId::parse("con_01JD0000000000000000000001").unwrap(),
            channel: Channel::Email,
        }
    }

    #[test]
    fn unsigned_and_preview_urls_are_as_long_as_the_signed_one_and_no_token() {
        let key = ServerKey::from_bytes(&[1; 32]);
        let token = token();
        let signed = unsubscribe_url(
            &key,
            "https://crier.example/",
            &token.workspace_id,
            token.mode,
            &token.contact_id,
            token.channel,
        );
        let unsigned = unsubscribe_url_unsigned(
            "https://crier.example/",
            &token.workspace_id,
            token.mode,
            &token.contact_id,
            token.channel,
        );
        assert_eq!(unsigned.len(), signed.len());
        assert_ne!(unsigned, signed);
        let text = unsigned.rsplit('/').next().unwrap();
        assert!(UnsubscribeToken::verify(&key, text).is_none());
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        // A preview's stand-in, for the contact and for the sample: as long, no token either.
        for contact_id in [Some(&token.contact_id), None] {
            let preview = preview_unsubscribe_url(
                "https://crier.example/",
                &token.workspace_id,
                token.mode,
                contact_id,
                token.channel,
            );
            assert_eq!(preview.len(), signed.len(), "{preview}");
            assert!(preview.starts_with("https://crier.example/u/preview-0"));
            let text = preview.rsplit('/').next().unwrap();
            assert!(UnsubscribeToken::verify(&key, text).is_none());
        }
    }

    #[test]
    fn a_token_round_trips_and_is_url_safe() {
        let key = ServerKey::from_bytes(&[1; 32]);
        for (mode, channel) in [
            (Mode::Live, Channel::Sms),
            (Mode::Live, Channel::Email),
            (Mode::Test, Channel::Sms),
            (Mode::Test, Channel::Email),
        ] {
            let token = UnsubscribeToken {
                mode,
                channel,
                ..token()
            };
            let text = token.encode(&key);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert_eq!(UnsubscribeToken::verify(&key, &text), Some(token));
        }
    }

    #[test]
    fn every_altered_byte_and_every_truncation_is_refused() {
        let key = ServerKey::from_bytes(&[1; 32]);
        for text in [token().encode(&key), first_format(&key, &token())] {
            altered_and_truncated_are_refused(&key, &text);
        }
    }

    /// A token as the first releases made it: the ids' text and the whole tag.
    fn first_format(key: &ServerKey, token: &UnsubscribeToken) -> String {
        let mut bytes = vec![VERSION_TEXT, flags(token.mode, token.channel)];
        bytes.extend_from_slice(token.workspace_id.as_str().as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(token.contact_id.as_str().as_bytes());
        let tag = key.sign(&[PURPOSE, &bytes]);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn crier_ids_get_the_short_format_and_the_first_one_is_still_read() {
        let key = ServerKey::from_bytes(&[1; 32]);
        let token = token();
        let short = token.encode(&key);
        assert_eq!(short.len(), 67, "{short}");
        let first = first_format(&key, &token);
        assert_eq!(first.len(), 127, "{first}");
        assert_eq!(UnsubscribeToken::verify(&key, &short), Some(token.clone()));
        assert_eq!(UnsubscribeToken::verify(&key, &first), Some(token.clone()));
        // An id that is no ULID (not one crier makes) keeps the first format.
        let other = UnsubscribeToken {
            contact_id: ContactId::parse("con_imported_42").unwrap(),
            ..token
        };
        let text = other.encode(&key);
        assert_eq!(text, first_format(&key, &other));
        assert_eq!(UnsubscribeToken::verify(&key, &text), Some(other));
        // A short token with the whole tag, or a first-format one cut to 16 bytes of tag: no.
        let mut bytes = URL_SAFE_NO_PAD.decode(&short).unwrap();
        bytes.truncate(bytes.len() - TAG_LEN_SHORT);
        let tag = key.sign(&[PURPOSE, &bytes]);
        bytes.extend_from_slice(&tag);
        assert_eq!(
            UnsubscribeToken::verify(&key, &URL_SAFE_NO_PAD.encode(&bytes)),
            None
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&first).unwrap();
        bytes.truncate(bytes.len() - TAG_LEN_SHORT);
        assert_eq!(
            UnsubscribeToken::verify(&key, &URL_SAFE_NO_PAD.encode(&bytes)),
            None
        );
    }

    fn altered_and_truncated_are_refused(key: &ServerKey, text: &str) {
        let bytes = URL_SAFE_NO_PAD.decode(text).unwrap();
        for index in 0..bytes.len() {
            for flip in [1u8, 0x80] {
                let mut altered = bytes.clone();
                altered[index] ^= flip;
                let altered = URL_SAFE_NO_PAD.encode(altered);
                assert_eq!(
                    UnsubscribeToken::verify(key, &altered),
                    None,
                    "byte {index}"
                );
            }
        }
        for length in 0..text.len() {
            assert_eq!(UnsubscribeToken::verify(key, &text[..length]), None);
        }
        assert_eq!(UnsubscribeToken::verify(key, &format!("{text}A")), None);
        assert_eq!(UnsubscribeToken::verify(key, "not a token!"), None);
        assert_eq!(UnsubscribeToken::verify(key, &"A".repeat(5000)), None);
    }

    #[test]
    fn another_key_is_refused() {
        let text = token().encode(&ServerKey::from_bytes(&[1; 32]));
        let other = ServerKey::from_bytes(&[2; 32]);
        assert_eq!(UnsubscribeToken::verify(&other, &text), None);
    }

    #[test]
    fn stop_keywords_ignore_case_accents_spaces_and_punctuation() {
        for text in [
            "STOP",
            "stop",
            " Stop. ",
            "ARRET",
            "arrêt",
            "Arrêt !",
            "ARRÊT",
            "stopall",
            "Unsubscribe",
            "désabonner",
            "DESABONNER",
            "\n«stop»\n",
        ] {
            assert!(is_stop_keyword(text), "{text:?}");
        }
        for text in ["", "!!", "stop it", "please stop", "stopp", "top", "arrete"] {
            assert!(!is_stop_keyword(text), "{text:?}");
        }
    }
}
