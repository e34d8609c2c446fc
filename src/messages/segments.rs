//! SMS encoding and segment counting (3GPP TS 23.038 / GSM 03.38), the unit SMS are priced in.
//!
//! A message is GSM-7 when every character is in the basic table or its extension table
//! (extension characters cost two septets: ESC plus the character); one character outside both
//! turns the whole message into UCS-2, where each UTF-16 code unit counts (characters outside the
//! BMP, most emoji, count two). One segment carries 160 septets or 70 units; a message that does
//! not fit is split into parts of 153 septets or 67 units (the rest holds the concatenation
//! header). Packing is done character by character, so an escape pair or a surrogate pair is never
//! split across parts — the last slot of a part may stay empty, which is why `ceil(len / 153)`
//! is only an approximation. Pure: no I/O.

/// Most segments one SMS may have; longer texts are refused by the send API.
pub const MAX_SEGMENTS: u32 = 10;

/// The encoding a message is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        }
    }

    /// Capacity of a message that fits in one segment, and of each part of a longer one.
    fn capacities(self) -> (u32, u32) {
        match self {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        }
    }
}

/// How a text goes out as SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub encoding: Encoding,
    /// Segments (billable units); 0 for an empty text.
    pub segments: u32,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) of the whole text.
    pub length: u32,
    /// The distinct characters, in order of first appearance, that forced UCS-2 (empty for
    /// GSM-7), so a user can replace them.
    pub non_gsm_characters: Vec<char>,
}

/// GSM 03.38 basic table (as Unicode). 0x09 is the c-cedilla: both cases map to it.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// GSM 03.38 extension table, reached with ESC: each costs two septets.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets of each ASCII character in GSM-7 (0: none), from the two tables above: most text
/// is ASCII, and a table lookup is what keeps segmenting cheap enough to do for every
/// recipient of a campaign.
const ASCII_COST: [u8; 128] = {
    let mut table = [0_u8; 128];
    let (basic, extension) = (GSM7_BASIC.as_bytes(), GSM7_EXTENSION.as_bytes());
    let mut i = 0;
    while i < basic.len() {
        if basic[i] < 128 {
            table[basic[i] as usize] = 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < extension.len() {
        if extension[i] < 128 {
            table[extension[i] as usize] = 2;
        }
        i += 1;
    }
    table
};

/// Septets of `c` in GSM-7, or `None` when it has no GSM-7 form.
fn gsm7_cost(c: char) -> Option<u32> {
    if c.is_ascii() {
        return match ASCII_COST[c as usize] {
            0 => None,
            cost => Some(u32::from(cost)),
        };
    }
    if c == 'ç' || GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Encoding, length and segments of `text`. One pass measures the text in both encodings; a
/// second walks it part by part only when a two-unit character could straddle a part's end
/// (campaigns segment every recipient's message, so this is on their fan-out's path).
pub fn segment(text: &str) -> Segmentation {
    let mut non_gsm_characters: Vec<char> = Vec::new();
    let (mut septets, mut utf16_units) = (0_u32, 0_u32);
    // Whether any character takes two units in an encoding (an escaped GSM-7 character, a
    // UCS-2 surrogate pair).
    let (mut escaped, mut surrogates) = (false, false);
    for c in text.chars() {
        match gsm7_cost(c) {
            Some(cost) => {
                septets += cost;
                escaped |= cost == 2;
            }
            None if non_gsm_characters.contains(&c) => {}
            None => non_gsm_characters.push(c),
        }
        let units = c.len_utf16() as u32;
        utf16_units += units;
        surrogates |= units == 2;
    }
    let (encoding, length, uneven) = if non_gsm_characters.is_empty() {
        (Encoding::Gsm7, septets, escaped)
    } else {
        (Encoding::Ucs2, utf16_units, surrogates)
    };
    let (single, part) = encoding.capacities();
    let segments = if length == 0 {
        0
    } else if length <= single {
        1
    } else if !uneven {
        length.div_ceil(part)
    } else {
        // Whole characters per part: a two-unit character that does not fit starts the next.
        let cost = |c: char| -> u32 {
            match encoding {
                Encoding::Gsm7 => gsm7_cost(c).unwrap_or(1),
                Encoding::Ucs2 => c.len_utf16() as u32,
            }
        };
        let mut parts = 1;
        let mut used = 0;
        for c in text.chars() {
            let c_cost = cost(c);
            if used + c_cost > part {
                parts += 1;
                used = 0;
            }
            used += c_cost;
        }
        parts
    };
    Segmentation {
        encoding,
        segments,
        length,
        non_gsm_characters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, encoding: Encoding, length: u32, segments: u32) {
        let got = segment(text);
        assert_eq!(
            (got.encoding, got.length, got.segments),
            (encoding, length, segments),
            "{} chars: {:?}…",
            text.chars().count(),
            text.chars().take(12).collect::<String>()
        );
    }

    #[test]
    fn the_ascii_table_agrees_with_the_gsm_tables() {
        for byte in 0_u8..128 {
            let c = char::from(byte);
            let expected = if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm7_cost(c), expected, "{c:?}");
        }
        assert_eq!(gsm7_cost('`'), None);
        assert_eq!(gsm7_cost('{'), Some(2));
        assert_eq!(gsm7_cost('\n'), Some(1));
    }

    #[test]
    fn gsm7_boundaries() {
        check("", Encoding::Gsm7, 0, 0);
        check("Hello", Encoding::Gsm7, 5, 1);
        check(&"a".repeat(160), Encoding::Gsm7, 160, 1);
        check(&"a".repeat(161), Encoding::Gsm7, 161, 2);
        check(&"a".repeat(306), Encoding::Gsm7, 306, 2);
        check(&"a".repeat(307), Encoding::Gsm7, 307, 3);
        check(&"a".repeat(1530), Encoding::Gsm7, 1530, 10);
        check(&"a".repeat(1531), Encoding::Gsm7, 1531, 11);
    }

    #[test]
    fn extension_characters_count_two_and_are_never_split() {
        check("€", Encoding::Gsm7, 2, 1);
        check(&"{}".repeat(80), Encoding::Gsm7, 320, 3);
        // 80 × '€' = 160 septets: still one segment.
        check(&"€".repeat(80), Encoding::Gsm7, 160, 1);
        // 152 + 2 + 10 = 164 septets. The escape pair does not fit in part one (152 + 2 > 153), so
        // it opens part two whole.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        check(&text, Encoding::Gsm7, 164, 2);
        // 153 + 153 exactly, then one escape pair more: three parts.
        let text = format!("{}€", "a".repeat(305));
        check(&text, Encoding::Gsm7, 307, 3);
    }

    #[test]
    fn the_whole_basic_table_is_gsm7() {
        let got = segment(GSM7_BASIC);
        assert_eq!(got.encoding, Encoding::Gsm7);
        assert_eq!(GSM7_BASIC.chars().count(), 127, "128 codes less ESC");
        assert_eq!(segment("ç").encoding, Encoding::Gsm7);
        assert_eq!(segment("\u{c}^{}\\[~]|€").length, 20);
    }

    #[test]
    fn one_character_outside_gsm7_turns_the_message_into_ucs2() {
        let got = segment("Don’t say “hello” — ok?");
        assert_eq!(got.encoding, Encoding::Ucs2);
        assert_eq!(got.non_gsm_characters, vec!['’', '“', '”', '—']);
        assert_eq!(got.length, 23);
        for text in ["Привет", "مرحبا", "ሰላም", "á"] {
            assert_eq!(segment(text).encoding, Encoding::Ucs2, "{text}");
        }
    }

    #[test]
    fn ucs2_boundaries_and_surrogate_pairs() {
        check(&"ж".repeat(70), Encoding::Ucs2, 70, 1);
        check(&"ж".repeat(71), Encoding::Ucs2, 71, 2);
        check(&"ж".repeat(134), Encoding::Ucs2, 134, 2);
        check(&"ж".repeat(135), Encoding::Ucs2, 135, 3);
        // An emoji is two UTF-16 units.
        check("😀", Encoding::Ucs2, 2, 1);
        check(&"😀".repeat(35), Encoding::Ucs2, 70, 1);
        // 66 + 2 would be 68 > 67: the pair opens part two rather than being split.
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(3));
        check(&text, Encoding::Ucs2, 71, 2);
        // 67 units in part one, then 67 more: the pair at 67..69 goes whole to part two.
        let text = format!("{}😀{}", "ж".repeat(67), "ж".repeat(65));
        check(&text, Encoding::Ucs2, 134, 2);
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        check(&text, Encoding::Ucs2, 134, 3);
    }

    #[test]
    fn encodings_have_names() {
        assert_eq!(Encoding::Gsm7.as_str(), "gsm7");
        assert_eq!(Encoding::Ucs2.as_str(), "ucs2");
    }

    /// The part-by-part count, done the slow way for every text: what `segment`'s shortcut
    /// for texts without two-unit characters must agree with.
    fn segments_walked(text: &str) -> u32 {
        let gsm = text.chars().all(|c| gsm7_cost(c).is_some());
        let cost = |c: char| {
            if gsm {
                gsm7_cost(c).unwrap_or(1)
            } else {
                c.len_utf16() as u32
            }
        };
        let (single, part) = if gsm { (160, 153) } else { (70, 67) };
        let length: u32 = text.chars().map(cost).sum();
        if length == 0 {
            return 0;
        }
        if length <= single {
            return 1;
        }
        let (mut parts, mut used) = (1, 0);
        for c in text.chars() {
            if used + cost(c) > part {
                parts += 1;
                used = 0;
            }
            used += cost(c);
        }
        parts
    }

    #[test]
    fn every_length_and_mix_counts_the_same_parts_as_walking_them() {
        let alphabets: [&[char]; 5] = [
            &['a'],
            &['a', '€'],
            &['a', 'é', '\n'],
            &['a', 'ж'],
            &['a', 'ж', '😀'],
        ];
        let mut state = 7_u32;
        for alphabet in alphabets {
            for length in 0..400 {
                let text: String = (0..length)
                    .map(|_| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        alphabet[(state >> 16) as usize % alphabet.len()]
                    })
                    .collect();
                assert_eq!(
                    segment(&text).segments,
                    segments_walked(&text),
                    "{length} characters of {alphabet:?}"
                );
            }
        }
    }
}
