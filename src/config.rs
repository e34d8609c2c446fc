//! Configuration: raw strings from flags and `CRIER_*` variables, validated once into `Config`.
//!
//! `cli.rs` collects the raw values (clap fills in flags, then environment, then defaults); this
//! module turns them into typed values and reports every problem at once. Nothing else in the
//! crate reads the environment. Secrets are held in `Secret`, whose `Debug` prints `***`.

use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

/// A value that must never be printed: its `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself. Call only where the value is used, never to log or display it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-11-25T10:00:00.000Z INFO request method=GET status=200 …`
    Text,
    /// One JSON object per line.
    Json,
}

/// SQLite's `synchronous` level for the WAL (see ARCHITECTURE.md, "Durability").
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
    /// Largest accepted request body for JSON endpoints.
    pub max_body_bytes: u64,
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
    /// Providers per channel and how the dispatcher paces itself.
    pub delivery: crate::delivery::settings::DeliverySettings,
    /// Payment providers, their keys, and session lifetime.
    pub payments: crate::payments::settings::PaymentSettings,
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
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            public_url: "http://127.0.0.1".to_owned(),
            // Tests hash many passwords; production uses DEFAULT_PASSWORD_ITERATIONS.
            password_iterations: NonZeroU32::MIN.saturating_add(999),
            idempotency_retention: Duration::from_secs(24 * 60 * 60),
            idempotency_lease: Duration::from_secs(60),
            // Tests sweep explicitly; a background sweep in the middle would race them.
            janitor_interval: Duration::from_secs(24 * 60 * 60),
            default_sms_sender: "CRIER".to_owned(),
            topup_minimum_minor: 250,
            billing_catalog: crate::billing::catalog::Catalog::default(),
            trusted_proxies: Vec::new(),
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
            log_format: LogFormat::Text,
            log_level: log::LevelFilter::Warn,
        }
    }
}

pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const DEFAULT_PASSWORD_ITERATIONS: u32 = 600_000;

/// The settings as given: strings, before validation. Field names match the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSettings {
    pub addr: String,
    pub data_dir: String,
    pub db_path: Option<String>,
    pub workers: String,
    pub db_pool_size: String,
    pub db_busy_timeout_ms: String,
    pub db_synchronous: String,
    pub max_body_bytes: String,
    pub http_timeout_secs: String,
    pub shutdown_timeout_secs: String,
    pub public_url: Option<String>,
    pub password_iterations: String,
    pub idempotency_retention_hours: String,
    pub idempotency_lease_secs: String,
    pub janitor_interval_secs: String,
    pub default_sms_sender: String,
    pub topup_minimum_minor: String,
    pub billing_catalog: Option<String>,
    pub trusted_proxies: String,
    pub default_country: String,
    pub log_format: String,
    pub log_level: String,
    pub delivery: crate::cli::DeliveryArgs,
    pub payments: crate::cli::PaymentArgs,
}

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

impl RawSettings {
    /// Validates every setting, collecting all problems rather than stopping at the first.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let addr = take(p, "--addr / CRIER_ADDR", socket_addr(&self.addr));
        let data_dir = take(
            p,
            "--data-dir / CRIER_DATA_DIR",
            non_empty_path(&self.data_dir),
        );
        let db_path = match &self.db_path {
            Some(path) => take(p, "--db-path / CRIER_DB_PATH", non_empty_path(path)),
            None => data_dir.as_ref().map(|dir| dir.join("crier.db")),
        };
        let workers = take(
            p,
            "--workers / CRIER_WORKERS",
            whole_number(&self.workers, 1, 1024),
        );
        let db_pool_size = take(
            p,
            "--db-pool-size / CRIER_DB_POOL_SIZE",
            whole_number(&self.db_pool_size, 1, 1024),
        );
        let busy_timeout_ms = take(
            p,
            "--db-busy-timeout-ms / CRIER_DB_BUSY_TIMEOUT_MS",
            whole_number(&self.db_busy_timeout_ms, 0, 600_000),
        );
        let db_synchronous = take(
            p,
            "--db-synchronous / CRIER_DB_SYNCHRONOUS",
            one_of(
                &self.db_synchronous,
                &[("full", Synchronous::Full), ("normal", Synchronous::Normal)],
            ),
        );
        let max_body_bytes = take(
            p,
            "--max-body-bytes / CRIER_MAX_BODY_BYTES",
            whole_number(&self.max_body_bytes, 1024, 1 << 30),
        );
        let http_timeout_secs = take(
            p,
            "--http-timeout-secs / CRIER_HTTP_TIMEOUT_SECS",
            whole_number(&self.http_timeout_secs, 1, 3600),
        );
        let shutdown_secs = take(
            p,
            "--shutdown-timeout-secs / CRIER_SHUTDOWN_TIMEOUT_SECS",
            whole_number(&self.shutdown_timeout_secs, 0, 3600),
        );
        let public_url = match &self.public_url {
            Some(url) => take(p, "--public-url / CRIER_PUBLIC_URL", public_url(url)),
            None => addr.map(|addr| format!("http://{addr}")),
        };
        let password_iterations = take(
            p,
            "--password-iterations / CRIER_PASSWORD_ITERATIONS",
            whole_number(&self.password_iterations, 100_000, 10_000_000),
        );
        let idempotency_retention_hours = take(
            p,
            "--idempotency-retention-hours / CRIER_IDEMPOTENCY_RETENTION_HOURS",
            whole_number(&self.idempotency_retention_hours, 24, 24 * 365),
        );
        let idempotency_lease_secs = take(
            p,
            "--idempotency-lease-secs / CRIER_IDEMPOTENCY_LEASE_SECS",
            whole_number(&self.idempotency_lease_secs, 1, 3600),
        );
        let janitor_interval_secs = take(
            p,
            "--janitor-interval-secs / CRIER_JANITOR_INTERVAL_SECS",
            whole_number(&self.janitor_interval_secs, 1, 24 * 60 * 60),
        );
        let default_sms_sender = take(
            p,
            "--default-sms-sender / CRIER_DEFAULT_SMS_SENDER",
            crate::billing::sender::normalize_sender_id(&self.default_sms_sender)
                .map_err(|why| format!("{why}, got {:?}", self.default_sms_sender)),
        );
        let topup_minimum_minor = take(
            p,
            "--topup-minimum-minor / CRIER_TOPUP_MINIMUM_MINOR",
            whole_number(&self.topup_minimum_minor, 1, 1_000_000_000),
        );
        let billing_catalog = match &self.billing_catalog {
            Some(path) => take(
                p,
                "--billing-catalog / CRIER_BILLING_CATALOG",
                crate::billing::catalog::Catalog::load(std::path::Path::new(path)),
            ),
            None => Some(crate::billing::catalog::Catalog::default()),
        };
        let trusted_proxies = take(
            p,
            "--trusted-proxies / CRIER_TRUSTED_PROXIES",
            self.trusted_proxies
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
        let default_country = take(p, "--default-country / CRIER_DEFAULT_COUNTRY", {
            let code = self.default_country.trim().to_ascii_uppercase();
            match code.parse::<phonenumber::country::Id>() {
                Ok(_) => Ok(code),
                Err(_) => Err(format!(
                    "must be an ISO 3166 two-letter country code such as CM, got {:?}",
                    self.default_country
                )),
            }
        });
        let log_format = take(
            p,
            "--log-format / CRIER_LOG_FORMAT",
            one_of(
                &self.log_format,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            ),
        );
        let log_level = take(
            p,
            "--log-level / CRIER_LOG_LEVEL",
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

        let delivery = self.delivery.validate(p);
        let payments = self.payments.validate(p);

        let build = || {
            Some(Config {
                addr: addr?,
                data_dir: data_dir?,
                db_path: db_path?,
                workers: NonZeroUsize::new(usize::try_from(workers?).ok()?)?,
                db_pool_size: NonZeroU32::new(u32::try_from(db_pool_size?).ok()?)?,
                db_busy_timeout: Duration::from_millis(busy_timeout_ms?),
                db_synchronous: db_synchronous?,
                max_body_bytes: max_body_bytes?,
                http_timeout: Duration::from_secs(http_timeout_secs?),
                shutdown_timeout: Duration::from_secs(shutdown_secs?),
                public_url: public_url?,
                password_iterations: NonZeroU32::new(u32::try_from(password_iterations?).ok()?)?,
                idempotency_retention: Duration::from_secs(idempotency_retention_hours? * 3600),
                idempotency_lease: Duration::from_secs(idempotency_lease_secs?),
                janitor_interval: Duration::from_secs(janitor_interval_secs?),
                default_sms_sender: default_sms_sender?,
                topup_minimum_minor: i64::try_from(topup_minimum_minor?).ok()?,
                billing_catalog: billing_catalog?,
                trusted_proxies: trusted_proxies?,
                default_country: default_country?,
                delivery: delivery?,
                payments: payments?,
                log_format: log_format?,
                log_level: log_level?,
            })
        };
        match build() {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError(problems)),
        }
    }
}

/// Keeps a valid value, or records `"{setting}: {reason}"` and gives `None`.
pub(crate) fn take<T>(
    problems: &mut Vec<String>,
    setting: &str,
    result: Result<T, String>,
) -> Option<T> {
    result
        .map_err(|reason| problems.push(format!("{setting}: {reason}")))
        .ok()
}

/// An http(s) URL without a trailing slash (one is removed).
pub(crate) fn public_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(url.to_owned()),
        _ => Err(format!(
            "must be an http:// or https:// URL such as https://crier.example.com, got {text:?}"
        )),
    }
}

fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("must be IP:PORT such as 127.0.0.1:8080 or 0.0.0.0:8080, got {text:?}")
    })
}

/// One of a fixed set of lower-case words (case-insensitive), with a sentence listing them.
fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    let wanted = text.trim().to_ascii_lowercase();
    choices
        .iter()
        .find(|(word, _)| *word == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
            format!("must be one of {}; got {text:?}", words.join(", "))
        })
}

/// A whole number within `min..=max`, with a sentence saying so otherwise.
pub(crate) fn whole_number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "must be a whole number from {min} to {max}, got {text:?}"
        )),
    }
}

fn non_empty_path(text: &str) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(PathBuf::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> RawSettings {
        RawSettings {
            addr: "127.0.0.1:8080".into(),
            data_dir: "./crier-data".into(),
            db_path: None,
            workers: "8".into(),
            db_pool_size: "16".into(),
            db_busy_timeout_ms: "5000".into(),
            db_synchronous: "full".into(),
            max_body_bytes: "1048576".into(),
            http_timeout_secs: "30".into(),
            shutdown_timeout_secs: "10".into(),
            public_url: None,
            password_iterations: "600000".into(),
            idempotency_retention_hours: "24".into(),
            idempotency_lease_secs: "60".into(),
            janitor_interval_secs: "60".into(),
            default_sms_sender: "CRIER".into(),
            topup_minimum_minor: "250".into(),
            billing_catalog: None,
            trusted_proxies: String::new(),
            default_country: "CM".into(),
            log_format: "text".into(),
            log_level: "info".into(),
            delivery: crate::cli::DeliveryArgs {
                sms_providers: "log".into(),
                email_providers: "log".into(),
                email_from: "crier <crier@localhost>".into(),
                provider_timeout_secs: "15".into(),
                smtp_host: None,
                smtp_port: "587".into(),
                smtp_security: "starttls".into(),
                smtp_username: None,
                smtp_password: None,
                sms_webhook_url: None,
                sms_webhook_secret: None,
                twilio_base_url: "https://api.twilio.com".into(),
                twilio_account_sid: None,
                twilio_auth_token: None,
                infobip_base_url: None,
                infobip_api_key: None,
                avlytext_base_url: "https://api.avlytext.com".into(),
                avlytext_api_key: None,
                mboasms_base_url: "https://mboadeals.net".into(),
                mboasms_user_id: None,
                mboasms_password: None,
                receipt_token: None,
                dispatch_workers: "4".into(),
                dispatch_batch: "50".into(),
                dispatch_lease_secs: "120".into(),
                dispatch_poll_ms: "500".into(),
                max_delivery_cycles: "5".into(),
                retry_base_secs: "30".into(),
                retry_max_secs: "3600".into(),
            },
            payments: crate::cli::PaymentArgs {
                payment_providers: "flutterwave,stripe".into(),
                flutterwave_base_url: "https://api.flutterwave.com".into(),
                flutterwave_secret_key: None,
                flutterwave_webhook_hash: None,
                stripe_base_url: "https://api.stripe.com".into(),
                stripe_secret_key: None,
                stripe_webhook_secret: None,
                stripe_webhook_tolerance_secs: "300".into(),
                payment_session_minutes: "30".into(),
                payment_return_url: None,
                payment_timeout_secs: "15".into(),
            },
        }
    }

    #[test]
    fn defaults_validate() {
        let config = defaults().validate().unwrap();
        assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.db_path, PathBuf::from("./crier-data/crier.db"));
        assert_eq!(config.workers.get(), 8);
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
        let raw = RawSettings {
            billing_catalog: Some("/nonexistent/catalog.json".into()),
            ..defaults()
        };
        let ConfigError(problems) = raw.validate().unwrap_err();
        assert!(
            problems[0].starts_with("--billing-catalog / CRIER_BILLING_CATALOG: cannot read"),
            "{problems:?}"
        );
    }

    #[test]
    fn trusted_proxies_are_ip_addresses() {
        let with = |value: &str| RawSettings {
            trusted_proxies: value.into(),
            ..defaults()
        };
        assert_eq!(
            with("127.0.0.1, ::1").validate().unwrap().trusted_proxies,
            vec![
                "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(with("").validate().unwrap().trusted_proxies.is_empty());
        assert!(with("nginx").validate().is_err());
    }

    #[test]
    fn idempotency_retention_is_never_below_a_day() {
        let raw = RawSettings {
            idempotency_retention_hours: "23".into(),
            ..defaults()
        };
        let ConfigError(problems) = raw.validate().unwrap_err();
        assert!(
            problems[0].starts_with("--idempotency-retention-hours"),
            "{problems:?}"
        );
    }

    #[test]
    fn public_urls() {
        let with = |url: &str| RawSettings {
            public_url: Some(url.into()),
            ..defaults()
        };
        assert_eq!(
            with("https://crier.example.com/")
                .validate()
                .unwrap()
                .public_url,
            "https://crier.example.com"
        );
        assert!(with("crier.example.com").validate().is_err());
        assert!(with("https://").validate().is_err());
    }

    #[test]
    fn db_path_overrides_the_data_dir_default() {
        let raw = RawSettings {
            db_path: Some("/var/lib/crier/main.db".into()),
            ..defaults()
        };
        assert_eq!(
            raw.validate().unwrap().db_path,
            PathBuf::from("/var/lib/crier/main.db")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let raw = RawSettings {
            addr: "localhost".into(),
            workers: "0".into(),
            db_synchronous: "sometimes".into(),
            max_body_bytes: "12MB".into(),
            log_format: "xml".into(),
            log_level: "loud".into(),
            ..defaults()
        };
        let ConfigError(problems) = raw.validate().unwrap_err();
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
        let raw = RawSettings {
            data_dir: "  ".into(),
            ..defaults()
        };
        let ConfigError(problems) = raw.validate().unwrap_err();
        assert_eq!(
            problems,
            vec!["--data-dir / CRIER_DATA_DIR: must not be empty"]
        );
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("whsec_live_value");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(secret.expose(), "whsec_live_value");
    }
}
