//! The billing catalog: wallet currency for new workspaces, plans and graduated price bands.
//! Built-in values (docs/rules/billing.md) by default; an instance may replace them with a JSON file
//! (`--billing-catalog`), validated once at start-up.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::billing::Channel;
use crate::billing::pricing::{DEFAULT_EMAIL_TIERS, DEFAULT_SMS_TIERS, Tier};
use crate::clock::Timestamp;
use crate::money::Currency;

/// The plan every workspace falls back to when no other is in force. Always in the catalog.
pub const FREE: &str = "free";
/// The plan an instance admin sets with the workspace's own included amounts. Always in the
/// catalog.
pub const CUSTOM: &str = "custom";

/// A plan's code (`free`, `basic`, …, `custom`): the catalog decides which exist, so it is text,
/// but its own type, and the two built-in plans are asked for by name (`is_free`, `is_custom`)
/// rather than compared as strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanCode(String);

impl PlanCode {
    pub fn new(code: impl Into<String>) -> PlanCode {
        PlanCode(code.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_free(&self) -> bool {
        self.0 == FREE
    }

    pub fn is_custom(&self) -> bool {
        self.0 == CUSTOM
    }
}

impl std::fmt::Display for PlanCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for PlanCode {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PlanCode {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl rusqlite::ToSql for PlanCode {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.0.as_str()))
    }
}

impl rusqlite::types::FromSql for PlanCode {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value.as_str().map(PlanCode::new)
    }
}

/// The most a plan's `api_requests_per_second` may say (as `--api-rate-limit`).
pub const MAX_API_REQUESTS_PER_SECOND: u32 = 1_000_000;

/// A plan of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub code: PlanCode,
    pub name: String,
    /// Price of one month in the catalog currency's minor unit; `None`: not for sale.
    pub price_minor: Option<i64>,
    /// SMS units included per calendar month (UTC).
    pub included_sms_per_month: u64,
    /// Email units included per day (UTC).
    pub included_email_per_day: u64,
    /// Requests per second each API key of a workspace on this plan may make, with bursts of
    /// twice as many (0: no limit); absent, the instance's `--api-rate-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_requests_per_second: Option<u32>,
}

/// Everything billing prices with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Wallet currency of new workspaces, and the currency of plan prices and price bands.
    pub currency: String,
    pub plans: Vec<Plan>,
    pub sms_tiers: Vec<Tier>,
    pub email_tiers: Vec<Tier>,
}

fn plan(code: &str, name: &str, price: Option<i64>, sms: u64, email: u64) -> Plan {
    Plan {
        code: PlanCode::new(code),
        name: name.to_owned(),
        price_minor: price,
        included_sms_per_month: sms,
        included_email_per_day: email,
        api_requests_per_second: None,
    }
}

impl Default for Catalog {
    /// The built-in catalog (docs/rules/billing.md, "Plans"): prices in XAF.
    fn default() -> Catalog {
        Catalog {
            currency: "XAF".to_owned(),
            plans: vec![
                plan(FREE, "Free", None, 0, 0),
                plan("basic", "Basic", Some(5_000), 150, 250),
                plan("growth", "Growth", Some(15_000), 500, 1_000),
                plan("pro", "Pro", Some(50_000), 2_000, 5_000),
                // Contact sales: an instance admin sets its quotas per workspace.
                plan(CUSTOM, "Custom", None, 0, 0),
            ],
            sms_tiers: DEFAULT_SMS_TIERS.to_vec(),
            email_tiers: DEFAULT_EMAIL_TIERS.to_vec(),
        }
    }
}

impl Catalog {
    /// Reads and checks a catalog file.
    pub fn load(path: &Path) -> Result<Catalog, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let catalog: Catalog = serde_json::from_str(&text)
            .map_err(|err| format!("{} is not a valid catalog: {err}", path.display()))?;
        catalog
            .check()
            .map_err(|why| format!("{}: {why}", path.display()))?;
        Ok(catalog)
    }

    /// The rules a catalog must keep: a known currency; unique plan codes including `free` (the
    /// fallback, free of charge and without quotas) and `custom`; non-negative prices; price bands
    /// strictly ascending and ending open-ended.
    pub fn check(&self) -> Result<(), String> {
        if Currency::parse(&self.currency).is_none() {
            return Err(format!("unknown currency {:?}", self.currency));
        }
        for (index, plan) in self.plans.iter().enumerate() {
            if self.plans[..index]
                .iter()
                .any(|other| other.code == plan.code)
            {
                return Err(format!("plan {:?} is listed twice", plan.code));
            }
            if plan
                .api_requests_per_second
                .is_some_and(|rate| rate > MAX_API_REQUESTS_PER_SECOND)
            {
                return Err(format!(
                    "plan {:?}: api_requests_per_second must be 0 (no limit) to {MAX_API_REQUESTS_PER_SECOND}",
                    plan.code
                ));
            }
            if plan.price_minor.is_some_and(|price| price <= 0) {
                return Err(format!(
                    "plan {:?} must have a positive price or none",
                    plan.code
                ));
            }
        }
        match self.plan(FREE) {
            Some(free)
                if free.price_minor.is_none()
                    && free.included_sms_per_month == 0
                    && free.included_email_per_day == 0 => {}
            _ => return Err("a plan \"free\" without price or quotas is required".to_owned()),
        }
        if self.plan(CUSTOM).is_none() {
            return Err("a plan \"custom\" is required".to_owned());
        }
        for (name, tiers) in [
            ("sms_tiers", &self.sms_tiers),
            ("email_tiers", &self.email_tiers),
        ] {
            let bounds: Vec<Option<u64>> = tiers.iter().map(|tier| tier.up_to).collect();
            let ascending = bounds.windows(2).all(|pair| {
                matches!(pair, [Some(a), Some(b)] if a < b) || matches!(pair, [Some(_), None])
            });
            let open_ended =
                bounds.last() == Some(&None) && bounds.iter().filter(|b| b.is_none()).count() == 1;
            let priced = tiers.iter().all(|tier| tier.price_minor >= 0);
            if tiers.is_empty()
                || !ascending
                || !open_ended
                || !priced
                || bounds.first() == Some(&Some(0))
            {
                return Err(format!(
                    "{name} must be bands with ascending up_to, non-negative prices, the last with up_to null"
                ));
            }
        }
        Ok(())
    }

    /// One page of the catalog in its configured order, after the cursor `after` (a plan code:
    /// the last one of the previous page), like a keyset page of a table. A code that is not in
    /// the catalog gives an empty page.
    pub fn plans_after(&self, after: Option<&str>, limit: usize) -> Vec<&Plan> {
        let start = match after {
            None => 0,
            Some(code) => match self.plans.iter().position(|plan| plan.code == *code) {
                Some(at) => at + 1,
                None => self.plans.len(),
            },
        };
        self.plans.iter().skip(start).take(limit).collect()
    }

    /// Whether any plan sets its own API rate limit (else every key has the instance's).
    pub fn has_plan_rate_limits(&self) -> bool {
        self.plans
            .iter()
            .any(|plan| plan.api_requests_per_second.is_some())
    }

    pub fn plan(&self, code: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.code == *code)
    }

    /// The plan in force at `now`: the stored one until its period ends (or without an end), then
    /// `free`. A plan no longer in the catalog counts as `free`.
    pub fn effective_plan(
        &self,
        stored_code: &str,
        period_end: Option<Timestamp>,
        now: Timestamp,
    ) -> &Plan {
        let stored = match period_end {
            Some(end) if end <= now => None,
            _ => self.plan(stored_code),
        };
        stored.or_else(|| self.plan(FREE)).unwrap_or(&self.plans[0])
    }

    pub fn tiers(&self, channel: Channel) -> &[Tier] {
        match channel {
            Channel::Sms => &self.sms_tiers,
            Channel::Email => &self.email_tiers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_default_catalog_is_valid_and_falls_back_to_free() {
        let catalog = Catalog::default();
        catalog.check().unwrap();
        let end = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let before = end - chrono::Duration::seconds(1);
        assert_eq!(
            catalog.effective_plan("growth", Some(end), before).code,
            "growth"
        );
        assert_eq!(
            catalog.effective_plan("growth", Some(end), end).code,
            "free"
        );
        assert_eq!(catalog.effective_plan("retired", None, end).code, "free");
    }

    #[test]
    fn the_catalog_pages_after_a_plan_code_in_its_order() {
        let catalog = Catalog::default();
        let codes = |plans: Vec<&Plan>| -> Vec<String> {
            plans
                .into_iter()
                .map(|plan| plan.code.to_string())
                .collect()
        };
        let all: Vec<String> = catalog
            .plans
            .iter()
            .map(|plan| plan.code.to_string())
            .collect();
        assert_eq!(codes(catalog.plans_after(None, 100)), all);
        assert_eq!(codes(catalog.plans_after(None, 2)), all[..2]);
        assert_eq!(codes(catalog.plans_after(Some(&all[0]), 100)), all[1..]);
        let last = all.last().unwrap();
        assert!(catalog.plans_after(Some(last), 100).is_empty());
        assert!(catalog.plans_after(Some("no-such-plan"), 100).is_empty());
    }

    #[test]
    fn bad_catalogs_are_refused_with_a_reason() {
        let with = |change: fn(&mut Catalog)| {
            let mut catalog = Catalog::default();
            change(&mut catalog);
            catalog.check().unwrap_err()
        };
        assert!(with(|c| c.currency = "XXX".into()).contains("currency"));
        assert!(with(|c| c.plans.retain(|p| p.code != "free")).contains("free"));
        assert!(with(|c| c.plans[1].code = PlanCode::new("growth")).contains("twice"));
        assert!(with(|c| c.sms_tiers[1].up_to = Some(10)).contains("sms_tiers"));
        assert!(with(|c| c.email_tiers.pop().map(drop).unwrap_or(())).contains("email_tiers"));
        assert!(with(|c| c.plans[1].price_minor = Some(0)).contains("positive"));
        assert!(
            with(|c| c.plans[1].api_requests_per_second = Some(1_000_001))
                .contains("api_requests_per_second")
        );
    }

    #[test]
    fn a_catalog_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        std::fs::write(
            &path,
            r#"{"currency": "NGN",
                "plans": [{"code": "free", "name": "Free", "price_minor": null, "included_sms_per_month": 0, "included_email_per_day": 0},
                          {"code": "custom", "name": "Custom", "price_minor": null, "included_sms_per_month": 0, "included_email_per_day": 0},
                          {"code": "start", "name": "Start", "price_minor": 250000, "included_sms_per_month": 100, "included_email_per_day": 100, "api_requests_per_second": 20}],
                "sms_tiers": [{"up_to": 1000, "price_minor": 400}, {"up_to": null, "price_minor": 350}],
                "email_tiers": [{"up_to": null, "price_minor": 100}]}"#,
        )
        .unwrap();
        let catalog = Catalog::load(&path).unwrap();
        assert_eq!(catalog.currency, "NGN");
        assert_eq!(catalog.plan("start").unwrap().included_sms_per_month, 100);
        assert_eq!(
            catalog.plan("start").unwrap().api_requests_per_second,
            Some(20)
        );
        assert_eq!(catalog.plan("free").unwrap().api_requests_per_second, None);
        assert!(catalog.has_plan_rate_limits());
        assert!(!Catalog::default().has_plan_rate_limits());
        std::fs::write(&path, "{}").unwrap();
        assert!(
            Catalog::load(&path)
                .unwrap_err()
                .contains("not a valid catalog")
        );
    }
}
