//! HTTP for groups of contacts. Like contacts, an API key works on the groups of its own mode;
//! a console session on the live ones. Handlers parse and authenticate, then call one domain
//! function inside one transaction.

use serde::Serialize;

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::contacts::groups::{self as domain, ContactIds, GroupName};
use crate::contacts::store::{self, GroupRow};
use crate::error::AppError;
use crate::ids::GroupId;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

/// `POST /v1/groups`: creates an empty group in the caller's mode. Scope `contacts:write`.
/// Accepts an `Idempotency-Key`.
pub fn create_group(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let body: GroupName = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let group = domain::create_group(conn, &app.ids, &scope, mode, body, app.clock.now())?;
        let event = Event::about(Action::GroupCreated, scope.id(), mode, group.id.as_str());
        record(app, conn, &actor, event)?;
        ApiResponse::json(201, &group_view(&group))
    })
}

/// `GET /v1/groups`: the caller's groups, newest first, each with its member count. Scope
/// `contacts:read`.
pub fn list_groups(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let page = request.page()?;
    let mode = principal.mode();
    let groups = app.db.read(|conn| {
        store::list_groups(conn, scope.id(), mode, page.cursor.as_deref(), page.fetch())
    })?;
    let (groups, next_cursor) = page.split(groups, |group| group.id.as_str());
    let data: Vec<GroupView<'_>> = groups.iter().map(group_view).collect();
    page_response(&data, next_cursor)
}

fn group_id(request: &Request<'_>) -> Result<GroupId, AppError> {
    GroupId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `GET /v1/groups/{id}`. Scope `contacts:read`.
pub fn show_group(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let id = group_id(request)?;
    let mode = principal.mode();
    let group = app
        .db
        .read(|conn| domain::find_group(conn, &scope, mode, &id))?;
    ApiResponse::json(200, &group_view(&group))
}

/// `PATCH /v1/groups/{id}`: renames the group. Scope `contacts:write`.
pub fn rename_group(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = group_id(request)?;
    let body: GroupName = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    let group = app.db.write(|conn| {
        let value = domain::rename_group(conn, &scope, mode, &id, body, app.clock.now())?;
        let event = Event::about(Action::GroupRenamed, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)?;
        Ok(value)
    })?;
    ApiResponse::json(200, &group_view(&group))
}

/// `DELETE /v1/groups/{id}`: deletes the group and its memberships, never the contacts. Scope
/// `contacts:write`.
pub fn delete_group(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = group_id(request)?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        domain::delete_group(conn, &scope, mode, &id)?;
        let event = Event::about(Action::GroupDeleted, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)?;
        Ok(())
    })?;
    Ok(ApiResponse::no_content())
}

/// `POST /v1/groups/{id}/contacts`: adds `contact_ids` (1–10,000, all the caller's, or nothing
/// changes). Scope `contacts:write`. Accepts an `Idempotency-Key`.
pub fn add_members(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = group_id(request)?;
    let body: ContactIds = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let outcome = domain::add_members(conn, &scope, mode, &id, body, app.clock.now())?;
        let event = Event::about(Action::GroupMembersAdded, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)?;
        ApiResponse::json(200, &outcome)
    })
}

/// `DELETE /v1/groups/{id}/contacts`: takes `contact_ids` out of the group, checked as for
/// adding. Scope `contacts:write`.
pub fn remove_members(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = group_id(request)?;
    let body: ContactIds = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    let outcome = app.db.write(|conn| {
        let value = domain::remove_members(conn, &scope, mode, &id, body)?;
        let event = Event::about(Action::GroupMembersRemoved, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)?;
        Ok(value)
    })?;
    ApiResponse::json(200, &outcome)
}

/// A group as the API shows it. `member_count` leaves deleted contacts out.
#[derive(Serialize)]
struct GroupView<'a> {
    id: &'a str,
    mode: Mode,
    name: &'a str,
    member_count: i64,
    created_at: &'a str,
    updated_at: &'a str,
}

fn group_view(group: &GroupRow) -> GroupView<'_> {
    GroupView {
        id: group.id.as_str(),
        mode: group.mode,
        name: &group.name,
        member_count: group.member_count,
        created_at: &group.created_at,
        updated_at: &group.updated_at,
    }
}
