//! The README's quick start, run as written: every `sh` block of its "Quick start" section, in
//! order, in one `bash -euo pipefail` shell, against the real binary in a fresh directory. Only
//! what cannot run in a test is changed: the server is already started (so `cargo run` and the
//! browser's `open` are left out), its address is the test's free port, and `target/release/crier`
//! is the binary `cargo test` built. A step that fails — an id not found in an answer, a
//! command that errors — fails the test with the script's output.

use std::path::Path;
use std::process::Command;

use crate::process::ServeProcess;

/// A count from the database file at `db`.
fn count_in(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

/// The `sh` blocks of the README section that starts with `## Quick start`, in order.
fn quick_start_blocks(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Quick start"))
        .expect("the README has a Quick start section");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed sh block in the quick start");
    blocks
}

/// The blocks as one script for a server already running at `addr`.
fn script(blocks: &[String], addr: &str, binary: &Path) -> String {
    let mut script = String::from("set -euo pipefail\n");
    for block in blocks {
        for line in block.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("cargo run") || trimmed.starts_with("open ") {
                continue;
            }
            script.push_str(
                &line
                    .replace("http://127.0.0.1:8080", &format!("http://{addr}"))
                    .replace("target/release/crier", &binary.display().to_string()),
            );
            script.push('\n');
        }
    }
    script
}

#[test]
fn the_readme_quick_start_runs_as_written() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl is needed for the quick start test and CI must have it"
        );
        eprintln!("\n*** SKIPPED the README quick start test: curl is not installed ***\n");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks = quick_start_blocks(&readme);
    assert!(blocks.len() >= 10, "only {} sh blocks found", blocks.len());

    // The README's commands run from the repository's directory, where the server keeps its
    // data in `./crier-data` by default; here that directory is a fresh one.
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("crier-data");
    let server = ServeProcess::start(&data_dir);
    let binary = Path::new(env!("CARGO_BIN_EXE_crier"));
    let script = script(&blocks, &server.addr.to_string(), binary);
    let mut bash = Command::new("bash");
    for (name, _) in std::env::vars() {
        if name.starts_with("CRIER_") {
            bash.env_remove(name);
        }
    }
    let output = bash
        .arg("-c")
        .arg(&script)
        .current_dir(directory.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the quick start failed ({}).\n--- stdout\n{}\n--- stderr\n{}\n--- script\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );

    // It did what it says: two users, Ada's SMS and the campaign's two, the wallet credited over
    // HTTP and by the CLI, Ada erased and Hélène imported.
    let db = data_dir.join("crier.db");
    assert_eq!(count_in(&db, "SELECT count(*) FROM users"), 2);
    assert_eq!(
        count_in(&db, "SELECT count(*) FROM messages WHERE channel = 'sms'"),
        3
    );
    assert_eq!(
        count_in(
            &db,
            "SELECT count(*) FROM campaigns WHERE status IN ('running', 'completed')"
        ),
        1
    );
    assert_eq!(
        count_in(
            &db,
            "SELECT count(*) FROM wallet_ledger WHERE kind = 'adjustment'"
        ),
        2
    );
    assert_eq!(
        count_in(
            &db,
            "SELECT count(*) FROM contacts WHERE erased_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count_in(
            &db,
            "SELECT count(*) FROM contacts WHERE first_name = 'Hélène'"
        ),
        1
    );
}
