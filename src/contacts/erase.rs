//! Erasure (GDPR; docs/rules/contacts.md, "Erasure"): a contact's personal data removed for
//! good. The row stays as a deleted tombstone (`erased_at`) so ids that name it (messages,
//! receipts) still resolve; its memberships go; each of its addresses is remembered only as a
//! keyed hash with the unsubscription of its channel (`suppressions`), so a contact created
//! later with the address starts unsubscribed.

use rusqlite::Connection;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::reach::address_hash;
use crate::contacts::{Editor, store};
use crate::error::AppError;
use crate::ids::ContactId;
use crate::secrets::ServerKey;

/// What an erasure removed: the addresses (for the caller to scrub its own records of them,
/// e.g. the workspace's messages) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub contact_id: ContactId,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The workspace's other contacts of the mode, live or deleted, with one of those
    /// addresses, and which: campaign messages are found by contact, so the caller scrubs
    /// theirs to the address too.
    pub sharing: Vec<(ContactId, String)>,
    pub erased_at: String,
}

/// Erases the contact `id` of the editor's workspace and mode — deleted or not (a deleted
/// contact still holds its data); 404 for an erased one (nothing is left to erase), another
/// workspace's or the other mode's. Every address of the contact is suppressed on its channel:
/// with the contact's own unsubscription when it had one, else from now, by the editor's way
/// (an erasure request is the strongest opt-out there is).
pub fn erase_contact(
    conn: &Connection,
    key: &ServerKey,
    editor: Editor<'_>,
    id: &ContactId,
    now: Timestamp,
) -> Result<Erased, AppError> {
    let workspace_id = editor.scope.id();
    let contact = store::find_unerased_contact(conn, workspace_id, editor.mode, id)?
        .ok_or(AppError::NotFound)?;
    let now = format_timestamp(now);
    let addresses = [
        (
            Channel::Sms,
            contact.phone.as_deref(),
            contact.sms_unsubscribed_at.as_deref(),
            contact.sms_unsubscribed_via,
        ),
        (
            Channel::Email,
            // A deleted contact's email is never the tombstone's empty string (erased rows
            // are not read here), but an empty address is nobody's either way.
            contact.email.as_deref().filter(|email| !email.is_empty()),
            contact.email_unsubscribed_at.as_deref(),
            contact.email_unsubscribed_via,
        ),
    ];
    for (channel, address, since, via) in addresses {
        let Some(address) = address else { continue };
        let record = (since.unwrap_or(&now), via.unwrap_or(editor.via));
        let hash = address_hash(key, channel, address);
        store::insert_suppression(conn, workspace_id, editor.mode, channel, &hash, record)?;
    }
    if !store::erase_contact(conn, workspace_id, editor.mode, id, &now)? {
        return Err(AppError::internal("the contact to erase was not there"));
    }
    let (phone, email) = (
        contact.phone,
        contact.email.filter(|email| !email.is_empty()),
    );
    let mut sharing = Vec::new();
    for address in [&phone, &email].into_iter().flatten() {
        for other in store::contacts_with_address(conn, workspace_id, editor.mode, address)? {
            sharing.push((other, address.clone()));
        }
    }
    Ok(Erased {
        contact_id: contact.id,
        phone,
        email,
        sharing,
        erased_at: now,
    })
}
