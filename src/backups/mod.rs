//! Scheduled backups while the server runs: every `--backup-interval-hours`, a consistent,
//! verified copy of the database in `--backup-dir`, named `crier-YYYYMMDDTHHMMSSZ.db` by the
//! time it was taken, keeping the newest `--backup-keep`. Off unless `--backup-dir` is given.
//!
//! Each copy is made by `db::backup::backup_file`, the very function behind `crier backup`: a
//! `VACUUM INTO` snapshot written `0600` under a hidden temporary name in the directory, checked
//! with `PRAGMA integrity_check`, then given its name, so a name always holds a complete,
//! verified database. Only after a copy succeeded are the oldest beyond `keep` deleted, and only
//! files whose name is exactly this pattern (and the hidden partial copy of one, left by a
//! process killed mid-copy): anything else in the directory is left alone, and a failed round
//! deletes nothing.
//!
//! When: the newest backup already in the directory (by its name) says when the next is due, one
//! interval after it; with none, or one older than an interval, a backup is taken at start. So a
//! server restarted more often than the interval still backs up, and a server in a restart loop
//! does not rotate its good backups away with a copy per start. A failed round is retried after
//! `RETRY_AFTER` (or the interval, if shorter). The schedule follows `App::clock`, so tests move
//! it by moving their clock. `runner` is the thread that does this.

pub mod runner;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use clap::Args;

use crate::clock::Timestamp;
use crate::db::DbSettings;
use crate::db::backup::{self, BackupSummary};
use crate::error::StartupError;
use crate::settings::values::{non_empty_path, whole_number};
use crate::settings::{Problems, Setting, SettingArg};

/// How soon a failed backup is tried again (unless the interval is shorter).
pub const RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// The scheduled-backup settings as given, before validation (flattened into the server's).
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BackupArgs {
    /// Directory for scheduled backups while the server runs (created 0700 if missing), each a verified copy like `crier backup` makes [default: none, no scheduled backups].
    #[arg(crier_setting = BACKUP_DIR)]
    pub backup_dir: Option<String>,

    /// Hours between scheduled backups (1–8760); the first is taken at start unless the newest in the directory is younger than this.
    #[arg(crier_setting = BACKUP_INTERVAL_HOURS, default_value = "24")]
    pub backup_interval_hours: String,

    /// How many scheduled backups to keep (1–10000); older ones are deleted after each new one.
    #[arg(crier_setting = BACKUP_KEEP, default_value = "7")]
    pub backup_keep: String,
}

const BACKUP_DIR: Setting = Setting::new("backup-dir", "CRIER_BACKUP_DIR");
const BACKUP_INTERVAL_HOURS: Setting =
    Setting::new("backup-interval-hours", "CRIER_BACKUP_INTERVAL_HOURS");
const BACKUP_KEEP: Setting = Setting::new("backup-keep", "CRIER_BACKUP_KEEP");

/// The validated scheduled-backup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSettings {
    /// Where backups go; `None` turns scheduled backups off.
    pub dir: Option<PathBuf>,
    /// Time between two backups (a `Duration` so tests can use seconds).
    pub interval: Duration,
    /// How many backups to keep (at least 1).
    pub keep: usize,
    /// The longest the runner sleeps before it looks at the clock again. The schedule follows
    /// `App::clock`; waking now and then lets a test's manual clock move it too.
    pub check_every: Duration,
}

impl Default for BackupSettings {
    fn default() -> BackupSettings {
        BackupSettings {
            dir: None,
            interval: Duration::from_secs(24 * 60 * 60),
            keep: 7,
            check_every: Duration::from_secs(60),
        }
    }
}

impl BackupArgs {
    /// Types the settings, or gives every problem.
    pub fn validate(&self) -> Result<BackupSettings, Vec<String>> {
        let mut p = Problems::default();
        let dir = match self
            .backup_dir
            .as_deref()
            .filter(|dir| !dir.trim().is_empty())
        {
            Some(dir) => p.check(BACKUP_DIR, non_empty_path(dir)).map(Some),
            // Blank counts as not given (`CRIER_BACKUP_DIR=` in an environment file).
            None => Some(None),
        };
        let hours = p.check(
            BACKUP_INTERVAL_HOURS,
            whole_number(&self.backup_interval_hours, 1, 24 * 365),
        );
        let keep = p.check(BACKUP_KEEP, whole_number(&self.backup_keep, 1, 10_000));
        let settings = (|| {
            Some(BackupSettings {
                dir: dir?,
                interval: Duration::from_secs(hours? * 60 * 60),
                keep: usize::try_from(keep?).ok()?,
                ..BackupSettings::default()
            })
        })();
        p.finish(settings)
    }
}

const PREFIX: &str = "crier-";
const SUFFIX: &str = ".db";
const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// The name of the backup taken at `at`: `crier-20261203T194500Z.db`.
pub fn file_name(at: Timestamp) -> String {
    format!("{PREFIX}{}{SUFFIX}", at.format(STAMP))
}

/// When the backup named `name` was taken, if `name` is exactly a scheduled backup's name.
pub fn taken_at(name: &str) -> Option<Timestamp> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let bytes = stamp.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes.iter().enumerate().all(|(i, byte)| match i {
            8 => *byte == b'T',
            15 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

/// The scheduled backups in `dir`, oldest first (their names sort by time).
pub fn list(dir: &Path) -> std::io::Result<Vec<(Timestamp, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(at) = name.to_str().and_then(taken_at) else {
            continue;
        };
        if entry.file_type()?.is_file() {
            found.push((at, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// When the next backup is due, given the newest one in the directory: one interval after it,
/// or `now` when there is none.
pub fn next_due(newest: Option<Timestamp>, interval: Duration, now: Timestamp) -> Timestamp {
    match newest {
        Some(at) => at + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX),
        None => now,
    }
}

/// A finished scheduled backup.
#[derive(Debug)]
pub struct Taken {
    pub path: PathBuf,
    pub summary: BackupSummary,
    /// The older backups deleted to keep `keep`.
    pub pruned: Vec<PathBuf>,
}

/// One round: creates `dir` (`0700`) if missing, writes the backup taken `now` into it, then
/// deletes the oldest scheduled backups beyond `keep`. Nothing is deleted when the copy fails.
pub fn take(
    db: &DbSettings,
    dir: &Path,
    keep: usize,
    now: Timestamp,
) -> Result<Taken, StartupError> {
    crate::db::files::create_private_dir(dir)
        .map_err(|err| StartupError(format!("cannot create {}: {err}", dir.display())))?;
    let path = dir.join(file_name(now));
    let summary = backup::backup_file(db, &path)?;
    let pruned = prune(dir, keep).map_err(|err| {
        StartupError(format!(
            "backed up to {}, but could not delete old backups in {}: {err}",
            path.display(),
            dir.display()
        ))
    })?;
    Ok(Taken {
        path,
        summary,
        pruned,
    })
}

/// Deletes the oldest scheduled backups in `dir` beyond the newest `keep`, and the partial
/// copies of scheduled backups left by a process that no longer runs (one killed mid-copy);
/// gives those deleted.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let backups = list(dir)?;
    let excess = backups.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for (_, path) in backups.into_iter().take(excess) {
        std::fs::remove_file(&path)?;
        deleted.push(path);
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(partial_of) else {
            continue;
        };
        let running = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !running && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            deleted.push(entry.path());
        }
    }
    Ok(deleted)
}

/// The process that wrote `name`, if `name` is a scheduled backup's partial copy:
/// `.crier-YYYYMMDDTHHMMSSZ.db.PID.partial` (see `db::backup::backup_database`).
fn partial_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(".partial")?;
    let (backup, pid) = rest.rsplit_once('.')?;
    taken_at(backup)?;
    if pid.is_empty() || !pid.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        crate::clock::parse_timestamp(text).unwrap()
    }

    #[test]
    fn names_carry_the_time_and_only_exact_names_count() {
        let when = at("2026-12-03T19:45:07.123Z");
        assert_eq!(file_name(when), "crier-20261203T194507Z.db");
        assert_eq!(
            taken_at("crier-20261203T194507Z.db"),
            Some(at("2026-12-03T19:45:07Z"))
        );
        for other in [
            "crier.db",
            "crier-20261203T194507Z.db-wal",
            ".crier-20261203T194507Z.db.12.partial",
            "crier-2026123T1945070Z.db",
            "crier-+0261203T194507Z.db",
            "crier-20261303T194507Z.db",
            "mine-20261203T194507Z.db",
        ] {
            assert_eq!(taken_at(other), None, "{other}");
        }
    }

    #[test]
    fn the_next_backup_is_one_interval_after_the_newest_or_now() {
        let now = at("2026-12-03T12:00:00Z");
        let day = Duration::from_secs(86_400);
        assert_eq!(next_due(None, day, now), now);
        assert_eq!(
            next_due(Some(at("2026-12-03T02:00:00Z")), day, now),
            at("2026-12-04T02:00:00Z")
        );
        assert!(next_due(Some(at("2026-12-01T00:00:00Z")), day, now) < now);
    }

    #[test]
    fn pruning_keeps_the_newest_and_touches_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "crier-20261201T000000Z.db",
            "crier-20261203T000000Z.db",
            "crier-20261202T000000Z.db",
            "notes.txt",
            "crier-old.db",
            // Left by a process killed mid-copy (no such pid: above the kernel's maximum).
            ".crier-20261202T000000Z.db.4194305.partial",
            // Still being written by a running process (pid 1 always runs).
            ".crier-20261204T000000Z.db.1.partial",
            ".notes.4194305.partial",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let deleted = prune(dir.path(), 1).unwrap();
        assert_eq!(
            deleted,
            vec![
                dir.path().join("crier-20261201T000000Z.db"),
                dir.path().join("crier-20261202T000000Z.db"),
                dir.path()
                    .join(".crier-20261202T000000Z.db.4194305.partial"),
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                ".crier-20261204T000000Z.db.1.partial",
                ".notes.4194305.partial",
                "crier-20261203T000000Z.db",
                "crier-old.db",
                "notes.txt"
            ]
        );
    }

    #[test]
    fn settings_are_validated_together() {
        let args = BackupArgs {
            backup_dir: Some("  ".into()),
            backup_interval_hours: "0".into(),
            backup_keep: "none".into(),
        };
        let problems = args.validate().unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("--backup-interval-hours"));
        assert!(problems[1].starts_with("--backup-keep"));

        let settings = crate::settings::defaults::<BackupArgs>()
            .validate()
            .unwrap();
        assert_eq!(settings, BackupSettings::default());
        let settings = BackupArgs {
            backup_dir: Some("/var/backups/crier".into()),
            backup_interval_hours: "6".into(),
            backup_keep: "3".into(),
        }
        .validate()
        .unwrap();
        assert_eq!(settings.dir, Some(PathBuf::from("/var/backups/crier")));
        assert_eq!(settings.interval, Duration::from_secs(6 * 3600));
        assert_eq!(settings.keep, 3);
    }
}
