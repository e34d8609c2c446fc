//! HTTP for payments: create, list, show and verify sessions; the providers' webhooks.

use crate::ids::{PaymentSessionId, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::api_keys::format::Scope;
use crate::app::App;
use crate::auth::principal::Principal;
use crate::billing;
use crate::error::AppError;
use crate::payments::Applied;
use crate::payments::flow::{self, Buyer, Purchase};
use crate::payments::provider::ProviderName;
use crate::payments::purchase::{self, PurchaseRequest};
use crate::payments::store::{self, SessionRow, TransactionRow};
use crate::payments::view;
use crate::vocabulary::Mode;
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, Per, Requirement};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSessionBody {
    kind: String,
    plan_code: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
}

/// A payment session as the API shows it; the detail view adds its provider transactions.
#[derive(Serialize)]
struct SessionView<'a> {
    #[serde(flatten)]
    session: view::SessionView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transactions: Option<Vec<TransactionView<'a>>>,
}

/// One call to a payment provider about the session.
#[derive(Serialize)]
struct TransactionView<'a> {
    id: &'a str,
    provider: &'a str,
    operation: &'a str,
    outcome: &'a str,
    provider_reference: Option<&'a str>,
    provider_status: Option<&'a str>,
    status: Option<&'a str>,
    error: Option<TransactionErrorView<'a>>,
    duration_ms: i64,
    created_at: &'a str,
}

#[derive(Serialize)]
struct TransactionErrorView<'a> {
    code: &'a str,
    message: Option<&'a str>,
}

/// `POST /v1/payments/sessions/{id}/verify`: the session's detail and what verifying did.
#[derive(Serialize)]
struct VerifiedSessionView<'a> {
    #[serde(flatten)]
    session: SessionView<'a>,
    verification: VerificationOutcomeView,
}

#[derive(Serialize)]
struct VerificationOutcomeView {
    changed: bool,
    /// Why nothing changed.
    reason: Option<String>,
}

fn session_view<'a>(
    session: &'a SessionRow,
    transactions: Option<&'a [TransactionRow]>,
) -> SessionView<'a> {
    SessionView {
        session: view::session_view(session),
        transactions: transactions
            .map(|transactions| transactions.iter().map(transaction_view).collect()),
    }
}

fn transaction_view(tx: &TransactionRow) -> TransactionView<'_> {
    TransactionView {
        id: &tx.id,
        provider: &tx.provider,
        operation: &tx.operation,
        outcome: &tx.outcome,
        provider_reference: tx.provider_reference.as_deref(),
        provider_status: tx.raw_status.as_deref(),
        status: tx.status.as_deref(),
        error: tx.error_code.as_deref().map(|code| TransactionErrorView {
            code,
            message: tx.error_message.as_deref(),
        }),
        duration_ms: tx.duration_ms,
        created_at: &tx.created_at,
    }
}

/// The purchase a session body asks for, checked by the payments domain against the catalog and
/// the workspace's account.
fn purchase_of(
    app: &App,
    workspace_id: &WorkspaceId,
    body: CreateSessionBody,
) -> Result<Purchase, AppError> {
    let account = app
        .db
        .read(|conn| billing::store::find_account(conn, workspace_id))?
        .ok_or(AppError::NotFound)?;
    purchase::check(
        &app.config.billing_catalog,
        &account,
        app.config.topup_minimum_minor,
        &PurchaseRequest {
            kind: &body.kind,
            plan_code: body.plan_code.as_deref(),
            amount_minor: body.amount_minor,
            currency: body.currency.as_deref(),
        },
        app.clock.now(),
    )
}

/// `POST /v1/payments/sessions`: a checkout for a plan or a top-up. Owner/admin session or a
/// `payments:write` key; `Idempotency-Key` required (leased: the providers are called with no
/// transaction open).
pub fn create_session(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::PaymentsWrite)?;
    if principal.mode() == Mode::Test {
        return Err(AppError::Forbidden(
            "Payments move real money and exist only in live mode: use a live key, or switch \
             the console to live."
                .to_owned(),
        ));
    }
    let workspace_id = scope.id();
    let body: CreateSessionBody = request.json()?;
    let idempotency = (Requirement::Required, Per::Workspace);
    let purchase = match purchase_of(app, workspace_id, body) {
        Ok(purchase) => purchase,
        // Unless this is the retry of a request that went through, whose input may no longer
        // pass (the plan it bought is now running): that one replays.
        Err(refused) => {
            return idempotency::replay_completed(app, request, &principal, idempotency)?
                .ok_or(refused);
        }
    };
    let (actor_id, user_id) = match &principal {
        Principal::Session(session) => (session.user_id().to_string(), Some(session.user_id())),
        Principal::ApiKey(key) => (key.key_id().to_string(), None),
    };
    let email = app
        .db
        .read(|conn| store::find_buyer_email(conn, workspace_id, user_id))?
        .ok_or_else(|| AppError::Conflict("The workspace has no owner to bill.".to_owned()))?;
    let actor = crate::web::activity::actor(app, request, &principal);
    idempotency::leased(app, request, &principal, idempotency, |reference| {
        let buyer = Buyer {
            actor: &actor,
            workspace_id,
            actor_id: &actor_id,
            email: &email,
        };
        let session = flow::start_checkout(app, buyer, &purchase, reference)?;
        ApiResponse::json(201, &session_view(&session, None))
    })
}

/// `GET /v1/payments/sessions`: the workspace's sessions, newest first. Scope `billing:read`.
pub fn list_sessions(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::BillingRead)?;
    let workspace_id = scope.id();
    let page = request.page()?;
    // Payment sessions are live objects: the test world has none.
    let sessions = match principal.mode() {
        Mode::Test => Vec::new(),
        Mode::Live => app.db.read(|conn| {
            store::list_sessions(conn, workspace_id, page.cursor.as_deref(), page.fetch())
        })?,
    };
    let (sessions, next_cursor) = page.split(sessions, |session| session.id.as_str());
    let data: Vec<SessionView<'_>> = sessions
        .iter()
        .map(|session| session_view(session, None))
        .collect();
    page_response(&data, next_cursor)
}

/// The session with its transactions, as the detail view shows them. Payment sessions are live
/// objects: a test-mode caller finds none.
fn detail(
    app: &App,
    (workspace_id, mode): (&WorkspaceId, Mode),
    id: &PaymentSessionId,
) -> Result<(SessionRow, Vec<TransactionRow>), AppError> {
    if mode == Mode::Test {
        return Err(AppError::NotFound);
    }
    app.db.read(|conn| {
        let session =
            store::find_session(conn, id, Some(workspace_id))?.ok_or(AppError::NotFound)?;
        let transactions = store::list_transactions(conn, id)?;
        Ok((session, transactions))
    })
}

/// `GET /v1/payments/sessions/{id}`: one session with its provider transactions.
pub fn show_session(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::BillingRead)?;
    let workspace_id = scope.id();
    let id = PaymentSessionId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    let (session, transactions) = detail(app, (workspace_id, principal.mode()), &id)?;
    ApiResponse::json(200, &session_view(&session, Some(&transactions)))
}

/// `POST /v1/payments/sessions/{id}/verify`: asks the provider now and applies its answer (the
/// return page calls it). Safe to repeat. Scope `billing:read`: it only brings the session in
/// line with the provider's truth. Takes no `Idempotency-Key`: it calls the provider (never
/// inside a write transaction) and changes only what the provider says, so a retry is safe as is.
pub fn verify_session(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::BillingRead)?;
    let workspace_id = scope.id();
    let id = PaymentSessionId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    let (session, _) = detail(app, (workspace_id, principal.mode()), &id)?;
    let applied = if session.status.is_terminal() {
        Applied::Unchanged(format!("the session is already {}", session.status))
    } else {
        flow::verify_session(app, &session)?
    };
    let (session, transactions) = detail(app, (workspace_id, principal.mode()), &id)?;
    let (changed, reason) = match applied {
        Applied::Changed => (true, None),
        Applied::Unchanged(why) => (false, Some(why)),
    };
    ApiResponse::json(
        200,
        &VerifiedSessionView {
            session: session_view(&session, Some(&transactions)),
            verification: VerificationOutcomeView { changed, reason },
        },
    )
}

fn webhook(
    app: &App,
    request: &mut Request<'_>,
    name: ProviderName,
) -> Result<ApiResponse, AppError> {
    let body = request.body_bytes()?;
    let headers = request.headers();
    let journalled = flow::receive_webhook(app, name, &headers, &body)?;
    let view = match &journalled {
        flow::Journalled::New => WebhookReceivedView {
            received: true,
            duplicate: None,
            outcome: "received",
        },
        flow::Journalled::Repeat { outcome } => WebhookReceivedView {
            received: true,
            duplicate: Some(true),
            outcome: outcome.as_str(),
        },
    };
    ApiResponse::json(200, &view)
}

/// The answer to a webhook once its event is journalled: `duplicate` only for a repeat.
#[derive(Serialize)]
struct WebhookReceivedView<'a> {
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    outcome: &'a str,
}

/// `POST /v1/webhooks/flutterwave`.
pub fn flutterwave_webhook(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    webhook(app, request, ProviderName::Flutterwave)
}

/// `POST /v1/webhooks/stripe`.
pub fn stripe_webhook(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    webhook(app, request, ProviderName::Stripe)
}
