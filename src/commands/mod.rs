//! The subcommands behind `crier <command>`. Each returns the process exit code; results go to
//! standard output, and a failure is one `crier: …` line on standard error (the server's own
//! running messages go through the logger).

pub mod admin;

use std::path::Path;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::db::{self, DbSettings, backup};
use crate::doctor;
use crate::error::StartupError;
use crate::ids::SystemRandomSource;
use crate::server::{self, Runtime};
use crate::web::ShutdownOutcome;
use crate::web::router::Router;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The operation failed: doctor found a problem, a backup or migration failed, the server could
/// not start.
pub const EXIT_FAILED: i32 = 1;
/// Invalid usage or configuration (also clap's code for usage errors).
pub const EXIT_USAGE: i32 = 2;

/// `crier serve`: runs until SIGTERM, SIGINT or SIGHUP, then shuts down gracefully. A second
/// signal during shutdown exits at once. SIGHUP (the terminal gone: an SSH session dropped, or an
/// operator's habit of "reload") stops it like SIGTERM rather than killing it mid-request, the
/// default; crier has nothing to reload. Unless it was started with SIGHUP ignored (`nohup`):
/// then it stays ignored, and the server outlives its terminal as asked.
pub fn serve(config: Config) -> i32 {
    let mut stopping = vec![SIGTERM, SIGINT];
    if !hangup_ignored() {
        stopping.push(SIGHUP);
    }
    // Registered before the server starts, so an early signal is not lost nor fatal.
    let mut signals = match Signals::new(stopping) {
        Ok(signals) => signals,
        Err(err) => {
            return fail(StartupError(format!(
                "cannot install signal handlers: {err}"
            )));
        }
    };
    let runtime = Runtime {
        clock: Arc::new(SystemClock),
        random: Arc::new(SystemRandomSource::new()),
        router: Router::standard(),
    };
    let db_path = config.db_path.display().to_string();
    let running = match server::start(config, runtime) {
        Ok(running) => running,
        Err(err) => return fail(err),
    };
    log::info!(addr:% = running.addr(), db = db_path.as_str(); "listening");
    for name in crate::cli::unknown_variables(std::env::vars_os().map(|(name, _)| name)) {
        log::warn!(variable = name.as_str(); "no setting reads this CRIER_ variable: is it misspelled? (crier --help lists them)");
    }
    if let Some(why) = unreachable_public_url(&running.app.config.public_url) {
        log::warn!(public_url = running.app.config.public_url.as_str(); "links in messages (unsubscribe, tracking, payment returns) will not open: {why}; set --public-url (CRIER_PUBLIC_URL) to the address recipients reach");
    }

    let signal = signals.forever().next().unwrap_or(SIGTERM);
    log::info!(signal = signal_name(signal); "shutting down; waiting for in-flight requests");
    std::thread::spawn(move || {
        if let Some(second) = signals.forever().next() {
            log::warn!(signal = signal_name(second); "second signal; exiting immediately");
            std::process::exit(128 + second);
        }
    });
    match running.shutdown() {
        ShutdownOutcome::Drained => log::info!("stopped"),
        ShutdownOutcome::TimedOut => {
            log::warn!("stopped with requests still running after the shutdown timeout")
        }
    }
    EXIT_OK
}

/// Why links built on `public_url` cannot be opened by anyone, if they cannot: its host is the
/// unspecified address (`0.0.0.0`, `[::]`, what `--addr` listens on when no `--public-url` is
/// given) or its port is 0 (any free port).
fn unreachable_public_url(public_url: &str) -> Option<&'static str> {
    // Parsed as the webhooks' URLs are (`webhooks::check_url`); the setting was checked to be
    // an http(s) URL at start.
    let uri: ureq::http::Uri = public_url.parse().ok()?;
    if matches!(uri.host(), Some("0.0.0.0" | "[::]")) {
        Some("its host is the unspecified address, which no recipient can reach")
    } else if uri.port_u16() == Some(0) {
        Some("its port is 0")
    } else {
        None
    }
}

/// `crier migrate`: creates the database if needed, converts it to incremental auto-vacuum
/// whatever its size (`serve` converts only small files at start) and applies pending
/// migrations.
pub fn migrate(config: &Config) -> i32 {
    let settings = DbSettings::from_config(config);
    // Not under a running server: its queries would meet a schema changing beneath them.
    let _lock = match db::lock(&settings) {
        Ok(lock) => lock,
        Err(err) => return fail(err),
    };
    let outcome = db::prepare_converting(&settings, db::Conversion::Always);
    match outcome {
        Ok(applied) if applied.is_empty() => {
            println!("{}: up to date", settings.path.display());
            EXIT_OK
        }
        Ok(applied) => {
            for name in &applied {
                println!("applied {name}");
            }
            EXIT_OK
        }
        Err(err) => fail(err),
    }
}

/// `crier backup FILE`: a consistent copy of the live database, verified before it is named.
pub fn backup(config: &Config, target: &Path) -> i32 {
    let settings = DbSettings::from_config(config);
    let outcome = backup::backup_file(&settings, target);
    match outcome {
        Ok(summary) => {
            println!(
                "backed up {} to {} ({} bytes, {} tables, integrity ok)",
                settings.path.display(),
                target.display(),
                summary.bytes,
                summary.tables
            );
            EXIT_OK
        }
        Err(err) => fail(StartupError(format!(
            "cannot back up {} to {}: {}",
            settings.path.display(),
            target.display(),
            err.0
        ))),
    }
}

/// `crier dkim-record`: reads the DKIM key as `serve` would and prints where to publish its
/// public half and what: `NAME TXT "v=DKIM1; k=…; p=…"`. Without DKIM settings, or with a key
/// that cannot be used, says why and exits 1 (2 for a half-given pair, like any bad setting).
pub fn dkim_record(config: &Config) -> i32 {
    let Some(dkim) = &config.delivery.dkim else {
        return fail(StartupError(
            "DKIM is off: give --dkim-selector and --dkim-key-file".to_owned(),
        ));
    };
    match crate::delivery::providers::smtp::DkimSigner::load(dkim, &config.delivery.email_from) {
        Ok(signer) => {
            println!("{} TXT \"{}\"", signer.record_name(), signer.record());
            EXIT_OK
        }
        Err(why) => fail(StartupError(why)),
    }
}

/// `crier doctor`: prints one line per check and exits 1 if any failed.
pub fn doctor(config: &Config) -> i32 {
    let settings = DbSettings::from_config(config);
    let mut conn = match db::open_read_only(&settings) {
        Ok(conn) => conn,
        Err(err) => {
            println!("FAIL  database: {err}");
            return EXIT_FAILED;
        }
    };
    let findings = doctor::examine(&mut conn);
    for finding in &findings {
        match &finding.outcome {
            Some(Ok(summary)) => println!("ok    {}: {summary}", finding.check),
            Some(Err(problems)) => {
                for problem in problems {
                    println!("FAIL  {}: {problem}", finding.check);
                }
            }
            None => println!(
                "skip  {}: not run while the migrations check fails",
                finding.check
            ),
        }
    }
    if findings.iter().all(doctor::Finding::passed) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// One line on standard error, whatever the log format: the operator reads it, no log
/// collector needs it.
fn fail(err: StartupError) -> i32 {
    eprintln!("crier: {}", one_line(&err.0));
    EXIT_FAILED
}

/// `text` on one line: SQLite and the OS sometimes end or break their messages with newlines.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether this process was started with SIGHUP ignored (`nohup`), read from the kernel's
/// `SigIgn` mask in `/proc/self/status` (bit 0 is signal 1, SIGHUP); `false` when unreadable.
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("SigIgn:"))
                .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << (SIGHUP - 1)) != 0)
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_nobody_can_open_is_named() {
        for url in [
            "http://0.0.0.0:8080",
            "http://[::]:8080/",
            "http://127.0.0.1:0",
        ] {
            assert!(unreachable_public_url(url).is_some(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080",
            "https://crier.example.com",
            "https://crier.example.com:8443/base",
            "http://[::1]:8080",
            "http://10.0.0.5:80",
        ] {
            assert_eq!(unreachable_public_url(url), None, "{url}");
        }
    }
}
