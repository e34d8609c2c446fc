//! What delivery receipts change: a `sent` message becomes `delivered` or `failed`, and a
//! receipt saying the number itself is bad (`Failed { unreachable: true }`) marks the phone
//! `unreachable` on the workspace's contact with it (same mode as the message) — in the
//! transaction that moves the message, through the contacts domain.

use rusqlite::Connection;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::PhoneState;
use crate::contacts::reach;
use crate::delivery::{Receipt, ReceiptStatus};
use crate::error::AppError;
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
