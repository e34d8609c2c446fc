//! `App`: the shared, read-only state every handler and background thread receives.

use std::sync::Arc;

use crate::auth::buckets::Buckets;
use crate::auth::rate_limit::LoginLimiter;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::delivery::{OutboxSignal, Providers};
use crate::error::StartupError;
use crate::ids::{Ids, RandomSource};
use crate::metrics::Metrics;
use crate::secrets::{SecretBox, ServerKey};

/// The name of the key in `server_keys` that signs unsubscribe tokens.
const UNSUBSCRIBE_KEY: &str = "unsubscribe";

/// The file in the data directory holding `App::secret_box`'s key.
pub const SECRETS_KEY_FILE: &str = "secrets.key";

pub struct App {
    pub config: Config,
    pub db: Db,
    /// The only source of "now" (see `clock`).
    pub clock: Arc<dyn Clock>,
    /// The only source of ids and random bytes (see `ids`).
    pub ids: Ids,
    /// Failed-login counters (decided in memory, kept in `login_failures`; see `auth::rate_limit`).
    pub login_limiter: LoginLimiter,
    /// Each API key's request bucket (`config.api_rate`; see `auth::buckets`).
    pub api_buckets: Buckets,
    /// Each client IP's bucket for the routes open without credentials (`config.public_rate`).
    pub public_buckets: Buckets,
    /// Request counts and latencies for `GET /metrics`.
    pub metrics: Metrics,
    /// The delivery providers of each channel, built from `config.delivery`.
    pub providers: Providers,
    /// Rung when a message becomes due, to wake the dispatchers.
    pub outbox: OutboxSignal,
    /// The payment providers, in the configured order.
    pub payments: crate::payments::Payments,
    /// Rung when a payment webhook event is journalled, to wake the payments worker.
    pub webhook_journal: OutboxSignal,
    /// Signs unsubscribe tokens and keys the hashes of erased addresses (made at first start).
    pub unsubscribe_key: ServerKey,
    /// Seals the secrets crier reads back (workspaces' provider credentials, DKIM keys) with the
    /// key in `SECRETS_KEY_FILE`, made at first start (see `secrets::SecretBox`).
    pub secret_box: SecretBox,
    /// Workspaces' sending domains' DKIM signers, opened from `secret_box` once each.
    pub domain_signers: crate::delivery::domain_keys::DomainSigners,
    /// Rung when a contact import is queued, to wake the import runner.
    pub imports: OutboxSignal,
    /// Rung when a campaign is launched, scheduled or cancelled, to wake the campaign runner.
    pub campaigns: OutboxSignal,
    /// Rung when a webhook delivery is queued by a route (a test event, a retry), to wake the
    /// webhook runner (which polls for the events triggers record).
    pub webhooks: OutboxSignal,
    /// Where `App::write_job_then` hands its closures: the writer's job thread, once the server
    /// has started it (`db::start_jobs`).
    pub write_jobs: crate::db::Jobs<App>,
}

impl App {
    /// The shared state over an opened database, with fresh request buckets and the login
    /// counters the database remembers. Fails when a
    /// configured provider cannot be set up.
    pub fn new(
        config: Config,
        db: Db,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
    ) -> Result<App, StartupError> {
        let providers = Providers::new(&config.delivery)
            .map_err(|why| StartupError(format!("cannot set up delivery: {why}")))?;
        let payments = crate::payments::Payments::new(&config.payments);
        let ids = Ids::new(Arc::clone(&clock), random);
        let now = crate::clock::format_timestamp(clock.now());
        let unsubscribe_key = db
            .write(|conn| ServerKey::load_or_create(conn, &ids, UNSUBSCRIBE_KEY, &now))
            .map_err(|why| StartupError(format!("cannot read the server key: {why}")))?;
        let key_file = config.data_dir.join(SECRETS_KEY_FILE);
        let secret_box = SecretBox::load_or_create(&key_file, &ids).map_err(|why| {
            StartupError(format!(
                "cannot read the key in {}: {why}",
                key_file.display()
            ))
        })?;
        let login_limiter = LoginLimiter::load(&db, clock.now())
            .map_err(|why| StartupError(format!("cannot read the login counters: {why}")))?;
        let api_buckets = Buckets::new(config.api_rate);
        let public_buckets = Buckets::new(config.public_rate);
        Ok(App {
            ids,
            config,
            db,
            clock,
            login_limiter,
            api_buckets,
            public_buckets,
            metrics: Metrics::new(),
            providers,
            outbox: OutboxSignal::default(),
            payments,
            webhook_journal: OutboxSignal::default(),
            unsubscribe_key,
            secret_box,
            domain_signers: Default::default(),
            imports: OutboxSignal::default(),
            campaigns: OutboxSignal::default(),
            webhooks: OutboxSignal::default(),
            write_jobs: crate::db::Jobs::new(),
        })
    }

    /// `Db::write_job_then` on this app's database: `deliver` gets the outcome (on the job
    /// thread, after the commit) instead of this thread waiting for it.
    pub fn write_job_then<T: Send + 'static>(
        &self,
        body: impl FnOnce(&App, &rusqlite::Connection) -> Result<T, crate::error::AppError>
        + Send
        + 'static,
        deliver: impl FnOnce(&App, Result<T, crate::error::AppError>) + Send + 'static,
    ) {
        self.db
            .write_job_then(&self.write_jobs, self, body, deliver);
    }
}

#[cfg(test)]
impl App {
    /// For unit tests of code that takes the whole app: an `App` on a fresh database under `dir`
    /// (`Config::for_tests`), its clock manual and at `now` (returned to move it), its ids from
    /// `SeededRandom::new(seed)`.
    pub fn for_tests(
        dir: &std::path::Path,
        now: crate::clock::Timestamp,
        seed: u64,
    ) -> (App, Arc<crate::clock::ManualClock>) {
        let config = Config::for_tests(dir);
        let db = Db::open(&crate::db::DbSettings::from_config(&config)).expect("a test database");
        let clock = Arc::new(crate::clock::ManualClock::new(now));
        let random = Arc::new(crate::ids::SeededRandom::new(seed));
        let app = App::new(config, db, clock.clone(), random).expect("a test app");
        (app, clock)
    }
}
