//! The real `crier` binary: serving and stopping on signals, configuration errors, and the
//! maintenance subcommands against the same database a server is using.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::harness::send_raw;
use crate::process::{ServeProcess, crier};

fn run(args: &[&str], data_dir: &Path) -> Output {
    crier()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

#[test]
fn the_binary_serves_creates_its_database_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = ServeProcess::start(&data_dir);
    let response = server.get("/healthz");
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
    assert_eq!(server.get("/readyz").status, 200);
    assert!(data_dir.join("crier.db").is_file());

    server.signal("TERM");
    assert_eq!(server.wait().code(), Some(0));
}

#[test]
fn the_background_checkpointer_runs_unless_another_process_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    let names = server.thread_names();
    assert!(names.iter().any(|name| name == "checkpointer"), "{names:?}");
    assert!(names.iter().any(|name| name == "writer"), "{names:?}");
    server.signal("TERM");
    assert!(server.wait().success());
    // Beside Litestream (docs/scaling.md) crier copies nothing back, in the background or not.
    let server = ServeProcess::start_with(dir.path(), &["--db-checkpoint-pages", "0"]);
    let names = server.thread_names();
    assert!(
        !names.iter().any(|name| name == "checkpointer"),
        "{names:?}"
    );
    assert!(names.iter().any(|name| name == "writer"), "{names:?}");
}

#[test]
fn the_binary_exits_0_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    assert_eq!(server.get("/healthz").status, 200);
    server.signal("INT");
    assert_eq!(server.wait().code(), Some(0));
}

/// SIGHUP (an SSH session that started it dropped) stops it gracefully, as SIGTERM does, where the
/// default action would have killed it mid-request.
#[test]
fn the_binary_stops_gracefully_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_hangup_default(dir.path());
    assert_eq!(server.get("/healthz").status, 200);
    server.signal("HUP");
    assert_eq!(server.wait().code(), Some(0));
}

/// Started with SIGHUP ignored (`nohup crier serve &`), it stays ignored: the server outlives
/// its terminal, as asked, and still stops on SIGTERM.
#[test]
fn a_server_started_under_nohup_outlives_its_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start_ignoring_hangups(dir.path());
    assert_eq!(server.get("/healthz").status, 200);
    server.signal("HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(server.get("/healthz").status, 200, "stopped on SIGHUP");
    server.signal("TERM");
    assert_eq!(server.wait().code(), Some(0));
}

#[test]
fn invalid_configuration_exits_2_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let output = crier()
        .args(["--workers", "0", "--addr", "nowhere", "--log-format", "xml"])
        .env("CRIER_MAX_BODY_BYTES", "lots")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for setting in [
        "--addr / CRIER_ADDR",
        "--workers / CRIER_WORKERS",
        "--max-body-bytes / CRIER_MAX_BODY_BYTES",
        "--log-format / CRIER_LOG_FORMAT",
    ] {
        assert!(
            stderr.contains(setting),
            "{setting} missing from:\n{stderr}"
        );
    }
    assert!(
        !dir.path().join("crier.db").exists(),
        "nothing may start on a bad config"
    );
}

#[test]
fn a_port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(&["serve", "--addr", &addr], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot listen on"));
    // It stopped before creating (or migrating) the database.
    assert!(!dir.path().join("crier.db").exists());
}

/// A database this process may not write (SQLite would open it read-only, without a word) stops
/// `serve` at start with exit 1, naming the file: it used to serve, answering 500 to every write.
/// Run as another user when the tests run as root (root writes whatever a file's mode says).
#[test]
fn a_database_it_may_not_write_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let migrated = run(&["migrate"], &data_dir);
    assert!(migrated.status.success(), "{migrated:?}");
    let db = data_dir.join("crier.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
    let mut serve = crier();
    if runs_as_root() {
        // The directory stays writable to that user (its -wal and -shm), the file does not.
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        serve = Command::new("setpriv");
        serve
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_crier"));
    }
    let mut child = serve
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started anyway would run on: stopped after 30 s so the test fails, not hangs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is read-only to this process") && stderr.contains("crier.db"),
        "{stderr}"
    );
}

/// Whether this process runs as root (uid 0), read from `/proc/self/status`.
fn runs_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// One process owns a data directory: a second `serve` (on another port) or a `migrate` while
/// one serves stops at once with exit 1, naming the lock, and the running server is untouched;
/// once it has stopped, both go ahead.
#[test]
fn a_second_process_on_a_served_data_dir_stops_before_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(dir.path());
    for args in [&["serve", "--addr", "127.0.0.1:0"][..], &["migrate"][..]] {
        let output = run(args, dir.path());
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("another crier is serving or migrating") && stderr.contains(".lock"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(server.get("/readyz").status, 200);
    server.signal("TERM");
    assert!(server.wait().success());
    let output = run(&["migrate"], dir.path());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every setting the command line defines: (flag, variable, default).
fn settings() -> Vec<(String, String, Option<String>)> {
    crier::cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let default = arg
                .get_default_values()
                .first()
                .map(|value| value.to_string_lossy().into_owned());
            Some((format!("--{long}"), env, default))
        })
        .collect()
}

#[test]
fn help_lists_every_setting_with_its_variable_and_default() {
    let output = crier().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    // Help text is wrapped to the terminal width; compare with whitespace folded.
    let help = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let settings = settings();
    assert!(settings.len() >= 12, "{settings:?}");
    for (flag, env, default) in settings {
        assert!(help.contains(&flag), "{flag} missing from --help");
        assert!(
            help.contains(&format!("[env: {env}]")),
            "{env} missing from --help"
        );
        if let Some(default) = default {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{flag}'s default missing"
            );
        }
    }
    for command in ["serve", "migrate", "backup", "doctor"] {
        assert!(help.contains(command), "{command} missing from --help");
    }
}

#[test]
fn each_subcommand_shows_only_the_settings_it_takes() {
    let help = |args: &[&str]| {
        let output = crier().args(args).arg("--help").output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let backup = help(&["backup"]);
    assert!(backup.contains("--db-path"), "{backup}");
    assert!(backup.contains("--data-dir"), "{backup}");
    assert!(!backup.contains("--smtp-host"), "{backup}");
    assert!(!backup.contains("--addr"), "{backup}");
    assert!(backup.lines().count() < 40, "{backup}");
    let create_user = help(&["admin", "create-user"]);
    assert!(
        create_user.contains("--password-iterations"),
        "{create_user}"
    );
    assert!(create_user.contains("--billing-catalog"), "{create_user}");
    assert!(!create_user.contains("--workers"), "{create_user}");
    let adjust = help(&["admin", "adjust-wallet"]);
    assert!(!adjust.contains("--password-iterations"), "{adjust}");
    // `crier` alone and `crier serve` keep every setting.
    let serve = help(&["serve"]);
    for (flag, _, _) in settings() {
        assert!(serve.contains(&flag), "{flag} missing from serve --help");
    }
}

#[test]
fn a_variable_for_a_setting_a_command_does_not_take_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let output = crier()
        .arg("migrate")
        .env("CRIER_WORKERS", "not a number")
        .env("CRIER_SMTP_PORT", "not a port")
        .env("CRIER_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("crier.db").is_file());
}

#[test]
fn a_mistyped_flag_gets_a_suggestion_and_exit_2() {
    let output = crier().args(["serve", "--adr", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a similar argument exists: '--addr'"),
        "{stderr}"
    );
    let output = crier().args(["doctor", "--db-pth", "x"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("'--db-path'"), "{stderr}");
}

#[test]
fn help_never_prints_the_value_of_a_variable() {
    let output = crier()
        .arg("--help")
        .env("CRIER_LOG_LEVEL", "value-that-must-not-show")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&output.stdout).contains("value-that-must-not-show"));
}

#[test]
fn the_readme_configuration_table_matches_the_command_line() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (flag, env, default) in settings() {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{flag}` |")))
            .unwrap_or_else(|| panic!("README has no row for {flag}"));
        assert!(
            row.contains(&format!("`{env}`")),
            "README row for {flag} lacks {env}: {row}"
        );
        if let Some(default) = default {
            assert!(
                row.contains(&format!("`{default}`")),
                "README row for {flag} lacks default {default}: {row}"
            );
        }
    }
}

#[test]
fn migrate_then_doctor_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = run(&["migrate"], dir.path());
    assert_eq!(migrated.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("applied V1__foundation"));

    let again = run(&["migrate"], dir.path());
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));

    let doctor = run(&["doctor"], dir.path());
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(0), "{report}");
    assert!(report.contains("ok    integrity: ok"), "{report}");
    assert!(report.contains("ok    migrations:"), "{report}");
}

#[test]
fn doctor_without_a_database_exits_1_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let doctor = run(&["doctor"], dir.path());
    assert_eq!(doctor.status.code(), Some(1));
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report.contains("FAIL  database: no database at"),
        "{report}"
    );
    assert!(!dir.path().join("crier.db").exists());
}

#[test]
fn doctor_and_backup_refuse_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.db");
    std::fs::write(&notes, "meeting notes, certainly not SQLite").unwrap();
    let doctor = crier()
        .arg("doctor")
        .arg("--db-path")
        .arg(&notes)
        .output()
        .unwrap();
    assert_eq!(doctor.status.code(), Some(1));
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report.contains("FAIL  database:") && report.contains("not a database"),
        "{report}"
    );

    let target = dir.path().join("copy.db");
    let backup = crier()
        .args(["backup", target.to_str().unwrap(), "--db-path"])
        .arg(&notes)
        .output()
        .unwrap();
    assert_eq!(backup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&backup.stderr).contains("not a database"));
    assert!(!target.exists());
}

#[test]
fn doctor_names_a_migration_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(run(&["migrate"], dir.path()).status.code(), Some(0));
    rusqlite::Connection::open(dir.path().join("crier.db"))
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (9999, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
            [],
        )
        .unwrap();
    let doctor = run(&["doctor"], dir.path());
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  migrations: V9999__from_the_future is applied but unknown"),
        "{report}"
    );
    // The checks of crier's own tables say they were not run, not that they passed.
    assert!(
        report.contains("skip  wallets: not run while the migrations check fails")
            && !report.contains("ok    wallets"),
        "{report}"
    );
    assert!(report.contains("ok    integrity: ok"), "{report}");
    // `serve` refuses it too, saying why in crier's terms (its migrations are built in).
    let serve = run(&["serve", "--addr", "127.0.0.1:0"], dir.path());
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert_eq!(serve.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("V9999__from_the_future, which this crier does not have")
            && stderr.contains("migrated by a newer crier"),
        "{stderr}"
    );
}

#[test]
fn backup_while_serving_is_a_valid_consistent_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = ServeProcess::start(&data_dir);
    assert_eq!(server.get("/readyz").status, 200);
    let live_checked_at: String = rusqlite::Connection::open(data_dir.join("crier.db"))
        .unwrap()
        .query_row("SELECT checked_at FROM health_probe", [], |r| r.get(0))
        .unwrap();

    // Keep the server writing while the backup runs.
    let addr = server.addr;
    let writer = std::thread::spawn(move || {
        for _ in 0..50 {
            let response = send_raw(
                addr,
                b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            assert_eq!(response.status, 200);
        }
    });
    let target = dir.path().join("copy.db");
    let backup = run(&["backup", target.to_str().unwrap()], &data_dir);
    writer.join().unwrap();
    let stdout = String::from_utf8_lossy(&backup.stdout);
    assert_eq!(
        backup.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(stdout.contains("integrity ok"), "{stdout}");

    let copy = rusqlite::Connection::open(&target).unwrap();
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let copied_checked_at: String = copy
        .query_row("SELECT checked_at FROM health_probe", [], |r| r.get(0))
        .unwrap();
    assert!(copied_checked_at >= live_checked_at);
    let applied: i64 = copy
        .query_row("SELECT count(*) FROM refinery_schema_history", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(applied >= 1);
    // The copy is a complete crier database: doctor accepts it as one.
    let doctor = crier()
        .args(["doctor", "--db-path"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(
        doctor.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );

    // A second backup never overwrites the first.
    let before = std::fs::read(&target).unwrap();
    let again = run(&["backup", target.to_str().unwrap()], &data_dir);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read(&target).unwrap(), before);

    server.signal("TERM");
    assert_eq!(server.wait().code(), Some(0));
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_data_directory_database_wal_and_backups_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("fresh/data");
    let server = ServeProcess::start(&data_dir);
    assert_eq!(server.get("/readyz").status, 200);
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&dir.path().join("fresh")), 0o700);
    for file in ["crier.db", "crier.db-wal", "crier.db-shm", "secrets.key"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    let target = dir.path().join("copy.db");
    let backup = run(&["backup", target.to_str().unwrap()], &data_dir);
    assert_eq!(
        backup.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert_eq!(mode(&target), 0o600);
    server.signal("TERM");
    assert_eq!(server.wait().code(), Some(0));

    // Files an older crier left readable are tightened at the next start; the directory the
    // operator chose is left alone.
    use std::os::unix::fs::PermissionsExt;
    let open = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(data_dir.join("crier.db"), open.clone()).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let again = ServeProcess::start(&data_dir);
    assert_eq!(again.get("/readyz").status, 200);
    for file in ["crier.db", "crier.db-wal", "crier.db-shm"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&data_dir), 0o755);
    again.signal("TERM");
    assert_eq!(again.wait().code(), Some(0));
}
