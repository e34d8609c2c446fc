//! The janitor: one background thread that deletes what has outlived its use, in small batches,
//! every `--janitor-interval-secs`: expired idempotency records, ended console sessions,
//! payment sessions left unpaid past their lifetime (which it expires), and webhook journal
//! events settled or rejected longer ago than `--webhook-retention-days`, and login-failure
//! counters past their expiry, activity log entries older than `--activity-retention-days`,
//! outgoing webhook events and settled deliveries older than 30 days (`webhooks::RETENTION`);
//! then the subject and bodies of finished messages older than `--message-retention-days`
//! (`messages::purge_expired_bodies`); last it gives the pages all of that freed back to the
//! filesystem (`db::vacuum::return_free_pages`).
//! It stops promptly when the server shuts down.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};

use crate::activity;
use crate::app::App;
use crate::auth;
use crate::clock::Timestamp;
use crate::db::{self, sweep_in_batches};
use crate::error::{AppError, StartupError};
use crate::idempotency;
use crate::messages;

/// Outgoing webhook rows deleted per kind and round at most.
const JANITOR_PRUNE_BATCH: usize = 5_000;

/// A running janitor; `stop` (or drop) ends it.
pub struct Janitor {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<Janitor, StartupError> {
    let (stop, stopped) = mpsc::channel::<()>();
    let interval = app.config.janitor_interval;
    let thread = thread::Builder::new()
        .name("janitor".to_owned())
        .spawn(move || {
            loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(err) = sweep(&app) {
                            log::warn!(error:% = err; "janitor sweep failed; retrying next round");
                        }
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        })
        .map_err(|err| StartupError(format!("cannot start the janitor thread: {err}")))?;
    Ok(Janitor {
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// One round of every sweep.
pub fn sweep(app: &App) -> Result<(), AppError> {
    let now = app.clock.now();
    // Each sweep runs even when another failed; the first failure is reported. A sweep answers
    // how many rows it deleted or changed.
    let sweeps: [(&str, Result<usize, AppError>); 9] = [
        (
            "idempotency_records",
            idempotency::sweep_expired(&app.db, now),
        ),
        ("sessions", auth::sweep_ended_sessions(&app.db, now)),
        (
            "expired_payment_sessions",
            crate::payments::flow::expire_sessions(app, now),
        ),
        (
            "webhook_events",
            crate::payments::flow::prune_webhook_journal(app, now),
        ),
        (
            "login_failures",
            auth::rate_limit::sweep_expired(&app.db, now),
        ),
        ("activity_entries", prune_activity(app, now)),
        (
            "outgoing_webhook_rows",
            app.db.write(|conn| {
                crate::webhooks::prune(conn, now - crate::webhooks::RETENTION, JANITOR_PRUNE_BATCH)
            }),
        ),
        ("purged_messages", purge_message_bodies(app, now)),
        // Last, so the pages every sweep above freed go back to the filesystem in this round.
        ("returned_pages", db::vacuum::return_free_pages(&app.db)),
    ];
    let mut swept = Vec::with_capacity(sweeps.len());
    let mut first_failure = None;
    for (name, outcome) in sweeps {
        match outcome {
            Ok(0) => {}
            Ok(rows) => swept.push(format!("{name}={rows}")),
            Err(err) => {
                first_failure.get_or_insert(err);
            }
        }
    }
    if !swept.is_empty() {
        log::info!(swept:% = swept.join(" "); "janitor swept expired rows");
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Drops the subject and bodies of finished messages past `--message-retention-days` (none when
/// it is 0); returns how many messages.
fn purge_message_bodies(app: &App, now: Timestamp) -> Result<usize, AppError> {
    match app.config.message_retention {
        Some(retention) => chrono::Duration::from_std(retention)
            .map_err(|_| AppError::internal("message retention out of range"))
            .and_then(|retention| messages::purge_expired_bodies(&app.db, retention, now)),
        None => Ok(0),
    }
}

/// Activity entries deleted per transaction: a backlog is worked off in small batches.
const ACTIVITY_PRUNE_BATCH: usize = 1_000;

/// Deletes activity log entries older than the retention; returns how many.
pub fn prune_activity(app: &App, now: Timestamp) -> Result<usize, AppError> {
    let retention = chrono::Duration::from_std(app.config.activity_retention)
        .map_err(|_| AppError::internal("activity retention out of range"))?;
    let cutoff = now - retention;
    sweep_in_batches(&app.db, ACTIVITY_PRUNE_BATCH, |conn, limit| {
        activity::delete_older_than(conn, cutoff, limit)
    })
}

impl Janitor {
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::open_session;
    use crate::clock::{Clock, format_timestamp};
    use crate::idempotency::store::{RecordScope, save_completed};
    use crate::users::{NewUser, create_user};
    use chrono::TimeZone;

    #[test]
    fn a_sweep_deletes_only_what_has_expired() {
        let dir = tempfile::tempdir().unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (app, clock) = App::for_tests(dir.path(), start, 3);
        let scope = |key: &str| RecordScope {
            workspace_id: "wsp_1".into(),
            actor_id: "usr_1".into(),
            key: key.into(),
        };
        app.db
            .write(|conn| {
                let user = NewUser {
                    email: "a@x.io".into(),
                    name: "A".into(),
                    password_hash: "x".into(),
                };
                let user = create_user(conn, &app.ids, user, false, start)?;
                open_session(conn, &app.ids, &user.id, None, start)?;
                let created = format_timestamp(start);
                let day_later = format_timestamp(start + chrono::Duration::hours(24));
                let week_later = format_timestamp(start + chrono::Duration::days(7));
                save_completed(
                    conn,
                    &scope("old"),
                    b"f",
                    (201, "application/json", b"{}"),
                    &created,
                    &day_later,
                )?;
                save_completed(
                    conn,
                    &scope("new"),
                    b"f",
                    (201, "application/json", b"{}"),
                    &created,
                    &week_later,
                )?;
                Ok(())
            })
            .unwrap();
        let count = |table: &str| -> i64 {
            app.db
                .read(|conn| {
                    Ok(conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
                })
                .unwrap()
        };

        clock.set(start + chrono::Duration::hours(23));
        sweep(&app).unwrap();
        assert_eq!((count("idempotency_records"), count("sessions")), (2, 1));

        clock.set(start + chrono::Duration::hours(25));
        sweep(&app).unwrap();
        assert_eq!(
            (count("idempotency_records"), count("sessions")),
            (1, 0),
            "at {}",
            format_timestamp(clock.now())
        );
    }
}
