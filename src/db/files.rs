//! The database's files are the operator's alone: they hold password hashes, message bodies and
//! contacts. A directory crier creates for them is `0700`; the database, its `-wal` and `-shm`,
//! backups and spooled uploads are `0600`, set when each is created (never created readable and
//! tightened after). SQLite gives `-wal` and `-shm` the mode of the database file, so creating
//! that one `0600` before SQLite opens it covers all three.
//!
//! On start, a database (or its `-wal`/`-shm`) left readable by others by an older crier is
//! tightened to `0600`, with a log line. Directories that already exist are left as they are:
//! the database may sit in a directory that is not crier's (one shared with other programs).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of a directory crier creates for its files.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of every file crier creates with data in it.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parent, each `0700`; an existing one is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
}

/// Creates `path`, which must not exist, `0600`, for writing.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// The database file and the two SQLite keeps beside it in WAL mode.
fn database_files(path: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_owned(), with_suffix("-wal"), with_suffix("-shm")]
}

/// The lock one crier process holds on its database while it serves or migrates it: an
/// exclusive `flock` on `{database}.lock` beside it (created `0600`, left in place, empty). The
/// kernel drops it when the process ends, however it ends.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
}

/// Where the lock of the database at `path` is: `{database}.lock` beside the file itself, the
/// one a symbolic link points to when `path` is one (as SQLite puts its `-wal` there), so that
/// two servers given the same database by two names still meet at one lock.
pub fn lock_path(path: &Path) -> PathBuf {
    let database = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut name = database.into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes a database's lock, the file at `lock_path` (from `lock_path`); `Ok(None)` when another
/// process holds it.
pub fn lock_database(lock_path: &Path) -> io::Result<Option<DatabaseLock>> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(lock_path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(DatabaseLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(err)) => Err(err),
    }
}

/// Before SQLite opens the database at `path`: creates it empty and `0600` if it does not exist
/// (SQLite then makes its `-wal` and `-shm` alike), and tightens to `0600` those of the three
/// that exist and are readable or writable by others. Returns the files it tightened.
pub fn make_database_private(path: &Path) -> io::Result<Vec<PathBuf>> {
    match create_private_file(path) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let mut tightened = Vec::new();
    for file in database_files(path) {
        let mode = match std::fs::metadata(&file) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
            tightened.push(file);
        }
    }
    Ok(tightened)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn one_holder_at_a_time_takes_the_database_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("crier.db");
        let first = lock_database(&lock_path(&db))
            .unwrap()
            .expect("the first takes it");
        assert_eq!(mode(&dir.path().join("crier.db.lock")), 0o600);
        assert!(
            lock_database(&lock_path(&db)).unwrap().is_none(),
            "a second took it too"
        );
        drop(first);
        assert!(
            lock_database(&lock_path(&db)).unwrap().is_some(),
            "not given back"
        );
    }

    #[test]
    fn a_database_reached_through_a_symbolic_link_has_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("crier.db");
        std::fs::write(&db, b"").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = elsewhere.path().join("crier.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let _held = lock_database(&lock_path(&db))
            .unwrap()
            .expect("the first takes it");
        assert!(
            lock_database(&lock_path(&link)).unwrap().is_none(),
            "the link's name took a lock of its own"
        );
        assert!(!elsewhere.path().join("crier.db.lock").exists());
    }

    #[test]
    fn new_files_and_directories_are_private_and_old_files_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);

        let db = nested.join("crier.db");
        assert!(make_database_private(&db).unwrap().is_empty());
        assert_eq!(mode(&db), 0o600);

        let wal = nested.join("crier.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
        let tightened = make_database_private(&db).unwrap();
        assert_eq!(tightened, vec![db.clone(), wal.clone()]);
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));

        assert!(
            create_private_file(&db).is_err(),
            "an existing file was reused"
        );
        let fresh = nested.join("upload");
        create_private_file(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }
}
