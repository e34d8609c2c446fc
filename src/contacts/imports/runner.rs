//! The import runner: one background thread that works queued and running import jobs, oldest
//! first, one at a time. Started by `server.rs`, stopped on shutdown between two chunks (the
//! job stays `running` and resumes at the next start, from its `bytes_read`). A job that fails
//! for crier's own reasons `MAX_JOB_FAILURES` times in a row (a busy database is waited out
//! inside `apply` instead) is ended `failed`, so it cannot hold up the jobs behind it.
//!
//! Per chunk of `CHUNK_ROWS` rows: read and decode them from the spooled file and check each
//! one (no transaction held), then `Db::write_parts` applies them `PART_ROWS` at a time, each
//! part with the job's counters: one transaction for the chunk while nobody else writes, and
//! the writer free to a send between any two parts. A crash loses nothing and repeats nothing:
//! the job's `bytes_read` is committed with the rows before it, part by part.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::app::App;
use crate::contacts::imports::csvfile::Rows;
use crate::contacts::imports::store::{self, ImportRow};
use crate::contacts::imports::{
    self as imports, CHUNK_ROWS, ChunkOutcome, ImportStatus, PART_ROWS, PreparedRow, RowChecker,
};
use crate::error::{AppError, StartupError};
use crate::ids::ContactImportId;

/// How long the runner sleeps when no job waits (a new job wakes it at once).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// How long the runner waits before trying again after the database was busy.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// How many times in a row a job may fail for crier's own reasons (a busy database is waited
/// out instead) before it is ended `failed`, so that the jobs queued behind it go on.
const MAX_JOB_FAILURES: u32 = 3;

/// The running import thread; `stop` (or drop) ends it.
pub struct ImportRunner {
    app: Arc<App>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<ImportRunner, StartupError> {
    // Here, before HTTP starts, never on the runner's thread: a sweep running while an upload
    // is being spooled would delete that upload's file from under it.
    let dir = imports::imports_dir(&app.config.db_path);
    if let Err(err) = remove_leftovers(&app, &dir) {
        log::warn!(error:% = err; "could not clear left-over import files");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (thread_app, thread_stop) = (Arc::clone(&app), Arc::clone(&stop));
    let thread = thread::Builder::new()
        .name("imports".to_owned())
        .spawn(move || run(&thread_app, &thread_stop))
        .map_err(|err| StartupError(format!("cannot start the imports thread: {err}")))?;
    Ok(ImportRunner {
        app,
        stop,
        thread: Some(thread),
    })
}

impl ImportRunner {
    /// Stops after the chunk in hand; the job resumes at the next start.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.app.imports.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ImportRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(app: &App, stop: &AtomicBool) {
    let dir = imports::imports_dir(&app.config.db_path);
    // The job that failed last, and how many times in a row.
    let mut failing: Option<(ContactImportId, u32)> = None;
    while !stop.load(Ordering::SeqCst) {
        let seen = app.imports.generation();
        let job = match app.db.read(store::next_pending_import) {
            Ok(Some(job)) => job,
            Ok(None) => {
                app.imports.wait(seen, IDLE_POLL);
                continue;
            }
            Err(err) => {
                log::warn!(error:% = err; "cannot look for import jobs; retrying");
                app.imports.wait(seen, RETRY_AFTER);
                continue;
            }
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(app, stop, &dir, &job)
        }))
        .unwrap_or_else(|panic| {
            Err(AppError::Internal(format!(
                "the import panicked: {}",
                crate::error::panic_message(panic.as_ref())
            )))
        });
        let Err(err) = outcome else {
            failing = None;
            continue;
        };
        // A busy database or a full disk says nothing about the job: waited out, not counted.
        if let AppError::Unavailable {
            retry_after_secs, ..
        } = &err
        {
            log::warn!(import = job.id.as_str(), error:% = err; "import waits for the database");
            app.imports.wait(
                seen,
                Duration::from_secs(*retry_after_secs).max(RETRY_AFTER),
            );
            continue;
        }
        let failures = match &failing {
            Some((id, failures)) if *id == job.id => failures + 1,
            _ => 1,
        };
        if failures < MAX_JOB_FAILURES {
            log::warn!(import = job.id.as_str(), failures = failures, error:% = err; "import round failed; retrying");
            failing = Some((job.id.clone(), failures));
            app.imports.wait(seen, RETRY_AFTER * failures);
            continue;
        }
        // Not to be retried for ever: the jobs behind it (other workspaces' too) wait for it.
        log::error!(import = job.id.as_str(), failures = failures, error:% = err; "import failed again; ending it");
        failing = None;
        let why = format!(
            "stopped by an internal error after {failures} attempts (the server's log has it); \
             the rows applied before it are kept"
        );
        if let Err(err) = end_job(app, &dir, &job, ImportStatus::Failed, Some(why)) {
            log::warn!(import = job.id.as_str(), error:% = err; "cannot end the failing import");
            app.imports.wait(seen, RETRY_AFTER);
        }
    }
}

/// Deletes files in the imports directory that no queued or running job owns: uploads cut by
/// a crash before a job adopted them, and files of jobs that ended. Only at start-up, before
/// any upload can be under way.
fn remove_leftovers(app: &App, dir: &Path) -> Result<(), AppError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let owned = app.db.read(store::pending_spool_files)?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !owned.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Works one job until it ends, is cancelled, or the runner stops.
fn run_job(app: &App, stop: &AtomicBool, dir: &Path, job: &ImportRow) -> Result<(), AppError> {
    let Some(file) = job.spool_file.clone() else {
        return end_job(
            app,
            dir,
            job,
            ImportStatus::Failed,
            Some("the file is gone".into()),
        );
    };
    let path = dir.join(&file);
    if job.status == ImportStatus::Queued {
        app.db.write(|conn| {
            imports::set_status(conn, &job.id, ImportStatus::Running, None, app.clock.now())
        })?;
    }
    let definitions = app.db.read(|conn| imports::definitions(conn, job))?;
    let checker = RowChecker::new(job, definitions, &app.config.default_country)?;
    let offset = u64::try_from(job.bytes_read).unwrap_or(0);
    let rows = match Rows::open(&path, offset, job.delimiter, job.charset) {
        Ok(rows) => rows,
        Err(err) => {
            let why = format!("the spooled file cannot be read: {err}");
            return end_job(app, dir, job, ImportStatus::Failed, Some(why));
        }
    };
    // Reading and checking rows (the CPU-heavy part: decoding, phone numbers) runs on its own
    // thread one chunk ahead of the writes, so the two overlap on two cores. The channel holds
    // nothing: the reader hands over the chunk it has checked when the writer is done with the
    // one before, so two chunks are in memory at most (not three; each is a few MB).
    let (chunks, ready) = mpsc::sync_channel::<Chunk>(0);
    let first_row = job.rows_read;
    thread::scope(|scope| {
        scope.spawn(move || read_chunks(rows, &checker, first_row, &chunks));
        for chunk in ready {
            if stop.load(Ordering::SeqCst) {
                // Dropping `ready` ends the reader at its next chunk.
                return Ok(());
            }
            let parts = match chunk {
                Chunk::Rows(parts) => parts,
                Chunk::End => return end_job(app, dir, job, ImportStatus::Completed, None),
                Chunk::Broken(why) => {
                    return end_job(app, dir, job, ImportStatus::Failed, Some(why));
                }
            };
            if apply(app, job, &parts)? == ChunkOutcome::Cancelled {
                let _ = std::fs::remove_file(&path);
                return Ok(());
            }
        }
        Ok(())
    })
}

/// Up to `PART_ROWS` checked rows, and where they lie in the file.
struct Part {
    rows: Vec<PreparedRow>,
    /// The file offset of the first row's start, and just after the last row.
    start_offset: u64,
    end_offset: u64,
}

/// What the reading thread hands the writer.
enum Chunk {
    /// Up to `CHUNK_ROWS` checked rows, in parts, in file order.
    Rows(Vec<Part>),
    /// The file has no more rows.
    End,
    /// The file cannot be read on (why).
    Broken(String),
}

/// Reads and checks rows, a chunk at a time, until the file ends or the writer hangs up.
fn read_chunks(mut rows: Rows, checker: &RowChecker, first_row: i64, chunks: &SyncSender<Chunk>) {
    let mut row_number = first_row;
    loop {
        let mut parts: Vec<Part> = Vec::with_capacity(CHUNK_ROWS.div_ceil(PART_ROWS));
        let mut read = 0;
        let mut start_offset = rows.offset();
        let mut part = Vec::with_capacity(PART_ROWS);
        while read < CHUNK_ROWS {
            match rows.next_row() {
                Ok(Some((fields, _))) => {
                    row_number += 1;
                    read += 1;
                    part.push(checker.check(row_number, fields));
                    if part.len() == PART_ROWS {
                        let end_offset = rows.offset();
                        let full = std::mem::replace(&mut part, Vec::with_capacity(PART_ROWS));
                        parts.push(Part {
                            rows: full,
                            start_offset,
                            end_offset,
                        });
                        start_offset = end_offset;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    let why = format!("the file is not readable CSV after row {row_number}: {err}");
                    let _ = chunks.send(Chunk::Broken(why));
                    return;
                }
            }
        }
        if !part.is_empty() {
            parts.push(Part {
                rows: part,
                start_offset,
                end_offset: rows.offset(),
            });
        }
        let chunk = if parts.is_empty() {
            Chunk::End
        } else {
            Chunk::Rows(parts)
        };
        let last = matches!(chunk, Chunk::End);
        if chunks.send(chunk).is_err() || last {
            return;
        }
    }
}

/// Applies a chunk part by part, retrying while the database is busy (a send holding the
/// writer long); a retry skips the parts already committed (the job's `bytes_read` is past
/// them).
fn apply(app: &App, job: &ImportRow, parts: &[Part]) -> Result<ChunkOutcome, AppError> {
    loop {
        let mut outcome = ChunkOutcome::Applied;
        let result = app.db.write_parts(parts, |conn, part| {
            let (applied, _) = imports::apply_chunk(
                conn,
                &app.ids,
                &app.unsubscribe_key,
                &job.id,
                &part.rows,
                (part.start_offset, part.end_offset),
                app.clock.now(),
            )?;
            outcome = applied;
            Ok(applied == ChunkOutcome::Applied)
        });
        match result {
            Err(AppError::Unavailable { .. }) => thread::sleep(RETRY_AFTER),
            Err(err) => return Err(err),
            Ok(()) => return Ok(outcome),
        }
    }
}

fn end_job(
    app: &App,
    dir: &Path,
    job: &ImportRow,
    status: ImportStatus,
    error: Option<String>,
) -> Result<(), AppError> {
    if let Some(why) = &error {
        log::warn!(import = job.id.as_str(), error = why.as_str(); "import failed");
    }
    app.db
        .write(|conn| imports::set_status(conn, &job.id, status, error, app.clock.now()))?;
    if let Some(file) = &job.spool_file {
        let path: PathBuf = dir.join(file);
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
