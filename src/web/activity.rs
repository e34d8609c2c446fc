//! HTTP for the activity log: the workspace's (`GET /v1/activity`), the instance's
//! (`GET /v1/admin/activity`), and `record`, the one line a handler adds to its write
//! transaction to log what it changed.

use rusqlite::Connection;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::activity::{self, Action, Actor, ActorType, Event, Filter, StoredEntry};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::auth::principal::Principal;
use crate::error::{AppError, FieldErrors};
use crate::ids::WorkspaceId;
use crate::vocabulary::Mode;
use crate::web::auth::authenticate_request;
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

/// The actor of an authenticated request: its user or key, client IP and request id.
pub fn actor(app: &App, request: &Request<'_>, principal: &Principal) -> Actor {
    let ip = request.client_ip(&app.config.trusted_proxies);
    match principal {
        Principal::Session(session) => Actor::user(session.user_id(), &ip, request.request_id()),
        Principal::ApiKey(key) => Actor::api_key(key.key_id(), &ip, request.request_id()),
    }
}

/// Records `event` by `actor` now. Call it inside the write transaction of the change.
pub fn record(app: &App, conn: &Connection, actor: &Actor, event: Event) -> Result<(), AppError> {
    activity::record(conn, &app.ids, actor, event, app.clock.now())
}

/// An entry as the API shows it.
#[derive(Serialize)]
struct EntryView<'a> {
    id: &'a str,
    workspace_id: Option<&'a str>,
    mode: Option<Mode>,
    actor: ActorView<'a>,
    action: Action,
    target_id: Option<&'a str>,
    details: &'a RawValue,
    ip: Option<&'a str>,
    request_id: Option<&'a str>,
    created_at: &'a str,
}

#[derive(Serialize)]
struct ActorView<'a> {
    #[serde(rename = "type")]
    actor_type: ActorType,
    id: Option<&'a str>,
}

fn entry_view(entry: &StoredEntry) -> Result<EntryView<'_>, AppError> {
    let details: &RawValue = serde_json::from_str(&entry.details)
        .map_err(|_| AppError::internal("stored activity details are not JSON"))?;
    Ok(EntryView {
        id: &entry.id,
        workspace_id: entry.workspace_id.as_ref().map(WorkspaceId::as_str),
        mode: entry.mode,
        actor: ActorView {
            actor_type: entry.actor_type,
            id: entry.actor_id.as_deref(),
        },
        action: entry.action,
        target_id: entry.target_id.as_deref(),
        details,
        ip: entry.ip.as_deref(),
        request_id: entry.request_id.as_deref(),
        created_at: &entry.created_at,
    })
}

fn one_of<T: std::fmt::Display>(values: &[T]) -> String {
    let names: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("must be one of {}", names.join(", "))
}

/// The query's filters: `actor_type`, `actor_id`, `action`, `target_id`, `created_from`,
/// `created_to`; every bad one reported at once.
fn filter(request: &Request<'_>, fields: &mut FieldErrors) -> Filter {
    let actor_type = request.query_param("actor_type").and_then(|text| {
        let parsed = ActorType::parse(&text);
        if parsed.is_none() {
            fields.add("actor_type", one_of(ActorType::ALL));
        }
        parsed
    });
    let action = request.query_param("action").and_then(|text| {
        let parsed = Action::parse(&text);
        if parsed.is_none() {
            fields.add(
                "action",
                "is not an action of the activity log (docs/API.md)",
            );
        }
        parsed
    });
    let since = request.timestamp_param("created_from", fields);
    let until = request.timestamp_param("created_to", fields);
    Filter {
        actor_type,
        actor_id: request.query_param("actor_id"),
        action,
        target_id: request.query_param("target_id"),
        since,
        until,
        workspace_id: None,
    }
}

fn entries_page(
    page: &crate::web::request::PageRequest,
    entries: Vec<StoredEntry>,
) -> Result<ApiResponse, AppError> {
    let (entries, next_cursor) = page.split(entries, |entry| entry.id.as_str());
    let data = entries
        .iter()
        .map(entry_view)
        .collect::<Result<Vec<_>, _>>()?;
    page_response(&data, next_cursor)
}

/// `GET /v1/activity`: the workspace's log, newest first: entries of the caller's mode and those
/// the same in both worlds. An owner or admin session, or a key with `activity:read`.
pub fn list_activity(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ActivityRead)?;
    let page = request.page()?;
    let mut fields = FieldErrors::new();
    let filter = filter(request, &mut fields);
    fields.into_result()?;
    let entries = app.db.read(|conn| {
        activity::list_for_workspace(
            conn,
            &scope,
            principal.mode(),
            &filter,
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    entries_page(&page, entries)
}

/// `GET /v1/admin/activity`: every workspace's log and the entries of none (failed sign-ins),
/// both worlds, newest first; `workspace_id` narrows to one workspace. Instance admins only.
pub fn list_all_activity(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    principal.require_instance_admin()?;
    let page = request.page()?;
    let mut fields = FieldErrors::new();
    let mut filter = filter(request, &mut fields);
    filter.workspace_id = request.query_param("workspace_id").and_then(|text| {
        let parsed = WorkspaceId::parse(&text);
        if parsed.is_none() {
            fields.add("workspace_id", "must be a workspace id (wsp_…)");
        }
        parsed
    });
    fields.into_result()?;
    let entries = app
        .db
        .read(|conn| activity::list_all(conn, &filter, page.cursor.as_deref(), page.fetch()))?;
    entries_page(&page, entries)
}
