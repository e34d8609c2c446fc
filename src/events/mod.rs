//! Events: the outbox of what happened in a workspace, for its webhook endpoints
//! (docs/design/webhooks.md). The lowest domain, so every domain that changes something may
//! record an event in its own transaction.
//!
//! Most events are recorded by the database itself: triggers on `messages`, `campaigns`,
//! `payment_sessions` (migration V30) `contact_imports` and `contacts` (V31) write a row in the transaction that changes the status,
//! whatever code path changes it. Code records the others with `record`. A row starts without
//! an id or a body; the webhook runner prepares it (`evt_…` id, the object as the API shows it,
//! one delivery per endpoint that wants it) in one later transaction. Events are recorded only
//! while the workspace has a webhook endpoint in that mode.

pub mod store;

use rusqlite::Connection;

use crate::error::AppError;
use crate::ids::WorkspaceId;
use crate::vocabulary::Mode;

crate::text_enum! {
    /// What an event reports. Stable: customers' code matches on these words.
    pub enum EventType {
        MessageSent = "message.sent",
        MessageDelivered = "message.delivered",
        MessageFailed = "message.failed",
        MessageCancelled = "message.cancelled",
        CampaignLaunched = "campaign.launched",
        CampaignCompleted = "campaign.completed",
        CampaignFailed = "campaign.failed",
        PaymentSucceeded = "payment.succeeded",
        PaymentFailed = "payment.failed",
        PaymentRefunded = "payment.refunded",
        ContactUnsubscribed = "contact.unsubscribed",
        ImportCompleted = "import.completed",
        WalletLowBalance = "wallet.low_balance",
        /// Sent only by `POST /v1/webhook-endpoints/{id}/test`, to that endpoint alone.
        WebhookTest = "webhook.test",
    }
}

/// The kind of object an event carries, from its type's first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Message,
    Campaign,
    Payment,
    Contact,
    Import,
    /// The wallet after a debit took it below the workspace's threshold (the object id is the
    /// ledger entry of that debit).
    Wallet,
    WebhookEndpoint,
}

impl EventType {
    /// The types an endpoint may subscribe to (every one but the test event).
    pub fn subscribable() -> impl Iterator<Item = EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(|kind| *kind != EventType::WebhookTest)
    }

    pub fn object_kind(self) -> ObjectKind {
        match self {
            EventType::MessageSent
            | EventType::MessageDelivered
            | EventType::MessageFailed
            | EventType::MessageCancelled => ObjectKind::Message,
            EventType::CampaignLaunched
            | EventType::CampaignCompleted
            | EventType::CampaignFailed => ObjectKind::Campaign,
            EventType::PaymentSucceeded | EventType::PaymentFailed | EventType::PaymentRefunded => {
                ObjectKind::Payment
            }
            EventType::ContactUnsubscribed => ObjectKind::Contact,
            EventType::ImportCompleted => ObjectKind::Import,
            EventType::WalletLowBalance => ObjectKind::Wallet,
            EventType::WebhookTest => ObjectKind::WebhookEndpoint,
        }
    }
}

/// What `record` writes: an event about `object_id`, of `event_type`, in the workspace and mode
/// of the change, at the change's time.
pub struct NewEvent<'a> {
    pub workspace_id: &'a WorkspaceId,
    pub mode: Mode,
    pub event_type: EventType,
    pub object_id: &'a str,
    pub created_at: &'a str,
}

/// Records an event inside the caller's transaction, to be prepared and delivered later. Like
/// the triggers, only while the workspace has an endpoint in that mode.
pub fn record(conn: &Connection, event: &NewEvent<'_>) -> Result<(), AppError> {
    store::insert_unprepared(conn, event)
}

/// Events written but not prepared yet, oldest first.
pub fn unprepared(conn: &Connection, limit: usize) -> Result<Vec<store::EventRow>, AppError> {
    store::list_unprepared(conn, limit)
}

/// Gives a recorded event its id and body (`payload`): it is then what every delivery sends.
pub fn prepare(
    conn: &Connection,
    seq: i64,
    id: &str,
    payload: &str,
    now: &str,
) -> Result<(), AppError> {
    store::mark_prepared(conn, seq, id, payload, now)
}

/// Writes an event already prepared (a test event, whose body is made at once).
pub fn insert_prepared(
    conn: &Connection,
    event: &NewEvent<'_>,
    id: &str,
    payload: &str,
) -> Result<(), AppError> {
    store::insert_prepared(conn, event, id, payload)
}

/// The body of a prepared event, by id and workspace.
pub fn payload(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<Option<String>, AppError> {
    store::find_payload(conn, workspace_id, id)
}

/// Deletes prepared events created before `before`, at most `limit`; returns how many.
pub fn prune(conn: &Connection, before: &str, limit: usize) -> Result<usize, AppError> {
    store::delete_prepared_before(conn, before, limit)
}
