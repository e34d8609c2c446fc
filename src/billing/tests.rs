//! Billing against a real SQLite file: reservations, refunds, periods, and the concurrency
//! claims (no lost increment, no overspend, refund once) proven with real threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::clock::ManualClock;
use crate::config::{Config, Synchronous};
use crate::db::{Db, DbSettings};
use crate::ids::SeededRandom;
use crate::scope::WorkspaceScope;
use crate::users::{NewUser, create_user};
use crate::workspaces::create_workspace;

struct Fixture {
    db: Db,
    ids: Ids,
    scope: WorkspaceScope,
    _dir: tempfile::TempDir,
}

fn jan(day: u32, hour: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_tests(dir.path());
    let settings = DbSettings {
        pool_size: 16,
        busy_timeout: std::time::Duration::from_secs(60),
        synchronous: Synchronous::Normal,
        ..DbSettings::from_config(&config)
    };
    let db = Db::open(&settings).unwrap();
    let ids = Ids::new(
        Arc::new(ManualClock::new(jan(1, 0))),
        Arc::new(SeededRandom::new(11)),
    );
    let workspace = db
        .write(|conn| {
            let user = NewUser {
                email: "owner@x.io".into(),
                name: "O".into(),
                password_hash: "x".into(),
            };
            let user = create_user(conn, &ids, user, false, jan(1, 0))?;
            Ok(create_workspace(conn, &ids, "Acme", &user.id, "XAF", jan(1, 0))?.id)
        })
        .unwrap();
    Fixture {
        db,
        ids,
        scope: WorkspaceScope::trusted(&workspace),
        _dir: dir,
    }
}

impl Fixture {
    fn usage<'a>(
        &'a self,
        channel: Channel,
        units: u64,
        reference: &'a str,
        charging: Charging,
    ) -> Usage<'a> {
        Usage {
            scope: &self.scope,
            channel,
            units,
            reference,
            charging,
        }
    }

    fn top_up(&self, amount: i64) {
        self.db
            .write(|conn| {
                move_wallet(
                    conn,
                    &self.ids,
                    &self.scope,
                    "topup",
                    amount,
                    ("pay_1", None, None),
                    jan(1, 0),
                )
            })
            .unwrap();
    }

    fn reserve(
        &self,
        channel: Channel,
        units: u64,
        reference: &str,
        at: Timestamp,
    ) -> Result<Quote, AppError> {
        self.db.write(|conn| {
            let usage = self.usage(channel, units, reference, Charging::Live);
            reserve(conn, &self.ids, &Catalog::default(), usage, at)
        })
    }

    fn scalar(&self, sql: &str) -> i64 {
        self.db
            .read(|conn| Ok(conn.query_row(sql, [], |row| row.get(0))?))
            .unwrap()
    }

    fn balance(&self) -> i64 {
        self.scalar("SELECT wallet_balance_minor FROM workspaces")
    }

    fn ledger_sum(&self) -> i64 {
        self.scalar("SELECT COALESCE(sum(amount_minor), 0) FROM wallet_ledger")
    }
}

#[test]
fn included_quota_is_used_before_the_wallet() {
    let f = fixture();
    f.db.write(|conn| activate_plan(conn, &Catalog::default(), &f.scope, "basic", jan(1, 0)))
        .unwrap();
    f.top_up(1_000);
    let first = f.reserve(Channel::Sms, 149, "msg_1", jan(2, 0)).unwrap();
    assert_eq!(
        (
            first.included_units,
            first.billable_units,
            first.charge.amount_minor
        ),
        (149, 0, 0)
    );
    // One included unit left: the next 3-segment SMS takes it and pays for 2 at 25.
    let second = f.reserve(Channel::Sms, 3, "msg_2", jan(2, 0)).unwrap();
    assert_eq!(
        (
            second.included_units,
            second.billable_units,
            second.charge.amount_minor
        ),
        (1, 2, 50)
    );
    assert_eq!(f.balance(), 950);
    assert_eq!(f.ledger_sum(), 950);
}

#[test]
fn an_unaffordable_send_is_402_and_changes_nothing() {
    let f = fixture();
    f.top_up(40);
    let err = f.reserve(Channel::Sms, 2, "msg_1", jan(2, 0)).unwrap_err();
    assert_eq!(err.status(), 402);
    let details = err.details().unwrap();
    assert_eq!(details["charge_minor"], 50);
    assert_eq!(details["balance_minor"], 40);
    assert_eq!(details["billable_units"], 2);
    assert_eq!(f.balance(), 40);
    assert_eq!(f.scalar("SELECT count(*) FROM billing_reservations"), 0);
    assert_eq!(f.scalar("SELECT count(*) FROM usage_counters"), 0);
}

#[test]
fn test_mode_prices_and_takes_nothing() {
    let f = fixture();
    let quote =
        f.db.write(|conn| {
            let usage = f.usage(Channel::Email, 4, "msg_t", Charging::Test);
            reserve(conn, &f.ids, &Catalog::default(), usage, jan(2, 0))
        })
        .unwrap();
    assert_eq!(quote.charge.amount_minor, 28);
    assert_eq!(f.balance(), 0);
    assert_eq!(f.scalar("SELECT count(*) FROM billing_reservations"), 0);
}

#[test]
fn quota_periods_roll_and_refunds_touch_only_their_period() {
    let f = fixture();
    f.db.write(|conn| activate_plan(conn, &Catalog::default(), &f.scope, "basic", jan(1, 0)))
        .unwrap();
    // Email: 250 a day. Use all of the 2nd; the 3rd starts again.
    assert_eq!(
        f.reserve(Channel::Email, 250, "msg_a", jan(2, 10))
            .unwrap()
            .included_units,
        250
    );
    assert_eq!(
        f.reserve(Channel::Email, 1, "msg_b", jan(3, 0))
            .unwrap()
            .included_units,
        1
    );
    // Refunding the 2nd's reservation on the 3rd does not lower the 3rd's counter.
    f.db.write(|conn| refund(conn, &f.ids, "msg_a", jan(3, 1)))
        .unwrap();
    assert_eq!(
        f.scalar("SELECT quota_used FROM usage_counters WHERE channel = 'email'"),
        1
    );
}

#[test]
fn an_expired_plan_falls_back_to_free_and_buying_again_extends() {
    let f = fixture();
    let end =
        f.db.write(|conn| activate_plan(conn, &Catalog::default(), &f.scope, "growth", jan(10, 0)))
            .unwrap();
    assert_eq!(end, Utc.with_ymd_and_hms(2026, 2, 10, 0, 0, 0).unwrap());
    let extended =
        f.db.write(|conn| activate_plan(conn, &Catalog::default(), &f.scope, "growth", jan(20, 0)))
            .unwrap();
    assert_eq!(
        extended,
        Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap()
    );
    let after = extended + Duration::seconds(1);
    let quote =
        f.db.read(|conn| quote(conn, &Catalog::default(), &f.scope, Channel::Sms, 1, after))
            .unwrap();
    assert_eq!(
        (quote.included_remaining, quote.charge.amount_minor),
        (0, 25)
    );
}

#[test]
fn concurrent_reservations_lose_no_increment() {
    let f = fixture();
    f.db.write(|conn| activate_plan(conn, &Catalog::default(), &f.scope, "basic", jan(1, 0)))
        .unwrap();
    let successes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..64 {
            let (f, successes) = (&f, &successes);
            scope.spawn(move || {
                for n in 0..5 {
                    if f.reserve(Channel::Sms, 1, &format!("msg_{thread}_{n}"), jan(2, 0))
                        .is_ok()
                    {
                        successes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    // 320 attempts, 150 included SMS, an empty wallet: exactly the quota succeeds.
    assert_eq!(successes.load(Ordering::Relaxed), 150);
    assert_eq!(
        f.scalar("SELECT quota_used FROM usage_counters WHERE channel = 'sms'"),
        150
    );
    assert_eq!(f.scalar("SELECT count(*) FROM billing_reservations"), 150);
}

#[test]
fn a_wallet_that_can_pay_k_units_pays_exactly_k_under_contention() {
    let f = fixture();
    let k = 37;
    f.top_up(25 * k);
    let successes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..64 {
            let (f, successes) = (&f, &successes);
            scope.spawn(move || {
                for n in 0..3 {
                    match f.reserve(Channel::Sms, 1, &format!("msg_{thread}_{n}"), jan(2, 0)) {
                        Ok(_) => {
                            successes.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => assert_eq!(err.code(), "insufficient_funds"),
                    }
                }
            });
        }
    });
    assert_eq!(successes.load(Ordering::Relaxed) as i64, k);
    assert_eq!(f.balance(), 0);
    assert_eq!(f.ledger_sum(), 0);
    assert_eq!(
        f.scalar("SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"),
        k
    );
}

#[test]
fn a_refund_happens_exactly_once_even_when_called_concurrently() {
    let f = fixture();
    f.top_up(1_000);
    f.reserve(Channel::Sms, 4, "msg_1", jan(2, 0)).unwrap();
    assert_eq!(f.balance(), 900);
    let refunded = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..16 {
            let (f, refunded) = (&f, &refunded);
            scope.spawn(move || {
                let outcome =
                    f.db.write(|conn| refund(conn, &f.ids, "msg_1", jan(2, 1)))
                        .unwrap();
                if outcome.is_some() {
                    refunded.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(refunded.load(Ordering::Relaxed), 1);
    assert_eq!(f.balance(), 1_000);
    assert_eq!(f.ledger_sum(), 1_000);
    assert_eq!(f.scalar("SELECT billable_units FROM usage_counters"), 0);
}

#[test]
fn the_database_refuses_to_break_the_wallet_rules() {
    let f = fixture();
    f.top_up(100);
    let attempts = [
        "UPDATE wallet_ledger SET amount_minor = 1000",
        "DELETE FROM wallet_ledger",
        "UPDATE workspaces SET wallet_balance_minor = -1",
        "UPDATE workspaces SET wallet_balance_minor = 5000",
        "UPDATE workspaces SET wallet_currency = 'USD'",
        "INSERT INTO wallet_ledger (id, workspace_id, kind, amount_minor, balance_after_minor, currency, reference, created_at)
         SELECT 'led_y', id, 'charge', 10, 110, 'XAF', 'msg_y', 't' FROM workspaces",
        "INSERT INTO wallet_ledger (id, workspace_id, kind, amount_minor, balance_after_minor, currency, reference, created_at)
         SELECT 'led_x', id, 'charge', -10, 500, 'XAF', 'msg_x', 't' FROM workspaces",
    ];
    for sql in attempts {
        let outcome = f.db.write(|conn| Ok(conn.execute(sql, [])?));
        assert!(outcome.is_err(), "{sql} was allowed");
    }
    assert_eq!((f.balance(), f.ledger_sum()), (100, 100));
}

#[test]
fn usage_counters_match_their_reservations_after_reserving_and_refunding() {
    let f = fixture();
    f.db.write(|conn| activate_plan(conn, &Catalog::default(), &f.scope, "basic", jan(1, 0)))
        .unwrap();
    f.top_up(10_000);
    f.reserve(Channel::Sms, 100, "msg_1", jan(2, 0)).unwrap();
    f.reserve(Channel::Sms, 80, "msg_2", jan(2, 0)).unwrap(); // 50 included, 30 billed
    f.reserve(Channel::Email, 3, "msg_3", jan(2, 0)).unwrap();
    f.db.write(|conn| refund(conn, &f.ids, "msg_2", jan(2, 1)))
        .unwrap();
    let discrepancies = f.db.read(store::usage_discrepancies).unwrap();
    assert!(discrepancies.is_empty(), "{discrepancies:?}");
    // A counter changed behind the reservations' back is caught.
    f.db.write(|conn| {
        Ok(conn.execute(
            "UPDATE usage_counters SET quota_used = quota_used + 1 WHERE channel = 'sms'",
            [],
        )?)
    })
    .unwrap();
    let discrepancies = f.db.read(store::usage_discrepancies).unwrap();
    assert_eq!(discrepancies.len(), 1, "{discrepancies:?}");
    assert_eq!(discrepancies[0].counter, "quota used");
}

#[test]
fn a_reference_reserved_twice_leaves_nothing_behind() {
    let f = fixture();
    f.top_up(1_000);
    f.reserve(Channel::Sms, 2, "msg_dup", jan(2, 0)).unwrap();
    // Even a caller that swallows the error and commits keeps no half-reservation.
    f.db.write(|conn| {
        let usage = f.usage(Channel::Sms, 2, "msg_dup", Charging::Live);
        let err = reserve(conn, &f.ids, &Catalog::default(), usage, jan(2, 0)).unwrap_err();
        assert_eq!(err.code(), "conflict");
        Ok(())
    })
    .unwrap();
    assert_eq!(f.balance(), 950);
    assert_eq!(f.scalar("SELECT billable_units FROM usage_counters"), 2);
    assert_eq!(
        f.scalar("SELECT count(*) FROM wallet_ledger WHERE kind = 'charge'"),
        1
    );
}

#[test]
fn another_plan_cannot_be_bought_while_one_runs_and_unpriced_plans_never() {
    let f = fixture();
    let catalog = Catalog::default();
    f.db.write(|conn| activate_plan(conn, &catalog, &f.scope, "pro", jan(1, 0)))
        .unwrap();
    for (code, at) in [
        ("basic", jan(2, 0)),
        ("custom", jan(2, 0)),
        ("free", jan(2, 0)),
    ] {
        let err =
            f.db.write(|conn| activate_plan(conn, &catalog, &f.scope, code, at))
                .unwrap_err();
        assert_eq!(err.code(), "conflict", "{code}");
    }
    // After pro ends, another plan starts from then.
    let after = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 1).unwrap();
    let end =
        f.db.write(|conn| activate_plan(conn, &catalog, &f.scope, "basic", after))
            .unwrap();
    assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 1).unwrap());
}

#[test]
fn plan_state_decides_running_and_when_a_purchase_starts() {
    let catalog = Catalog::default();
    let account = |code: &str, end: Option<Timestamp>| store::BillingAccount {
        workspace_id: crate::ids::WorkspaceId::parse("wsp_1").unwrap(),
        plan_code: catalog::PlanCode::new(code),
        plan_activated_at: None,
        plan_period_end: end.map(format_timestamp),
        wallet_currency: "XAF".to_owned(),
        wallet_balance_minor: 0,
        custom_included_sms_per_month: None,
        custom_included_email_per_day: None,
        low_balance_threshold_minor: None,
    };
    let now = jan(10, 0);
    let bought = catalog
        .plans
        .iter()
        .find(|plan| plan.price_minor.is_some())
        .unwrap()
        .code
        .to_string();
    let other = catalog
        .plans
        .iter()
        .rfind(|plan| plan.price_minor.is_some() && plan.code != bought.as_str())
        .unwrap()
        .code
        .to_string();

    let free = account(catalog::FREE, None);
    assert_eq!(PlanState::of(&free, &catalog, now), PlanState::Free);
    assert_eq!(
        PlanState::of(&free, &catalog, now)
            .purchase_start(&bought, now)
            .unwrap(),
        now
    );

    let running = account(&bought, Some(jan(20, 0)));
    let state = PlanState::of(&running, &catalog, now);
    assert!(state.is_running());
    // The same plan again extends it from its end; another is refused while it runs.
    assert_eq!(state.purchase_start(&bought, now).unwrap(), jan(20, 0));
    assert!(matches!(
        state.purchase_start(&other, now),
        Err(AppError::Conflict(_))
    ));

    let ended = account(&bought, Some(jan(10, 0)));
    assert_eq!(PlanState::of(&ended, &catalog, now), PlanState::Free);
    let retired = account("retired", Some(jan(20, 0)));
    assert_eq!(PlanState::of(&retired, &catalog, now), PlanState::Free);
    // An admin's custom plan without an end runs, and a purchase replaces it from now.
    let custom = account(catalog::CUSTOM, None);
    assert!(PlanState::of(&custom, &catalog, now).is_running());
    assert_eq!(
        PlanState::of(&custom, &catalog, now)
            .purchase_start(&bought, now)
            .unwrap(),
        now
    );
}

#[test]
fn adjustments_share_one_bound_and_an_overflowing_credit_is_a_conflict_not_a_500() {
    assert!(check_adjustment(0).is_some());
    assert!(check_adjustment(MAX_ADJUSTMENT_MINOR).is_none());
    assert!(check_adjustment(-MAX_ADJUSTMENT_MINOR).is_none());
    assert!(check_adjustment(MAX_ADJUSTMENT_MINOR + 1).is_some());
    assert!(check_adjustment(i64::MIN).is_some());
    assert!(check_adjustment(i64::MAX).is_some());

    let f = fixture();
    // A top-up is not held to the adjustment cap (money received is never refused) …
    f.top_up(i64::MAX - 10);
    // … and the one credit that would overflow is a 409, with nothing written.
    let overflow = f.db.write(|conn| {
        move_wallet(
            conn,
            &f.ids,
            &f.scope,
            "topup",
            11,
            ("pay_2", None, None),
            jan(1, 1),
        )
    });
    match overflow {
        Err(err @ AppError::Conflict(_)) => assert_eq!(err.status(), 409),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // An adjustment above the balance cap is a 422 on `amount_minor`.
    let adjusted =
        f.db.write(|conn| adjust_wallet(conn, &f.ids, &f.scope, 1, "more", None, jan(1, 2)));
    assert!(
        matches!(adjusted, Err(AppError::Validation(_))),
        "{adjusted:?}"
    );
}
