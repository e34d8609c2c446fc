//! Estimating and launching a campaign (docs/rules/campaigns.md, "Estimate", "Launch",
//! "Schedule", "Cancel").
//!
//! An estimate walks the audience once on read transactions (an SMS one over two halves of the
//! contacts, on two threads): who is left out and why, and —
//! for SMS — every recipient's message rendered and segmented, since a long name can push one
//! to two segments. A launch takes that estimate into one write transaction that checks the
//! campaign again, reserves the whole charge as the campaign's pool (`billing::reserve`, 402
//! and nothing changes when the wallet cannot pay) and moves it to `running` with the audience
//! fixed. The fan-out (`fanout.rs`) then writes the messages.

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::{self, Channel, Charging, Usage};
use crate::campaigns::links;
use crate::campaigns::store::{self, CampaignRow};
use crate::campaigns::{
    CampaignStatus, Checks, Rendered, Renderer, audience_of, checked, contact_context,
    find_campaign,
};
use crate::clock::{Timestamp, format_timestamp, parse_timestamp};
use crate::contacts::rules::SqlCondition;
use crate::contacts::segments::{self, Reach};
use crate::contacts::unsubscribe::unsubscribe_url_unsigned;
use crate::db::Db;
use crate::error::AppError;
use crate::ids::{ApiKeyId, CampaignId, GroupId, Ids, SegmentId};
use crate::scope::WorkspaceScope;
use crate::secrets::ServerKey;
use crate::vocabulary::Mode;

/// How many contacts an estimate reads at a time.
const ESTIMATE_PAGE: usize = 5_000;

/// What a campaign would go to and cost now, as `POST …/estimate` shows it and a launch
/// reserves.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The audience's contacts, each once, split by why a marketing message leaves some out.
    pub reach: Reach,
    /// Contacts named by more than one of the campaign's lists, counted once more each time.
    pub duplicates: u64,
    /// Members of the campaign's groups that are deleted contacts.
    pub deleted: u64,
    /// Eligible contacts whose message does not render (a custom value the template cannot
    /// take); they are left out too.
    pub render_failed: u64,
    /// The messages the campaign would write: eligible contacts whose message renders.
    pub recipients: u64,
    /// The units those messages take (SMS: their segments; email: one each).
    pub units: u64,
    /// SMS: how many recipients get a message of each number of segments.
    pub segments: BTreeMap<u32, u64>,
    /// The audience as compiled now, and the newest contact: what a launch fixes.
    pub condition: SqlCondition,
    pub last_rowid: i64,
    /// The distinct URLs a campaign that tracks links goes to: what the launch stores.
    pub link_targets: Vec<String>,
}

/// Where a campaign's links point and what signs them; and the delivery settings its SMS are
/// routed by (`DeliverySettings::route_to_store`, stored on each message).
#[derive(Clone, Copy)]
pub struct Links<'a> {
    pub key: &'a ServerKey,
    pub public_url: &'a str,
    pub delivery: &'a crate::delivery::settings::DeliverySettings,
}

/// The lists of a campaign's audience, parsed (they were checked when the draft was saved, and
/// `checked` checks them again).
fn parsed_lists(campaign: &CampaignRow) -> Result<(bool, Vec<GroupId>, Vec<SegmentId>), AppError> {
    let audience = audience_of(campaign)?;
    let groups = audience
        .groups
        .iter()
        .map(|id| GroupId::parse(id).ok_or_else(|| unknown_list("audience.groups", id)))
        .collect::<Result<_, _>>()?;
    let segments = audience
        .segments
        .iter()
        .map(|id| SegmentId::parse(id).ok_or_else(|| unknown_list("audience.segments", id)))
        .collect::<Result<_, _>>()?;
    Ok((audience.all, groups, segments))
}

/// A list id in a stored audience that is not an id (the draft checks refuse it first).
fn unknown_list(field: &str, id: &str) -> AppError {
    AppError::invalid_field(field, format!("no such list among the caller's: {id}"))
}

/// Estimates `campaign` for the scope's workspace: its content and lists are checked again (a
/// field, group or segment deleted since is a 422 naming it), then the audience is walked once.
/// Changes nothing.
///
/// Takes the `Db`, not a connection: an SMS campaign's audience is rendered in two halves of
/// its rowid range on two threads, each on a read transaction of its own (at a million
/// contacts the walk is most of a launch request). Each thread holds one pooled connection at
/// a time, never one while waiting for another. The halves may see the contacts a moment
/// apart, as the launch sees them a moment after the estimate: the fan-out prices each message
/// as it writes it and the pool's leftover is refunded, so an estimate is never what is
/// charged in the end.
pub fn estimate(
    db: &Db,
    links: Links<'_>,
    scope: &WorkspaceScope,
    campaign: &CampaignRow,
    now: Timestamp,
) -> Result<Estimate, AppError> {
    let (mut estimate, tracker) = db.read(|conn| {
        checked(
            conn,
            scope,
            campaign,
            &audience_of(campaign)?,
            now,
            Checks::Launch,
        )?;
        let (all, groups, segment_ids) = parsed_lists(campaign)?;
        let lists =
            segments::lists_audience(conn, scope, campaign.mode, all, &groups, &segment_ids)?;
        let reach = lists.audience.reach(conn, campaign.channel)?;
        let condition = lists.audience.condition();
        let last_rowid = segments::newest_contact_rowid(conn)?;
        let (tracker, link_targets) = links::estimating_tracker(conn, campaign, links)?;
        let estimate = Estimate {
            reach,
            duplicates: lists
                .listed
                .map_or(0, |listed| listed.saturating_sub(reach.contacts)),
            deleted: lists.deleted_members,
            render_failed: 0,
            recipients: 0,
            units: 0,
            segments: BTreeMap::new(),
            condition,
            last_rowid,
            link_targets,
        };
        Ok((estimate, tracker))
    })?;
    match campaign.channel {
        // One unit each, whatever the content: nothing to render.
        Channel::Email => {
            estimate.recipients = estimate.reach.eligible();
            estimate.units = estimate.reach.eligible();
        }
        Channel::Sms => {
            // Counted with each recipient's short links, as long as they can be.
            let renderer = Renderer::new(campaign)?.tracking(tracker);
            let walk = Walk {
                links,
                scope,
                campaign,
                renderer: &renderer,
                condition: &estimate.condition,
            };
            let last = estimate.last_rowid;
            let middle = last / 2;
            let (low, high) = std::thread::scope(|threads| {
                let high = std::thread::Builder::new()
                    .name("campaign-estimate".to_owned())
                    .spawn_scoped(threads, || db.read(|conn| walk.count(conn, (middle, last))))
                    .map_err(|err| {
                        AppError::internal(format!("cannot start an estimate thread: {err}"))
                    })?;
                let low = db.read(|conn| walk.count(conn, (0, middle)));
                let high = high
                    .join()
                    .unwrap_or_else(|_| Err(AppError::internal("an estimate thread panicked")));
                Ok::<_, AppError>((low?, high?))
            })?;
            for counted in [low, high] {
                estimate.recipients += counted.recipients;
                estimate.units += counted.units;
                estimate.render_failed += counted.render_failed;
                for (segments, recipients) in counted.segments {
                    *estimate.segments.entry(segments).or_default() += recipients;
                }
            }
        }
    }
    Ok(estimate)
}

/// What an SMS estimate renders with, shared by its two threads.
struct Walk<'a> {
    links: Links<'a>,
    scope: &'a WorkspaceScope,
    campaign: &'a CampaignRow,
    renderer: &'a Renderer,
    condition: &'a SqlCondition,
}

/// One range's share of an SMS estimate.
#[derive(Default)]
struct Counted {
    recipients: u64,
    units: u64,
    render_failed: u64,
    segments: BTreeMap<u32, u64>,
}

impl Walk<'_> {
    /// Renders each eligible contact of the audience with rowid in `(after, last]`.
    fn count(&self, conn: &Connection, (mut after, last): (i64, i64)) -> Result<Counted, AppError> {
        let campaign = self.campaign;
        let mut counted = Counted::default();
        // One link for every recipient, as long as each one's signed link: the token holds the
        // ids' ULID bytes, so every id crier makes gives a token of the same length and
        // alphabet — the same segments, without a token per recipient. (Were a link ever of
        // another length, only the estimate would be off: the fan-out prices each message as
        // it writes it, enlarging the pool or refunding its leftover.)
        let mut same_link = None;
        loop {
            let page = segments::audience_page(
                conn,
                self.condition,
                campaign.channel,
                (after, last),
                ESTIMATE_PAGE,
            )?;
            let Some(newest) = page.last() else { break };
            after = newest.rowid;
            for member in page.iter().filter(|member| member.exclusion.is_none()) {
                let url: &String = same_link.get_or_insert_with(|| {
                    unsubscribe_url_unsigned(
                        self.links.public_url,
                        self.scope.id(),
                        campaign.mode,
                        &member.contact.id,
                        campaign.channel,
                    )
                });
                let recipient = links::Recipient {
                    rowid: member.rowid,
                    contact_id: &member.contact.id,
                };
                let context = contact_context(&member.contact)?;
                match self.renderer.render_to(&context, url, Some(recipient)) {
                    Ok(Rendered::Sms { segmentation, .. }) => {
                        counted.recipients += 1;
                        counted.units += u64::from(segmentation.segments);
                        *counted.segments.entry(segmentation.segments).or_default() += 1;
                    }
                    Ok(Rendered::Email { .. }) | Err(_) => counted.render_failed += 1,
                }
            }
        }
        Ok(counted)
    }
}

/// A campaign starts only with a recipient: 422 on `audience` naming why each contact is left
/// out otherwise. The API asks before its write transaction too, so this refusal is not stored
/// under the launch's Idempotency-Key (a retry once contacts are added goes through).
pub fn has_recipients(campaign: &CampaignRow, estimate: &Estimate) -> Result<(), AppError> {
    if estimate.recipients > 0 {
        return Ok(());
    }
    let reach = &estimate.reach;
    Err(AppError::invalid_field(
        "audience",
        format!(
            "has no contact this {} may go to: {} contacts, {} without an address, {} \
             unsubscribed, {} invalid, {} bounced, {} who complained, {} whose message does not \
             render",
            campaign.channel,
            reach.contacts,
            reach.no_address,
            reach.unsubscribed,
            reach.invalid,
            reach.bounced,
            reach.complained,
            estimate.render_failed
        ),
    ))
}

/// Who launches: the key (none from a console session) and whether the workspace pays.
#[derive(Debug, Clone, Copy)]
pub struct Launcher<'a> {
    pub api_key_id: Option<&'a ApiKeyId>,
    pub charging: Charging,
}

/// The campaign a launch or the scheduler starts: one of the scope's in `mode`, in `expected`.
fn startable(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &CampaignId,
    expected: CampaignStatus,
) -> Result<CampaignRow, AppError> {
    let campaign = find_campaign(conn, scope, mode, id)?;
    ensure_status(&campaign, expected)?;
    Ok(campaign)
}

/// 409 unless the campaign is `expected` (a launch wants a draft; the scheduler a scheduled
/// one) — the one refusal, before and inside the launch's transaction alike.
pub fn ensure_status(campaign: &CampaignRow, expected: CampaignStatus) -> Result<(), AppError> {
    if campaign.status != expected {
        return Err(AppError::Conflict(format!(
            "The campaign {} is {}; only a {expected} campaign starts here.",
            campaign.id, campaign.status
        )));
    }
    Ok(())
}

/// Starts the campaign now with `estimate` (made just before, outside this transaction): it
/// must still be `expected` (a draft for the API, `scheduled` for the scheduler); it must have
/// a recipient (422 on `audience` otherwise); the whole charge is reserved as its pool (402
/// `insufficient_funds` with the figures, and nothing changes); it becomes `running` with its
/// audience, sender and figures fixed. Runs inside the caller's write transaction.
#[allow(clippy::too_many_arguments)]
pub fn launch(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &CampaignId,
    expected: CampaignStatus,
    (launcher, default_sender): (Launcher<'_>, &str),
    estimate: &Estimate,
    now: Timestamp,
) -> Result<CampaignRow, AppError> {
    let mut campaign = startable(conn, scope, mode, id, expected)?;
    has_recipients(&campaign, estimate)?;
    let sender = match campaign.channel {
        Channel::Sms => Some(billing::sender::effective_sender_of(
            conn,
            scope,
            default_sender,
        )?),
        // The workspace's own From, if it has one on an active sending domain (live only).
        Channel::Email => match mode {
            Mode::Live => crate::sending_domains::workspace_from(conn, scope)?,
            Mode::Test => None,
        },
    };
    let quote = billing::reserve(
        conn,
        ids,
        catalog,
        Usage {
            scope,
            channel: campaign.channel,
            units: estimate.units,
            reference: id.as_str(),
            charging: launcher.charging,
        },
        now,
    )?;
    links::store_links(conn, &campaign.id, &estimate.link_targets)?;
    let stamp = format_timestamp(now);
    let progress = &mut campaign.progress;
    progress.launched_at = Some(stamp.clone());
    progress.launched_by_key = launcher.api_key_id.cloned();
    progress.sender = sender;
    progress.audience_sql = Some(estimate.condition.sql.clone());
    progress.audience_params = Some(estimate.condition.params_json());
    progress.fanout_last_rowid = Some(estimate.last_rowid);
    progress.fanout_cursor = 0;
    progress.planned_recipients = Some(estimate.recipients);
    progress.planned_units = Some(estimate.units);
    progress.reserved_minor = match launcher.charging {
        Charging::Live => quote.charge.amount_minor,
        Charging::Test => 0,
    };
    progress.currency = Some(quote.charge.currency.clone());
    let mut excluded = BTreeMap::new();
    for (reason, count) in [
        ("duplicate", estimate.duplicates),
        ("deleted", estimate.deleted),
    ] {
        if count > 0 {
            excluded.insert(reason.to_owned(), count);
        }
    }
    progress.excluded = excluded_text(&excluded)?;
    campaign.status = CampaignStatus::Running;
    campaign.updated_at = stamp;
    save(conn, &campaign, expected)?;
    Ok(campaign)
}

/// Contacts left out by reason, as stored.
pub fn excluded_counts(campaign: &CampaignRow) -> Result<BTreeMap<String, u64>, AppError> {
    if campaign.progress.excluded.is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(&campaign.progress.excluded).map_err(AppError::internal)
}

pub(crate) fn excluded_text(counts: &BTreeMap<String, u64>) -> Result<String, AppError> {
    serde_json::to_string(counts).map_err(AppError::internal)
}

/// Writes the campaign's status and progress; it must still be `expected`.
pub(crate) fn save(
    conn: &Connection,
    campaign: &CampaignRow,
    expected: CampaignStatus,
) -> Result<(), AppError> {
    if store::save_progress(conn, campaign, expected)? {
        Ok(())
    } else {
        Err(AppError::internal(format!(
            "campaign {} was not {expected} inside its own transaction",
            campaign.id
        )))
    }
}

/// Schedules a draft whose `scheduled_at` is ahead: the scheduler launches it then, with the
/// same checks and reservation as a launch now (its messages carry `launched_by_key`); nothing
/// is reserved before.
pub fn schedule(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &CampaignId,
    launched_by_key: Option<&ApiKeyId>,
    now: Timestamp,
) -> Result<CampaignRow, AppError> {
    let mut campaign = startable(conn, scope, mode, id, CampaignStatus::Draft)?;
    checked(
        conn,
        scope,
        &campaign,
        &audience_of(&campaign)?,
        now,
        Checks::Draft,
    )?;
    campaign.status = CampaignStatus::Scheduled;
    campaign.progress.launched_by_key = launched_by_key.cloned();
    campaign.updated_at = format_timestamp(now);
    save(conn, &campaign, CampaignStatus::Draft)?;
    Ok(campaign)
}

/// Whether a launch of `campaign` at `now` schedules it rather than starting it.
pub fn launches_later(campaign: &CampaignRow, now: Timestamp) -> bool {
    campaign
        .scheduled_at
        .as_deref()
        .and_then(parse_timestamp)
        .is_some_and(|at| at > now)
}

/// Marks a scheduled campaign `failed` with why it could not start (the scheduler found the
/// wallet short, no recipient, or content that no longer checks). Nothing was charged.
pub fn fail_scheduled(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &CampaignId,
    why: &AppError,
    now: Timestamp,
) -> Result<(), AppError> {
    let mut campaign = startable(conn, scope, mode, id, CampaignStatus::Scheduled)?;
    let stamp = format_timestamp(now);
    campaign.status = CampaignStatus::Failed;
    campaign.updated_at = stamp.clone();
    campaign.progress.finished_at = Some(stamp);
    campaign.progress.failure_code = Some(why.code().to_owned());
    campaign.progress.failure_message = Some(match why {
        AppError::Validation(fields) => fields
            .iter()
            .map(|(field, reason)| format!("{field}: {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.public_message(),
    });
    save(conn, &campaign, CampaignStatus::Scheduled)
}
