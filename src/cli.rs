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
    /// Display name [default: the part of the email before @].
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

    /// Directory for crier's data: holds the database unless --db-path says otherwise.
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

    /// The URL users reach crier at (links in invitations; https:// makes cookies Secure)
    /// [default: http://ADDR].
    #[arg(long, env = "CRIER_PUBLIC_URL", global = true, hide_env_values = true)]
    pub public_url: Option<String>,

    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (100000–10000000).
    #[arg(
        long,
        env = "CRIER_PASSWORD_ITERATIONS",
        default_value = "600000",
        global = true,
        hide_env_values = true
    )]
    pub password_iterations: String,

    /// Hours idempotency records are kept (at least 24).
    #[arg(
        long,
        env = "CRIER_IDEMPOTENCY_RETENTION_HOURS",
        default_value = "24",
        global = true,
        hide_env_values = true
    )]
    pub idempotency_retention_hours: String,

    /// Seconds an idempotent call to a provider holds its key before a retry may take over.
    #[arg(
        long,
        env = "CRIER_IDEMPOTENCY_LEASE_SECS",
        default_value = "60",
        global = true,
        hide_env_values = true
    )]
    pub idempotency_lease_secs: String,

    /// Seconds between the janitor's sweeps of expired rows.
    #[arg(
        long,
        env = "CRIER_JANITOR_INTERVAL_SECS",
        default_value = "60",
        global = true,
        hide_env_values = true
    )]
    pub janitor_interval_secs: String,

    /// SMS sender for workspaces without an approved sender ID and verification (3–11 letters,
    /// digits or spaces).
    #[arg(
        long,
        env = "CRIER_DEFAULT_SMS_SENDER",
        default_value = "CRIER",
        global = true,
        hide_env_values = true
    )]
    pub default_sms_sender: String,

    /// Smallest wallet top-up, in the wallet currency's minor unit.
    #[arg(
        long,
        env = "CRIER_TOPUP_MINIMUM_MINOR",
        default_value = "250",
        global = true,
        hide_env_values = true
    )]
    pub topup_minimum_minor: String,

    /// A JSON file replacing the built-in billing catalog (currency, plans, price bands)
    /// [default: the built-in catalog in XAF, see docs/rules/billing.md].
    #[arg(
        long,
        env = "CRIER_BILLING_CATALOG",
        global = true,
        hide_env_values = true
    )]
    pub billing_catalog: Option<String>,

    /// Comma-separated IPs of reverse proxies in front of crier; their X-Forwarded-For gives the
    /// client IP used for login throttling [default: none, the socket's peer is the client].
    #[arg(
        long,
        env = "CRIER_TRUSTED_PROXIES",
        global = true,
        hide_env_values = true
    )]
    pub trusted_proxies: Option<String>,

    /// Country (ISO 3166 alpha-2) that phone numbers without a + prefix are read in.
    #[arg(
        long,
        env = "CRIER_DEFAULT_COUNTRY",
        default_value = "CM",
        global = true,
        hide_env_values = true
    )]
    pub default_country: String,

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

    #[command(flatten)]
    pub delivery: DeliveryArgs,

    #[command(flatten)]
    pub payments: PaymentArgs,
}

/// Delivery settings: providers per channel, each provider's connection, the dispatcher's pace.
/// Flattened into `SettingsArgs`; `delivery::settings::DeliveryArgs::validate` types them.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DeliveryArgs {
    /// SMS providers in fallback order, comma-separated: log, webhook, twilio, infobip, avlytext, mboasms. Each one listed must be configured.
    #[arg(
        long,
        env = "CRIER_SMS_PROVIDERS",
        default_value = "log",
        global = true,
        hide_env_values = true
    )]
    pub sms_providers: String,

    /// Email providers in fallback order, comma-separated: log, smtp.
    #[arg(
        long,
        env = "CRIER_EMAIL_PROVIDERS",
        default_value = "log",
        global = true,
        hide_env_values = true
    )]
    pub email_providers: String,

    /// The From mailbox of every email: `Name <address>` or an address.
    #[arg(
        long,
        env = "CRIER_EMAIL_FROM",
        default_value = "crier@localhost",
        global = true,
        hide_env_values = true
    )]
    pub email_from: String,

    /// Limit on one provider call (connect and whole exchange), in seconds.
    #[arg(
        long,
        env = "CRIER_PROVIDER_TIMEOUT_SECS",
        default_value = "15",
        global = true,
        hide_env_values = true
    )]
    pub provider_timeout_secs: String,

    /// SMTP server host name; required by the smtp provider.
    #[arg(long, env = "CRIER_SMTP_HOST", global = true, hide_env_values = true)]
    pub smtp_host: Option<String>,

    /// SMTP server port.
    #[arg(
        long,
        env = "CRIER_SMTP_PORT",
        default_value = "587",
        global = true,
        hide_env_values = true
    )]
    pub smtp_port: String,

    /// SMTP connection security: starttls (required STARTTLS), tls (TLS from the start, usually port 465) or none (plain text; only for a local relay).
    #[arg(
        long,
        env = "CRIER_SMTP_SECURITY",
        default_value = "starttls",
        global = true,
        hide_env_values = true
    )]
    pub smtp_security: String,

    /// SMTP AUTH user name; give it with --smtp-password or neither.
    #[arg(
        long,
        env = "CRIER_SMTP_USERNAME",
        global = true,
        hide_env_values = true
    )]
    pub smtp_username: Option<String>,

    /// SMTP AUTH password (secret).
    #[arg(
        long,
        env = "CRIER_SMTP_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,

    /// URL the webhook SMS provider POSTs each message to as JSON; required by that provider.
    #[arg(
        long,
        env = "CRIER_SMS_WEBHOOK_URL",
        global = true,
        hide_env_values = true
    )]
    pub sms_webhook_url: Option<String>,

    /// Key for the X-Crier-Signature HMAC-SHA256 of each webhook body (secret) [default: unsigned].
    #[arg(
        long,
        env = "CRIER_SMS_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub sms_webhook_secret: Option<String>,

    /// Twilio API base URL.
    #[arg(
        long,
        env = "CRIER_TWILIO_BASE_URL",
        default_value = "https://api.twilio.com",
        global = true,
        hide_env_values = true
    )]
    pub twilio_base_url: String,

    /// Twilio account SID; required by the twilio provider.
    #[arg(
        long,
        env = "CRIER_TWILIO_ACCOUNT_SID",
        global = true,
        hide_env_values = true
    )]
    pub twilio_account_sid: Option<String>,

    /// Twilio auth token (secret); required by the twilio provider.
    #[arg(
        long,
        env = "CRIER_TWILIO_AUTH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub twilio_auth_token: Option<String>,

    /// Your Infobip API base URL (https://xxxxx.api.infobip.com); required by the infobip provider.
    #[arg(
        long,
        env = "CRIER_INFOBIP_BASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub infobip_base_url: Option<String>,

    /// Infobip API key (secret); required by the infobip provider.
    #[arg(
        long,
        env = "CRIER_INFOBIP_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub infobip_api_key: Option<String>,

    /// AvlyText API base URL.
    #[arg(
        long,
        env = "CRIER_AVLYTEXT_BASE_URL",
        default_value = "https://api.avlytext.com",
        global = true,
        hide_env_values = true
    )]
    pub avlytext_base_url: String,

    /// AvlyText API key (secret); required by the avlytext provider.
    #[arg(
        long,
        env = "CRIER_AVLYTEXT_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub avlytext_api_key: Option<String>,

    /// MboaSMS API base URL.
    #[arg(
        long,
        env = "CRIER_MBOASMS_BASE_URL",
        default_value = "https://mboadeals.net",
        global = true,
        hide_env_values = true
    )]
    pub mboasms_base_url: String,

    /// MboaSMS user id; required by the mboasms provider.
    #[arg(
        long,
        env = "CRIER_MBOASMS_USER_ID",
        global = true,
        hide_env_values = true
    )]
    pub mboasms_user_id: Option<String>,

    /// MboaSMS API password (secret); required by the mboasms provider.
    #[arg(
        long,
        env = "CRIER_MBOASMS_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub mboasms_password: Option<String>,

    /// Secret token that delivery-receipt callback URLs carry (at least 16 characters); without it crier asks providers for no receipts and POST /v1/webhooks/sms/{provider} answers 404.
    #[arg(
        long,
        env = "CRIER_RECEIPT_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub receipt_token: Option<String>,

    /// Dispatcher threads delivering messages (0 stops delivery; messages wait queued).
    #[arg(
        long,
        env = "CRIER_DISPATCH_WORKERS",
        default_value = "4",
        global = true,
        hide_env_values = true
    )]
    pub dispatch_workers: String,

    /// Messages a dispatcher claims at a time; while full batches go out within 50 ms it claims up to 8 times as many.
    #[arg(
        long,
        env = "CRIER_DISPATCH_BATCH",
        default_value = "50",
        global = true,
        hide_env_values = true
    )]
    pub dispatch_batch: String,

    /// How long a claimed message stays with its dispatcher before another may take it over (after a crash).
    #[arg(
        long,
        env = "CRIER_DISPATCH_LEASE_SECS",
        default_value = "120",
        global = true,
        hide_env_values = true
    )]
    pub dispatch_lease_secs: String,

    /// How often idle dispatchers and the scheduler look for due messages, in milliseconds (new sends wake them at once).
    #[arg(
        long,
        env = "CRIER_DISPATCH_POLL_MS",
        default_value = "500",
        global = true,
        hide_env_values = true
    )]
    pub dispatch_poll_ms: String,

    /// Passes over a channel's providers before a message that only met retryable errors fails (and is refunded).
    #[arg(
        long,
        env = "CRIER_MAX_DELIVERY_CYCLES",
        default_value = "5",
        global = true,
        hide_env_values = true
    )]
    pub max_delivery_cycles: String,

    /// Delay before the second pass; it doubles per pass, with ±20% jitter.
    #[arg(
        long,
        env = "CRIER_RETRY_BASE_SECS",
        default_value = "30",
        global = true,
        hide_env_values = true
    )]
    pub retry_base_secs: String,

    /// Longest delay between passes.
    #[arg(
        long,
        env = "CRIER_RETRY_MAX_SECS",
        default_value = "3600",
        global = true,
        hide_env_values = true
    )]
    pub retry_max_secs: String,
}

/// Payment settings: provider order, each provider's keys and base URL, session lifetime.
/// Flattened into `SettingsArgs`; `payments::settings::PaymentArgs::validate` types them.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PaymentArgs {
    /// Payment providers tried in order when creating a checkout, comma-separated: flutterwave, stripe. One without its secret key is skipped.
    #[arg(
        long,
        env = "CRIER_PAYMENT_PROVIDERS",
        default_value = "flutterwave,stripe",
        global = true,
        hide_env_values = true
    )]
    pub payment_providers: String,

    /// Flutterwave API base URL.
    #[arg(
        long,
        env = "CRIER_FLUTTERWAVE_BASE_URL",
        default_value = "https://api.flutterwave.com",
        global = true,
        hide_env_values = true
    )]
    pub flutterwave_base_url: String,

    /// Flutterwave secret key (secret); without it Flutterwave is not configured.
    #[arg(
        long,
        env = "CRIER_FLUTTERWAVE_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub flutterwave_secret_key: Option<String>,

    /// The secret hash set in the Flutterwave dashboard (secret): checked against `verif-hash`, and the key of `flutterwave-signature`. Without it Flutterwave webhooks get 401.
    #[arg(
        long,
        env = "CRIER_FLUTTERWAVE_WEBHOOK_HASH",
        global = true,
        hide_env_values = true
    )]
    pub flutterwave_webhook_hash: Option<String>,

    /// Stripe API base URL.
    #[arg(
        long,
        env = "CRIER_STRIPE_BASE_URL",
        default_value = "https://api.stripe.com",
        global = true,
        hide_env_values = true
    )]
    pub stripe_base_url: String,

    /// Stripe secret key (secret); without it Stripe is not configured.
    #[arg(
        long,
        env = "CRIER_STRIPE_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub stripe_secret_key: Option<String>,

    /// The Stripe endpoint's signing secret `whsec_…` (secret). Without it Stripe webhooks get 401.
    #[arg(
        long,
        env = "CRIER_STRIPE_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub stripe_webhook_secret: Option<String>,

    /// How old (or how far ahead) a Stripe-Signature timestamp may be, in seconds.
    #[arg(
        long,
        env = "CRIER_STRIPE_WEBHOOK_TOLERANCE_SECS",
        default_value = "300",
        global = true,
        hide_env_values = true
    )]
    pub stripe_webhook_tolerance_secs: String,

    /// How long a checkout session may stay unpaid before the janitor expires it (30–1440; Stripe needs at least 30).
    #[arg(
        long,
        env = "CRIER_PAYMENT_SESSION_MINUTES",
        default_value = "30",
        global = true,
        hide_env_values = true
    )]
    pub payment_session_minutes: String,

    /// Where providers send the payer back (`?session=pay_…` is appended) [default: PUBLIC_URL/billing/return].
    #[arg(
        long,
        env = "CRIER_PAYMENT_RETURN_URL",
        global = true,
        hide_env_values = true
    )]
    pub payment_return_url: Option<String>,

    /// Limit on one payment provider call, in seconds.
    #[arg(
        long,
        env = "CRIER_PAYMENT_TIMEOUT_SECS",
        default_value = "15",
        global = true,
        hide_env_values = true
    )]
    pub payment_timeout_secs: String,
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
            public_url: self.public_url,
            password_iterations: self.password_iterations,
            idempotency_retention_hours: self.idempotency_retention_hours,
            idempotency_lease_secs: self.idempotency_lease_secs,
            janitor_interval_secs: self.janitor_interval_secs,
            default_sms_sender: self.default_sms_sender,
            topup_minimum_minor: self.topup_minimum_minor,
            billing_catalog: self.billing_catalog,
            trusted_proxies: self.trusted_proxies.unwrap_or_default(),
            default_country: self.default_country,
            log_format: self.log_format,
            log_level: self.log_level,
            delivery: self.delivery,
            payments: self.payments,
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
        assert_eq!(cli.settings.data_dir, "/tmp/y");
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
