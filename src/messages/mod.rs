//! Messages (docs/rules/messages.md): a send's parts (segments, recipients, composition), the send
//! itself — priced, reserved and stored in one transaction — and the message as the API shows
//! it. Delivery (the outbox dispatcher and providers) lives in `crate::delivery`.

pub mod compose;
pub mod segments;
pub mod store;
pub mod view;

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::pools::Share;
use crate::billing::{self, Charging, Usage};
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::erase::{self, Erased};
use crate::contacts::{Editor, reach};
use crate::error::AppError;
use crate::ids::{ApiKeyId, CampaignId, ContactId, Ids, MessageId};
use crate::scope::WorkspaceScope;
use crate::secrets::ServerKey;
use crate::vocabulary::Mode;
use compose::{Category, Composition};
use segments::Segmentation;
use store::MessageRow;

crate::text_enum! {
    /// Where a message is in its life (docs/rules/messages.md, "Statuses"). `Delivered`,
    /// `Failed` and `Cancelled` are final; `Sent` moves only on a delivery receipt.
    pub enum MessageStatus {
        /// Waiting for its `scheduled_at`; can be cancelled.
        Scheduled = "scheduled",
        /// Due for a delivery attempt at `next_attempt_at`.
        Queued = "queued",
        /// Leased by a dispatcher that is calling a provider.
        Sending = "sending",
        /// A provider accepted it.
        Sent = "sent",
        Delivered = "delivered",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl MessageStatus {
    /// Whether delivery is over for the message (`sent` moves only on a receipt, which needs
    /// no body): what retention may purge.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            MessageStatus::Sent
                | MessageStatus::Delivered
                | MessageStatus::Failed
                | MessageStatus::Cancelled
        )
    }
}

/// Messages the retention walk looks at per transaction, so it never holds the writer long.
const PURGE_BATCH: usize = 500;

/// Retention (docs/rules/messages.md, "Retention"): drops the subject and bodies of every
/// finished message created more than `retention` before `now`, in batches of one short write
/// transaction each (`db::sweep_in_batches`). Returns how many messages were purged.
pub fn purge_expired_bodies(
    db: &crate::db::Db,
    retention: chrono::Duration,
    now: Timestamp,
) -> Result<usize, AppError> {
    let cutoff = format_timestamp(now - retention);
    let now_text = format_timestamp(now);
    let mut purged = 0;
    crate::db::sweep_in_batches(db, PURGE_BATCH, |conn, limit| {
        let batch = store::purge_batch(conn, &cutoff, &now_text, limit)?;
        purged += batch.purged;
        Ok(batch.examined)
    })?;
    Ok(purged)
}

/// Who sends: the workspace, and the API key (if any) and its mode.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub scope: &'a WorkspaceScope,
    pub api_key_id: Option<&'a ApiKeyId>,
    pub charging: Charging,
}

/// Origin's mode: the mode of the key that sends (a console session sends live).
fn mode_of(charging: Charging) -> Mode {
    match charging {
        Charging::Live => Mode::Live,
        Charging::Test => Mode::Test,
    }
}

/// Checks the composed message's recipient against the workspace's contacts in the sender's
/// mode (`contacts::reach::check_recipient`: a marketing send to an unsubscribed, erased or bad
/// address, a transactional one to a bad address, is refused) and returns its contact. Part of
/// the send's write transaction, before anything is reserved; the estimate asks the same.
pub fn check_recipient(
    conn: &Connection,
    key: &ServerKey,
    origin: Origin<'_>,
    composition: &Composition,
) -> Result<Option<ContactId>, AppError> {
    reach::check_recipient(
        conn,
        key,
        (origin.scope, mode_of(origin.charging)),
        composition.channel,
        &composition.to,
        composition.category == Category::Marketing,
    )
}

/// The recipient of a send, as `check_recipient` found it: its contact, if any.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub contact_id: Option<&'a ContactId>,
    /// Signs unsubscribe links and keys erased addresses (a marketing send creates a contact).
    pub key: &'a ServerKey,
}

/// Prices the composed message, reserves its units and charge (nothing for test mode), and
/// stores it `queued` (due now) or `scheduled` — all inside the caller's write transaction, so
/// either all of it happens or none. 402 `insufficient_funds` when the wallet cannot pay. A
/// marketing send to an address with no contact creates one (named after the address) so the
/// opt-out its unsubscribe link offers has a home.
pub fn create_message(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    (origin, recipient): (Origin<'_>, Recipient<'_>),
    composition: &Composition,
    now: Timestamp,
) -> Result<MessageRow, AppError> {
    let id = MessageId::generate(ids);
    let quote = billing::reserve(
        conn,
        ids,
        catalog,
        Usage {
            scope: origin.scope,
            channel: composition.channel,
            units: composition.units,
            reference: id.as_str(),
            charging: origin.charging,
        },
        now,
    )?;
    let mode = mode_of(origin.charging);
    let contact_id = match recipient.contact_id {
        Some(contact_id) => Some(contact_id.clone()),
        None if composition.category == Category::Marketing => {
            Some(reach::create_contact_for_address(
                conn,
                ids,
                recipient.key,
                (origin.scope, mode),
                composition.channel,
                &composition.to,
                now,
            )?)
        }
        None => None,
    };
    let now_text = format_timestamp(now);
    let scheduled_at = composition.scheduled_at.map(format_timestamp);
    let segmentation = composition.segmentation.as_ref();
    let message = MessageRow {
        id,
        workspace_id: origin.scope.id().to_owned(),
        api_key_id: origin.api_key_id.cloned(),
        campaign_id: None,
        mode,
        channel: composition.channel,
        category: composition.category,
        to_address: composition.to.clone(),
        sender: composition.sender.clone(),
        subject: composition.subject.clone(),
        text: composition.text.clone(),
        html: composition.html.clone(),
        metadata: composition.metadata.to_string(),
        encoding: segmentation.map(|s| s.encoding.as_str().to_owned()),
        segments: segmentation.map(|s| s.segments),
        units: composition.units,
        included_units: quote.included_units,
        charge_minor: quote.charge.amount_minor,
        currency: quote.charge.currency.clone(),
        status: if scheduled_at.is_some() {
            MessageStatus::Scheduled
        } else {
            MessageStatus::Queued
        },
        next_attempt_at: scheduled_at.clone().unwrap_or_else(|| now_text.clone()),
        scheduled_at,
        delivery_cycles: 0,
        lease_owner: None,
        lease_expires_at: None,
        provider: None,
        provider_message_id: None,
        error_code: None,
        error_message: None,
        created_at: now_text.clone(),
        updated_at: now_text,
        sent_at: None,
        delivered_at: None,
        failed_at: None,
        cancelled_at: None,
        contact_id,
        route: composition.route.clone(),
        body_purged_at: None,
        from_name: None,
    };
    store::insert_message(conn, &message)?;
    Ok(message)
}

/// Cancels a scheduled message and gives back what it reserved, once. A message already
/// cancelled stays as it is (cancelling twice is not an error); any other status is a 409.
pub fn cancel_message(
    conn: &Connection,
    ids: &Ids,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &MessageId,
    now: Timestamp,
) -> Result<(), AppError> {
    let message = store::find_message(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)?;
    match message.status {
        MessageStatus::Cancelled => return Ok(()),
        MessageStatus::Scheduled => {}
        status => {
            return Err(AppError::Conflict(format!(
                "Only scheduled messages can be cancelled; this one is {status}."
            )));
        }
    }
    let now_text = format_timestamp(now);
    if !store::cancel_scheduled(conn, id, &now_text)? {
        return Err(AppError::internal("scheduled message did not cancel"));
    }
    billing::refund(conn, ids, id.as_str(), now)?;
    Ok(())
}

/// Erases a contact (`contacts::erase::erase_contact`) and, in the same transaction, cancels
/// (and refunds) the workspace's scheduled messages of that mode to its phone and email, then
/// scrubs every finished one: those sent through the API to its addresses
/// (`store::scrub_recipient`), every campaign message of the contact, and the campaign
/// messages to its addresses of the workspace's other contacts with them, live or deleted
/// (`store::scrub_campaign_messages`). Messages already queued or sending keep their content:
/// a dispatcher may be handing them over. Returns the erasure and how many messages were
/// scrubbed.
pub fn erase_contact(
    conn: &Connection,
    ids: &Ids,
    key: &ServerKey,
    editor: Editor<'_>,
    id: &ContactId,
    now: Timestamp,
) -> Result<(Erased, usize), AppError> {
    let erased = erase::erase_contact(conn, key, editor, id, now)?;
    let mut scrubbed = store::scrub_campaign_messages(conn, id, None, &erased.erased_at)?;
    for (other, address) in &erased.sharing {
        scrubbed += store::scrub_campaign_messages(conn, other, Some(address), &erased.erased_at)?;
    }
    for address in [&erased.phone, &erased.email].into_iter().flatten() {
        for message_id in store::scheduled_to(conn, editor.scope.id(), editor.mode, address)? {
            cancel_message(conn, ids, (editor.scope, editor.mode), &message_id, now)?;
        }
        scrubbed += store::scrub_recipient(
            conn,
            editor.scope.id(),
            editor.mode,
            address,
            &erased.erased_at,
        )?;
    }
    Ok((erased, scrubbed))
}

/// One recipient's message of a campaign's fan-out: rendered for its contact, with the share
/// of the campaign's pool it carries (`billing::pools::carve`; zero charge in test mode).
#[derive(Debug, Clone)]
pub struct CampaignMessage<'a> {
    pub scope: &'a WorkspaceScope,
    pub mode: Mode,
    /// The key that launched the campaign (none from a console session).
    pub api_key_id: Option<&'a ApiKeyId>,
    pub campaign_id: &'a CampaignId,
    pub contact_id: &'a ContactId,
    pub channel: billing::Channel,
    /// E.164 or a lower-cased address.
    pub to: &'a str,
    pub sender: Option<&'a str>,
    /// Email: the campaign's From display name (`from_name`), if it has one.
    pub from_name: Option<&'a str>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub segmentation: Option<&'a Segmentation>,
    pub share: Share,
    pub currency: &'a str,
    /// SMS: the route its number takes (`delivery::routes`), stored on the message.
    pub route: Option<String>,
}

/// The messages a fan-out part writes for one campaign: each stored by `create`, all counted in
/// the campaign's stats (its tallies, migration V25) by `finish`, once per part and in the same
/// transaction. Changes of status are counted by the database itself; inserts are counted here
/// because a trigger on every insert would make SQLite journal each one (a sixth of a campaign
/// message's cost).
#[must_use = "the messages are counted in the campaign's stats only by `finish`"]
pub struct CampaignBatch<'conn> {
    conn: &'conn Connection,
    inserts: store::MessageInserts<'conn>,
    campaign_id: CampaignId,
    messages: u64,
    charge_minor: i64,
}

impl<'conn> CampaignBatch<'conn> {
    pub fn new(
        conn: &'conn Connection,
        campaign_id: &CampaignId,
    ) -> Result<CampaignBatch<'conn>, AppError> {
        Ok(CampaignBatch {
            conn,
            inserts: store::MessageInserts::new(conn)?,
            campaign_id: campaign_id.clone(),
            messages: 0,
            charge_minor: 0,
        })
    }

    /// Stores a campaign's message `queued`, due now, marketing. The database allows one
    /// message per campaign and contact: a second is an error, never a second send.
    pub fn create(
        &mut self,
        id: MessageId,
        message: CampaignMessage<'_>,
        now: &str,
    ) -> Result<(), AppError> {
        let charge_minor = message.share.charge_minor;
        self.inserts
            .insert(&campaign_message_row(id, message, now))?;
        self.messages += 1;
        self.charge_minor += charge_minor;
        Ok(())
    }

    /// Counts the batch's messages in the campaign's stats.
    pub fn finish(self) -> Result<(), AppError> {
        if self.messages == 0 {
            return Ok(());
        }
        store::tally_created(
            self.conn,
            self.campaign_id.as_str(),
            self.messages,
            self.charge_minor,
        )
    }
}

fn campaign_message_row(id: MessageId, message: CampaignMessage<'_>, now: &str) -> MessageRow {
    MessageRow {
        id,
        workspace_id: message.scope.id().to_owned(),
        api_key_id: message.api_key_id.cloned(),
        campaign_id: Some(message.campaign_id.to_string()),
        mode: message.mode,
        channel: message.channel,
        category: Category::Marketing,
        to_address: message.to.to_owned(),
        sender: message.sender.map(str::to_owned),
        subject: message.subject,
        text: message.text,
        html: message.html,
        metadata: "{}".to_owned(),
        encoding: message.segmentation.map(|s| s.encoding.as_str().to_owned()),
        segments: message.segmentation.map(|s| s.segments),
        units: message.share.units,
        included_units: message.share.included_units,
        charge_minor: message.share.charge_minor,
        currency: message.currency.to_owned(),
        status: MessageStatus::Queued,
        scheduled_at: None,
        next_attempt_at: now.to_owned(),
        delivery_cycles: 0,
        lease_owner: None,
        lease_expires_at: None,
        provider: None,
        provider_message_id: None,
        error_code: None,
        error_message: None,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
        sent_at: None,
        delivered_at: None,
        failed_at: None,
        cancelled_at: None,
        contact_id: Some(message.contact_id.clone()),
        route: message.route,
        body_purged_at: None,
        from_name: message.from_name.map(str::to_owned),
    }
}

/// Cancels up to `limit` of the campaign's messages that no dispatcher holds yet (`scheduled`
/// or `queued`) and refunds them together: one `refund` ledger row named `ledger_reference`
/// (`billing::pools::refund_together`). Returns how many were cancelled and the amount refunded.
pub fn cancel_campaign_messages(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    campaign_id: &CampaignId,
    (limit, ledger_reference): (usize, &str),
    now: Timestamp,
) -> Result<(usize, i64), AppError> {
    let cancelled =
        store::cancel_campaign_batch(conn, campaign_id.as_str(), limit, &format_timestamp(now))?;
    let references: Vec<&str> = cancelled.iter().map(MessageId::as_str).collect();
    let refunded =
        billing::pools::refund_together(conn, ids, scope, &references, ledger_reference, now)?;
    Ok((
        cancelled.len(),
        refunded.map_or(0, |money| money.amount_minor),
    ))
}

/// A campaign's messages as its stats show them: per status, and what was refunded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignTally {
    pub by_status: Vec<store::StatusCount>,
    /// The charges of its messages that were refunded (cancelled, or failed unsent).
    pub refunded_minor: i64,
}

/// The campaign's messages per status and their refunds.
pub fn campaign_tally(
    conn: &Connection,
    campaign_id: &CampaignId,
) -> Result<CampaignTally, AppError> {
    Ok(CampaignTally {
        by_status: store::campaign_counts(conn, campaign_id.as_str())?,
        refunded_minor: store::campaign_refunded_minor(conn, campaign_id.as_str())?,
    })
}

/// Whether any of the campaign's messages may still be sent.
pub fn campaign_unsettled(conn: &Connection, campaign_id: &CampaignId) -> Result<bool, AppError> {
    store::campaign_unsettled(conn, campaign_id.as_str())
}

/// The campaign's sends, deliveries and failures per minute (`hourly`: per hour), oldest first.
pub fn campaign_timeline(
    conn: &Connection,
    campaign_id: &CampaignId,
    hourly: bool,
) -> Result<Vec<store::TimelinePoint>, AppError> {
    store::campaign_timeline(conn, campaign_id.as_str(), if hourly { 13 } else { 16 })
}

/// The longest history `daily_sends` gives, in days.
pub const MAX_TIMELINE_DAYS: u32 = 90;

/// The workspace's messages of `mode` created per UTC day over the last `days` days (today
/// included), per channel, oldest first; days without any are left out.
pub fn daily_sends(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    days: u32,
    now: Timestamp,
) -> Result<Vec<store::DailySends>, AppError> {
    let first_day = now.date_naive() - chrono::Days::new(u64::from(days.saturating_sub(1)));
    let from = format!("{}T00:00:00.000Z", first_day.format("%Y-%m-%d"));
    store::daily_sends(conn, scope.id(), mode, &from)
}
