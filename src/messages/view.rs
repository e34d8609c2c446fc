//! A message as the API shows it: one view shared by `GET /v1/messages/{id}` (which adds the
//! attempts) and the `message.*` webhook events, so both show the same object.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::billing::Channel;
use crate::ids::ApiKeyId;
use crate::messages::MessageStatus;
use crate::messages::compose::Category;
use crate::messages::store::MessageRow;
use crate::money::Money;
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
    pub charge: Money,
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

pub fn error_view<'a>(
    code: &'a Option<String>,
    message: &'a Option<String>,
) -> Option<ErrorView<'a>> {
    code.as_deref().map(|code| ErrorView {
        code,
        message: message.as_deref(),
    })
}

pub fn message_view<'a>(message: &'a MessageRow) -> MessageView<'a> {
    // Stored as the JSON object the client sent (validated on the way in); shown as is. A row
    // that somehow holds something else shows `null` rather than failing the whole page.
    let metadata = serde_json::from_str::<&RawValue>(&message.metadata).ok();
    // A purged message keeps `''` where the schema needs a value; the API shows `null`.
    let kept =
        |body: &'a Option<String>| body.as_deref().filter(|_| message.body_purged_at.is_none());
    MessageView {
        id: message.id.as_str(),
        status: message.status,
        channel: message.channel,
        category: message.category,
        mode: message.mode,
        to: &message.to_address,
        sender: message.sender.as_deref(),
        subject: kept(&message.subject),
        text: kept(&message.text),
        encoding: message.encoding.as_deref(),
        segments: message.segments,
        units: message.units,
        included_units: message.included_units,
        charge: Money::new(message.charge_minor, &message.currency),
        charged: message.mode == Mode::Live,
        metadata,
        campaign_id: message.campaign_id.as_deref(),
        contact_id: message.contact_id.as_ref().map(|id| id.as_str()),
        api_key_id: message.api_key_id.as_ref().map(ApiKeyId::as_str),
        route: message.route.as_deref().and_then(route_view),
        provider: message.provider.as_deref(),
        provider_message_id: message.provider_message_id.as_deref(),
        delivery_cycles: message.delivery_cycles,
        next_attempt_at: (message.status == MessageStatus::Queued)
            .then_some(message.next_attempt_at.as_str()),
        error: error_view(&message.error_code, &message.error_message),
        scheduled_at: message.scheduled_at.as_deref(),
        created_at: &message.created_at,
        updated_at: &message.updated_at,
        sent_at: message.sent_at.as_deref(),
        delivered_at: message.delivered_at.as_deref(),
        failed_at: message.failed_at.as_deref(),
        cancelled_at: message.cancelled_at.as_deref(),
        body_purged_at: message.body_purged_at.as_deref(),
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
