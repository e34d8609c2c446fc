//! `sweep_in_batches`: how every maintenance delete works off a backlog.

use std::time::Duration;

use rusqlite::Connection;

use crate::db::Db;
use crate::error::AppError;

/// The pause between two full batches: a backlog is worked off in small transactions with room
/// for the request path's writers in between, so a sweep never holds the write lock for long.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(5);

/// Runs `delete_batch(conn, batch_size)` — which deletes at most `batch_size` rows and returns
/// how many it deleted — one write transaction per batch, until a batch comes back short.
/// Returns the total deleted. An error stops the sweep and is returned; the batches committed
/// before it stay deleted.
pub fn sweep_in_batches(
    db: &Db,
    batch_size: usize,
    mut delete_batch: impl FnMut(&Connection, usize) -> Result<usize, AppError>,
) -> Result<usize, AppError> {
    let mut total = 0;
    loop {
        let deleted = db.write(|conn| delete_batch(conn, batch_size))?;
        total += deleted;
        if deleted < batch_size {
            return Ok(total);
        }
        std::thread::sleep(PAUSE_BETWEEN_BATCHES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with_rows(dir: &tempfile::TempDir, rows: i64) -> Db {
        let db = crate::db::tests::temp_db_with_pool(dir, 2);
        db.write(|conn| {
            conn.execute_batch("CREATE TABLE t (x INTEGER) STRICT")?;
            conn.execute(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
                 INSERT INTO t SELECT x FROM n",
                [rows],
            )?;
            Ok(())
        })
        .unwrap();
        db
    }

    fn delete_some(conn: &Connection, limit: usize) -> Result<usize, AppError> {
        Ok(conn.execute(
            "DELETE FROM t WHERE rowid IN (SELECT rowid FROM t LIMIT ?1)",
            [limit as i64],
        )?)
    }

    fn remaining(db: &Db) -> i64 {
        db.read(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap()
    }

    #[test]
    fn a_backlog_goes_in_batches_until_one_comes_back_short() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_rows(&dir, 1234);
        let mut batches = Vec::new();
        let total = sweep_in_batches(&db, 500, |conn, limit| {
            let deleted = delete_some(conn, limit)?;
            batches.push(deleted);
            Ok(deleted)
        })
        .unwrap();
        assert_eq!(total, 1234);
        assert_eq!(batches, [500, 500, 234], "one transaction per batch");
        assert_eq!(remaining(&db), 0);
    }

    #[test]
    fn an_exact_multiple_ends_with_an_empty_batch_and_nothing_left_is_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_rows(&dir, 1000);
        let mut batches = Vec::new();
        let total = sweep_in_batches(&db, 500, |conn, limit| {
            let deleted = delete_some(conn, limit)?;
            batches.push(deleted);
            Ok(deleted)
        })
        .unwrap();
        assert_eq!((total, batches), (1000, vec![500, 500, 0]));

        let mut calls = 0;
        let total = sweep_in_batches(&db, 500, |conn, limit| {
            calls += 1;
            delete_some(conn, limit)
        })
        .unwrap();
        assert_eq!((total, calls), (0, 1));
    }

    #[test]
    fn an_error_stops_the_sweep_and_keeps_the_batches_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_with_rows(&dir, 1234);
        let mut calls = 0;
        let result = sweep_in_batches(&db, 500, |conn, limit| {
            calls += 1;
            let deleted = delete_some(conn, limit)?;
            if calls == 2 {
                return Err(AppError::internal("the second batch fails"));
            }
            Ok(deleted)
        });
        assert!(matches!(result, Err(AppError::Internal(_))), "{result:?}");
        assert_eq!(calls, 2, "no batch after the failing one");
        // The first batch committed; the failing one rolled back.
        assert_eq!(remaining(&db), 734);
    }
}
