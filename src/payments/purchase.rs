//! What a buyer may buy: the rules a checkout is checked against before any provider is called
//! (docs/rules/payments.md).

use crate::billing::PlanState;
use crate::billing::catalog::Catalog;
use crate::billing::store::BillingAccount;
use crate::clock::Timestamp;
use crate::error::{AppError, FieldErrors};
use crate::money::Money;
use crate::payments::flow::Purchase;

/// A purchase as asked for: `kind` `plan` (with `plan_code`) or `topup` (with `amount_minor`
/// and optionally `currency`).
#[derive(Debug, Clone, Copy)]
pub struct PurchaseRequest<'a> {
    pub kind: &'a str,
    pub plan_code: Option<&'a str>,
    pub amount_minor: Option<i64>,
    pub currency: Option<&'a str>,
}

/// Checks a purchase against the catalog and the workspace's account: a plan that can be bought
/// now (not another while a bought one runs), or a top-up of at least `topup_minimum_minor` in the
/// wallet's currency. Every problem with the request at once (422).
pub fn check(
    catalog: &Catalog,
    account: &BillingAccount,
    topup_minimum_minor: i64,
    request: &PurchaseRequest<'_>,
    now: Timestamp,
) -> Result<Purchase, AppError> {
    let mut fields = FieldErrors::new();
    let purchase = match request.kind {
        "plan" => {
            if request.amount_minor.is_some() || request.currency.is_some() {
                fields.add(
                    "amount_minor",
                    "a plan's price comes from the catalog; leave it out",
                );
            }
            let plan = request.plan_code.and_then(|code| catalog.plan(code));
            match plan {
                Some(plan) if plan.price_minor.is_some() => Some(Purchase {
                    kind: "plan",
                    plan_code: Some(plan.code.to_string()),
                    amount: Money::new(plan.price_minor.unwrap_or_default(), &catalog.currency),
                    description: format!("{} plan, 1 month", plan.name),
                }),
                _ => {
                    let purchasable: Vec<&str> = catalog
                        .plans
                        .iter()
                        .filter(|plan| plan.price_minor.is_some())
                        .map(|plan| plan.code.as_str())
                        .collect();
                    fields.add(
                        "plan_code",
                        format!(
                            "must be a plan that can be bought: {}",
                            purchasable.join(", ")
                        ),
                    );
                    None
                }
            }
        }
        "topup" => {
            if request.plan_code.is_some() {
                fields.add("plan_code", "only for kind plan");
            }
            let currency = request.currency.unwrap_or(&account.wallet_currency);
            if currency != account.wallet_currency {
                fields.add(
                    "currency",
                    format!("must be {}, the wallet's currency", account.wallet_currency),
                );
            }
            let minimum = topup_minimum_minor;
            match request.amount_minor {
                Some(amount) if (minimum..=1_000_000_000_000).contains(&amount) => Some(Purchase {
                    kind: "topup",
                    plan_code: None,
                    amount: Money::new(amount, currency),
                    description: "Wallet top-up".to_owned(),
                }),
                _ => {
                    fields.add(
                        "amount_minor",
                        format!("must be a whole number of at least {minimum} (minor units)"),
                    );
                    None
                }
            }
        }
        _ => {
            fields.add("kind", "must be plan or topup");
            None
        }
    };
    fields.into_result()?;
    let purchase = purchase.ok_or_else(|| AppError::internal("purchase without errors"))?;
    // Refuse now what fulfilment would refuse, before anyone pays.
    if let Some(plan_code) = &purchase.plan_code {
        PlanState::of(account, catalog, now).purchase_start(plan_code, now)?;
    }
    Ok(purchase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::catalog::FREE;
    use chrono::TimeZone;

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn account(plan_code: &str, period_end: Option<&str>) -> BillingAccount {
        BillingAccount {
            workspace_id: crate::ids::WorkspaceId::parse("wsp_1").unwrap(),
            plan_code: crate::billing::catalog::PlanCode::new(plan_code),
            plan_activated_at: None,
            plan_period_end: period_end.map(str::to_owned),
            wallet_currency: "XAF".to_owned(),
            wallet_balance_minor: 0,
            custom_included_sms_per_month: None,
            custom_included_email_per_day: None,
            low_balance_threshold_minor: None,
        }
    }

    fn ask<'a>(kind: &'a str, plan: Option<&'a str>, amount: Option<i64>) -> PurchaseRequest<'a> {
        PurchaseRequest {
            kind,
            plan_code: plan,
            amount_minor: amount,
            currency: None,
        }
    }

    fn refused_fields(result: Result<Purchase, AppError>) -> Vec<String> {
        match result {
            Err(AppError::Validation(fields)) => fields.iter().map(|(k, _)| k.clone()).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn plans_come_from_the_catalog_and_top_ups_have_a_minimum() {
        let catalog = Catalog::default();
        let free = account(FREE, None);
        let basic = check(
            &catalog,
            &free,
            500,
            &ask("plan", Some("basic"), None),
            now(),
        )
        .unwrap();
        assert_eq!((basic.kind, basic.amount.amount_minor), ("plan", 5_000));
        let topup = check(&catalog, &free, 500, &ask("topup", None, Some(500)), now()).unwrap();
        assert_eq!((topup.kind, topup.amount.amount_minor), ("topup", 500));

        let bad = |request| refused_fields(check(&catalog, &free, 500, &request, now()));
        assert_eq!(bad(ask("plan", Some("free"), None)), ["plan_code"]);
        assert_eq!(bad(ask("plan", Some("basic"), Some(10))), ["amount_minor"]);
        assert_eq!(bad(ask("topup", None, Some(499))), ["amount_minor"]);
        assert_eq!(bad(ask("topup", Some("basic"), Some(500))), ["plan_code"]);
        assert_eq!(bad(ask("gift", None, None)), ["kind"]);
        let euros = PurchaseRequest {
            currency: Some("EUR"),
            ..ask("topup", None, Some(500))
        };
        assert_eq!(bad(euros), ["currency"]);
    }

    #[test]
    fn another_plan_waits_until_the_bought_one_ends() {
        let catalog = Catalog::default();
        let growth = account("growth", Some("2026-03-20T00:00:00.000Z"));
        let other = check(
            &catalog,
            &growth,
            500,
            &ask("plan", Some("basic"), None),
            now(),
        );
        assert!(matches!(other, Err(AppError::Conflict(_))), "{other:?}");
        let again = check(
            &catalog,
            &growth,
            500,
            &ask("plan", Some("growth"), None),
            now(),
        );
        assert_eq!(again.unwrap().plan_code.as_deref(), Some("growth"));
    }
}
