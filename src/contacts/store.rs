//! SQL for contacts and custom field definitions. Plain statements, named parameters, cached;
//! every function runs on the caller's connection (inside its transaction when it writes). Reads
//! of contacts always name the workspace and the mode, and never see a deleted contact.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, named_params, params_from_iter};

use crate::billing::Channel;
use crate::contacts::fields::FieldType;
use crate::contacts::rules::SqlCondition;
use crate::contacts::{EmailState, Language, PhoneState, UnsubscribeVia};
use crate::error::AppError;
use crate::ids::{ContactFieldId, ContactId, ContactImportId, GroupId, SegmentId, WorkspaceId};
use crate::vocabulary::Mode;

/// A contact row as stored (deleted rows are never read back).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub id: ContactId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub phone_input: Option<String>,
    pub email: Option<String>,
    pub language: Option<Language>,
    /// A JSON object: custom field key → value.
    pub custom: String,
    pub phone_state: PhoneState,
    pub email_state: EmailState,
    pub sms_unsubscribed_at: Option<String>,
    pub sms_unsubscribed_via: Option<UnsubscribeVia>,
    pub email_unsubscribed_at: Option<String>,
    pub email_unsubscribed_via: Option<UnsubscribeVia>,
    pub created_at: String,
    pub updated_at: String,
}

const CONTACT_COLUMNS: &str = "id, workspace_id, mode, name, first_name, last_name, phone, \
    phone_input, email, language, custom, phone_state, email_state, sms_unsubscribed_at, \
    sms_unsubscribed_via, email_unsubscribed_at, email_unsubscribed_via, created_at, updated_at";

pub(crate) fn contact_row(row: &Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mode: row.get(2)?,
        name: row.get(3)?,
        first_name: row.get(4)?,
        last_name: row.get(5)?,
        phone: row.get(6)?,
        phone_input: row.get(7)?,
        email: row.get(8)?,
        language: row.get(9)?,
        custom: row.get(10)?,
        phone_state: row.get(11)?,
        email_state: row.get(12)?,
        sms_unsubscribed_at: row.get(13)?,
        sms_unsubscribed_via: row.get(14)?,
        email_unsubscribed_at: row.get(15)?,
        email_unsubscribed_via: row.get(16)?,
        created_at: row.get(17)?,
        updated_at: row.get(18)?,
    })
}

/// The contact insert: positional parameters (an import inserts a million of these, and a
/// named parameter is looked up per parameter per row); `custom_jsonb` is written here, not by
/// a trigger (V21). `{or}` is empty or `OR IGNORE`.
macro_rules! insert_contact_sql {
    ($or:literal) => {
        concat!(
            "INSERT ",
            $or,
            " INTO contacts (id, workspace_id, mode, name, first_name, last_name, phone,
                phone_input, email, language, custom, phone_state, email_state,
                sms_unsubscribed_at, sms_unsubscribed_via, email_unsubscribed_at,
                email_unsubscribed_via, created_at, updated_at, import_id, custom_jsonb)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, jsonb(?11))"
        )
    };
}

/// Inserts a contact; `import_id` names the import that creates it (for its rollback).
pub fn insert_contact(
    conn: &Connection,
    contact: &ContactRow,
    import_id: Option<&ContactImportId>,
) -> Result<(), AppError> {
    insert_with(conn, insert_contact_sql!(""), contact, import_id)?;
    Ok(())
}

/// Inserts a contact unless a live contact of its workspace and mode already has its phone or
/// email (or the row breaks another constraint): `false` then, and nothing written. An import
/// tries this first, so that the lookups of both addresses are paid only when one is taken.
pub fn insert_new_contact(
    conn: &Connection,
    contact: &ContactRow,
    import_id: Option<&ContactImportId>,
) -> Result<bool, AppError> {
    Ok(insert_with(conn, insert_contact_sql!("OR IGNORE"), contact, import_id)? == 1)
}

fn insert_with(
    conn: &Connection,
    sql: &str,
    contact: &ContactRow,
    import_id: Option<&ContactImportId>,
) -> Result<usize, AppError> {
    Ok(conn.prepare_cached(sql)?.execute(rusqlite::params![
        contact.id,
        contact.workspace_id,
        contact.mode,
        contact.name,
        contact.first_name,
        contact.last_name,
        contact.phone,
        contact.phone_input,
        contact.email,
        contact.language,
        contact.custom,
        contact.phone_state,
        contact.email_state,
        contact.sms_unsubscribed_at,
        contact.sms_unsubscribed_via,
        contact.email_unsubscribed_at,
        contact.email_unsubscribed_via,
        contact.created_at,
        contact.updated_at,
        import_id,
    ])?)
}

/// Writes every changeable column of a live (not deleted) contact.
pub fn update_contact(conn: &Connection, contact: &ContactRow) -> Result<(), AppError> {
    let updated = conn
        .prepare_cached(
            "UPDATE contacts SET name = :name, first_name = :first_name, last_name = :last_name,
                phone = :phone, phone_input = :phone_input, email = :email,
                language = :language, custom = :custom, custom_jsonb = jsonb(:custom),
                phone_state = :phone_state,
                email_state = :email_state, sms_unsubscribed_at = :sms_unsubscribed_at,
                sms_unsubscribed_via = :sms_unsubscribed_via,
                email_unsubscribed_at = :email_unsubscribed_at,
                email_unsubscribed_via = :email_unsubscribed_via, updated_at = :updated_at
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND deleted_at IS NULL",
        )?
        .execute(named_params! {
            ":id": contact.id,
            ":workspace_id": contact.workspace_id,
            ":mode": contact.mode,
            ":name": contact.name,
            ":first_name": contact.first_name,
            ":last_name": contact.last_name,
            ":phone": contact.phone,
            ":phone_input": contact.phone_input,
            ":email": contact.email,
            ":language": contact.language,
            ":custom": contact.custom,
            ":phone_state": contact.phone_state,
            ":email_state": contact.email_state,
            ":sms_unsubscribed_at": contact.sms_unsubscribed_at,
            ":sms_unsubscribed_via": contact.sms_unsubscribed_via,
            ":email_unsubscribed_at": contact.email_unsubscribed_at,
            ":email_unsubscribed_via": contact.email_unsubscribed_via,
            ":updated_at": contact.updated_at,
        })?;
    if updated == 1 {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// The contact `id` of the workspace in `mode`, unless deleted.
pub fn find_contact(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &ContactId,
) -> Result<Option<ContactRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND deleted_at IS NULL"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            contact_row,
        )
        .optional()?)
}

/// The id, workspace and mode of the contact at `rowid`, deleted or not (a campaign's short
/// link names its recipient by rowid).
pub fn contact_at_rowid(
    conn: &Connection,
    rowid: i64,
) -> Result<Option<(ContactId, WorkspaceId, Mode)>, AppError> {
    Ok(conn
        .prepare_cached("SELECT id, workspace_id, mode FROM contacts WHERE rowid = ?1")?
        .query_row([rowid], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?)
}

/// An address unique among a workspace's live contacts of one mode.
#[derive(Debug, Clone, Copy)]
pub enum Address<'a> {
    Phone(&'a str),
    Email(&'a str),
}

/// The contact (not deleted) of the workspace in `mode` that has this address.
pub fn find_contact_id_with(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    address: Address<'_>,
) -> Result<Option<ContactId>, AppError> {
    let (sql, value) = match address {
        Address::Phone(phone) => (
            "SELECT id FROM contacts
             WHERE workspace_id = :workspace_id AND mode = :mode AND phone = :value
               AND deleted_at IS NULL",
            phone,
        ),
        Address::Email(email) => (
            "SELECT id FROM contacts
             WHERE workspace_id = :workspace_id AND mode = :mode AND email = :value
               AND deleted_at IS NULL",
            email,
        ),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":mode": mode, ":value": value },
            |row| row.get(0),
        )
        .optional()?)
}

/// The contact (not deleted) of the workspace in `mode` that has this address: one lookup in
/// the unique index of (workspace, mode, phone | email).
pub fn find_contact_with(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    address: Address<'_>,
) -> Result<Option<ContactRow>, AppError> {
    let (sql, value) = match address {
        Address::Phone(phone) => (
            format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts
                 WHERE workspace_id = :workspace_id AND mode = :mode AND phone = :value
                   AND deleted_at IS NULL"
            ),
            phone,
        ),
        Address::Email(email) => (
            format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts
                 WHERE workspace_id = :workspace_id AND mode = :mode AND email = :value
                   AND deleted_at IS NULL"
            ),
            email,
        ),
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":mode": mode, ":value": value },
            contact_row,
        )
        .optional()?)
}

/// Unsubscribes a contact (not deleted) from `channel`, unless it already is (the first time
/// and way are kept). Returns whether this changed it.
pub fn unsubscribe(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &ContactId,
    channel: Channel,
    via: UnsubscribeVia,
    now: &str,
) -> Result<bool, AppError> {
    let sql = match channel {
        Channel::Sms => {
            "UPDATE contacts SET sms_unsubscribed_at = :now, sms_unsubscribed_via = :via,
                 updated_at = :now
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND deleted_at IS NULL AND sms_unsubscribed_at IS NULL"
        }
        Channel::Email => {
            "UPDATE contacts SET email_unsubscribed_at = :now, email_unsubscribed_via = :via,
                 updated_at = :now
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND deleted_at IS NULL AND email_unsubscribed_at IS NULL"
        }
    };
    let changed = conn.prepare_cached(sql)?.execute(named_params! {
        ":id": id, ":workspace_id": workspace_id, ":mode": mode, ":via": via, ":now": now,
    })?;
    Ok(changed == 1)
}

/// Unsubscribes from SMS (`sms_keyword`) every live contact (not deleted, not yet
/// unsubscribed) with this phone whose workspace has sent a live SMS to it. Returns how many
/// changed.
pub fn unsubscribe_phone_by_keyword(
    conn: &Connection,
    phone: &str,
    workspace_id: Option<&WorkspaceId>,
    now: &str,
) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(UNSUBSCRIBE_BY_KEYWORD)?
        .execute(named_params! {
            ":phone": phone, ":workspace_id": workspace_id, ":now": now,
        })?)
}

/// A phone's contacts in every workspace are found through `contacts_by_phone`, one search per
/// workspace (the `IN`). The workspace wrote to the phone when it sent it a message through the
/// API (`messages_by_recipient`; the `+` keeps the planner off `messages_by_workspace`, which
/// would read every message of the workspace), or a campaign message to this contact or to an
/// earlier, deleted contact with the phone (`messages_by_contact_campaign`, through
/// `contacts_deleted_by_phone`). A test holds the plan.
const UNSUBSCRIBE_BY_KEYWORD: &str = "UPDATE contacts
    SET sms_unsubscribed_at = :now, sms_unsubscribed_via = 'sms_keyword', updated_at = :now
    WHERE workspace_id IN (SELECT id FROM workspaces) AND mode = 'live'
      AND phone = :phone AND deleted_at IS NULL
      AND sms_unsubscribed_at IS NULL
      AND (:workspace_id IS NULL OR workspace_id = :workspace_id)
      AND (EXISTS (SELECT 1 FROM messages m
                   WHERE m.workspace_id = contacts.workspace_id AND m.campaign_id IS NULL
                     AND m.to_address = :phone AND m.channel = 'sms' AND +m.mode = 'live')
        OR EXISTS (SELECT 1 FROM messages m
                   WHERE m.contact_id = contacts.id AND m.campaign_id IS NOT NULL
                     AND m.to_address = :phone AND m.channel = 'sms')
        OR EXISTS (SELECT 1 FROM contacts d JOIN messages m ON m.contact_id = d.id
                   WHERE d.workspace_id = contacts.workspace_id AND d.mode = 'live'
                     AND d.phone = :phone AND d.deleted_at IS NOT NULL
                     AND m.campaign_id IS NOT NULL AND m.to_address = :phone
                     AND m.channel = 'sms'))";

/// Sets the state of a phone on the workspace's contact (not deleted) of `mode` that has it.
/// Returns whether a contact changed.
pub fn set_phone_state(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    phone: &str,
    state: PhoneState,
    now: &str,
) -> Result<bool, AppError> {
    let changed = conn
        .prepare_cached(
            "UPDATE contacts SET phone_state = :state, updated_at = :now
             WHERE workspace_id = :workspace_id AND mode = :mode AND phone = :phone
               AND deleted_at IS NULL AND phone_state <> :state",
        )?
        .execute(named_params! {
            ":workspace_id": workspace_id, ":mode": mode, ":phone": phone,
            ":state": state, ":now": now,
        })?;
    Ok(changed == 1)
}

/// Sets the state of an email address, as `set_phone_state` does for a phone.
pub fn set_email_state(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    email: &str,
    state: EmailState,
    now: &str,
) -> Result<bool, AppError> {
    let changed = conn
        .prepare_cached(
            "UPDATE contacts SET email_state = :state, updated_at = :now
             WHERE workspace_id = :workspace_id AND mode = :mode AND email = :email
               AND deleted_at IS NULL AND email_state <> :state",
        )?
        .execute(named_params! {
            ":workspace_id": workspace_id, ":mode": mode, ":email": email,
            ":state": state, ":now": now,
        })?;
    Ok(changed == 1)
}

/// The workspace's contacts of `mode` with the phone or email `address`, live or deleted: an
/// erasure scrubs their campaign messages to it. Each search goes through an index
/// (`contacts_by_phone` / `_email` for live ones, `contacts_deleted_by_phone` / `_email` for
/// deleted ones); a test holds the plan.
pub fn contacts_with_address(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    address: &str,
) -> Result<Vec<ContactId>, AppError> {
    let mut stmt = conn.prepare_cached(CONTACTS_WITH_ADDRESS)?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":mode": mode, ":address": address },
        |row| row.get(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const CONTACTS_WITH_ADDRESS: &str = "
    SELECT id FROM contacts WHERE workspace_id = :workspace_id AND mode = :mode
        AND phone = :address AND deleted_at IS NULL
    UNION ALL SELECT id FROM contacts WHERE workspace_id = :workspace_id AND mode = :mode
        AND phone = :address AND deleted_at IS NOT NULL
    UNION ALL SELECT id FROM contacts WHERE workspace_id = :workspace_id AND mode = :mode
        AND email = :address AND deleted_at IS NULL
    UNION ALL SELECT id FROM contacts WHERE workspace_id = :workspace_id AND mode = :mode
        AND email = :address AND deleted_at IS NOT NULL";

/// The contact `id` of the workspace in `mode`, deleted or not, unless erased: what an erasure
/// works on (a deleted contact still holds its data).
pub fn find_unerased_contact(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &ContactId,
) -> Result<Option<ContactRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND erased_at IS NULL"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            contact_row,
        )
        .optional()?)
}

/// Removes a contact's personal data for good and leaves a deleted tombstone (`erased_at`):
/// names, phone, email (an empty string: see V17), language and custom values go; its group
/// memberships too. Returns whether it was there to erase.
pub fn erase_contact(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &ContactId,
    now: &str,
) -> Result<bool, AppError> {
    let erased = conn
        .prepare_cached(
            "UPDATE contacts SET name = '', first_name = NULL, last_name = NULL, phone = NULL,
                 phone_input = NULL, email = '', language = NULL, custom = '{}',
                 custom_jsonb = jsonb('{}'),
                 deleted_at = COALESCE(deleted_at, :now), erased_at = :now, updated_at = :now
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND erased_at IS NULL",
        )?
        .execute(named_params! {
            ":id": id, ":workspace_id": workspace_id, ":mode": mode, ":now": now,
        })?;
    conn.prepare_cached("DELETE FROM group_members WHERE contact_id = :id")?
        .execute(named_params! { ":id": id })?;
    Ok(erased == 1)
}

/// Whether the workspace has any erased address in `mode` (an import skips the lookups when not).
pub fn any_suppression(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM suppressions WHERE workspace_id = :workspace_id AND mode = :mode
             LIMIT 1",
        )?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":mode": mode },
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// When and how an erased address of the workspace and mode was unsubscribed from `channel`.
pub fn find_suppression(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    channel: Channel,
    address_hash: &[u8],
) -> Result<Option<(String, UnsubscribeVia)>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT since, via FROM suppressions
             WHERE workspace_id = :workspace_id AND mode = :mode AND channel = :channel
               AND address_hash = :hash",
        )?
        .query_row(
            named_params! {
                ":workspace_id": workspace_id, ":mode": mode, ":channel": channel,
                ":hash": address_hash,
            },
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// Records a suppression; one already there for the address keeps its first time and way.
pub fn insert_suppression(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    channel: Channel,
    address_hash: &[u8],
    (since, via): (&str, UnsubscribeVia),
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO suppressions (workspace_id, mode, channel, address_hash, since, via)
         VALUES (:workspace_id, :mode, :channel, :hash, :since, :via)
         ON CONFLICT DO NOTHING",
    )?
    .execute(named_params! {
        ":workspace_id": workspace_id, ":mode": mode, ":channel": channel,
        ":hash": address_hash, ":since": since, ":via": via,
    })?;
    Ok(())
}

/// The language of a contact (not deleted), for the unsubscribe line of a marketing email.
/// `Ok(None)` when it has none or is gone.
pub fn find_language(conn: &Connection, id: &ContactId) -> Result<Option<Language>, AppError> {
    Ok(conn
        .prepare_cached("SELECT language FROM contacts WHERE id = ?1 AND deleted_at IS NULL")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .flatten())
}

/// Marks the contact deleted; `false` when there is no such live contact.
pub fn soft_delete_contact(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &ContactId,
    now: &str,
) -> Result<bool, AppError> {
    let deleted = conn
        .prepare_cached(
            "UPDATE contacts SET deleted_at = :now, updated_at = :now
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND deleted_at IS NULL",
        )?
        .execute(named_params! {
            ":id": id, ":workspace_id": workspace_id, ":mode": mode, ":now": now,
        })?;
    Ok(deleted == 1)
}

/// What `GET /v1/contacts` narrows by; `None` matches everything.
#[derive(Debug, Default)]
pub struct ContactFilter<'a> {
    /// A substring of the name, phone or email (ASCII letters compare case-insensitively).
    pub q: Option<&'a str>,
    pub phone_state: Option<PhoneState>,
    pub email_state: Option<EmailState>,
    /// Only contacts unsubscribed from this channel.
    pub unsubscribed: Option<Channel>,
    /// Only members of this group (checked to be the caller's beforehand).
    pub group: Option<&'a GroupId>,
    /// Only contacts matching these compiled segment rules (over `contacts c`).
    pub segment: Option<&'a SqlCondition>,
}

/// `text` as a `LIKE … ESCAPE '\'` pattern matching it anywhere, its own `%`, `_` and `\`
/// taken literally.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

crate::text_enum! {
    /// The orders a contact list can be read in. Every order ends on the insertion order, so
    /// a page boundary is exact even between equal names.
    pub enum ContactOrder {
        /// Newest first (the default).
        NewestFirst = "-created_at",
        OldestFirst = "created_at",
        /// By name, ASCII letters without regard to case.
        Name = "name",
        NameDescending = "-name",
    }
}

impl ContactOrder {
    /// The keyset condition that starts after the cursor contact (one `?`), and the order.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            ContactOrder::NewestFirst => (
                "c.rowid < (SELECT rowid FROM contacts WHERE id = ?)",
                "c.rowid DESC",
            ),
            ContactOrder::OldestFirst => (
                "c.rowid > (SELECT rowid FROM contacts WHERE id = ?)",
                "c.rowid ASC",
            ),
            ContactOrder::Name => (
                "(c.name COLLATE NOCASE, c.rowid) > (SELECT name, rowid FROM contacts WHERE id = ?)",
                "c.name COLLATE NOCASE ASC, c.rowid ASC",
            ),
            ContactOrder::NameDescending => (
                "(c.name COLLATE NOCASE, c.rowid) < (SELECT name, rowid FROM contacts WHERE id = ?)",
                "c.name COLLATE NOCASE DESC, c.rowid DESC",
            ),
        }
    }
}

/// The `WHERE` of a list or count of a workspace's contacts of `mode` (not deleted) narrowed by
/// `filter`, over `contacts c`, with its parameters in order. Every value is a parameter.
pub fn contacts_where(
    workspace_id: &WorkspaceId,
    mode: Mode,
    filter: &ContactFilter<'_>,
) -> (String, Vec<SqlValue>) {
    let text = |value: &str| SqlValue::Text(value.to_owned());
    let mut sql = String::from("c.workspace_id = ? AND c.mode = ? AND c.deleted_at IS NULL");
    let mut params = vec![text(workspace_id.as_str()), text(mode.as_str())];
    if let Some(q) = filter.q {
        sql.push_str(
            " AND (c.name LIKE ? ESCAPE '\\' OR c.phone LIKE ? ESCAPE '\\'
                   OR c.email LIKE ? ESCAPE '\\')",
        );
        let pattern = contains_pattern(q);
        params.extend([text(&pattern), text(&pattern), text(&pattern)]);
    }
    if let Some(state) = filter.phone_state {
        sql.push_str(" AND c.phone IS NOT NULL AND c.phone_state = ?");
        params.push(text(state.as_str()));
    }
    if let Some(state) = filter.email_state {
        sql.push_str(" AND c.email IS NOT NULL AND c.email_state = ?");
        params.push(text(state.as_str()));
    }
    match filter.unsubscribed {
        Some(Channel::Sms) => sql.push_str(" AND c.sms_unsubscribed_at IS NOT NULL"),
        Some(Channel::Email) => sql.push_str(" AND c.email_unsubscribed_at IS NOT NULL"),
        None => {}
    }
    if let Some(group) = filter.group {
        sql.push_str(" AND c.id IN (SELECT contact_id FROM group_members WHERE group_id = ?)");
        params.push(text(group.as_str()));
    }
    if let Some(segment) = filter.segment {
        sql.push_str(" AND ");
        sql.push_str(&segment.sql);
        params.extend(segment.params.iter().cloned());
    }
    (sql, params)
}

/// Prepares a statement whose text depends on segment rules: cached only without them, so
/// one-off rule shapes never push the hot statements out of the connection's cache.
fn prepare_filtered<'c>(
    conn: &'c Connection,
    sql: &str,
    filter: &ContactFilter<'_>,
) -> rusqlite::Result<CachedOrNot<'c>> {
    Ok(if filter.segment.is_some() {
        CachedOrNot::Fresh(conn.prepare(sql)?)
    } else {
        CachedOrNot::Cached(conn.prepare_cached(sql)?)
    })
}

enum CachedOrNot<'c> {
    Cached(rusqlite::CachedStatement<'c>),
    Fresh(rusqlite::Statement<'c>),
}

impl<'c> std::ops::DerefMut for CachedOrNot<'c> {
    fn deref_mut(&mut self) -> &mut rusqlite::Statement<'c> {
        match self {
            CachedOrNot::Cached(stmt) => stmt,
            CachedOrNot::Fresh(stmt) => stmt,
        }
    }
}

impl<'c> std::ops::Deref for CachedOrNot<'c> {
    type Target = rusqlite::Statement<'c>;
    fn deref(&self) -> &rusqlite::Statement<'c> {
        match self {
            CachedOrNot::Cached(stmt) => stmt,
            CachedOrNot::Fresh(stmt) => stmt,
        }
    }
}

/// The workspace's contacts of `mode` narrowed by `filter`, in `order`, after the cursor
/// `before` (a contact id).
pub fn list_contacts(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    filter: &ContactFilter<'_>,
    order: ContactOrder,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<ContactRow>, AppError> {
    let (mut sql, mut params) = contacts_where(workspace_id, mode, filter);
    let (after_cursor, order_by) = order.sql();
    if let Some(before) = before {
        sql.push_str(" AND ");
        sql.push_str(after_cursor);
        params.push(SqlValue::Text(before.to_owned()));
    }
    let sql =
        format!("SELECT {CONTACT_COLUMNS} FROM contacts c WHERE {sql} ORDER BY {order_by} LIMIT ?");
    params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut stmt = prepare_filtered(conn, &sql, filter)?;
    let rows = stmt.query_map(params_from_iter(params), contact_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many of the workspace's contacts of `mode` (not deleted) `filter` keeps.
pub fn count_contacts(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    filter: &ContactFilter<'_>,
) -> Result<i64, AppError> {
    let (sql, params) = contacts_where(workspace_id, mode, filter);
    let sql = format!("SELECT count(*) FROM contacts c WHERE {sql}");
    let mut stmt = prepare_filtered(conn, &sql, filter)?;
    Ok(stmt.query_row(params_from_iter(params), |row| row.get(0))?)
}

/// Up to `limit` ids of the workspace's contacts of `mode` (not deleted) that `filter` keeps,
/// oldest first (insertion order), after the contact `after`: keyset pages for a fan-out.
pub fn matching_contact_ids(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    filter: &ContactFilter<'_>,
    after: Option<&ContactId>,
    limit: usize,
) -> Result<Vec<ContactId>, AppError> {
    let (mut sql, mut params) = contacts_where(workspace_id, mode, filter);
    if let Some(after) = after {
        sql.push_str(" AND c.rowid > (SELECT rowid FROM contacts WHERE id = ?)");
        params.push(SqlValue::Text(after.to_string()));
    }
    let sql = format!("SELECT c.id FROM contacts c WHERE {sql} ORDER BY c.rowid LIMIT ?");
    params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut stmt = prepare_filtered(conn, &sql, filter)?;
    let rows = stmt.query_map(params_from_iter(params), |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A custom field definition as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub id: ContactFieldId,
    pub workspace_id: WorkspaceId,
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    /// The choices of a `select` field; `None` for every other type.
    pub options: Option<Vec<String>>,
    pub created_at: String,
    pub updated_at: String,
}

const FIELD_COLUMNS: &str = "id, workspace_id, key, label, type, options, created_at, updated_at";

fn field_row(row: &Row<'_>) -> rusqlite::Result<FieldRow> {
    let options: Option<String> = row.get(5)?;
    let options = options
        .map(|text| serde_json::from_str::<Vec<String>>(&text))
        .transpose()
        .map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, err.into())
        })?;
    Ok(FieldRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        key: row.get(2)?,
        label: row.get(3)?,
        field_type: row.get(4)?,
        options,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

fn options_text(options: Option<&Vec<String>>) -> Result<Option<String>, AppError> {
    options
        .map(serde_json::to_string)
        .transpose()
        .map_err(AppError::internal)
}

pub fn insert_field(conn: &Connection, field: &FieldRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO contact_fields ({FIELD_COLUMNS}) VALUES (:id, :workspace_id, :key, :label,
            :type, :options, :created_at, :updated_at)"
    ))?
    .execute(named_params! {
        ":id": field.id,
        ":workspace_id": field.workspace_id,
        ":key": field.key,
        ":label": field.label,
        ":type": field.field_type,
        ":options": options_text(field.options.as_ref())?,
        ":created_at": field.created_at,
        ":updated_at": field.updated_at,
    })?;
    Ok(())
}

/// Writes the changeable columns of a definition (its label and options).
pub fn update_field(conn: &Connection, field: &FieldRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE contact_fields SET label = :label, options = :options, updated_at = :updated_at
         WHERE id = :id AND workspace_id = :workspace_id",
    )?
    .execute(named_params! {
        ":id": field.id,
        ":workspace_id": field.workspace_id,
        ":label": field.label,
        ":options": options_text(field.options.as_ref())?,
        ":updated_at": field.updated_at,
    })?;
    Ok(())
}

pub fn find_field(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &ContactFieldId,
) -> Result<Option<FieldRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {FIELD_COLUMNS} FROM contact_fields
             WHERE id = :id AND workspace_id = :workspace_id"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id },
            field_row,
        )
        .optional()?)
}

/// The workspace's definitions, oldest first, after the cursor `after` (a definition id);
/// `limit` `None` reads them all.
pub fn list_fields(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    after: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<FieldRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FIELD_COLUMNS} FROM contact_fields
         WHERE workspace_id = :workspace_id
           AND (:after IS NULL OR rowid > (SELECT rowid FROM contact_fields WHERE id = :after))
         ORDER BY rowid LIMIT :limit"
    ))?;
    let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":after": after, ":limit": limit },
        field_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the definition and, in the same transaction, its values on every contact of the
/// workspace (either mode, deleted ones too). `false` when there was no such definition.
pub fn delete_field(conn: &Connection, field: &FieldRow, now: &str) -> Result<bool, AppError> {
    // The key is `[a-z][a-z0-9_]*` (checked on creation), so it is safe inside a JSON path.
    let path = format!("$.\"{}\"", field.key);
    conn.prepare_cached(
        "UPDATE contacts SET custom = json_remove(custom, :path),
             custom_jsonb = jsonb(json_remove(custom, :path)), updated_at = :now
         WHERE workspace_id = :workspace_id AND json_type(custom, :path) IS NOT NULL",
    )?
    .execute(named_params! {
        ":workspace_id": field.workspace_id, ":path": path, ":now": now,
    })?;
    let deleted = conn
        .prepare_cached(
            "DELETE FROM contact_fields WHERE id = :id AND workspace_id = :workspace_id",
        )?
        .execute(named_params! { ":id": field.id, ":workspace_id": field.workspace_id })?;
    Ok(deleted == 1)
}

/// A group as stored, with how many of its members are contacts not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: GroupId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub name: String,
    pub member_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The group's columns, then its count of members whose contact is not deleted (`g` is the
/// group's alias).
const GROUP_COLUMNS: &str = "g.id, g.workspace_id, g.mode, g.name, g.created_at, g.updated_at,
    (SELECT count(*) FROM group_members m JOIN contacts c ON c.id = m.contact_id
     WHERE m.group_id = g.id AND c.deleted_at IS NULL)";

fn group_row(row: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mode: row.get(2)?,
        name: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        member_count: row.get(6)?,
    })
}

pub fn insert_group(conn: &Connection, group: &GroupRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO groups (id, workspace_id, mode, name, created_at, updated_at)
         VALUES (:id, :workspace_id, :mode, :name, :created_at, :updated_at)",
    )?
    .execute(named_params! {
        ":id": group.id,
        ":workspace_id": group.workspace_id,
        ":mode": group.mode,
        ":name": group.name,
        ":created_at": group.created_at,
        ":updated_at": group.updated_at,
    })?;
    Ok(())
}

/// Writes the group's name (the only thing that changes).
pub fn rename_group(conn: &Connection, group: &GroupRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE groups SET name = :name, updated_at = :updated_at
         WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode",
    )?
    .execute(named_params! {
        ":id": group.id,
        ":workspace_id": group.workspace_id,
        ":mode": group.mode,
        ":name": group.name,
        ":updated_at": group.updated_at,
    })?;
    Ok(())
}

/// The group `id` of the workspace in `mode`.
pub fn find_group(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &GroupId,
) -> Result<Option<GroupRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {GROUP_COLUMNS} FROM groups g
             WHERE g.id = :id AND g.workspace_id = :workspace_id AND g.mode = :mode"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            group_row,
        )
        .optional()?)
}

/// The group of the workspace in `mode` with exactly this name.
pub fn find_group_id_by_name(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    name: &str,
) -> Result<Option<GroupId>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM groups
             WHERE workspace_id = :workspace_id AND mode = :mode AND name = :name",
        )?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":mode": mode, ":name": name },
            |row| row.get(0),
        )
        .optional()?)
}

/// The workspace's groups of `mode`, newest first, after the cursor `before` (a group id).
pub fn list_groups(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<GroupRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {GROUP_COLUMNS} FROM groups g
         WHERE g.workspace_id = :workspace_id AND g.mode = :mode
           AND (:before IS NULL OR g.rowid < (SELECT rowid FROM groups WHERE id = :before))
         ORDER BY g.rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":mode": mode,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        group_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the group and its memberships (never the contacts). `false` when there was no such
/// group.
pub fn delete_group(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &GroupId,
) -> Result<bool, AppError> {
    let params = named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode };
    conn.prepare_cached(
        "DELETE FROM group_members WHERE group_id IN
            (SELECT id FROM groups WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode)",
    )?
    .execute(params)?;
    let deleted = conn
        .prepare_cached(
            "DELETE FROM groups WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode",
        )?
        .execute(params)?;
    Ok(deleted == 1)
}

/// Of `ids`, those naming a group of the workspace in `mode`.
pub fn existing_group_ids(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    ids: &[GroupId],
) -> Result<Vec<GroupId>, AppError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id FROM groups WHERE workspace_id = ?1 AND mode = ?2 AND id IN ({})",
            placeholders(chunk.len())
        ))?;
        let values = [workspace_id.as_str(), mode.as_str()]
            .into_iter()
            .chain(chunk.iter().map(GroupId::as_str));
        let rows = stmt.query_map(params_from_iter(values), |row| row.get(0))?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}

/// A saved segment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: SegmentId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub name: String,
    /// The rule tree as the client sent it (a JSON object).
    pub rules: String,
    pub created_at: String,
    pub updated_at: String,
}

const SEGMENT_COLUMNS: &str = "id, workspace_id, mode, name, rules, created_at, updated_at";

fn segment_row(row: &Row<'_>) -> rusqlite::Result<SegmentRow> {
    Ok(SegmentRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mode: row.get(2)?,
        name: row.get(3)?,
        rules: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

pub fn insert_segment(conn: &Connection, segment: &SegmentRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO segments ({SEGMENT_COLUMNS})
         VALUES (:id, :workspace_id, :mode, :name, :rules, :created_at, :updated_at)"
    ))?
    .execute(named_params! {
        ":id": segment.id,
        ":workspace_id": segment.workspace_id,
        ":mode": segment.mode,
        ":name": segment.name,
        ":rules": segment.rules,
        ":created_at": segment.created_at,
        ":updated_at": segment.updated_at,
    })?;
    Ok(())
}

/// Writes the segment's name and rules (what changes).
pub fn update_segment(conn: &Connection, segment: &SegmentRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE segments SET name = :name, rules = :rules, updated_at = :updated_at
         WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode",
    )?
    .execute(named_params! {
        ":id": segment.id,
        ":workspace_id": segment.workspace_id,
        ":mode": segment.mode,
        ":name": segment.name,
        ":rules": segment.rules,
        ":updated_at": segment.updated_at,
    })?;
    Ok(())
}

/// The segment `id` of the workspace in `mode`.
pub fn find_segment(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &SegmentId,
) -> Result<Option<SegmentRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            segment_row,
        )
        .optional()?)
}

/// The segment of the workspace in `mode` with exactly this name.
pub fn find_segment_id_by_name(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    name: &str,
) -> Result<Option<SegmentId>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM segments
             WHERE workspace_id = :workspace_id AND mode = :mode AND name = :name",
        )?
        .query_row(
            named_params! { ":workspace_id": workspace_id, ":mode": mode, ":name": name },
            |row| row.get(0),
        )
        .optional()?)
}

/// The workspace's segments of `mode`, newest first, after the cursor `before` (a segment id).
pub fn list_segments(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<SegmentRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments
         WHERE workspace_id = :workspace_id AND mode = :mode
           AND (:before IS NULL OR rowid < (SELECT rowid FROM segments WHERE id = :before))
         ORDER BY rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":mode": mode,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        segment_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the segment. `false` when there was no such segment.
pub fn delete_segment(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &SegmentId,
) -> Result<bool, AppError> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM segments WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode",
        )?
        .execute(named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode })?;
    Ok(deleted == 1)
}

/// How many ids one `IN (…)` list carries, well under SQLite's limit on parameters.
pub const IDS_PER_STATEMENT: usize = 500;

/// `?3, ?4, …` for `count` parameters after the first two.
fn placeholders(count: usize) -> String {
    (3..count + 3)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Of `ids`, those naming a contact of the workspace in `mode` that is not deleted. Asks
/// `IDS_PER_STATEMENT` at a time, every id a parameter.
pub fn existing_contact_ids(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    ids: &[ContactId],
) -> Result<Vec<ContactId>, AppError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id FROM contacts
             WHERE workspace_id = ?1 AND mode = ?2 AND deleted_at IS NULL
               AND id IN ({})",
            placeholders(chunk.len())
        ))?;
        let values = [workspace_id.as_str(), mode.as_str()]
            .into_iter()
            .chain(chunk.iter().map(ContactId::as_str));
        let rows = stmt.query_map(params_from_iter(values), |row| row.get(0))?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}

/// Adds the contacts to the group; those already in it stay as they are. Returns how many were
/// new.
pub fn add_group_members(
    conn: &Connection,
    group_id: &GroupId,
    contact_ids: &[ContactId],
    now: &str,
) -> Result<usize, AppError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO group_members (group_id, contact_id, added_at)
         VALUES (:group_id, :contact_id, :now)
         ON CONFLICT (group_id, contact_id) DO NOTHING",
    )?;
    let mut added = 0;
    for contact_id in contact_ids {
        added += stmt.execute(named_params! {
            ":group_id": group_id, ":contact_id": contact_id, ":now": now,
        })?;
    }
    Ok(added)
}

/// Takes the contacts out of the group. Returns how many were in it.
pub fn remove_group_members(
    conn: &Connection,
    group_id: &GroupId,
    contact_ids: &[ContactId],
) -> Result<usize, AppError> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM group_members WHERE group_id = :group_id AND contact_id = :contact_id",
    )?;
    let mut removed = 0;
    for contact_id in contact_ids {
        removed += stmt.execute(named_params! {
            ":group_id": group_id, ":contact_id": contact_id,
        })?;
    }
    Ok(removed)
}

/// How the contacts of a condition over `contacts c` split by `exclusion` (an SQL expression
/// giving a reason or NULL): (all, no address, unsubscribed, invalid).
pub fn count_exclusions(
    conn: &Connection,
    condition: &SqlCondition,
    exclusion: &str,
) -> Result<[u64; 6], AppError> {
    let sql = format!(
        "SELECT count(*), COALESCE(sum(x = 'no_address'), 0), COALESCE(sum(x = 'unsubscribed'), 0),
                COALESCE(sum(x = 'invalid'), 0), COALESCE(sum(x = 'bounced'), 0),
                COALESCE(sum(x = 'complained'), 0)
         FROM (SELECT {exclusion} AS x FROM contacts c WHERE {})",
        condition.sql
    );
    let mut stmt = conn.prepare(&sql)?;
    Ok(
        stmt.query_row(params_from_iter(condition.params.iter()), |row| {
            Ok([
                row.get::<_, i64>(0)?.unsigned_abs(),
                row.get::<_, i64>(1)?.unsigned_abs(),
                row.get::<_, i64>(2)?.unsigned_abs(),
                row.get::<_, i64>(3)?.unsigned_abs(),
                row.get::<_, i64>(4)?.unsigned_abs(),
                row.get::<_, i64>(5)?.unsigned_abs(),
            ])
        })?,
    )
}

/// Up to `limit` contacts of a condition over `contacts c` whose rowid is in `(after, last]`,
/// in rowid order, each with its rowid and `exclusion` (an SQL expression: a reason or NULL).
/// The statement is cached: a campaign's fan-out asks the same one chunk after chunk.
pub fn audience_page(
    conn: &Connection,
    condition: &SqlCondition,
    exclusion: &str,
    (after, last): (i64, i64),
    limit: usize,
) -> Result<Vec<(i64, ContactRow, Option<String>)>, AppError> {
    let sql = format!(
        "SELECT {CONTACT_COLUMNS}, c.rowid, {exclusion} FROM contacts c
         WHERE {} AND c.rowid > ? AND c.rowid <= ? ORDER BY c.rowid LIMIT ?",
        condition.sql
    );
    let mut params = condition.params.clone();
    params.extend([
        SqlValue::Integer(after),
        SqlValue::Integer(last),
        SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
    ]);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok((row.get(19)?, contact_row(row)?, row.get(20)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The contacts of a stored audience condition with rowids in `(after, last]`, in rowid order:
/// each one's rowid, id, phone, email and exclusion (`exclusion`, as for `audience_page`) — what
/// a fan-out part prepared outside the writer checks again inside it.
pub fn audience_marks(
    conn: &Connection,
    condition: &SqlCondition,
    exclusion: &str,
    (after, last): (i64, i64),
) -> Result<Vec<AudienceMarkRow>, AppError> {
    let sql = format!(
        "SELECT c.rowid, c.id, c.phone, c.email, {exclusion} FROM contacts c
         WHERE {} AND c.rowid > ? AND c.rowid <= ? ORDER BY c.rowid",
        condition.sql
    );
    let mut params = condition.params.clone();
    params.extend([SqlValue::Integer(after), SqlValue::Integer(last)]);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok(AudienceMarkRow {
            rowid: row.get(0)?,
            contact_id: row.get(1)?,
            phone: row.get(2)?,
            email: row.get(3)?,
            exclusion: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One row of `audience_marks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceMarkRow {
    pub rowid: i64,
    pub contact_id: ContactId,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub exclusion: Option<String>,
}

/// The newest contact's rowid (0 with none): the end of a fan-out started now.
pub fn newest_contact_rowid(conn: &Connection) -> Result<i64, AppError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(max(rowid), 0) FROM contacts")?
        .query_row([], |row| row.get(0))?)
}

/// The members of `groups` (of the workspace and mode): how many each holds among contacts not
/// deleted, summed over the groups, and how many distinct members are deleted contacts.
pub fn group_member_counts(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    groups: &[GroupId],
) -> Result<(u64, u64), AppError> {
    if groups.is_empty() {
        return Ok((0, 0));
    }
    let mut listed = 0;
    let mut count = conn.prepare_cached(
        "SELECT count(*) FROM group_members m JOIN contacts c ON c.id = m.contact_id
         WHERE m.group_id = ?1 AND c.workspace_id = ?2 AND c.mode = ?3 AND c.deleted_at IS NULL",
    )?;
    for group in groups {
        listed += count
            .query_row(rusqlite::params![group, workspace_id, mode], |row| {
                row.get::<_, i64>(0)
            })?
            .unsigned_abs();
    }
    let placeholders = vec!["?"; groups.len()].join(", ");
    let sql = format!(
        "SELECT count(DISTINCT m.contact_id) FROM group_members m
         JOIN contacts c ON c.id = m.contact_id
         WHERE m.group_id IN ({placeholders}) AND c.deleted_at IS NOT NULL"
    );
    let deleted = conn
        .prepare(&sql)?
        .query_row(params_from_iter(groups.iter()), |row| row.get::<_, i64>(0))?
        .unsigned_abs();
    Ok((listed, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `SEARCH` lines of a statement's plan.
    fn searches(sql: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::for_tests(dir.path());
        let db = crate::db::Db::open(&crate::db::DbSettings::from_config(&config)).unwrap();
        db.read(|conn| {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let rows = stmt.query_map(rusqlite::params_from_iter(nulls), |row| {
                row.get::<_, String>(3)
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
        .into_iter()
        .filter(|line| line.starts_with("SEARCH") || line.starts_with("SCAN"))
        .collect()
    }

    #[test]
    fn an_inbound_stop_searches_by_phone_recipient_and_contact_indexes() {
        assert_eq!(
            searches(UNSUBSCRIBE_BY_KEYWORD),
            [
                "SEARCH contacts USING INDEX contacts_by_phone (workspace_id=? AND mode=? AND phone=?)",
                "SEARCH m USING INDEX messages_by_recipient (workspace_id=? AND to_address=?)",
                "SEARCH m USING INDEX messages_by_contact_campaign (contact_id=? AND campaign_id>?)",
                "SEARCH d USING INDEX contacts_deleted_by_phone (workspace_id=? AND mode=? AND phone=?)",
                "SEARCH m USING INDEX messages_by_contact_campaign (contact_id=? AND campaign_id>?)",
            ]
        );
    }

    #[test]
    fn an_erasure_finds_contacts_by_address_through_indexes() {
        let searches = searches(CONTACTS_WITH_ADDRESS);
        assert_eq!(
            searches,
            [
                "SEARCH contacts USING INDEX contacts_by_phone (workspace_id=? AND mode=? AND phone=?)",
                "SEARCH contacts USING INDEX contacts_deleted_by_phone (workspace_id=? AND mode=? AND phone=?)",
                "SEARCH contacts USING INDEX contacts_by_email (workspace_id=? AND mode=? AND email=?)",
                "SEARCH contacts USING INDEX contacts_deleted_by_email (workspace_id=? AND mode=? AND email=?)",
            ]
        );
    }

    #[test]
    fn search_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern(r"10%_a\b"), r"%10\%\_a\\b%");
        let conn = Connection::open_in_memory().unwrap();
        let matches = |text: &str, query: &str| -> bool {
            conn.query_row(
                r"SELECT ?1 LIKE ?2 ESCAPE '\'",
                [text, &contains_pattern(query)],
                |row| row.get(0),
            )
            .unwrap()
        };
        assert!(matches("100% Bio", "0%"));
        assert!(!matches("1000 Bio", "0%"));
        assert!(matches("Ada_Lovelace", "a_l"));
        assert!(!matches("AdaXLovelace", "a_l"));
        assert!(matches(r"a\b", r"a\b"));
        assert!(matches("ADA", "ada"));
    }
}
