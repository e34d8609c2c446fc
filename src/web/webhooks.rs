//! HTTP for webhook endpoints and their delivery log. An API key works on the endpoints of its
//! own mode (scopes `webhooks:read`, `webhooks:write`); a console session needs the owner or
//! admin role and works on the mode it looks at. Handlers parse and authenticate, then call one
//! domain function inside one transaction.

use serde::Serialize;

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::error::AppError;
use crate::ids::{WebhookDeliveryId, WebhookEndpointId};
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;
use crate::webhooks::store::{DeliveryRow, DeliveryStatus, EndpointRow};
use crate::webhooks::{
    self as domain, EndpointChanges, EndpointView, NewEndpoint, Rotation, endpoint_view,
};

fn endpoint_id(request: &Request<'_>) -> Result<WebhookEndpointId, AppError> {
    WebhookEndpointId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// An endpoint with its signing secret: the answer of its creation and of a rotation, the only
/// times the secret is shown.
#[derive(Serialize)]
struct EndpointWithSecret<'a> {
    #[serde(flatten)]
    endpoint: EndpointView<'a>,
    secret: &'a str,
}

/// `POST /v1/webhook-endpoints`: registers an endpoint in the caller's mode. Scope
/// `webhooks:write`. Accepts an `Idempotency-Key`: the secret rests in clear beside the
/// endpoint anyway (it must sign), so a replay may show it again to the client that lost it.
pub fn create_endpoint(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksWrite)?;
    let body: NewEndpoint = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let endpoint = domain::create_endpoint(
            conn,
            &app.ids,
            (&scope, mode),
            body,
            &app.config.webhooks,
            app.clock.now(),
        )?;
        let event = endpoint_event(Action::WebhookEndpointCreated, &endpoint);
        record(app, conn, &actor, event)?;
        ApiResponse::json(
            201,
            &EndpointWithSecret {
                endpoint: endpoint_view(&endpoint),
                secret: &endpoint.secret,
            },
        )
    })
}

/// `GET /v1/webhook-endpoints`: the caller's endpoints, newest first. Scope `webhooks:read`.
pub fn list_endpoints(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksRead)?;
    let page = request.page()?;
    let mode = principal.mode();
    let endpoints = app.db.read(|conn| {
        domain::list_endpoints(conn, (&scope, mode), page.cursor.as_deref(), page.fetch())
    })?;
    let (endpoints, next_cursor) = page.split(endpoints, |endpoint| endpoint.id.as_str());
    let data: Vec<EndpointView<'_>> = endpoints.iter().map(endpoint_view).collect();
    page_response(&data, next_cursor)
}

/// `GET /v1/webhook-endpoints/{id}`. Scope `webhooks:read`.
pub fn show_endpoint(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksRead)?;
    let id = endpoint_id(request)?;
    let mode = principal.mode();
    let endpoint = app
        .db
        .read(|conn| domain::find_endpoint(conn, (&scope, mode), &id))?;
    ApiResponse::json(200, &endpoint_view(&endpoint))
}

/// `PATCH /v1/webhook-endpoints/{id}`: changes its URL, events, description or whether it is
/// on. Scope `webhooks:write`.
pub fn update_endpoint(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksWrite)?;
    let id = endpoint_id(request)?;
    let body: EndpointChanges = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    let endpoint = app.db.write(|conn| {
        let endpoint = domain::update_endpoint(
            conn,
            (&scope, mode),
            &id,
            body,
            &app.config.webhooks,
            app.clock.now(),
        )?;
        let event = endpoint_event(Action::WebhookEndpointUpdated, &endpoint);
        record(app, conn, &actor, event)?;
        Ok(endpoint)
    })?;
    // Turned on again: its pending deliveries are due.
    app.webhooks.notify();
    ApiResponse::json(200, &endpoint_view(&endpoint))
}

/// `DELETE /v1/webhook-endpoints/{id}`: deletes it and its delivery log. Scope `webhooks:write`.
pub fn delete_endpoint(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksWrite)?;
    let id = endpoint_id(request)?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    app.db.write(|conn| {
        domain::delete_endpoint(conn, (&scope, mode), &id)?;
        let event = Event::about(
            Action::WebhookEndpointDeleted,
            scope.id(),
            mode,
            id.as_str(),
        );
        record(app, conn, &actor, event)
    })?;
    Ok(ApiResponse::no_content())
}

/// `POST /v1/webhook-endpoints/{id}/rotate-secret`: a new secret, shown once; the old one keeps
/// signing for `overlap_seconds` (default a day). Scope `webhooks:write`. Accepts an
/// `Idempotency-Key` (a retry must not rotate twice: the first new secret would be lost).
pub fn rotate_secret(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksWrite)?;
    let id = endpoint_id(request)?;
    let body: Rotation = request.json_or_default()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let endpoint =
            domain::rotate_secret(conn, &app.ids, (&scope, mode), &id, body, app.clock.now())?;
        let event = Event::about(
            Action::WebhookEndpointSecretRotated,
            scope.id(),
            mode,
            endpoint.id.as_str(),
        )
        .detail(
            "previous_secret_expires_at",
            endpoint.previous_secret_expires_at.clone(),
        );
        record(app, conn, &actor, event)?;
        ApiResponse::json(
            200,
            &EndpointWithSecret {
                endpoint: endpoint_view(&endpoint),
                secret: &endpoint.secret,
            },
        )
    })
}

/// `POST /v1/webhook-endpoints/{id}/test`: queues a `webhook.test` event to this endpoint
/// alone; answers with its delivery (202: it is sent in the background). Scope
/// `webhooks:write`. Accepts an `Idempotency-Key`.
pub fn send_test_event(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksWrite)?;
    let id = endpoint_id(request)?;
    let mode = principal.mode();
    let response =
        idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
            let delivery =
                domain::send_test_event(conn, &app.ids, (&scope, mode), &id, app.clock.now())?;
            ApiResponse::json(202, &delivery_view(&delivery))
        })?;
    if response.status == 202 {
        app.webhooks.notify();
    }
    Ok(response)
}

/// `GET /v1/webhook-endpoints/{id}/deliveries`: its delivery log, newest first. Scope
/// `webhooks:read`.
pub fn list_deliveries(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksRead)?;
    let id = endpoint_id(request)?;
    let page = request.page()?;
    let mode = principal.mode();
    let deliveries = app.db.read(|conn| {
        domain::list_deliveries(
            conn,
            (&scope, mode),
            &id,
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    let (deliveries, next_cursor) = page.split(deliveries, |delivery| delivery.id.as_str());
    let data: Vec<DeliveryView<'_>> = deliveries.iter().map(delivery_view).collect();
    page_response(&data, next_cursor)
}

fn delivery_id(request: &Request<'_>) -> Result<WebhookDeliveryId, AppError> {
    WebhookDeliveryId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `GET /v1/webhook-deliveries/{id}`: one delivery with the event it sends. Scope
/// `webhooks:read`.
pub fn show_delivery(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksRead)?;
    let id = delivery_id(request)?;
    let mode = principal.mode();
    let delivery = app
        .db
        .read(|conn| domain::find_delivery(conn, (&scope, mode), &id))?;
    ApiResponse::json(200, &delivery_view(&delivery))
}

/// `POST /v1/webhook-deliveries/{id}/retry`: sends the same event again at once. Scope
/// `webhooks:write`. Accepts an `Idempotency-Key`.
pub fn retry_delivery(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::WebhooksWrite)?;
    let id = delivery_id(request)?;
    let mode = principal.mode();
    let response =
        idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
            let delivery = domain::retry_delivery(conn, (&scope, mode), &id, app.clock.now())?;
            ApiResponse::json(202, &delivery_view(&delivery))
        })?;
    if response.status == 202 {
        app.webhooks.notify();
    }
    Ok(response)
}

/// One event's delivery to one endpoint, with its last attempt.
#[derive(Serialize)]
struct DeliveryView<'a> {
    id: &'a str,
    endpoint_id: &'a str,
    mode: Mode,
    event_id: &'a str,
    event_type: &'a str,
    status: DeliveryStatus,
    attempts: u32,
    /// When the next attempt is due (pending only).
    next_attempt_at: Option<&'a str>,
    last_attempt: Option<LastAttemptView<'a>>,
    created_at: &'a str,
    updated_at: &'a str,
}

#[derive(Serialize)]
struct LastAttemptView<'a> {
    at: &'a str,
    /// The HTTP status answered; `null` when there was no answer (timeout, refused).
    response_status: Option<u16>,
    /// Why it failed, in words; `null` after a 2xx.
    error: Option<&'a str>,
    latency_ms: Option<i64>,
    /// The first 500 characters of the answer's body.
    response_body: Option<&'a str>,
}

fn delivery_view(delivery: &DeliveryRow) -> DeliveryView<'_> {
    DeliveryView {
        id: delivery.id.as_str(),
        endpoint_id: delivery.endpoint_id.as_str(),
        mode: delivery.mode,
        event_id: &delivery.event_id,
        event_type: &delivery.event_type,
        status: delivery.status,
        attempts: delivery.attempts,
        next_attempt_at: (delivery.status == DeliveryStatus::Pending)
            .then_some(delivery.next_attempt_at.as_str()),
        last_attempt: delivery
            .last_attempt_at
            .as_deref()
            .map(|at| LastAttemptView {
                at,
                response_status: delivery.response_status,
                error: delivery.error.as_deref(),
                latency_ms: delivery.latency_ms,
                response_body: delivery.response_body.as_deref(),
            }),
        created_at: &delivery.created_at,
        updated_at: &delivery.updated_at,
    }
}

/// The activity entry of an endpoint created or changed: the events it wants and whether it is
/// on. Never its URL, whose path or query may carry the customer's own token, nor its secret.
fn endpoint_event(action: Action, endpoint: &EndpointRow) -> Event {
    Event::new(action)
        .workspace(&endpoint.workspace_id)
        .mode(endpoint.mode)
        .target(endpoint.id.as_str())
        .detail(
            "events",
            endpoint
                .events
                .iter()
                .map(|kind| kind.as_str())
                .collect::<Vec<_>>(),
        )
        .detail("enabled", endpoint.enabled)
}
