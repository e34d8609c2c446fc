//! What delivery receipts change: a `sent` message becomes `delivered` or `failed`, and a
//! receipt saying the number itself is bad (`Failed { unreachable: true }`) marks the phone
//! `unreachable` on the workspace's contact with it (same mode as the message) — in the
//! transaction that moves the message, through the contacts domain.
//!
//! Email relays' bounces and complaints (`email_events`) go the same way: a bounce fails a
//! `sent` message and marks the address `bounced`, a complaint marks it `complained`, on the
//! contact with the message's address in the message's workspace and mode.

use rusqlite::Connection;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::reach;
use crate::contacts::{EmailState, PhoneState};
use crate::delivery::email_events::{EmailEvent, EmailEventKind};
use crate::delivery::{Receipt, ReceiptStatus};
use crate::error::AppError;
use crate::ids::WorkspaceId;
use crate::messages::store;
use crate::scope::WorkspaceScope;

/// Applies `receipts` from `provider` inside the caller's write transaction. Returns how many
/// moved a message. A receipt for a message not (yet) known, or not `sent`, changes nothing.
pub fn apply_receipts(
    conn: &Connection,
    provider: &str,
    receipts: &[Receipt],
    now: Timestamp,
) -> Result<u64, AppError> {
    apply_receipts_in(conn, None, provider, receipts, now)
}

/// `apply_receipts` for a workspace's own provider account: only that workspace's messages
/// change (another's, whatever id the receipt names, are left alone).
pub fn apply_account_receipts(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    provider: &str,
    receipts: &[Receipt],
    now: Timestamp,
) -> Result<u64, AppError> {
    apply_receipts_in(conn, Some(workspace_id), provider, receipts, now)
}

fn apply_receipts_in(
    conn: &Connection,
    workspace_id: Option<&WorkspaceId>,
    provider: &str,
    receipts: &[Receipt],
    now: Timestamp,
) -> Result<u64, AppError> {
    let now_text = format_timestamp(now);
    let mut applied = 0u64;
    for receipt in receipts {
        let (delivered, unreachable) = match receipt.status {
            ReceiptStatus::Pending => continue,
            ReceiptStatus::Delivered => (true, false),
            ReceiptStatus::Failed { unreachable } => (false, unreachable),
        };
        let Some(message) =
            store::find_by_provider_id(conn, provider, &receipt.provider_message_id)?
                .filter(|message| workspace_id.is_none_or(|id| *id == message.workspace_id))
        else {
            continue;
        };
        let error = (
            receipt.error_code.as_deref(),
            receipt.error_message.as_deref(),
        );
        if !store::apply_receipt(conn, &message.id, delivered, error, &now_text)? {
            continue;
        }
        applied += 1;
        if unreachable && message.channel == Channel::Sms {
            // The message's own workspace: crier acting on a row it stores.
            let scope = WorkspaceScope::trusted(&message.workspace_id);
            reach::mark_phone(
                conn,
                (&scope, message.mode),
                &message.to_address,
                PhoneState::Unreachable,
                now,
            )?;
        }
    }
    Ok(applied)
}

/// Applies a relay's bounces and complaints inside the caller's write transaction. Returns how
/// many changed something (a message failed, or a contact's `email_state`). An event that
/// names no message crier sent, a message of another channel, or an address other than the
/// message's changes nothing; so does one already applied (a replay).
pub fn apply_email_events(
    conn: &Connection,
    events: &[EmailEvent],
    now: Timestamp,
) -> Result<u64, AppError> {
    let now_text = format_timestamp(now);
    let mut applied = 0u64;
    for event in events {
        let Some(message_id) = &event.message_id else {
            continue;
        };
        let Some(message) = store::find_by_id(conn, message_id)? else {
            continue;
        };
        if message.channel != Channel::Email || message.to_address != event.recipient {
            continue;
        }
        let (moved, state) = match event.kind {
            EmailEventKind::Bounce => {
                let reason = event
                    .reason
                    .as_deref()
                    .unwrap_or("The receiving server refused the message for good (a bounce).");
                let moved = store::apply_receipt(
                    conn,
                    &message.id,
                    false,
                    (Some("bounced"), Some(reason)),
                    &now_text,
                )?;
                (moved, EmailState::Bounced)
            }
            EmailEventKind::Complaint => (false, EmailState::Complained),
        };
        // The message's own workspace: crier acting on a row it stores.
        let scope = WorkspaceScope::trusted(&message.workspace_id);
        let marked = reach::mark_email(
            conn,
            (&scope, message.mode),
            &message.to_address,
            state,
            now,
        )?;
        if moved || marked {
            applied += 1;
        }
    }
    Ok(applied)
}

/// STOP keywords that came through a workspace's own provider account (`phones`, E.164):
/// unsubscribes the workspace's live contacts with those phones from SMS (those it has written
/// to), no other workspace's. Returns how many contacts changed.
pub fn apply_account_stops(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    phones: &[String],
    now: Timestamp,
) -> Result<usize, AppError> {
    // The account's own workspace: crier acting on a row it stores.
    let scope = WorkspaceScope::trusted(workspace_id);
    let mut changed = 0;
    for phone in phones {
        changed +=
            crate::contacts::unsubscribe::unsubscribe_by_keyword_in(conn, &scope, phone, now)?;
    }
    Ok(changed)
}
