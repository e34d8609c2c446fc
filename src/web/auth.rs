//! HTTP for authentication: turning a request into a `Principal` (`authenticate_request`, used by
//! every protected handler), the session cookie, and the setup / login / logout / me endpoints.

use serde::{Deserialize, Serialize};

use crate::activity::{Action, Actor, Event, mask_email};
use crate::api_keys::format::PresentedKey;
use crate::app::App;
use crate::auth::buckets::Rate;
use crate::auth::principal::{Principal, SessionPrincipal};
use crate::auth::{self, Credentials, SignedIn, store};
use crate::error::{AppError, FieldErrors};
use crate::secrets::constant_time_eq;
use crate::users::NewUser;
use crate::users::password::{
    burn_verification_time, hash_password, password_iterations, verify_password,
};
use crate::users::store::{self as user_store, User};
use crate::validate;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::request::Request;
use crate::web::response::ApiResponse;
use crate::web::workspaces::{MembershipView, WorkspaceView};
use crate::workspaces::store as workspace_store;

pub const SESSION_COOKIE: &str = "crier_session";
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Authenticates the request: the `Authorization` header if one is present (a Bearer API key,
/// nothing else), else the session cookie. A cookie-authenticated mutation must carry the session's CSRF token.
pub fn authenticate_request(app: &App, request: &Request<'_>) -> Result<Principal, AppError> {
    let credentials = credentials(request)?;
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let (principal, touch, plan_rate) = app.db.read(|conn| {
        let (principal, touch) = auth::authenticate(conn, &credentials, now)?;
        // A key's request rate: its workspace's plan's, where the catalog gives plans one.
        let plan_rate = match &principal {
            Principal::ApiKey(key) => {
                crate::billing::plan_api_rate(conn, key.workspace_id(), catalog, now)?
            }
            Principal::Session(_) => None,
        };
        Ok((principal, touch, plan_rate))
    })?;
    if touch != auth::Touch::Nothing {
        // Bookkeeping only: a busy database must not fail the request it rides on.
        if let Err(err) = app.db.write(|conn| auth::apply_touch(conn, &touch, now)) {
            log::warn!(request_id = request.request_id(), error:% = err; "could not record key or session use");
        }
    }
    if let Some(workspace_id) = principal.workspace_id() {
        request.note_workspace(workspace_id);
    }
    if let Principal::ApiKey(key) = &principal {
        let rate = plan_rate.map_or(app.api_buckets.rate(), |per_second| {
            Rate::with_burst_factor(per_second, crate::config::API_BURST_FACTOR)
        });
        request.count_against(("api", &app.api_buckets), rate, key.key_id().as_str())?;
    }
    if let Principal::Session(session) = &principal
        && request.is_mutation()
    {
        let presented = request.header(CSRF_HEADER).unwrap_or("");
        if !constant_time_eq(presented.as_bytes(), session.csrf_token().as_bytes()) {
            return Err(AppError::CsrfFailed);
        }
    }
    Ok(principal)
}

/// The session behind the request's cookie, with its token. Checks no CSRF token: the caller
/// decides (invitation acceptance does its own check).
pub fn session_from_cookie(
    app: &App,
    request: &Request<'_>,
) -> Result<(SessionPrincipal, String), AppError> {
    let token = request
        .cookie(SESSION_COOKIE)
        .filter(|token| !token.is_empty())
        .ok_or(AppError::Unauthenticated)?;
    let credentials = Credentials::SessionToken(token.clone());
    let now = app.clock.now();
    let (principal, _) = app
        .db
        .read(|conn| auth::authenticate(conn, &credentials, now))?;
    let session = principal.require_session()?.clone();
    Ok((session, token))
}

fn credentials(request: &Request<'_>) -> Result<Credentials, AppError> {
    // A request that presents an `Authorization` header is judged by it alone: an empty,
    // malformed or unknown credential is 401, never rescued by a session cookie sent beside it
    // (a proxy that adds its own Basic auth in front of crier must strip the header).
    let presented = request.header_count("Authorization");
    if presented > 1 {
        // Which one a proxy or a server would read differs; refusing leaves no doubt whose
        // request this is (nor in which mode).
        return Err(AppError::BadRequest(
            "Send one Authorization header, not several.".to_owned(),
        ));
    }
    if presented == 1 {
        // A value that is not text counts as present and malformed.
        let value = request.header("Authorization").unwrap_or("");
        let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AppError::Unauthenticated);
        }
        return PresentedKey::parse(token.trim())
            .map(Credentials::ApiKey)
            .ok_or(AppError::InvalidApiKey);
    }
    match request.cookie(SESSION_COOKIE) {
        Some(token) if !token.is_empty() => Ok(Credentials::SessionToken(token)),
        _ => Err(AppError::Unauthenticated),
    }
}

/// The `Set-Cookie` value that hands a session to the browser.
fn session_cookie(app: &App, token: &str) -> String {
    let max_age = auth::session_lifetime().num_seconds();
    format!(
        "{SESSION_COOKIE}={token}; Max-Age={max_age}{}",
        cookie_attributes(app)
    )
}

fn cleared_cookie(app: &App) -> String {
    format!("{SESSION_COOKIE}=; Max-Age=0{}", cookie_attributes(app))
}

/// `Secure` when crier is reached over https (the public URL says so).
fn cookie_attributes(app: &App) -> &'static str {
    if app.config.public_url.starts_with("https://") {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

/// A user as the API shows it: never the password hash.
#[derive(Debug, Serialize)]
pub struct UserView<'a> {
    id: &'a str,
    email: &'a str,
    name: &'a str,
    is_instance_admin: bool,
    created_at: &'a str,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(user: &'a User) -> UserView<'a> {
        UserView {
            id: user.id.as_str(),
            email: &user.email,
            name: &user.name,
            is_instance_admin: user.is_instance_admin,
            created_at: &user.created_at,
        }
    }
}

#[derive(Serialize)]
struct SignedInView<'a> {
    user: UserView<'a>,
    workspace: Option<WorkspaceView<'a>>,
    role: Option<&'static str>,
    csrf_token: &'a str,
}

/// The 200/201 answer of setup, login and invitation acceptance, with the session cookie.
pub fn signed_in_response(
    app: &App,
    status: u16,
    signed_in: &SignedIn,
) -> Result<ApiResponse, AppError> {
    let body = SignedInView {
        user: UserView::from(&signed_in.user),
        workspace: signed_in
            .workspace
            .as_ref()
            .map(|(workspace, _)| WorkspaceView::from(workspace)),
        role: signed_in.workspace.as_ref().map(|(_, role)| role.as_str()),
        csrf_token: &signed_in.session.csrf_token,
    };
    Ok(ApiResponse::json(status, &body)?
        .with_header("Set-Cookie", session_cookie(app, &signed_in.session.token)))
}

/// Hashes a password with the configured cost. Slow: call before opening a transaction.
pub fn hash_for_storage(app: &App, password: &str) -> String {
    hash_password(password, app.config.password_iterations, &app.ids)
}

/// `GET /v1/setup`: whether the instance still needs its first user.
pub fn show_setup(app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let done = app.db.read(user_store::any_user_exists)?;
    ApiResponse::json(
        200,
        &SetupView {
            setup_required: !done,
        },
    )
}

#[derive(Serialize)]
struct SetupView {
    setup_required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    email: String,
    password: String,
    name: String,
    workspace_name: String,
}

/// `POST /v1/setup`: the first user (instance admin) and workspace, logged in.
pub fn run_setup(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let body: SetupBody = request.json()?;
    let mut fields = FieldErrors::new();
    let email = validate::email(&body.email)
        .map_err(|why| fields.add("email", why))
        .ok();
    let _ = validate::password(&body.password).map_err(|why| fields.add("password", why));
    let name = validate::text(&body.name, 1, 100)
        .map_err(|why| fields.add("name", why))
        .ok();
    let workspace_name = validate::text(&body.workspace_name, 1, 100)
        .map_err(|why| fields.add("workspace_name", why))
        .ok();
    fields.into_result()?;
    let (Some(email), Some(name), Some(workspace_name)) = (email, name, workspace_name) else {
        return Err(AppError::internal("validated fields missing"));
    };
    // Refuse early (and cheaply) once set up, before spending the password hash.
    if app.db.read(user_store::any_user_exists)? {
        return Err(AppError::Conflict(
            "Setup is already done; log in instead.".to_owned(),
        ));
    }
    let password_hash = hash_for_storage(app, &body.password);
    let now = app.clock.now();
    let signed_in = app.db.write(|conn| {
        let new_user = NewUser {
            email,
            name,
            password_hash,
        };
        let currency = app.config.billing_catalog.currency.as_str();
        let signed_in =
            auth::run_setup(conn, &app.ids, new_user, (&workspace_name, currency), now)?;
        record_sign_in(app, conn, request, &signed_in, Action::InstanceSetUp)?;
        Ok(signed_in)
    })?;
    signed_in_response(app, 201, &signed_in)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

/// `POST /v1/auth/login`. Wrong email and wrong password are indistinguishable, in body and in
/// time; an attempt is let through or refused (429) per (account, IP) and per IP before any
/// password is checked (docs/rules/access.md, "Login throttling").
pub fn log_in(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let body: LoginBody = request.json()?;
    let email = body.email.trim().to_lowercase();
    // No account can have a longer email; refusing here keeps junk out of the limiter's table.
    if email.len() > 254 {
        return Err(AppError::InvalidCredentials);
    }
    let ip = request.client_ip(&app.config.trusted_proxies);
    let now = app.clock.now();
    let attempt = app
        .login_limiter
        .begin_attempt(&email, &ip, now)
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;

    let user = app
        .db
        .read(|conn| user_store::find_user_by_email(conn, &email))?;
    let verified = match &user {
        Some(user) => verify_password(&body.password, &user.password_hash),
        None => {
            burn_verification_time(&body.password, app.config.password_iterations);
            false
        }
    };
    let known_user = user.as_ref().map(|user| user.id.clone());
    // Known and unknown emails fail alike: the same counting, the same write.
    let Some(user) = user.filter(|_| verified) else {
        attempt.failed(&app.db, app.clock.now());
        // Not part of a change: recorded on its own, and a busy database must not turn the
        // answer into another one.
        let mut event = Event::new(Action::SessionSignInFailed).detail("email", mask_email(&email));
        if let Some(user_id) = &known_user {
            event = event.target(user_id.as_str());
        }
        let actor = Actor::anonymous(&ip, request.request_id());
        if let Err(err) = app.db.write(|conn| record(app, conn, &actor, event)) {
            log::warn!(request_id = request.request_id(), error:% = err; "could not record a failed sign-in");
        }
        return Err(AppError::InvalidCredentials);
    };
    attempt.succeeded(&app.db, now);
    // Hashes made with another cost are upgraded at login, so every account converges on the
    // configured cost (and login time stops telling old accounts from unknown emails).
    let upgraded = (password_iterations(&user.password_hash)
        != Some(app.config.password_iterations.get()))
    .then(|| hash_for_storage(app, &body.password));
    let signed_in = app.db.write(|conn| {
        if let Some(upgraded) = &upgraded {
            user_store::set_password_hash(conn, &user.id, upgraded)?;
        }
        let signed_in = auth::sign_in(conn, &app.ids, user, now)?;
        record_sign_in(app, conn, request, &signed_in, Action::SessionSignedIn)?;
        Ok(signed_in)
    })?;
    signed_in_response(app, 200, &signed_in)
}

/// Records a setup or sign-in by the user it signed in, in the workspace it opened.
fn record_sign_in(
    app: &App,
    conn: &rusqlite::Connection,
    request: &Request<'_>,
    signed_in: &SignedIn,
    action: Action,
) -> Result<(), AppError> {
    let ip = request.client_ip(&app.config.trusted_proxies);
    let actor = Actor::user(&signed_in.user.id, &ip, request.request_id());
    let mut event = Event::new(action).target(signed_in.user.id.as_str());
    if let Some((workspace, _)) = &signed_in.workspace {
        event = event.workspace(&workspace.id);
    }
    record(app, conn, &actor, event)
}

/// `POST /v1/auth/logout`: ends the session and clears the cookie. A session that is already
/// unknown or expired gets its cookie cleared all the same.
pub fn log_out(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    match authenticate_request(app, request) {
        Ok(principal) => {
            let session = principal.require_session()?;
            let actor = actor(app, request, &principal);
            app.db.write(|conn| {
                store::delete_session(conn, session.session_id())?;
                let mut event = Event::new(Action::SessionSignedOut);
                if let Some(workspace_id) = principal.workspace_id() {
                    event = event.workspace(workspace_id);
                }
                record(app, conn, &actor, event)
            })?;
        }
        Err(AppError::Unauthenticated) => {}
        Err(other) => return Err(other),
    }
    Ok(ApiResponse::no_content().with_header("Set-Cookie", cleared_cookie(app)))
}

/// `GET /v1/auth/me`'s answer.
#[derive(Serialize)]
struct MeView<'a> {
    user: UserView<'a>,
    workspace: Option<WorkspaceView<'a>>,
    role: Option<&'static str>,
    memberships: Vec<MembershipView<'a>>,
    mode: Mode,
    csrf_token: &'a str,
}

/// `GET /v1/auth/me`: the user, the active workspace and role, every membership, the mode the
/// session looks at, the CSRF token.
pub fn show_me(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    me_response(app, session, principal.mode())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

/// `PUT /v1/auth/mode`: the console session switches between the live and the test world
/// (docs/rules/access.md, "Test and live"). Answers as `GET /v1/auth/me`.
pub fn set_mode(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let session = principal.require_session()?;
    let body: ModeBody = request.json()?;
    let mode = Mode::parse(&body.mode)
        .ok_or_else(|| AppError::invalid_field("mode", "must be live or test"))?;
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        store::set_mode(conn, session.session_id(), mode)?;
        let mut event = Event::new(Action::SessionModeSwitched).detail("mode", mode.as_str());
        if let Some(workspace_id) = principal.workspace_id() {
            event = event.workspace(workspace_id);
        }
        record(app, conn, &actor, event)
    })?;
    me_response(app, session, mode)
}

fn me_response(app: &App, session: &SessionPrincipal, mode: Mode) -> Result<ApiResponse, AppError> {
    let (user, memberships) = app.db.read(|conn| {
        let user =
            user_store::find_user(conn, session.user_id())?.ok_or(AppError::Unauthenticated)?;
        let memberships = workspace_store::list_user_workspaces(conn, session.user_id())?;
        Ok((user, memberships))
    })?;
    let active = session.active_workspace();
    let workspace = active.and_then(|(id, _)| {
        memberships
            .iter()
            .find(|(workspace, _)| &workspace.id == id)
            .map(|(workspace, _)| WorkspaceView::from(workspace))
    });
    ApiResponse::json(
        200,
        &MeView {
            user: UserView::from(&user),
            workspace,
            role: active.map(|(_, role)| role.as_str()),
            memberships: memberships.iter().map(MembershipView::from).collect(),
            mode,
            csrf_token: session.csrf_token(),
        },
    )
}
