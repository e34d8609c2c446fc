//! A running campaign's course (docs/rules/campaigns.md, "Fan-out", "Cancel", "Finish"): its
//! messages written chunk by chunk from a durable cursor, a cancel's sweep, and the finish.
//!
//! Each step is one write transaction the runner (`runner.rs`) asks for, so sends and imports
//! take turns with it. A chunk reads the next contacts of the audience fixed at launch (rowid
//! order, up to the newest contact at launch), renders each eligible one's message, carves its
//! share out of the campaign's pool (`billing::pools`) and stores it `queued`; the cursor moves
//! in the same transaction. A crash loses the chunk in hand and nothing else, and the database
//! allows one message per campaign and contact, so a chunk done twice cannot send twice.

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::{self, Channel, Charging, Usage, pools};
use crate::campaigns::launch::{Links, excluded_counts, excluded_text, save};
use crate::campaigns::links::{self as tracking, Recipient};
use crate::campaigns::store::{self, CampaignRow};
use crate::campaigns::{CampaignStatus, Rendered, Renderer, contact_context};
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::rules::SqlCondition;
use crate::contacts::segments::{self, AudienceMember};
use crate::contacts::unsubscribe::unsubscribe_url;
use crate::delivery::accounts;
use crate::error::AppError;
use crate::ids::{CampaignId, Ids, MessageId};
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

/// Writes the next chunk of up to `limit` audience contacts of the running campaign `id`:
/// a message for each eligible one, a count by reason for the others. The last chunk (fewer
/// contacts than `limit`) ends the fan-out and refunds what the pool still holds. Runs inside
/// the caller's write transaction.
pub fn fan_out_chunk(
    conn: &Connection,
    (ids, catalog): (&Ids, &Catalog),
    links: Links<'_>,
    id: &CampaignId,
    limit: usize,
    now: Timestamp,
) -> Result<Step, AppError> {
    let Some(mut campaign) = store::find_any_campaign(conn, id)? else {
        return Ok(Step::Idle);
    };
    if campaign.status != CampaignStatus::Running || campaign.progress.fanout_done_at.is_some() {
        return Ok(Step::Idle);
    }
    let scope = scope_of(&campaign);
    let (condition, last_rowid) = fixed_audience(&campaign)?;
    let members = segments::audience_page(
        conn,
        &condition,
        campaign.channel,
        (campaign.progress.fanout_cursor, last_rowid),
        limit,
    )?;
    let mut excluded = excluded_counts(&campaign)?;
    let renderer = Renderer::new(&campaign)?.tracking(tracking::tracker(conn, &campaign, links)?);
    // A live campaign of a workspace with its own provider accounts goes through them.
    let accounts_route = match campaign.mode {
        Mode::Live => accounts::route_for(conn, &scope, campaign.channel)?,
        Mode::Test => None,
    };
    let now_text = format_timestamp(now);
    let mut created = 0;
    // The pool, read at the first message that needs it and written back once below.
    let mut carver = None;
    let mut batch = messages::CampaignBatch::new(id);
    for member in &members {
        if let Some(exclusion) = member.exclusion {
            *excluded.entry(exclusion.as_str().to_owned()).or_default() += 1;
            continue;
        }
        match write_message(
            conn,
            (ids, catalog),
            links,
            (&scope, &mut campaign, &mut carver),
            (&renderer, &mut batch, accounts_route.as_deref()),
            member,
            now,
            &now_text,
        )? {
            Ok(()) => created += 1,
            Err(reason) => *excluded.entry(reason.to_owned()).or_default() += 1,
        }
    }
    batch.finish(conn)?;
    if let Some(carver) = carver {
        carver.close(conn)?;
    }
    let progress = &mut campaign.progress;
    if let Some(last) = members.last() {
        progress.fanout_cursor = last.rowid;
    }
    progress.messages_created += created;
    progress.excluded = excluded_text(&excluded)?;
    if members.len() < limit {
        progress.fanout_done_at = Some(now_text.clone());
        if let Some(leftover) = billing::refund(conn, ids, id.as_str(), now)? {
            progress.refunded_minor += leftover.amount_minor;
        }
    }
    campaign.updated_at = now_text;
    save(conn, &campaign, CampaignStatus::Running)?;
    Ok(Step::Progressed)
}

/// Renders, prices and stores one eligible member's message; `Err(reason)` leaves it out.
#[allow(clippy::too_many_arguments)]
fn write_message(
    conn: &Connection,
    (ids, catalog): (&Ids, &Catalog),
    links: Links<'_>,
    (scope, campaign, carver): (
        &WorkspaceScope,
        &mut CampaignRow,
        &mut Option<pools::Carver>,
    ),
    (renderer, batch, accounts_route): (&Renderer, &mut messages::CampaignBatch, Option<&str>),
    member: &AudienceMember,
    now: Timestamp,
    now_text: &str,
) -> Result<Result<(), &'static str>, AppError> {
    let contact = &member.contact;
    let url = unsubscribe_url(
        links.key,
        links.public_url,
        scope.id(),
        campaign.mode,
        &contact.id,
        campaign.channel,
    );
    let recipient = Recipient {
        rowid: member.rowid,
        contact_id: &contact.id,
    };
    let Ok(rendered) = renderer.render_to(&contact_context(contact)?, &url, Some(recipient)) else {
        return Ok(Err(RENDER_FAILED));
    };
    let (to, units) = match (&rendered, campaign.channel) {
        (Rendered::Sms { segmentation, .. }, Channel::Sms) => {
            (contact.phone.as_deref(), u64::from(segmentation.segments))
        }
        (Rendered::Email { .. }, Channel::Email) => (contact.email.as_deref(), 1),
        _ => return Err(AppError::internal("rendered for another channel")),
    };
    let to = to.ok_or_else(|| AppError::internal("an eligible contact has no address"))?;
    let message_id = MessageId::generate(ids);
    let share = match charging_of(campaign.mode) {
        Charging::Test => pools::Share {
            units,
            ..pools::Share::default()
        },
        Charging::Live => match carve_or_enlarge(
            conn,
            (ids, catalog),
            (scope, campaign, carver),
            &message_id,
            units,
            now,
        )? {
            Some(share) => share,
            None => return Ok(Err(INSUFFICIENT_FUNDS)),
        },
    };
    let (subject, text, html, segmentation) = match rendered {
        Rendered::Sms { text, segmentation } => (None, Some(text), None, Some(segmentation)),
        Rendered::Email {
            subject,
            html,
            text,
        } => (Some(subject), text, html, None),
    };
    let currency = campaign.progress.currency.clone().unwrap_or_default();
    batch.create(
        conn,
        message_id,
        CampaignMessage {
            scope,
            mode: campaign.mode,
            api_key_id: campaign.progress.launched_by_key.as_ref(),
            campaign_id: &campaign.id,
            contact_id: &contact.id,
            channel: campaign.channel,
            to,
            sender: campaign.progress.sender.as_deref(),
            subject,
            text,
            html,
            segmentation: segmentation.as_ref(),
            share,
            currency: &currency,
            route: match accounts_route {
                Some(route) => Some(route.to_owned()),
                None => links
                    .delivery
                    .route_to_store(campaign.channel, campaign.mode, to),
            },
        },
        now_text,
    )?;
    Ok(Ok(()))
}

/// The message's share of the pool; when the pool holds too few units (contacts changed since
/// the launch), the pool is first enlarged by the message's units at today's prices. `None`
/// when the wallet cannot pay that (or the quota period has turned).
fn carve_or_enlarge(
    conn: &Connection,
    (ids, catalog): (&Ids, &Catalog),
    (scope, campaign, carver): (
        &WorkspaceScope,
        &mut CampaignRow,
        &mut Option<pools::Carver>,
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
        && let Some(share) = open.carve(conn, message_id.as_str(), units)?
    {
        return Ok(Some(share));
    }
    // The pool is written back before it grows, and read again after.
    if let Some(open) = carver.take() {
        open.close(conn)?;
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
        .carve(conn, message_id.as_str(), units)?
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
