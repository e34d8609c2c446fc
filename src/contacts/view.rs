//! A contact as the API shows it: one view shared by the contact routes, segment previews and
//! the `contact.unsubscribed` webhook event.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::contacts::store::ContactRow;
use crate::contacts::{EmailState, Language, PhoneState, UnsubscribeVia};
use crate::error::AppError;
use crate::vocabulary::Mode;

/// A contact as the API shows it. A channel's state is `null` when the contact has no address
/// on it.
#[derive(Serialize)]
pub struct ContactView<'a> {
    pub id: &'a str,
    pub mode: Mode,
    pub name: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub phone_input: Option<&'a str>,
    pub email: Option<&'a str>,
    pub language: Option<Language>,
    pub custom: Option<&'a RawValue>,
    pub phone_state: Option<PhoneState>,
    pub email_state: Option<EmailState>,
    pub sms_unsubscribed_at: Option<&'a str>,
    pub sms_unsubscribed_via: Option<UnsubscribeVia>,
    pub email_unsubscribed_at: Option<&'a str>,
    pub email_unsubscribed_via: Option<UnsubscribeVia>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

pub fn contact_view(contact: &ContactRow) -> ContactView<'_> {
    ContactView {
        id: contact.id.as_str(),
        mode: contact.mode,
        name: &contact.name,
        first_name: contact.first_name.as_deref(),
        last_name: contact.last_name.as_deref(),
        phone: contact.phone.as_deref(),
        phone_input: contact.phone_input.as_deref(),
        email: contact.email.as_deref(),
        language: contact.language,
        // Stored as a JSON object written by crier; shown as is.
        custom: serde_json::from_str::<&RawValue>(&contact.custom).ok(),
        phone_state: contact.phone.as_ref().map(|_| contact.phone_state),
        email_state: contact.email.as_ref().map(|_| contact.email_state),
        sms_unsubscribed_at: contact.sms_unsubscribed_at.as_deref(),
        sms_unsubscribed_via: contact.sms_unsubscribed_via,
        email_unsubscribed_at: contact.email_unsubscribed_at.as_deref(),
        email_unsubscribed_via: contact.email_unsubscribed_via,
        created_at: &contact.created_at,
        updated_at: &contact.updated_at,
    }
}

/// The contact `id` of the workspace and mode as the API shows it, for an event; `None` when
/// there is none (or it was deleted).
pub fn find_json(
    conn: &rusqlite::Connection,
    workspace_id: &crate::ids::WorkspaceId,
    mode: Mode,
    id: &str,
) -> Result<Option<serde_json::Value>, AppError> {
    let Some(id) = crate::ids::ContactId::parse(id) else {
        return Ok(None);
    };
    let contact = crate::contacts::store::find_contact(conn, workspace_id, mode, &id)?;
    contact
        .map(|contact| serde_json::to_value(contact_view(&contact)))
        .transpose()
        .map_err(AppError::internal)
}
