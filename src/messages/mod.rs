//! Messages (docs/rules/messages.md): a send's parts (segments, recipients, composition), the send
//! itself — priced, reserved and stored in one transaction — and the message as the API shows
//! it. Delivery (the outbox dispatcher and providers) lives in `crate::delivery`.

pub mod compose;
pub mod recipients;
pub mod segments;
pub mod store;

use rusqlite::Connection;

use crate::billing::catalog::Catalog;
use crate::billing::{self, Charging, Usage};
use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::Ids;
use crate::money::Money;
use compose::Composition;
use store::{AttemptRow, MessageRow};

/// Who sends: the workspace, and the API key (if any) and its mode.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub workspace_id: &'a str,
    pub api_key_id: Option<&'a str>,
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
    let id = ids.new_id("msg");
    let quote = billing::reserve(
        conn,
        ids,
        catalog,
        Usage {
            workspace_id: origin.workspace_id,
            channel: composition.channel,
            units: composition.units,
            reference: &id,
            charging: origin.charging,
        },
        now,
    )?;
    let now_text = format_timestamp(now);
    let scheduled_at = composition.scheduled_at.map(format_timestamp);
    let segmentation = composition.segmentation.as_ref();
    let message = MessageRow {
        id,
        workspace_id: origin.workspace_id.to_owned(),
        api_key_id: origin.api_key_id.map(str::to_owned),
        campaign_id: None,
        mode: match origin.charging {
            Charging::Live => "live",
            Charging::Test => "test",
        }
        .to_owned(),
        channel: composition.channel.as_str().to_owned(),
        category: composition.category.as_str().to_owned(),
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
            "scheduled"
        } else {
            "queued"
        }
        .to_owned(),
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
    workspace_id: &str,
    id: &str,
    now: Timestamp,
) -> Result<(), AppError> {
    let message = store::find_message(conn, workspace_id, id)?.ok_or(AppError::NotFound)?;
    match message.status.as_str() {
        "cancelled" => return Ok(()),
        "scheduled" => {}
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
    billing::refund(conn, ids, id, now)?;
    Ok(())
}

/// The message as the API shows it. `detail` adds the bodies' HTML, the attempts and the refund.
pub fn message_view(
    message: &MessageRow,
    detail: Option<(&[AttemptRow], Option<String>)>,
) -> serde_json::Value {
    let metadata: serde_json::Value =
        serde_json::from_str(&message.metadata).unwrap_or_else(|_| serde_json::json!({}));
    let error = message
        .error_code
        .as_ref()
        .map(|code| serde_json::json!({ "code": code, "message": message.error_message }));
    let mut view = serde_json::json!({
        "id": message.id,
        "status": message.status,
        "channel": message.channel,
        "category": message.category,
        "mode": message.mode,
        "to": message.to_address,
        "sender": message.sender,
        "subject": message.subject,
        "text": message.text,
        "encoding": message.encoding,
        "segments": message.segments,
        "units": message.units,
        "included_units": message.included_units,
        "charge": Money::new(message.charge_minor, &message.currency),
        "charged": message.mode == "live",
        "metadata": metadata,
        "campaign_id": message.campaign_id,
        "api_key_id": message.api_key_id,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "delivery_cycles": message.delivery_cycles,
        "next_attempt_at": (message.status == "queued").then_some(&message.next_attempt_at),
        "error": error,
        "scheduled_at": message.scheduled_at,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
        "sent_at": message.sent_at,
        "delivered_at": message.delivered_at,
        "failed_at": message.failed_at,
        "cancelled_at": message.cancelled_at,
    });
    if let (Some((attempts, refunded_at)), Some(object)) = (detail, view.as_object_mut()) {
        object.insert("html".to_owned(), serde_json::json!(message.html));
        object.insert("refunded_at".to_owned(), serde_json::json!(refunded_at));
        let attempts: Vec<serde_json::Value> = attempts
            .iter()
            .map(|attempt| {
                serde_json::json!({
                    "attempt": attempt.attempt_no,
                    "delivery_cycle": attempt.delivery_cycle,
                    "provider": attempt.provider,
                    "outcome": attempt.outcome,
                    "provider_message_id": attempt.provider_message_id,
                    "error": attempt.error_code.as_ref().map(|code| serde_json::json!({ "code": code, "message": attempt.error_message })),
                    "duration_ms": attempt.duration_ms,
                    "created_at": attempt.created_at,
                })
            })
            .collect();
        object.insert("attempts".to_owned(), serde_json::Value::Array(attempts));
    }
    view
}
