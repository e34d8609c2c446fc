//! Assembles a running crier: database, shared state, HTTP workers, dispatchers and the scheduler, the payments worker, the webhook runner, the janitor, the backup runner. Used by `crier serve` and by
//! the integration tests, so both run exactly the same start-up path.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::app::App;
use crate::backups::runner::{self as backup_runner, BackupRunner};
use crate::campaigns::runner::{self as campaign_runner, CampaignRunner};
use crate::clock::Clock;
use crate::config::Config;
use crate::contacts::imports::runner::{self as import_runner, ImportRunner};
use crate::db::{Db, DbSettings};
use crate::delivery::dispatcher::{self, Delivery};
use crate::error::StartupError;
use crate::ids::RandomSource;
use crate::janitor::{self, Janitor};
use crate::payments::worker::{self as payments_worker, PaymentsWorker};
use crate::web::{self, HttpServer, ShutdownOutcome, router::Router};
use crate::webhooks::runner::{self as webhook_runner, WebhookRunner};

/// What `start` needs besides the configuration: the sources of time and randomness, and the
/// route table (tests may add routes).
pub struct Runtime {
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub router: Router,
}

/// A started server. `shutdown` (or drop) stops it.
pub struct RunningServer {
    pub app: Arc<App>,
    http: HttpServer,
    janitor: Janitor,
    delivery: Delivery,
    payments: PaymentsWorker,
    imports: ImportRunner,
    campaigns: CampaignRunner,
    webhooks: WebhookRunner,
    backups: BackupRunner,
    writer: crate::db::JobThread,
    /// `None` when another process checkpoints (`--db-checkpoint-pages 0`).
    checkpointer: Option<crate::db::Checkpointer>,
    /// Held while the server runs; the last field, so dropped after every runner has stopped.
    _lock: crate::db::files::DatabaseLock,
}

/// Opens (creating and migrating) the database and starts serving HTTP on `config.addr`.
pub fn start(config: Config, runtime: Runtime) -> Result<RunningServer, StartupError> {
    // First: a second server on the same data directory stops here, having touched nothing.
    let lock = crate::db::lock(&DbSettings::from_config(&config))?;
    // Then the port: a server that cannot listen stops before it creates or migrates anything.
    let listener = web::bind(config.addr)?;
    let db = Db::open(&DbSettings::from_config(&config))?;
    // Only the writer commits, so only its `wal_autocheckpoint` counts; the background
    // checkpointer copies meanwhile (docs/design/storage.md, "Checkpoints").
    db.set_checkpoint_pages(config.db_checkpoint_pages)
        .map_err(|err| StartupError(format!("setting wal_autocheckpoint: {err}")))?;
    // Copies the WAL back meanwhile, so the writer's own checkpoints find little to copy; not
    // when another process (Litestream) checkpoints.
    let checkpointer = (config.db_checkpoint_pages > 0)
        .then(|| db.start_checkpointer())
        .transpose()?;
    let app = Arc::new(App::new(config, db, runtime.clock, runtime.random)?);
    let writer = crate::db::start_jobs(Arc::clone(&app), |app| (&app.db, &app.write_jobs))?;
    let delivery = dispatcher::start(Arc::clone(&app))?;
    // Before HTTP: events journalled before a restart are applied without waiting for new ones.
    let payments = payments_worker::start(Arc::clone(&app))?;
    // Before HTTP too: an import interrupted by a crash or a stop resumes at once.
    let imports = import_runner::start(Arc::clone(&app))?;
    // Before HTTP too: a fan-out cut by a crash or a stop resumes at once.
    let campaigns = campaign_runner::start(Arc::clone(&app))?;
    // Before HTTP too: events recorded before a restart are delivered without waiting.
    let webhooks = webhook_runner::start(Arc::clone(&app))?;
    let http = web::start(Arc::clone(&app), runtime.router, listener)?;
    let janitor = janitor::start(Arc::clone(&app))?;
    // Last: the first backup (taken at start when none is recent) copies a database that
    // every runner has already picked up.
    let backups = backup_runner::start(Arc::clone(&app))?;
    // The phone-number metadata loads on first use (~120 ms of CPU in a release build); load
    // it now rather than inside the first send. Here, after HTTP has started, so it does not
    // delay readiness (a send that comes meanwhile waits for the load, as it would have), and
    // on this thread rather than one of its own: its ~3 MB go to the main thread's malloc
    // arena, into the holes start-up left there, and the ~0.8 MB freed while parsing stay
    // there for later start-up work instead of in an arena of their own that no thread uses
    // again (~1 MB less idle RSS, docs/performance-log.md).
    crate::recipients::warm_up();
    Ok(RunningServer {
        app,
        http,
        janitor,
        delivery,
        payments,
        imports,
        campaigns,
        webhooks,
        backups,
        writer,
        checkpointer,
        _lock: lock,
    })
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.http.addr()
    }

    /// Graceful stop: no new requests, in-flight ones finish (bounded by the configured timeout).
    pub fn shutdown(mut self) -> ShutdownOutcome {
        let outcome = self.http.shutdown();
        // After HTTP: no new sends arrive while the dispatchers hand their batches back.
        self.delivery.stop();
        // Journalled events not applied yet stay pending for the next start.
        self.payments.stop();
        // Between two chunks: the job stays running and resumes at the next start.
        self.imports.stop();
        // Between two steps: a fan-out resumes from its cursor at the next start.
        self.campaigns.stop();
        // After the runners whose changes record events: the round in hand finishes; claimed
        // deliveries not sent are sent again after their lease.
        self.webhooks.stop();
        self.janitor.stop();
        // A backup in progress finishes (or removes its partial copy) first.
        self.backups.stop();
        // Last: every runner's jobs have been answered.
        self.writer.stop();
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.stop();
        }
        outcome
    }
}
