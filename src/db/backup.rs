//! Online backups: a consistent copy of the live database in one new file.
//!
//! `VACUUM INTO` reads the database inside one read transaction, so the copy is a snapshot of a
//! single moment even while the server keeps writing, and it never blocks writers (WAL). The copy
//! is written beside the target under a hidden temporary name, checked, then linked to the target
//! name, so the target path holds either nothing or a complete, verified database.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::DbSettings;
use crate::error::StartupError;

/// What a finished backup contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub bytes: u64,
    pub tables: u64,
}

/// Opens the database `settings` names (it must exist) on a connection of its own and copies it
/// to `target` with `backup_database`: what `crier backup` does, and each scheduled backup
/// (`crate::backups`).
pub fn backup_file(settings: &DbSettings, target: &Path) -> Result<BackupSummary, StartupError> {
    let conn = super::open_existing(settings)?;
    backup_database(&conn, target)
}

/// Copies the database behind `conn` to `target`, which must not exist yet. Never overwrites:
/// the finished copy is hard-linked to its name, which fails if anything took the name
/// meanwhile.
pub fn backup_database(conn: &Connection, target: &Path) -> Result<BackupSummary, StartupError> {
    if target.exists() {
        return Err(already_exists(target));
    }
    let file_name = target
        .file_name()
        .ok_or_else(|| StartupError(format!("{} is not a file path", target.display())))?;
    // Hidden, and unique to this process, so two backups never write the same partial file.
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(file_name);
    partial_name.push(format!(".{}.partial", std::process::id()));
    let partial = target.with_file_name(partial_name);

    let copied = copy_and_verify(conn, &partial).and_then(|summary| {
        match std::fs::hard_link(&partial, target) {
            Ok(()) => Ok(summary),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(already_exists(target))
            }
            // A file system without hard links: rename, which is atomic but would replace a
            // file created since the check above.
            Err(_) => std::fs::rename(&partial, target)
                .map(|()| summary)
                .map_err(|err| StartupError(format!("naming {}: {err}", target.display()))),
        }
    });
    let _ = std::fs::remove_file(&partial);
    copied
}

fn already_exists(target: &Path) -> StartupError {
    StartupError(format!(
        "{} already exists; choose a new file name",
        target.display()
    ))
}

fn copy_and_verify(conn: &Connection, partial: &Path) -> Result<BackupSummary, StartupError> {
    let partial_text = partial
        .to_str()
        .ok_or_else(|| StartupError("the path is not valid UTF-8".to_owned()))?;
    // Created empty and 0600 first: `VACUUM INTO` fills an empty file, and would otherwise
    // create it readable by others (see `db::files`).
    super::files::create_private_file(partial)
        .map_err(|err| StartupError(format!("writing the copy: {err}")))?;
    conn.execute("VACUUM INTO ?1", [partial_text])
        .map_err(|err| StartupError(format!("writing the copy: {err}")))?;

    let copy = Connection::open_with_flags(partial, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|err| StartupError(format!("reopening the copy: {err}")))?;
    let verdict: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|err| StartupError(format!("checking the copy: {err}")))?;
    if verdict != "ok" {
        return Err(StartupError(format!(
            "the copy failed its integrity check: {verdict}"
        )));
    }
    let tables: i64 = copy
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(|err| StartupError(format!("reading the copy: {err}")))?;
    let bytes = std::fs::metadata(partial)
        .map_err(|err| StartupError(format!("reading the copy: {err}")))?
        .len();
    Ok(BackupSummary {
        bytes,
        tables: u64::try_from(tables).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_copies_data_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let source = Connection::open(dir.path().join("live.db")).unwrap();
        source
            .execute_batch("CREATE TABLE t (x TEXT) STRICT; INSERT INTO t VALUES ('kept');")
            .unwrap();
        let target = dir.path().join("copy.db");

        let summary = backup_database(&source, &target).unwrap();
        assert_eq!(summary.tables, 1);
        assert!(summary.bytes > 0);
        let copy = Connection::open(&target).unwrap();
        let value: String = copy.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(value, "kept");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let before = std::fs::read(&target).unwrap();
        let err = backup_database(&source, &target).unwrap_err();
        assert!(err.0.contains("already exists"), "{}", err.0);
        assert_eq!(std::fs::read(&target).unwrap(), before);
    }

    #[test]
    fn backup_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let source = Connection::open(dir.path().join("live.db")).unwrap();
        let target = dir.path().join("no/such/dir/copy.db");
        assert!(backup_database(&source, &target).is_err());
        assert!(!target.exists());
    }
}
