//! The SQLite store: opening the file, the connection pool, the two transaction helpers, and
//! `sweep_in_batches` for maintenance deletes.
//!
//! Every database access in the request path goes through `Db::write` (the closure's work is
//! kept only if it returns `Ok`, and is durable when `write` returns) or `Db::read` (a deferred
//! transaction, a consistent snapshot). Callers hand in a closure over `&Connection` and never
//! begin, commit or roll back themselves. Writes go through one group-committing writer
//! (`writer`): one `BEGIN IMMEDIATE` for many closures, a `SAVEPOINT` each. `Db::write_each`
//! runs one closure per item the same way, for a caller with many small writes to make at once.
//! `Db::write_job_then` hands a closure that owns what it uses to the writer's own thread
//! (`start_jobs`), which runs such jobs back to back and delivers each outcome after the
//! commit: the send path's way in. Reads use a pool; `Db::read_remembered` is a read whose
//! bytes are kept until the next commit (`remembered`).
//! No network I/O may happen inside either closure, and a closure must not call `write` again.

pub mod backup;
mod checkpoints;
pub mod files;
pub mod migrations;
mod remembered;
mod sweep;
pub mod vacuum;
mod writer;

pub use checkpoints::Checkpointer;
pub use sweep::sweep_in_batches;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::clock::{Timestamp, format_timestamp};
use crate::config::{Config, Synchronous};
use crate::error::{AppError, StartupError};

/// How to open the database.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub path: PathBuf,
    pub pool_size: u32,
    pub busy_timeout: Duration,
    pub synchronous: Synchronous,
}

impl DbSettings {
    pub fn from_config(config: &Config) -> DbSettings {
        DbSettings {
            path: config.db_path.clone(),
            pool_size: config.db_pool_size.get(),
            busy_timeout: config.db_busy_timeout,
            synchronous: config.db_synchronous,
        }
    }
}

/// The writer connection's page cache, in KiB (SQLite takes a negative `cache_size` as KiB).
const WRITER_CACHE_KIB: i64 = -16 * 1024;

/// A pool of configured SQLite connections to one database file.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// Rung when a read gives its connection back, for the reads waiting on one (`lease`).
    returns: std::sync::Arc<Returns>,
    writer: std::sync::Arc<writer::Writer>,
    /// What `read_remembered` keeps (`remembered`).
    remembered: std::sync::Arc<remembered::Remembered>,
}

/// Where `Db::write_job_then` hands its jobs: the writer's job thread while `start_jobs`' thread
/// runs, nowhere otherwise (the caller runs its job itself).
pub struct Jobs<C> {
    sender: std::sync::RwLock<Option<std::sync::mpsc::Sender<writer::Job<C>>>>,
}

impl<C> Jobs<C> {
    pub fn new() -> Jobs<C> {
        Jobs {
            sender: std::sync::RwLock::new(None),
        }
    }

    /// Sends no more jobs to the thread (which ends once it has run those sent).
    fn close(&self) {
        *self
            .sender
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

impl<C> Default for Jobs<C> {
    fn default() -> Self {
        Jobs::new()
    }
}

/// The writer's running job thread; `stop` (or drop) ends it, after the jobs sent before.
pub struct JobThread {
    close: Box<dyn Fn() + Send>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the writer's job thread for `context`, whose `parts` are the database and the
/// `Jobs` that `Db::write_job_then` is given: from now on jobs run there. One per database (the
/// server's): the writer gives way to one job thread at a time.
pub fn start_jobs<C: Send + Sync + 'static>(
    context: std::sync::Arc<C>,
    parts: fn(&C) -> (&Db, &Jobs<C>),
) -> Result<JobThread, StartupError> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread_context = std::sync::Arc::clone(&context);
    let thread = std::thread::Builder::new()
        .name("writer".to_owned())
        .spawn(move || {
            let (db, _) = parts(&thread_context);
            db.writer.serve_jobs(&*thread_context, &receiver);
        })
        .map_err(|err| StartupError(format!("cannot start the writer thread: {err}")))?;
    *parts(&context)
        .1
        .sender
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sender);
    Ok(JobThread {
        close: Box::new(move || parts(&context).1.close()),
        thread: Some(thread),
    })
}

impl JobThread {
    /// Sends no more jobs to the thread and waits for it to run those it has.
    pub fn stop(&mut self) {
        (self.close)();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the writer's job thread ended in a panic");
        }
    }
}

impl Drop for JobThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a read that finds every open pooled connection busy waits for one to come back
/// before the pool opens another. Reads are short (well under a millisecond at idle), and at
/// start every background thread makes its first read at the same moment: without the wait
/// each of them opened its own connection (three to four at idle, ~0.4 MB each once the schema
/// is read), used once. Under load the pool still grows to what the concurrency needs, each
/// new connection after one read has waited this long.
const GROW_AFTER: Duration = Duration::from_millis(2);

impl Db {
    /// Opens the database for serving: creates the parent directory and the file if needed,
    /// switches the file to WAL and applies every pending migration before any pooled
    /// connection exists, so no request ever sees an old schema.
    pub fn open(settings: &DbSettings) -> Result<Db, StartupError> {
        prepare(settings)?;
        let path = &settings.path;
        let init_settings = settings.clone();
        let manager = SqliteConnectionManager::file(path).with_init(move |conn| {
            configure_connection(conn, &init_settings)?;
            // Only the writer commits: a pooled connection that tried would fail, not
            // change the file behind `read_remembered`'s back (its own changes would not
            // move its `data_version`).
            conn.pragma_update(None, "query_only", true)
        });
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            // Opened as load needs them (each costs ~0.4 MB once it has read the schema), kept
            // while busy; r2d2 closes the ones idle for 10 minutes. Not a minimum of one idle:
            // r2d2 would open a spare each time the only idle connection is taken, so a server
            // that reads one thing at a time would still hold two.
            .min_idle(Some(0))
            // No test query each time one is taken: r2d2's default runs an empty batch (a parse
            // in SQLite) per read, ~6 % of a small read's instructions, and a connection to a
            // local file does not go stale the way a network one does; a failing one still
            // fails its read.
            .test_on_check_out(false)
            .connection_timeout(settings.busy_timeout.max(Duration::from_secs(1)))
            .build(manager)
            .map_err(|err| StartupError(format!("opening {}: {err}", path.display())))?;
        // The first one now: a file the pool cannot open fails the start, not the first read.
        drop(
            pool.get()
                .map_err(|err| StartupError(format!("opening {}: {err}", path.display())))?,
        );
        let writer_conn = open_connection(path, OpenFlags::default(), settings)?;
        // SQLite opens a file it may not write read-only, without a word: every write would then
        // fail. With the migrations already applied, nothing above had to write to notice.
        if writer_conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|err| db_startup_error(path, err))?
        {
            return Err(StartupError(format!(
                "{} is read-only to this process: crier must write its database (check the \
                 file's owner and mode, and the filesystem's mount options)",
                path.display()
            )));
        }
        // Every write runs in a savepoint (writer.rs), and SQLite copies each page a savepoint
        // changes into a statement journal first; kept in memory, that copy is a memcpy, not a
        // write to a temporary file once past 64 KiB (it was ~15% of a dispatcher's CPU).
        writer_conn
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(|err| db_startup_error(path, err))?;
        // The writer inserts into indexes whose keys arrive in no order (a message's recipient,
        // a contact's email): past SQLite's default 2 MiB of cache, nearly every such insert read
        // its page back from the kernel (a campaign's fan-out spent a tenth of its time copying
        // pages). One connection, so 16 MiB is the most this costs: a million-row import fills
        // it (32 MiB took the import's RSS growth past 50 MB for no speed measurable here).
        writer_conn
            .pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(|err| db_startup_error(path, err))?;
        let writer = writer::Writer::new(writer_conn);
        Ok(Db {
            pool,
            returns: std::sync::Arc::new(Returns::default()),
            writer: std::sync::Arc::new(writer),
            remembered: std::sync::Arc::default(),
        })
    }

    /// Runs `body` inside a `BEGIN IMMEDIATE` transaction (possibly shared with other callers'
    /// closures, each in its own savepoint). Its work is kept only if it returns `Ok`; an `Err`
    /// or a panic rolls back exactly its own work. On `Ok` the work has been committed.
    pub fn write<T>(
        &self,
        body: impl FnOnce(&Connection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        self.writer.write(body)
    }

    /// `write` for a closure that owns what it uses (it gets `context` back), without waiting
    /// for it: once `start_jobs` has started the writer's job thread, `body` runs there, back
    /// to back with the other jobs waiting, instead of the connection passing from thread to
    /// thread (a hand-over costs a wake-up of the next thread: under load, more than the work
    /// itself), and this returns at once. `deliver` gets the context and the outcome once the
    /// transaction holding `body`'s work has finished: `Ok` only once it has committed; an
    /// `Err` rolls back `body`'s work only, and so does a panic (delivered as a 500); 503 when
    /// the thread has stopped. On the job thread `deliver` runs there, so it must be quick and
    /// must not write: it hands the outcome on. Before the thread starts and after it stops,
    /// `body` runs on this thread like any `write` (a panic propagates) and `deliver` is called
    /// before this returns. The rule of `write` holds: never called from inside a `write`
    /// closure or a job.
    pub fn write_job_then<C, T>(
        &self,
        jobs: &Jobs<C>,
        context: &C,
        body: impl FnOnce(&C, &Connection) -> Result<T, AppError> + Send + 'static,
        deliver: impl FnOnce(&C, Result<T, AppError>) + Send + 'static,
    ) where
        T: Send + 'static,
    {
        let sender = jobs
            .sender
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(sender) = sender else {
            return deliver(context, self.write(|conn| body(context, conn)));
        };
        let submitted = self
            .writer
            .submit_then(&sender, body, move |context, caught| {
                let outcome = caught.unwrap_or_else(|panic| {
                    Err(AppError::Internal(format!(
                        "write job panicked: {}",
                        crate::error::panic_message(panic.as_ref())
                    )))
                });
                deliver(context, outcome);
            });
        if let Err(job) = submitted {
            writer::Writer::refuse(job, context);
        }
    }

    /// Runs `body` once per item, each item's work kept only if its call returns `Ok` (like one
    /// `write` each), all in one transaction that commits once: many small writes for the price
    /// of one commit. `Err` when that transaction did not commit (nothing was kept); otherwise
    /// each item's result, in order. A panic rolls back its item and skips the rest.
    pub fn write_each<I, T>(
        &self,
        items: impl IntoIterator<Item = I>,
        body: impl FnMut(&Connection, I) -> Result<T, AppError>,
    ) -> Result<Vec<Result<T, AppError>>, AppError> {
        self.writer.write_each(items, body)
    }

    /// Runs `body` once per part, each part's work kept only if its call returns `Ok` (it
    /// returns whether to go on), for a long series of writes that must not keep other writers
    /// waiting: the writer is free to others between two parts. The parts share one commit
    /// unless someone else is waiting, when the transaction ends after the part in hand, so
    /// each part must leave the database consistent. See `writer::Writer::write_parts`.
    pub fn write_parts<I>(
        &self,
        parts: impl IntoIterator<Item = I>,
        body: impl FnMut(&Connection, I) -> Result<bool, AppError>,
    ) -> Result<(), AppError> {
        self.writer.write_parts(parts, body)
    }

    /// Sets the writer's `wal_autocheckpoint`: the commit that takes the WAL past `pages`
    /// copies it back into the database file; 0 never checkpoints (another process — Litestream
    /// — does). Only the writer commits, so its setting is the one that counts.
    pub fn set_checkpoint_pages(&self, pages: u32) -> Result<(), AppError> {
        self.write(|conn| Ok(conn.pragma_update(None, "wal_autocheckpoint", pages)?))
    }

    /// Starts the background checkpointer (`checkpoints`): from now on each commit wakes it.
    /// For a server whose writer checkpoints (`set_checkpoint_pages` above 0); once per `Db`.
    pub fn start_checkpointer(&self) -> Result<Checkpointer, StartupError> {
        let db = self.clone();
        let (checkpointer, backlog) = Checkpointer::start(move || db.checkpoint_passively())
            .map_err(|err| StartupError(format!("cannot start the checkpointer thread: {err}")))?;
        self.writer
            .ring_after_commits(backlog)
            .map_err(|_| StartupError("the checkpointer was already started".to_owned()))?;
        Ok(checkpointer)
    }

    /// Copies what the WAL holds back into the database file as far as no reader still needs it,
    /// without waiting for any lock (SQLite's `PASSIVE` checkpoint), on an idle pooled
    /// connection. `Ok(false)` when none is idle: then nothing was done, and no read waited.
    fn checkpoint_passively(&self) -> Result<bool, AppError> {
        let Some(conn) = self.idle_lease() else {
            return Ok(false);
        };
        conn.prepare_cached("PRAGMA wal_checkpoint(PASSIVE)")?
            .query_row([], |_| Ok(()))?;
        Ok(true)
    }

    /// Runs `body` inside a deferred transaction that only reads (the pool's connections are
    /// `query_only`): every statement in it sees the same snapshot. Nothing is committed.
    pub fn read<T>(
        &self,
        body: impl FnOnce(&Connection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let conn = self.lease()?;
        let snapshot = ReadTransaction::begin(&conn)?;
        body(snapshot.0)
    }

    /// An idle pooled connection, if one is.
    fn idle_lease(&self) -> Option<Lease<'_>> {
        Some(Lease::new(self.pool.try_get()?, &self.returns))
    }

    /// A pooled connection: an idle one, else one given back within `GROW_AFTER`, else a new
    /// one (r2d2 opens it, up to the pool's size, and waits for whichever comes first).
    fn lease(&self) -> Result<Lease<'_>, AppError> {
        if let Some(lease) = self.idle_lease() {
            return Ok(lease);
        }
        let returns = &*self.returns;
        if self.pool.state().connections > 0 {
            let deadline = Instant::now() + GROW_AFTER;
            let mut guard = returns.lock();
            // Counted before looking again: a connection given back after that look rings.
            returns.waiting.fetch_add(1, Ordering::SeqCst);
            let found = loop {
                if let Some(conn) = self.pool.try_get() {
                    break Some(conn);
                }
                let now = Instant::now();
                if now >= deadline {
                    break None;
                }
                guard = returns
                    .rung
                    .wait_timeout(guard, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            };
            returns.waiting.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            if let Some(conn) = found {
                return Ok(Lease::new(conn, returns));
            }
        }
        Ok(Lease::new(self.pool.get()?, returns))
    }
}

/// The reads waiting in `Db::lease` for a connection to come back, and the condition they wait
/// on. A read that gives its connection back takes the lock only when someone waits.
#[derive(Default)]
struct Returns {
    lock: std::sync::Mutex<()>,
    rung: std::sync::Condvar,
    waiting: AtomicUsize,
}

impl Returns {
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A pooled connection that, once back in the pool, wakes the reads waiting for one.
struct Lease<'a> {
    conn: r2d2::PooledConnection<SqliteConnectionManager>,
    // Dropped after `conn` (fields drop in order): back in the pool first, then the ring, so
    // a waiter it wakes finds the connection.
    _ring: Ring<'a>,
}

impl<'a> Lease<'a> {
    fn new(conn: r2d2::PooledConnection<SqliteConnectionManager>, returns: &'a Returns) -> Self {
        Lease {
            conn,
            _ring: Ring(returns),
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

struct Ring<'a>(&'a Returns);

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        if self.0.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.0.lock();
            self.0.rung.notify_all();
        }
    }
}

/// A deferred transaction that only reads: ended with a `ROLLBACK` when dropped (also on a
/// panic, so no pooled connection goes back with a transaction open). Both statements come
/// from the statement cache: a send makes two reads, and parsing `BEGIN` and `ROLLBACK` each
/// time was a visible share of its CPU.
struct ReadTransaction<'c>(&'c Connection);

impl<'c> ReadTransaction<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<ReadTransaction<'c>> {
        run_cached(conn, "BEGIN DEFERRED")?;
        Ok(ReadTransaction(conn))
    }
}

impl Drop for ReadTransaction<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = run_cached(self.0, "ROLLBACK");
        }
    }
}

/// Runs one statement without parameters or rows (transaction control: `SAVEPOINT`, `RELEASE`,
/// `ROLLBACK TO`, …) through the statement cache, where `execute_batch` would parse it anew.
pub fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The largest database `serve` converts to incremental auto-vacuum at start (a full `VACUUM`
/// rewrites the file, about a second per 100 MiB here, and needs as much free disk again);
/// a larger one is converted by `crier migrate`, run while crier is stopped.
pub const CONVERT_AT_START_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

/// How `prepare` treats a database not yet in incremental auto-vacuum mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Convert it (`VACUUM`) when the file is at most this large; otherwise log how to.
    UpTo(u64),
    /// Convert it whatever its size (`crier migrate`).
    Always,
}

/// Creates the parent directory (`0700`) and the file (`0600`) if needed (see `files`),
/// switches the file to WAL (a persistent property of the file), to incremental auto-vacuum
/// (`auto_vacuum`: a new file at once, an existing one as `conversion` allows) and applies
/// pending migrations. Returns the migrations applied now.
pub fn prepare(settings: &DbSettings) -> Result<Vec<String>, StartupError> {
    prepare_converting(settings, Conversion::UpTo(CONVERT_AT_START_LIMIT_BYTES))
}

/// Takes the lock that makes one process the database's owner (`files::lock_database`), creating
/// its directory if needed: `crier serve` and `crier migrate` hold it while they run, so a
/// second one on the same data directory stops at once, before it touches anything (a second
/// server's start-up recovery would take back the first one's leases, uploads and claims).
pub fn lock(settings: &DbSettings) -> Result<files::DatabaseLock, StartupError> {
    let path = &settings.path;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        files::create_private_dir(dir).map_err(|err| {
            StartupError(format!("cannot create directory {}: {err}", dir.display()))
        })?;
    }
    let lock_path = files::lock_path(path);
    match files::lock_database(&lock_path) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(StartupError(format!(
            "another crier is serving or migrating {} (it holds {}); stop it first: one \
             process owns the database",
            path.display(),
            lock_path.display()
        ))),
        Err(err) => Err(StartupError(format!(
            "cannot lock {}: {err}",
            lock_path.display()
        ))),
    }
}

/// `prepare`, converting an existing database to incremental auto-vacuum as `conversion` says.
pub fn prepare_converting(
    settings: &DbSettings,
    conversion: Conversion,
) -> Result<Vec<String>, StartupError> {
    let path = &settings.path;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        files::create_private_dir(dir).map_err(|err| {
            StartupError(format!("cannot create directory {}: {err}", dir.display()))
        })?;
    }
    let tightened = files::make_database_private(path)
        .map_err(|err| StartupError(format!("cannot make {} private: {err}", path.display())))?;
    for file in tightened {
        log::warn!(file:% = file.display(); "the database file was readable by others; it is now 0600");
    }
    let mut setup = open_connection(path, OpenFlags::default(), settings)?;
    // Before WAL: a new file takes the mode only while nothing has been written to it.
    vacuum::make_incremental(&setup, conversion).map_err(|err| db_startup_error(path, err))?;
    setup
        .pragma_update(None, "journal_mode", "WAL")
        .map_err(|err| db_startup_error(path, err))?;
    migrations::run(&mut setup).map_err(|err| {
        // refinery speaks of files; crier's migrations are built into the binary.
        let why = match err.kind() {
            refinery::error::Kind::MissingVersion(migration) => format!(
                "it has migration {migration}, which this crier does not have: it was migrated \
                 by a newer crier (run that one, or restore a backup taken before the upgrade)"
            ),
            refinery::error::Kind::DivergentVersion(applied, _) => {
                format!("its migration {applied} differs from this crier's of the same version")
            }
            _ => err.to_string(),
        };
        StartupError(format!("migrating {}: {why}", path.display()))
    })
}

/// One connection to a database that must already exist, for maintenance commands (`doctor`,
/// `backup`): never creates a file, never migrates, and fails with a clear sentence when the
/// file is missing or is not a SQLite database.
pub fn open_existing(settings: &DbSettings) -> Result<Connection, StartupError> {
    let path = &settings.path;
    if !path.is_file() {
        return Err(StartupError(format!("no database at {}", path.display())));
    }
    let flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
    let conn = open_connection(path, flags, settings)?;
    // Opening is lazy; the first read is what notices a file that is not a database.
    conn.query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0))
        .map_err(|err| db_startup_error(path, err))?;
    Ok(conn)
}

/// `open_existing`, read-only: SQLite refuses any write on this connection, so a check run on it
/// cannot change the file, and a copy on read-only media (or a file the user may not write) can
/// be examined. For `doctor`.
pub fn open_read_only(settings: &DbSettings) -> Result<Connection, StartupError> {
    let path = &settings.path;
    if !path.is_file() {
        return Err(StartupError(format!("no database at {}", path.display())));
    }
    let conn = open_connection(path, OpenFlags::SQLITE_OPEN_READ_ONLY, settings)?;
    conn.query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0))
        .map_err(|err| db_startup_error(path, err))?;
    Ok(conn)
}

/// Proves the database accepts a write: one `BEGIN IMMEDIATE` that upserts the probe row.
pub fn record_health_probe(conn: &Connection, now: Timestamp) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO health_probe (id, checked_at) VALUES (1, :now)
         ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
    )?
    .execute(rusqlite::named_params! { ":now": format_timestamp(now) })?;
    Ok(())
}

fn open_connection(
    path: &Path,
    flags: OpenFlags,
    settings: &DbSettings,
) -> Result<Connection, StartupError> {
    let conn =
        Connection::open_with_flags(path, flags).map_err(|err| db_startup_error(path, err))?;
    configure_connection(&conn, settings).map_err(|err| db_startup_error(path, err))?;
    Ok(conn)
}

/// Prepared statements kept per connection (more than crier has distinct statements).
const STATEMENT_CACHE_CAPACITY: usize = 512;

/// The per-connection settings. `foreign_keys` and `synchronous` are per connection in SQLite,
/// so every pooled connection runs this when it is opened.
fn configure_connection(conn: &Connection, settings: &DbSettings) -> rusqlite::Result<()> {
    // Every statement crier runs is `prepare_cached`; the writer alone runs well over rusqlite's
    // default of 16 distinct ones, and a cache that evicts re-parses SQL on every request.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.busy_timeout(settings.busy_timeout)?;
    // SQLite is built with STAT4, which re-prepares a cached statement whenever a value bound
    // to a range on an indexed column changes (a `:now` every time: the outbox claim was
    // compiled anew on each run). With no statistics gathered there is no better plan to find.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", settings.synchronous.pragma_value())?;
    Ok(())
}

fn db_startup_error(path: &Path, err: rusqlite::Error) -> StartupError {
    StartupError(format!("database {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn temp_db(dir: &tempfile::TempDir) -> Db {
        temp_db_with_pool(dir, 4)
    }

    pub(super) fn temp_db_with_pool(dir: &tempfile::TempDir, pool_size: u32) -> Db {
        let settings = DbSettings {
            path: dir.path().join("nested/dir/crier.db"),
            pool_size,
            busy_timeout: Duration::from_millis(200),
            synchronous: Synchronous::Normal,
        };
        Db::open(&settings).unwrap()
    }

    #[test]
    fn a_read_that_fails_or_panics_leaves_no_transaction_open_on_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db_with_pool(&dir, 1);
        db.write(|conn| Ok(conn.execute_batch("CREATE TABLE t (x INTEGER) STRICT")?))
            .unwrap();
        let count = |db: &Db| -> i64 {
            db.read(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
                .unwrap()
        };
        // Each read takes a snapshot on the pool's only connection; one left open would hide
        // every later write from the next read.
        let failed: Result<i64, AppError> = db.read(|conn| {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?;
            Err(AppError::NotFound)
        });
        assert!(matches!(failed, Err(AppError::NotFound)));
        db.write(|conn| Ok(conn.execute("INSERT INTO t (x) VALUES (1)", [])?))
            .unwrap();
        assert_eq!(count(&db), 1);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.read(|conn| -> Result<(), AppError> {
                conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?;
                panic!("handler bug");
            });
        }));
        assert!(panicked.is_err());
        db.write(|conn| Ok(conn.execute("INSERT INTO t (x) VALUES (2)", [])?))
            .unwrap();
        assert_eq!(count(&db), 2);
    }

    #[test]
    fn the_pool_opens_another_connection_only_for_a_read_that_finds_none_free() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        let read = |db: &Db| {
            db.read(|conn| {
                Ok(
                    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                        r.get::<_, i64>(0)
                    })?,
                )
            })
            .unwrap()
        };
        // Opened at start: one, and reads one after another keep using it (r2d2 with a
        // minimum of one idle connection opened a spare the first time it was taken).
        assert_eq!(db.pool.state().connections, 1);
        for _ in 0..5 {
            read(&db);
        }
        assert_eq!(db.pool.state().connections, 1);
        // A read that finds the only connection held (longer than `GROW_AFTER`) gets a new one.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let db = &db;
            scope.spawn(move || {
                db.read(|_| {
                    held_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(())
                })
                .unwrap()
            });
            held_rx.recv().unwrap();
            read(db);
            release_tx.send(()).unwrap();
        });
        assert_eq!(db.pool.state().connections, 2);
    }

    /// .cargo/config.toml builds the bundled SQLite without its memory statistics (a global
    /// mutex around every allocation); a build that lost the setting is slower, not wrong, and
    /// this says so.
    #[test]
    fn sqlite_is_built_without_memory_statistics() {
        let conn = Connection::open_in_memory().unwrap();
        let used: bool = conn
            .query_row(
                "SELECT sqlite_compileoption_used('DEFAULT_MEMSTATUS=0')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(
            used,
            "LIBSQLITE3_FLAGS of .cargo/config.toml did not reach the SQLite build"
        );
    }

    #[test]
    fn open_creates_directory_file_and_sets_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        assert!(dir.path().join("nested/dir/crier.db").is_file());
        let pragma = |name: &str| -> String {
            db.read(|conn| {
                Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })?)
            })
            .map(|value| match value {
                rusqlite::types::Value::Integer(n) => n.to_string(),
                rusqlite::types::Value::Text(text) => text,
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        let (journal, foreign_keys, synchronous) = (
            pragma("journal_mode"),
            pragma("foreign_keys"),
            pragma("synchronous"),
        );
        // synchronous 1 is NORMAL, the level temp_db asks for.
        assert_eq!(
            (
                journal.as_str(),
                foreign_keys.as_str(),
                synchronous.as_str()
            ),
            ("wal", "1", "1")
        );
    }

    #[test]
    fn write_commits_on_ok_and_rolls_back_on_err() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        db.write(|conn| {
            conn.execute("CREATE TABLE t (x INTEGER) STRICT", [])?;
            Ok(())
        })
        .unwrap();
        let failed: Result<(), AppError> = db.write(|conn| {
            conn.execute("INSERT INTO t (x) VALUES (1)", [])?;
            Err(AppError::Conflict("changed my mind".into()))
        });
        assert!(matches!(failed, Err(AppError::Conflict(_))));
        db.write(|conn| {
            conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
            Ok(())
        })
        .unwrap();
        let rows: Vec<i64> = db
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT x FROM t")?;
                let rows = stmt
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .unwrap();
        assert_eq!(rows, vec![2]);
    }

    #[test]
    fn write_rolls_back_when_the_closure_panics() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        db.write(|conn| Ok(conn.execute("CREATE TABLE t (x INTEGER) STRICT", [])?))
            .unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.write(|conn| -> Result<(), AppError> {
                conn.execute("INSERT INTO t (x) VALUES (1)", [])?;
                panic!("handler bug");
            });
        }));
        assert!(outcome.is_err());
        let count: i64 = db
            .read(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(count, 0);
    }

    #[test]
    fn write_each_keeps_exactly_the_items_that_returned_ok() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        db.write(|conn| Ok(conn.execute("CREATE TABLE t (x INTEGER) STRICT", [])?))
            .unwrap();
        let results = db
            .write_each(1..=5i64, |conn, n| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [n])?;
                if n % 2 == 0 {
                    return Err(AppError::Conflict(format!("{n} is even")));
                }
                Ok(n * 10)
            })
            .unwrap();
        let kept: Vec<Option<i64>> = results.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(kept, [Some(10), None, Some(30), None, Some(50)]);
        let rows: Vec<i64> = db
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(rows, [1, 3, 5]);

        // A panic rolls back its item, skips the rest, keeps the earlier ones' work and
        // reaches the caller.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.write_each(6..=8i64, |conn, n| -> Result<(), AppError> {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [n])?;
                if n == 7 {
                    panic!("a bug in item 7");
                }
                Ok(())
            });
        }));
        assert!(outcome.is_err());
        let count: i64 = db
            .read(
                |conn| Ok(conn.query_row("SELECT count(*) FROM t WHERE x > 5", [], |r| r.get(0))?),
            )
            .unwrap();
        assert_eq!(count, 1, "only item 6 is kept");
        // The writer is still usable.
        db.write(|conn| Ok(conn.execute("INSERT INTO t (x) VALUES (9)", [])?))
            .unwrap();
    }

    #[test]
    fn concurrent_read_modify_write_loses_no_update() {
        // The property money code relies on: a read followed by a write inside `Db::write` is
        // atomic with respect to every other `Db::write`, because the lock is taken at BEGIN.
        let dir = tempfile::tempdir().unwrap();
        let settings = DbSettings {
            path: dir.path().join("crier.db"),
            pool_size: 16,
            busy_timeout: Duration::from_secs(30),
            synchronous: Synchronous::Normal,
        };
        let db = Db::open(&settings).unwrap();
        db.write(|conn| {
            conn.execute_batch(
                "CREATE TABLE counter (n INTEGER NOT NULL) STRICT; INSERT INTO counter VALUES (0);",
            )?;
            Ok(())
        })
        .unwrap();
        let (threads, increments) = (16, 50);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..increments {
                        db.write(|conn| {
                            let n: i64 =
                                conn.query_row("SELECT n FROM counter", [], |r| r.get(0))?;
                            std::thread::yield_now();
                            conn.execute("UPDATE counter SET n = ?1", [n + 1])?;
                            Ok(())
                        })
                        .unwrap();
                    }
                });
            }
        });
        let n: i64 = db
            .read(|conn| Ok(conn.query_row("SELECT n FROM counter", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, threads * increments);
    }

    #[test]
    fn a_held_write_lock_makes_writes_unavailable_not_internal() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        let mut blocker = Connection::open(dir.path().join("nested/dir/crier.db")).unwrap();
        let _held = blocker
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let err = db.write(|_| Ok(())).unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
    }

    #[test]
    fn open_existing_refuses_a_missing_file_and_a_non_database() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |name: &str| DbSettings {
            path: dir.path().join(name),
            pool_size: 1,
            busy_timeout: Duration::from_millis(100),
            synchronous: Synchronous::Full,
        };
        let err = open_existing(&settings("absent.db")).unwrap_err();
        assert!(err.0.contains("no database at"), "{}", err.0);
        assert!(!dir.path().join("absent.db").exists());

        std::fs::write(
            dir.path().join("notes.txt"),
            "not a database at all, just text",
        )
        .unwrap();
        let err = open_existing(&settings("notes.txt")).unwrap_err();
        assert!(err.0.contains("file is not a database"), "{}", err.0);
    }

    /// Many threads write at once, some closures fail and one panics: every successful
    /// closure's work is committed, no failed one's is, and the panic reaches its caller only.
    #[test]
    fn concurrent_writes_keep_exactly_the_successful_work() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        db.write(|conn| {
            conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?;
            Ok(())
        })
        .unwrap();
        let outcomes: Vec<(i64, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..400i64)
                .map(|n| {
                    let db = db.clone();
                    scope.spawn(move || {
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            db.write(|conn| {
                                conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                                if n == 13 {
                                    panic!("a handler bug");
                                }
                                if n % 3 == 0 {
                                    return Err(AppError::Conflict("refused".into()));
                                }
                                Ok(())
                            })
                        }));
                        (n, matches!(result, Ok(Ok(()))))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let kept: Vec<i64> = db
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT n FROM t ORDER BY n")?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        let expected: Vec<i64> = outcomes
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(n, _)| *n)
            .collect();
        let mut expected = expected;
        expected.sort_unstable();
        assert_eq!(kept, expected);
        assert_eq!(kept.len(), 400 - 134 - 1);
        // The writer is still usable after all that.
        db.write(|conn| {
            conn.execute("INSERT INTO t (n) VALUES (1000)", [])?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_checkpointer_copies_commits_into_the_file_and_rests_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DbSettings {
            path: dir.path().join("crier.db"),
            pool_size: 2,
            busy_timeout: Duration::from_millis(200),
            synchronous: Synchronous::Full,
        };
        let db = Db::open(&settings).unwrap();
        // The writer never checkpoints here: whatever reaches the file, the checkpointer copied.
        db.set_checkpoint_pages(0).unwrap();
        let insert = |n: i64| {
            db.write(|conn| {
                conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)", [])?;
                Ok(conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?)
            })
            .unwrap()
        };
        // The database file alone, as if the WAL were not there.
        let in_file = || {
            let file = Connection::open_with_flags(
                format!("file:{}?immutable=1", settings.path.display()),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            )
            .unwrap();
            file.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))
                .unwrap_or(0)
        };
        insert(1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(in_file(), 0, "nothing checkpoints without the checkpointer");

        let mut checkpointer = db.start_checkpointer().unwrap();
        assert!(db.start_checkpointer().is_err(), "one per database");
        insert(2);
        let wait_for = |done: &dyn Fn() -> bool, what: &str| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !done() {
                assert!(Instant::now() < deadline, "{what}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait_for(&|| in_file() == 2, "the commits never reached the file");
        // The pass is counted after its `fsync`, which may come a little after the rows show.
        wait_for(&|| checkpointer.passes() >= 1, "the pass was never counted");
        // Idle: no commit, no pass (the rest after the pass is 10 ms: wait it out first).
        std::thread::sleep(Duration::from_millis(100));
        let passes = checkpointer.passes();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(checkpointer.passes(), passes, "a pass without a commit");
        // Commits that change no row (a dispatcher's claim that found nothing) write nothing.
        for _ in 0..5 {
            db.write(|conn| Ok(conn.execute("DELETE FROM t WHERE n < 0", [])?))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            checkpointer.passes(),
            passes,
            "a pass for commits that changed nothing"
        );
        // A burst of commits gets passes, at most one every 10 ms.
        let started = Instant::now();
        for n in 3..=200 {
            insert(n);
        }
        let elapsed = started.elapsed();
        wait_for(&|| in_file() == 200, "the burst never reached the file");
        let burst = checkpointer.passes() - passes;
        assert!(burst >= 1);
        let most = 2 + elapsed.as_millis() / 10;
        assert!(u128::from(burst) <= most, "{burst} passes in {elapsed:?}");
        let stopping = Instant::now();
        checkpointer.stop();
        assert!(stopping.elapsed() < Duration::from_secs(1));
    }
}
