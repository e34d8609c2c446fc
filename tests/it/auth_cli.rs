//! `crier admin create-user` and `crier admin create-api-key`, and a served key that works.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{Value, json};

use crate::auth_fixtures::adjust_wallet_args;
use crate::process::{ServeProcess, crier};

const PASSWORD: &str = "a long enough password";

/// Runs `crier <args> --data-dir <dir>` with `stdin` fed to it. The lowest iteration count the
/// configuration accepts keeps password hashing quick.
fn run(args: &[&str], data_dir: &Path, stdin: &str) -> Output {
    let mut child = crier()
        .args(args)
        // Only create-user hashes a password; the others ignore the variable.
        .env("CRIER_PASSWORD_ITERATIONS", "100000")
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit before reading its input; that is its business.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn json_output(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn create_user(data_dir: &Path, email: &str, workspace: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "admin",
        "create-user",
        "--email",
        email,
        "--password-stdin",
        "--workspace",
        workspace,
        "--json",
    ];
    args.extend_from_slice(extra);
    run(&args, data_dir, &format!("{PASSWORD}\n"))
}

fn create_api_key(data_dir: &Path, workspace: &str, scopes: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "admin",
        "create-api-key",
        "--workspace",
        workspace,
        "--name",
        "ci",
        "--scopes",
        scopes,
        "--mode",
        "live",
    ];
    args.extend_from_slice(extra);
    run(&args, data_dir, "")
}

fn api_key_count(data_dir: &Path) -> i64 {
    rusqlite::Connection::open(data_dir.join("crier.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM api_keys", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_user_and_key_made_on_the_command_line_work_against_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path();

    let user = json_output(&create_user(data_dir, "ops@example.com", "Acme", &[]));
    assert!(
        user["user_id"].as_str().unwrap().starts_with("usr_"),
        "{user}"
    );
    assert_eq!(user["email"], "ops@example.com");
    let workspace_id = user["workspace_id"].as_str().unwrap().to_owned();
    assert!(workspace_id.starts_with("wsp_"), "{user}");
    assert_eq!(user["role"], "owner");
    assert_eq!(user["is_instance_admin"], true);

    let created = json_output(&create_api_key(
        data_dir,
        "Acme",
        "messages:send",
        &["--json"],
    ));
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("crier_live_") && key.len() == 49, "{key}");
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(created["workspace_id"], workspace_id.as_str());
    assert_eq!(created["name"], "ci");
    assert_eq!(created["scopes"], json!(["messages:send"]));
    assert_eq!(created["mode"], "live");
    assert_eq!(created["display_prefix"], &key[..17]);

    let server = ServeProcess::start(data_dir);
    let response = server.request(
        "GET",
        "/v1/workspace",
        &format!("Authorization: Bearer {key}\r\n"),
        "",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["id"], workspace_id.as_str());
    assert_eq!(body["name"], "Acme");
    assert_eq!(body["api_key"]["id"], created["id"]);

    // The password was the first line of standard input, without its newline.
    let login = json!({"email": "ops@example.com", "password": PASSWORD}).to_string();
    let response = server.request("POST", "/v1/auth/login", "", &login);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["workspace"]["id"], workspace_id.as_str());
    assert_eq!(response.json()["user"]["is_instance_admin"], true);
    let setup = server.request("GET", "/v1/setup", "", "");
    assert_eq!(setup.json(), json!({"setup_required": false}));
}

#[test]
fn the_first_user_is_an_instance_admin_and_later_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let first = json_output(&create_user(dir.path(), "first@example.com", "Acme", &[]));
    assert_eq!(first["is_instance_admin"], true);
    let workspace_id = first["workspace_id"].as_str().unwrap();

    let second = json_output(&create_user(
        dir.path(),
        "second@example.com",
        workspace_id,
        &["--role", "member"],
    ));
    assert_eq!(second["is_instance_admin"], false);
    assert_eq!(second["workspace_id"], workspace_id);
    assert_eq!(second["role"], "member");

    let db = rusqlite::Connection::open(dir.path().join("crier.db")).unwrap();
    let admins: i64 = db
        .query_row(
            "SELECT count(*) FROM users WHERE is_instance_admin = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(admins, 1);
    let workspaces: i64 = db
        .query_row("SELECT count(*) FROM workspaces", [], |row| row.get(0))
        .unwrap();
    assert_eq!(workspaces, 1);
}

#[test]
fn create_api_key_for_an_unknown_workspace_exits_1_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let output = create_api_key(dir.path(), "Nowhere Inc", "messages:send", &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&output.stderr).trim().is_empty());
    assert!(!String::from_utf8_lossy(&output.stdout).contains("crier_live_"));
    assert_eq!(api_key_count(dir.path()), 0);
}

#[test]
fn create_api_key_with_a_bad_scope_exits_1_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let output = create_api_key(
        dir.path(),
        "Acme",
        "messages:send,everything:everywhere",
        &["--json"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&output.stderr).trim().is_empty());
    assert_eq!(api_key_count(dir.path()), 0);
}

#[test]
fn create_api_key_without_json_prints_the_key_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let output = create_api_key(dir.path(), "Acme", "messages:send", &[]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("crier_live_"), "{stdout}");
    let everything = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(everything.to_lowercase().contains("once"), "{everything}");
    assert_eq!(api_key_count(dir.path()), 1);
}

/// A refusal is exactly one `crier: …` line on standard error (no log line, no temporary file)
/// with the given exit code; returns the line.
fn one_error_line(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("crier: "), "{stderr}");
    assert!(!lines[0].contains(".partial"), "{stderr}");
    lines[0].to_owned()
}

fn adjust_wallet(data_dir: &Path, workspace: &str, amount: &str) -> Output {
    let mut args = adjust_wallet_args(workspace, amount, "goodwill");
    args.push("--json");
    run(&args, data_dir, "")
}

#[test]
fn adjust_wallet_takes_a_workspace_name_and_refuses_an_ambiguous_one_listing_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let acme = json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let by_name = json_output(&adjust_wallet(dir.path(), "Acme", "500"));
    assert_eq!(by_name["workspace_id"], acme["workspace_id"]);
    assert_eq!(by_name["balance_minor"], 500);
    let by_id = json_output(&adjust_wallet(
        dir.path(),
        acme["workspace_id"].as_str().unwrap(),
        "-200",
    ));
    assert_eq!(by_id["balance_minor"], 300);

    let other = json_output(&create_user(dir.path(), "two@example.com", "Acme", &[]));
    let line = one_error_line(&adjust_wallet(dir.path(), "Acme", "500"), 1);
    for id in [&acme["workspace_id"], &other["workspace_id"]] {
        assert!(line.contains(id.as_str().unwrap()), "{line}");
    }
    assert!(line.contains("give the workspace id"), "{line}");
    let line = one_error_line(&adjust_wallet(dir.path(), "Nowhere", "500"), 1);
    assert!(line.contains("no workspace has the id or name"), "{line}");
    let line = one_error_line(
        &adjust_wallet(dir.path(), "wsp_0000000000000000000000", "500"),
        1,
    );
    assert!(line.contains("no workspace"), "{line}");
    // Nothing changed by the refusals.
    let balance = json_output(&adjust_wallet(
        dir.path(),
        acme["workspace_id"].as_str().unwrap(),
        "1",
    ));
    assert_eq!(balance["balance_minor"], 301);
}

#[test]
fn admin_refusals_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A missing database is named, and not created, by the commands that need its rows.
    let line = one_error_line(&create_api_key(dir.path(), "Acme", "messages:send", &[]), 1);
    assert!(line.contains("no database at"), "{line}");
    assert!(!dir.path().join("crier.db").exists());
    let line = one_error_line(&adjust_wallet(dir.path(), "Acme", "5"), 1);
    assert!(line.contains("no database at"), "{line}");

    json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let line = one_error_line(
        &create_api_key(dir.path(), "Acme", "messages:send,everything", &[]),
        1,
    );
    assert!(line.contains("\"everything\" is not a scope"), "{line}");
    let staging = run(
        &[
            "admin",
            "create-api-key",
            "--workspace",
            "Acme",
            "--name",
            "ci",
            "--scopes",
            "messages:send",
            "--mode",
            "staging",
        ],
        dir.path(),
        "",
    );
    let line = one_error_line(&staging, 1);
    assert!(line.contains("--mode must be live or test"), "{line}");
    let line = one_error_line(
        &create_api_key(dir.path(), "Nowhere", "messages:send", &[]),
        1,
    );
    assert!(line.contains("no workspace has the id or name"), "{line}");
    // A workspace id no workspace has is not the name of a new one.
    let line = one_error_line(
        &create_user(
            dir.path(),
            "new@example.com",
            "wsp_0000000000000000000000",
            &[],
        ),
        1,
    );
    assert!(line.contains("no workspace has the id"), "{line}");

    // --password-stdin with nothing on standard input is a usage error.
    let empty = run(
        &[
            "admin",
            "create-user",
            "--email",
            "late@example.com",
            "--password-stdin",
            "--workspace",
            "Late",
        ],
        dir.path(),
        "",
    );
    let line = one_error_line(&empty, 2);
    assert!(line.contains("standard input"), "{line}");
    assert_eq!(api_key_count(dir.path()), 0);
}

#[test]
fn a_locked_database_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let holder = rusqlite::Connection::open(dir.path().join("crier.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let output = create_api_key(
        dir.path(),
        "Acme",
        "messages:send",
        &["--db-busy-timeout-ms", "100"],
    );
    let line = one_error_line(&output, 1);
    assert!(line.contains("locked by another writer"), "{line}");
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(api_key_count(dir.path()), 0);
}

#[test]
fn a_backup_that_cannot_be_written_is_one_line_naming_the_target() {
    let dir = tempfile::tempdir().unwrap();
    json_output(&create_user(dir.path(), "ops@example.com", "Acme", &[]));
    let target = dir.path().join("no-such-dir").join("copy.db");
    let output = run(&["backup", target.to_str().unwrap()], dir.path(), "");
    let line = one_error_line(&output, 1);
    assert!(line.contains("copy.db"), "{line}");
}
