//! HTTP for a workspace's own provider accounts (`delivery::accounts`). An API key needs
//! `providers:read` / `providers:write`; a console session the owner or admin role. Accounts are
//! live objects: test-mode messages always go to `log`, so in test mode the list is empty, an
//! account is not found, and creating or changing one is refused (403 `forbidden`).

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::delivery::accounts::{
    self as domain, Account, AccountChanges, Checks, NewAccount, view,
};
use crate::error::AppError;
use crate::ids::ProviderAccountId;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

fn account_id(request: &Request<'_>) -> Result<ProviderAccountId, AppError> {
    ProviderAccountId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// Writes happen in live mode only.
fn require_live(mode: Mode) -> Result<(), AppError> {
    match mode {
        Mode::Live => Ok(()),
        Mode::Test => Err(AppError::Forbidden(
            "Provider accounts deliver live messages only (test-mode messages always go to the \
             log provider): use a live key, or switch the console to live."
                .to_owned(),
        )),
    }
}

fn respond(app: &App, status: u16, account: &Account) -> Result<ApiResponse, AppError> {
    ApiResponse::json(
        status,
        &view(account, &app.secret_box, &app.config.public_url)?,
    )
}

/// The checks an account's settings go through: the instance's settings validation, and the
/// operator's rules for outgoing URLs (those of webhook endpoints: https, no private address
/// unless allowed).
fn with_checks<T>(app: &App, work: impl FnOnce(&Checks<'_>) -> T) -> T {
    let url = |url: &str| crate::webhooks::check_url(url, &app.config.webhooks);
    work(&Checks {
        instance: &app.config.delivery,
        url: &url,
    })
}

/// The activity entry of an account created or changed: its channel, provider, priority,
/// whether it is on and which secrets were set — never a secret nor a setting's value.
fn account_event(action: Action, account: &Account, secrets: &[&str]) -> Event {
    let row = &account.row;
    Event::new(action)
        .workspace(&row.workspace_id)
        .mode(Mode::Live)
        .target(row.id.as_str())
        .detail("channel", row.channel.as_str())
        .detail("provider", row.provider.clone())
        .detail("priority", row.priority)
        .detail("enabled", row.enabled)
        .detail("secrets_changed", secrets.to_vec())
}

/// `POST /v1/provider-accounts`. Scope `providers:write`; live only. Accepts an
/// `Idempotency-Key` (the answer never holds a secret). The checks are local: nothing calls the
/// provider.
pub fn create_account(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ProvidersWrite)?;
    require_live(principal.mode())?;
    let body: NewAccount = request.json()?;
    let actor = actor(app, request, &principal);
    with_checks(app, |checks| {
        idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
            let account = domain::create(
                conn,
                (&app.ids, &app.secret_box),
                &scope,
                body,
                checks,
                app.clock.now(),
            )?;
            let secrets: Vec<&str> = account.secrets.iter().map(|s| s.field.as_str()).collect();
            record(
                app,
                conn,
                &actor,
                account_event(Action::ProviderAccountCreated, &account, &secrets),
            )?;
            respond(app, 201, &account)
        })
    })
}

/// `GET /v1/provider-accounts`: the workspace's accounts, newest first. Scope `providers:read`.
pub fn list_accounts(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ProvidersRead)?;
    let page = request.page()?;
    let accounts = match principal.mode() {
        Mode::Test => Vec::new(),
        Mode::Live => app
            .db
            .read(|conn| domain::list(conn, &scope, page.cursor.as_deref(), page.fetch()))?,
    };
    let (accounts, next_cursor) = page.split(accounts, |account| account.row.id.as_str());
    let data = accounts
        .iter()
        .map(|account| view(account, &app.secret_box, &app.config.public_url))
        .collect::<Result<Vec<_>, _>>()?;
    page_response(&data, next_cursor)
}

/// `GET /v1/provider-accounts/{id}`. Scope `providers:read`.
pub fn show_account(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ProvidersRead)?;
    let id = account_id(request)?;
    if principal.mode() == Mode::Test {
        return Err(AppError::NotFound);
    }
    let account = app.db.read(|conn| domain::find(conn, &scope, &id))?;
    respond(app, 200, &account)
}

/// `PATCH /v1/provider-accounts/{id}`: settings and secrets merged (a value replaces, `null`
/// removes, a field left out is kept), priority, enabled, description. Scope `providers:write`.
pub fn update_account(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ProvidersWrite)?;
    let id = account_id(request)?;
    if principal.mode() == Mode::Test {
        return Err(AppError::NotFound);
    }
    let body: AccountChanges = request.json()?;
    let actor = actor(app, request, &principal);
    let account = with_checks(app, |checks| {
        app.db.write(|conn| {
            let (account, secrets) = domain::update(
                conn,
                (&app.ids, &app.secret_box),
                &scope,
                &id,
                body,
                checks,
                app.clock.now(),
            )?;
            record(
                app,
                conn,
                &actor,
                account_event(Action::ProviderAccountUpdated, &account, &secrets),
            )?;
            Ok(account)
        })
    })?;
    respond(app, 200, &account)
}

/// `DELETE /v1/provider-accounts/{id}`: deletes it and its secrets. Messages already queued
/// through it skip it. Scope `providers:write`.
pub fn delete_account(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ProvidersWrite)?;
    let id = account_id(request)?;
    if principal.mode() == Mode::Test {
        return Err(AppError::NotFound);
    }
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        let row = domain::delete(conn, &scope, &id)?;
        let event = Event::about(
            Action::ProviderAccountDeleted,
            scope.id(),
            Mode::Live,
            id.as_str(),
        )
        .detail("channel", row.channel.as_str())
        .detail("provider", row.provider);
        record(app, conn, &actor, event)
    })?;
    app.providers.accounts.forget(&id);
    Ok(ApiResponse::no_content())
}
