//! The server's own settings (`ServerArgs`: listening, the database, timeouts, billing, logs) and
//! `Config`, the validated configuration every part of the program reads.
//!
//! `Config::from_args` validates the server's settings together with the delivery and payment
//! settings their own modules declare, and reports every bad value at once (problems between
//! settings once the values are valid). Nothing else in the
//! crate reads the environment: clap fills each setting from its flag, then its `CRIER_*`
//! variable, then its default.

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::auth::buckets::Rate;
use crate::delivery::settings::DeliveryArgs;
use crate::payments::settings::PaymentArgs;
use crate::settings::values::{non_empty_path, one_of, public_url, socket_addr, whole_number};
use crate::settings::{Problems, Setting, SettingArg};

/// Where `Secret` has always been found; it lives with the other settings building blocks.
pub use crate::settings::Secret;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-25T10:00:00.000Z INFO request method=GET status=200 …`
    Text,
    /// One JSON object per line.
    Json,
}

/// SQLite's `synchronous` level for the WAL (see docs/design/storage.md, "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL at every commit: a committed payment survives a power cut.
    Full,
    /// fsync only at checkpoints: survives a process crash, may lose the last commits on power loss.
    Normal,
}

impl Synchronous {
    pub fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// The validated configuration every part of the program reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// Directory for the database and other state; created on start.
    pub data_dir: PathBuf,
    /// The SQLite database file.
    pub db_path: PathBuf,
    /// HTTP worker threads (the number of requests served at once).
    pub workers: NonZeroUsize,
    /// Pooled SQLite connections.
    pub db_pool_size: NonZeroU32,
    /// How long a statement waits for SQLite's write lock before giving up with 503.
    pub db_busy_timeout: Duration,
    pub db_synchronous: Synchronous,
    /// WAL pages after which the commit that passes them checkpoints (SQLite's
    /// `wal_autocheckpoint`; the background checkpointer copies meanwhile); 0 leaves
    /// checkpoints, both, to another process (Litestream).
    pub db_checkpoint_pages: u32,
    /// Largest accepted request body for JSON endpoints.
    pub max_body_bytes: u64,
    /// Largest CSV file `POST /v1/contacts/imports` accepts (spooled to disk, never in memory).
    pub max_import_bytes: u64,
    /// How long a connection may stay silent (mid-request, or idle between keep-alive requests)
    /// or refuse to take our bytes before it is closed.
    pub http_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// The URL users reach crier at, for links crier sends (invitations) and `Secure` cookies
    /// (when it starts with `https://`). No trailing slash.
    pub public_url: String,
    /// PBKDF2 iterations for new password hashes.
    pub password_iterations: NonZeroU32,
    /// How long idempotency records are kept (never less than 24 hours).
    pub idempotency_retention: Duration,
    /// How long a leased idempotent operation (one that calls a provider) holds its key before a
    /// retry may take over.
    pub idempotency_lease: Duration,
    /// How often the janitor deletes expired rows.
    pub janitor_interval: Duration,
    /// How long activity log entries are kept before the janitor deletes them.
    pub activity_retention: Duration,
    /// How long a message keeps its subject and bodies before the janitor drops them (`None`:
    /// forever).
    pub message_retention: Option<Duration>,
    /// The SMS sender of workspaces without an approved sender ID and verification.
    pub default_sms_sender: String,
    /// The smallest wallet top-up, in the wallet currency's minor unit.
    pub topup_minimum_minor: i64,
    /// Plans, price bands and the wallet currency of new workspaces.
    pub billing_catalog: crate::billing::catalog::Catalog,
    /// Country (ISO 3166 alpha-2) that phone numbers without a `+` prefix are read in.
    pub default_country: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed for the client's IP.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Each API key's request bucket.
    pub api_rate: Rate,
    /// Each client IP's bucket for the routes open without credentials.
    pub public_rate: Rate,
    /// Providers per channel and how the dispatcher paces itself.
    pub delivery: crate::delivery::settings::DeliverySettings,
    /// Payment providers, their keys, and session lifetime.
    pub payments: crate::payments::settings::PaymentSettings,
    /// Scheduled backups while serving (off unless a directory is given).
    pub backups: crate::backups::BackupSettings,
    /// Outgoing webhooks: which targets they may reach, each attempt's timeout.
    pub webhooks: crate::webhooks::WebhookSettings,
    pub log_format: LogFormat,
    pub log_level: log::LevelFilter,
}

impl Config {
    /// A configuration for tests: everything under `data_dir`, a random port on loopback,
    /// few workers, text logs at `warn` so test output stays readable.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path: data_dir.join("crier.db"),
            data_dir,
            workers: NonZeroUsize::MIN.saturating_add(3),
            db_pool_size: NonZeroU32::MIN.saturating_add(7),
            db_busy_timeout: Duration::from_secs(5),
            db_synchronous: Synchronous::Normal,
            db_checkpoint_pages: DEFAULT_CHECKPOINT_PAGES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_import_bytes: DEFAULT_MAX_IMPORT_BYTES,
            http_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            public_url: "http://127.0.0.1".to_owned(),
            // Tests hash many passwords; production uses DEFAULT_PASSWORD_ITERATIONS.
            password_iterations: NonZeroU32::MIN.saturating_add(999),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            idempotency_lease: Duration::from_secs(60),
            // Tests sweep explicitly; a background sweep in the middle would race them.
            janitor_interval: Duration::from_secs(24 * 60 * 60),
            activity_retention: Duration::from_secs(365 * DAY_SECS),
            message_retention: Some(Duration::from_secs(90 * DAY_SECS)),
            default_sms_sender: "CRIER".to_owned(),
            topup_minimum_minor: 250,
            billing_catalog: crate::billing::catalog::Catalog::default(),
            trusted_proxies: Vec::new(),
            // Tests fire requests as fast as they can; the limit's own tests turn it on.
            api_rate: Rate::OFF,
            public_rate: Rate::OFF,
            default_country: "CM".to_owned(),
            // The log providers, polled often and retried soon, so tests wait milliseconds.
            delivery: crate::delivery::settings::DeliverySettings {
                dispatch_workers: 2,
                dispatch_poll: Duration::from_millis(20),
                provider_timeout: Duration::from_secs(5),
                retry_base_delay: Duration::from_millis(100),
                retry_max_delay: Duration::from_secs(1),
                ..Default::default()
            },
            payments: crate::payments::settings::PaymentSettings {
                timeout: Duration::from_secs(5),
                // Retries come due when a test moves its clock; they are picked up at once.
                worker_poll: Duration::from_millis(50),
                ..Default::default()
            },
            // Off; the backup tests turn them on, with a clock they move.
            backups: crate::backups::BackupSettings {
                check_every: Duration::from_millis(20),
                ..Default::default()
            },
            // Off; the webhook tests allow loopback over http, each as it needs.
            webhooks: crate::webhooks::WebhookSettings::default(),
            log_format: LogFormat::Text,
            log_level: log::LevelFilter::Warn,
        }
    }
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// 1 GiB: about 15 million rows of a typical contact list.
pub const DEFAULT_MAX_IMPORT_BYTES: u64 = 1 << 30;
/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const DEFAULT_PASSWORD_ITERATIONS: u32 = 600_000;
/// SQLite's own default for `wal_autocheckpoint`.
pub const DEFAULT_CHECKPOINT_PAGES: u32 = 1000;
/// Seconds in a day.
const DAY_SECS: u64 = 24 * 60 * 60;

/// The server's settings as given, before validation. Delivery and payment settings are
/// declared by their own modules; `cli::Settings` gathers all three.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ServerArgs {
    /// Address the HTTP server listens on (IP:PORT; port 0 picks a free port).
    #[arg(crier_setting = ADDR, default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Directory for crier's data: holds the database unless --db-path says otherwise.
    #[arg(crier_setting = DATA_DIR, default_value = "./crier-data")]
    pub data_dir: String,

    /// SQLite database file [default: DATA_DIR/crier.db].
    #[arg(crier_setting = DB_PATH)]
    pub db_path: Option<String>,

    /// HTTP worker threads: how many requests are handled at once. A send does not hold its
    /// worker while it waits for its commit (the writer's thread answers it), so sends need few;
    /// more serve other requests while some wait (password hashing, a slow read).
    #[arg(crier_setting = WORKERS, default_value = "32")]
    pub workers: String,

    /// Pooled SQLite connections shared by workers and background threads.
    #[arg(crier_setting = DB_POOL_SIZE, default_value = "16")]
    pub db_pool_size: String,

    /// Milliseconds a write waits for SQLite's lock before the request gets 503.
    #[arg(crier_setting = DB_BUSY_TIMEOUT_MS, default_value = "5000")]
    pub db_busy_timeout_ms: String,

    /// SQLite synchronous level: full (every commit reaches the disk) or normal.
    #[arg(crier_setting = DB_SYNCHRONOUS, default_value = "full")]
    pub db_synchronous: String,

    /// WAL pages after which a commit copies the rest of the WAL back into the database
    /// (SQLite's wal_autocheckpoint; a background thread copies meanwhile); 0 leaves
    /// checkpoints to Litestream or another process (0–1000000).
    #[arg(crier_setting = DB_CHECKPOINT_PAGES, default_value = "1000")]
    pub db_checkpoint_pages: String,

    /// Largest JSON request body in bytes; larger bodies get 413.
    #[arg(crier_setting = MAX_BODY_BYTES, default_value = "1048576")]
    pub max_body_bytes: String,

    /// Largest CSV file a contact import accepts, in bytes (spooled to disk beside the
    /// database); larger uploads get 413.
    #[arg(crier_setting = MAX_IMPORT_BYTES, default_value = "1073741824")]
    pub max_import_bytes: String,

    /// Seconds a client has to send a request's head, and then its body (however steadily the
    /// bytes come), and the most a keep-alive connection may stay idle between requests.
    #[arg(crier_setting = HTTP_TIMEOUT_SECS, default_value = "30")]
    pub http_timeout_secs: String,

    /// Seconds shutdown waits for in-flight requests before exiting anyway.
    #[arg(crier_setting = SHUTDOWN_TIMEOUT_SECS, default_value = "10")]
    pub shutdown_timeout_secs: String,

    /// The URL users reach crier at (links in invitations and unsubscribe links; https:// makes
    /// cookies Secure) [default: http://ADDR].
    #[arg(crier_setting = PUBLIC_URL)]
    pub public_url: Option<String>,

    /// PBKDF2-HMAC-SHA256 iterations for new password hashes (100000–10000000).
    #[arg(crier_setting = PASSWORD_ITERATIONS, default_value = "600000")]
    pub password_iterations: String,

    /// Hours idempotency records are kept (at least 24).
    #[arg(crier_setting = IDEMPOTENCY_RETENTION_HOURS, default_value = "24")]
    pub idempotency_retention_hours: String,

    /// Seconds an idempotent call to a provider holds its key before a retry may take over.
    #[arg(crier_setting = IDEMPOTENCY_LEASE_SECS, default_value = "60")]
    pub idempotency_lease_secs: String,

    /// Seconds between the janitor's sweeps of expired rows.
    #[arg(crier_setting = JANITOR_INTERVAL_SECS, default_value = "60")]
    pub janitor_interval_secs: String,

    /// Days the activity log keeps an entry before the janitor deletes it (1–3650).
    #[arg(crier_setting = ACTIVITY_RETENTION_DAYS, default_value = "365")]
    pub activity_retention_days: String,
    /// Days a finished message keeps its subject and bodies before the janitor drops them
    /// (amounts, statuses, recipient and ledger stay); 0 keeps them forever (0–3650).
    #[arg(crier_setting = MESSAGE_RETENTION_DAYS, default_value = "90")]
    pub message_retention_days: String,

    /// SMS sender for workspaces without an approved sender ID and verification (3–11 letters,
    /// digits or spaces).
    #[arg(crier_setting = DEFAULT_SMS_SENDER, default_value = "CRIER")]
    pub default_sms_sender: String,

    /// Smallest wallet top-up, in the wallet currency's minor unit.
    #[arg(crier_setting = TOPUP_MINIMUM_MINOR, default_value = "250")]
    pub topup_minimum_minor: String,

    /// A JSON file replacing the built-in billing catalog (currency, plans, price bands)
    /// [default: the built-in catalog in XAF].
    #[arg(crier_setting = BILLING_CATALOG)]
    pub billing_catalog: Option<String>,

    /// Comma-separated IPs of reverse proxies in front of crier; their X-Forwarded-For gives the
    /// client IP used for login throttling [default: none, the socket's peer is the client].
    #[arg(crier_setting = TRUSTED_PROXIES)]
    pub trusted_proxies: Option<String>,

    /// Country (ISO 3166 alpha-2) that phone numbers without a + prefix are read in.
    #[arg(crier_setting = DEFAULT_COUNTRY, default_value = "CM")]
    pub default_country: String,

    /// Requests per second each API key may make, with bursts of twice as many (0 turns the limit off); more get 429.
    #[arg(crier_setting = API_RATE_LIMIT, default_value = "100")]
    pub api_rate_limit: String,

    /// Requests per second each client IP may make to the routes open without credentials (webhooks, setup, invitations, unsubscribe and link pages), with bursts of five times as many (0 turns it off).
    #[arg(crier_setting = PUBLIC_RATE_LIMIT, default_value = "10")]
    pub public_rate_limit: String,

    /// Scheduled backups (`backups::BackupArgs`), declared in their own module.
    #[command(flatten)]
    pub backups: crate::backups::BackupArgs,

    /// Whether webhook endpoints may reach loopback, private and link-local addresses (and the
    /// cloud metadata address): true or false. Checked on every attempt against the addresses
    /// the host resolves to.
    #[arg(crier_setting = WEBHOOK_ALLOW_PRIVATE, default_value = "false")]
    pub webhook_allow_private: String,

    /// Comma-separated hosts webhook endpoints may reach over plain http:// [default: none,
    /// https only].
    #[arg(crier_setting = WEBHOOK_HTTP_HOSTS)]
    pub webhook_http_hosts: Option<String>,

    /// The longest one webhook delivery attempt may take (connect, send, answer), in seconds.
    #[arg(crier_setting = WEBHOOK_TIMEOUT_SECS, default_value = "10")]
    pub webhook_timeout_secs: String,

    /// Log line format on standard error: text or json.
    #[arg(crier_setting = LOG_FORMAT, default_value = "text")]
    pub log_format: String,

    /// Log level: off, error, warn, info, debug or trace.
    #[arg(crier_setting = LOG_LEVEL, default_value = "info")]
    pub log_level: String,
}

// Each server setting's flag and variable, named once for its `#[arg]` and its problems.
const ADDR: Setting = Setting::new("addr", "CRIER_ADDR");
const DATA_DIR: Setting = Setting::new("data-dir", "CRIER_DATA_DIR");
const DB_PATH: Setting = Setting::new("db-path", "CRIER_DB_PATH");
const WORKERS: Setting = Setting::new("workers", "CRIER_WORKERS");
const DB_POOL_SIZE: Setting = Setting::new("db-pool-size", "CRIER_DB_POOL_SIZE");
const DB_BUSY_TIMEOUT_MS: Setting = Setting::new("db-busy-timeout-ms", "CRIER_DB_BUSY_TIMEOUT_MS");
const DB_SYNCHRONOUS: Setting = Setting::new("db-synchronous", "CRIER_DB_SYNCHRONOUS");
const DB_CHECKPOINT_PAGES: Setting =
    Setting::new("db-checkpoint-pages", "CRIER_DB_CHECKPOINT_PAGES");
const MAX_BODY_BYTES: Setting = Setting::new("max-body-bytes", "CRIER_MAX_BODY_BYTES");
const MAX_IMPORT_BYTES: Setting = Setting::new("max-import-bytes", "CRIER_MAX_IMPORT_BYTES");
const HTTP_TIMEOUT_SECS: Setting = Setting::new("http-timeout-secs", "CRIER_HTTP_TIMEOUT_SECS");
const SHUTDOWN_TIMEOUT_SECS: Setting =
    Setting::new("shutdown-timeout-secs", "CRIER_SHUTDOWN_TIMEOUT_SECS");
const PUBLIC_URL: Setting = Setting::new("public-url", "CRIER_PUBLIC_URL");
const PASSWORD_ITERATIONS: Setting =
    Setting::new("password-iterations", "CRIER_PASSWORD_ITERATIONS");
const IDEMPOTENCY_RETENTION_HOURS: Setting = Setting::new(
    "idempotency-retention-hours",
    "CRIER_IDEMPOTENCY_RETENTION_HOURS",
);
const IDEMPOTENCY_LEASE_SECS: Setting =
    Setting::new("idempotency-lease-secs", "CRIER_IDEMPOTENCY_LEASE_SECS");
const JANITOR_INTERVAL_SECS: Setting =
    Setting::new("janitor-interval-secs", "CRIER_JANITOR_INTERVAL_SECS");
const ACTIVITY_RETENTION_DAYS: Setting =
    Setting::new("activity-retention-days", "CRIER_ACTIVITY_RETENTION_DAYS");
const MESSAGE_RETENTION_DAYS: Setting =
    Setting::new("message-retention-days", "CRIER_MESSAGE_RETENTION_DAYS");
const DEFAULT_SMS_SENDER: Setting = Setting::new("default-sms-sender", "CRIER_DEFAULT_SMS_SENDER");
const TOPUP_MINIMUM_MINOR: Setting =
    Setting::new("topup-minimum-minor", "CRIER_TOPUP_MINIMUM_MINOR");
const BILLING_CATALOG: Setting = Setting::new("billing-catalog", "CRIER_BILLING_CATALOG");
const TRUSTED_PROXIES: Setting = Setting::new("trusted-proxies", "CRIER_TRUSTED_PROXIES");
const DEFAULT_COUNTRY: Setting = Setting::new("default-country", "CRIER_DEFAULT_COUNTRY");
const API_RATE_LIMIT: Setting = Setting::new("api-rate-limit", "CRIER_API_RATE_LIMIT");
const PUBLIC_RATE_LIMIT: Setting = Setting::new("public-rate-limit", "CRIER_PUBLIC_RATE_LIMIT");
const WEBHOOK_ALLOW_PRIVATE: Setting =
    Setting::new("webhook-allow-private", "CRIER_WEBHOOK_ALLOW_PRIVATE");
const WEBHOOK_HTTP_HOSTS: Setting = Setting::new("webhook-http-hosts", "CRIER_WEBHOOK_HTTP_HOSTS");
const WEBHOOK_TIMEOUT_SECS: Setting =
    Setting::new("webhook-timeout-secs", "CRIER_WEBHOOK_TIMEOUT_SECS");
const LOG_FORMAT: Setting = Setting::new("log-format", "CRIER_LOG_FORMAT");
const LOG_LEVEL: Setting = Setting::new("log-level", "CRIER_LOG_LEVEL");

/// Every problem found in the settings, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Validates every setting, collecting all problems rather than stopping at the first: the
    /// server's, then delivery's, then payments'.
    pub fn from_args(
        server: &ServerArgs,
        delivery: &DeliveryArgs,
        payments: &PaymentArgs,
    ) -> Result<Config, ConfigError> {
        let mut problems = Problems::default();
        let config = server.validate(&mut problems, delivery, payments);
        problems.finish(config).map_err(ConfigError)
    }
}

impl ServerArgs {
    /// Types the server's settings into `problems`, then takes in the other groups' results.
    fn validate(
        &self,
        problems: &mut Problems,
        delivery: &DeliveryArgs,
        payments: &PaymentArgs,
    ) -> Option<Config> {
        let p = problems;
        let addr = p.check(ADDR, socket_addr(&self.addr));
        let data_dir = p.check(DATA_DIR, non_empty_path(&self.data_dir));
        let db_path = match &self.db_path {
            Some(path) => p.check(DB_PATH, non_empty_path(path)),
            None => data_dir.as_ref().map(|dir| dir.join("crier.db")),
        };
        let workers = p.check(WORKERS, whole_number(&self.workers, 1, 1024));
        let db_pool_size = p.check(DB_POOL_SIZE, whole_number(&self.db_pool_size, 1, 1024));
        let busy_timeout_ms = p.check(
            DB_BUSY_TIMEOUT_MS,
            whole_number(&self.db_busy_timeout_ms, 0, 600_000),
        );
        let db_checkpoint_pages = p.check(
            DB_CHECKPOINT_PAGES,
            whole_number(&self.db_checkpoint_pages, 0, 1_000_000),
        );
        let db_synchronous = p.check(
            DB_SYNCHRONOUS,
            one_of(
                &self.db_synchronous,
                &[("full", Synchronous::Full), ("normal", Synchronous::Normal)],
            ),
        );
        let max_body_bytes = p.check(
            MAX_BODY_BYTES,
            whole_number(&self.max_body_bytes, 1024, 1 << 30),
        );
        let max_import_bytes = p.check(
            MAX_IMPORT_BYTES,
            whole_number(&self.max_import_bytes, 1024, 1 << 40),
        );
        let http_timeout_secs = p.check(
            HTTP_TIMEOUT_SECS,
            whole_number(&self.http_timeout_secs, 1, 3600),
        );
        let shutdown_secs = p.check(
            SHUTDOWN_TIMEOUT_SECS,
            whole_number(&self.shutdown_timeout_secs, 0, 3600),
        );
        let public_url = match &self.public_url {
            Some(url) => p.check(PUBLIC_URL, public_url(url)),
            None => addr.map(|addr| format!("http://{addr}")),
        };
        let password_iterations = p.check(
            PASSWORD_ITERATIONS,
            whole_number(&self.password_iterations, 100_000, 10_000_000),
        );
        let idempotency_retention_hours = p.check(
            IDEMPOTENCY_RETENTION_HOURS,
            whole_number(&self.idempotency_retention_hours, 24, 24 * 365),
        );
        let idempotency_lease_secs = p.check(
            IDEMPOTENCY_LEASE_SECS,
            whole_number(&self.idempotency_lease_secs, 1, 3600),
        );
        let janitor_interval_secs = p.check(
            JANITOR_INTERVAL_SECS,
            whole_number(&self.janitor_interval_secs, 1, 24 * 60 * 60),
        );
        let activity_retention_days = p.check(
            ACTIVITY_RETENTION_DAYS,
            whole_number(&self.activity_retention_days, 1, 3650),
        );
        let message_retention_days = p.check(
            MESSAGE_RETENTION_DAYS,
            whole_number(&self.message_retention_days, 0, 3650),
        );
        let default_sms_sender = p.check(
            DEFAULT_SMS_SENDER,
            crate::billing::sender::normalize_sender_id(&self.default_sms_sender)
                .map_err(|why| format!("{why}, got {:?}", self.default_sms_sender)),
        );
        let topup_minimum_minor = p.check(
            TOPUP_MINIMUM_MINOR,
            whole_number(&self.topup_minimum_minor, 1, 1_000_000_000),
        );
        let billing_catalog = match &self.billing_catalog {
            Some(path) => p.check(
                BILLING_CATALOG,
                crate::billing::catalog::Catalog::load(std::path::Path::new(path)),
            ),
            None => Some(crate::billing::catalog::Catalog::default()),
        };
        let trusted_proxies = p.check(
            TRUSTED_PROXIES,
            self.trusted_proxies
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(|entry| {
                    entry.parse::<std::net::IpAddr>().map_err(|_| {
                        format!("must be IP addresses separated by commas, got {entry:?}")
                    })
                })
                .collect::<Result<Vec<_>, _>>(),
        );
        let default_country = p.check(DEFAULT_COUNTRY, {
            let code = self.default_country.trim().to_ascii_uppercase();
            match code.parse::<phonenumber::country::Id>() {
                Ok(_) => Ok(code),
                Err(_) => Err(format!(
                    "must be an ISO 3166 two-letter country code such as CM, got {:?}",
                    self.default_country
                )),
            }
        });
        let api_rate = p
            .check(
                API_RATE_LIMIT,
                whole_number(
                    &self.api_rate_limit,
                    0,
                    u64::from(crate::billing::catalog::MAX_API_REQUESTS_PER_SECOND),
                ),
            )
            .map(|per_second| rate(per_second, API_BURST_FACTOR));
        let public_rate = p
            .check(
                PUBLIC_RATE_LIMIT,
                whole_number(&self.public_rate_limit, 0, 1_000_000),
            )
            .map(|per_second| rate(per_second, 5));
        let webhook_allow_private = p.check(
            WEBHOOK_ALLOW_PRIVATE,
            one_of(
                &self.webhook_allow_private,
                &[("true", true), ("false", false)],
            ),
        );
        let webhook_timeout_secs = p.check(
            WEBHOOK_TIMEOUT_SECS,
            whole_number(&self.webhook_timeout_secs, 1, 60),
        );
        let webhook_http_hosts: Vec<String> = self
            .webhook_http_hosts
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        let log_format = p.check(
            LOG_FORMAT,
            one_of(
                &self.log_format,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            ),
        );
        let log_level = p.check(
            LOG_LEVEL,
            one_of(
                &self.log_level,
                &[
                    ("off", log::LevelFilter::Off),
                    ("error", log::LevelFilter::Error),
                    ("warn", log::LevelFilter::Warn),
                    ("info", log::LevelFilter::Info),
                    ("debug", log::LevelFilter::Debug),
                    ("trace", log::LevelFilter::Trace),
                ],
            ),
        );

        let delivery = p.absorb(delivery.validate());
        let payments = p.absorb(payments.validate());
        let backups = p.absorb(self.backups.validate());

        Some(Config {
            addr: addr?,
            data_dir: data_dir?,
            db_path: db_path?,
            workers: NonZeroUsize::new(usize::try_from(workers?).ok()?)?,
            db_pool_size: NonZeroU32::new(u32::try_from(db_pool_size?).ok()?)?,
            db_busy_timeout: Duration::from_millis(busy_timeout_ms?),
            db_synchronous: db_synchronous?,
            db_checkpoint_pages: u32::try_from(db_checkpoint_pages?).ok()?,
            max_body_bytes: max_body_bytes?,
            max_import_bytes: max_import_bytes?,
            http_timeout: Duration::from_secs(http_timeout_secs?),
            shutdown_timeout: Duration::from_secs(shutdown_secs?),
            public_url: public_url?,
            password_iterations: NonZeroU32::new(u32::try_from(password_iterations?).ok()?)?,
            idempotency_retention: Duration::from_secs(idempotency_retention_hours? * 3600),
            idempotency_lease: Duration::from_secs(idempotency_lease_secs?),
            janitor_interval: Duration::from_secs(janitor_interval_secs?),
            activity_retention: Duration::from_secs(activity_retention_days? * DAY_SECS),
            message_retention: match message_retention_days? {
                0 => None,
                days => Some(Duration::from_secs(days * DAY_SECS)),
            },
            default_sms_sender: default_sms_sender?,
            topup_minimum_minor: i64::try_from(topup_minimum_minor?).ok()?,
            billing_catalog: billing_catalog?,
            trusted_proxies: trusted_proxies?,
            api_rate: api_rate?,
            public_rate: public_rate?,
            default_country: default_country?,
            delivery: delivery?,
            payments: payments?,
            backups: backups?,
            webhooks: crate::webhooks::WebhookSettings {
                allow_private: webhook_allow_private?,
                http_hosts: webhook_http_hosts,
                timeout: Duration::from_secs(webhook_timeout_secs?),
            },
            log_format: log_format?,
            log_level: log_level?,
        })
    }
}

/// A bucket of `per_second` with bursts of `burst_factor` times as many.
/// An API key's bursts are this many times its rate (per second), whether the rate is the
/// instance's or its plan's.
pub const API_BURST_FACTOR: u32 = 2;

fn rate(per_second: u64, burst_factor: u32) -> Rate {
    Rate::with_burst_factor(u32::try_from(per_second).unwrap_or(u32::MAX), burst_factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server settings' declared defaults.
    fn defaults() -> ServerArgs {
        crate::settings::defaults()
    }

    /// Validates `server` alongside the delivery and payment settings' defaults.
    fn validate(server: ServerArgs) -> Result<Config, ConfigError> {
        Config::from_args(
            &server,
            &crate::settings::defaults(),
            &crate::settings::defaults(),
        )
    }

    #[test]
    fn defaults_validate() {
        let config = validate(defaults()).unwrap();
        assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.db_path, PathBuf::from("./crier-data/crier.db"));
        assert_eq!(config.workers.get(), 32);
        assert_eq!(config.db_synchronous, Synchronous::Full);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.log_level, log::LevelFilter::Info);
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(
            config.password_iterations.get(),
            DEFAULT_PASSWORD_ITERATIONS
        );
    }

    #[test]
    fn a_missing_billing_catalog_file_is_a_configuration_problem() {
        let server = ServerArgs {
            billing_catalog: Some("/nonexistent/catalog.json".into()),
            ..defaults()
        };
        let ConfigError(problems) = validate(server).unwrap_err();
        assert!(
            problems[0].starts_with("--billing-catalog / CRIER_BILLING_CATALOG: cannot read"),
            "{problems:?}"
        );
    }

    #[test]
    fn trusted_proxies_are_ip_addresses() {
        let with = |value: &str| ServerArgs {
            trusted_proxies: Some(value.into()),
            ..defaults()
        };
        assert_eq!(
            validate(with("127.0.0.1, ::1")).unwrap().trusted_proxies,
            vec![
                "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(validate(with("")).unwrap().trusted_proxies.is_empty());
        assert!(validate(with("nginx")).is_err());
    }

    #[test]
    fn checkpoint_pages_default_to_sqlites_and_zero_leaves_them_to_another_process() {
        let with = |pages: &str| ServerArgs {
            db_checkpoint_pages: pages.into(),
            ..defaults()
        };
        assert_eq!(validate(defaults()).unwrap().db_checkpoint_pages, 1000);
        assert_eq!(validate(with("0")).unwrap().db_checkpoint_pages, 0);
        for bad in ["-1", "1000001", "often"] {
            let ConfigError(problems) = validate(with(bad)).unwrap_err();
            assert!(
                problems[0].starts_with("--db-checkpoint-pages / CRIER_DB_CHECKPOINT_PAGES"),
                "{bad:?}: {problems:?}"
            );
        }
    }

    #[test]
    fn message_retention_is_days_and_zero_keeps_bodies_forever() {
        let with = |days: &str| ServerArgs {
            message_retention_days: days.into(),
            ..defaults()
        };
        assert_eq!(
            validate(defaults()).unwrap().message_retention,
            Some(Duration::from_secs(90 * DAY_SECS))
        );
        assert_eq!(
            validate(with("7")).unwrap().message_retention,
            Some(Duration::from_secs(7 * DAY_SECS))
        );
        assert_eq!(validate(with("0")).unwrap().message_retention, None);
        for bad in ["3651", "-1", "ninety", ""] {
            let ConfigError(problems) = validate(with(bad)).unwrap_err();
            assert!(
                problems[0].starts_with("--message-retention-days / CRIER_MESSAGE_RETENTION_DAYS"),
                "{bad:?}: {problems:?}"
            );
        }
    }

    #[test]
    fn idempotency_retention_is_never_below_a_day() {
        let server = ServerArgs {
            idempotency_retention_hours: "23".into(),
            ..defaults()
        };
        let ConfigError(problems) = validate(server).unwrap_err();
        assert!(
            problems[0].starts_with("--idempotency-retention-hours"),
            "{problems:?}"
        );
    }

    #[test]
    fn public_urls() {
        let with = |url: &str| ServerArgs {
            public_url: Some(url.into()),
            ..defaults()
        };
        assert_eq!(
            validate(with("https://crier.example.com/"))
                .unwrap()
                .public_url,
            "https://crier.example.com"
        );
        assert!(validate(with("crier.example.com")).is_err());
        assert!(validate(with("https://")).is_err());
    }

    #[test]
    fn db_path_overrides_the_data_dir_default() {
        let server = ServerArgs {
            db_path: Some("/var/lib/crier/main.db".into()),
            ..defaults()
        };
        assert_eq!(
            validate(server).unwrap().db_path,
            PathBuf::from("/var/lib/crier/main.db")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let server = ServerArgs {
            addr: "localhost".into(),
            workers: "0".into(),
            db_synchronous: "sometimes".into(),
            max_body_bytes: "12MB".into(),
            log_format: "xml".into(),
            log_level: "loud".into(),
            ..defaults()
        };
        let ConfigError(problems) = validate(server).unwrap_err();
        let settings: Vec<&str> = problems
            .iter()
            .map(|problem| problem.split(':').next().unwrap())
            .collect();
        assert_eq!(
            settings,
            vec![
                "--addr / CRIER_ADDR",
                "--workers / CRIER_WORKERS",
                "--db-synchronous / CRIER_DB_SYNCHRONOUS",
                "--max-body-bytes / CRIER_MAX_BODY_BYTES",
                "--log-format / CRIER_LOG_FORMAT",
                "--log-level / CRIER_LOG_LEVEL",
            ]
        );
        assert!(problems[1].contains("from 1 to 1024"), "{}", problems[1]);
        assert!(problems[1].contains("\"0\""), "{}", problems[1]);
    }

    #[test]
    fn empty_data_dir_is_rejected() {
        let server = ServerArgs {
            data_dir: "  ".into(),
            ..defaults()
        };
        let ConfigError(problems) = validate(server).unwrap_err();
        assert_eq!(
            problems,
            vec!["--data-dir / CRIER_DATA_DIR: must not be empty"]
        );
    }
}
