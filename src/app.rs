//! `App`: the shared, read-only state every handler and background thread receives.

use std::sync::Arc;

use crate::auth::rate_limit::LoginLimiter;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::ids::Ids;
use crate::metrics::Metrics;

pub struct App {
    pub config: Config,
    pub db: Db,
    /// The only source of "now" (see `clock`).
    pub clock: Arc<dyn Clock>,
    /// The only source of ids and random bytes (see `ids`).
    pub ids: Ids,
    /// Failed-login counters (in memory; see `auth::rate_limit`).
    pub login_limiter: LoginLimiter,
    /// Request counts and latencies for `GET /metrics`.
    pub metrics: Metrics,
}
