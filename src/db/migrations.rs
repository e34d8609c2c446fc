//! Schema migrations: the SQL files in `migrations/`, embedded at compile time by refinery.
//!
//! `run` applies pending migrations in one transaction (all or none). `status` compares what the
//! database has applied with what this binary carries, for `crier doctor`. Migrations are never
//! edited once released: a changed file shows up as divergent.

use rusqlite::Connection;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Applies every pending migration; returns the names applied now (empty when up to date).
/// Refuses a database that has migrations this binary does not know or whose files changed.
pub fn run(conn: &mut Connection) -> Result<Vec<String>, refinery::Error> {
    let report = embedded::migrations::runner()
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(conn)?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|migration| migration.to_string())
        .collect())
}

/// How the database's applied migrations compare with the ones embedded in this binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied and identical to the embedded file.
    pub applied: Vec<String>,
    /// Embedded but not applied yet (`crier migrate` applies them).
    pub pending: Vec<String>,
    /// Applied but unknown to this binary: the database was migrated by a newer crier.
    pub unknown: Vec<String>,
    /// Applied with a different checksum than the embedded file of the same version.
    pub divergent: Vec<String>,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.divergent.is_empty()
    }
}

/// Reads the migration history without changing anything.
pub fn status(conn: &mut Connection) -> Result<MigrationStatus, String> {
    let runner = embedded::migrations::runner();
    // refinery creates its history table on the first run; before that nothing is applied.
    let has_history: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema
                            WHERE type = 'table' AND name = 'refinery_schema_history')",
            [],
            |row| row.get(0),
        )
        .map_err(|err| format!("reading the schema: {err}"))?;
    let applied = if has_history {
        runner
            .get_applied_migrations(conn)
            .map_err(|err| err.to_string())?
    } else {
        Vec::new()
    };
    // In version order (the embedded list is ordered by file name, so V10 would precede V2).
    let mut embedded: Vec<_> = runner.get_migrations().iter().collect();
    embedded.sort_by_key(|migration| migration.version());
    let mut status = MigrationStatus::default();
    for migration in &embedded {
        match applied.iter().find(|a| a.version() == migration.version()) {
            Some(done) if done.checksum() == migration.checksum() => {
                status.applied.push(migration.to_string())
            }
            Some(done) => status.divergent.push(done.to_string()),
            None => status.pending.push(migration.to_string()),
        }
    }
    for done in &applied {
        if !embedded.iter().any(|m| m.version() == done.version()) {
            status.unknown.push(done.to_string());
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_has_everything_pending_then_current() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = status(&mut conn).unwrap();
        assert!(before.applied.is_empty());
        assert!(!before.pending.is_empty());
        assert!(!before.is_current());

        let applied = run(&mut conn).unwrap();
        assert_eq!(applied, before.pending);
        let after = status(&mut conn).unwrap();
        assert!(after.is_current(), "{after:?}");
        assert!(
            run(&mut conn).unwrap().is_empty(),
            "second run applies nothing"
        );
    }

    #[test]
    fn a_migration_from_a_newer_binary_is_unknown() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (9999, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
            [],
        )
        .unwrap();
        let status = status(&mut conn).unwrap();
        assert_eq!(status.unknown, vec!["V9999__from_the_future".to_owned()]);
        assert!(!status.is_current());
        assert!(
            run(&mut conn).is_err(),
            "run refuses a database it does not know"
        );
    }

    /// The tables written on every send, attempt, charge and fan-out chunk check their words
    /// with comparisons: an `IN` list of three words or more makes SQLite build a temporary
    /// b-tree of the words for every row written (V21, V25).
    #[test]
    fn hot_tables_check_their_words_without_in_lists() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        for table in [
            "messages",
            "message_attempts",
            "billing_reservations",
            "usage_counters",
            "wallet_ledger",
            "campaigns",
            "campaign_tallies",
            "contacts",
        ] {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                    [table],
                    |row| row.get(0),
                )
                .unwrap();
            let upper = sql.to_uppercase();
            for (at, _) in upper.match_indices(" IN") {
                let rest = upper[at + 3..].trim_start();
                let Some(list) = rest.strip_prefix('(') else {
                    continue;
                };
                let list = &list[..list.find(')').unwrap_or(list.len())];
                assert!(
                    list.split(',').count() <= 2,
                    "{table} checks an IN list of {} words: {list}",
                    list.split(',').count()
                );
            }
        }
    }
}
