//! Scheduled backups while the server runs (`--backup-dir`): verified, private copies named by
//! the time they were taken, the newest `--backup-keep` kept, a schedule that survives a
//! restart, and a failing directory that is logged and counted while the server keeps serving.
//! The schedule follows the server's clock, so these tests move it instead of waiting.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{TestServer, eventually, logs, test_epoch};
use crate::process::crier;
use crier::web::router::Router;

const HOUR: Duration = Duration::from_secs(3600);

fn with_backups(dir: PathBuf, keep: usize) -> impl FnOnce(&mut crier::config::Config) {
    move |config| {
        config.backups.dir = Some(dir);
        config.backups.interval = HOUR;
        config.backups.keep = keep;
    }
}

/// The value of an unlabelled series in `/metrics`.
fn metric(server: &TestServer, name: &str) -> Option<i64> {
    let response = server.get("/metrics");
    assert_eq!(response.status, 200);
    let text = response.text();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .map(|value| value.parse().unwrap())
}

/// Waits until the runner has written `count` backups since start.
fn await_backups(server: &TestServer, count: i64) {
    eventually(&format!("{count} scheduled backups"), || {
        (metric(server, "crier_backups_total") == Some(count)).then_some(())
    });
}

/// Every file name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The name of the backup taken `hours` after the test epoch.
fn taken(hours: i64) -> String {
    (test_epoch() + chrono::Duration::hours(hours))
        .format("crier-%Y%m%dT%H%M%SZ.db")
        .to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn scheduled_backups_are_verified_private_copies_and_only_the_newest_are_kept() {
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("backups/crier");
    let server = TestServer::start_with(with_backups(dir.clone(), 2), Router::standard());

    // None in the directory: the first is taken at start, at the server's time.
    await_backups(&server, 1);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(names(&dir), vec![taken(0)]);
    // Something to find in the next copy: the readiness probe's row, written at the epoch.
    assert_eq!(server.get("/readyz").status, 200);

    server.clock.advance(chrono::Duration::hours(1));
    await_backups(&server, 2);
    server.clock.advance(chrono::Duration::hours(1));
    await_backups(&server, 3);
    // Two kept, the oldest deleted; no temporary file left behind.
    assert_eq!(names(&dir), vec![taken(1), taken(2)]);
    assert_eq!(
        metric(&server, "crier_backup_last_success_timestamp_seconds"),
        Some(test_epoch().timestamp() + 2 * 3600)
    );
    assert_eq!(metric(&server, "crier_backup_failures_total"), Some(0));
    assert!(metric(&server, "crier_backup_last_size_bytes").unwrap() > 0);

    for name in names(&dir) {
        let copy = dir.join(&name);
        assert_eq!(mode(&copy), 0o600, "{name}");
        let conn = rusqlite::Connection::open_with_flags(
            &copy,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "{name}");
        let probed_at: String = conn
            .query_row("SELECT checked_at FROM health_probe", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            crier::clock::parse_timestamp(&probed_at),
            Some(test_epoch()),
            "{name}"
        );
        // A complete crier database: doctor finds nothing wrong with it.
        let doctor = crier()
            .args(["doctor", "--db-path"])
            .arg(&copy)
            .output()
            .unwrap();
        assert_eq!(
            doctor.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&doctor.stdout)
        );
    }

    // After a restart the newest backup sets the schedule and the metric: the restarted
    // server's clock is back at the epoch, two hours before that backup.
    let data = server.stop_keeping_data();
    let server = TestServer::start_on(data, Router::standard());
    assert_eq!(
        metric(&server, "crier_backup_last_success_timestamp_seconds"),
        Some(test_epoch().timestamp() + 2 * 3600)
    );
    // Due one interval after the newest: at 03:00, not before.
    server.clock.advance(chrono::Duration::hours(3));
    await_backups(&server, 1);
    assert_eq!(names(&dir), vec![taken(2), taken(3)]); // One backup since the restart: none was taken at start.
    assert_eq!(metric(&server, "crier_backups_total"), Some(1));
}

#[test]
fn a_directory_that_cannot_be_written_is_logged_and_counted_and_the_server_keeps_serving() {
    let outside = tempfile::tempdir().unwrap();
    // A regular file where a directory should be: nothing can be created under it (even by root).
    let blocker = outside.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let dir = blocker.join("backups");
    let server = TestServer::start_with(with_backups(dir.clone(), 7), Router::standard());

    eventually("a counted failure", || {
        (metric(&server, "crier_backup_failures_total") == Some(1)).then_some(())
    });
    let failures = logs::with_field(
        "scheduled backup failed; older backups are kept",
        "dir",
        &dir.display().to_string(),
    );
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].level, log::Level::Error);
    assert!(
        failures[0].fields["error"].contains("cannot create"),
        "{failures:?}"
    );
    assert_eq!(metric(&server, "crier_backups_total"), Some(0));
    assert_eq!(
        metric(&server, "crier_backup_last_success_timestamp_seconds"),
        Some(0)
    );
    assert_eq!(server.get("/readyz").status, 200);
    assert_eq!(server.get("/healthz").status, 200);

    // Retried after an interval (at most an hour), failing again; still serving.
    server.clock.advance(chrono::Duration::hours(1));
    eventually("a second counted failure", || {
        (metric(&server, "crier_backup_failures_total") == Some(2)).then_some(())
    });
    assert_eq!(server.get("/readyz").status, 200);
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
}
