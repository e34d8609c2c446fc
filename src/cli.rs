//! The command line: subcommands and the settings every subcommand shares.
//!
//! Each setting is a flag with an equal `CRIER_*` environment variable and a default; clap picks
//! flag over environment over default and `crier --help` lists all three. Values stay strings
//! here: `config::RawSettings::validate` turns them into a typed `Config` and reports every
//! problem at once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::RawSettings;

#[derive(Debug, Parser)]
#[command(
    name = "crier",
    version,
    about = "Self-hosted SMS and email sending with billing, in one binary and one SQLite file.",
    long_about = None,
    after_help = "Every setting can be given as a flag or as its CRIER_* environment variable; \
                  a flag wins over the variable.\n\
                  Exit codes: 0 success; 1 the operation failed (doctor found a problem, backup or \
                  migration failed, the server could not start); 2 invalid usage or configuration."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default when no subcommand is given).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Write a consistent copy of the database to FILE; safe while the server runs.
    Backup {
        /// Where to write the copy; must not exist yet.
        file: PathBuf,
    },
    /// Check the database: integrity, foreign keys, migration state. Exits 1 on any problem.
    Doctor,
}

/// Every setting is `global` (valid before or after the subcommand) and `hide_env_values`
/// (`--help` names the variable but never prints its current value: some will hold secrets).
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Address the HTTP server listens on (IP:PORT; port 0 picks a free port).
    #[arg(
        long,
        env = "CRIER_ADDR",
        default_value = "127.0.0.1:8080",
        global = true,
        hide_env_values = true
    )]
    pub addr: String,

    /// Directory for crier's data; created if missing.
    #[arg(
        long,
        env = "CRIER_DATA_DIR",
        default_value = "./crier-data",
        global = true,
        hide_env_values = true
    )]
    pub data_dir: String,

    /// SQLite database file [default: DATA_DIR/crier.db].
    #[arg(long, env = "CRIER_DB_PATH", global = true, hide_env_values = true)]
    pub db_path: Option<String>,

    /// HTTP worker threads: how many requests are served at once.
    #[arg(
        long,
        env = "CRIER_WORKERS",
        default_value = "8",
        global = true,
        hide_env_values = true
    )]
    pub workers: String,

    /// Pooled SQLite connections shared by workers and background threads.
    #[arg(
        long,
        env = "CRIER_DB_POOL_SIZE",
        default_value = "16",
        global = true,
        hide_env_values = true
    )]
    pub db_pool_size: String,

    /// Milliseconds a write waits for SQLite's lock before the request gets 503.
    #[arg(
        long,
        env = "CRIER_DB_BUSY_TIMEOUT_MS",
        default_value = "5000",
        global = true,
        hide_env_values = true
    )]
    pub db_busy_timeout_ms: String,

    /// SQLite synchronous level: full (every commit reaches the disk) or normal.
    #[arg(
        long,
        env = "CRIER_DB_SYNCHRONOUS",
        default_value = "full",
        global = true,
        hide_env_values = true
    )]
    pub db_synchronous: String,

    /// Largest JSON request body in bytes; larger bodies get 413.
    #[arg(
        long,
        env = "CRIER_MAX_BODY_BYTES",
        default_value = "1048576",
        global = true,
        hide_env_values = true
    )]
    pub max_body_bytes: String,

    /// Seconds a connection may stay silent (mid-request or idle between requests) before it is
    /// closed.
    #[arg(
        long,
        env = "CRIER_HTTP_TIMEOUT_SECS",
        default_value = "30",
        global = true,
        hide_env_values = true
    )]
    pub http_timeout_secs: String,

    /// Seconds shutdown waits for in-flight requests before exiting anyway.
    #[arg(
        long,
        env = "CRIER_SHUTDOWN_TIMEOUT_SECS",
        default_value = "10",
        global = true,
        hide_env_values = true
    )]
    pub shutdown_timeout_secs: String,

    /// Log line format on standard error: text or json.
    #[arg(
        long,
        env = "CRIER_LOG_FORMAT",
        default_value = "text",
        global = true,
        hide_env_values = true
    )]
    pub log_format: String,

    /// Log level: off, error, warn, info, debug or trace.
    #[arg(
        long,
        env = "CRIER_LOG_LEVEL",
        default_value = "info",
        global = true,
        hide_env_values = true
    )]
    pub log_level: String,
}

impl SettingsArgs {
    pub fn into_raw(self) -> RawSettings {
        RawSettings {
            addr: self.addr,
            data_dir: self.data_dir,
            db_path: self.db_path,
            workers: self.workers,
            db_pool_size: self.db_pool_size,
            db_busy_timeout_ms: self.db_busy_timeout_ms,
            db_synchronous: self.db_synchronous,
            max_body_bytes: self.max_body_bytes,
            http_timeout_secs: self.http_timeout_secs,
            shutdown_timeout_secs: self.shutdown_timeout_secs,
            log_format: self.log_format,
            log_level: self.log_level,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_are_global_to_subcommands() {
        let cli = Cli::try_parse_from(["crier", "doctor", "--data-dir", "/tmp/x"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Doctor)));
        assert_eq!(cli.settings.data_dir, "/tmp/x");
    }

    #[test]
    fn help_lists_every_setting_with_its_variable() {
        let help = Cli::command().render_long_help().to_string();
        for variable in [
            "CRIER_ADDR",
            "CRIER_DATA_DIR",
            "CRIER_DB_PATH",
            "CRIER_WORKERS",
            "CRIER_DB_POOL_SIZE",
            "CRIER_DB_BUSY_TIMEOUT_MS",
            "CRIER_DB_SYNCHRONOUS",
            "CRIER_MAX_BODY_BYTES",
            "CRIER_HTTP_TIMEOUT_SECS",
            "CRIER_SHUTDOWN_TIMEOUT_SECS",
            "CRIER_LOG_FORMAT",
            "CRIER_LOG_LEVEL",
        ] {
            assert!(
                help.contains(variable),
                "--help does not mention {variable}"
            );
        }
    }
}
