//! HTTP for messages: send, estimate, list, show, cancel. Handlers parse and authenticate, then
//! call one domain function inside one transaction.

use crate::api_keys::format::{Mode, Scope};
use crate::app::App;
use crate::auth::principal::Principal;
use crate::billing::{self, Charging, sender};
use crate::clock::{format_timestamp, parse_timestamp};
use crate::error::AppError;
use crate::messages::compose::{SendBody, compose};
use crate::messages::store::{self, MessageFilter};
use crate::messages::{self as domain, Origin, message_view};
use crate::money::Money;
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, Per, Requirement};
use crate::web::request::Request;
use crate::web::response::ApiResponse;

fn charging_of(principal: &Principal) -> Charging {
    match principal {
        Principal::ApiKey(key) if key.mode() == Mode::Test => Charging::Test,
        _ => Charging::Live,
    }
}

/// `POST /v1/messages`: validates, prices, reserves and stores a message `queued` (or
/// `scheduled`), all in one transaction with its `Idempotency-Key` record (required). Scope
/// `messages:send`. Test-mode keys: priced, not charged, delivered to the `log` provider.
pub fn send_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal.require_scope(Scope::MessagesSend)?.to_owned();
    let body: SendBody = request.json()?;
    let api_key_id = match &principal {
        Principal::ApiKey(key) => Some(key.key_id().to_owned()),
        Principal::Session(_) => None,
    };
    let origin = Origin {
        workspace_id: &workspace_id,
        api_key_id: api_key_id.as_deref(),
        charging: charging_of(&principal),
    };
    let idempotency = (Requirement::Required, Per::Workspace);
    // Validate before the idempotent transaction, so a refused body is not stored under the key
    // and a corrected retry with the same key goes through.
    let sender_read = app.db.read(|conn| {
        sender::effective_sender_of(conn, &workspace_id, &app.config.default_sms_sender)
    })?;
    let checked = match compose(
        body.clone(),
        &app.config.default_country,
        &sender_read,
        app.clock.now(),
    ) {
        Ok(composition) => composition,
        // Unless this is the retry of a send that went through, whose input may no longer pass
        // (its schedule time has passed): that one replays.
        Err(refused) => {
            return idempotency::replay_completed(app, request, &principal, idempotency)?
                .ok_or(refused);
        }
    };
    let response = idempotency::in_transaction(app, request, &principal, idempotency, |conn| {
        let now = app.clock.now();
        let effective_sender =
            sender::effective_sender_of(conn, &workspace_id, &app.config.default_sms_sender)?;
        // The sender can change between the read and this transaction (an approval landed);
        // then the message is composed again with the sender it will really use.
        let composition = if effective_sender == sender_read {
            checked
        } else {
            compose(body, &app.config.default_country, &effective_sender, now)?
        };
        let message = domain::create_message(
            conn,
            &app.ids,
            &app.config.billing_catalog,
            origin,
            &composition,
            now,
        )?;
        ApiResponse::json(201, &message_view(&message, None))
    })?;
    if response.status == 201 {
        app.outbox.notify();
    }
    Ok(response)
}

/// `POST /v1/messages/estimate`: validates a send exactly as sending will and prices it —
/// segments, encoding, the characters that forced UCS-2, included and billable units, charge —
/// changing nothing. Scope `messages:send`.
pub fn estimate_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal.require_scope(Scope::MessagesSend)?.to_owned();
    let body: SendBody = request.json()?;
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let (effective_sender, composition, quote) = app.db.read(|conn| {
        let effective_sender =
            sender::effective_sender_of(conn, &workspace_id, &app.config.default_sms_sender)?;
        let composition = compose(body, &app.config.default_country, &effective_sender, now)?;
        let quote = billing::quote(
            conn,
            catalog,
            &workspace_id,
            composition.channel,
            composition.units,
            now,
        )?;
        Ok((effective_sender, composition, quote))
    })?;
    let test_mode = charging_of(&principal) == Charging::Test;
    let segmentation = composition.segmentation.as_ref();
    let body = serde_json::json!({
        "channel": composition.channel.as_str(),
        "to": composition.to,
        "sender": composition.sender.as_ref().map(|_| effective_sender),
        "category": composition.category.as_str(),
        "encoding": segmentation.map(|s| s.encoding.as_str()),
        "segments": segmentation.map(|s| s.segments),
        "non_gsm_characters": segmentation.map(|s| s.non_gsm_characters.iter().map(char::to_string).collect::<Vec<_>>()),
        "units": quote.units,
        "included_units": quote.included_units,
        "billable_units": quote.billable_units,
        "charge": quote.charge,
        "balance": Money::new(quote.balance_minor, &quote.charge.currency),
        "affordable": quote.charge.amount_minor <= quote.balance_minor,
        "mode": if test_mode { "test" } else { "live" },
        "charged": !test_mode,
    });
    ApiResponse::json(200, &body)
}

const STATUSES: [&str; 7] = [
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "cancelled",
];

/// `GET /v1/messages`: the workspace's messages, newest first. Filters: `status`, `channel`,
/// `campaign_id`, `created_from` / `created_to` (RFC 3339). Scope `messages:read`.
pub fn list_messages(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal.require_scope(Scope::MessagesRead)?.to_owned();
    let page = request.page()?;
    let mut fields = crate::error::FieldErrors::new();
    let status = request.query_param("status");
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        fields.add("status", format!("must be one of {}", STATUSES.join(", ")));
    }
    let channel = request.query_param("channel");
    if channel
        .as_deref()
        .is_some_and(|c| c != "sms" && c != "email")
    {
        fields.add("channel", "must be sms or email");
    }
    let mut instant = |name: &str| {
        request
            .query_param(name)
            .and_then(|text| match parse_timestamp(&text) {
                Some(at) => Some(format_timestamp(at)),
                None => {
                    fields.add(name, "must be an RFC 3339 timestamp");
                    None
                }
            })
    };
    let created_from = instant("created_from");
    let created_to = instant("created_to");
    fields.into_result()?;
    let campaign_id = request.query_param("campaign_id");
    let filter = MessageFilter {
        status: status.as_deref(),
        channel: channel.as_deref(),
        campaign_id: campaign_id.as_deref(),
        created_from: created_from.as_deref(),
        created_to: created_to.as_deref(),
    };
    let messages = app.db.read(|conn| {
        store::list_messages(
            conn,
            &workspace_id,
            &filter,
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    page.respond(
        messages,
        |message| message.id.as_str(),
        |message| message_view(message, None),
    )
}

/// `GET /v1/messages/{id}`: one message with its delivery attempts. Scope `messages:read`.
pub fn show_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal.require_scope(Scope::MessagesRead)?.to_owned();
    let id = request.param("id").to_owned();
    detail(app, &workspace_id, &id)
}

/// `POST /v1/messages/{id}/cancel`: cancels a scheduled message and refunds it, once. Scope
/// `messages:send`.
pub fn cancel_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let workspace_id = principal.require_scope(Scope::MessagesSend)?.to_owned();
    let id = request.param("id").to_owned();
    app.db.write(|conn| {
        domain::cancel_message(conn, &app.ids, &workspace_id, &id, app.clock.now())
    })?;
    detail(app, &workspace_id, &id)
}

/// The message with its attempts and refund, as `GET /v1/messages/{id}` shows it.
fn detail(app: &App, workspace_id: &str, id: &str) -> Result<ApiResponse, AppError> {
    let (message, attempts, refunded_at) = app.db.read(|conn| {
        let message = store::find_message(conn, workspace_id, id)?.ok_or(AppError::NotFound)?;
        let attempts = store::list_attempts(conn, id)?;
        let refunded_at = billing::store::find_refunded_at(conn, id)?;
        Ok((message, attempts, refunded_at))
    })?;
    ApiResponse::json(200, &message_view(&message, Some((&attempts, refunded_at))))
}
