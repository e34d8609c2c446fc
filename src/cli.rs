//! The command line: the subcommands, and the settings each one takes.
//!
//! The settings are declared where they are used — the server's in `config`, delivery's and
//! payments' in their `settings` modules — and gathered in `Settings`. Each is a flag with an
//! equal `CRIER_*` environment variable and usually a default; clap picks flag over environment
//! over default and `--help` lists all three. `crier` alone and `crier serve` take every setting;
//! the other subcommands take only the ones they use (`TAKES`), so their `--help` stays short and
//! a variable meant for the server cannot stop `crier backup`. What a subcommand does not take
//! keeps its declared default, and `config::Config::from_args` validates the whole set, in one
//! place, whichever command runs.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::ServerArgs;
use crate::delivery::settings::DeliveryArgs;
use crate::payments::settings::PaymentArgs;

#[derive(Debug, Parser)]
#[command(
    name = "crier",
    version,
    about = "Self-hosted SMS and email sending with billing, in one binary and one SQLite file.",
    long_about = None,
    // `crier --addr …` is `crier serve --addr …`; settings go after the subcommand they are for.
    args_conflicts_with_subcommands = true,
    after_help = "Every setting can be given as a flag or as its CRIER_* environment variable; \
                  a flag wins over the variable. Each subcommand takes only the settings it uses \
                  (see `crier <command> --help`) and ignores the variables of the others.\n\
                  Errors are one line on standard error, starting with `crier: `.\n\
                  Exit codes: 0 success; 1 the operation failed (doctor found a problem, backup or \
                  migration failed, the server could not start, an admin command was refused); \
                  2 invalid usage or configuration."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Every setting, as given (strings until `Config::from_args` types them).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub delivery: DeliveryArgs,

    #[command(flatten)]
    pub payments: PaymentArgs,
}

/// Where the database is and how it is opened: what every maintenance command takes.
const STORAGE: &[&str] = &["data-dir", "db-path", "db-busy-timeout-ms"];
/// How the commands that write the database commit.
const WRITES: &[&str] = &["db-synchronous"];
const LOGGING: &[&str] = &["log-format", "log-level"];

/// The settings each subcommand (by its path) takes besides `STORAGE` and `LOGGING`; `serve`
/// takes them all. Read from the code each command runs: `create-user` hashes a password and
/// gives a new workspace the catalog's currency; the others only read and write rows.
const TAKES: &[(&[&str], &[&str])] = &[
    (&["migrate"], WRITES),
    (&["backup"], &[]),
    (&["doctor"], &[]),
    (
        &["dkim-record"],
        &["dkim-selector", "dkim-key-file", "email-from"],
    ),
    (
        &["admin", "create-user"],
        &["db-synchronous", "password-iterations", "billing-catalog"],
    ),
    (&["admin", "create-api-key"], WRITES),
    (&["admin", "adjust-wallet"], WRITES),
];

/// The whole command line: `Cli` with each subcommand given the settings it takes.
pub fn command() -> clap::Command {
    let every: Vec<clap::Arg> = Settings::augment_args(clap::Command::new("crier"))
        .get_arguments()
        .cloned()
        .collect();
    let named = |names: &[&str]| -> Vec<clap::Arg> {
        names
            .iter()
            .chain(STORAGE)
            .chain(LOGGING)
            .map(|name| {
                every
                    .iter()
                    .find(|arg| arg.get_long() == Some(name))
                    .unwrap_or_else(|| panic!("no setting --{name}"))
                    .clone()
            })
            .collect()
    };
    let mut cli = Cli::command().mut_subcommand("serve", |serve| serve.args(every.clone()));
    for (path, extra) in TAKES {
        let args = named(extra);
        cli = match path {
            [name] => cli.mut_subcommand(name, |sub| sub.args(args)),
            [group, name] => cli.mut_subcommand(group, |group| {
                group.mut_subcommand(name, |sub| sub.args(args))
            }),
            _ => unreachable!("subcommands are at most two deep"),
        };
    }
    cli
}

/// Parses the process's arguments (exiting with clap's message and code 2 on bad usage) into the
/// subcommand and the complete settings: the ones it took, defaults for the rest.
pub fn parse() -> (Option<Command>, Settings) {
    parse_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
}

/// `parse` on given arguments.
pub fn parse_from(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<(Option<Command>, Settings), clap::Error> {
    let matches = command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let mut leaf = &matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    let settings = if std::ptr::eq(leaf, &matches) {
        cli.settings
    } else {
        taken_settings(leaf)?
    };
    Ok((cli.command, settings))
}

/// The settings a subcommand took, over the declared defaults of all the others (their
/// variables are not read). The taken values are handed to `Settings` as `--flag=value`.
fn taken_settings(leaf: &ArgMatches) -> Result<Settings, clap::Error> {
    let all = Settings::augment_args(clap::Command::new("crier"))
        .mut_args(|arg| arg.env(clap::builder::Resettable::Reset));
    let mut args = vec![OsString::from("crier")];
    for arg in all.get_arguments() {
        let id = arg.get_id().as_str();
        let (Some(long), Ok(Some(values))) = (arg.get_long(), leaf.try_get_raw(id)) else {
            continue;
        };
        for value in values {
            let mut flag = OsString::from(format!("--{long}="));
            flag.push(value);
            args.push(flag);
        }
    }
    Settings::from_arg_matches(&all.try_get_matches_from(args)?)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default when no subcommand is given).
    Serve,
    /// Create the database if needed, convert it to incremental auto-vacuum (one VACUUM, once),
    /// apply pending migrations, and exit.
    Migrate,
    /// Write a consistent copy of the database to FILE; safe while the server runs.
    Backup {
        /// Where to write the copy; must not exist yet.
        file: PathBuf,
    },
    /// Check the database: integrity, foreign keys, migration state. Exits 1 on any problem.
    Doctor,
    /// Print the DNS TXT record to publish for the DKIM key (--dkim-selector, --dkim-key-file, for the domain of --email-from). Exits 1 if the key is unusable.
    DkimRecord,
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
    /// The workspace id, or a name exactly one workspace has.
    #[arg(long, value_name = "ID_OR_NAME")]
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

/// The `CRIER_*` variables in `environment` that no setting of any command reads — most likely
/// misspelled (`CRIER_PUBLIC_URl`), and otherwise silently ignored; sorted.
pub fn unknown_variables(environment: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<String> {
    fn known(command: &clap::Command, names: &mut std::collections::BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                names.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            known(sub, names);
        }
    }
    let mut names = std::collections::BTreeSet::new();
    known(&command(), &mut names);
    let mut unknown: Vec<String> = environment
        .into_iter()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.starts_with("CRIER_") && !names.contains(name))
        .collect();
    unknown.sort();
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crier_variable_no_setting_reads_is_reported() {
        let environment = [
            "CRIER_PUBLIC_URl",
            "CRIER_WORKERS",
            "CRIER_WORKER",
            "HOME",
            "CRIER_BACKUP_DIR",
        ];
        assert_eq!(
            unknown_variables(environment.map(std::ffi::OsString::from)),
            ["CRIER_PUBLIC_URl", "CRIER_WORKER"]
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn settings_come_after_the_subcommand_that_takes_them() {
        let (command, settings) = parse_from(["crier", "doctor", "--data-dir", "/tmp/x"]).unwrap();
        assert!(matches!(command, Some(Command::Doctor)));
        assert_eq!(settings.server.data_dir, "/tmp/x");
        let (command, settings) = parse_from([
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
        assert!(matches!(command, Some(Command::Admin { .. })));
        assert_eq!(settings.server.data_dir, "/tmp/y");
        let (command, settings) = parse_from(["crier", "--addr", "127.0.0.1:9"]).unwrap();
        assert!(command.is_none());
        assert_eq!(settings.server.addr, "127.0.0.1:9");
        let (_, settings) = parse_from(["crier", "serve", "--workers", "3"]).unwrap();
        assert_eq!(settings.server.workers, "3");
    }

    #[test]
    fn a_subcommand_refuses_a_setting_it_does_not_use() {
        let err = parse_from(["crier", "backup", "copy.db", "--addr", "127.0.0.1:9"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let err = parse_from(["crier", "--workers", "3", "doctor"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn what_a_subcommand_does_not_take_keeps_its_default() {
        let (_, settings) = parse_from(["crier", "migrate", "--db-synchronous", "normal"]).unwrap();
        assert_eq!(settings.server.db_synchronous, "normal");
        assert_eq!(settings.server.workers, "32");
        assert_eq!(settings.server.addr, "127.0.0.1:8080");
    }

    #[test]
    fn a_mistyped_flag_gets_a_suggestion() {
        let err = parse_from(["crier", "serve", "--adr", "1"]).unwrap_err();
        let text = err.render().to_string();
        assert!(
            text.contains("a similar argument exists: '--addr'"),
            "{text}"
        );
    }

    #[test]
    fn help_lists_every_setting_with_its_variable() {
        let help = command().render_long_help().to_string();
        for variable in [
            "CRIER_ADDR",
            "CRIER_DATA_DIR",
            "CRIER_DB_PATH",
            "CRIER_WORKERS",
            "CRIER_DB_POOL_SIZE",
            "CRIER_DB_BUSY_TIMEOUT_MS",
            "CRIER_DB_SYNCHRONOUS",
            "CRIER_DB_CHECKPOINT_PAGES",
            "CRIER_MAX_BODY_BYTES",
            "CRIER_HTTP_TIMEOUT_SECS",
            "CRIER_SHUTDOWN_TIMEOUT_SECS",
            "CRIER_PUBLIC_URL",
            "CRIER_PASSWORD_ITERATIONS",
            "CRIER_IDEMPOTENCY_RETENTION_HOURS",
            "CRIER_IDEMPOTENCY_LEASE_SECS",
            "CRIER_JANITOR_INTERVAL_SECS",
            "CRIER_ACTIVITY_RETENTION_DAYS",
            "CRIER_MESSAGE_RETENTION_DAYS",
            "CRIER_DEFAULT_SMS_SENDER",
            "CRIER_TOPUP_MINIMUM_MINOR",
            "CRIER_BILLING_CATALOG",
            "CRIER_TRUSTED_PROXIES",
            "CRIER_DEFAULT_COUNTRY",
            "CRIER_WEBHOOK_ALLOW_PRIVATE",
            "CRIER_WEBHOOK_HTTP_HOSTS",
            "CRIER_WEBHOOK_TIMEOUT_SECS",
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
