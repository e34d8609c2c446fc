//! `crier doctor`: checks a database and says what is wrong with it.
//!
//! Each check reads only; none repairs anything. Features add their invariants here as one more
//! function in `CHECKS`: wallets (balance equals ledger), usage (counters equal reservations),
//! messages (none stuck past its lease; refunded exactly when it never reached a provider),
//! campaigns (reservation = messages + refunds; one message per recipient counted),
//! payments (a paid top-up credited exactly once; refund debits add up; no webhook event left
//! pending for long).

use rusqlite::Connection;

use crate::db::migrations;

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    /// `Ok(summary)` when the check passed, `Err(problems)` naming what is wrong otherwise;
    /// `None` when it was not run: it reads crier's own tables, and the database's migrations
    /// are not this binary's (pending, unknown or changed: the `migrations` check says which).
    pub outcome: Option<Result<String, Vec<String>>>,
}

impl Finding {
    /// Nothing wrong found: passed, or not run.
    pub fn passed(&self) -> bool {
        !matches!(self.outcome, Some(Err(_)))
    }
}

type Check = fn(&mut Connection) -> Result<String, Vec<String>>;

/// Each check, and whether it reads crier's own tables (so runs only on a migrated database).
const CHECKS: &[(&str, Check, Schema)] = &[
    ("integrity", check_integrity, Schema::Any),
    ("foreign_keys", check_foreign_keys, Schema::Any),
    ("migrations", check_migrations, Schema::Any),
    ("wallets", check_wallets, Schema::Current),
    ("usage", check_usage, Schema::Current),
    ("messages", check_messages, Schema::Current),
    ("campaigns", check_campaigns, Schema::Current),
    ("payments", check_payments, Schema::Current),
];

#[derive(PartialEq)]
enum Schema {
    Any,
    Current,
}

/// Runs every check, in order, and returns one finding each (those that read crier's own
/// tables only when the database's migrations are this binary's).
pub fn examine(conn: &mut Connection) -> Vec<Finding> {
    let current = migrations::status(conn).is_ok_and(|status| status.is_current());
    CHECKS
        .iter()
        .map(|(check, run, schema)| Finding {
            check,
            outcome: (current || *schema == Schema::Any).then(|| run(conn)),
        })
        .collect()
}

fn check_integrity(conn: &mut Connection) -> Result<String, Vec<String>> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(|err| vec![err.to_string()])?;
    let lines: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|err| vec![err.to_string()])?;
    if lines == ["ok"] {
        Ok("ok".to_owned())
    } else {
        Err(lines)
    }
}

fn check_foreign_keys(conn: &mut Connection) -> Result<String, Vec<String>> {
    let mut stmt = conn
        .prepare("PRAGMA foreign_key_check")
        .map_err(|err| vec![err.to_string()])?;
    let violations: Vec<String> = stmt
        .query_map([], |row| {
            let table: String = row.get(0)?;
            let rowid: Option<i64> = row.get(1)?;
            let parent: String = row.get(2)?;
            Ok(format!(
                "{table} row {} points to a missing {parent} row",
                rowid.map_or("?".to_owned(), |id| id.to_string())
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|err| vec![err.to_string()])?;
    if violations.is_empty() {
        Ok("no dangling references".to_owned())
    } else {
        Err(violations)
    }
}

fn check_migrations(conn: &mut Connection) -> Result<String, Vec<String>> {
    let status = migrations::status(conn).map_err(|err| vec![err])?;
    let mut problems = Vec::new();
    for name in &status.pending {
        problems.push(format!("{name} is not applied yet; run `crier migrate`"));
    }
    for name in &status.unknown {
        problems.push(format!(
            "{name} is applied but unknown to this binary; the database was migrated by a newer crier"
        ));
    }
    for name in &status.divergent {
        problems.push(format!(
            "{name} was applied from a different file than this binary carries"
        ));
    }
    if problems.is_empty() {
        Ok(format!("{} applied, none pending", status.applied.len()))
    } else {
        Err(problems)
    }
}

/// Every wallet balance equals the sum of its ledger and is not negative (docs/rules/billing.md).
fn check_wallets(conn: &mut Connection) -> Result<String, Vec<String>> {
    let discrepancies =
        crate::billing::store::wallet_discrepancies(conn).map_err(|err| vec![err.to_string()])?;
    if discrepancies.is_empty() {
        Ok("every balance equals its ledger".to_owned())
    } else {
        Err(discrepancies
            .into_iter()
            .map(|(workspace, balance, ledger)| {
                format!("workspace {workspace}: balance {balance} but its ledger sums to {ledger}")
            })
            .collect())
    }
}

/// Every usage counter equals what the live (unrefunded) reservations of its period took.
fn check_usage(conn: &mut Connection) -> Result<String, Vec<String>> {
    let discrepancies =
        crate::billing::store::usage_discrepancies(conn).map_err(|err| vec![err.to_string()])?;
    if discrepancies.is_empty() {
        Ok("every quota counter equals its reservations".to_owned())
    } else {
        Err(discrepancies
            .into_iter()
            .map(|d| {
                format!(
                    "workspace {} {}: {} is {} but reservations sum to {}",
                    d.workspace_id, d.channel, d.counter, d.counted, d.reserved
                )
            })
            .collect())
    }
}

/// No message is `sending` past its lease as the database itself knew time — the latest change
/// it recorded to any message (a dispatcher reclaims those within its poll; one left means none
/// runs) — and live messages are refunded exactly when they ended without a provider accepting
/// them: `failed` without an accepted attempt, or `cancelled`.
///
/// Leases past by the wall clock but not by the database's own time are information, not a
/// fault: crier is stopped (after a crash, say), or this is a copy taken while it was sending —
/// a server started on it re-sends those messages.
fn check_messages(conn: &mut Connection) -> Result<String, Vec<String>> {
    use crate::clock::{Clock, SystemClock, format_timestamp};
    let now = format_timestamp(SystemClock.now());
    let latest = crate::messages::store::latest_change(conn)
        .map_err(|err| vec![err.to_string()])?
        .map_or_else(|| now.clone(), |latest| latest.min(now.clone()));
    let shared: &Connection = conn;
    let count = |before: &str| {
        crate::messages::store::count_stuck(shared, before).map_err(|err| vec![err.to_string()])
    };
    let stuck = count(&latest)?;
    let idle = count(&now)?.saturating_sub(stuck);
    let mut problems = Vec::new();
    if stuck > 0 {
        problems.push(format!(
            "{stuck} message(s) still sending past their lease while the database was in use \
             (by {latest}); start the server to reclaim them"
        ));
    }
    let wrong =
        crate::messages::store::refund_discrepancies(conn).map_err(|err| vec![err.to_string()])?;
    problems.extend(wrong.into_iter().map(|(id, status, refunded)| {
        if refunded {
            format!("message {id} is {status} but was refunded")
        } else {
            format!("message {id} is {status} without a provider's acceptance but was not refunded")
        }
    }));
    match (problems.is_empty(), idle) {
        (true, 0) => Ok("none stuck; refunds match outcomes".to_owned()),
        (true, idle) => Ok(format!(
            "refunds match outcomes; {idle} message(s) sending past their lease by the clock but \
             not by the database's last change ({latest}): crier is stopped or this is a copy, \
             and a server started on it sends them again"
        )),
        (false, _) => Err(problems),
    }
}

/// Every launched campaign's money adds up — the ledger charged what it reserved, its pool and
/// its messages account for all of it, the pool's leftover was refunded when the fan-out ended
/// — its message count is the fan-out's, each message carries its reservation's figures, and
/// none can still be sent once the campaign is over.
fn check_campaigns(conn: &mut Connection) -> Result<String, Vec<String>> {
    let problems =
        crate::campaigns::store::discrepancies(conn).map_err(|err| vec![err.to_string()])?;
    if problems.is_empty() {
        Ok("every campaign's reservation equals its messages and refunds".to_owned())
    } else {
        Err(problems)
    }
}

/// Every top-up session was credited exactly when it succeeded, refund debits add up, and no
/// journalled webhook event has waited for the payments worker longer than
/// `PENDING_EVENT_LIMIT_HOURS` (the server is down, or a provider has not answered for hours).
fn check_payments(conn: &mut Connection) -> Result<String, Vec<String>> {
    let mut problems: Vec<String> = crate::payments::store::fulfilment_discrepancies(conn)
        .map_err(|err| vec![err.to_string()])?
        .into_iter()
        .map(|(id, problem)| format!("payment session {id}: {problem}"))
        .collect();
    problems.extend(stuck_webhook_events(conn).map_err(|err| vec![err.to_string()])?);
    if problems.is_empty() {
        Ok("every paid top-up credited once; no webhook event stuck".to_owned())
    } else {
        Err(problems)
    }
}

/// How long a journalled payment event may wait to be applied before `doctor` names it.
const PENDING_EVENT_LIMIT_HOURS: i64 = 1;

fn stuck_webhook_events(conn: &Connection) -> Result<Vec<String>, crate::error::AppError> {
    use crate::clock::{Clock, SystemClock, format_timestamp};
    let cutoff = SystemClock.now() - chrono::Duration::hours(PENDING_EVENT_LIMIT_HOURS);
    let stuck =
        crate::payments::store::webhook_events_pending_since(conn, &format_timestamp(cutoff))?;
    Ok(stuck
        .into_iter()
        .map(|event| {
            format!(
                "payment webhook event {} received {} is still pending after {} attempt(s){}; \
                 the server applies it while running and the provider answers",
                event.id,
                event.received_at,
                event.attempts,
                event
                    .last_error
                    .map_or(String::new(), |why| format!(" (last: {why})"))
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_migrated_database_passes_every_check() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::run(&mut conn).unwrap();
        let findings = examine(&mut conn);
        assert_eq!(findings.len(), CHECKS.len());
        assert!(findings.iter().all(Finding::passed), "{findings:?}");
    }

    #[test]
    fn every_check_runs_on_a_read_only_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.db");
        migrations::run(&mut Connection::open(&path).unwrap()).unwrap();
        let mut conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let findings = examine(&mut conn);
        assert!(findings.iter().all(Finding::passed), "{findings:?}");
    }

    #[test]
    fn an_unmigrated_database_fails_the_migration_check() {
        let mut conn = Connection::open_in_memory().unwrap();
        let findings = examine(&mut conn);
        let migrations = findings.iter().find(|f| f.check == "migrations").unwrap();
        let problems = migrations.outcome.clone().unwrap().unwrap_err();
        assert!(problems[0].contains("V1__foundation"), "{problems:?}");
        assert!(problems[0].contains("crier migrate"), "{problems:?}");
        // The checks of crier's own tables are not run (and not reported as passed).
        for check in ["wallets", "usage", "messages", "campaigns", "payments"] {
            let finding = findings.iter().find(|f| f.check == check).unwrap();
            assert_eq!(finding.outcome, None, "{check}");
        }
        // The checks any SQLite database answers are.
        let integrity = findings.iter().find(|f| f.check == "integrity").unwrap();
        assert_eq!(integrity.outcome, Some(Ok("ok".to_owned())));
    }

    #[test]
    fn a_balance_that_disagrees_with_its_ledger_is_named() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::run(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES ('wsp_1', 'A', 't');
             INSERT INTO wallet_ledger (id, workspace_id, kind, amount_minor, balance_after_minor,
                                        currency, reference, created_at)
             VALUES ('led_1', 'wsp_1', 'topup', 500, 500, 'XAF', 'pay_1', 't');",
        )
        .unwrap();
        let wallets = |conn: &mut Connection| {
            examine(conn)
                .into_iter()
                .find(|f| f.check == "wallets")
                .unwrap()
                .outcome
                .expect("run on a migrated database")
        };
        assert!(wallets(&mut conn).is_ok());
        // Tampering behind the ledger's back (its guard removed, as a hand edit could).
        conn.execute_batch(
            "DROP TRIGGER workspaces_balance_follows_ledger;
             UPDATE workspaces SET wallet_balance_minor = 900;",
        )
        .unwrap();
        assert_eq!(
            wallets(&mut conn),
            Err(vec![
                "workspace wsp_1: balance 900 but its ledger sums to 500".to_owned()
            ])
        );
    }

    #[test]
    fn a_webhook_event_pending_for_over_an_hour_is_named() {
        use crate::clock::{Clock, SystemClock, format_timestamp};
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::run(&mut conn).unwrap();
        let now = SystemClock.now();
        for (id, received_at) in [
            ("whk_old", now - chrono::Duration::hours(2)),
            ("whk_new", now - chrono::Duration::minutes(5)),
        ] {
            conn.execute(
                "INSERT INTO payment_webhook_events (id, provider, event_id, signature, payload,
                     outcome, attempts, last_error, next_attempt_at, received_at, updated_at)
                 VALUES (?1, 'stripe', ?1, 'valid', '{}', 'received', 3, 'stripe answered HTTP 503',
                     ?2, ?2, ?2)",
                [id, &format_timestamp(received_at)],
            )
            .unwrap();
        }
        let payments = examine(&mut conn)
            .into_iter()
            .find(|f| f.check == "payments")
            .unwrap()
            .outcome
            .expect("run on a migrated database");
        let problems = payments.unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("whk_old"), "{problems:?}");
        assert!(problems[0].contains("3 attempt(s)"), "{problems:?}");
        assert!(problems[0].contains("HTTP 503"), "{problems:?}");
        // Applied at last: nothing to report.
        conn.execute_batch("UPDATE payment_webhook_events SET outcome = 'applied'")
            .unwrap();
        let findings = examine(&mut conn);
        assert!(findings.iter().all(Finding::passed), "{findings:?}");
    }

    #[test]
    fn dangling_foreign_keys_are_named() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::run(&mut conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
             PRAGMA foreign_keys = OFF;
             INSERT INTO child (id, parent_id) VALUES (7, 42);",
        )
        .unwrap();
        let findings = examine(&mut conn);
        let fk = findings.iter().find(|f| f.check == "foreign_keys").unwrap();
        assert_eq!(
            fk.outcome,
            Some(Err(vec![
                "child row 7 points to a missing parent row".to_owned()
            ]))
        );
    }
}
