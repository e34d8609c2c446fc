//! The activity log: who did what, when, from where (docs/API.md, "Activity").
//!
//! Every state-changing action users care about is recorded by `record`, called inside the same
//! write transaction as the change, so a change that rolls back leaves no entry and an entry
//! never describes a change that did not happen. The web layer builds the `Actor` (the user or
//! API key behind the request, its IP and request id) once per request; `crier admin` commands
//! record as the operator. Values that could identify a person are redacted before they are
//! stored (`mask_phone`, `mask_email`); secrets and message bodies are never passed in.
//!
//! One-off sends (`POST /v1/messages`) are not recorded: they are the messages list's business
//! and would drown the log. Campaigns are recorded when created, launched and cancelled.
//! A payment is recorded when its session is written, before the provider is called; its
//! outcome is the payments list's and the ledger's business.

mod store;

use rusqlite::Connection;

use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{ApiKeyId, Ids, UserId, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::text_enum;
use crate::vocabulary::Mode;

pub use store::Entry as StoredEntry;

text_enum! {
    /// Who acted: a console user, an API key, the operator (`crier admin …` on the server), or
    /// nobody signed in (a failed sign-in).
    pub enum ActorType {
        User = "user",
        ApiKey = "api_key",
        Operator = "operator",
        Anonymous = "anonymous",
    }
}

text_enum! {
    /// What was done: `<object>.<past tense>`. Stable: values are added, never renamed.
    pub enum Action {
        InstanceSetUp = "instance.set_up",
        SessionSignedIn = "session.signed_in",
        SessionSignInFailed = "session.sign_in_failed",
        SessionSignedOut = "session.signed_out",
        SessionModeSwitched = "session.mode_switched",
        UserCreated = "user.created",
        ApiKeyCreated = "api_key.created",
        ApiKeyRevoked = "api_key.revoked",
        ApiKeyRotated = "api_key.rotated",
        WorkspaceCreated = "workspace.created",
        WorkspaceRenamed = "workspace.renamed",
        MemberInvited = "member.invited",
        MemberJoined = "member.joined",
        MemberRoleChanged = "member.role_changed",
        MemberRemoved = "member.removed",
        InvitationRevoked = "invitation.revoked",
        SenderIdRequested = "sender_id.requested",
        SenderIdApproved = "sender_id.approved",
        SenderIdRejected = "sender_id.rejected",
        VerificationRequested = "verification.requested",
        VerificationApproved = "verification.approved",
        VerificationRejected = "verification.rejected",
        PlanChanged = "plan.changed",
        WalletAdjusted = "wallet.adjusted",
        PaymentStarted = "payment.started",
        ContactCreated = "contact.created",
        ContactUpdated = "contact.updated",
        ContactDeleted = "contact.deleted",
        ContactErased = "contact.erased",
        ContactsExported = "contacts.exported",
        ContactsImportStarted = "contacts.import_started",
        ContactFieldCreated = "contact_field.created",
        ContactFieldUpdated = "contact_field.updated",
        ContactFieldDeleted = "contact_field.deleted",
        GroupCreated = "group.created",
        GroupRenamed = "group.renamed",
        GroupDeleted = "group.deleted",
        GroupMembersAdded = "group.members_added",
        GroupMembersRemoved = "group.members_removed",
        SegmentCreated = "segment.created",
        SegmentUpdated = "segment.updated",
        SegmentDeleted = "segment.deleted",
        CampaignCreated = "campaign.created",
        CampaignLaunched = "campaign.launched",
        CampaignCancelled = "campaign.cancelled",
        WebhookEndpointCreated = "webhook_endpoint.created",
        WebhookEndpointUpdated = "webhook_endpoint.updated",
        WebhookEndpointDeleted = "webhook_endpoint.deleted",
        WebhookEndpointSecretRotated = "webhook_endpoint.secret_rotated",
        SendingDomainCreated = "sending_domain.created",
        SendingDomainFromChanged = "sending_domain.from_changed",
        SendingDomainApproved = "sending_domain.approved",
        SendingDomainRejected = "sending_domain.rejected",
        SendingDomainDeleted = "sending_domain.deleted",
        ProviderAccountCreated = "provider_account.created",
        ProviderAccountUpdated = "provider_account.updated",
        ProviderAccountDeleted = "provider_account.deleted",
    }
}

/// Who is acting, and from where: built once per request by the web layer (or by a command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    actor_type: ActorType,
    id: Option<String>,
    ip: Option<String>,
    request_id: Option<String>,
}

impl Actor {
    pub fn user(id: &UserId, ip: &str, request_id: &str) -> Actor {
        Actor::from_request(ActorType::User, Some(id.as_str()), ip, request_id)
    }

    pub fn api_key(id: &ApiKeyId, ip: &str, request_id: &str) -> Actor {
        Actor::from_request(ActorType::ApiKey, Some(id.as_str()), ip, request_id)
    }

    /// Nobody signed in (a failed sign-in), from `ip`.
    pub fn anonymous(ip: &str, request_id: &str) -> Actor {
        Actor::from_request(ActorType::Anonymous, None, ip, request_id)
    }

    /// The operator, running `crier admin …` on the server: no IP, no request.
    pub fn operator() -> Actor {
        Actor {
            actor_type: ActorType::Operator,
            id: None,
            ip: None,
            request_id: None,
        }
    }

    fn from_request(actor_type: ActorType, id: Option<&str>, ip: &str, request_id: &str) -> Actor {
        Actor {
            actor_type,
            id: id.map(str::to_owned),
            ip: Some(ip.to_owned()),
            request_id: Some(request_id.to_owned()),
        }
    }

    pub fn actor_type(&self) -> ActorType {
        self.actor_type
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// One thing done, to record: built with `Event::about(action, workspace, mode, target)` (or
/// `Event::new(action)`) and the setters.
#[derive(Debug, Clone)]
pub struct Event {
    action: Action,
    workspace_id: Option<WorkspaceId>,
    mode: Option<Mode>,
    target_id: Option<String>,
    details: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    pub fn new(action: Action) -> Event {
        Event {
            action,
            workspace_id: None,
            mode: None,
            target_id: None,
            details: serde_json::Map::new(),
        }
    }

    /// The common case: `action` on `target` of a workspace, in `mode`.
    pub fn about(
        action: Action,
        workspace_id: &WorkspaceId,
        mode: Mode,
        target: impl Into<String>,
    ) -> Event {
        Event::new(action)
            .workspace(workspace_id)
            .mode(mode)
            .target(target)
    }

    /// The workspace it happened in.
    pub fn workspace(mut self, workspace_id: &WorkspaceId) -> Event {
        self.workspace_id = Some(workspace_id.clone());
        self
    }

    /// The world (live or test) of the object changed; unset for what is the same in both.
    pub fn mode(mut self, mode: Mode) -> Event {
        self.mode = Some(mode);
        self
    }

    /// The id of what was acted on (`key_…`, `cmp_…`, `usr_…`).
    pub fn target(mut self, id: impl Into<String>) -> Event {
        self.target_id = Some(id.into());
        self
    }

    /// A detail shown with the entry. Callers pass redacted values only (`mask_phone`,
    /// `mask_email`), never a secret or a message body.
    pub fn detail(mut self, name: &str, value: impl Into<serde_json::Value>) -> Event {
        self.details.insert(name.to_owned(), value.into());
        self
    }
}

/// Records `event` done by `actor` at `now`. Call it inside the transaction of the change.
pub fn record(
    conn: &Connection,
    ids: &Ids,
    actor: &Actor,
    event: Event,
    now: Timestamp,
) -> Result<(), AppError> {
    let details = serde_json::Value::Object(event.details).to_string();
    store::insert(
        conn,
        &store::NewEntry {
            id: ids.new_id("act"),
            workspace_id: event.workspace_id.as_ref(),
            mode: event.mode,
            actor_type: actor.actor_type,
            actor_id: actor.id.as_deref(),
            action: event.action,
            target_id: event.target_id.as_deref(),
            details: &details,
            ip: actor.ip.as_deref(),
            request_id: actor.request_id.as_deref(),
            created_at: &format_timestamp(now),
        },
    )
}

/// What a list may be narrowed to; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor_type: Option<ActorType>,
    /// A user or key id.
    pub actor_id: Option<String>,
    pub action: Option<Action>,
    pub target_id: Option<String>,
    /// `created_at >= since`, RFC 3339 (normalised by the caller).
    pub since: Option<String>,
    /// `created_at < until`.
    pub until: Option<String>,
    /// Only for the instance-wide list.
    pub workspace_id: Option<WorkspaceId>,
}

/// The workspace's entries, newest first: those of `mode` and those of both worlds; after
/// `cursor` (an entry id), at most `limit`.
pub fn list_for_workspace(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    filter: &Filter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredEntry>, AppError> {
    store::list(conn, Some(scope.id()), Some(mode), filter, cursor, limit)
}

/// Every workspace's entries and those of no workspace, for the instance admin.
pub fn list_all(
    conn: &Connection,
    filter: &Filter,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredEntry>, AppError> {
    store::list(
        conn,
        filter.workspace_id.as_ref(),
        None,
        filter,
        cursor,
        limit,
    )
}

/// Deletes at most `limit` entries older than `cutoff`; returns how many.
pub fn delete_older_than(
    conn: &Connection,
    cutoff: Timestamp,
    limit: usize,
) -> Result<usize, AppError> {
    store::delete_older_than(conn, &format_timestamp(cutoff), limit)
}

/// A phone number to its last digits: `+237670000042` → `••••••••0042`, keeping only the
/// length's hint and the last 4 digits (fewer for a short number).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let shown = digits.len().saturating_sub(4).max(digits.len() / 2);
    let tail: String = digits[shown..].iter().collect();
    format!("{}{tail}", "•".repeat(shown))
}

/// An email with its local part hidden but its first character: `ada@example.com` →
/// `a•••@example.com`. Text without `@` is hidden whole.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_only_their_last_digits() {
        assert_eq!(mask_phone("+237670000042"), "••••••••0042");
        assert_eq!(mask_phone("+1 555"), "••55");
        assert_eq!(mask_phone(""), "");
        assert!(!mask_phone("+237670000042").contains("67000"));
    }

    #[test]
    fn emails_keep_their_first_letter_and_domain() {
        assert_eq!(mask_email("ada@example.com"), "a•••@example.com");
        assert_eq!(mask_email("not-an-email"), "•••");
    }

    #[test]
    fn actions_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(*action));
            let (object, verb) = action.as_str().split_once('.').unwrap_or(("", ""));
            assert!(!object.is_empty() && !verb.is_empty(), "{action}");
        }
    }
}
