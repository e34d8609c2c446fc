//! HTTP for workspaces, members and invitations.

use serde::{Deserialize, Serialize};

use crate::activity::{Action, Actor, Event, mask_email};
use crate::app::App;
use crate::auth::principal::Principal;
use crate::auth::{self, OpenedSession, SignedIn};
use crate::billing::catalog::Catalog;
use crate::billing::{self, Channel};
use crate::clock::{Timestamp, format_timestamp, parse_timestamp};
use crate::error::{AppError, FieldErrors};
use crate::ids::{UserId, WorkspaceId};
use crate::money::Money;
use crate::secrets;
use crate::users::store::{self as user_store, User};
use crate::users::{self, NewUser};
use crate::validate;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::{
    CSRF_HEADER, UserView, authenticate_request, hash_for_storage, session_from_cookie,
    signed_in_response,
};
use crate::web::idempotency::{self, Per, Requirement};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;
use crate::workspaces;
use crate::workspaces::Role;
use crate::workspaces::store::{self, Invitation, Member, Workspace, WorkspaceOverview};

/// A workspace as the API shows it.
#[derive(Debug, Serialize)]
pub struct WorkspaceView<'a> {
    id: &'a str,
    name: &'a str,
    created_at: &'a str,
}

impl<'a> From<&'a Workspace> for WorkspaceView<'a> {
    fn from(workspace: &'a Workspace) -> WorkspaceView<'a> {
        WorkspaceView {
            id: workspace.id.as_str(),
            name: &workspace.name,
            created_at: &workspace.created_at,
        }
    }
}

/// A workspace of the user with their role in it (`/v1/auth/me`, `GET /v1/workspaces`, and
/// activating a workspace).
#[derive(Serialize)]
pub struct MembershipView<'a> {
    workspace: WorkspaceView<'a>,
    role: &'static str,
}

impl<'a> From<&'a (Workspace, Role)> for MembershipView<'a> {
    fn from((workspace, role): &'a (Workspace, Role)) -> MembershipView<'a> {
        MembershipView {
            workspace: WorkspaceView::from(workspace),
            role: role.as_str(),
        }
    }
}

/// `GET /v1/workspace`: the workspace, and what the caller is in it.
#[derive(Serialize)]
struct CurrentWorkspaceView<'a> {
    #[serde(flatten)]
    workspace: WorkspaceView<'a>,
    #[serde(flatten)]
    caller: CallerView<'a>,
}

/// A console session shows its role (`null` if it has none); an API key shows itself.
#[derive(Serialize)]
#[serde(untagged)]
enum CallerView<'a> {
    Session { role: Option<&'static str> },
    ApiKey { api_key: CallingKeyView<'a> },
}

#[derive(Serialize)]
struct CallingKeyView<'a> {
    id: &'a str,
    mode: Mode,
    scopes: Vec<&'static str>,
}

#[derive(Serialize)]
struct MemberView<'a> {
    user: UserView<'a>,
    role: &'static str,
    joined_at: &'a str,
}

impl<'a> From<&'a Member> for MemberView<'a> {
    fn from(member: &'a Member) -> MemberView<'a> {
        MemberView {
            user: UserView::from(&member.user),
            role: member.role.as_str(),
            joined_at: &member.joined_at,
        }
    }
}

/// A pending invitation as the API shows it: never its token.
#[derive(Serialize)]
struct InvitationView<'a> {
    id: &'a str,
    email: &'a str,
    role: &'static str,
    created_at: &'a str,
    expires_at: &'a str,
}

impl<'a> From<&'a Invitation> for InvitationView<'a> {
    fn from(invitation: &'a Invitation) -> InvitationView<'a> {
        InvitationView {
            id: &invitation.id,
            email: &invitation.email,
            role: invitation.role.as_str(),
            created_at: &invitation.created_at,
            expires_at: &invitation.expires_at,
        }
    }
}

/// A new invitation: the one answer that shows its token and link.
#[derive(Serialize)]
struct CreatedInvitationView<'a> {
    #[serde(flatten)]
    invitation: InvitationView<'a>,
    token: &'a str,
    accept_url: String,
}

fn role_field(text: &str, fields: &mut FieldErrors) -> Option<Role> {
    let role = Role::parse(text);
    if role.is_none() {
        fields.add("role", "must be owner, admin or member");
    }
    role
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

fn workspace_name(body: &NameBody) -> Result<String, AppError> {
    validate::text(&body.name, 1, 100).map_err(|why| AppError::invalid_field("name", why))
}

/// `POST /v1/workspaces`: a new workspace owned by the caller. Accepts an `Idempotency-Key`.
pub fn create_workspace(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let name = workspace_name(&request.json()?)?;
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(
        app,
        request,
        &principal,
        (Requirement::Optional, Per::User),
        |conn| {
            let workspace = workspaces::create_workspace(
                conn,
                &app.ids,
                &name,
                session.user_id(),
                &app.config.billing_catalog.currency,
                now,
            )?;
            let event = Event::new(Action::WorkspaceCreated)
                .workspace(&workspace.id)
                .target(workspace.id.as_str())
                .detail("name", workspace.name.as_str());
            record(app, conn, &actor, event)?;
            ApiResponse::json(201, &WorkspaceView::from(&workspace))
        },
    )
}

/// `GET /v1/workspaces`: the caller's workspaces and roles, oldest membership first, paginated.
pub fn list_workspaces(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let page = request.page()?;
    let memberships = app.db.read(|conn| {
        store::page_user_workspaces(
            conn,
            session.user_id(),
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    let (memberships, next_cursor) =
        page.split(memberships, |(workspace, _)| workspace.id.as_str());
    let data: Vec<MembershipView<'_>> = memberships.iter().map(MembershipView::from).collect();
    page_response(&data, next_cursor)
}

/// `POST /v1/workspaces/{id}/activate`: makes a workspace of the caller's the session's active one.
/// Accepts an `Idempotency-Key`.
pub fn activate_workspace(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let workspace_id = WorkspaceId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    idempotency::in_transaction(
        app,
        request,
        &principal,
        (Requirement::Optional, Per::User),
        |conn| {
            let role = store::find_role(conn, &workspace_id, session.user_id())?
                .ok_or(AppError::NotFound)?;
            let workspace =
                store::find_workspace(conn, &workspace_id)?.ok_or(AppError::NotFound)?;
            auth::store::set_active_workspace(conn, session.session_id(), Some(&workspace_id))?;
            ApiResponse::json(200, &MembershipView::from(&(workspace, role)))
        },
    )
}

/// `GET /v1/workspace`: the workspace the caller acts in (any API key may ask).
pub fn show_workspace(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal
        .workspace_id()
        .ok_or(AppError::NotFound)?
        .to_owned();
    let workspace = app
        .db
        .read(|conn| store::find_workspace(conn, &workspace_id))?
        .ok_or(AppError::NotFound)?;
    let caller = match &principal {
        Principal::Session(session) => CallerView::Session {
            role: session.active_workspace().map(|(_, role)| role.as_str()),
        },
        Principal::ApiKey(key) => CallerView::ApiKey {
            api_key: CallingKeyView {
                id: key.key_id().as_str(),
                mode: key.mode(),
                scopes: key.scopes().iter().map(|scope| scope.as_str()).collect(),
            },
        },
    };
    ApiResponse::json(
        200,
        &CurrentWorkspaceView {
            workspace: WorkspaceView::from(&workspace),
            caller,
        },
    )
}

/// `PATCH /v1/workspace`: renames the active workspace (owner or admin).
pub fn rename_workspace(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Admin)?;
    let workspace_id = scope.id();
    let name = workspace_name(&request.json()?)?;
    let actor = actor(app, request, &principal);
    let workspace = app.db.write(|conn| {
        store::rename_workspace(conn, workspace_id, &name)?;
        let event = Event::new(Action::WorkspaceRenamed)
            .workspace(workspace_id)
            .target(workspace_id.as_str())
            .detail("name", name.as_str());
        record(app, conn, &actor, event)?;
        store::find_workspace(conn, workspace_id)?.ok_or(AppError::NotFound)
    })?;
    ApiResponse::json(200, &WorkspaceView::from(&workspace))
}

/// `GET /v1/workspace/members`: longest-standing member first, paginated.
pub fn list_members(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Member)?;
    let workspace_id = scope.id();
    let page = request.page()?;
    let members = app.db.read(|conn| {
        store::list_members(conn, workspace_id, page.cursor.as_deref(), page.fetch())
    })?;
    let (members, next_cursor) = page.split(members, |member| member.user.id.as_str());
    let data: Vec<MemberView<'_>> = members.iter().map(MemberView::from).collect();
    page_response(&data, next_cursor)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

/// `PATCH /v1/workspace/members/{user_id}`.
pub fn change_member_role(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let body: RoleBody = request.json()?;
    let mut fields = FieldErrors::new();
    let role = role_field(&body.role, &mut fields);
    fields.into_result()?;
    let role = role.ok_or_else(|| AppError::internal("validated role missing"))?;
    let user_id = UserId::parse(request.param("user_id")).ok_or(AppError::NotFound)?;
    let actor = actor(app, request, &principal);
    let member = app.db.write(|conn| {
        let member = workspaces::change_role(conn, &scope, session.user_id(), &user_id, role)?;
        let event = Event::new(Action::MemberRoleChanged)
            .workspace(scope.id())
            .target(user_id.as_str())
            .detail("role", role.as_str());
        record(app, conn, &actor, event)?;
        Ok(member)
    })?;
    ApiResponse::json(200, &MemberView::from(&member))
}

/// `DELETE /v1/workspace/members/{user_id}`.
pub fn remove_member(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Member)?;
    let user_id = UserId::parse(request.param("user_id")).ok_or(AppError::NotFound)?;
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        auth::remove_member(conn, &scope, session.user_id(), &user_id)?;
        let event = Event::new(Action::MemberRemoved)
            .workspace(scope.id())
            .target(user_id.as_str());
        record(app, conn, &actor, event)
    })?;
    Ok(ApiResponse::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    role: String,
}

/// `POST /v1/workspace/invitations`: the token and link are shown once.
pub fn create_invitation(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let (scope, _) = session.require_role(Role::Admin)?;
    let body: InviteBody = request.json()?;
    let mut fields = FieldErrors::new();
    let email = validate::email(&body.email)
        .map_err(|why| fields.add("email", why))
        .ok();
    let role = role_field(&body.role, &mut fields);
    fields.into_result()?;
    let (Some(email), Some(role)) = (email, role) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let now = app.clock.now();
    let actor = actor(app, request, &principal);
    let created = app.db.write(|conn| {
        let created =
            workspaces::invite(conn, &app.ids, &scope, session.user_id(), &email, role, now)?;
        let event = Event::new(Action::MemberInvited)
            .workspace(scope.id())
            .target(created.invitation.id.as_str())
            .detail("email", mask_email(&email))
            .detail("role", role.as_str());
        record(app, conn, &actor, event)?;
        Ok(created)
    })?;
    let accept_url = format!(
        "{}/invitations/accept?token={}",
        app.config.public_url.trim_end_matches('/'),
        created.token
    );
    ApiResponse::json(
        201,
        &CreatedInvitationView {
            invitation: InvitationView::from(&created.invitation),
            token: &created.token,
            accept_url,
        },
    )
}

/// `GET /v1/workspace/invitations`: pending invitations (never their tokens), newest first,
/// paginated.
pub fn list_invitations(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Admin)?;
    let workspace_id = scope.id();
    let page = request.page()?;
    let now = format_timestamp(app.clock.now());
    let invitations = app.db.read(|conn| {
        store::list_pending_invitations(
            conn,
            workspace_id,
            &now,
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    let (invitations, next_cursor) = page.split(invitations, |invitation| invitation.id.as_str());
    let data: Vec<InvitationView<'_>> = invitations.iter().map(InvitationView::from).collect();
    page_response(&data, next_cursor)
}

/// `DELETE /v1/workspace/invitations/{id}`.
pub fn revoke_invitation(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let (scope, _) = principal.require_session()?.require_role(Role::Admin)?;
    let workspace_id = scope.id();
    let id = request.param("id").to_owned();
    let now = format_timestamp(app.clock.now());
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        if !store::revoke_invitation(conn, workspace_id, &id, &now)? {
            return Err(AppError::NotFound);
        }
        let event = Event::new(Action::InvitationRevoked)
            .workspace(workspace_id)
            .target(id.as_str());
        record(app, conn, &actor, event)
    })?;
    Ok(ApiResponse::no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    token: String,
    name: Option<String>,
    password: Option<String>,
}

/// `POST /v1/invitations/accept`: joins the workspace as the invited email — an existing user
/// with their session, or a new user from `name` and `password` — and signs in.
pub fn accept_invitation(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let body: AcceptBody = request.json()?;
    let now = app.clock.now();
    let now_text = format_timestamp(now);
    let token_hash = secrets::token_hash(&body.token);
    let (invitation, existing_user) = app.db.read(|conn| {
        let invitation = store::find_pending_invitation(conn, &token_hash, &now_text)?
            .ok_or(AppError::NotFound)?;
        let user = user_store::find_user_by_email(conn, &invitation.email)?;
        Ok((invitation, user))
    })?;
    let signed_in = match existing_user {
        Some(user) => accept_as_signed_in_user(app, request, &body.token, user)?,
        None => accept_as_new_user(app, request, &body, &invitation.email)?,
    };
    signed_in_response(app, 200, &signed_in)
}

/// The invited account exists: it must be the one signed in on this request.
fn accept_as_signed_in_user(
    app: &App,
    request: &Request<'_>,
    invitation_token: &str,
    user: User,
) -> Result<SignedIn, AppError> {
    let (session, session_token) = session_from_cookie(app, request)?;
    // This changes an existing session (a membership, the active workspace): same CSRF rule
    // as every other session mutation.
    let presented = request.header(CSRF_HEADER).unwrap_or("");
    if !secrets::constant_time_eq(presented.as_bytes(), session.csrf_token().as_bytes()) {
        return Err(AppError::CsrfFailed);
    }
    if *session.user_id() != user.id {
        return Err(AppError::Forbidden(
            "This invitation was sent to another account; log in as that account first.".to_owned(),
        ));
    }
    let now = app.clock.now();
    let actor = Actor::user(
        &user.id,
        &request.client_ip(&app.config.trusted_proxies),
        request.request_id(),
    );
    app.db.write(|conn| {
        let invitation = workspaces::accept_invitation(conn, invitation_token, &user.id, now)?;
        record(app, conn, &actor, joined(&invitation, &user.id))?;
        auth::store::set_active_workspace(
            conn,
            session.session_id(),
            Some(&invitation.workspace_id),
        )?;
        let workspace = store::find_workspace(conn, &invitation.workspace_id)?;
        Ok(SignedIn {
            user,
            workspace: workspace.map(|workspace| (workspace, invitation.role)),
            session: OpenedSession {
                token: session_token,
                csrf_token: session.csrf_token().to_owned(),
            },
        })
    })
}

/// Nobody has the invited email yet: `name` and `password` create the account.
fn accept_as_new_user(
    app: &App,
    request: &Request<'_>,
    body: &AcceptBody,
    email: &str,
) -> Result<SignedIn, AppError> {
    let mut fields = FieldErrors::new();
    let required = "is required to create your account";
    let name = match &body.name {
        Some(name) => validate::text(name, 1, 100)
            .map_err(|why| fields.add("name", why))
            .ok(),
        None => {
            fields.add("name", required);
            None
        }
    };
    let password = match &body.password {
        Some(password) => validate::password(password)
            .map(|()| password.as_str())
            .map_err(|why| fields.add("password", why))
            .ok(),
        None => {
            fields.add("password", required);
            None
        }
    };
    fields.into_result()?;
    let (Some(name), Some(password)) = (name, password) else {
        return Err(AppError::internal("validated fields missing"));
    };
    let password_hash = hash_for_storage(app, password);
    let now = app.clock.now();
    app.db.write(|conn| {
        let new_user = NewUser {
            email: email.to_owned(),
            name,
            password_hash,
        };
        let user = users::create_user(conn, &app.ids, new_user, false, now)?;
        let invitation = workspaces::accept_invitation(conn, &body.token, &user.id, now)?;
        let actor = Actor::user(
            &user.id,
            &request.client_ip(&app.config.trusted_proxies),
            request.request_id(),
        );
        record(app, conn, &actor, joined(&invitation, &user.id))?;
        let workspace = store::find_workspace(conn, &invitation.workspace_id)?;
        let session = auth::open_session(
            conn,
            &app.ids,
            &user.id,
            Some(&invitation.workspace_id),
            now,
        )?;
        Ok(SignedIn {
            user,
            workspace: workspace.map(|workspace| (workspace, invitation.role)),
            session,
        })
    })
}

/// The activity entry of a user joining by `invitation`.
fn joined(invitation: &Invitation, user_id: &UserId) -> Event {
    Event::new(Action::MemberJoined)
        .workspace(&invitation.workspace_id)
        .target(user_id.as_str())
        .detail("invitation_id", invitation.id.as_str())
        .detail("role", invitation.role.as_str())
}

/// A workspace's plan in the instance admin's list: the plan in force (free once a period ended),
/// and the custom plan's own included amounts when it is the custom one.
#[derive(Serialize)]
struct AdminPlanView<'a> {
    code: &'a str,
    name: &'a str,
    /// `active` while a plan runs, else `none` (as `GET /v1/billing` says it).
    status: &'static str,
    /// `null` for a plan without end, and when no plan runs.
    period_end: Option<&'a str>,
    included_sms_per_month: Option<u64>,
    included_email_per_day: Option<u64>,
}

#[derive(Serialize)]
struct AdminWalletView {
    balance: Money,
}

/// A workspace's sender ID request and where it stands.
#[derive(Serialize)]
struct AdminSenderView<'a> {
    value: &'a str,
    status: &'a str,
}

/// One row of `GET /v1/admin/workspaces` (and `GET /v1/admin/workspaces/{workspace_id}`).
#[derive(Serialize)]
struct AdminWorkspaceView<'a> {
    id: &'a str,
    name: &'a str,
    created_at: &'a str,
    plan: AdminPlanView<'a>,
    wallet: AdminWalletView,
    /// `unverified` when the workspace never submitted a verification.
    verification_status: &'a str,
    sender_id: Option<AdminSenderView<'a>>,
    member_count: u64,
    owner_email: Option<&'a str>,
}

fn admin_workspace_view<'a>(
    overview: &'a WorkspaceOverview,
    catalog: &'a Catalog,
    now: Timestamp,
) -> AdminWorkspaceView<'a> {
    let account = &overview.account;
    let period_end = account.plan_period_end.as_deref();
    let plan = catalog.effective_plan(
        account.plan_code.as_str(),
        period_end.and_then(parse_timestamp),
        now,
    );
    let running = billing::PlanState::of(account, catalog, now).is_running();
    let custom = running && plan.code.is_custom();
    AdminWorkspaceView {
        id: overview.workspace.id.as_str(),
        name: &overview.workspace.name,
        created_at: &overview.workspace.created_at,
        plan: AdminPlanView {
            code: plan.code.as_str(),
            name: &plan.name,
            status: if running { "active" } else { "none" },
            period_end: period_end.filter(|_| running),
            included_sms_per_month: custom.then(|| Channel::Sms.included(plan, account)),
            included_email_per_day: custom.then(|| Channel::Email.included(plan, account)),
        },
        wallet: AdminWalletView {
            balance: Money::new(account.wallet_balance_minor, &account.wallet_currency),
        },
        verification_status: overview
            .verification_status
            .as_deref()
            .unwrap_or("unverified"),
        sender_id: overview
            .sender_id
            .as_ref()
            .map(|(value, status)| AdminSenderView { value, status }),
        member_count: overview.member_count,
        owner_email: overview.owner_email.as_deref(),
    }
}

/// The longest `?q=` the workspace search takes.
const MAX_SEARCH_CHARS: usize = 200;

/// `GET /v1/admin/workspaces?q=`: every workspace on the instance, newest first, paginated;
/// `q` keeps those whose name contains it (without regard to case). Instance admins only.
pub fn list_admin_workspaces(
    app: &App,
    request: &mut Request<'_>,
) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    let page = request.page()?;
    let q = request
        .query_param("q")
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    // A NUL would end the text SQLite compares, and match every workspace.
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS || q.contains('\0'))
    {
        return Err(AppError::invalid_field(
            "q",
            format!("must be at most {MAX_SEARCH_CHARS} characters, without NUL"),
        ));
    }
    let overviews = app.db.read(|conn| {
        store::page_all_workspaces(conn, q.as_deref(), page.cursor.as_deref(), page.fetch())
    })?;
    let (overviews, next_cursor) = page.split(overviews, |overview| overview.workspace.id.as_str());
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let data: Vec<AdminWorkspaceView<'_>> = overviews
        .iter()
        .map(|overview| admin_workspace_view(overview, catalog, now))
        .collect();
    page_response(&data, next_cursor)
}

/// `GET /v1/admin/workspaces/{workspace_id}`: one workspace as the list shows it (404 for an id
/// that is no workspace). Instance admins only.
pub fn show_admin_workspace(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    let workspace_id =
        WorkspaceId::parse(request.param("workspace_id")).ok_or(AppError::NotFound)?;
    let overview = app
        .db
        .read(|conn| store::find_workspace_overview(conn, &workspace_id))?
        .ok_or(AppError::NotFound)?;
    let body = admin_workspace_view(&overview, &app.config.billing_catalog, app.clock.now());
    ApiResponse::json(200, &body)
}
