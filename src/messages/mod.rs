//! Messages (docs/rules/messages.md): a send's parts (segments, recipients, composition), the send
//! itself — priced, reserved and stored in one transaction — and the message as the API shows
//! it. Delivery (the outbox dispatcher and providers) lives in `crate::delivery`.

pub mod compose;
pub mod segments;
pub mod store;

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::{self, Charging, Usage};
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{ApiKeyId, Ids, MessageId};
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;
use compose::Composition;
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

/// Who sends: the workspace, and the API key (if any) and its mode.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub scope: &'a WorkspaceScope,
    pub api_key_id: Option<&'a ApiKeyId>,
    pub charging: Charging,
}

/// Prices the composed message, reserves its units and charge (nothing for test mode), and
/// stores it `queued` (due now) or `scheduled` — all inside the caller's write transaction, so
/// either all of it happens or none. 402 `insufficient_funds` when the wallet cannot pay.
pub fn create_message(
    conn: &Connection,
    ids: &Ids,
    catalog: &Catalog,
    origin: Origin<'_>,
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
    let now_text = format_timestamp(now);
    let scheduled_at = composition.scheduled_at.map(format_timestamp);
    let segmentation = composition.segmentation.as_ref();
    let message = MessageRow {
        id,
        workspace_id: origin.scope.id().to_owned(),
        api_key_id: origin.api_key_id.cloned(),
        campaign_id: None,
        mode: match origin.charging {
            Charging::Live => Mode::Live,
            Charging::Test => Mode::Test,
        },
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
    };
    store::insert_message(conn, &message)?;
    Ok(message)
}

/// Cancels a scheduled message and gives back what it reserved, once. A message already
/// cancelled stays as it is (cancelling twice is not an error); any other status is a 409.
pub fn cancel_message(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    id: &MessageId,
    now: Timestamp,
) -> Result<(), AppError> {
    let workspace_id = scope.id();
    let message = store::find_message(conn, workspace_id, id)?.ok_or(AppError::NotFound)?;
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
