//! Field rules shared by several endpoints. Each returns the normalised value or a reason for
//! `FieldErrors`.

/// For `#[serde(default, deserialize_with = "present")]` on an `Option<Option<T>>` field of a
/// PATCH body: tells a field sent as `null` (`Some(None)`: clear it) from one not sent (`None`,
/// via `default`: leave it).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// For `#[serde(default, deserialize_with = "not_null")]` on an optional field whose type is
/// not nullable in the API (an optional boolean, a PATCH field with no "cleared" state): left
/// out it is `None`, and `null` is refused as the wrong type (422) rather than read as "left
/// out" — `{"enabled": null}` must not answer 200 having changed nothing.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A real calendar day written `YYYY-MM-DD`, or why it is not one: written otherwise, or
/// written right but missing from the calendar (`1990-02-30`).
pub fn calendar_day(text: &str) -> Result<chrono::NaiveDate, &'static str> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            4 | 7 => *byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    if !shaped {
        return Err("must be a date written YYYY-MM-DD");
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| "is not a date of the calendar")
}

/// Why the JSON `value` is not a calendar day (`calendar_day`'s reason; a value that is not a
/// string is not written `YYYY-MM-DD` either).
pub fn calendar_day_problem(value: &serde_json::Value) -> &'static str {
    match value.as_str().map(calendar_day) {
        Some(Err(why)) => why,
        _ => "must be a date written YYYY-MM-DD",
    }
}

/// An email address: trimmed and lower-cased, at most 254 characters, and an address the SMTP
/// delivery can send to (lettre's `Address`, the parser delivery uses: a dot-atom local part —
/// no leading, trailing or doubled dots, no `<>` — and a domain of valid labels), with a dot in
/// the domain, no spaces or control characters, and neither a quoted local part nor an IP literal
/// (`[1.2.3.4]`). Deliverability is not checked here.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let valid = (3..=254).contains(&email.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.starts_with('"') && domain.contains('.') && !domain.starts_with('[')
        })
        && email.parse::<lettre::Address>().is_ok();
    if valid {
        Ok(email)
    } else {
        Err("must be an email address such as ada@example.com")
    }
}

/// Trimmed text of `min..=max` characters.
pub fn text(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let text = raw.trim();
    let length = text.chars().count();
    if (min..=max).contains(&length) {
        Ok(text.to_owned())
    } else {
        Err(format!("must be {min} to {max} characters"))
    }
}

/// `text` on one line: no control characters (a NUL, a bell, a line break), for what is written
/// into messages and email headers as it is — a contact's names, which templates personalise.
pub fn line(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let text = text(raw, min, max)?;
    if text.chars().any(char::is_control) {
        return Err("must be one line of text, without control characters".to_owned());
    }
    Ok(text)
}

/// A password of 10 to 1024 characters (kept as typed).
pub fn password(raw: &str) -> Result<(), &'static str> {
    if (10..=1024).contains(&raw.chars().count()) {
        Ok(())
    } else {
        Err("must be 10 to 1024 characters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for good in [
            "ada+news@example.com",
            "a_b@mail.example.co",
            "ädä@exämple.com",
        ] {
            assert_eq!(email(good).as_deref(), Ok(good), "{good:?}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@x.io",
            "a@b",
            "a b@x.io",
            "a@@x.io",
            "a@x.",
            "a@.io",
            // What only delivery used to refuse (the message then failed after it was charged).
            "a@example..com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "ada@-example.com",
            "ada@example-.com",
            "<a@example.com>",
            "a>b@example.com",
            "a\0b@example.com",
            "a\u{7}@example.com",
            "\"a b\"@example.com",
            "a@[1.2.3.4]",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn texts_and_passwords() {
        assert_eq!(text("  Acme  ", 1, 100).unwrap(), "Acme");
        assert!(text("   ", 1, 100).is_err());
        assert!(text(&"x".repeat(101), 1, 100).is_err());
        for control in ["a\u{0}b", "a\u{7}b", "Ada\r\nBcc: x", "a\tb", "a\u{98}b"] {
            assert!(line(control, 1, 100).is_err(), "{control:?}");
            assert!(text(control, 1, 100).is_ok(), "{control:?}");
        }
        assert_eq!(line(" Ada Lovelace ", 1, 100).unwrap(), "Ada Lovelace");
        assert!(password("short").is_err());
        assert!(password("long enough!").is_ok());
    }
}
