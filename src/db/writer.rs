//! The group-committing writer behind `Db::write`.
//!
//! One dedicated connection does every write. A caller takes it, opens a `BEGIN IMMEDIATE`
//! transaction unless one is already open, and runs its closure inside a `SAVEPOINT`: an `Err`
//! (or a panic) rolls back only that closure's work. Then, if nobody else is queueing for the
//! connection (or the batch is full), the caller commits the transaction for everyone in it;
//! otherwise it leaves the transaction open for the next caller and waits. Every caller returns
//! only after the transaction holding its work has committed, so `Ok` still means durable.
//!
//! Under load, callers pile up while a commit (an fsync with `synchronous=FULL`) runs, and the
//! next transaction carries all of them: one fsync for many requests, and callers queue on a
//! mutex instead of sleeping in SQLite's busy handler (whose backoff made tail latencies of
//! seconds). Without contention it is one caller per transaction, as before.
//!
//! A caller may instead hand a closure that owns what it uses to the job thread (`submit_then`,
//! served by `serve_jobs`): that thread takes the connection like any caller, runs every job
//! waiting back to back, so the connection does not pass from thread to thread between them
//! (under load each hand-over, a wake-up of the next thread, cost more than the work it let
//! through), and delivers each job's outcome once the transaction has finished.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::checkpoints::Backlog;
use super::run_cached;
use crate::error::AppError;

/// Most closures one transaction carries before it commits regardless of who is waiting.
const MAX_BATCH: usize = 256;

/// Most jobs the job thread runs in one transaction. The first job of a batch is answered only
/// when the last has run and the batch has committed, so this bounds the longest wait: under a
/// 256-connection load the batches settled into a rotation of one of up to 256 jobs (~20 ms
/// of work and ~5 ms of commit on the 2-core machine) and a few small ones, and the jobs at the
/// head of the large ones made the tail (docs/performance-log.md, 2026-12-05). At 128 at least
/// two batches are in rotation under that load; below that, the commits' own cost shows
/// (at 16: fewer sends a second).
const JOB_BATCH: usize = 128;

pub struct Writer {
    session: Mutex<Session>,
    /// Callers between announcing themselves and taking `session`.
    queued: AtomicUsize,
    outcomes: Mutex<Outcomes>,
    finished: Condvar,
    /// Rung when a caller takes the connection while the job thread is giving way to them.
    handed: Condvar,
    /// The background checkpointer's, told of each commit (`Db::start_checkpointer`).
    backlog: OnceLock<Arc<Backlog>>,
}

struct Session {
    conn: Connection,
    /// The open transaction, if any.
    open: Option<Open>,
    next_epoch: u64,
    /// How many times a caller has taken the connection (`join`), and whether the job thread is
    /// waiting for that to change (`serve_jobs`, giving way to the callers queueing).
    joins: u64,
    yielding: bool,
    /// When a `BEGIN IMMEDIATE` last gave up on the write lock (another process held it past
    /// the busy timeout): for a busy timeout after that, callers try for the lock without
    /// waiting, instead of each waiting a busy timeout of its own in turn.
    lock_refused_at: Option<Instant>,
    /// The connection's `busy_timeout`.
    busy_timeout: Duration,
    /// The connection's count of rows changed (`total_changes`) at the last commit that rang
    /// the checkpointer: a commit that changed no row wrote nothing to copy.
    changes_rung: u64,
}

/// The shared transaction while it is open.
#[derive(Clone, Copy)]
struct Open {
    epoch: u64,
    /// How many closures it carries (for `MAX_BATCH`).
    closures: usize,
    /// How many callers will read its outcome: one per caller of `join`, whatever number of
    /// closures each runs (the job thread answers its jobs itself).
    readers: usize,
}

/// Why a transaction did not commit, and the `Retry-After` when a retry may cure it (a full disk,
/// an I/O error: see `error::retry_after_secs`).
type Failure = (String, Option<u64>);

#[derive(Default)]
struct Outcomes {
    /// Every transaction up to this number has finished (committed or failed).
    finished_up_to: u64,
    /// Transactions whose commit failed: why, and how many of their callers have yet to read
    /// it (the entry goes when the last one has, so no caller can miss its failure).
    failed: std::collections::HashMap<u64, (Failure, usize)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    pub fn new(conn: Connection) -> Writer {
        let busy_timeout = conn
            .query_row("PRAGMA busy_timeout", [], |row| row.get::<_, i64>(0))
            .map_or(Duration::ZERO, |ms| {
                Duration::from_millis(ms.unsigned_abs())
            });
        Writer {
            session: Mutex::new(Session {
                conn,
                open: None,
                next_epoch: 1,
                joins: 0,
                yielding: false,
                lock_refused_at: None,
                busy_timeout,
                changes_rung: 0,
            }),
            queued: AtomicUsize::new(0),
            outcomes: Mutex::new(Outcomes::default()),
            finished: Condvar::new(),
            handed: Condvar::new(),
            backlog: OnceLock::new(),
        }
    }

    /// From now on each commit rings `backlog` (the background checkpointer's). Once only.
    pub(super) fn ring_after_commits(&self, backlog: Arc<Backlog>) -> Result<(), Arc<Backlog>> {
        self.backlog.set(backlog)
    }

    /// Runs `body` in the shared write transaction; see the module documentation.
    pub fn write<T>(
        &self,
        body: impl FnOnce(&Connection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let (result, committed) = self.in_transaction(|conn| run_in_savepoint(conn, body))?;
        match result {
            Err(panic) => panic::resume_unwind(panic),
            Ok(Err(err)) => Err(err),
            Ok(Ok(value)) => committed.map(|()| value),
        }
    }

    /// Runs `body` once per item, each in its own savepoint, all in the shared write
    /// transaction: an item's `Err` rolls back only that item's work, and the kept work of
    /// every item commits together (one commit for the lot). Returns each item's result, or
    /// `Err` when the transaction did not commit (then nothing was kept). A panic rolls back its
    /// item, skips the items after it, and is resumed once the others' work has committed.
    pub fn write_each<I, T>(
        &self,
        items: impl IntoIterator<Item = I>,
        mut body: impl FnMut(&Connection, I) -> Result<T, AppError>,
    ) -> Result<Vec<Result<T, AppError>>, AppError> {
        let ((results, panicked), committed) = self.in_transaction(|conn| {
            let mut results = Vec::new();
            for item in items {
                let (result, intact) = run_in_savepoint(conn, |conn| body(conn, item));
                match result {
                    Ok(result) => results.push(result),
                    Err(panic) => return ((results, Some(panic)), intact),
                }
                if !intact {
                    return ((results, None), false);
                }
            }
            ((results, None), true)
        })?;
        if let Some(panic) = panicked {
            panic::resume_unwind(panic);
        }
        committed.map(|()| results)
    }

    /// Takes the connection, joins (or opens) the shared transaction, runs `work` (which
    /// returns its outcome and whether its savepoints closed cleanly), commits when nobody else
    /// is queueing, and waits for the commit. Returns the outcome and whether it committed;
    /// `Err` when no transaction could be opened (then `work` did not run).
    fn in_transaction<R>(
        &self,
        work: impl FnOnce(&Connection) -> (R, bool),
    ) -> Result<(R, Result<(), AppError>), AppError> {
        let (mut session, epoch, members) = self.join()?;
        let (outcome, savepoint_intact) = work(&session.conn);
        let commit_now =
            !savepoint_intact || members >= MAX_BATCH || self.queued.load(Ordering::SeqCst) == 0;
        if commit_now {
            self.finish(&mut session, savepoint_intact);
        }
        drop(session);
        Ok((outcome, self.wait_for(epoch)))
    }

    /// Runs `body` once per part, each in its own savepoint, taking the connection anew for
    /// each part, for a long series of writes (an import) that must not hold the writer for
    /// long: between two parts every caller queueing for the connection gets it. The parts go
    /// into one transaction, committed once after the last part, as long as nobody else wants
    /// the writer; when someone does, the transaction is handed to them after the part in
    /// hand (they commit it with their own work, as any group commit) and the next part opens
    /// a new one. So each part must leave the database consistent on its own: a transaction
    /// may end after any of them.
    ///
    /// `body` returns whether to go on; an `Err` (or a panic) rolls back that part's work only
    /// and stops, the parts before it being kept. Returns once everything kept has committed:
    /// `body`'s error, or `Err` when a transaction holding a part failed to commit (then the
    /// parts that committed cannot be told from those that did not: the caller reads back what
    /// the database holds).
    pub fn write_parts<I>(
        &self,
        parts: impl IntoIterator<Item = I>,
        mut body: impl FnMut(&Connection, I) -> Result<bool, AppError>,
    ) -> Result<(), AppError> {
        // The transaction each part ran in, one entry per part, to wait for at the end.
        let mut joined: Vec<u64> = Vec::new();
        let mut stopped: Result<(), AppError> = Ok(());
        let mut panicked = None;
        let mut parts = parts.into_iter().peekable();
        while let Some(part) = parts.next() {
            let (mut session, epoch, members) = match self.join() {
                Ok(joined) => joined,
                Err(err) => {
                    stopped = Err(err);
                    break;
                }
            };
            joined.push(epoch);
            let (result, intact) = run_in_savepoint(&session.conn, |conn| body(conn, part));
            let go_on = intact && matches!(result, Ok(Ok(true)));
            let others = self.queued.load(Ordering::SeqCst) > 0;
            let last = !go_on || parts.peek().is_none();
            if !intact || members >= MAX_BATCH || (last && !others) {
                self.finish(&mut session, intact);
            }
            // Otherwise the transaction stays open: for the callers queueing, who commit it, or
            // for the next part when nobody is.
            drop(session);
            if others && go_on {
                // Let them in before the next part: the lock is not handed over by itself, and
                // this thread would usually take it back first.
                joined.pop();
                if let Err(err) = self.wait_for(epoch) {
                    stopped = Err(err);
                    break;
                }
            }
            match result {
                Err(panic) => {
                    panicked = Some(panic);
                    break;
                }
                Ok(Err(err)) => {
                    stopped = Err(err);
                    break;
                }
                Ok(Ok(_)) if !go_on => break,
                Ok(Ok(_)) => {}
            }
        }
        let mut committed = Ok(());
        for epoch in joined {
            if let Err(err) = self.wait_for(epoch) {
                committed = Err(err);
            }
        }
        if let Some(panic) = panicked {
            panic::resume_unwind(panic);
        }
        stopped.and(committed)
    }

    /// Takes the connection and joins the open transaction, or opens one: the lock, the
    /// transaction's number and how many closures it now carries (this one included). `Err`
    /// when no transaction could be opened.
    fn join(&self) -> Result<(MutexGuard<'_, Session>, u64, usize), AppError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut session = lock(&self.session);
        self.queued.fetch_sub(1, Ordering::SeqCst);
        session.joins += 1;
        if session.yielding {
            self.handed.notify_all();
        }
        let open = match session.open {
            Some(open) => open,
            None => {
                // A connection left inside a transaction (a ROLLBACK that failed) is reset first.
                if !session.conn.is_autocommit() {
                    session.conn.execute_batch("ROLLBACK")?;
                }
                // Alone at the start of a transaction: a failure here concerns only this caller.
                begin(&mut session)?;
                let epoch = session.next_epoch;
                session.next_epoch += 1;
                Open {
                    epoch,
                    closures: 0,
                    readers: 0,
                }
            }
        };
        let open = Open {
            closures: open.closures + 1,
            readers: open.readers + 1,
            ..open
        };
        session.open = Some(open);
        Ok((session, open.epoch, open.closures))
    }

    /// Commits (or, when the transaction cannot be trusted, rolls back) the open transaction and
    /// tells everyone in it.
    fn finish(&self, session: &mut Session, intact: bool) {
        let Some(Open { epoch, readers, .. }) = session.open else {
            return;
        };
        let failure = if session.conn.is_autocommit() {
            // A closure ended the transaction itself: what was kept is unknown.
            Some(("the transaction ended inside a closure".to_owned(), None))
        } else if intact {
            match run_cached(&session.conn, "COMMIT") {
                Ok(()) => {
                    let changes = session.conn.total_changes();
                    if let Some(backlog) = self.backlog.get()
                        && changes != session.changes_rung
                    {
                        session.changes_rung = changes;
                        backlog.committed();
                    }
                    None
                }
                Err(err) => Some((
                    format!("commit failed: {err}"),
                    crate::error::retry_after_secs(&err),
                )),
            }
        } else {
            Some(("a savepoint could not be rolled back".to_owned(), None))
        };
        if failure.is_some() && !session.conn.is_autocommit() {
            let _ = session.conn.execute_batch("ROLLBACK");
        }
        session.open = None;
        let mut outcomes = lock(&self.outcomes);
        outcomes.finished_up_to = epoch;
        if let Some(why) = failure {
            outcomes.failed.insert(epoch, (why, readers));
        }
        self.finished.notify_all();
    }

    /// Waits until transaction `epoch` has finished; `Err` if it did not commit.
    fn wait_for(&self, epoch: u64) -> Result<(), AppError> {
        match self.failure_of(epoch) {
            None => Ok(()),
            Some(failure) => Err(failure_error(&failure)),
        }
    }

    /// Waits until transaction `epoch` has finished; why it did not commit, if it did not.
    /// Each reader the transaction counted calls this once.
    fn failure_of(&self, epoch: u64) -> Option<Failure> {
        let mut outcomes = lock(&self.outcomes);
        while outcomes.finished_up_to < epoch {
            outcomes = self
                .finished
                .wait(outcomes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let (failure, unread) = outcomes.failed.get_mut(&epoch)?;
        let failure = failure.clone();
        *unread -= 1;
        if *unread == 0 {
            outcomes.failed.remove(&epoch);
        }
        Some(failure)
    }

    /// Hands `body` to the job thread (`serve_jobs`, reached through `jobs`) and waits for it
    /// to have run and committed: `write` without the hand-over of the connection from thread
    /// to thread, for a closure that owns what it uses. Same outcomes as `write`; 503 when the
    /// job thread has stopped. (The server's callers do not wait: `submit_then`.)
    #[cfg(test)]
    pub fn submit<C, T>(
        &self,
        jobs: &mpsc::Sender<Job<C>>,
        body: impl FnOnce(&C, &Connection) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError>
    where
        T: Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel::<Caught<T>>(1);
        // The caller waits for its answer; gone only if its thread is.
        if self
            .submit_then(jobs, body, move |_, caught| drop(reply.send(caught)))
            .is_err()
        {
            return Err(stopped());
        }
        match answer.recv().map_err(|_| stopped())? {
            Err(panic) => panic::resume_unwind(panic),
            Ok(outcome) => outcome,
        }
    }

    /// Hands `body` to the job thread without waiting: `deliver` is called there with the outcome once
    /// the transaction holding `body`'s work has finished — `Ok` only once it has committed,
    /// the panic caught when `body` panicked (its work rolled back). When the job thread has
    /// stopped, the job comes back (`deliver` not called yet), for `refuse`.
    pub fn submit_then<C, T>(
        &self,
        jobs: &mpsc::Sender<Job<C>>,
        body: impl FnOnce(&C, &Connection) -> Result<T, AppError> + Send + 'static,
        deliver: impl FnOnce(&C, Caught<T>) + Send + 'static,
    ) -> Result<(), Job<C>>
    where
        T: Send + 'static,
    {
        let job: Job<C> = Box::new(move |context, opened| {
            let (result, intact) = match opened {
                Ok(conn) => run_in_savepoint(conn, |conn| body(context, conn)),
                Err(err) => (Ok(Err(err)), true),
            };
            Ran {
                intact,
                answer: Box::new(move |context, committed| {
                    let outcome = match result {
                        Ok(Ok(value)) => Ok(committed.map(|()| value)),
                        other => other,
                    };
                    deliver(context, outcome);
                }),
            }
        });
        jobs.send(job).map_err(|mpsc::SendError(job)| job)
    }

    /// Answers a job the job thread never took: its caller is told the thread has stopped.
    pub fn refuse<C>(job: Job<C>, context: &C) {
        answer_unrun(job, context, stopped());
    }

    /// The job thread's loop, until every sender of `jobs` is gone: takes the connection,
    /// runs the jobs waiting back to back in the shared transaction (each in its own
    /// savepoint), commits when no job is left (or the batch is full), and answers them. When
    /// callers of `write` were queueing for the connection meanwhile, it waits for one of them
    /// to have taken it before taking it again: the lock is not handed over by itself, and this
    /// thread, never waiting between two batches under load, would always take it back first.
    pub fn serve_jobs<C>(&self, context: &C, jobs: &mpsc::Receiver<Job<C>>) {
        // The transaction this thread has joined and not yet read the outcome of.
        let joined = std::cell::Cell::new(None);
        while let Ok(first) = jobs.recv() {
            let served = panic::catch_unwind(AssertUnwindSafe(|| {
                self.serve_batch(context, first, jobs, &joined);
            }));
            if served.is_err() {
                // A bug outside the jobs' own closures (whose panics their savepoints catch):
                // the batch is rolled back, so no caller that was not answered `Ok` has work
                // committed (theirs get 503, their answers having been dropped).
                log::error!("the writer's job thread panicked; its batch is rolled back");
                if let Some(epoch) = joined.take() {
                    let mut session = lock(&self.session);
                    if session.open.is_some_and(|open| open.epoch == epoch) {
                        self.finish(&mut session, false);
                    }
                    drop(session);
                    let _ = self.failure_of(epoch);
                }
            }
        }
    }

    /// One batch of `serve_jobs`, from `first`; `joined` holds the transaction's number from
    /// the moment this thread is counted in it until it has read its outcome.
    fn serve_batch<C>(
        &self,
        context: &C,
        first: Job<C>,
        jobs: &mpsc::Receiver<Job<C>>,
        joined: &std::cell::Cell<Option<u64>>,
    ) {
        let (mut session, epoch, _) = match self.join() {
            Ok(joined) => joined,
            Err(err) => return answer_unrun(first, context, err),
        };
        joined.set(Some(epoch));
        let mut answers = Vec::new();
        let mut intact = true;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            let ran = job(context, Ok(&session.conn));
            answers.push(ran.answer);
            intact = ran.intact;
            if !intact {
                break;
            }
            // Room for one more job in this batch, and in the transaction (which counts the
            // closures of everyone in it).
            let Some(open) = session
                .open
                .as_mut()
                .filter(|open| answers.len() < JOB_BATCH && open.closures < MAX_BATCH)
            else {
                break;
            };
            next = jobs.try_recv().ok();
            if next.is_some() {
                open.closures += 1;
            }
        }
        self.finish(&mut session, intact);
        let joins = session.joins;
        drop(session);
        let failure = self.failure_of(epoch);
        joined.set(None);
        for answer in answers {
            let committed = failure
                .as_ref()
                .map_or(Ok(()), |failure| Err(failure_error(failure)));
            // An answer runs its caller's `deliver`: one that panics must not keep the answers
            // after it from their callers, whose work has committed.
            let answered = panic::catch_unwind(AssertUnwindSafe(|| answer(context, committed)));
            if answered.is_err() {
                log::error!("answering a job of the writer's job thread panicked");
            }
        }
        if self.queued.load(Ordering::SeqCst) > 0 {
            let mut session = lock(&self.session);
            session.yielding = true;
            let mut session = self
                .handed
                .wait_while(session, |session| {
                    session.joins == joins && self.queued.load(Ordering::SeqCst) > 0
                })
                .unwrap_or_else(PoisonError::into_inner);
            session.yielding = false;
        }
    }
}

/// Answers a job that never got the connection with `err` (its closure is not run).
fn answer_unrun<C>(job: Job<C>, context: &C, err: AppError) {
    let ran = job(context, Err(err));
    (ran.answer)(context, Ok(()));
}

/// The error a caller of the job thread gets once it has stopped.
fn stopped() -> AppError {
    AppError::Unavailable {
        retry_after_secs: 1,
        detail: "the writer has stopped".to_owned(),
    }
}

/// The error a caller gets for a transaction that did not commit.
fn failure_error((why, retry): &Failure) -> AppError {
    match retry {
        Some(retry_after_secs) => AppError::Unavailable {
            retry_after_secs: *retry_after_secs,
            detail: why.clone(),
        },
        None => AppError::internal(why.clone()),
    }
}

/// A closure for the job thread, as `submit_then` wraps it: run with the thread's context on the
/// connection inside the shared transaction, or told why no transaction could be opened.
pub type Job<C> = Box<dyn FnOnce(&C, Result<&Connection, AppError>) -> Ran<C> + Send>;

/// What running a `Job` left: whether its savepoint closed cleanly, and how to answer its
/// caller once the transaction has finished (`Err` when it did not commit).
pub struct Ran<C> {
    intact: bool,
    answer: AnswerJob<C>,
}

/// How a job's caller is answered, given the context and whether the transaction committed.
type AnswerJob<C> = Box<dyn FnOnce(&C, Result<(), AppError>) + Send>;

/// `BEGIN IMMEDIATE` on the session's connection. When another process holds the write lock
/// (an `sqlite3` shell, a maintenance command), one caller waits the busy timeout for it; for
/// one more busy timeout after that, the callers behind it only look (no wait): 503 at once if
/// it is still held, on at once when it was let go — so nobody waits many timeouts in a row.
fn begin(session: &mut Session) -> Result<(), AppError> {
    let looking = session
        .lock_refused_at
        .is_some_and(|refused| refused.elapsed() < session.busy_timeout);
    if looking {
        session.conn.busy_timeout(Duration::ZERO)?;
    }
    let began = run_cached(&session.conn, "BEGIN IMMEDIATE");
    if looking {
        session.conn.busy_timeout(session.busy_timeout)?;
    }
    match began {
        Ok(()) => {
            session.lock_refused_at = None;
            Ok(())
        }
        Err(err) => {
            if !looking && err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
                session.lock_refused_at = Some(Instant::now());
            }
            Err(err.into())
        }
    }
}

/// An outcome, or the panic that took its place.
pub type Caught<T> = std::thread::Result<Result<T, AppError>>;

/// Runs `body` inside a savepoint, keeping its work only on `Ok`. Returns the outcome (a panic
/// is caught, to be resumed once the transaction is settled) and whether the savepoint was
/// closed cleanly (if not, the whole transaction must be abandoned).
fn run_in_savepoint<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<T, AppError>,
) -> (Caught<T>, bool) {
    if let Err(err) = run_cached(conn, "SAVEPOINT write_call") {
        return (Ok(Err(err.into())), false);
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| body(conn)));
    let intact = if matches!(result, Ok(Ok(_))) {
        run_cached(conn, "RELEASE write_call").is_ok()
    } else {
        run_cached(conn, "ROLLBACK TO write_call").is_ok()
            && run_cached(conn, "RELEASE write_call").is_ok()
    };
    (result, intact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_and_reader(dir: &tempfile::TempDir) -> (Writer, Connection) {
        let path = dir.path().join("writer.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER) STRICT")
            .unwrap();
        (Writer::new(conn), Connection::open(&path).unwrap())
    }

    /// What a reader sees committed.
    fn committed(reader: &Connection) -> Vec<i64> {
        let mut stmt = reader.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = stmt.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn insert(conn: &Connection, x: i64) -> Result<(), AppError> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }

    /// Another process holding the write lock costs the caller who meets it one busy timeout;
    /// the callers behind it within that timeout are answered 503 at once (not one timeout
    /// each, in turn); once the lock is free, writes go through again.
    #[test]
    fn callers_behind_a_write_lock_held_elsewhere_are_answered_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer_and_reader(&dir);
        let busy_timeout = Duration::from_millis(300);
        lock(&writer.session)
            .conn
            .busy_timeout(busy_timeout)
            .unwrap();
        lock(&writer.session).busy_timeout = busy_timeout;
        let other = Connection::open(dir.path().join("writer.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();

        let started = Instant::now();
        let first = writer.write(|conn| insert(conn, 1));
        assert!(
            matches!(first, Err(AppError::Unavailable { .. })),
            "{first:?}"
        );
        assert!(started.elapsed() >= busy_timeout - Duration::from_millis(50));
        let started = Instant::now();
        let second = writer.write(|conn| insert(conn, 2));
        assert!(
            matches!(second, Err(AppError::Unavailable { .. })),
            "{second:?}"
        );
        assert!(
            started.elapsed() < busy_timeout - Duration::from_millis(50),
            "the second caller waited a timeout of its own: {:?}",
            started.elapsed()
        );

        // Let go within the window: the next caller gets the lock at once.
        other.execute_batch("COMMIT").unwrap();
        writer.write(|conn| insert(conn, 3)).unwrap();
        assert_eq!(committed(&reader), [3]);
        // And the full wait is back for the next time the lock is held elsewhere.
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Instant::now();
        assert!(writer.write(|conn| insert(conn, 4)).is_err());
        assert!(started.elapsed() >= busy_timeout - Duration::from_millis(50));
        other.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn parts_share_one_transaction_until_another_caller_queues_then_it_commits_them() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer_and_reader(&dir);
        std::thread::scope(|scope| {
            writer
                .write_parts(1..=4i64, |conn, n| {
                    insert(conn, n)?;
                    match n {
                        // Alone, the parts share a transaction: part 1 is not committed yet.
                        2 => assert_eq!(committed(&reader), Vec::<i64>::new()),
                        // Another caller queues during part 3…
                        3 => {
                            scope.spawn(|| writer.write(|conn| insert(conn, 100)).unwrap());
                            while writer.queued.load(Ordering::SeqCst) == 0 {
                                std::thread::yield_now();
                            }
                        }
                        // …and gets the writer before part 4, committing parts 1–3 with its row.
                        4 => assert_eq!(committed(&reader), [1, 2, 3, 100]),
                        _ => {}
                    }
                    Ok(true)
                })
                .unwrap();
        });
        assert_eq!(committed(&reader), [1, 2, 3, 4, 100]);
    }

    #[test]
    fn a_part_that_fails_or_says_stop_ends_the_parts_and_the_ones_before_it_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer_and_reader(&dir);
        let failed = writer.write_parts(1..=5i64, |conn, n| {
            insert(conn, n)?;
            if n == 3 {
                return Err(AppError::Conflict("three".to_owned()));
            }
            Ok(true)
        });
        assert!(matches!(failed, Err(AppError::Conflict(_))), "{failed:?}");
        assert_eq!(committed(&reader), [1, 2]);

        writer
            .write_parts(6..=9i64, |conn, n| {
                insert(conn, n)?;
                Ok(n < 7)
            })
            .unwrap();
        assert_eq!(committed(&reader), [1, 2, 6, 7]);

        // A panic rolls back its part and reaches the caller once the others are committed.
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _ = writer.write_parts(10..=12i64, |conn, n| {
                insert(conn, n)?;
                assert!(n != 11, "a bug in part 11");
                Ok(true)
            });
        }));
        assert!(panicked.is_err());
        assert_eq!(committed(&reader), [1, 2, 6, 7, 10]);
        writer.write(|conn| insert(conn, 13)).unwrap();
        assert_eq!(committed(&reader), [1, 2, 6, 7, 10, 13]);
    }

    /// A writer with its job thread running (`serve_jobs` with a `u32` context) until the
    /// returned sender is dropped: calls `f` with both, then stops the thread.
    fn with_job_thread(
        dir: &tempfile::TempDir,
        f: impl FnOnce(&Writer, &mpsc::Sender<Job<u32>>, &Connection),
    ) {
        let (writer, reader) = writer_and_reader(dir);
        let (jobs, receiver) = mpsc::channel::<Job<u32>>();
        let writer = &writer;
        std::thread::scope(|scope| {
            let serving = scope.spawn(move || writer.serve_jobs(&7u32, &receiver));
            f(writer, &jobs, &reader);
            drop(jobs);
            serving.join().unwrap();
        });
    }

    /// A writer and where its jobs would go, with no job thread behind it (it has stopped).
    fn writer_without_job_thread(dir: &tempfile::TempDir) -> (Writer, mpsc::Sender<Job<u32>>) {
        let (writer, _reader) = writer_and_reader(dir);
        let (jobs, receiver) = mpsc::channel::<Job<u32>>();
        drop(receiver);
        (writer, jobs)
    }

    #[test]
    fn jobs_run_on_the_job_thread_with_the_outcomes_of_write() {
        let dir = tempfile::tempdir().unwrap();
        with_job_thread(&dir, |writer, jobs, reader| {
            // The job gets the thread's context and its work is committed when it returns.
            let got = writer
                .submit(jobs, |context, conn| {
                    insert(conn, i64::from(*context))?;
                    Ok(std::thread::current().name().map(str::to_owned))
                })
                .unwrap();
            assert_eq!(committed(reader), [7]);
            assert_ne!(got, std::thread::current().name().map(str::to_owned));
            // An `Err` rolls back exactly its own work and reaches the caller.
            let refused = writer.submit(jobs, |_, conn| -> Result<(), AppError> {
                insert(conn, 8)?;
                Err(AppError::Conflict("no".to_owned()))
            });
            assert!(matches!(refused, Err(AppError::Conflict(_))), "{refused:?}");
            // A panic rolls back its work and is resumed in the caller, the thread goes on.
            let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
                let _ = writer.submit(jobs, |_, conn| -> Result<(), AppError> {
                    insert(conn, 9)?;
                    panic!("a bug in a job");
                });
            }));
            assert!(panicked.is_err());
            writer.submit(jobs, |_, conn| insert(conn, 10)).unwrap();
            assert_eq!(committed(reader), [7, 10]);
        });
        // With the thread gone, a job is refused (503), not lost in a queue nobody reads.
        let dir = tempfile::tempdir().unwrap();
        let (writer, jobs) = writer_without_job_thread(&dir);
        let refused = writer.submit(&jobs, |_, conn| insert(conn, 11));
        assert!(
            matches!(refused, Err(AppError::Unavailable { .. })),
            "{refused:?}"
        );
    }

    /// `submit_then` returns at once; the outcome is delivered on the job thread, with its
    /// context, only once the work has committed (a reader opened inside `deliver` sees it). A
    /// job sent after the thread is gone comes back, and `refuse` delivers 503.
    #[test]
    fn a_job_submitted_without_waiting_is_delivered_after_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        with_job_thread(&dir, |writer, jobs, reader| {
            let (tell, told) = mpsc::channel();
            for x in [1i64, 2, 3] {
                let (tell, path) = (tell.clone(), path.clone());
                let body = move |_: &u32, conn: &Connection| {
                    insert(conn, x)?;
                    if x == 2 {
                        return Err(AppError::Conflict("two".to_owned()));
                    }
                    Ok(x)
                };
                let deliver = move |context: &u32, caught: Caught<i64>| {
                    let seen = committed(&Connection::open(&path).unwrap());
                    let _ = tell.send((*context, caught.unwrap(), seen));
                };
                assert!(writer.submit_then(jobs, body, deliver).is_ok());
            }
            // Only the jobs' own senders are left: a job whose answer was lost ends `recv`.
            drop(tell);
            let mut delivered: Vec<_> = (0..3).map(|_| told.recv().unwrap()).collect();
            delivered.sort_by_key(|(_, outcome, _)| outcome.as_ref().map_or(2, |x| *x));
            let [(c1, one, seen1), (c2, two, _), (c3, three, seen3)] = &delivered[..] else {
                panic!("{delivered:?}");
            };
            assert_eq!((c1, c2, c3), (&7, &7, &7));
            assert_eq!(one.as_ref().unwrap(), &1);
            assert!(seen1.contains(&1), "delivered before its commit: {seen1:?}");
            assert!(matches!(two, Err(AppError::Conflict(_))), "{two:?}");
            assert_eq!(three.as_ref().unwrap(), &3);
            assert!(seen3.contains(&3), "delivered before its commit: {seen3:?}");
            assert_eq!(committed(reader), [1, 3]);
        });
        let dir = tempfile::tempdir().unwrap();
        let (writer, jobs) = writer_without_job_thread(&dir);
        let (tell, told) = mpsc::channel();
        let deliver = move |_: &u32, caught: Caught<()>| drop(tell.send(caught.unwrap()));
        let job = writer
            .submit_then(&jobs, |_, conn| insert(conn, 4), deliver)
            .expect_err("nobody serves the jobs");
        assert!(told.try_recv().is_err(), "delivered before it was refused");
        Writer::refuse(job, &7);
        let refused = told.recv().unwrap();
        assert!(
            matches!(refused, Err(AppError::Unavailable { .. })),
            "{refused:?}"
        );
    }

    /// Jobs from many threads at once and callers of `write` between them: every one's work is
    /// committed exactly once, and a caller of `write` is not starved by a stream of jobs (it
    /// gets the connection while the stream still flows).
    #[test]
    fn jobs_from_many_threads_and_writes_between_them_all_commit_and_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        with_job_thread(&dir, |writer, jobs, reader| {
            let done = AtomicUsize::new(0);
            let flooding = std::sync::atomic::AtomicBool::new(true);
            std::thread::scope(|scope| {
                for thread in 0..8i64 {
                    let jobs = jobs.clone();
                    let (done, flooding) = (&done, &flooding);
                    scope.spawn(move || {
                        let mut n = 0;
                        // Bounded, so that a starved `write` fails the test instead of hanging it.
                        while flooding.load(Ordering::SeqCst) && n < 5_000 {
                            let x = 1_000_000 + thread * 100_000 + n;
                            writer
                                .submit(&jobs, move |_, conn| insert(conn, x))
                                .unwrap();
                            done.fetch_add(1, Ordering::SeqCst);
                            n += 1;
                        }
                    });
                }
                while done.load(Ordering::SeqCst) < 200 {
                    std::thread::yield_now();
                }
                for x in 1..=20 {
                    writer.write(|conn| insert(conn, x)).unwrap();
                }
                let done_by_then = done.load(Ordering::SeqCst);
                flooding.store(false, Ordering::SeqCst);
                assert!(
                    done_by_then < 8 * 5_000,
                    "the writes waited for the jobs to end"
                );
            });
            let rows = committed(reader);
            let (writes, job_rows): (Vec<i64>, Vec<i64>) = rows.iter().partition(|&&x| x <= 20);
            assert_eq!(writes, (1..=20).collect::<Vec<_>>());
            assert_eq!(job_rows.len(), done.load(Ordering::SeqCst));
        });
    }

    /// The job thread commits after `JOB_BATCH` jobs even while more are waiting: each batch
    /// runs its jobs, commits, then answers them, so the answers come in runs no longer than
    /// `JOB_BATCH`, every job is answered after its own batch's jobs ran, and all commit.
    #[test]
    fn the_job_thread_commits_every_job_batch_even_with_more_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        with_job_thread(&dir, |writer, jobs, reader| {
            // The writer is held while every job is queued, so the thread finds all of them
            // waiting when it gets the connection.
            writer
                .write(|_| {
                    for x in 0..300i64 {
                        let (ran, answered) = (Arc::clone(&log), Arc::clone(&log));
                        let queued = writer.submit_then(
                            jobs,
                            move |_, conn| {
                                lock(&ran).push(("ran", x));
                                insert(conn, x)
                            },
                            move |_, outcome| {
                                assert!(matches!(outcome, Ok(Ok(()))));
                                lock(&answered).push(("answered", x));
                            },
                        );
                        assert!(queued.is_ok());
                    }
                    Ok(())
                })
                .unwrap();
            // A failed commit or answer is caught and logged by the thread: bounded, so that
            // it fails the test instead of hanging it.
            let deadline = Instant::now() + Duration::from_secs(30);
            while lock(&log).len() < 600 {
                assert!(
                    Instant::now() < deadline,
                    "{} of 600 events",
                    lock(&log).len()
                );
                std::thread::yield_now();
            }
            assert_eq!(committed(reader), (0..300).collect::<Vec<_>>());
        });
        let log = lock(&log);
        // Runs of "ran" then "answered", in job order: 128, 128, 44.
        let mut batches = Vec::new();
        let mut next = 0;
        while next < log.len() {
            let ran = log[next..]
                .iter()
                .take_while(|(what, _)| *what == "ran")
                .count();
            let answered = log[next + ran..]
                .iter()
                .take_while(|(what, _)| *what == "answered")
                .count();
            assert_eq!(ran, answered, "{log:?}");
            assert_eq!(
                log[next].1,
                log[next + ran].1,
                "answers follow their own batch"
            );
            batches.push(ran);
            next += ran + answered;
        }
        assert_eq!(batches, [JOB_BATCH, JOB_BATCH, 300 - 2 * JOB_BATCH]);
    }

    /// A long series of parts gives way to the job thread between two parts, as it does to
    /// any caller queueing: a job sent during part 3 is committed before part 4 runs.
    #[test]
    fn parts_give_way_to_the_job_thread() {
        let dir = tempfile::tempdir().unwrap();
        with_job_thread(&dir, |writer, jobs, reader| {
            std::thread::scope(|scope| {
                writer
                    .write_parts(1..=4i64, |conn, n| {
                        insert(conn, n)?;
                        match n {
                            3 => {
                                let jobs = jobs.clone();
                                scope.spawn(move || {
                                    writer.submit(&jobs, |_, conn| insert(conn, 100)).unwrap()
                                });
                                while writer.queued.load(Ordering::SeqCst) == 0 {
                                    std::thread::yield_now();
                                }
                            }
                            4 => assert_eq!(committed(reader), [1, 2, 3, 100]),
                            _ => {}
                        }
                        Ok(true)
                    })
                    .unwrap();
            });
            assert_eq!(committed(reader), [1, 2, 3, 4, 100]);
        });
    }

    /// A bug in the job thread outside the jobs' own closures rolls back its batch (nothing
    /// committed that its caller was not told of) and the thread goes on serving.
    #[test]
    fn a_panic_outside_a_jobs_closure_rolls_back_the_batch_and_the_thread_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        with_job_thread(&dir, |writer, jobs, reader| {
            // Work done outside a savepoint, then a panic: as a bug in the thread's own code.
            let broken: Job<u32> = Box::new(|_, opened| {
                insert(opened.unwrap(), 50).unwrap();
                panic!("a bug in the job thread");
            });
            jobs.send(broken).unwrap();
            writer.submit(jobs, |_, conn| insert(conn, 51)).unwrap();
            assert_eq!(committed(reader), [51]);
        });
    }
}
