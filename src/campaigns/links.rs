//! Link tracking (docs/rules/campaigns.md, "Link tracking"): a campaign with `track_links` has
//! the http(s) URLs of its content rewritten to short links crier serves itself,
//! `PUBLIC_URL/l/{code}`, which answer a 302 to the target and record the click.
//!
//! Nothing is stored per message or per link sent: the launch stores the campaign's distinct
//! target URLs once (`campaign_links`), and a recipient's code is *derived* from the link's id
//! and the recipient contact's rowid, with a 32-bit tag (HMAC-SHA256 under the server key the
//! unsubscribe tokens use, for another purpose) over those numbers and the contact's id. The
//! click handler decodes the numbers, finds the link and the contact, and checks the tag: a
//! forged, altered or unknown code is refused without a lookup table.
//!
//! Which URLs: those the templates' literal text holds — found in the SMS text and the email's
//! text part by `find_urls`, and in the email HTML's `href` attributes by `find_hrefs`. A URL
//! with a template expression in it (`https://x.com/{{ contact.id }}`) differs per recipient:
//! it is left untracked, like crier's own `/u/` and `/l/` links (`{{ unsubscribe_url }}`, the
//! opt-out line). The rendered content is rewritten where it holds exactly one of the URLs the
//! templates hold, before the SMS opt-out line is added and its segments counted.

use std::collections::HashMap;
use std::ops::Range;

use rusqlite::Connection;

use crate::campaigns::launch::Links;
use crate::campaigns::store::{self, CampaignRow};
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::html;
use crate::ids::{CampaignId, ContactId, WorkspaceId};
use crate::secrets::{ServerKey, constant_time_eq};
use crate::vocabulary::Mode;

/// What the tag signs first, so the key's other uses (unsubscribe tokens) never pass for codes.
const PURPOSE: &[u8] = b"crier link code";
/// The tag's bits: forging one click takes about 2^31 requests, each a round trip to crier.
const TAG_BITS: u32 = 32;
/// The header: how many bits the link id takes (1–63), so the rowid's length needs none.
const HEADER_BITS: u32 = 6;
/// The longest code `u128` can spell in base62; anything longer is refused before decoding.
const MAX_CODE_LEN: usize = 22;
/// The path of the short links, after `PUBLIC_URL`.
const PATH: &str = "/l/";

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a short code names: a stored link and the contact its message went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub link_id: i64,
    pub contact_rowid: i64,
    tag: u32,
}

fn bits(n: u64) -> u32 {
    u64::BITS - n.leading_zeros()
}

/// The number a code spells: `rowid ‖ link_id ‖ bits(link_id) ‖ tag`, the rowid on top so its
/// length needs no header. `None` for a number that is not positive, or numbers too long.
fn pack(link_id: i64, rowid: i64, tag: u32) -> Option<u128> {
    let link = u64::try_from(link_id).ok().filter(|&n| n > 0)?;
    let rowid = u64::try_from(rowid).ok().filter(|&n| n > 0)?;
    let link_bits = bits(link);
    if bits(rowid) + link_bits + HEADER_BITS + TAG_BITS > u128::BITS {
        return None;
    }
    let head = ((u128::from(rowid) << link_bits) | u128::from(link)) << HEADER_BITS;
    Some(((head | u128::from(link_bits)) << TAG_BITS) | u128::from(tag))
}

/// base62 of `n`, no leading zero. Ten digits at a time in `u64` arithmetic: one `u128`
/// division per ten digits instead of one per digit (the fan-out encodes a code per message).
fn base62(mut n: u128) -> String {
    const TEN_DIGITS: u64 = 62u64.pow(10);
    let mut digits = Vec::with_capacity(MAX_CODE_LEN);
    while n >= u128::from(TEN_DIGITS) {
        let mut low = (n % u128::from(TEN_DIGITS)) as u64;
        n /= u128::from(TEN_DIGITS);
        for _ in 0..10 {
            digits.push(BASE62[(low % 62) as usize]);
            low /= 62;
        }
    }
    let mut high = n as u64;
    while high > 0 {
        digits.push(BASE62[(high % 62) as usize]);
        high /= 62;
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

fn digit(byte: u8) -> Option<u128> {
    let value = match byte {
        b'0'..=b'9' => byte - b'0',
        b'A'..=b'Z' => byte - b'A' + 10,
        b'a'..=b'z' => byte - b'a' + 36,
        _ => return None,
    };
    Some(u128::from(value))
}

/// The tag of the link `link_id` for the contact at `rowid` whose id is `contact_id`: signing
/// the id too means a code never names another contact, whatever happens to rowids.
fn tag(key: &ServerKey, link_id: i64, rowid: i64, contact_id: &ContactId) -> u32 {
    let mac = key.sign(&[
        PURPOSE,
        &link_id.to_be_bytes(),
        &rowid.to_be_bytes(),
        contact_id.as_str().as_bytes(),
    ]);
    u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]])
}

impl Code {
    /// The code of link `link_id` for the contact at `rowid`; `None` when the numbers are
    /// beyond what a code holds (2^90 together), and the link is then left as written.
    pub fn new(key: &ServerKey, link_id: i64, rowid: i64, contact_id: &ContactId) -> Option<Code> {
        pack(link_id, rowid, 0)?;
        Some(Code {
            link_id,
            contact_rowid: rowid,
            tag: tag(key, link_id, rowid, contact_id),
        })
    }

    /// The code text: base62, no leading zero. 12 characters while link ids stay below 8,192
    /// and contact rowids below 1,048,576 (71 bits); six more bits of either add a character.
    pub fn encode(&self) -> String {
        pack(self.link_id, self.contact_rowid, self.tag).map_or_else(String::new, base62)
    }

    /// The longest code the link and rowid can have, whatever the tag: what an estimate
    /// counts before the launch has signed anything.
    pub fn longest(link_id: i64, rowid: i64) -> Option<String> {
        pack(link_id, rowid, u32::MAX).map(base62)
    }

    /// The numbers `text` spells if it is a code's canonical text; the tag is checked by
    /// `verifies`, once the contact is known.
    pub fn decode(text: &str) -> Option<Code> {
        if text.is_empty() || text.len() > MAX_CODE_LEN || text.starts_with('0') {
            return None;
        }
        let mut n: u128 = 0;
        for byte in text.bytes() {
            n = n.checked_mul(62)?.checked_add(digit(byte)?)?;
        }
        let tag = u32::try_from(n & u128::from(u32::MAX)).ok()?;
        let rest = n >> TAG_BITS;
        let link_bits = u32::try_from(rest & ((1 << HEADER_BITS) - 1)).ok()?;
        if link_bits == 0 {
            return None;
        }
        let rest = rest >> HEADER_BITS;
        let link = rest & ((1u128 << link_bits) - 1);
        // The header names the link id's exact length: one spelling per code.
        if link >> (link_bits - 1) != 1 {
            return None;
        }
        let code = Code {
            link_id: i64::try_from(link).ok()?,
            contact_rowid: i64::try_from(rest >> link_bits).ok()?,
            tag,
        };
        (code.encode() == text).then_some(code)
    }

    /// Whether the tag is the key's for this link and `contact_id` (the contact at the rowid).
    pub fn verifies(&self, key: &ServerKey, contact_id: &ContactId) -> bool {
        let expected = tag(key, self.link_id, self.contact_rowid, contact_id);
        constant_time_eq(&expected.to_be_bytes(), &self.tag.to_be_bytes())
    }
}

/// Where each http(s) URL of plain text is, in order. A URL starts with `http://` or
/// `https://` (any case) not glued to a word before it, ends at whitespace or one of `"'<>`,
/// and drops trailing `.,;:!?` and any `)` it did not open — "(see https://x.com/a)." gives
/// `https://x.com/a`, while `https://x.com/a_(b)` keeps its parenthesis.
pub fn find_urls(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    // From one `h` or `H` to the next: an ASCII byte is never inside another character.
    while let Some(offset) = bytes[at..].iter().position(|&b| b | 0x20 == b'h') {
        at += offset;
        let rest = &text[at..];
        let scheme = if starts_with_ignoring_case(rest, "https://") {
            8
        } else if starts_with_ignoring_case(rest, "http://") {
            7
        } else {
            at += 1;
            continue;
        };
        if text[..at]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
        {
            at += scheme;
            continue;
        }
        let body = &text[at + scheme..];
        let length = body
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(body.len());
        let mut url = &text[at..at + scheme + length];
        loop {
            if let Some(shorter) = url.strip_suffix(['.', ',', ';', ':', '!', '?']) {
                url = shorter;
            } else if url.ends_with(')') && url.matches(')').count() > url.matches('(').count() {
                url = &url[..url.len() - 1];
            } else {
                break;
            }
        }
        if url.len() > scheme {
            found.push(at..at + url.len());
        }
        at += scheme + length;
    }
    found
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn is_web_url(text: &str) -> bool {
    starts_with_ignoring_case(text, "https://") || starts_with_ignoring_case(text, "http://")
}

/// Where the value of each `href` attribute of an HTML document is (quoted, single-quoted or
/// bare; surrounding spaces left out) when it is an http(s) URL, in order. Comments are
/// skipped; an attribute is a name inside a start tag, so `data-href` and text saying
/// `href="…"` are not one.
pub fn find_hrefs(html: &str) -> Vec<Range<usize>> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    let skip_spaces = |mut at: usize| {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        at
    };
    while at < bytes.len() {
        if bytes[at] != b'<' {
            at += 1;
            continue;
        }
        if html[at..].starts_with("<!--") {
            at = html[at + 4..]
                .find("-->")
                .map_or(bytes.len(), |end| at + 4 + end + 3);
            continue;
        }
        if !bytes.get(at + 1).is_some_and(u8::is_ascii_alphabetic) {
            at += 1;
            continue;
        }
        // The tag's name, then its attributes up to `>`.
        at += 1;
        while at < bytes.len()
            && !matches!(bytes[at], b'>' | b'/')
            && !bytes[at].is_ascii_whitespace()
        {
            at += 1;
        }
        loop {
            at = skip_spaces(at);
            match bytes.get(at) {
                None => break,
                Some(b'>') => {
                    at += 1;
                    break;
                }
                Some(b'/' | b'=') => {
                    at += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name_start = at;
            while at < bytes.len()
                && !matches!(bytes[at], b'>' | b'/' | b'=')
                && !bytes[at].is_ascii_whitespace()
            {
                at += 1;
            }
            let name = &html[name_start..at];
            let after_name = skip_spaces(at);
            if bytes.get(after_name) != Some(&b'=') {
                continue;
            }
            at = skip_spaces(after_name + 1);
            let value = match bytes.get(at) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let start = at + 1;
                    let end = html[start..]
                        .find(char::from(quote))
                        .map_or(bytes.len(), |end| start + end);
                    at = (end + 1).min(bytes.len());
                    start..end
                }
                _ => {
                    let start = at;
                    while at < bytes.len() && bytes[at] != b'>' && !bytes[at].is_ascii_whitespace()
                    {
                        at += 1;
                    }
                    start..at
                }
            };
            if name.eq_ignore_ascii_case("href") {
                let raw = &html[value.clone()];
                let start = value.start + (raw.len() - raw.trim_start().len());
                let end = value.end - (raw.len() - raw.trim_end().len());
                if start < end && is_web_url(&html[start..end]) {
                    found.push(start..end);
                }
            }
        }
    }
    found
}

/// An attribute value's text: `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric
/// references decoded (`&amp;` is how `&` is written in an `href`); anything else kept.
pub fn decode_entities(raw: &str) -> String {
    let mut text = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name.strip_prefix('#').and_then(|number| {
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => number.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                text.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                text.push('&');
                rest = &rest[1..];
            }
        }
    }
    text.push_str(rest);
    text
}

/// A URL as a `Location` header can carry it: every byte outside visible ASCII
/// percent-encoded (a URL of the content may hold accented letters).
pub fn location(url: &str) -> String {
    let mut encoded = String::with_capacity(url.len());
    for byte in url.bytes() {
        if (0x21..0x7f).contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Which part of the content a URL was found in: plain text, or an HTML `href`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Text,
    Html,
}

/// A URL the templates hold: as written (`raw`, what the rendered content holds too) and the
/// target a click goes to (an `href`'s entities decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    part: Part,
    raw: String,
    target: String,
}

/// The trackable URLs of the campaign's templates, in order: the text part's, then the
/// HTML's `href`s. A URL holding a template expression, and crier's own links, are not.
fn found_links(campaign: &CampaignRow, public_url: &str) -> Vec<Found> {
    let base = public_url.trim_end_matches('/');
    let own = [format!("{base}/u/"), format!("{base}{PATH}")];
    let trackable = |raw: &str, target: &str| {
        !["{{", "{%", "{#"].iter().any(|mark| raw.contains(mark))
            && !own.iter().any(|prefix| target.starts_with(prefix.as_str()))
    };
    let mut found = Vec::new();
    if let Some(text) = &campaign.text {
        for range in find_urls(text) {
            let raw = &text[range];
            if trackable(raw, raw) {
                found.push(Found {
                    part: Part::Text,
                    raw: raw.to_owned(),
                    target: raw.to_owned(),
                });
            }
        }
    }
    if let Some(html) = &campaign.html {
        for range in find_hrefs(html) {
            let raw = &html[range];
            let target = decode_entities(raw);
            if trackable(raw, &target) && is_web_url(&target) {
                found.push(Found {
                    part: Part::Html,
                    raw: raw.to_owned(),
                    target,
                });
            }
        }
    }
    found
}

/// The campaign's distinct targets in order of first appearance: what its launch stores.
pub fn targets(campaign: &CampaignRow, public_url: &str) -> Vec<String> {
    if !campaign.track_links {
        return Vec::new();
    }
    let mut targets: Vec<String> = Vec::new();
    for found in found_links(campaign, public_url) {
        if !targets.contains(&found.target) {
            targets.push(found.target);
        }
    }
    targets
}

/// The recipient a message is rendered for: the contact's rowid and id (what its codes name).
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub rowid: i64,
    pub contact_id: &'a ContactId,
}

/// Rewrites a campaign's rendered content, recipient after recipient.
#[derive(Clone)]
pub struct Tracker {
    /// `None` for an estimate: each code as long as the longest it can be, signed by nothing.
    key: Option<ServerKey>,
    /// `PUBLIC_URL/l/`.
    prefix: String,
    /// A URL as written in a text part → its link's id.
    text: HashMap<String, i64>,
    /// An `href` value as written → its link's id.
    html: HashMap<String, i64>,
}

impl Tracker {
    fn new(
        campaign: &CampaignRow,
        links: Links<'_>,
        ids: &HashMap<String, i64>,
        key: Option<ServerKey>,
    ) -> Tracker {
        let mut tracker = Tracker {
            key,
            prefix: format!("{}{PATH}", links.public_url.trim_end_matches('/')),
            text: HashMap::new(),
            html: HashMap::new(),
        };
        for found in found_links(campaign, links.public_url) {
            if let Some(&id) = ids.get(&found.target) {
                match found.part {
                    Part::Text => tracker.text.insert(found.raw, id),
                    Part::Html => tracker.html.insert(found.raw, id),
                };
            }
        }
        tracker
    }

    /// The short link of link `id` for `recipient`.
    fn short_link(&self, id: i64, recipient: Recipient<'_>) -> Option<String> {
        let code = match &self.key {
            Some(key) => Code::new(key, id, recipient.rowid, recipient.contact_id)?.encode(),
            None => Code::longest(id, recipient.rowid)?,
        };
        Some(format!("{}{code}", self.prefix))
    }

    fn rewrite(
        &self,
        content: &str,
        ranges: Vec<Range<usize>>,
        links: &HashMap<String, i64>,
        recipient: Recipient<'_>,
        html: bool,
    ) -> String {
        let mut rewritten = String::with_capacity(content.len());
        let mut done = 0;
        for range in ranges {
            let Some(&id) = links.get(&content[range.clone()]) else {
                continue;
            };
            let Some(link) = self.short_link(id, recipient) else {
                continue;
            };
            rewritten.push_str(&content[done..range.start]);
            if html {
                rewritten.push_str(&html::escape(&link));
            } else {
                rewritten.push_str(&link);
            }
            done = range.end;
        }
        rewritten.push_str(&content[done..]);
        rewritten
    }

    /// A text part (SMS text, an email's text part) with its tracked URLs rewritten.
    pub fn rewrite_text(&self, text: &str, recipient: Recipient<'_>) -> String {
        if self.text.is_empty() {
            return text.to_owned();
        }
        self.rewrite(text, find_urls(text), &self.text, recipient, false)
    }

    /// An HTML part with its tracked `href`s rewritten (the short link attribute-escaped).
    pub fn rewrite_html(&self, html: &str, recipient: Recipient<'_>) -> String {
        if self.html.is_empty() {
            return html.to_owned();
        }
        self.rewrite(html, find_hrefs(html), &self.html, recipient, true)
    }
}

/// The fan-out's tracker of a launched campaign: its stored links, codes signed. `None` when
/// the campaign does not track links.
pub fn tracker(
    conn: &Connection,
    campaign: &CampaignRow,
    links: Links<'_>,
) -> Result<Option<Tracker>, AppError> {
    if !campaign.track_links {
        return Ok(None);
    }
    let ids = store::campaign_links(conn, &campaign.id)?
        .into_iter()
        .map(|(id, url)| (url, id))
        .collect();
    Ok(Some(Tracker::new(
        campaign,
        links,
        &ids,
        Some(links.key.clone()),
    )))
}

/// What an estimate rewrites with before the launch has stored the links: the ids the launch
/// will give them (the next ones), each code as long as its tag can make it. Another launch in
/// between takes those ids and the real ones are larger; a code then longer than counted is
/// paid by the fan-out as for any contact that changed since the launch.
pub fn estimating_tracker(
    conn: &Connection,
    campaign: &CampaignRow,
    links: Links<'_>,
) -> Result<(Option<Tracker>, Vec<String>), AppError> {
    let targets = targets(campaign, links.public_url);
    if targets.is_empty() {
        return Ok((None, targets));
    }
    let next = store::last_link_id(conn)? + 1;
    let ids = (next..)
        .zip(&targets)
        .map(|(id, url)| (url.clone(), id))
        .collect();
    Ok((Some(Tracker::new(campaign, links, &ids, None)), targets))
}

/// Stores a launching campaign's links (inside the launch's transaction), once.
pub fn store_links(
    conn: &Connection,
    campaign_id: &CampaignId,
    targets: &[String],
) -> Result<(), AppError> {
    for (position, url) in targets.iter().enumerate() {
        store::insert_link(conn, campaign_id, position, url)?;
    }
    Ok(())
}

/// A verified click: the link's target, its campaign and the contact who clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub campaign_id: CampaignId,
    pub link_id: i64,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub contact_id: ContactId,
    pub url: String,
}

/// The click a code stands for, if it is one of crier's: its link exists and its tag is the
/// key's for the contact at its rowid, in the link's workspace and mode. `None` for anything
/// else. Reads only.
pub fn resolve(conn: &Connection, key: &ServerKey, code: &str) -> Result<Option<Click>, AppError> {
    let Some(code) = Code::decode(code) else {
        return Ok(None);
    };
    let Some(link) = store::find_link(conn, code.link_id)? else {
        return Ok(None);
    };
    let Some((contact_id, workspace_id, mode)) =
        crate::contacts::contact_at_rowid(conn, code.contact_rowid)?
    else {
        return Ok(None);
    };
    if workspace_id != link.workspace_id || mode != link.mode || !code.verifies(key, &contact_id) {
        return Ok(None);
    }
    Ok(Some(Click {
        campaign_id: link.campaign_id,
        link_id: code.link_id,
        workspace_id,
        mode,
        contact_id,
        url: link.url,
    }))
}

/// Records a click (one row; uniqueness is counted, never enforced).
pub fn record_click(conn: &Connection, click: &Click, now: Timestamp) -> Result<(), AppError> {
    store::insert_click(conn, click, &format_timestamp(now))
}

/// A campaign's clicks and the contacts who clicked (its unique clicks).
pub fn click_counts(conn: &Connection, campaign_id: &CampaignId) -> Result<(u64, u64), AppError> {
    store::click_counts(conn, campaign_id)
}

/// A campaign's clicks per minute (`hourly`: per hour), oldest first: the period as the first
/// characters of an RFC 3339 timestamp, and its clicks.
pub fn click_timeline(
    conn: &Connection,
    campaign_id: &CampaignId,
    hourly: bool,
) -> Result<Vec<(String, u64)>, AppError> {
    store::click_timeline(conn, campaign_id, if hourly { 13 } else { 16 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> ContactId {
        ContactId::parse("con_01JD0000000000000000000001").unwrap()
    }

    fn urls(text: &str) -> Vec<&str> {
        find_urls(text).into_iter().map(|r| &text[r]).collect()
    }

    fn hrefs(html: &str) -> Vec<&str> {
        find_hrefs(html).into_iter().map(|r| &html[r]).collect()
    }

    #[test]
    fn urls_end_at_spaces_quotes_and_brackets_and_drop_trailing_punctuation() {
        assert_eq!(
            urls("Go to https://x.com/a?b=1&c=2. Or http://y.org/p, now!"),
            ["https://x.com/a?b=1&c=2", "http://y.org/p"]
        );
        assert_eq!(urls("(see https://x.com/a)."), ["https://x.com/a"]);
        assert_eq!(
            urls("https://en.wikipedia.org/wiki/Foo_(bar)?!"),
            ["https://en.wikipedia.org/wiki/Foo_(bar)"]
        );
        assert_eq!(urls("<https://x.com/a>"), ["https://x.com/a"]);
        assert_eq!(urls("\"https://x.com/q\"'"), ["https://x.com/q"]);
        assert_eq!(urls("HTTPS://X.COM/Up\u{a0}next"), ["HTTPS://X.COM/Up"]);
        assert_eq!(urls("line\nhttps://a.b/c\nnext"), ["https://a.b/c"]);
        assert_eq!(urls("é https://a.b/été ok"), ["https://a.b/été"]);
        assert_eq!(
            urls("https://x.com/{{ contact.id }}"),
            ["https://x.com/{{"],
            "a template expression stays in the URL found, so it is recognised"
        );
    }

    #[test]
    fn text_that_is_not_a_url_is_not_found() {
        assert!(urls("").is_empty());
        assert!(urls("no links here, only www.x.com and ftp://x.com").is_empty());
        assert!(urls("https:// alone, http://. too").is_empty());
        assert!(urls("xhttps://glued.com").is_empty());
        assert!(urls("mailto:a@b.c").is_empty());
    }

    #[test]
    fn hrefs_are_attribute_values_of_start_tags() {
        let html = r#"<p>Read href="https://no.com" <a class=x HREF = "https://x.com/a?b=1&amp;c=2" >here</a>
            <a href='https://y.com/s' data-href="https://no2.com">y</a> <a href=https://z.com/b>z</a>
            <!-- <a href="https://comment.com"> --> <a href="  https://t.com/ ">t</a>
            <a href="mailto:a@b.c">m</a> <a href="/relative">r</a> <a href="{{ url }}">v</a>"#;
        assert_eq!(
            hrefs(html),
            [
                "https://x.com/a?b=1&amp;c=2",
                "https://y.com/s",
                "https://z.com/b",
                "https://t.com/",
            ]
        );
        assert!(hrefs("<a href=").is_empty());
        assert!(hrefs("<a href=\"https://unclosed.com").len() == 1);
        assert!(hrefs("< a href=\"https://x.com\">").is_empty());
    }

    #[test]
    fn entities_decode_in_attribute_values() {
        assert_eq!(decode_entities("a?b=1&amp;c=2"), "a?b=1&c=2");
        assert_eq!(
            decode_entities("&lt;&gt;&quot;&apos;&#39;&#x41;"),
            "<>\"''A"
        );
        assert_eq!(decode_entities("a&b=1&c"), "a&b=1&c");
        assert_eq!(decode_entities("&nbsp;&#xZZ;"), "&nbsp;&#xZZ;");
        // What an href is written with reads back as the link.
        let link = "https://x.io/?a=1&b=\"<'>";
        assert_eq!(decode_entities(&crate::html::escape(link)), link);
    }

    #[test]
    fn a_code_round_trips_and_is_short() {
        let key = ServerKey::from_bytes(&[3; 32]);
        for (link, rowid) in [(1, 1), (57, 1_000), (8_191, 1_048_575), (9_999, 40_000_000)] {
            let code = Code::new(&key, link, rowid, &contact()).unwrap();
            let text = code.encode();
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()), "{text}");
            let decoded = Code::decode(&text).unwrap();
            assert_eq!(decoded, code);
            assert_eq!((decoded.link_id, decoded.contact_rowid), (link, rowid));
            assert!(decoded.verifies(&key, &contact()));
            let longest = Code::longest(link, rowid).unwrap();
            assert!(longest.len() >= text.len(), "{longest} vs {text}");
        }
        // The promise of the docs: 12 characters up to 8,191 links and 1,048,575 contacts.
        assert_eq!(Code::longest(8_191, 1_048_575).unwrap().len(), 12);
        assert!(Code::longest(1, 1).unwrap().len() <= 8);
        assert_eq!(Code::new(&key, 0, 1, &contact()), None);
        assert_eq!(Code::new(&key, 1, -1, &contact()), None);
        assert!(Code::new(&key, 1 << 62, 1 << 62, &contact()).is_none());
    }

    #[test]
    fn every_altered_character_and_other_keys_and_contacts_are_refused() {
        let key = ServerKey::from_bytes(&[3; 32]);
        let text = Code::new(&key, 42, 123_456, &contact()).unwrap().encode();
        for index in 0..text.len() {
            for replacement in BASE62.iter().map(|&b| char::from(b)) {
                let mut altered = text.clone();
                altered.replace_range(index..=index, &replacement.to_string());
                if altered == text {
                    continue;
                }
                let accepted =
                    Code::decode(&altered).is_some_and(|code| code.verifies(&key, &contact()));
                assert!(!accepted, "{altered}");
            }
        }
        for length in 0..text.len() {
            assert!(
                Code::decode(&text[..length]).is_none_or(|code| !code.verifies(&key, &contact()))
            );
        }
        assert_eq!(Code::decode(&format!("0{text}")), None);
        assert_eq!(Code::decode("not-a-code"), None);
        assert_eq!(Code::decode(&"z".repeat(40)), None);
        let code = Code::decode(&text).unwrap();
        assert!(!code.verifies(&ServerKey::from_bytes(&[4; 32]), &contact()));
        let other = ContactId::parse("con_01JD0000000000000000000002").unwrap();
        assert!(!code.verifies(&key, &other));
    }

    fn campaign(text: &str, html: Option<&str>) -> CampaignRow {
        CampaignRow {
            id: CampaignId::parse("cmp_01JD0000000000000000000000").unwrap(),
            workspace_id: WorkspaceId::parse("wsp_01JD0000000000000000000000").unwrap(),
            mode: Mode::Live,
            name: "Sale".to_owned(),
            channel: if html.is_some() {
                crate::billing::Channel::Email
            } else {
                crate::billing::Channel::Sms
            },
            status: crate::campaigns::CampaignStatus::Draft,
            text: Some(text.to_owned()),
            subject: html.map(|_| "Sale".to_owned()),
            html: html.map(str::to_owned),
            from_name: None,
            audience: "{\"all\":true}".to_owned(),
            scheduled_at: None,
            opt_out_line: false,
            track_links: true,
            duplicated_from: None,
            created_at: String::new(),
            updated_at: String::new(),
            progress: store::Progress::default(),
        }
    }

    #[test]
    fn the_targets_are_the_literal_urls_once_in_order_without_crier_links_or_expressions() {
        let text = "A https://b.com/x then https://a.com/{{ contact.name }} and \
                    https://crier.test/u/TOKEN https://crier.test/l/abc https://b.com/x again, \
                    {{ unsubscribe_url }} https://c.com/?a=1&b=2.";
        let html = r#"<a href="https://c.com/?a=1&amp;b=2">c</a> <a href="https://d.com/">d</a>
                      <a href="https://e.com/{{ contact.email }}">e</a>"#;
        let targets = targets(&campaign(text, Some(html)), "https://crier.test/");
        assert_eq!(
            targets,
            [
                "https://b.com/x",
                "https://c.com/?a=1&b=2",
                "https://d.com/"
            ]
        );
        let untracked = CampaignRow {
            track_links: false,
            ..campaign(text, None)
        };
        assert!(super::targets(&untracked, "https://crier.test").is_empty());
    }

    #[test]
    fn a_tracker_rewrites_each_recipients_links_and_nothing_else() {
        let key = ServerKey::from_bytes(&[5; 32]);
        let text = "Go https://b.com/x, not https://other.com/y. STOP: https://crier.test/u/T";
        let row = campaign(text, Some(r#"<a href="https://b.com/x">b</a>"#));
        let ids = HashMap::from([("https://b.com/x".to_owned(), 7)]);
        let links = Links {
            key: &key,
            public_url: "https://crier.test/",
            delivery: &crate::delivery::settings::DeliverySettings::default(),
        };
        let tracker = Tracker::new(&row, links, &ids, Some(key.clone()));
        let recipient = Recipient {
            rowid: 42,
            contact_id: &contact(),
        };
        let code = Code::new(&key, 7, 42, &contact()).unwrap().encode();
        assert_eq!(
            tracker.rewrite_text(text, recipient),
            format!(
                "Go https://crier.test/l/{code}, not https://other.com/y. STOP: https://crier.test/u/T"
            )
        );
        assert_eq!(
            tracker.rewrite_html(r#"<a href="https://b.com/x">b</a>"#, recipient),
            format!(r#"<a href="https://crier.test/l/{code}">b</a>"#)
        );
        // The estimate's tracker writes codes at least as long, signed by nothing.
        let estimating = Tracker::new(&row, links, &ids, None);
        let counted = estimating.rewrite_text(text, recipient);
        assert!(counted.len() >= tracker.rewrite_text(text, recipient).len());
        assert!(!counted.contains(&code));
    }

    #[test]
    fn locations_carry_only_visible_ascii() {
        assert_eq!(location("https://x.com/a?b=1&c"), "https://x.com/a?b=1&c");
        assert_eq!(
            location("https://x.com/été x"),
            "https://x.com/%C3%A9t%C3%A9%20x"
        );
    }
}
