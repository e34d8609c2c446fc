//! Delivery receipts: `POST /v1/webhooks/sms/{provider}`. A provider that accepted a message
//! later reports whether it reached the handset; the receipt moves a `sent` message to
//! `delivered` or `failed` (never back, never a message in another state).
//!
//! `POST /v1/webhooks/sms/{provider}/inbound`: SMS people send to our numbers. A STOP keyword
//! unsubscribes the sender from SMS (`contacts::unsubscribe::unsubscribe_by_keyword`); every
//! other text is ignored.
//!
//! `POST /v1/webhooks/email/{provider}`: email relays' bounces and complaints (`generic`, with
//! the receipt token; `mailgun`, signed with its webhook signing key). A bounce fails the `sent`
//! message and marks the address `bounced`, a complaint marks it `complained`
//! (`delivery::apply_email_events`).
//!
//! Authentication: the secret token crier put in the callback URL it gave the provider
//! (`?token=…`, compared in constant time), and Twilio's own signature of inbound requests.
//! Without a configured token, both endpoints are off and answer 404.

use crate::app::App;
use crate::billing::Channel;
use crate::contacts::unsubscribe;
use crate::delivery::Provider;
use crate::delivery::email_events::{self, EventsRefusal};
use crate::delivery::{self, InboundRefusal, InboundRequest, ReceiptRequest, accounts, dispatcher};
use crate::error::AppError;
use crate::ids::{ProviderAccountId, WorkspaceId};
use crate::recipients::normalize_phone;
use crate::secrets::constant_time_eq;
use crate::web::request::Request;
use crate::web::response::ApiResponse;
use std::sync::Arc;

/// The receipt token of the URL, checked first: without it, nobody learns which providers are
/// configured. 404 when receipts are off.
fn check_token(app: &App, request: &Request<'_>) -> Result<(), AppError> {
    let Some(expected) = app.config.delivery.receipt_token.as_ref() else {
        return Err(AppError::NotFound);
    };
    let presented = request.query_param("token").unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
        return Err(AppError::InvalidSignature(
            "The receipt URL's token is missing or wrong; use the callback URL crier gave the \
             provider."
                .to_owned(),
        ));
    }
    Ok(())
}

pub fn receive_receipts(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let provider_name = request.param("provider").to_owned();
    check_token(app, request)?;
    let provider = app
        .providers
        .sms_provider(&provider_name)
        .ok_or(AppError::NotFound)?;
    let receipts = read_receipts(app, provider.as_ref(), request)?;
    let now = app.clock.now();
    let applied = app
        .db
        .write(|conn| delivery::apply_receipts(conn, provider.name(), &receipts, now))?;
    receipts_answer(app, provider.as_ref(), receipts.len(), applied)
}

/// The receipts of a callback, parsed by the provider that sent them (counted as rejected when
/// they do not parse; 404 for a provider that sends none).
fn read_receipts(
    app: &App,
    provider: &dyn Provider,
    request: &mut Request<'_>,
) -> Result<Vec<delivery::Receipt>, AppError> {
    let body = request.body_bytes()?;
    let content_type = request.header("Content-Type").map(str::to_owned);
    let receipt_request = ReceiptRequest {
        content_type: content_type.as_deref(),
        query: request.query(),
        body: &body,
    };
    match provider.parse_receipts(&receipt_request) {
        None => Err(AppError::NotFound),
        Some(Err(why)) => {
            app.metrics.record_webhook(provider.name(), "rejected");
            Err(AppError::BadRequest(format!("Not a receipt: {why}")))
        }
        Some(Ok(receipts)) => Ok(receipts),
    }
}

/// The answer to a callback whose receipts were applied.
fn receipts_answer(
    app: &App,
    provider: &dyn Provider,
    received: usize,
    applied: u64,
) -> Result<ApiResponse, AppError> {
    app.metrics.record_webhook(provider.name(), "accepted");
    ApiResponse::json(200, &ReceiptsView { received, applied })
}

/// `POST /v1/webhooks/sms/{provider}/accounts/{id}?token=…`: delivery receipts for a workspace's
/// own provider account. The token is derived from the account's own secrets (shown as the
/// account's `receipts_url`), so only a URL made with them is taken; the receipts change only
/// that workspace's messages. 404 for an unknown account, another provider, an email account,
/// or one that cannot send (its secrets must be entered again).
pub fn receive_account_receipts(
    app: &App,
    request: &mut Request<'_>,
) -> Result<ApiResponse, AppError> {
    let (provider, workspace_id) = account_callback(app, request)?;
    let receipts = read_receipts(app, provider.as_ref(), request)?;
    let now = app.clock.now();
    let applied = app.db.write(|conn| {
        delivery::apply_account_receipts(conn, &workspace_id, provider.name(), &receipts, now)
    })?;
    receipts_answer(app, provider.as_ref(), receipts.len(), applied)
}

/// The adapter of the SMS provider account a callback URL names
/// (`/v1/webhooks/sms/{provider}/accounts/{id}…?token=…`) and its workspace, once the token —
/// derived from the account's own secrets — is checked. 404 for an unknown account, another
/// provider, an email account, one without secrets or whose secrets must be entered again.
fn account_callback(
    app: &App,
    request: &Request<'_>,
) -> Result<(Arc<dyn Provider>, WorkspaceId), AppError> {
    let provider_name = request.param("provider").to_owned();
    let id = ProviderAccountId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    let account = app
        .db
        .read(|conn| accounts::find_any(conn, &id))?
        .filter(|account| account.row.channel == Channel::Sms)
        .filter(|account| account.row.provider == provider_name)
        .ok_or(AppError::NotFound)?;
    let provider = dispatcher::account_provider(app, &account.row).ok_or(AppError::NotFound)?;
    let expected = provider
        .account()
        .and_then(|built| built.receipt_token())
        .ok_or(AppError::NotFound)?;
    let presented = request.query_param("token").unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
        return Err(AppError::InvalidSignature(
            "The URL's token is missing or wrong; use the account's receipts_url or inbound_url."
                .to_owned(),
        ));
    }
    Ok((provider, account.row.workspace_id))
}

/// `POST /v1/webhooks/sms/{provider}/accounts/{id}/inbound?token=…`: an SMS a person sent to one
/// of a workspace's own numbers (its provider account's). The token as for the account's
/// receipts; Twilio's signature is checked with the account's own auth token. A STOP keyword
/// unsubscribes the sender from SMS in that workspace only (where it wrote to the number).
pub fn receive_account_inbound(
    app: &App,
    request: &mut Request<'_>,
) -> Result<ApiResponse, AppError> {
    let (provider, workspace_id) = account_callback(app, request)?;
    let (received, stops) = read_stops(app, provider.as_ref(), request)?;
    let now = app.clock.now();
    let unsubscribed = if stops.is_empty() {
        0
    } else {
        app.db
            .write(|conn| delivery::apply_account_stops(conn, &workspace_id, &stops, now))?
    };
    inbound_answer(app, provider.as_ref(), received, unsubscribed)
}

/// How many receipts came in and how many changed a message.
#[derive(serde::Serialize)]
struct ReceiptsView {
    received: usize,
    applied: u64,
}

/// `POST /v1/webhooks/sms/{provider}/inbound?token=…`: an SMS a person sent. A STOP keyword
/// (STOP, ARRET, ARRÊT, STOPALL, UNSUBSCRIBE, DESABONNER; any case, accents, surrounding
/// punctuation) unsubscribes the sender's phone from SMS in the workspaces that have written to
/// it; any other text is ignored. Answers 200 either way (Twilio: an empty TwiML response).
pub fn receive_inbound(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let provider_name = request.param("provider").to_owned();
    check_token(app, request)?;
    let provider = app
        .providers
        .sms_provider(&provider_name)
        .ok_or(AppError::NotFound)?;
    let (received, stops) = read_stops(app, provider.as_ref(), request)?;
    let now = app.clock.now();
    let unsubscribed = if stops.is_empty() {
        0
    } else {
        app.db.write(|conn| {
            let mut changed = 0;
            for phone in &stops {
                changed += unsubscribe::unsubscribe_by_keyword(conn, phone, now)?;
            }
            Ok(changed)
        })?
    };
    inbound_answer(app, provider.as_ref(), received, unsubscribed)
}

/// The inbound SMS of a callback, parsed (and, for Twilio, its signature checked) by the
/// provider that sent them: how many came, and the senders' phones, normalised, of those that
/// say a STOP keyword — only a keyword from a number we can read changes anything.
fn read_stops(
    app: &App,
    provider: &dyn Provider,
    request: &mut Request<'_>,
) -> Result<(usize, Vec<String>), AppError> {
    let body = request.body_bytes()?;
    let content_type = request.header("Content-Type").map(str::to_owned);
    let signature = request.header("X-Twilio-Signature").map(str::to_owned);
    let url = format!(
        "{}{}?{}",
        app.config.public_url.trim_end_matches('/'),
        request.path(),
        request.query()
    );
    let inbound_request = InboundRequest {
        content_type: content_type.as_deref(),
        url: &url,
        twilio_signature: signature.as_deref(),
        body: &body,
    };
    let messages = match provider.parse_inbound(&inbound_request) {
        None => return Err(AppError::NotFound),
        Some(Err(refusal)) => {
            app.metrics.record_webhook(provider.name(), "rejected");
            return Err(match refusal {
                InboundRefusal::Signature(why) => AppError::InvalidSignature(why),
                InboundRefusal::Malformed(why) => {
                    AppError::BadRequest(format!("Not an inbound SMS: {why}"))
                }
            });
        }
        Some(Ok(messages)) => messages,
    };
    let stops = messages
        .iter()
        .filter(|message| unsubscribe::is_stop_keyword(&message.text))
        .filter_map(|message| normalize_phone(&message.from, &app.config.default_country).ok())
        .collect();
    Ok((messages.len(), stops))
}

/// The answer to an inbound callback: Twilio wants an empty TwiML response, others the counts.
fn inbound_answer(
    app: &App,
    provider: &dyn Provider,
    received: usize,
    unsubscribed: usize,
) -> Result<ApiResponse, AppError> {
    app.metrics.record_webhook(provider.name(), "accepted");
    if provider.name() == "twilio" {
        return Ok(ApiResponse::bytes(
            200,
            "text/xml; charset=utf-8",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
        ));
    }
    ApiResponse::json(
        200,
        &InboundView {
            received,
            unsubscribed,
        },
    )
}

/// How many inbound messages came in and how many contacts they unsubscribed.
#[derive(serde::Serialize)]
struct InboundView {
    received: usize,
    unsubscribed: usize,
}

/// `POST /v1/webhooks/email/{provider}`: a relay's bounces and complaints. `generic` takes the
/// receipt token in the URL (404 without one configured); `mailgun` its signature in the body
/// under `--mailgun-webhook-key` (404 without it). A bad token or signature is 401 and changes
/// nothing; events about messages crier did not send, or already applied, are taken (200) and
/// change nothing.
pub fn receive_email_events(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let provider = request.param("provider").to_owned();
    let parsed = match provider.as_str() {
        "generic" => {
            check_token(app, request)?;
            email_events::parse_generic(&request.body_bytes()?)
        }
        "mailgun" => {
            let Some(key) = app.config.delivery.mailgun_webhook_key.as_ref() else {
                return Err(AppError::NotFound);
            };
            email_events::parse_mailgun(&request.body_bytes()?, key.expose().as_bytes())
        }
        _ => return Err(AppError::NotFound),
    };
    let events = match parsed {
        Ok(events) => events,
        Err(refusal) => {
            app.metrics.record_webhook(&provider, "rejected");
            return Err(match refusal {
                EventsRefusal::Signature(why) => AppError::InvalidSignature(why),
                EventsRefusal::Malformed(why) => {
                    AppError::BadRequest(format!("Not a bounce or complaint: {why}"))
                }
            });
        }
    };
    let now = app.clock.now();
    let applied = if events.is_empty() {
        0
    } else {
        app.db
            .write(|conn| delivery::apply_email_events(conn, &events, now))?
    };
    app.metrics.record_webhook(&provider, "accepted");
    ApiResponse::json(
        200,
        &ReceiptsView {
            received: events.len(),
            applied,
        },
    )
}
