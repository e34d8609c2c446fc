//! The janitor: one background thread that deletes what has outlived its use, in small batches,
//! once a minute — expired idempotency records (and, as features add them, other expired rows).
//! It stops promptly when the server shuts down.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::app::App;
use crate::error::{AppError, StartupError};
use crate::idempotency;

const INTERVAL: Duration = Duration::from_secs(60);

/// A running janitor; `stop` (or drop) ends it.
pub struct Janitor {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<Janitor, StartupError> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = thread::Builder::new()
        .name("janitor".to_owned())
        .spawn(move || {
            loop {
                match stopped.recv_timeout(INTERVAL) {
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
    let idempotency_records = idempotency::sweep_expired(&app.db, now)?;
    if idempotency_records > 0 {
        log::info!(idempotency_records = idempotency_records; "janitor swept expired rows");
    }
    Ok(())
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
