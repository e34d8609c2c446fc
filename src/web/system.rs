//! Endpoints that belong to the server itself rather than to a domain: probes, the embedded
//! pages, and the OpenAPI document.

use crate::app::App;
use crate::db;
use crate::error::AppError;
use crate::web::request::Request;
use crate::web::response::{ApiResponse, JSON};

/// The machine-readable API contract. A test keeps it equal to the route table.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// A probe's answer: `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(serde::Serialize)]
struct ProbeView {
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving HTTP. Touches nothing else.
pub fn show_health(_app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    ApiResponse::json(200, &ProbeView { status: "ok" })
}

/// `GET /readyz`: 200 only if the database accepts a write right now; 503 otherwise.
pub fn show_readiness(app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let now = app.clock.now();
    app.db
        .write(|conn| db::record_health_probe(conn, now))
        .map_err(|err| match err {
            AppError::Unavailable { .. } => err,
            other => AppError::Unavailable {
                retry_after_secs: 1,
                detail: format!("readiness write failed: {other}"),
            },
        })?;
    ApiResponse::json(200, &ProbeView { status: "ready" })
}

/// `GET /docs`: the human-readable API reference — every operation with its parameters, request
/// body, responses and schemas — drawn in the browser from `/openapi.json` by the console's
/// `docs.js` (so it has the console's strict headers).
pub fn show_docs(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    crate::web::console::show_docs(app, request)
}

/// `GET /openapi.json`: the OpenAPI 3.1 document.
pub fn show_openapi(_app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    Ok(ApiResponse::bytes(200, JSON, OPENAPI_JSON))
}

/// `GET /invitations/accept?token=…`: the page an invitation link opens. It is the console,
/// which sees this path and opens its acceptance page (`/#/accept/<token>`); that posts the token
/// (and a name and password for a new account) to `POST /v1/invitations/accept`.
pub fn show_accept_invitation(
    app: &App,
    request: &mut Request<'_>,
) -> Result<ApiResponse, AppError> {
    crate::web::console::show_console(app, request)
}

/// `GET /billing/return?session=pay_…`: where payment providers send the payer back. It is the
/// console (with its strict headers), which sees this path and opens the payment's page
/// (`/#/payment/pay_…`); that page asks crier to verify the payment with the provider and shows
/// the verified outcome.
pub fn show_billing_return(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    crate::web::console::show_console(app, request)
}

/// `GET /metrics`: Prometheus text exposition (requests by route and status, latency, provider
/// calls, webhooks, messages by status, dispatcher lag, remembered list pages).
pub fn show_metrics(app: &App, _request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let now = app.clock.now();
    let (by_status, oldest_due) = app.db.read(|conn| {
        Ok((
            crate::messages::store::count_by_status(conn)?,
            crate::messages::store::oldest_due(conn, &crate::clock::format_timestamp(now))?,
        ))
    })?;
    let lag_seconds = oldest_due
        .as_deref()
        .and_then(crate::clock::parse_timestamp)
        .map_or(0.0, |due| {
            (now - due).num_milliseconds().max(0) as f64 / 1000.0
        });
    let mut text = app.metrics.render();
    text.push_str(&crate::metrics::Metrics::render_outbox(
        &by_status,
        lag_seconds,
    ));
    let remembered = app.db.remembered_reads();
    text.push_str(&crate::metrics::Metrics::render_remembered(
        remembered.given_kept,
        remembered.read_anew,
    ));
    Ok(ApiResponse::bytes(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        text,
    ))
}
