//! Who is calling: the typed principal every protected handler works with, and the checks on it.
//!
//! A `Principal` can only be made by `auth::authenticate` (its fields are private to `auth`), so
//! holding one proves the request was authenticated.

use crate::api_keys::format::Scope;
use crate::error::AppError;
use crate::ids::{ApiKeyId, UserId, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;
use crate::workspaces::Role;

/// A console user with a session.
#[derive(Debug, Clone)]
pub struct SessionPrincipal {
    pub(super) session_id: String,
    pub(super) user_id: UserId,
    pub(super) is_instance_admin: bool,
    pub(super) csrf_token: String,
    /// The world the session looks at, live until the user switches.
    pub(super) mode: Mode,
    /// The session's active workspace and the user's role in it.
    pub(super) workspace: Option<(WorkspaceId, Role)>,
}

impl SessionPrincipal {
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    pub fn is_instance_admin(&self) -> bool {
        self.is_instance_admin
    }

    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    pub fn active_workspace(&self) -> Option<(&WorkspaceId, Role)> {
        self.workspace.as_ref().map(|(id, role)| (id, *role))
    }

    /// The active workspace, if the user's role there is at least `minimum`.
    pub fn require_role(&self, minimum: Role) -> Result<(WorkspaceScope, Role), AppError> {
        let (workspace_id, role) = self.active_workspace().ok_or(AppError::NotFound)?;
        if role < minimum {
            return Err(AppError::Forbidden(format!(
                "This needs the {} role or higher in the workspace; you are {}.",
                minimum.as_str(),
                role.as_str()
            )));
        }
        Ok((WorkspaceScope::trusted(workspace_id), role))
    }
}

/// An API key.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    pub(super) key_id: ApiKeyId,
    pub(super) workspace_id: WorkspaceId,
    pub(super) scopes: Vec<Scope>,
    pub(super) mode: Mode,
}

impl KeyPrincipal {
    pub fn key_id(&self) -> &ApiKeyId {
        &self.key_id
    }

    pub fn workspace_id(&self) -> &WorkspaceId {
        &self.workspace_id
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Principal {
    Session(SessionPrincipal),
    ApiKey(KeyPrincipal),
}

impl Principal {
    /// The workspace the request acts in: the key's, or the session's active one.
    pub fn workspace_id(&self) -> Option<&WorkspaceId> {
        match self {
            Principal::Session(session) => session.active_workspace().map(|(id, _)| id),
            Principal::ApiKey(key) => Some(key.workspace_id()),
        }
    }

    /// The world the caller works in: its key's mode, or the one the console session chose.
    pub fn mode(&self) -> Mode {
        match self {
            Principal::ApiKey(key) => key.mode(),
            Principal::Session(session) => session.mode,
        }
    }

    /// The console user behind the request; API keys are refused with 403 `forbidden`.
    pub fn require_session(&self) -> Result<&SessionPrincipal, AppError> {
        match self {
            Principal::Session(session) => Ok(session),
            Principal::ApiKey(_) => Err(AppError::Forbidden(
                "This endpoint is for console users; API keys cannot use it.".to_owned(),
            )),
        }
    }

    /// The console user, if an instance admin; anyone else gets 403 `forbidden`.
    pub fn require_instance_admin(&self) -> Result<&SessionPrincipal, AppError> {
        let session = self.require_session()?;
        if !session.is_instance_admin() {
            return Err(AppError::Forbidden(
                "Only instance admins can do this.".to_owned(),
            ));
        }
        Ok(session)
    }

    /// Any workspace, for an instance admin (the operator acts on every workspace); 403 for
    /// anyone else.
    pub fn require_instance_admin_in(
        &self,
        workspace_id: &WorkspaceId,
    ) -> Result<(&SessionPrincipal, WorkspaceScope), AppError> {
        let admin = self.require_instance_admin()?;
        Ok((admin, WorkspaceScope::trusted(workspace_id)))
    }

    /// `require_scope` for work that needs each of `scopes`: a key missing some is told every one
    /// it lacks at once (`details.missing_scopes`), not one per attempt.
    pub fn require_scopes(&self, scopes: &[Scope]) -> Result<WorkspaceScope, AppError> {
        let mut missing = Vec::new();
        let mut workspace = None;
        for scope in scopes {
            match self.require_scope(*scope) {
                Ok(granted) => workspace = Some(granted),
                Err(AppError::InsufficientScope { missing: more }) => missing.extend(more),
                Err(other) => return Err(other),
            }
        }
        if !missing.is_empty() {
            return Err(AppError::InsufficientScope { missing });
        }
        workspace.ok_or_else(|| AppError::internal("require_scopes was given no scope"))
    }

    /// The workspace, if the caller may use `scope` there: a key needs the scope; a session
    /// needs the role docs/rules/access.md gives that work (members send and manage contacts and
    /// campaigns; only owners and admins touch payments, webhooks and provider accounts).
    pub fn require_scope(&self, scope: Scope) -> Result<WorkspaceScope, AppError> {
        match self {
            Principal::ApiKey(key) if key.scopes.contains(&scope) => {
                Ok(WorkspaceScope::trusted(key.workspace_id()))
            }
            Principal::ApiKey(_) => Err(AppError::InsufficientScope {
                missing: vec![scope.as_str().to_owned()],
            }),
            Principal::Session(session) => {
                let minimum = match scope {
                    Scope::PaymentsWrite
                    | Scope::ActivityRead
                    | Scope::WebhooksRead
                    | Scope::WebhooksWrite
                    | Scope::DomainsRead
                    | Scope::DomainsWrite
                    | Scope::ProvidersRead
                    | Scope::ProvidersWrite => Role::Admin,
                    Scope::MessagesSend
                    | Scope::MessagesRead
                    | Scope::ContactsRead
                    | Scope::ContactsWrite
                    | Scope::CampaignsRead
                    | Scope::CampaignsWrite
                    | Scope::BillingRead => Role::Member,
                };
                session.require_role(minimum).map(|(id, _)| id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(role: Option<Role>) -> Principal {
        Principal::Session(SessionPrincipal {
            session_id: "ses_1".into(),
            user_id: UserId::parse("usr_1").unwrap(),
            is_instance_admin: false,
            csrf_token: "csrf".into(),
            mode: Mode::Live,
            workspace: role.map(|role| (WorkspaceId::parse("wsp_1").unwrap(), role)),
        })
    }

    fn key(scopes: &[Scope]) -> Principal {
        Principal::ApiKey(KeyPrincipal {
            key_id: ApiKeyId::parse("key_1").unwrap(),
            workspace_id: WorkspaceId::parse("wsp_1").unwrap(),
            scopes: scopes.to_vec(),
            mode: Mode::Live,
        })
    }

    #[test]
    fn keys_need_their_scope_and_report_what_is_missing() {
        assert_eq!(
            key(&[Scope::MessagesSend])
                .require_scope(Scope::MessagesSend)
                .unwrap()
                .id()
                .as_str(),
            "wsp_1"
        );
        match key(&[Scope::MessagesRead]).require_scope(Scope::MessagesSend) {
            Err(AppError::InsufficientScope { missing }) => {
                assert_eq!(missing, vec!["messages:send"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn work_needing_several_scopes_names_every_one_missing() {
        let both = [Scope::CampaignsWrite, Scope::MessagesSend];
        match key(&[Scope::ActivityRead]).require_scopes(&both) {
            Err(AppError::InsufficientScope { missing }) => {
                assert_eq!(missing, ["campaigns:write", "messages:send"]);
            }
            other => panic!("{other:?}"),
        }
        match key(&[Scope::CampaignsWrite]).require_scopes(&both) {
            Err(AppError::InsufficientScope { missing }) => assert_eq!(missing, ["messages:send"]),
            other => panic!("{other:?}"),
        }
        assert!(key(&both).require_scopes(&both).is_ok());
        assert!(session(Some(Role::Member)).require_scopes(&both).is_ok());
        assert!(session(None).require_scopes(&both).is_err());
    }

    #[test]
    fn sessions_are_checked_by_role() {
        assert!(
            session(Some(Role::Member))
                .require_scope(Scope::MessagesSend)
                .is_ok()
        );
        assert_eq!(
            session(Some(Role::Member))
                .require_scope(Scope::PaymentsWrite)
                .unwrap_err()
                .code(),
            "forbidden"
        );
        assert!(
            session(Some(Role::Admin))
                .require_scope(Scope::PaymentsWrite)
                .is_ok()
        );
        assert_eq!(
            session(None)
                .require_scope(Scope::MessagesSend)
                .unwrap_err()
                .code(),
            "not_found"
        );
    }

    #[test]
    fn keys_are_not_console_users() {
        assert_eq!(
            key(&Scope::ALL).require_session().unwrap_err().code(),
            "forbidden"
        );
        assert!(session(Some(Role::Owner)).require_session().is_ok());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
        for role in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
