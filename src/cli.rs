//! The command line: the subcommands, and the settings every subcommand shares.
//!
//! The settings are declared where they are used — the server's in `config`, delivery's and
//! payments' in their `settings` modules — and flattened here. Each is a flag with an equal
//! `CRIER_*` environment variable and usually a default; clap picks flag over environment over
//! default and `crier --help` lists all three. `config::Config::from_args` validates them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServerArgs;
use crate::delivery::settings::DeliveryArgs;
use crate::payments::settings::PaymentArgs;

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
    pub server: ServerArgs,

    #[command(flatten)]
    pub delivery: DeliveryArgs,

    #[command(flatten)]
    pub payments: PaymentArgs,

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
    /// Operator helpers that work on the database directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user (the first one is an instance admin) with a new workspace they own, or a
    /// membership in an existing workspace given by id.
    CreateUser(CreateUserArgs),
    /// Create an API key and print it (shown only this once).
    CreateApiKey(CreateApiKeyArgs),
    /// Credit (positive) or debit (negative) a workspace's wallet, with a reason for the ledger.
    AdjustWallet(AdjustWalletArgs),
}

#[derive(Debug, Args)]
pub struct AdjustWalletArgs {
    /// The workspace id.
    #[arg(long)]
    pub workspace: String,
    /// Amount in the wallet currency's minor unit; negative to debit.
    #[arg(long, allow_negative_numbers = true)]
    pub amount_minor: i64,
    /// Why (kept in the ledger).
    #[arg(long)]
    pub reason: String,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// The user's email (their login).
    #[arg(long)]
    pub email: String,
    /// Read the password from the first line of standard input (required).
    #[arg(long)]
    pub password_stdin: bool,
    /// A workspace id to join, or the name of a new workspace to create and own.
    #[arg(long, value_name = "ID_OR_NAME")]
    pub workspace: String,
    /// Display name [default: the email without its domain].
    #[arg(long)]
    pub name: Option<String>,
    /// Role when joining an existing workspace: owner, admin or member.
    #[arg(long, default_value = "owner")]
    pub role: String,
    /// Make the user an instance admin.
    #[arg(long)]
    pub instance_admin: bool,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateApiKeyArgs {
    /// The workspace id, or a name exactly one workspace has.
    #[arg(long, value_name = "ID_OR_NAME")]
    pub workspace: String,
    /// A name to recognise the key by.
    #[arg(long)]
    pub name: String,
    /// Comma-separated scopes, e.g. messages:send,messages:read.
    #[arg(long)]
    pub scopes: String,
    /// live or test.
    #[arg(long, default_value = "live")]
    pub mode: String,
    /// Print one JSON object (with key, id, workspace_id) instead of the bare key.
    #[arg(long)]
    pub json: bool,
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
        assert_eq!(cli.server.data_dir, "/tmp/x");
        let cli = Cli::try_parse_from([
            "crier",
            "admin",
            "create-api-key",
            "--workspace",
            "Acme",
            "--name",
            "ci",
            "--scopes",
            "messages:send",
            "--data-dir",
            "/tmp/y",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Admin { .. })));
        assert_eq!(cli.server.data_dir, "/tmp/y");
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
            "CRIER_PUBLIC_URL",
            "CRIER_PASSWORD_ITERATIONS",
            "CRIER_IDEMPOTENCY_RETENTION_HOURS",
            "CRIER_IDEMPOTENCY_LEASE_SECS",
            "CRIER_JANITOR_INTERVAL_SECS",
            "CRIER_DEFAULT_SMS_SENDER",
            "CRIER_TOPUP_MINIMUM_MINOR",
            "CRIER_BILLING_CATALOG",
            "CRIER_TRUSTED_PROXIES",
            "CRIER_DEFAULT_COUNTRY",
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
