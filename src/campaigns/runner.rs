//! The campaign runner: one background thread that moves every workspace's campaigns along —
//! starts scheduled ones when their time comes, fans out running ones a chunk at a time,
//! sweeps cancelled ones, and finishes those whose messages are all settled. Started by
//! `server.rs`, stopped on shutdown between two steps; every step is one write transaction, so
//! a stop or a crash resumes where the last committed step left off.
//!
//! Running campaigns take turns: each gets one chunk per round, so a small campaign launched
//! after a large one does not wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::app::App;
use crate::billing::Charging;
use crate::campaigns::fanout::{self, Step};
use crate::campaigns::launch::{self, Launcher, Links};
use crate::campaigns::{CampaignStatus, store};
use crate::clock::{Timestamp, format_timestamp};
use crate::error::{AppError, StartupError};
use crate::ids::CampaignId;
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;

/// Contacts per fan-out part: each part is one savepoint of the writer, and between two parts
/// the sends and imports waiting for the writer go first, so none waits longer than one part
/// (docs/rules/campaigns.md, "Fan-out").
pub const FANOUT_PART: usize = 500;
/// Parts per runner round for one campaign: running campaigns take turns every
/// `FANOUT_PART * FANOUT_PARTS_PER_ROUND` contacts.
pub const FANOUT_PARTS_PER_ROUND: usize = 2;
/// Messages per cancel batch.
pub const CANCEL_BATCH: usize = 5_000;
/// How often the runner looks for work when nothing wakes it: a running campaign finishes
/// when its last message settles, which nothing signals.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How long the runner waits after a failed round.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// The running campaign thread; `stop` (or drop) ends it.
pub struct CampaignRunner {
    app: Arc<App>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn start(app: Arc<App>) -> Result<CampaignRunner, StartupError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (thread_app, thread_stop) = (Arc::clone(&app), Arc::clone(&stop));
    let thread = thread::Builder::new()
        .name("campaigns".to_owned())
        .spawn(move || run(&thread_app, &thread_stop))
        .map_err(|err| StartupError(format!("cannot start the campaigns thread: {err}")))?;
    Ok(CampaignRunner {
        app,
        stop,
        thread: Some(thread),
    })
}

impl CampaignRunner {
    /// Stops after the step in hand.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.app.campaigns.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CampaignRunner {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(app: &App, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let seen = app.campaigns.generation();
        match round(app, stop) {
            Ok(Round { worked: true, .. }) => {}
            Ok(Round { failed: false, .. }) => app.campaigns.wait(seen, IDLE_POLL),
            Ok(Round { failed: true, .. }) => app.campaigns.wait(seen, RETRY_AFTER),
            Err(err) => {
                log::warn!(error:% = err; "campaign round failed; retrying");
                app.campaigns.wait(seen, RETRY_AFTER);
            }
        }
    }
}

/// What a round did: whether any campaign progressed, and whether any campaign's step failed.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    worked: bool,
    failed: bool,
}

/// One step for every campaign with work. A campaign whose step fails (or panics) is logged
/// and tried again in the next round; the others take their steps all the same, so one
/// campaign can never hold up another's, nor another workspace's.
fn round(app: &App, stop: &AtomicBool) -> Result<Round, AppError> {
    let now = format_timestamp(app.clock.now());
    let ids = app.db.read(|conn| store::campaigns_to_work(conn, &now))?;
    let mut round = Round::default();
    for id in ids {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(app, &id)))
            .unwrap_or_else(|_| Err(AppError::internal("a campaign step panicked")));
        match outcome {
            Ok(Step::Progressed) => round.worked = true,
            Ok(_) => {}
            Err(err) => {
                log::warn!(campaign:% = id, error:% = err; "campaign step failed; retrying");
                round.failed = true;
            }
        }
    }
    Ok(round)
}

pub(crate) fn links(app: &App) -> Links<'_> {
    Links {
        key: &app.unsubscribe_key,
        public_url: &app.config.public_url,
        delivery: &app.config.delivery,
    }
}

/// One step of the campaign `id`, whatever it needs.
fn step(app: &App, id: &CampaignId) -> Result<Step, AppError> {
    let Some(campaign) = app.db.read(|conn| store::find_any_campaign(conn, id))? else {
        return Ok(Step::Idle);
    };
    let now = app.clock.now();
    match campaign.status {
        CampaignStatus::Scheduled => start_scheduled(app, &campaign),
        CampaignStatus::Running if campaign.progress.fanout_done_at.is_none() => {
            let started = std::time::Instant::now();
            let step = fan_out(app, &campaign, now)?;
            log::debug!(
                campaign:% = id, elapsed_ms = started.elapsed().as_millis();
                "fan-out parts written"
            );
            app.outbox.notify();
            Ok(step)
        }
        CampaignStatus::Running => {
            if app
                .db
                .read(|conn| fanout::ready_to_finish(conn, &campaign))?
            {
                app.db.write(|conn| fanout::finish(conn, id, now))
            } else {
                Ok(Step::Idle)
            }
        }
        CampaignStatus::Cancelled => app
            .db
            .write(|conn| fanout::sweep_cancelled(conn, &app.ids, id, CANCEL_BATCH, now)),
        _ => Ok(Step::Idle),
    }
}

/// One round of a running campaign's fan-out: up to `FANOUT_PARTS_PER_ROUND` parts, each
/// read and rendered on a read connection by a second thread while the writer writes the part
/// before it (`fanout::Preparer`, `fanout::write_part`). A part the writer finds out of date
/// (the cursor moved, or one of its contacts changed since it was read) is prepared again
/// inside the write transaction, so the parts after it are too.
fn fan_out(app: &App, campaign: &store::CampaignRow, now: Timestamp) -> Result<Step, AppError> {
    let mut step = Step::Idle;
    thread::scope(|threads| {
        let (parts, prepared) = mpsc::sync_channel(1);
        let preparer = thread::Builder::new()
            .name("campaign-parts".to_owned())
            .spawn_scoped(threads, move || {
                let preparer = app
                    .db
                    .read(|conn| fanout::Preparer::new(conn, campaign, links(app)))?;
                let mut after = campaign.progress.fanout_cursor;
                for _ in 0..FANOUT_PARTS_PER_ROUND {
                    // Each part in a read transaction of its own: as the database is when it starts.
                    let part = app
                        .db
                        .read(|conn| preparer.part(conn, &app.ids, after, FANOUT_PART))?;
                    let (until, last) = (part.until(), part.is_last());
                    if parts.send(part).is_err() || last {
                        break;
                    }
                    after = until;
                }
                Ok(())
            })
            .map_err(|err| AppError::internal(format!("cannot start a fan-out preparer: {err}")))?;
        let written = app.db.write_parts(prepared.iter(), |conn, part| {
            let written = fanout::write_part(
                conn,
                (&app.ids, &app.config.billing_catalog),
                links(app),
                part,
                now,
            )?;
            if written == Step::Progressed {
                step = Step::Progressed;
            }
            Ok(written == Step::Progressed)
        });
        // The writer may stop early: the preparer's next send then fails and it ends.
        drop(prepared);
        let read = preparer
            .join()
            .unwrap_or_else(|_| Err(AppError::internal("a fan-out preparer panicked")));
        written.and(read)
    })?;
    Ok(step)
}

/// Starts a scheduled campaign whose time has come, with the same estimate, checks and
/// reservation as a launch now; a campaign that cannot start (the wallet cannot pay, no
/// recipient, content that no longer checks) fails with that reason and nothing charged.
fn start_scheduled(app: &App, campaign: &store::CampaignRow) -> Result<Step, AppError> {
    let scope = WorkspaceScope::trusted(&campaign.workspace_id);
    let mode = campaign.mode;
    let now = app.clock.now();
    let estimate = launch::estimate(&app.db, links(app), &scope, campaign, now);
    let launcher = Launcher {
        api_key_id: campaign.progress.launched_by_key.as_ref(),
        charging: match mode {
            Mode::Live => Charging::Live,
            Mode::Test => Charging::Test,
        },
    };
    let fail = |why: &AppError| {
        app.db.write(|conn| {
            launch::fail_scheduled(conn, &scope, mode, &campaign.id, why, now)?;
            Ok(false)
        })
    };
    let started = match estimate {
        Err(why) if retryable(&why) => return Err(why),
        Err(why) => fail(&why)?,
        Ok(estimate) => {
            let launched = app.db.write(|conn| {
                launch::launch(
                    conn,
                    &app.ids,
                    &app.config.billing_catalog,
                    (&scope, mode),
                    &campaign.id,
                    CampaignStatus::Scheduled,
                    (launcher, &app.config.default_sms_sender),
                    &estimate,
                    now,
                )
            });
            match launched {
                Ok(_) => true,
                Err(why) if retryable(&why) => return Err(why),
                Err(why) => fail(&why)?,
            }
        }
    };
    if started {
        app.campaigns.notify();
    }
    Ok(Step::Progressed)
}

/// Whether a scheduled start that failed so should be tried again rather than fail the
/// campaign: crier's own trouble, not the campaign's.
fn retryable(why: &AppError) -> bool {
    matches!(why, AppError::Internal(_) | AppError::Unavailable { .. })
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Test fixtures for the campaign runner's unit tests: a workspace with contacts, and campaigns
    //! launched in it, in-process (no HTTP, no runner thread: the tests take the runner's steps).

    use chrono::{DateTime, Utc};

    use crate::app::App;
    use crate::billing::Charging;
    use crate::campaigns::CampaignStatus;
    use crate::campaigns::launch::{self, Launcher};
    use crate::campaigns::store::CampaignRow;
    use crate::campaigns::{Audience, NewCampaign, create_campaign};
    use crate::contacts::{Editor, NewContact, UnsubscribeVia, create_contact};
    use crate::ids::ContactId;
    use crate::scope::WorkspaceScope;
    use crate::users::{NewUser, create_user};
    use crate::vocabulary::Mode;
    use crate::workspaces::create_workspace;

    /// A test-mode workspace and its contacts, in the order given (each named once, with a phone).
    pub struct Workspace {
        pub scope: WorkspaceScope,
        pub mode: Mode,
        pub contacts: Vec<ContactId>,
    }

    pub fn workspace_with_contacts(app: &App, names: &[&str], now: DateTime<Utc>) -> Workspace {
        let (scope, mode) = app
            .db
            .write(|conn| {
                let user = NewUser {
                    email: "o@x.io".into(),
                    name: "O".into(),
                    password_hash: "x".into(),
                };
                let user = create_user(conn, &app.ids, user, false, now)?;
                let workspace = create_workspace(conn, &app.ids, "Acme", &user.id, "XAF", now)?;
                Ok((WorkspaceScope::trusted(&workspace.id), Mode::Test))
            })
            .unwrap();
        let editor = Editor {
            scope: &scope,
            mode,
            via: UnsubscribeVia::Api,
        };
        let contacts = names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let contact = NewContact {
                    name: Some((*name).to_owned()),
                    first_name: Some((*name).to_owned()),
                    phone: Some(format!("+23767700000{n}")),
                    ..NewContact::default()
                };
                app.db
                    .write(|conn| {
                        let key = &app.unsubscribe_key;
                        create_contact(conn, &app.ids, key, editor, contact, "CM", now)
                    })
                    .unwrap()
                    .id
            })
            .collect();
        Workspace {
            scope,
            mode,
            contacts,
        }
    }

    /// An SMS campaign of `text` to all the workspace's contacts, launched (running, its fan-out
    /// not started).
    pub fn launched(
        app: &App,
        workspace: &Workspace,
        text: &str,
        now: DateTime<Utc>,
    ) -> CampaignRow {
        let (scope, mode) = (&workspace.scope, workspace.mode);
        let draft = NewCampaign {
            name: Some("Sale".into()),
            channel: Some("sms".into()),
            text: Some(text.into()),
            audience: Some(Audience {
                all: true,
                ..Audience::default()
            }),
            ..NewCampaign::default()
        };
        let draft = app
            .db
            .write(|conn| create_campaign(conn, &app.ids, scope, mode, draft, now))
            .unwrap();
        let links = super::links(app);
        let estimate = launch::estimate(&app.db, links, scope, &draft, now).unwrap();
        let launcher = Launcher {
            api_key_id: None,
            charging: Charging::Test,
        };
        app.db
            .write(|conn| {
                launch::launch(
                    conn,
                    &app.ids,
                    &app.config.billing_catalog,
                    (scope, mode),
                    &draft.id,
                    CampaignStatus::Draft,
                    (launcher, "CRIER"),
                    &estimate,
                    now,
                )
            })
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::fixtures;
    use super::*;

    fn messages_of(app: &App, campaign: &CampaignId) -> i64 {
        app.db
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM messages WHERE campaign_id = ?1",
                    [campaign],
                    |row| row.get(0),
                )?)
            })
            .unwrap()
    }

    /// A campaign whose step fails every time (here its stored template no longer compiles)
    /// is logged and retried; every other campaign — of its workspace or another — still takes
    /// its steps in the same round.
    #[test]
    fn a_campaign_that_keeps_failing_holds_up_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let (app, _clock) = App::for_tests(dir.path(), now, 11);
        let workspace = fixtures::workspace_with_contacts(&app, &["Ada", "Bob"], now);
        let broken = fixtures::launched(&app, &workspace, "Hi {{ contact.first_name }}", now);
        let healthy = fixtures::launched(&app, &workspace, "Sale {{ contact.first_name }}", now);
        app.db
            .write(|conn| {
                conn.execute(
                    "UPDATE campaigns SET text = '{{ contact.' WHERE id = ?1",
                    [&broken.id],
                )?;
                Ok(())
            })
            .unwrap();
        let stop = AtomicBool::new(false);
        let first = round(&app, &stop).unwrap();
        assert!(first.failed && first.worked, "{first:?}");
        assert_eq!(messages_of(&app, &healthy.id), 2);
        assert_eq!(messages_of(&app, &broken.id), 0);
        // It goes on failing, alone, round after round; the healthy one's fan-out is done
        // (it completes once its messages are delivered: no dispatcher runs here).
        for _ in 0..3 {
            assert!(round(&app, &stop).unwrap().failed);
        }
        let healthy = app
            .db
            .read(|conn| store::find_any_campaign(conn, &healthy.id))
            .unwrap()
            .unwrap();
        assert!(healthy.progress.fanout_done_at.is_some(), "{healthy:?}");
        assert_eq!(healthy.progress.messages_created, 2);
    }
}
