//! Money: integer minor units and a currency, never floats (docs/rules/billing.md).

use serde::Serialize;

/// An ISO 4217 code crier handles, with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    /// Digits after the decimal point: 0 for XAF, XOF, UGX, JPY…; 2 for USD, EUR…
    pub exponent: u32,
}

/// Currencies without a minor unit (Stripe's zero-decimal list, plus the CFA francs).
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Currencies with three decimals.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

impl Currency {
    /// The currency for an upper-case ISO 4217 code (three letters), if it looks like one.
    pub fn parse(code: &str) -> Option<Currency> {
        let canonical = KNOWN.iter().find(|known| **known == code)?;
        let exponent = if ZERO_DECIMAL.contains(canonical) {
            0
        } else if THREE_DECIMAL.contains(canonical) {
            3
        } else {
            2
        };
        Some(Currency {
            code: canonical,
            exponent,
        })
    }
}

/// The codes crier accepts for wallets and prices.
const KNOWN: &[&str] = &[
    "XAF", "XOF", "NGN", "GHS", "KES", "UGX", "TZS", "RWF", "ZAR", "EGP", "MAD", "USD", "EUR",
    "GBP", "CAD", "JPY", "KRW", "CLP", "VND", "BIF", "DJF", "GNF", "KMF", "MGA", "PYG", "VUV",
    "XPF", "BHD", "JOD", "KWD", "OMR", "TND",
];

/// An amount in a currency's minor unit: `{"amount_minor": 15000, "currency": "XAF"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}

impl Money {
    pub fn new(amount_minor: i64, currency: &str) -> Money {
        Money {
            amount_minor,
            currency: currency.to_owned(),
        }
    }
}

/// `Money` borrowed, for views written from a row without copying its currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MoneyView<'a> {
    pub amount_minor: i64,
    pub currency: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents() {
        assert_eq!(Currency::parse("XAF").unwrap().exponent, 0);
        assert_eq!(Currency::parse("UGX").unwrap().exponent, 0);
        assert_eq!(Currency::parse("USD").unwrap().exponent, 2);
        assert_eq!(Currency::parse("KWD").unwrap().exponent, 3);
        assert_eq!(Currency::parse("xaf"), None);
        assert_eq!(Currency::parse("ABC"), None);
    }

    #[test]
    fn money_serialises_as_minor_units() {
        let json = serde_json::to_value(Money::new(15_000, "XAF")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount_minor": 15000, "currency": "XAF"})
        );
    }
}
