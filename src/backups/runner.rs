//! The backup runner: one background thread that takes the scheduled backups (see `backups`),
//! counts each outcome in `/metrics`, and stops promptly when the server shuts down (a backup in
//! progress finishes first: its copy is either complete and named, or removed).
//!
//! A failure is logged at `error` and counted, older backups stay, and nothing else in the
//! server is affected: `/readyz` judges only whether the database takes writes.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::app::App;
use crate::clock::Timestamp;
use crate::db::DbSettings;
use crate::error::StartupError;

/// A running backup runner; `stop` (or drop) ends it. Does nothing when backups are off.
pub struct BackupRunner {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the runner if `--backup-dir` is set.
pub fn start(app: Arc<App>) -> Result<BackupRunner, StartupError> {
    let Some(dir) = app.config.backups.dir.clone() else {
        return Ok(BackupRunner {
            stop: None,
            thread: None,
        });
    };
    // The newest backup already there sets the schedule and the metric; an unreadable or
    // missing directory counts as none (the first round creates it, or fails and says why).
    let newest = super::list(&dir)
        .ok()
        .and_then(|found| found.last().map(|(at, _)| *at));
    app.metrics.backups_enabled(newest.map(|at| at.timestamp()));
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = thread::Builder::new()
        .name("backups".to_owned())
        .spawn(move || run(&app, &dir, newest, &stopped))
        .map_err(|err| StartupError(format!("cannot start the backup thread: {err}")))?;
    Ok(BackupRunner {
        stop: Some(stop),
        thread: Some(thread),
    })
}

fn run(app: &App, dir: &Path, newest: Option<Timestamp>, stopped: &mpsc::Receiver<()>) {
    let settings = &app.config.backups;
    let db = DbSettings::from_config(&app.config);
    let mut due = super::next_due(newest, settings.interval, app.clock.now());
    loop {
        let now = app.clock.now();
        if now >= due {
            due = match super::take(&db, dir, settings.keep, now) {
                Ok(taken) => {
                    log::info!(
                        file:% = taken.path.display(), bytes = taken.summary.bytes,
                        tables = taken.summary.tables, deleted_old = taken.pruned.len();
                        "scheduled backup written and verified"
                    );
                    app.metrics
                        .record_backup_success(now.timestamp(), taken.summary.bytes);
                    super::next_due(Some(now), settings.interval, now)
                }
                Err(err) => {
                    log::error!(
                        dir:% = dir.display(), error:% = err;
                        "scheduled backup failed; older backups are kept"
                    );
                    app.metrics.record_backup_failure();
                    super::next_due(Some(now), settings.interval.min(super::RETRY_AFTER), now)
                }
            };
            continue;
        }
        let until_due = (due - now).to_std().unwrap_or(Duration::ZERO);
        match stopped.recv_timeout(until_due.min(settings.check_every)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl BackupRunner {
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackupRunner {
    fn drop(&mut self) {
        self.stop();
    }
}
