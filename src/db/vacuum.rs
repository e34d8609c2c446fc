//! Incremental auto-vacuum: the file gives back the pages that deletes and purges free.
//!
//! SQLite keeps the pages a delete frees inside the file (its freelist) for later inserts, so
//! without more the file never shrinks. In `auto_vacuum = INCREMENTAL` mode the janitor gives
//! them back to the filesystem after its sweeps (`return_free_pages`: `PRAGMA
//! incremental_vacuum` in batches of one short write transaction each). The mode is a property
//! of the file: a new database gets it before its first table; an existing one only through a
//! full `VACUUM` (`make_incremental`, run by `db::prepare`).

use rusqlite::Connection;

use crate::db::{Conversion, Db, sweep_in_batches};
use crate::error::AppError;

/// `PRAGMA auto_vacuum`'s value for incremental.
const INCREMENTAL: i64 = 2;

/// Pages given back per write transaction (8 MiB of 4 KiB pages): moving a page to fill a hole
/// rewrites it and its parent's pointer, so a batch stays short.
const PAGES_PER_BATCH: usize = 2048;

/// Whether the file is in incremental auto-vacuum mode.
pub fn is_incremental(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(conn.query_row("PRAGMA auto_vacuum", [], |row| row.get::<_, i64>(0))? == INCREMENTAL)
}

/// The pages the file keeps free (its freelist).
pub fn free_pages(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row("PRAGMA freelist_count", [], |row| row.get::<_, i64>(0))?
        .max(0)
        .unsigned_abs())
}

/// The file's size as SQLite counts it: its pages times the page size.
pub fn size_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(pages.saturating_mul(page_size).max(0).unsigned_abs())
}

/// Puts the file in incremental auto-vacuum mode. A database without tables yet takes the mode
/// as its first table is written. An existing one is rewritten by one `VACUUM` (the only way
/// SQLite changes the mode) when `conversion` allows its size; a larger one is left as it is,
/// with a warning naming `crier migrate`, which converts whatever the size. Must run on a
/// connection without an open transaction.
pub fn make_incremental(conn: &Connection, conversion: Conversion) -> rusqlite::Result<()> {
    if is_incremental(conn)? {
        return Ok(());
    }
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
    if tables == 0 {
        return conn.pragma_update(None, "auto_vacuum", "INCREMENTAL");
    }
    let bytes = size_bytes(conn)?;
    if let Conversion::UpTo(limit) = conversion
        && bytes > limit
    {
        log::warn!(
            bytes = bytes;
            "the database is not in incremental auto-vacuum mode, so it never shrinks after \
             retention purges; stop crier and run `crier migrate` once to convert it (a full \
             VACUUM: it needs as much free disk as the file's size)"
        );
        return Ok(());
    }
    log::info!(bytes = bytes; "converting the database to incremental auto-vacuum (one VACUUM)");
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")
}

/// Gives the file's free pages back to the filesystem, a batch per write transaction, when the
/// file is in incremental mode (nothing otherwise). Returns how many pages were given back. In
/// WAL mode the file itself shrinks at the next checkpoint.
pub fn return_free_pages(db: &Db) -> Result<usize, AppError> {
    sweep_in_batches(db, PAGES_PER_BATCH, |conn, limit| {
        if !is_incremental(conn)? {
            return Ok(0);
        }
        let before = free_pages(conn)?;
        if before == 0 {
            return Ok(0);
        }
        // The pragma moves one page per step (each step answers an empty row): run it out.
        let mut statement = conn.prepare(&format!("PRAGMA incremental_vacuum({limit})"))?;
        let mut rows = statement.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        let after = free_pages(conn)?;
        Ok(usize::try_from(before.saturating_sub(after)).unwrap_or(usize::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Synchronous;
    use crate::db::{DbSettings, prepare_converting};
    use std::time::Duration;

    fn settings(dir: &tempfile::TempDir) -> DbSettings {
        DbSettings {
            path: dir.path().join("crier.db"),
            pool_size: 2,
            busy_timeout: Duration::from_millis(200),
            synchronous: Synchronous::Normal,
        }
    }

    /// A database in the old mode (no auto-vacuum) with `rows` rows of a page each.
    fn old_style_database(settings: &DbSettings, rows: i64) {
        let conn = Connection::open(&settings.path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (x BLOB) STRICT;",
        )
        .unwrap();
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
             INSERT INTO t SELECT zeroblob(3000) FROM n",
            [rows],
        )
        .unwrap();
        assert!(!is_incremental(&conn).unwrap());
    }

    #[test]
    fn the_writer_checkpoints_as_told() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&settings(&dir)).unwrap();
        let pages = |db: &Db| {
            db.write(|conn| {
                Ok(conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0))?)
            })
            .unwrap()
        };
        assert_eq!(pages(&db), 1000);
        db.set_checkpoint_pages(0).unwrap();
        assert_eq!(pages(&db), 0);
        db.set_checkpoint_pages(4000).unwrap();
        assert_eq!(pages(&db), 4000);
    }

    #[test]
    fn a_new_database_is_incremental_from_its_first_table() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(&dir);
        prepare_converting(&settings, Conversion::UpTo(0)).unwrap();
        let conn = Connection::open(&settings.path).unwrap();
        assert!(is_incremental(&conn).unwrap());
    }

    #[test]
    fn an_existing_database_converts_within_the_limit_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(&dir);
        old_style_database(&settings, 500);

        // Over the limit: left as it is (the warning names `crier migrate`), migrated all the same.
        prepare_converting(&settings, Conversion::UpTo(64 * 1024)).unwrap();
        let conn = Connection::open(&settings.path).unwrap();
        assert!(!is_incremental(&conn).unwrap());
        assert_eq!(
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            500
        );
        drop(conn);

        prepare_converting(&settings, Conversion::Always).unwrap();
        let conn = Connection::open(&settings.path).unwrap();
        assert!(is_incremental(&conn).unwrap());
        assert_eq!(
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            500,
            "the VACUUM keeps every row"
        );
    }

    #[test]
    fn opening_converts_a_small_database_and_freed_pages_go_back_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(&dir);
        old_style_database(&settings, 6000);
        // About 18 MiB, under the start's limit: `Db::open` converts it.
        let db = Db::open(&settings).unwrap();
        let state = |db: &Db| {
            db.read(|conn| Ok((is_incremental(conn)?, free_pages(conn)?, size_bytes(conn)?)))
                .unwrap()
        };
        let (incremental, _, _) = state(&db);
        assert!(incremental);
        // Migrations that drop an index free its pages (V42 drops two): given back like any.
        return_free_pages(&db).unwrap();
        assert_eq!(state(&db).1, 0);
        assert_eq!(return_free_pages(&db).unwrap(), 0, "nothing to give back");

        db.write(|conn| Ok(conn.execute("DELETE FROM t WHERE rowid > 10", [])?))
            .unwrap();
        let (_, free, size) = state(&db);
        assert!(
            free > PAGES_PER_BATCH as u64,
            "{free} pages: more than one batch"
        );
        let returned = return_free_pages(&db).unwrap();
        assert_eq!(returned as u64, free);
        let (_, free_after, size_after) = state(&db);
        assert_eq!(free_after, 0);
        assert!(size_after < size / 10, "{size} bytes, then {size_after}");
    }
}
