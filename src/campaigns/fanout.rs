//! A running campaign's course (docs/rules/campaigns.md, "Fan-out", "Cancel", "Finish"): its
//! messages written chunk by chunk from a durable cursor, a cancel's sweep, and the finish.
//!
//! The fan-out goes part by part. `Preparer::part` reads the next contacts of the audience fixed
//! at launch (rowid order, up to the newest contact at launch) and renders each eligible one's
//! message, on a read connection; `write_part` then, in one write transaction of the runner
//! (`runner.rs`), so sends and imports take turns with it, checks the part still holds, carves
//! each message's share out of the campaign's pool (`billing::pools`), stores it `queued` and
//! moves the cursor. A crash loses the part in hand and nothing else, and the database allows
//! one message per campaign and contact, so a part done twice cannot send twice.

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::{self, Channel, Charging, Usage, pools};
use crate::campaigns::launch::{Links, excluded_counts, excluded_text, save};
use crate::campaigns::links::{self as tracking, Recipient};
use crate::campaigns::store::{self, CampaignRow};
use crate::campaigns::{CampaignStatus, Rendered, Renderer, contact_context};
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::rules::SqlCondition;
use crate::contacts::segments::{self, AudienceMark, AudienceMember};
use crate::contacts::unsubscribe::unsubscribe_url;
use crate::delivery::accounts;
use crate::error::AppError;
use crate::ids::{CampaignId, ContactId, Ids, MessageId};
use crate::messages::segments::Segmentation;
use crate::messages::{self, CampaignMessage, MessageStatus};
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;

/// Why the fan-out leaves out a contact that was eligible at launch, besides the contacts'
/// own reasons (`contacts::reach::Exclusion`).
const RENDER_FAILED: &str = "render_failed";
const INSUFFICIENT_FUNDS: &str = "insufficient_funds";

/// The campaign's workspace: the runner works every workspace's campaigns, each in its own.
fn scope_of(campaign: &CampaignRow) -> WorkspaceScope {
    WorkspaceScope::trusted(&campaign.workspace_id)
}

fn charging_of(mode: Mode) -> Charging {
    match mode {
        Mode::Live => Charging::Live,
        Mode::Test => Charging::Test,
    }
}

/// The audience the launch fixed.
fn fixed_audience(campaign: &CampaignRow) -> Result<(SqlCondition, i64), AppError> {
    let progress = &campaign.progress;
    let (Some(sql), Some(params), Some(last)) = (
        &progress.audience_sql,
        &progress.audience_params,
        progress.fanout_last_rowid,
    ) else {
        return Err(AppError::internal(format!(
            "running campaign {} has no audience",
            campaign.id
        )));
    };
    let condition = SqlCondition::from_stored(sql.clone(), params)
        .ok_or_else(|| AppError::internal("a stored audience does not read back"))?;
    Ok((condition, last))
}

/// What one step of the runner did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do for this campaign now.
    Idle,
    /// Some work done; more may follow.
    Progressed,
}

/// Reads and renders the parts of one running campaign's fan-out, on any connection: the
/// runner prepares parts on a read connection while the writer writes the ones before
/// (`write_part`), so the writer's lock holds only the money and the inserts.
pub struct Preparer<'a> {
    campaign: &'a CampaignRow,
    links: Links<'a>,
    condition: SqlCondition,
    last_rowid: i64,
    renderer: Renderer,
    /// A live campaign of a workspace with its own provider accounts goes through them.
    accounts_route: Option<String>,
}

/// Up to `limit` contacts of a campaign's audience after a cursor, read and rendered: a
/// message for each eligible one (not yet priced), a reason for each other one.
pub struct PreparedPart {
    campaign_id: CampaignId,
    limit: usize,
    /// The cursor the part starts after.
    after: i64,
    /// Whether the audience ends with this part (fewer contacts than `limit`).
    last: bool,
    /// The contacts read, as `segments::audience_marks` shows them, in rowid order.
    marks: Vec<AudienceMark>,
    entries: Vec<Entry>,
}

/// One contact of a prepared part.
enum Entry {
    /// Left out, and why.
    LeftOut(&'static str),
    Message(Box<PreparedMessage>),
}

/// An eligible contact's message, rendered.
struct PreparedMessage {
    id: MessageId,
    contact_id: ContactId,
    to: String,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
    segmentation: Option<Segmentation>,
    units: u64,
    route: Option<String>,
}

impl PreparedPart {
    /// Where the cursor goes once the part is written: its last contact's rowid.
    pub fn until(&self) -> i64 {
        self.marks.last().map_or(self.after, |mark| mark.rowid)
    }

    /// Whether the audience ends with this part.
    pub fn is_last(&self) -> bool {
        self.last
    }
}

impl<'a> Preparer<'a> {
    /// What renders the running campaign's messages: its content compiled, its links and
    /// route read on `conn`.
    pub fn new(
        conn: &Connection,
        campaign: &'a CampaignRow,
        links: Links<'a>,
    ) -> Result<Preparer<'a>, AppError> {
        let (condition, last_rowid) = fixed_audience(campaign)?;
        let renderer = Renderer::new(campaign)?.tracking(tracking::tracker(conn, campaign, links)?);
        let accounts_route = match campaign.mode {
            Mode::Live => accounts::route_for(conn, &scope_of(campaign), campaign.channel)?,
            Mode::Test => None,
        };
        Ok(Preparer {
            campaign,
            links,
            condition,
            last_rowid,
            renderer,
            accounts_route,
        })
    }

    /// Reads the next `limit` contacts of the audience after the cursor `after` and renders
    /// each eligible one's message (message ids from `ids`).
    pub fn part(
        &self,
        conn: &Connection,
        ids: &Ids,
        after: i64,
        limit: usize,
    ) -> Result<PreparedPart, AppError> {
        let campaign = self.campaign;
        let members = segments::audience_page(
            conn,
            &self.condition,
            campaign.channel,
            (after, self.last_rowid),
            limit,
        )?;
        let mut entries = Vec::with_capacity(members.len());
        for member in &members {
            entries.push(match member.exclusion {
                Some(exclusion) => Entry::LeftOut(exclusion.as_str()),
                None => match self.message(ids, member)? {
                    Some(message) => Entry::Message(Box::new(message)),
                    None => Entry::LeftOut(RENDER_FAILED),
                },
            });
        }
        Ok(PreparedPart {
            campaign_id: campaign.id.clone(),
            limit,
            after,
            last: members.len() < limit,
            marks: members.iter().map(AudienceMember::mark).collect(),
            entries,
        })
    }

    /// One eligible member's message; `None` when its content does not render.
    fn message(
        &self,
        ids: &Ids,
        member: &AudienceMember,
    ) -> Result<Option<PreparedMessage>, AppError> {
        let (campaign, links) = (self.campaign, self.links);
        let contact = &member.contact;
        let url = unsubscribe_url(
            links.key,
            links.public_url,
            &campaign.workspace_id,
            campaign.mode,
            &contact.id,
            campaign.channel,
        );
        let recipient = Recipient {
            rowid: member.rowid,
            contact_id: &contact.id,
        };
        let Ok(rendered) =
            self.renderer
                .render_to(&contact_context(contact)?, &url, Some(recipient))
        else {
            return Ok(None);
        };
        let (to, units) = match (&rendered, campaign.channel) {
            (Rendered::Sms { segmentation, .. }, Channel::Sms) => {
                (contact.phone.as_deref(), u64::from(segmentation.segments))
            }
            (Rendered::Email { .. }, Channel::Email) => (contact.email.as_deref(), 1),
            _ => return Err(AppError::internal("rendered for another channel")),
        };
        let to = to.ok_or_else(|| AppError::internal("an eligible contact has no address"))?;
        let (subject, text, html, segmentation) = match rendered {
            Rendered::Sms { text, segmentation } => (None, Some(text), None, Some(segmentation)),
            Rendered::Email {
                subject,
                html,
                text,
            } => (Some(subject), text, html, None),
        };
        Ok(Some(PreparedMessage {
            id: MessageId::generate(ids),
            contact_id: contact.id.clone(),
            to: to.to_owned(),
            subject,
            text,
            html,
            segmentation,
            units,
            route: match &self.accounts_route {
                Some(route) => Some(route.clone()),
                None => links
                    .delivery
                    .route_to_store(campaign.channel, campaign.mode, to),
            },
        }))
    }
}

/// Writes a prepared part of the running campaign it belongs to: each message priced (its
/// share carved out of the campaign's pool, `billing::pools`) and stored `queued`, a count by
/// reason for the contacts left out, the cursor moved past the part. The last part ends the
/// fan-out and refunds what the pool still holds. Runs inside the caller's write transaction.
///
/// A part prepared before the transaction is written only if the campaign's cursor is still
/// where the part starts and its contacts read the same (`segments::audience_marks`: nobody
/// unsubscribed, erased, deleted or re-addressed one in between); otherwise it is prepared
/// again here, as it reads now. `Idle` when the campaign is no longer fanning out.
pub fn write_part(
    conn: &Connection,
    (ids, catalog): (&Ids, &Catalog),
    links: Links<'_>,
    part: PreparedPart,
    now: Timestamp,
) -> Result<Step, AppError> {
    let Some(mut campaign) = store::find_any_campaign(conn, &part.campaign_id)? else {
        return Ok(Step::Idle);
    };
    if campaign.status != CampaignStatus::Running || campaign.progress.fanout_done_at.is_some() {
        return Ok(Step::Idle);
    }
    let part = if still_as_read(conn, &campaign, &part)? {
        part
    } else {
        let cursor = campaign.progress.fanout_cursor;
        Preparer::new(conn, &campaign, links)?.part(conn, ids, cursor, part.limit)?
    };
    let scope = scope_of(&campaign);
    let mut excluded = excluded_counts(&campaign)?;
    let now_text = format_timestamp(now);
    let mut created = 0;
    // The pool, read at the first message that needs it and written back once below.
    let mut carver = None;
    let mut batch = messages::CampaignBatch::new(conn, &part.campaign_id)?;
    let until = part.until();
    for entry in part.entries {
        let reason = match entry {
            Entry::LeftOut(reason) => reason,
            Entry::Message(message) => match write_message(
                conn,
                (ids, catalog),
                (&scope, &mut campaign, &mut carver),
                &mut batch,
                *message,
                now,
                &now_text,
            )? {
                Ok(()) => {
                    created += 1;
                    continue;
                }
                Err(reason) => reason,
            },
        };
        *excluded.entry(reason.to_owned()).or_default() += 1;
    }
    batch.finish()?;
    if let Some(carver) = carver {
        carver.close()?;
    }
    let id = &campaign.id;
    let progress = &mut campaign.progress;
    progress.fanout_cursor = until;
    progress.messages_created += created;
    progress.excluded = excluded_text(&excluded)?;
    if part.last {
        progress.fanout_done_at = Some(now_text.clone());
        if let Some(leftover) = billing::refund(conn, ids, id.as_str(), now)? {
            progress.refunded_minor += leftover.amount_minor;
        }
    }
    campaign.updated_at = now_text;
    save(conn, &campaign, CampaignStatus::Running)?;
    Ok(Step::Progressed)
}

/// Whether a part prepared earlier can be written as it is: the campaign's cursor is where it
/// starts and its contacts (up to the audience's end for the last part) read as they did.
fn still_as_read(
    conn: &Connection,
    campaign: &CampaignRow,
    part: &PreparedPart,
) -> Result<bool, AppError> {
    if campaign.progress.fanout_cursor != part.after {
        return Ok(false);
    }
    let (condition, last_rowid) = fixed_audience(campaign)?;
    let end = if part.last { last_rowid } else { part.until() };
    let now = segments::audience_marks(conn, &condition, campaign.channel, (part.after, end))?;
    Ok(now == part.marks)
}

/// Prices and stores one prepared message; `Err(reason)` leaves it out.
fn write_message<'conn>(
    conn: &'conn Connection,
    (ids, catalog): (&Ids, &Catalog),
    (scope, campaign, carver): (
        &WorkspaceScope,
        &mut CampaignRow,
        &mut Option<pools::Carver<'conn>>,
    ),
    batch: &mut messages::CampaignBatch<'_>,
    message: PreparedMessage,
    now: Timestamp,
    now_text: &str,
) -> Result<Result<(), &'static str>, AppError> {
    let units = message.units;
    let share = match charging_of(campaign.mode) {
        Charging::Test => pools::Share {
            units,
            ..pools::Share::default()
        },
        Charging::Live => match carve_or_enlarge(
            conn,
            (ids, catalog),
            (scope, campaign, carver),
            &message.id,
            units,
            now,
        )? {
            Some(share) => share,
            None => return Ok(Err(INSUFFICIENT_FUNDS)),
        },
    };
    let currency = campaign.progress.currency.clone().unwrap_or_default();
    batch.create(
        message.id,
        CampaignMessage {
            scope,
            mode: campaign.mode,
            api_key_id: campaign.progress.launched_by_key.as_ref(),
            campaign_id: &campaign.id,
            contact_id: &message.contact_id,
            channel: campaign.channel,
            to: &message.to,
            sender: campaign.progress.sender.as_deref(),
            from_name: campaign.from_name.as_deref(),
            subject: message.subject,
            text: message.text,
            html: message.html,
            segmentation: message.segmentation.as_ref(),
            share,
            currency: &currency,
            route: message.route,
        },
        now_text,
    )?;
    Ok(Ok(()))
}

/// The message's share of the pool; when the pool holds too few units (contacts changed since
/// the launch), the pool is first enlarged by the message's units at today's prices. `None`
/// when the wallet cannot pay that (or the quota period has turned).
fn carve_or_enlarge<'conn>(
    conn: &'conn Connection,
    (ids, catalog): (&Ids, &Catalog),
    (scope, campaign, carver): (
        &WorkspaceScope,
        &mut CampaignRow,
        &mut Option<pools::Carver<'conn>>,
    ),
    message_id: &MessageId,
    units: u64,
    now: Timestamp,
) -> Result<Option<pools::Share>, AppError> {
    let pool = campaign.id.as_str();
    let not_open =
        || AppError::internal(format!("the pool of running campaign {pool} is not open"));
    if carver.is_none() {
        *carver = Some(pools::Carver::open(conn, pool, now)?.ok_or_else(not_open)?);
    }
    if let Some(open) = carver.as_mut()
        && let Some(share) = open.carve(message_id.as_str(), units)?
    {
        return Ok(Some(share));
    }
    // The pool is written back before it grows, and read again after.
    if let Some(open) = carver.take() {
        open.close()?;
    }
    let usage = Usage {
        scope,
        channel: campaign.channel,
        units,
        reference: pool,
        charging: Charging::Live,
    };
    match pools::enlarge(conn, ids, catalog, usage, now) {
        Ok(charge) => campaign.progress.reserved_minor += charge.amount_minor,
        Err(AppError::InsufficientFunds { .. } | AppError::Conflict(_)) => return Ok(None),
        Err(other) => return Err(other),
    }
    let mut open = pools::Carver::open(conn, pool, now)?.ok_or_else(not_open)?;
    let share = open
        .carve(message_id.as_str(), units)?
        .ok_or_else(|| AppError::internal("an enlarged pool did not carve"))?;
    *carver = Some(open);
    Ok(Some(share))
}

/// Cancels the campaign `id` of the scope's workspace in `mode`: a scheduled one simply
/// stops (nothing was charged); a running one stops its fan-out (the pool's leftover is
/// refunded) and cancels a first batch of its messages that no dispatcher holds — the runner
/// sweeps the rest. Cancelling twice changes nothing; a draft or a finished campaign is a 409.
pub fn cancel(
    conn: &Connection,
    ids: &Ids,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &CampaignId,
    batch: usize,
    now: Timestamp,
) -> Result<CampaignRow, AppError> {
    let mut campaign = crate::campaigns::find_campaign(conn, scope, mode, id)?;
    let stamp = format_timestamp(now);
    match campaign.status {
        CampaignStatus::Cancelled => return Ok(campaign),
        CampaignStatus::Draft => {
            return Err(AppError::Conflict(format!(
                "The campaign {id} is a draft: nothing to cancel. Delete it instead."
            )));
        }
        CampaignStatus::Completed | CampaignStatus::Partial | CampaignStatus::Failed => {
            return Err(AppError::Conflict(format!(
                "The campaign {id} is {}: it has finished.",
                campaign.status
            )));
        }
        CampaignStatus::Scheduled => {
            campaign.progress.cancel_done_at = Some(stamp.clone());
        }
        CampaignStatus::Running => {
            if campaign.progress.fanout_done_at.is_none() {
                campaign.progress.fanout_done_at = Some(stamp.clone());
                if let Some(leftover) = billing::refund(conn, ids, id.as_str(), now)? {
                    campaign.progress.refunded_minor += leftover.amount_minor;
                }
            }
        }
    }
    let expected = campaign.status;
    campaign.status = CampaignStatus::Cancelled;
    campaign.progress.cancelled_at = Some(stamp.clone());
    campaign.updated_at = stamp;
    if expected == CampaignStatus::Running {
        cancel_batch(conn, ids, scope, &mut campaign, batch, now)?;
    }
    save(conn, &campaign, expected)?;
    Ok(campaign)
}

/// Cancels (and refunds, as one ledger row `cmp_…/cancel-N`) up to `batch` of a cancelled
/// campaign's messages that no dispatcher holds; once none of its messages can still be sent,
/// the cancel is done.
fn cancel_batch(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    campaign: &mut CampaignRow,
    batch: usize,
    now: Timestamp,
) -> Result<(), AppError> {
    let progress = &mut campaign.progress;
    let reference = format!("{}/cancel-{}", campaign.id, progress.cancel_refunds + 1);
    let (cancelled, refunded) = messages::cancel_campaign_messages(
        conn,
        ids,
        scope,
        &campaign.id,
        (batch, &reference),
        now,
    )?;
    if refunded > 0 {
        progress.cancel_refunds += 1;
    }
    // A message a dispatcher holds may come back `queued` for a retry: the sweep goes on until
    // every message is sent, failed or cancelled.
    if cancelled < batch && !messages::campaign_unsettled(conn, &campaign.id)? {
        progress.cancel_done_at = Some(format_timestamp(now));
    }
    Ok(())
}

/// One batch of a cancelled campaign's sweep (the runner's step). Runs inside the caller's
/// write transaction.
pub fn sweep_cancelled(
    conn: &Connection,
    ids: &Ids,
    id: &CampaignId,
    batch: usize,
    now: Timestamp,
) -> Result<Step, AppError> {
    let Some(mut campaign) = store::find_any_campaign(conn, id)? else {
        return Ok(Step::Idle);
    };
    if campaign.status != CampaignStatus::Cancelled || campaign.progress.cancel_done_at.is_some() {
        return Ok(Step::Idle);
    }
    let scope = scope_of(&campaign);
    cancel_batch(conn, ids, &scope, &mut campaign, batch, now)?;
    campaign.updated_at = format_timestamp(now);
    save(conn, &campaign, CampaignStatus::Cancelled)?;
    Ok(Step::Progressed)
}

/// Whether a running campaign's fan-out is over and every message is settled: the runner then
/// asks `finish`.
pub fn ready_to_finish(conn: &Connection, campaign: &CampaignRow) -> Result<bool, AppError> {
    Ok(campaign.status == CampaignStatus::Running
        && campaign.progress.fanout_done_at.is_some()
        && !messages::campaign_unsettled(conn, &campaign.id)?)
}

/// Settles a running campaign whose fan-out is over and whose messages are all final:
/// `completed` when every one was sent, `partial` when some failed, `failed` when none was
/// sent (or the fan-out wrote none). Runs inside the caller's write transaction.
pub fn finish(conn: &Connection, id: &CampaignId, now: Timestamp) -> Result<Step, AppError> {
    let Some(mut campaign) = store::find_any_campaign(conn, id)? else {
        return Ok(Step::Idle);
    };
    if !ready_to_finish(conn, &campaign)? {
        return Ok(Step::Idle);
    }
    let tally = messages::campaign_tally(conn, id)?;
    let count = |wanted: &[MessageStatus]| -> u64 {
        tally
            .by_status
            .iter()
            .filter(|row| wanted.contains(&row.status))
            .map(|row| row.messages)
            .sum()
    };
    let sent = count(&[MessageStatus::Sent, MessageStatus::Delivered]);
    let failed = count(&[MessageStatus::Failed]);
    let stamp = format_timestamp(now);
    campaign.status = if sent == 0 {
        let (code, message) = if campaign.progress.messages_created == 0 {
            (
                "no_recipients",
                "Every contact was left out when the fan-out reached it.",
            )
        } else {
            ("all_failed", "No message of the campaign could be sent.")
        };
        campaign.progress.failure_code = Some(code.to_owned());
        campaign.progress.failure_message = Some(message.to_owned());
        CampaignStatus::Failed
    } else if failed == 0 {
        CampaignStatus::Completed
    } else {
        CampaignStatus::Partial
    };
    campaign.progress.finished_at = Some(stamp.clone());
    campaign.updated_at = stamp;
    save(conn, &campaign, CampaignStatus::Running)?;
    Ok(Step::Progressed)
}

/// What a campaign's messages say of it: how many of each status, what they carry, what came
/// back to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub by_status: Vec<(MessageStatus, u64)>,
    /// The charges its messages carry (their shares of the pool).
    pub carried_minor: i64,
    /// The pool's leftover and the shares of messages refunded (cancelled, or failed unsent).
    pub refunded_minor: i64,
}

/// The campaign's message counts and money.
pub fn stats(conn: &Connection, campaign: &CampaignRow) -> Result<Stats, AppError> {
    let tally = messages::campaign_tally(conn, &campaign.id)?;
    Ok(Stats {
        carried_minor: tally.by_status.iter().map(|row| row.charge_minor).sum(),
        by_status: tally
            .by_status
            .iter()
            .map(|row| (row.status, row.messages))
            .collect(),
        refunded_minor: campaign.progress.refunded_minor + tally.refunded_minor,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::app::App;
    use crate::campaigns::runner::fixtures;
    use crate::campaigns::runner::links;
    use crate::contacts::delete_contact;

    /// The contacts (by first name) that have a message of the campaign, and how many each.
    fn written(app: &App, campaign: &CampaignId) -> Vec<(String, i64)> {
        app.db
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT c.first_name, count(*) FROM messages m
                     JOIN contacts c ON c.id = m.contact_id
                     WHERE m.campaign_id = ?1 GROUP BY c.id ORDER BY c.rowid",
                )?;
                let rows = stmt.query_map([campaign], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap()
    }

    /// Parts are prepared on a read connection ahead of the writer (`runner.rs`); one that the
    /// writer finds out of date — a contact deleted since it was read, or the cursor past its
    /// start because its contacts were written already — is read again as the database is then,
    /// so a deleted contact gets no message and nobody gets two.
    #[test]
    fn a_part_out_of_date_when_written_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let (app, _clock) = App::for_tests(dir.path(), now, 7);
        let workspace = fixtures::workspace_with_contacts(&app, &["Ada", "Bob", "Cy"], now);
        let (scope, mode, people) = (&workspace.scope, workspace.mode, &workspace.contacts);
        let running = fixtures::launched(&app, &workspace, "Hi {{ contact.first_name }}", now);
        let catalog = &app.config.billing_catalog;
        // Two parts of two contacts read from the start, before anything is written.
        let prepare = || {
            app.db
                .read(|conn| {
                    let cursor = running.progress.fanout_cursor;
                    Preparer::new(conn, &running, links(&app))?.part(conn, &app.ids, cursor, 2)
                })
                .unwrap()
        };
        let (first, again) = (prepare(), prepare());
        app.db
            .write(|conn| delete_contact(conn, scope, mode, &people[1], now))
            .unwrap();
        let write = |part| {
            app.db
                .write(|conn| write_part(conn, (&app.ids, catalog), links(&app), part, now))
                .unwrap()
        };

        // Bob was deleted after the part was read: it is read again as it is now — Ada and Cy.
        assert_eq!(write(first), Step::Progressed);
        let both = [("Ada".to_owned(), 1), ("Cy".to_owned(), 1)];
        assert_eq!(written(&app, &running.id), both);
        // The same contacts once more: the cursor is past them, so the part is read again from
        // the cursor, where the audience ends: nobody gets a second message.
        assert_eq!(write(again), Step::Progressed);
        assert_eq!(written(&app, &running.id), both);
        let done = app
            .db
            .read(|conn| store::find_any_campaign(conn, &running.id))
            .unwrap()
            .unwrap();
        assert!(done.progress.fanout_done_at.is_some());
        assert_eq!(done.progress.messages_created, 2);
        // A deleted contact is no longer in "all contacts": nobody is left out by reason.
        assert!(excluded_counts(&done).unwrap().is_empty());
        // The fan-out is over: a part written now changes nothing.
        assert_eq!(write(prepare()), Step::Idle);
        assert_eq!(written(&app, &running.id).len(), 2);
    }
}
