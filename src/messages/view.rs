//! A message as the API shows it: one view shared by `GET /v1/messages` (each item),
//! `GET /v1/messages/{id}` (which adds the attempts) and the `message.*` webhook events, so all
//! show the same object. The list makes it from SQLite's row directly (`listed_view`), the others
//! from a `MessageRow` (`message_view`); both end in `MessageView::shown`, where the API's rules
//! for a stored message are.

use rusqlite::Row;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::billing::Channel;
use crate::ids::ApiKeyId;
use crate::messages::MessageStatus;
use crate::messages::compose::Category;
use crate::messages::store::{MessageRow, unsigned};
use crate::money::MoneyView;
use crate::vocabulary::Mode;

/// A message as the API shows it (the list's form; the detail adds its HTML, refund, attempts).
#[derive(Serialize)]
pub struct MessageView<'a> {
    pub id: &'a str,
    pub status: MessageStatus,
    pub channel: Channel,
    pub category: Category,
    pub mode: Mode,
    pub to: &'a str,
    /// SMS: the sender ID. Live email: the workspace's From on its sending domain when it has
    /// one; `null` when the instance's From (`--email-from`) is used.
    pub sender: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub text: Option<&'a str>,
    pub encoding: Option<&'a str>,
    pub segments: Option<u32>,
    pub units: u64,
    pub included_units: u64,
    pub charge: MoneyView<'a>,
    pub charged: bool,
    pub metadata: Option<&'a RawValue>,
    pub campaign_id: Option<&'a str>,
    /// The workspace's contact the message went to, if any.
    pub contact_id: Option<&'a str>,
    pub api_key_id: Option<&'a str>,
    /// The route chosen when it was created: an SMS's by its number, or a live message's
    /// workspace provider accounts (`accounts`, SMS or email); else `null` (email, older
    /// messages).
    pub route: Option<RouteView<'a>>,
    pub provider: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub delivery_cycles: u32,
    pub next_attempt_at: Option<&'a str>,
    pub error: Option<ErrorView<'a>>,
    pub scheduled_at: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub sent_at: Option<&'a str>,
    pub delivered_at: Option<&'a str>,
    pub failed_at: Option<&'a str>,
    pub cancelled_at: Option<&'a str>,
    /// When retention dropped the subject and bodies (then `null`); `null` while they are kept.
    pub body_purged_at: Option<&'a str>,
}

/// A message's route: what matched its number (`+23767`, `CM`, `default`; `test` in test mode)
/// and the providers it tries, in order; or `accounts` and the workspace's provider accounts
/// (`pac_…`) it tries.
#[derive(Debug, Serialize)]
pub struct RouteView<'a> {
    pub matched: &'a str,
    pub providers: Vec<&'a str>,
}

/// A stored route (`+23767=avlytext,mboasms`, as `delivery::routes` writes it) split back into
/// what matched and its providers; `None` for anything else.
pub fn route_view(stored: &str) -> Option<RouteView<'_>> {
    let (matched, providers) = stored.split_once('=')?;
    Some(RouteView {
        matched,
        providers: providers.split(',').collect(),
    })
}

#[derive(Serialize)]
pub struct ErrorView<'a> {
    pub code: &'a str,
    pub message: Option<&'a str>,
}

pub fn error_view<'a>(code: Option<&'a str>, message: Option<&'a str>) -> Option<ErrorView<'a>> {
    code.map(|code| ErrorView { code, message })
}

pub fn message_view<'a>(message: &'a MessageRow) -> MessageView<'a> {
    MessageView {
        id: message.id.as_str(),
        status: message.status,
        channel: message.channel,
        category: message.category,
        mode: message.mode,
        to: &message.to_address,
        sender: message.sender.as_deref(),
        subject: message.subject.as_deref(),
        text: message.text.as_deref(),
        encoding: message.encoding.as_deref(),
        segments: message.segments,
        units: message.units,
        included_units: message.included_units,
        charge: MoneyView {
            amount_minor: message.charge_minor,
            currency: &message.currency,
        },
        charged: false,
        metadata: metadata_view(&message.metadata),
        campaign_id: message.campaign_id.as_deref(),
        contact_id: message.contact_id.as_ref().map(|id| id.as_str()),
        api_key_id: message.api_key_id.as_ref().map(ApiKeyId::as_str),
        route: message.route.as_deref().and_then(route_view),
        provider: message.provider.as_deref(),
        provider_message_id: message.provider_message_id.as_deref(),
        delivery_cycles: message.delivery_cycles,
        next_attempt_at: Some(&message.next_attempt_at),
        error: error_view(
            message.error_code.as_deref(),
            message.error_message.as_deref(),
        ),
        scheduled_at: message.scheduled_at.as_deref(),
        created_at: &message.created_at,
        updated_at: &message.updated_at,
        sent_at: message.sent_at.as_deref(),
        delivered_at: message.delivered_at.as_deref(),
        failed_at: message.failed_at.as_deref(),
        cancelled_at: message.cancelled_at.as_deref(),
        body_purged_at: message.body_purged_at.as_deref(),
    }
    .shown()
}

/// The columns `listed_view` reads, in its order: what a message's view shows and no more (not
/// the HTML body, the lease, the workspace).
pub const LISTED_COLUMNS: &str = "id, status, channel, category, mode, to_address, sender, \
    subject, text, encoding, segments, units, included_units, charge_minor, currency, metadata, \
    campaign_id, contact_id, api_key_id, route, provider, provider_message_id, delivery_cycles, \
    next_attempt_at, error_code, error_message, scheduled_at, created_at, updated_at, sent_at, \
    delivered_at, failed_at, cancelled_at, body_purged_at";

/// The view of the message in `row` (a `SELECT` of `LISTED_COLUMNS`), its text borrowed from
/// SQLite's copy of the row: a page of 50 is written without a string allocated per column
/// (reading the rows into `MessageRow`s first was a third of the page's CPU, its allocations
/// a sixth; docs/performance-log.md). The same view as `message_view` of the row read whole
/// (`a_listed_message_reads_as_its_whole_row_shows_it` compares them on every kind of row).
pub fn listed_view<'a>(row: &'a Row<'_>) -> rusqlite::Result<MessageView<'a>> {
    let text = |index| -> rusqlite::Result<&'a str> { Ok(row.get_ref(index)?.as_str()?) };
    let optional =
        |index| -> rusqlite::Result<Option<&'a str>> { Ok(row.get_ref(index)?.as_str_or_null()?) };
    Ok(MessageView {
        id: text(0)?,
        status: row.get(1)?,
        channel: row.get(2)?,
        category: row.get(3)?,
        mode: row.get(4)?,
        to: text(5)?,
        sender: optional(6)?,
        subject: optional(7)?,
        text: optional(8)?,
        encoding: optional(9)?,
        segments: row.get(10)?,
        units: unsigned(row, 11)?,
        included_units: unsigned(row, 12)?,
        charge: MoneyView {
            amount_minor: row.get(13)?,
            currency: text(14)?,
        },
        charged: false,
        metadata: metadata_view(text(15)?),
        campaign_id: optional(16)?,
        contact_id: optional(17)?,
        api_key_id: optional(18)?,
        route: optional(19)?.and_then(route_view),
        provider: optional(20)?,
        provider_message_id: optional(21)?,
        delivery_cycles: row.get(22)?,
        next_attempt_at: Some(text(23)?),
        error: error_view(optional(24)?, optional(25)?),
        scheduled_at: optional(26)?,
        created_at: text(27)?,
        updated_at: text(28)?,
        sent_at: optional(29)?,
        delivered_at: optional(30)?,
        failed_at: optional(31)?,
        cancelled_at: optional(32)?,
        body_purged_at: optional(33)?,
    }
    .shown())
}

/// Stored as the JSON object the client sent (validated on the way in); shown as is. A row that
/// somehow holds something else shows `null` rather than failing the whole page.
fn metadata_view(stored: &str) -> Option<&RawValue> {
    serde_json::from_str::<&RawValue>(stored).ok()
}

impl<'a> MessageView<'a> {
    /// The stored columns as the API shows them, whichever way they were read: a purged
    /// message keeps `''` where the schema needs a value and shows `null`; only a queued
    /// message has a next attempt; only live messages are charged.
    fn shown(mut self) -> MessageView<'a> {
        if self.body_purged_at.is_some() {
            self.subject = None;
            self.text = None;
        }
        if self.status != MessageStatus::Queued {
            self.next_attempt_at = None;
        }
        self.charged = self.mode == Mode::Live;
        self
    }
}

/// The message `id` of the workspace and mode as the API shows it (in a list), for an event;
/// `None` when there is none (an id of another kind, or erased since).
pub fn find_json(
    conn: &rusqlite::Connection,
    workspace_id: &crate::ids::WorkspaceId,
    mode: Mode,
    id: &str,
) -> Result<Option<serde_json::Value>, crate::error::AppError> {
    let Some(id) = crate::ids::MessageId::parse(id) else {
        return Ok(None);
    };
    let message = crate::messages::store::find_message(conn, workspace_id, mode, &id)?;
    message
        .map(|message| serde_json::to_value(message_view(&message)))
        .transpose()
        .map_err(crate::error::AppError::internal)
}
