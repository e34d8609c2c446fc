//! Whether a send may reach an address, and what delivery learns about addresses
//! (docs/rules/contacts.md, "Sending to contacts"; docs/rules/messages.md, "Recipients").
//!
//! The send path asks `check_recipient` inside its one write transaction: one lookup in the
//! unique index of (workspace, mode, phone | email) among contacts not deleted, and for a
//! marketing send to a stranger one primary-key lookup of the suppressions. Delivery reports
//! bad numbers and addresses through `mark_phone` / `mark_email`, in the transaction that
//! settles the message.

use rusqlite::Connection;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::store::{self, Address, ContactRow};
use crate::contacts::{EmailState, Language, PhoneState};
use crate::error::AppError;
use crate::ids::{ContactId, Ids};
use crate::scope::WorkspaceScope;
use crate::secrets::ServerKey;
use crate::vocabulary::Mode;

/// What the keyed hash of an erased address signs first (the key also signs tokens).
const SUPPRESSION_PURPOSE: &[u8] = b"crier erased address";

/// The keyed hash under which an erased address is remembered: HMAC-SHA256 with the server
/// key, so the table alone does not tell whose address it was (a plain hash of a phone number
/// is reversed by trying them all).
pub fn address_hash(key: &ServerKey, channel: Channel, address: &str) -> [u8; 32] {
    key.sign(&[
        SUPPRESSION_PURPOSE,
        channel.as_str().as_bytes(),
        address.as_bytes(),
    ])
}

fn address_of(channel: Channel, address: &str) -> Address<'_> {
    match channel {
        Channel::Sms => Address::Phone(address),
        Channel::Email => Address::Email(address),
    }
}

crate::text_enum! {
    /// Why a marketing message on a channel leaves a contact out (a campaign counts each).
    pub enum Exclusion {
        /// The contact has no phone (SMS) or no email (email).
        NoAddress = "no_address",
        /// The contact unsubscribed from the channel.
        Unsubscribed = "unsubscribed",
        /// The phone is `invalid` or `unreachable`; the email `invalid`.
        Invalid = "invalid",
        /// The email bounced.
        Bounced = "bounced",
        /// The email's owner marked a message as spam.
        Complained = "complained",
    }
}

/// `Exclusion` as SQL over `contacts c`: the reason's text, or NULL when a marketing message on
/// `channel` may go to the contact — the rule `check_recipient` keeps for one marketing send.
pub fn exclusion_sql(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => {
            "CASE WHEN c.phone IS NULL THEN 'no_address'
                  WHEN c.sms_unsubscribed_at IS NOT NULL THEN 'unsubscribed'
                  WHEN c.phone_state <> 'valid' THEN 'invalid' END"
        }
        Channel::Email => {
            "CASE WHEN c.email IS NULL THEN 'no_address'
                  WHEN c.email_unsubscribed_at IS NOT NULL THEN 'unsubscribed'
                  WHEN c.email_state = 'bounced' THEN 'bounced'
                  WHEN c.email_state = 'complained' THEN 'complained'
                  WHEN c.email_state <> 'valid' THEN 'invalid' END"
        }
    }
}

/// Checks a send to `address` (E.164 or a lower-cased email) against what the workspace knows
/// of it in `mode`, and returns its contact, if any.
///
/// - A marketing send is refused (`recipient_unsubscribed`) when the contact unsubscribed from
///   the channel, or — no contact — when the address was erased (suppressed); and
///   (`recipient_invalid`) when the phone is `invalid` or `unreachable`, the email `invalid`,
///   `bounced` or `complained`.
/// - A transactional send ignores unsubscriptions (and complaints, which are about the mail,
///   not the mailbox) but is refused (`recipient_invalid`) when the phone is `invalid`, the
///   email `invalid` or `bounced`.
pub fn check_recipient(
    conn: &Connection,
    key: &ServerKey,
    (scope, mode): (&WorkspaceScope, Mode),
    channel: Channel,
    address: &str,
    marketing: bool,
) -> Result<Option<ContactId>, AppError> {
    let workspace_id = scope.id();
    let Some(contact) =
        store::find_contact_with(conn, workspace_id, mode, address_of(channel, address))?
    else {
        if marketing {
            let hash = address_hash(key, channel, address);
            if store::find_suppression(conn, workspace_id, mode, channel, &hash)?.is_some() {
                return Err(AppError::RecipientUnsubscribed(format!(
                    "This address was erased from the workspace's contacts and unsubscribed \
                     from {channel}; marketing is not sent to it."
                )));
            }
        }
        return Ok(None);
    };
    let unsubscribed = match channel {
        Channel::Sms => contact.sms_unsubscribed_at.is_some(),
        Channel::Email => contact.email_unsubscribed_at.is_some(),
    };
    if marketing && unsubscribed {
        return Err(AppError::RecipientUnsubscribed(format!(
            "The contact {} unsubscribed from {channel}; marketing is not sent to it \
             (transactional messages still are).",
            contact.id
        )));
    }
    let bad_state = match channel {
        Channel::Sms => match contact.phone_state {
            PhoneState::Valid => None,
            PhoneState::Unreachable if !marketing => None,
            state => Some(state.as_str()),
        },
        Channel::Email => match contact.email_state {
            EmailState::Valid => None,
            // A complaint is about the mail, not the mailbox: transactional email still goes.
            EmailState::Complained if !marketing => None,
            state => Some(state.as_str()),
        },
    };
    if let Some(state) = bad_state {
        return Err(AppError::RecipientInvalid(format!(
            "The address of contact {} is {state}; it is not sent to.",
            contact.id
        )));
    }
    Ok(Some(contact.id))
}

/// The contact a marketing send to a stranger creates, so the opt-out its unsubscribe link
/// offers has somewhere to live: named after its address, in the workspace and mode of the
/// send, inside the send's transaction. An erased (suppressed) address starts unsubscribed.
pub fn create_contact_for_address(
    conn: &Connection,
    ids: &Ids,
    key: &ServerKey,
    (scope, mode): (&WorkspaceScope, Mode),
    channel: Channel,
    address: &str,
    now: Timestamp,
) -> Result<ContactId, AppError> {
    let now = format_timestamp(now);
    let (phone, email) = match channel {
        Channel::Sms => (Some(address.to_owned()), None),
        Channel::Email => (None, Some(address.to_owned())),
    };
    let mut contact = ContactRow {
        id: ContactId::generate(ids),
        workspace_id: scope.id().clone(),
        mode,
        name: address.to_owned(),
        first_name: None,
        last_name: None,
        phone_input: phone.clone(),
        phone,
        email,
        language: None,
        custom: "{}".to_owned(),
        phone_state: PhoneState::Valid,
        email_state: EmailState::Valid,
        sms_unsubscribed_at: None,
        sms_unsubscribed_via: None,
        email_unsubscribed_at: None,
        email_unsubscribed_via: None,
        created_at: now.clone(),
        updated_at: now,
    };
    apply_suppressions(conn, key, &mut contact)?;
    store::insert_contact(conn, &contact, None)?;
    Ok(contact.id)
}

/// Unsubscribes `contact` (before it is written) from each channel whose address was erased
/// from its workspace and mode, with the erased unsubscription's time and way: a person who
/// asked to be forgotten is not added back and written to again. Every way a contact is created
/// (the API, an import, a marketing send) calls this.
pub fn apply_suppressions(
    conn: &Connection,
    key: &ServerKey,
    contact: &mut ContactRow,
) -> Result<(), AppError> {
    let channels = [
        (
            Channel::Sms,
            contact.phone.as_deref(),
            &mut contact.sms_unsubscribed_at,
            &mut contact.sms_unsubscribed_via,
        ),
        (
            Channel::Email,
            contact.email.as_deref(),
            &mut contact.email_unsubscribed_at,
            &mut contact.email_unsubscribed_via,
        ),
    ];
    for (channel, address, at, via) in channels {
        let Some(address) = address else { continue };
        if at.is_some() {
            continue;
        }
        let hash = address_hash(key, channel, address);
        if let Some((since, how)) =
            store::find_suppression(conn, &contact.workspace_id, contact.mode, channel, &hash)?
        {
            *at = Some(since);
            *via = Some(how);
        }
    }
    Ok(())
}

/// Delivery learned that `phone` is bad (`unreachable`, or `invalid`): the workspace's contact
/// with it in `mode` says so from now on. Returns whether a contact changed.
pub fn mark_phone(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    phone: &str,
    state: PhoneState,
    now: Timestamp,
) -> Result<bool, AppError> {
    store::set_phone_state(conn, scope.id(), mode, phone, state, &format_timestamp(now))
}

/// As `mark_phone`, for an email address (`bounced`, `invalid`, `complained`).
pub fn mark_email(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    email: &str,
    state: EmailState,
    now: Timestamp,
) -> Result<bool, AppError> {
    store::set_email_state(conn, scope.id(), mode, email, state, &format_timestamp(now))
}

/// The language of a contact (not deleted), which its marketing email's unsubscribe line is
/// written in; `None` when it has none or is gone.
pub fn language_of(conn: &Connection, id: &ContactId) -> Result<Option<Language>, AppError> {
    store::find_language(conn, id)
}
