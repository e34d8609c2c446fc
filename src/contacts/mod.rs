//! Contacts (docs/rules/contacts.md): the people a workspace writes to, each in one mode (live
//! or test, two worlds that never meet), with a phone and/or an email unique per workspace and
//! mode, per-channel state and unsubscriptions, and custom field values checked against the
//! workspace's definitions (`fields`).

pub mod erase;
pub mod export;
pub mod fields;
pub mod groups;
pub mod imports;
pub mod reach;
pub mod rules;
pub mod segments;
pub mod store;
pub mod unsubscribe;
pub mod view;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::{Timestamp, format_timestamp};
use crate::error::{AppError, FieldErrors};
use crate::ids::{ContactId, Ids, WorkspaceId};
use crate::recipients::{normalize_email, normalize_phone};
use crate::scope::WorkspaceScope;
use crate::secrets::ServerKey;
use crate::validate;
use crate::vocabulary::Mode;
use fields::one_of;
use store::{Address, ContactRow};

const MAX_NAME_LENGTH: usize = 200;
const MAX_NAME_PART_LENGTH: usize = 100;

crate::text_enum! {
    /// Whether SMS can reach a contact's phone. New phones start `valid`.
    pub enum PhoneState {
        Valid = "valid",
        Invalid = "invalid",
        Unreachable = "unreachable",
    }
}

crate::text_enum! {
    /// Whether email can reach a contact's address. New addresses start `valid`.
    pub enum EmailState {
        Valid = "valid",
        Invalid = "invalid",
        Bounced = "bounced",
        Complained = "complained",
    }
}

crate::text_enum! {
    /// How a contact unsubscribed from a channel.
    pub enum UnsubscribeVia {
        Link = "link",
        OneClick = "one_click",
        SmsKeyword = "sms_keyword",
        Api = "api",
        Console = "console",
        Import = "import",
    }
}

crate::text_enum! {
    /// The language a contact is written to in.
    pub enum Language {
        En = "en",
        Fr = "fr",
    }
}

/// Who is writing, for the record of an unsubscription: the workspace, the mode of the contacts
/// it works on, and how a change made now is recorded (`api` for keys, `console` for sessions).
#[derive(Debug, Clone, Copy)]
pub struct Editor<'a> {
    pub scope: &'a WorkspaceScope,
    pub mode: Mode,
    pub via: UnsubscribeVia,
}

/// The body of `POST /v1/contacts`. Optional here so every problem is reported at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub language: Option<String>,
    #[serde(default)]
    pub custom: Map<String, Value>,
}

/// The body of `PATCH /v1/contacts/{id}`. An absent field stays as it is; `null` clears it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactChanges {
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub language: Option<Option<String>>,
    /// Values to set; `null` removes one. Keys not named stay.
    pub custom: Option<Map<String, Value>>,
    pub unsubscribed: Option<Unsubscribed>,
}

/// `{"sms": true}` unsubscribes from SMS, `false` resubscribes; an absent channel stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribed {
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub sms: Option<bool>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub email: Option<bool>,
}

/// The first word of a name, and the rest (if any).
fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let mut words = name.split_whitespace();
    let first = words.next().map(str::to_owned);
    let rest: Vec<&str> = words.collect();
    (first, (!rest.is_empty()).then(|| rest.join(" ")))
}

fn checked_name(raw: Option<&str>, errors: &mut FieldErrors) -> Option<String> {
    match validate::line(raw.unwrap_or_default(), 1, MAX_NAME_LENGTH) {
        Ok(name) => Some(name),
        Err(reason) => {
            errors.add("name", reason);
            None
        }
    }
}

fn checked_name_part(field: &str, raw: &str, errors: &mut FieldErrors) -> Option<String> {
    match validate::line(raw, 1, MAX_NAME_PART_LENGTH) {
        Ok(part) => Some(part),
        Err(reason) => {
            errors.add(field, reason);
            None
        }
    }
}

/// The phone in E.164 and as typed.
fn checked_phone(
    raw: &str,
    default_country: &str,
    errors: &mut FieldErrors,
) -> Option<(String, String)> {
    match normalize_phone(raw, default_country) {
        Ok(phone) => Some((phone, raw.trim().to_owned())),
        Err(reason) => {
            errors.add("phone", reason);
            None
        }
    }
}

fn checked_email(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    normalize_email(raw)
        .map_err(|reason| errors.add("email", reason))
        .ok()
}

fn checked_language(raw: &str, errors: &mut FieldErrors) -> Option<Language> {
    let language = Language::parse(raw);
    if language.is_none() {
        errors.add("language", one_of(Language::ALL));
    }
    language
}

fn parse_custom(stored: &str) -> Result<Map<String, Value>, AppError> {
    serde_json::from_str(stored).map_err(AppError::internal)
}

fn custom_text(custom: &Map<String, Value>) -> Result<String, AppError> {
    serde_json::to_string(custom).map_err(AppError::internal)
}

/// 409 naming the contact of the same workspace and mode (other than `except`) that already
/// has this phone or email.
fn ensure_unique(
    conn: &Connection,
    contact: &ContactRow,
    except: Option<&ContactId>,
) -> Result<(), AppError> {
    let (workspace_id, mode) = (&contact.workspace_id, contact.mode);
    let duplicate = |what: &str, existing: ContactId| AppError::Duplicate {
        message: format!("The contact {existing} already has this {what}."),
        existing_id: existing.to_string(),
    };
    let addresses = [
        ("phone", contact.phone.as_deref().map(Address::Phone)),
        ("email", contact.email.as_deref().map(Address::Email)),
    ];
    for (what, address) in addresses {
        if let Some(address) = address
            && let Some(existing) = store::find_contact_id_with(conn, workspace_id, mode, address)?
            && Some(&existing) != except
        {
            return Err(duplicate(what, existing));
        }
    }
    Ok(())
}

/// A contact needs an address; said only when neither address was refused for its own reason.
fn require_phone_or_email(has_phone: bool, has_email: bool, errors: &mut FieldErrors) {
    let refused = errors.contains("phone") || errors.contains("email");
    if !has_phone && !has_email && !refused {
        errors.add("phone", "a contact needs a phone or an email");
        errors.add("email", "a contact needs a phone or an email");
    }
}

/// A new contact's fields, checked and normalised as `POST /v1/contacts` checks them, before it
/// has an id, an owner or times. `phone`, `email` and `language` are `None` when not given;
/// `first_name` and `last_name` are derived from `name` unless given.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedContact {
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// E.164, and the text as typed.
    pub phone: Option<(String, String)>,
    pub email: Option<String>,
    pub language: Option<Language>,
    pub custom: Map<String, Value>,
}

/// The one check of a new contact, shared by `POST /v1/contacts` and the CSV import: every
/// problem at once, as `FieldErrors`. Needs no database (the workspace's custom field
/// `definitions` are passed in), so an import runs it outside its write transaction.
pub fn check_new_contact(
    input: NewContact,
    definitions: &[store::FieldRow],
    default_country: &str,
) -> Result<CheckedContact, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = checked_name(input.name.as_deref(), &mut errors).unwrap_or_default();
    let (derived_first, derived_last) = split_name(&name);
    let first_name = match input.first_name {
        Some(raw) => checked_name_part("first_name", &raw, &mut errors),
        None => derived_first,
    };
    let last_name = match input.last_name {
        Some(raw) => checked_name_part("last_name", &raw, &mut errors),
        None => derived_last,
    };
    let phone = input
        .phone
        .and_then(|raw| checked_phone(&raw, default_country, &mut errors));
    let email = input.email.and_then(|raw| checked_email(&raw, &mut errors));
    let language = input
        .language
        .and_then(|raw| checked_language(&raw, &mut errors));
    let custom = fields::apply_values(definitions, Map::new(), input.custom, &mut errors);
    require_phone_or_email(phone.is_some(), email.is_some(), &mut errors);
    if errors.is_empty() {
        Ok(CheckedContact {
            name,
            first_name,
            last_name,
            phone,
            email,
            language,
            custom,
        })
    } else {
        Err(errors)
    }
}

impl CheckedContact {
    /// The row of a new contact of the editor's workspace and mode, created `now`.
    pub fn into_row(
        self,
        id: ContactId,
        workspace_id: &crate::ids::WorkspaceId,
        mode: Mode,
        now: &str,
    ) -> Result<ContactRow, AppError> {
        let (phone, phone_input) = self.phone.unzip();
        Ok(ContactRow {
            id,
            workspace_id: workspace_id.clone(),
            mode,
            name: self.name,
            first_name: self.first_name,
            last_name: self.last_name,
            phone,
            phone_input,
            email: self.email,
            language: self.language,
            custom: custom_text(&self.custom)?,
            phone_state: PhoneState::Valid,
            email_state: EmailState::Valid,
            sms_unsubscribed_at: None,
            sms_unsubscribed_via: None,
            email_unsubscribed_at: None,
            email_unsubscribed_via: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        })
    }

    /// Writes what this check gives over `contact` (an existing one): the name with its parts,
    /// and the phone, email, language and custom values that were given; what was not given
    /// stays. Returns whether anything changed (`updated_at` is the caller's).
    pub fn merge_into(&self, contact: &mut ContactRow) -> Result<bool, AppError> {
        let before = contact.clone();
        contact.name.clone_from(&self.name);
        contact.first_name.clone_from(&self.first_name);
        contact.last_name.clone_from(&self.last_name);
        if let Some((phone, input)) = &self.phone {
            if contact.phone.as_ref() != Some(phone) {
                contact.phone_state = PhoneState::Valid;
                contact.phone = Some(phone.clone());
            }
            contact.phone_input = Some(input.clone());
        }
        if let Some(email) = &self.email
            && contact.email.as_ref() != Some(email)
        {
            contact.email_state = EmailState::Valid;
            contact.email = Some(email.clone());
        }
        if self.language.is_some() {
            contact.language = self.language;
        }
        if !self.custom.is_empty() {
            let mut custom = parse_custom(&contact.custom)?;
            let mut changed = false;
            for (key, value) in &self.custom {
                if custom.get(key) != Some(value) {
                    custom.insert(key.clone(), value.clone());
                    changed = true;
                }
            }
            if changed {
                contact.custom = custom_text(&custom)?;
            }
        }
        Ok(*contact != before)
    }
}

/// Creates a contact in the editor's mode. 422 with every bad field; 409 naming the contact
/// that already has the phone or email. An address erased from the workspace and mode before
/// starts unsubscribed from its channel (`reach::apply_suppressions`, under `key`).
pub fn create_contact(
    conn: &Connection,
    ids: &Ids,
    key: &ServerKey,
    editor: Editor<'_>,
    input: NewContact,
    default_country: &str,
    now: Timestamp,
) -> Result<ContactRow, AppError> {
    let definitions = store::list_fields(conn, editor.scope.id(), None, None)?;
    let checked =
        check_new_contact(input, &definitions, default_country).map_err(AppError::Validation)?;
    let mut contact = checked.into_row(
        ContactId::generate(ids),
        editor.scope.id(),
        editor.mode,
        &format_timestamp(now),
    )?;
    ensure_unique(conn, &contact, None)?;
    reach::apply_suppressions(conn, key, &mut contact)?;
    store::insert_contact(conn, &contact, None)?;
    Ok(contact)
}

/// The contact `id` in the editor's workspace and mode (404 for any other, or a deleted one).
pub fn find_contact(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &ContactId,
) -> Result<ContactRow, AppError> {
    store::find_contact(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

/// The id, workspace and mode of the contact at `rowid` (deleted and erased contacts keep
/// theirs): who a campaign's short link was made for.
pub fn contact_at_rowid(
    conn: &Connection,
    rowid: i64,
) -> Result<Option<(ContactId, WorkspaceId, Mode)>, AppError> {
    store::contact_at_rowid(conn, rowid)
}

/// Sets (`Some(at)`) or clears an unsubscription; an unchanged one keeps its first time and way.
fn apply_unsubscription(
    wanted: Option<bool>,
    at: &mut Option<String>,
    via: &mut Option<UnsubscribeVia>,
    editor: Editor<'_>,
    now: &str,
) {
    match wanted {
        Some(true) if at.is_none() => {
            *at = Some(now.to_owned());
            *via = Some(editor.via);
        }
        Some(false) => {
            *at = None;
            *via = None;
        }
        _ => {}
    }
}

/// Applies a PATCH to a contact of the editor's workspace and mode, checked as on creation.
pub fn update_contact(
    conn: &Connection,
    editor: Editor<'_>,
    id: &ContactId,
    changes: ContactChanges,
    default_country: &str,
    now: Timestamp,
) -> Result<ContactRow, AppError> {
    let mut contact = find_contact(conn, editor.scope, editor.mode, id)?;
    let mut errors = FieldErrors::new();
    let now = format_timestamp(now);
    let mut renamed = false;
    if let Some(raw) = changes.name
        && let Some(name) = checked_name(raw.as_deref(), &mut errors)
    {
        contact.name = name;
        renamed = true;
    }
    let (derived_first, derived_last) = split_name(&contact.name);
    match changes.first_name {
        Some(Some(raw)) => contact.first_name = checked_name_part("first_name", &raw, &mut errors),
        Some(None) => contact.first_name = derived_first,
        None if renamed => contact.first_name = derived_first,
        None => {}
    }
    match changes.last_name {
        Some(Some(raw)) => contact.last_name = checked_name_part("last_name", &raw, &mut errors),
        Some(None) => contact.last_name = derived_last,
        None if renamed => contact.last_name = derived_last,
        None => {}
    }
    if let Some(raw) = changes.phone {
        let phone = raw.and_then(|raw| checked_phone(&raw, default_country, &mut errors));
        let (phone, phone_input) = phone.unzip();
        if phone != contact.phone {
            // A new number has not failed yet.
            contact.phone_state = PhoneState::Valid;
        }
        (contact.phone, contact.phone_input) = (phone, phone_input);
    }
    if let Some(raw) = changes.email {
        let email = raw.and_then(|raw| checked_email(&raw, &mut errors));
        if email != contact.email {
            contact.email_state = EmailState::Valid;
        }
        contact.email = email;
    }
    if let Some(raw) = changes.language {
        contact.language = raw.and_then(|raw| checked_language(&raw, &mut errors));
    }
    if let Some(values) = changes.custom {
        let definitions = store::list_fields(conn, editor.scope.id(), None, None)?;
        let stored = parse_custom(&contact.custom)?;
        let custom = fields::apply_values(&definitions, stored, values, &mut errors);
        contact.custom = custom_text(&custom)?;
    }
    if let Some(unsubscribed) = changes.unsubscribed {
        apply_unsubscription(
            unsubscribed.sms,
            &mut contact.sms_unsubscribed_at,
            &mut contact.sms_unsubscribed_via,
            editor,
            &now,
        );
        apply_unsubscription(
            unsubscribed.email,
            &mut contact.email_unsubscribed_at,
            &mut contact.email_unsubscribed_via,
            editor,
            &now,
        );
    }
    require_phone_or_email(
        contact.phone.is_some(),
        contact.email.is_some(),
        &mut errors,
    );
    errors.into_result()?;
    ensure_unique(conn, &contact, Some(id))?;
    contact.updated_at = now;
    store::update_contact(conn, &contact)?;
    Ok(contact)
}

/// Deletes a contact of the editor's workspace and mode (kept as a row, its phone and email
/// freed for a new contact).
pub fn delete_contact(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &ContactId,
    now: Timestamp,
) -> Result<(), AppError> {
    if store::soft_delete_contact(conn, scope.id(), mode, id, &format_timestamp(now))? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_first_word_and_rest() {
        assert_eq!(
            split_name("Ada  King Lovelace"),
            (Some("Ada".to_owned()), Some("King Lovelace".to_owned()))
        );
        assert_eq!(split_name("Cher"), (Some("Cher".to_owned()), None));
        assert_eq!(split_name(""), (None, None));
    }
}
