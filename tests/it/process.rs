//! The real `crier` binary as a child process: a command builder with a clean environment, and
//! `crier serve` on a free port that is found from its "listening" log line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{TestResponse, send_raw};

/// `crier` with no `CRIER_*` variable inherited: tests say exactly what they configure.
pub fn crier() -> Command {
    without_crier_settings(Command::new(env!("CARGO_BIN_EXE_crier")))
}

/// The tests say exactly what they configure; nothing leaks in from the developer's shell.
fn without_crier_settings(mut command: Command) -> Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("CRIER_") {
            command.env_remove(name);
        }
    }
    command
}

/// A `crier serve` child process on a free port, killed on drop if still running.
pub struct ServeProcess {
    child: Child,
    pub addr: SocketAddr,
    /// Log lines the server wrote after "listening".
    log: mpsc::Receiver<String>,
}

impl ServeProcess {
    pub fn start(data_dir: &Path) -> ServeProcess {
        ServeProcess::start_with(data_dir, &[])
    }

    /// `crier serve` with `extra` settings (flags and values) after the usual ones.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> ServeProcess {
        ServeProcess::spawn(crier(), data_dir, extra)
    }

    /// `crier serve` allowed at most `max_files` open descriptors (`ulimit -n`).
    pub fn start_limited(data_dir: &Path, max_files: u32) -> ServeProcess {
        let mut shell = without_crier_settings(Command::new("sh"));
        shell
            .arg("-c")
            .arg(format!("ulimit -n {max_files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_crier"));
        ServeProcess::spawn(shell, data_dir, &[])
    }

    /// `crier serve` with SIGHUP at its default action whatever this process inherited (CI runs
    /// the tests under `nohup`, which would have it ignored): `env --default-signal=HUP`.
    pub fn start_hangup_default(data_dir: &Path) -> ServeProcess {
        let mut env = without_crier_settings(Command::new("env"));
        env.arg("--default-signal=HUP")
            .arg(env!("CARGO_BIN_EXE_crier"));
        ServeProcess::spawn(env, data_dir, &[])
    }

    /// `crier serve` started with SIGHUP ignored, as `nohup` starts it.
    pub fn start_ignoring_hangups(data_dir: &Path) -> ServeProcess {
        let mut shell = without_crier_settings(Command::new("sh"));
        shell
            .arg("-c")
            .arg("trap '' HUP && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_crier"));
        ServeProcess::spawn(shell, data_dir, &[])
    }

    fn spawn(mut command: Command, data_dir: &Path, extra: &[&str]) -> ServeProcess {
        let mut child = command
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The server logs its real address once the socket is bound.
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the server never said it was listening");
            let entry: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("log line is not JSON ({err}): {line}"));
            if entry["msg"] == "listening" {
                break entry["addr"].as_str().unwrap().parse().unwrap();
            }
        };
        ServeProcess {
            child,
            addr,
            log: lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The names of the server's threads (Linux: `/proc/<pid>/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).unwrap();
        let mut names: Vec<String> = tasks
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Waits until the server logs a line whose message is `message` (lines before it are
    /// passed over); panics once `timeout` has passed without it.
    pub fn wait_for_log(&self, message: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.log.recv_timeout(left).unwrap_or_else(|_| {
                panic!("timed out after {timeout:?} waiting for the log line {message:?}")
            });
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if entry["msg"] == message {
                return;
            }
        }
    }

    /// The log lines written since the last look, for a failure's message.
    pub fn recent_log(&self) -> String {
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }

    pub fn get(&self, path: &str) -> TestResponse {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        send_raw(self.addr, request.as_bytes())
    }

    /// Sends one request; `headers` are complete lines, each ending in `\r\n`.
    pub fn request(&self, method: &str, path: &str, headers: &str, body: &str) -> TestResponse {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        send_raw(self.addr, request.as_bytes())
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: the process dies at once, mid-whatever, as in a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// `wait`, failing the test if the process has not ended within `timeout`.
    pub fn wait_within(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `crier doctor` on the database at `db_path` and fails the test unless every check passes.
pub fn assert_doctor_clean(db_path: &Path) {
    let doctor = crier()
        .arg("doctor")
        .arg("--db-path")
        .arg(db_path)
        .output()
        .unwrap();
    assert!(
        doctor.status.success(),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
}

/// Runs `crier admin <args> --data-dir <data_dir>` with `stdin`, fails the test unless it
/// succeeds, and returns its JSON output (`null` when it printed none).
pub fn admin(data_dir: &Path, args: &[&str], stdin: &str) -> serde_json::Value {
    use std::io::Write;
    let mut child = crier()
        .arg("admin")
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
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// The first user (ops@example.com) with the workspace Acme, made by `crier admin create-user`
/// on `data_dir`, and an API key of Acme named `name` with `scopes` (comma-separated) in
/// `mode`, by `crier admin create-api-key`: the key's JSON (`key`, `workspace_id`, …).
pub fn acme_with_key(data_dir: &Path, name: &str, scopes: &str, mode: &str) -> serde_json::Value {
    admin(
        data_dir,
        &[
            "create-user",
            "--email",
            "ops@example.com",
            "--password-stdin",
            "--workspace",
            "Acme",
            "--json",
        ],
        "a long enough password\n",
    );
    admin(
        data_dir,
        &[
            "create-api-key",
            "--workspace",
            "Acme",
            "--name",
            name,
            "--scopes",
            scopes,
            "--mode",
            mode,
            "--json",
        ],
        "",
    )
}
