//! HTTP for segments of contacts. Like groups, an API key works on the segments of its own
//! mode; a console session on the live ones. Handlers parse and authenticate, then call one
//! domain function inside one transaction.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::contacts::segments::{
    self as domain, Evaluation, NewSegment, PreviewRequest, SegmentChanges,
};
use crate::contacts::store::SegmentRow;
use crate::contacts::view::{ContactView, contact_view};
use crate::error::AppError;
use crate::ids::SegmentId;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

/// `POST /v1/segments/preview`: counts and samples the contacts `rules` choose, saving
/// nothing. Scope `contacts:read`. A read: it takes no `Idempotency-Key` (a retry just reads
/// again).
pub fn preview(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let body: PreviewRequest = request.json()?;
    let mode = principal.mode();
    let preview = app
        .db
        .read(|conn| domain::preview(conn, &scope, mode, body))?;
    #[derive(Serialize)]
    struct PreviewView<'a> {
        count: i64,
        sample: Vec<ContactView<'a>>,
    }
    ApiResponse::json(
        200,
        &PreviewView {
            count: preview.count,
            sample: preview.sample.iter().map(contact_view).collect(),
        },
    )
}

/// `POST /v1/segments`: saves a segment in the caller's mode. Scope `contacts:write`. Accepts
/// an `Idempotency-Key`.
pub fn create_segment(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let body: NewSegment = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let segment = domain::create_segment(conn, &app.ids, &scope, mode, body, app.clock.now())?;
        let event = Event::about(
            Action::SegmentCreated,
            scope.id(),
            mode,
            segment.id.as_str(),
        );
        record(app, conn, &actor, event)?;
        ApiResponse::json(201, &segment_view(&segment, None)?)
    })
}

/// `GET /v1/segments`: the caller's segments, newest first (no counts: see one segment).
/// Scope `contacts:read`.
pub fn list_segments(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let page = request.page()?;
    let mode = principal.mode();
    let segments = app.db.read(|conn| {
        domain::list_segments(conn, &scope, mode, page.cursor.as_deref(), page.fetch())
    })?;
    let (segments, next_cursor) = page.split(segments, |segment| segment.id.as_str());
    let data = segments
        .iter()
        .map(|segment| segment_view(segment, None))
        .collect::<Result<Vec<_>, _>>()?;
    page_response(&data, next_cursor)
}

fn segment_id(request: &Request<'_>) -> Result<SegmentId, AppError> {
    SegmentId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `GET /v1/segments/{id}`: the segment with its live `count`, or its `problems` when a custom
/// field or group it names is gone. Scope `contacts:read`.
pub fn show_segment(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsRead)?;
    let id = segment_id(request)?;
    let mode = principal.mode();
    let (segment, evaluation) = app.db.read(|conn| {
        let segment = domain::find_segment(conn, &scope, mode, &id)?;
        let evaluation = domain::evaluate(conn, &scope, &segment)?;
        Ok((segment, evaluation))
    })?;
    ApiResponse::json(200, &segment_view(&segment, Some(&evaluation))?)
}

/// `PATCH /v1/segments/{id}`: renames the segment or replaces its rules. Scope
/// `contacts:write`.
pub fn update_segment(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = segment_id(request)?;
    let body: SegmentChanges = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    let segment = app.db.write(|conn| {
        let value = domain::update_segment(conn, &scope, mode, &id, body, app.clock.now())?;
        let event = Event::about(Action::SegmentUpdated, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)?;
        Ok(value)
    })?;
    ApiResponse::json(200, &segment_view(&segment, None)?)
}

/// `DELETE /v1/segments/{id}`: deletes the segment, never a contact. Scope `contacts:write`.
pub fn delete_segment(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::ContactsWrite)?;
    let id = segment_id(request)?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        domain::delete_segment(conn, &scope, mode, &id)?;
        let event = Event::about(Action::SegmentDeleted, scope.id(), mode, id.as_str());
        record(app, conn, &actor, event)?;
        Ok(())
    })?;
    Ok(ApiResponse::no_content())
}

/// A segment as the API shows it. `count` and `problems` are worked out only by
/// `GET /v1/segments/{id}` (`null` elsewhere): a count reads every contact of the workspace.
#[derive(Serialize)]
struct SegmentView<'a> {
    id: &'a str,
    mode: Mode,
    name: &'a str,
    rules: &'a RawValue,
    count: Option<i64>,
    problems: Option<BTreeMap<&'a str, &'a str>>,
    created_at: &'a str,
    updated_at: &'a str,
}

fn segment_view<'a>(
    segment: &'a SegmentRow,
    evaluation: Option<&'a Evaluation>,
) -> Result<SegmentView<'a>, AppError> {
    let (count, problems) = match evaluation {
        Some(Evaluation::Count(count)) => (Some(*count), None),
        Some(Evaluation::Broken(problems)) => (
            None,
            Some(
                problems
                    .iter()
                    .map(|(path, reason)| (path.as_str(), reason.as_str()))
                    .collect(),
            ),
        ),
        None => (None, None),
    };
    Ok(SegmentView {
        id: segment.id.as_str(),
        mode: segment.mode,
        name: &segment.name,
        // Stored as a JSON object written by crier; shown as is.
        rules: serde_json::from_str::<&RawValue>(&segment.rules).map_err(AppError::internal)?,
        count,
        problems,
        created_at: &segment.created_at,
        updated_at: &segment.updated_at,
    })
}
