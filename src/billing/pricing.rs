//! Graduated prices (docs/rules/billing.md): units 1–5 000 of the month at the first price, the next at
//! the second, and so on. Pure: no database, no clock.

/// One price band: units up to and including `up_to` (within the month) cost `price_minor` each;
/// `None` is the open-ended last band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub up_to: Option<u64>,
    pub price_minor: i64,
}

/// Default SMS prices, per unit, in XAF (docs/rules/billing.md, "Graduated prices").
pub const DEFAULT_SMS_TIERS: [Tier; 4] = [
    Tier {
        up_to: Some(5_000),
        price_minor: 25,
    },
    Tier {
        up_to: Some(20_000),
        price_minor: 22,
    },
    Tier {
        up_to: Some(100_000),
        price_minor: 20,
    },
    Tier {
        up_to: None,
        price_minor: 18,
    },
];

/// Default email prices, per unit, in XAF (docs/rules/billing.md, "Graduated prices").
pub const DEFAULT_EMAIL_TIERS: [Tier; 4] = [
    Tier {
        up_to: Some(10_000),
        price_minor: 7,
    },
    Tier {
        up_to: Some(50_000),
        price_minor: 5,
    },
    Tier {
        up_to: Some(200_000),
        price_minor: 4,
    },
    Tier {
        up_to: None,
        price_minor: 3,
    },
];

/// The price of `units` more billable units when `already` were billed this month. `None` only if
/// the total does not fit in an i64 (it never does for real volumes) or the tiers leave units
/// without a price.
pub fn graduated_charge(tiers: &[Tier], already: u64, units: u64) -> Option<i64> {
    let mut charge: i64 = 0;
    let mut position = already; // units billed before the next one
    let end = already.checked_add(units)?;
    let mut band_start = 0;
    for tier in tiers {
        let band_end = tier.up_to.unwrap_or(u64::MAX);
        if position < band_end && position < end {
            let take_until = end.min(band_end);
            let count = take_until - position.max(band_start);
            charge =
                charge.checked_add(i64::try_from(count).ok()?.checked_mul(tier.price_minor)?)?;
            position = take_until;
        }
        band_start = band_end;
        if position >= end {
            return Some(charge);
        }
    }
    (position >= end).then_some(charge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(already: u64, units: u64) -> i64 {
        graduated_charge(&DEFAULT_SMS_TIERS, already, units).unwrap()
    }

    #[test]
    fn tier_boundaries() {
        let cases = [
            // (already billed this month, units, expected charge)
            (0, 0, 0),
            (0, 1, 25),
            (0, 5_000, 5_000 * 25),
            (0, 5_001, 5_000 * 25 + 22),
            (4_999, 1, 25),
            (5_000, 1, 22),
            (19_999, 1, 22),
            (20_000, 1, 20),
            (99_999, 1, 20),
            (100_000, 1, 18),
            (0, 20_001, 5_000 * 25 + 15_000 * 22 + 20),
            (4_990, 20, 10 * 25 + 10 * 22),
            (99_990, 20, 10 * 20 + 10 * 18),
            (1_000_000, 3, 54),
        ];
        for (already, units, expected) in cases {
            assert_eq!(sms(already, units), expected, "{already} + {units}");
        }
        assert_eq!(
            graduated_charge(&DEFAULT_EMAIL_TIERS, 9_999, 2),
            Some(7 + 5)
        );
    }

    #[test]
    fn splitting_a_send_never_changes_its_price() {
        for (already, units, split) in [
            (0, 30_000, 4_999),
            (4_000, 2_000, 1_000),
            (99_000, 5_000, 1),
        ] {
            assert_eq!(
                sms(already, units),
                sms(already, split) + sms(already + split, units - split)
            );
        }
    }

    #[test]
    fn more_units_never_cost_less_in_total() {
        let mut previous = 0;
        for units in (0..=120_000).step_by(997) {
            let total = sms(0, units);
            assert!(total >= previous, "{units} units cost {total} < {previous}");
            previous = total;
        }
    }

    #[test]
    fn tiers_that_end_leave_units_unpriced() {
        let bounded = [Tier {
            up_to: Some(10),
            price_minor: 1,
        }];
        assert_eq!(graduated_charge(&bounded, 0, 10), Some(10));
        assert_eq!(graduated_charge(&bounded, 5, 6), None);
    }
}
