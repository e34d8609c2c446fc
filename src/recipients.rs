//! Recipients: phone numbers normalised to E.164 (with libphonenumber's rules, through the
//! `phonenumber` crate) and email addresses. Pure: no I/O.

use crate::validate;

/// `raw` as an E.164 number (`+237677123456`). A number without a `+` country prefix is read in
/// `default_country` (ISO 3166 alpha-2, e.g. `CM`). Refused when libphonenumber does not consider
/// it a valid number for its country; the reason names the default country when it was assumed,
/// so a foreign number typed without its prefix says why it was refused. Only digits, one `+`,
/// spaces and the separators `( ) - . /` are read: libphonenumber alone would turn letters into
/// digits as on a keypad (`677-SMS-123`, an `O` typed for a `0`) and drop an extension
/// (`ext. 99`), so a typo would reach — and be charged for — another number.
pub fn normalize_phone(raw: &str, default_country: &str) -> Result<String, String> {
    let country = default_country
        .trim()
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .ok();
    let trimmed = raw.trim();
    let malformed = || "must be a phone number such as +237677123456".to_owned();
    if trimmed.is_empty() || trimmed.len() > 40 {
        return Err(malformed());
    }
    let allowed = |c: char| c.is_ascii_digit() || " ()-./+".contains(c);
    if !trimmed.chars().all(allowed) || trimmed.matches('+').count() > 1 {
        return Err(
            "must be a phone number such as +237677123456: digits, an optional leading +, and \
             spaces, dots, dashes, slashes or brackets between them"
                .to_owned(),
        );
    }
    let number = phonenumber::parse(country, trimmed).map_err(|_| malformed())?;
    if !phonenumber::is_valid(&number) {
        if trimmed.starts_with('+') {
            return Err("is not a valid phone number for its country".to_owned());
        }
        return Err(format!(
            "is not a valid phone number in {}, the default country for numbers without a \
             +country code (CRIER_DEFAULT_COUNTRY); write it with its country code, such as \
             +1 415 555 0132",
            default_country.trim().to_ascii_uppercase()
        ));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Loads the phone-number metadata (parsed once per process, on first use) ahead of the first
/// send.
pub fn warm_up() {
    let _ = normalize_phone("+237677123456", "CM");
}

/// An email recipient: trimmed, lower-cased, syntactically an address.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    validate::email(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_become_e164() {
        let cases = [
            ("677 12 34 56", "CM", "+237677123456"),
            ("+237 6 77 12 34 56", "CM", "+237677123456"),
            ("(+237) 677-123-456", "NG", "+237677123456"),
            ("0612345678", "FR", "+33612345678"),
            ("0803 123 4567", "NG", "+2348031234567"),
            ("+1 202 555 0143", "CM", "+12025550143"),
            ("677123456", "cm", "+237677123456"),
        ];
        for (raw, country, expected) in cases {
            assert_eq!(
                normalize_phone(raw, country),
                Ok(expected.to_owned()),
                "{raw} in {country}"
            );
        }
    }

    #[test]
    fn bad_phones_are_refused() {
        for (raw, country) in [
            ("", "CM"),
            ("12", "CM"),
            ("hello", "CM"),
            ("677123456", "ZZ"),
            ("+999 123", "CM"),
            (&"1".repeat(41), "CM"),
            // Letters would be read as keypad digits, an extension dropped: another number.
            ("6771234O6", "CM"),
            ("677 l2 34 O6", "CM"),
            ("677-SMS-123", "CM"),
            ("+237 677 12 34 56 ext. 99", "CM"),
            ("+237 677 12 34 56 #99", "CM"),
            ("+237 677 12 34 56;99", "CM"),
            ("++237677123456", "CM"),
            ("+237\u{0660}677123456", "CM"),
        ] {
            assert!(
                normalize_phone(raw, country).is_err(),
                "{raw:?} in {country} was accepted"
            );
        }
    }

    #[test]
    fn a_number_read_in_the_default_country_says_which_country_was_assumed() {
        // A US number typed without +1 on a Cameroonian instance.
        let reason = normalize_phone("415 555 0132", "cm").unwrap_err();
        assert!(reason.contains("in CM"), "{reason}");
        assert!(reason.contains("CRIER_DEFAULT_COUNTRY"), "{reason}");
        // With its prefix, the country is the number's own: nothing was assumed.
        let reason = normalize_phone("+1 415 555 01", "CM").unwrap_err();
        assert_eq!(reason, "is not a valid phone number for its country");
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        assert!(normalize_email("not an email").is_err());
    }
}
