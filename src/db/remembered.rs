//! Remembered reads: the bytes a read made (a rendered page), kept and given again to the same
//! read while no commit has changed the database since — by this process or any other.
//!
//! What tells that something changed is SQLite's `PRAGMA data_version`: on one connection, two
//! readings differ whenever some other connection committed a change in between (they may also
//! differ after a checkpoint restarted the WAL: only a needless read anew). Its value means
//! nothing across connections, so one connection alone cannot vouch for bytes another made.
//! `Remembered` bridges that with one counter, the epoch:
//!
//! - a remembered read leases its connection, reads the epoch, and only then begins its snapshot
//!   (whose first read is the connection's `data_version`);
//! - if that version differs from the one the connection saw last (or it never saw one: a new
//!   connection), some commit came since: the read moves the epoch on, runs its body and keeps
//!   nothing;
//! - otherwise the read may give bytes kept under its key *and its epoch*, or keep its own
//!   bytes under them.
//!
//! Why kept bytes are never older than the snapshot they are given in: bytes kept by connection
//! C under epoch `e` were read from a snapshot begun after `e` was read. Say a read on
//! connection D, whose version did not change, gets them while its epoch, read before its own
//! snapshot, is also `e`, and a commit X lies between the two snapshots. If X came after C's
//! snapshot, D's unchanged version means that an earlier read on D saw a version after X and
//! moved the epoch past `e`; that read gave D back to the pool before this one leased it, so
//! before this one read its epoch: contradiction. If X came before C's snapshot and after D's,
//! the same holds with the roles swapped. A connection's first read moves the epoch, so commits
//! made before it opened count too. A second guard: the read that moves the epoch on also lets
//! go of every entry of the earlier epochs, and none is kept under an epoch once it has moved
//! on.
//!
//! A commit makes every kept entry useless, so under writes nearly every remembered read runs
//! its body (the check costs one `PRAGMA`); between writes, every read of the same thing after
//! the first is a copy of a pointer. Memory is bounded: `KEPT_BYTES` in all (the bytes' buffers
//! and keys), `KEPT_ENTRIES` entries, none over `ENTRY_BYTES`, the oldest given up first; the
//! first read that sees a commit lets go of them all.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::{Db, ReadTransaction};
use crate::error::AppError;

/// The most bytes kept in all, counting each entry's buffer and key.
const KEPT_BYTES: usize = 1024 * 1024;
/// The most entries kept: a lookup goes through them in turn.
const KEPT_ENTRIES: usize = 32;
/// The largest entry kept: a page of 50 messages is ~50 KB, one of 100 emails with their bodies
/// can be megabytes, and a few of those would push every smaller entry out.
const ENTRY_BYTES: usize = 256 * 1024;

/// The kept entries, the epoch they are valid in (see the module's doc), and how reads went.
#[derive(Default)]
pub(super) struct Remembered {
    epoch: AtomicU64,
    kept: Mutex<Kept>,
    given_kept: AtomicU64,
    read_anew: AtomicU64,
}

#[derive(Default)]
struct Kept {
    /// Oldest first.
    entries: VecDeque<Entry>,
    /// What `entries` hold, as `Entry::size` counts it.
    bytes: usize,
}

struct Entry {
    key: String,
    epoch: u64,
    bytes: Arc<Vec<u8>>,
}

impl Entry {
    fn size(&self) -> usize {
        self.bytes.capacity() + self.key.len()
    }
}

/// Remembered reads since start: given bytes that were kept, and run anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RememberedReads {
    pub given_kept: u64,
    pub read_anew: u64,
}

/// The `data_version` a pooled connection saw at its last remembered read (kept with the
/// connection in r2d2's extensions); `NEVER` before its first.
struct SeenVersion(AtomicI64);

const NEVER: i64 = i64::MIN;

impl Remembered {
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn find(&self, key: &str, epoch: u64) -> Option<Arc<Vec<u8>>> {
        self.kept()
            .entries
            .iter()
            .find(|entry| entry.epoch == epoch && entry.key == key)
            .map(|entry| Arc::clone(&entry.bytes))
    }

    /// A commit came: the epoch moves on, and what was kept before can never be given again.
    fn move_on(&self) {
        let now = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.kept().forget(|entry| entry.epoch < now);
    }

    /// Keeps `bytes` under `key` for `epoch` unless the epoch has moved on since (they could
    /// never be given then), in place of what is kept under `key` already, giving up the oldest
    /// past the bounds. (Every entry kept is of the current epoch: `move_on` forgets the others
    /// under the same lock.)
    fn keep(&self, key: &str, epoch: u64, bytes: &Arc<Vec<u8>>) {
        if bytes.capacity() + key.len() > ENTRY_BYTES {
            return;
        }
        let mut kept = self.kept();
        if epoch != self.epoch.load(Ordering::SeqCst) {
            return;
        }
        let entry = Entry {
            key: key.to_owned(),
            epoch,
            bytes: Arc::clone(bytes),
        };
        kept.forget(|old| old.key == key);
        while kept.bytes + entry.size() > KEPT_BYTES || kept.entries.len() >= KEPT_ENTRIES {
            let Some(oldest) = kept.entries.pop_front() else {
                break;
            };
            kept.bytes -= oldest.size();
        }
        kept.bytes += entry.size();
        kept.entries.push_back(entry);
    }
}

impl Kept {
    fn forget(&mut self, gone: impl Fn(&Entry) -> bool) {
        let Kept { entries, bytes } = self;
        entries.retain(|entry| {
            let keep = !gone(entry);
            if !keep {
                *bytes -= entry.size();
            }
            keep
        });
    }
}

impl Db {
    /// `read` for a body that makes bytes (a rendered page), remembered: while no commit has
    /// changed the database since, the next `read_remembered` with the same `key` gets the same
    /// bytes without running its body (see the module's doc for why they are never stale).
    /// `key` must name everything the bytes depend on — what is read, for whom, with which
    /// parameters. An `Err` is never kept.
    pub fn read_remembered(
        &self,
        key: &str,
        body: impl FnOnce(&Connection) -> Result<Vec<u8>, AppError>,
    ) -> Result<Arc<Vec<u8>>, AppError> {
        let remembered = &*self.remembered;
        let mut lease = self.lease()?;
        // After the lease, before the snapshot: the order the module's doc relies on.
        let epoch = remembered.epoch.load(Ordering::SeqCst);
        let extensions = r2d2::PooledConnection::extensions_mut(&mut lease.conn);
        if extensions.get::<SeenVersion>().is_none() {
            extensions.insert(SeenVersion(AtomicI64::new(NEVER)));
        }
        let snapshot = ReadTransaction::begin(&lease)?;
        // The first read of the transaction: it begins the snapshot the body reads too.
        let version: i64 = snapshot
            .0
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        let seen = r2d2::PooledConnection::extensions(&lease.conn)
            .get::<SeenVersion>()
            .map_or(NEVER, |seen| seen.0.swap(version, Ordering::SeqCst));
        if seen != version {
            remembered.move_on();
        } else if let Some(bytes) = remembered.find(key, epoch) {
            remembered.given_kept.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        let mut bytes = body(snapshot.0)?;
        remembered.read_anew.fetch_add(1, Ordering::Relaxed);
        if seen != version {
            return Ok(Arc::new(bytes));
        }
        // Kept at its length: a page's buffer is allocated for the largest page of its limit.
        bytes.shrink_to_fit();
        let bytes = Arc::new(bytes);
        remembered.keep(key, epoch, &bytes);
        Ok(bytes)
    }

    /// How remembered reads have gone since start (`GET /metrics`).
    pub fn remembered_reads(&self) -> RememberedReads {
        RememberedReads {
            given_kept: self.remembered.given_kept.load(Ordering::Relaxed),
            read_anew: self.remembered.read_anew.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::db::tests::{temp_db, temp_db_with_pool};

    fn table_db(dir: &tempfile::TempDir) -> Db {
        let db = temp_db(dir);
        db.write(|conn| {
            Ok(conn.execute_batch("CREATE TABLE t (x INTEGER) STRICT; INSERT INTO t VALUES (1)")?)
        })
        .unwrap();
        db
    }

    /// `key` and the table's rows, read through `read_remembered`; `runs` counts the bodies run.
    fn rows(db: &Db, key: &str, runs: &AtomicUsize) -> String {
        let bytes = db
            .read_remembered(key, |conn| {
                runs.fetch_add(1, Ordering::SeqCst);
                let rows: String = conn.query_row(
                    "SELECT group_concat(x, ',') FROM (SELECT x FROM t ORDER BY x)",
                    [],
                    |row| row.get(0),
                )?;
                Ok(format!("{key}: {rows}").into_bytes())
            })
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Reads `key` until a read is given kept bytes (a connection's first read keeps nothing),
    /// then checks that the next reads are too.
    fn read_until_remembered(db: &Db, key: &str, expected: &str) {
        let runs = AtomicUsize::new(0);
        for _ in 0..5 {
            let before = runs.load(Ordering::SeqCst);
            assert_eq!(rows(db, key, &runs), expected);
            if runs.load(Ordering::SeqCst) == before {
                break;
            }
        }
        let remembered = runs.load(Ordering::SeqCst);
        for _ in 0..10 {
            assert_eq!(rows(db, key, &runs), expected);
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            remembered,
            "{key} is remembered"
        );
    }

    #[test]
    fn kept_bytes_are_given_again_until_a_commit_changes_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = table_db(&dir);
        let runs = AtomicUsize::new(0);
        read_until_remembered(&db, "a", "a: 1");

        // Commits that change nothing leave it (the dispatchers' empty claims at idle).
        db.write(|conn| Ok(conn.execute("UPDATE t SET x = 5 WHERE x = 99", [])?))
            .unwrap();
        db.write(|_| Ok(())).unwrap();
        read_until_remembered(&db, "a", "a: 1");

        // A commit through the writer shows at the next read.
        db.write(|conn| Ok(conn.execute("INSERT INTO t VALUES (2)", [])?))
            .unwrap();
        assert_eq!(rows(&db, "a", &runs), "a: 1,2");
        read_until_remembered(&db, "a", "a: 1,2");

        // So does one by another connection to the file, as another process would make it.
        let other = Connection::open(dir.path().join("nested/dir/crier.db")).unwrap();
        other.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_eq!(rows(&db, "a", &runs), "a: 1,2,3");
        read_until_remembered(&db, "a", "a: 1,2,3");

        // Another key is its own read; a failed read keeps nothing.
        read_until_remembered(&db, "b", "b: 1,2,3");
        let failed = db.read_remembered("c", |_| Err(AppError::NotFound));
        assert!(matches!(failed, Err(AppError::NotFound)), "{failed:?}");
        let before = runs.load(Ordering::SeqCst);
        assert_eq!(rows(&db, "c", &runs), "c: 1,2,3");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            before + 1,
            "the failure was not kept"
        );
        read_until_remembered(&db, "a", "a: 1,2,3");
    }

    #[test]
    fn what_is_kept_stays_within_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db(&dir);
        let runs = AtomicUsize::new(0);
        let read = |key: &str, len: usize, capacity: usize| {
            db.read_remembered(key, |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                let mut bytes = Vec::with_capacity(capacity.max(len));
                bytes.resize(len, b'x');
                Ok(bytes)
            })
            .unwrap()
        };
        let kept = |key: &str, len: usize| {
            let before = runs.load(Ordering::SeqCst);
            assert_eq!(read(key, len, 0).len(), len);
            runs.load(Ordering::SeqCst) == before
        };
        // The connection's first read keeps nothing.
        read("first", 1, 0);
        assert!(!kept("large", ENTRY_BYTES + 1));
        assert!(!kept("large", ENTRY_BYTES + 1), "too large to keep");

        // A buffer larger than its bytes is kept at their length.
        read("roomy", 10, 4 * KEPT_BYTES);
        assert!(kept("roomy", 10));
        assert!(db.remembered.kept().bytes < 100, "counted at its length");

        // Five of the largest kept size do not fit: the oldest goes first.
        let largest = ENTRY_BYTES - 64;
        for n in 0..5 {
            read(&format!("page {n}"), largest, 0);
        }
        let total = db.remembered.kept().bytes;
        assert!(total <= KEPT_BYTES, "{total} bytes kept");
        assert!(kept("page 4", largest), "the newest is kept");
        assert!(!kept("page 0", largest), "the oldest is not");

        // Nor do more than KEPT_ENTRIES small ones.
        for n in 0..KEPT_ENTRIES + 8 {
            read(&format!("small {n}"), 10, 0);
        }
        assert_eq!(db.remembered.kept().entries.len(), KEPT_ENTRIES);
        assert!(kept(&format!("small {}", KEPT_ENTRIES + 7), 10));
        assert!(!kept("small 0", 10));

        // The first read after a commit lets go of everything kept.
        db.write(|conn| Ok(conn.execute_batch("CREATE TABLE t (x INTEGER)")?))
            .unwrap();
        read("after", 10, 0);
        assert_eq!(db.remembered.kept().entries.len(), 0);
        assert_eq!(db.remembered.kept().bytes, 0);
    }

    /// Readers on two connections, more of them than connections so that reads wait for one,
    /// against commits from the writer and from another connection: no read is ever given a
    /// value older than one committed before it began, and reads between commits were given
    /// kept bytes.
    #[test]
    fn no_read_is_given_bytes_older_than_a_commit_made_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = temp_db_with_pool(&dir, 2);
        db.write(|conn| {
            Ok(conn
                .execute_batch("CREATE TABLE n (value INTEGER) STRICT; INSERT INTO n VALUES (0)")?)
        })
        .unwrap();
        let committed = std::sync::atomic::AtomicI64::new(0);
        let (reads, runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    while !done.load(Ordering::SeqCst) {
                        let floor = committed.load(Ordering::SeqCst);
                        let bytes = db
                            .read_remembered("n", |conn| {
                                runs.fetch_add(1, Ordering::SeqCst);
                                let value: i64 =
                                    conn.query_row("SELECT value FROM n", [], |row| row.get(0))?;
                                Ok(value.to_string().into_bytes())
                            })
                            .unwrap();
                        reads.fetch_add(1, Ordering::SeqCst);
                        let value: i64 = std::str::from_utf8(&bytes).unwrap().parse().unwrap();
                        assert!(value >= floor, "read {value} after {floor} was committed");
                    }
                });
            }
            let other = Connection::open(dir.path().join("nested/dir/crier.db")).unwrap();
            other.busy_timeout(Duration::from_secs(5)).unwrap();
            for value in 1..=400_i64 {
                if value % 2 == 0 {
                    db.write(|conn| Ok(conn.execute("UPDATE n SET value = ?1", [value])?))
                        .unwrap();
                } else {
                    other.execute("UPDATE n SET value = ?1", [value]).unwrap();
                }
                committed.store(value, Ordering::SeqCst);
                if value % 8 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        let (reads, runs) = (reads.into_inner(), runs.into_inner());
        assert!(
            runs < reads,
            "{reads} reads, every one of them ran its body"
        );
    }
}
