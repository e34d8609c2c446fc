//! The background checkpointer: copies committed WAL frames back into the database file on a
//! thread of its own while commits come, so that the writer's own checkpoint finds little left
//! to copy.
//!
//! The writer's checkpoint stays what bounds the WAL: the commit that takes the WAL past
//! `--db-checkpoint-pages` copies what is left, and only a checkpoint that has copied every frame
//! lets the next transaction start the WAL over (docs/design/storage.md, "Checkpoints"). Done
//! there alone, that copy of up to a thousand pages and the `fsync` of the database file stall
//! every send waiting on that commit: the longest waits of a steady load. Here the copying
//! happens meanwhile, at most once every `GAP` (longer on a slow disk: `REST_PER_PASS`), and
//! never when nothing was committed.
//!
//! A pass is SQLite's `PASSIVE` checkpoint: it copies what no reader still needs, never waits for
//! a lock, never blocks the writer. While it runs, the writer's own checkpoint finds the
//! checkpoint lock taken and skips (its next commit tries again). It runs on an idle connection
//! of the read pool (`Db::checkpoint_passively`; none idle: again after `GAP`, no read waits for
//! it): one of its own would hold a copy of the schema (~0.4 MB of idle RSS) for a statement that
//! needs nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::error::AppError;

/// The shortest time between two passes: under a steady load a pass copies what 10 ms of
/// commits wrote (a few hundred pages at the send path's peak) and the database file is
/// `fsync`ed at most 100 times a second on top of the commits' own.
const GAP: Duration = Duration::from_millis(10);

/// The rest after a pass is also at least this many times the pass's own length: on a disk
/// whose `fsync` is slow (a network volume, a spinning disk) the passes take at most a fifth of
/// its time, and the commits' own `fsync`s keep the rest.
const REST_PER_PASS: u32 = 4;

/// How long the thread rests after a pass that failed (a full disk, an I/O error: the writer
/// meets them too), so the log gets one warning a second, not a hundred.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// What the writer and the checkpointer's thread share.
pub(super) struct Backlog {
    /// Commits have happened since the thread last started a pass.
    pending: AtomicBool,
    stop: AtomicBool,
    /// Passes done, for tests.
    passes: AtomicU64,
    thread: Thread,
}

impl Backlog {
    /// Called after each commit that changed a row (the dispatchers' empty claims at idle do
    /// not ring): wakes the thread unless a wake-up is already pending.
    pub(super) fn committed(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

/// The running checkpointer; `stop` (or drop) ends it after the pass in hand.
pub struct Checkpointer {
    backlog: Arc<Backlog>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, whose passes call `pass` (`Ok(false)`: it could not run now, try
    /// again). The caller hands the returned `Backlog` to the writer, which rings it after each
    /// commit.
    pub(super) fn start(
        pass: impl Fn() -> Result<bool, AppError> + Send + 'static,
    ) -> std::io::Result<(Checkpointer, Arc<Backlog>)> {
        let (handed, taken) = std::sync::mpsc::channel::<Arc<Backlog>>();
        let thread = thread::Builder::new()
            .name("checkpointer".to_owned())
            .spawn(move || {
                if let Ok(backlog) = taken.recv() {
                    run(&pass, &backlog);
                }
            })?;
        let backlog = Arc::new(Backlog {
            pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            passes: AtomicU64::new(0),
            thread: thread.thread().clone(),
        });
        // The thread has not ended: it waits for this.
        let _ = handed.send(Arc::clone(&backlog));
        let checkpointer = Checkpointer {
            backlog: Arc::clone(&backlog),
            thread: Some(thread),
        };
        Ok((checkpointer, backlog))
    }

    /// Ends the thread: after the pass in hand, if one is.
    pub fn stop(&mut self) {
        self.backlog.stop.store(true, Ordering::Release);
        self.backlog.thread.unpark();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the checkpointer's thread ended in a panic");
        }
    }

    #[cfg(test)]
    pub(super) fn passes(&self) -> u64 {
        self.backlog.passes.load(Ordering::Acquire)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(pass: &dyn Fn() -> Result<bool, AppError>, backlog: &Backlog) {
    loop {
        // `park` may return without an `unpark`; the flags say what happened.
        while !backlog.pending.swap(false, Ordering::AcqRel) {
            if backlog.stop.load(Ordering::Acquire) {
                return;
            }
            thread::park();
        }
        if backlog.stop.load(Ordering::Acquire) {
            return;
        }
        let started = Instant::now();
        let outcome = pass();
        let pause = match outcome {
            Ok(true) => {
                backlog.passes.fetch_add(1, Ordering::AcqRel);
                GAP.max(started.elapsed() * REST_PER_PASS)
            }
            Ok(false) => {
                // Every pooled connection was busy: again after a rest.
                backlog.pending.store(true, Ordering::Release);
                GAP
            }
            Err(err) => {
                log::warn!("background checkpoint failed: {err}");
                AFTER_FAILURE
            }
        };
        rest(backlog, pause);
    }
}

/// Waits `pause` (commits meanwhile wait for the next pass), or until told to stop.
fn rest(backlog: &Backlog, pause: Duration) {
    let until = Instant::now() + pause;
    while !backlog.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        thread::park_timeout(until - now);
    }
}
