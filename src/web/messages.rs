//! HTTP for messages: send, estimate, list, show, cancel. Handlers parse and authenticate, then
//! call one domain function inside one transaction.

use crate::api_keys::format::Scope;
use crate::ids::{MessageId, WorkspaceId};
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;
use serde::Serialize;

use crate::app::App;
use crate::auth::principal::Principal;
use crate::billing::{self, Channel, Charging, sender};
use crate::delivery::accounts;
use crate::error::AppError;
use crate::messages::compose::Category;
use crate::messages::compose::{Draft, compose};
use crate::messages::store::{self, MessageFilter};
use crate::messages::store::{AttemptRow, MessageRow};
use crate::messages::view;
use crate::messages::{self as domain, MessageStatus, Origin, Recipient};
use crate::money::Money;
use crate::sending_domains;
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE, Per, Requirement};
use crate::web::request::Request;
use crate::web::response::{ApiResponse, JSON, JsonPage};

fn charging_of(principal: &Principal) -> Charging {
    match principal.mode() {
        Mode::Test => Charging::Test,
        Mode::Live => Charging::Live,
    }
}

/// `POST /v1/messages`: validates, prices, reserves and stores a message `queued` (or
/// `scheduled`), all in one transaction with its `Idempotency-Key` record (required). Scope
/// `messages:send`. Test-mode keys: priced, not charged, delivered to the `log` provider.
pub fn send_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesSend)?;
    let body: Draft = request.json()?;
    send_draft(app, request, &principal, &scope, body)
}

/// Sends `body` for `principal` in `scope` (checked for `messages:send` by the caller), with
/// the request's `Idempotency-Key`: what `POST /v1/messages` does once it has its body; a
/// campaign's test send comes here too.
pub fn send_draft(
    app: &App,
    request: &mut Request<'_>,
    principal: &Principal,
    scope: &WorkspaceScope,
    body: Draft,
) -> Result<ApiResponse, AppError> {
    let api_key_id = match principal {
        Principal::ApiKey(key) => Some(key.key_id()),
        Principal::Session(_) => None,
    };
    let idempotency = (Requirement::Required, Per::Workspace);
    let effective_sender_now = || {
        app.db
            .read(|conn| sender::effective_sender_of(conn, scope, &app.config.default_sms_sender))
    };
    // Composed before the transaction (pure, and the costliest part of a send), so a refused
    // body is not stored under the key and a corrected retry with the same key goes through.
    let composition = match compose(
        body,
        &app.config.default_country,
        app.clock.now(),
        effective_sender_now,
    ) {
        Ok(mut composition) => {
            composition.route = app.config.delivery.route_to_store(
                composition.channel,
                principal.mode(),
                &composition.to,
            );
            composition
        }
        // Unless this is the retry of a send that went through, whose input may no longer pass
        // (its schedule time has passed): that one replays.
        Err(refused) => {
            return idempotency::replay_completed(app, request, principal, idempotency)?
                .ok_or(refused);
        }
    };
    // One write transaction, on the writer's job thread: replay check, the sender,
    // reservation, message, stored response.
    let scope = scope.clone();
    let api_key_id = api_key_id.cloned();
    let charging = charging_of(principal);
    let mode = principal.mode();
    idempotency::in_job_checked(
        app,
        request,
        principal,
        idempotency,
        move |app, conn| {
            let origin = Origin {
                scope: &scope,
                api_key_id: api_key_id.as_ref(),
                charging,
            };
            let effective_sender =
                sender::effective_sender_of(conn, &scope, &app.config.default_sms_sender)?;
            let mut composition = composition;
            composition.settle_sender(&effective_sender)?;
            // Live email goes From the workspace's own mailbox when it has one on an active
            // sending domain (stamped now, shown as `sender`, signed with that domain's key).
            if composition.channel == Channel::Email && mode == Mode::Live {
                composition.sender = sending_domains::workspace_from(conn, &scope)?;
            }
            // A live message of a workspace with its own provider accounts goes through them.
            if mode == Mode::Live
                && let Some(route) = accounts::route_for(conn, &scope, composition.channel)?
            {
                composition.route = Some(route);
            }
            // Refused like a body that does not validate: nothing is stored under the key, so
            // the same key can be used again once the recipient may be written to.
            let contact_id =
                domain::check_recipient(conn, &app.unsubscribe_key, origin, &composition)?;
            Ok((scope, api_key_id, composition, contact_id))
        },
        move |app, conn, (scope, api_key_id, composition, contact_id)| {
            let origin = Origin {
                scope: &scope,
                api_key_id: api_key_id.as_ref(),
                charging,
            };
            let recipient = Recipient {
                contact_id: contact_id.as_ref(),
                key: &app.unsubscribe_key,
            };
            let message = domain::create_message(
                conn,
                &app.ids,
                &app.config.billing_catalog,
                (origin, recipient),
                &composition,
                app.clock.now(),
            )?;
            ApiResponse::json(201, &message_view(&message, None))
        },
        // A message stored `queued` is the dispatchers' to take: wake them.
        |app, response| {
            if response.status == 201 {
                app.outbox.notify();
            }
        },
    )
}

/// `POST /v1/messages/estimate`: validates a send exactly as sending will — including the
/// recipient's unsubscriptions and state — and prices it: segments, encoding, the characters
/// that forced UCS-2, included and billable units, charge — changing nothing. Scope
/// `messages:send`. A read: it takes no `Idempotency-Key`.
pub fn estimate_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesSend)?;
    let body: Draft = request.json()?;
    let now = app.clock.now();
    let catalog = &app.config.billing_catalog;
    let (effective_sender, composition, quote, accounts_route) = app.db.read(|conn| {
        let effective_sender =
            sender::effective_sender_of(conn, &scope, &app.config.default_sms_sender)?;
        let mut composition = compose(body, &app.config.default_country, now, || {
            Ok(effective_sender.clone())
        })?;
        composition.settle_sender(&effective_sender)?;
        let origin = Origin {
            scope: &scope,
            api_key_id: None,
            charging: charging_of(&principal),
        };
        domain::check_recipient(conn, &app.unsubscribe_key, origin, &composition)?;
        let accounts_route = match charging_of(&principal) {
            Charging::Test => None,
            Charging::Live => accounts::route_for(conn, &scope, composition.channel)?,
        };
        let quote = billing::quote(
            conn,
            catalog,
            &scope,
            composition.channel,
            composition.units,
            now,
        )?;
        Ok((effective_sender, composition, quote, accounts_route))
    })?;
    let test_mode = charging_of(&principal) == Charging::Test;
    let mode = if test_mode { Mode::Test } else { Mode::Live };
    let route = accounts_route.or_else(|| {
        app.config
            .delivery
            .route_to_store(composition.channel, mode, &composition.to)
    });
    let segmentation = composition.segmentation.as_ref();
    let body = EstimateView {
        channel: composition.channel,
        to: &composition.to,
        sender: composition
            .sender
            .as_ref()
            .map(|_| effective_sender.as_str()),
        category: composition.category,
        encoding: segmentation.map(|s| s.encoding.as_str()),
        segments: segmentation.map(|s| s.segments),
        non_gsm_characters: segmentation
            .map(|s| s.non_gsm_characters.iter().map(char::to_string).collect()),
        units: quote.units,
        included_units: quote.included_units,
        billable_units: quote.billable_units,
        balance: Money::new(quote.balance_minor, &quote.charge.currency),
        affordable: quote.charge.amount_minor <= quote.balance_minor,
        charge: quote.charge,
        mode,
        charged: !test_mode,
        route: route.as_deref().and_then(view::route_view),
    };
    ApiResponse::json(200, &body)
}

/// What sending would do, as `POST /v1/messages/estimate` answers it. SMS-only fields are `null`
/// for email.
#[derive(Serialize)]
struct EstimateView<'a> {
    channel: Channel,
    to: &'a str,
    sender: Option<&'a str>,
    category: Category,
    encoding: Option<&'static str>,
    segments: Option<u32>,
    non_gsm_characters: Option<Vec<String>>,
    units: u64,
    included_units: u64,
    billable_units: u64,
    charge: Money,
    balance: Money,
    affordable: bool,
    mode: Mode,
    charged: bool,
    /// SMS: the route the number takes and its provider chain; the workspace's provider
    /// accounts (`accounts`, their ids in order) when it has some for the channel, email too;
    /// else `null` for email.
    route: Option<view::RouteView<'a>>,
}

/// `must be one of a, b, c` for a query parameter that takes one of `values`.
fn one_of<T: Copy + std::fmt::Display>(values: &[T]) -> String {
    let names: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("must be one of {}", names.join(", "))
}

/// `GET /v1/messages`: the workspace's messages, newest first. Filters: `status`, `channel`,
/// `campaign_id`, `created_from` / `created_to` (RFC 3339). Scope `messages:read`.
pub fn list_messages(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesRead)?;
    let workspace_id = scope.id();
    let page = request.page()?;
    let mut fields = crate::error::FieldErrors::new();
    let status = request.query_param("status").and_then(|text| {
        let status = MessageStatus::parse(&text);
        if status.is_none() {
            fields.add("status", one_of(MessageStatus::ALL));
        }
        status
    });
    let channel = request.query_param("channel").and_then(|text| {
        let channel = Channel::parse(&text);
        if channel.is_none() {
            fields.add("channel", one_of(Channel::ALL));
        }
        channel
    });
    let created_from = request.timestamp_param("created_from", &mut fields);
    let created_to = request.timestamp_param("created_to", &mut fields);
    fields.into_result()?;
    let campaign_id = request.query_param("campaign_id");
    let filter = MessageFilter {
        status,
        channel,
        campaign_id: campaign_id.as_deref(),
        created_from: created_from.as_deref(),
        created_to: created_to.as_deref(),
    };
    // Everything the page depends on: between two commits, the same page is sent again as
    // it was written (a dashboard polling the list, a client reading it twice).
    let key = format!(
        "GET /v1/messages {workspace_id} {} {filter:?} {:?} {}",
        principal.mode(),
        page.cursor,
        page.limit
    );
    let body = app.db.read_remembered(&key, |conn| {
        let mut page_body = JsonPage::new(page.limit);
        store::list_messages(
            conn,
            (workspace_id, principal.mode()),
            &filter,
            page.cursor.as_deref(),
            page.fetch(),
            |row| {
                if !page_body.shows_next() {
                    return Ok(());
                }
                let message = view::listed_view(row)?;
                page_body.push(message.id, &message)
            },
        )?;
        page_body.finish_body()
    })?;
    Ok(ApiResponse::shared(200, JSON, body))
}

/// The body of `GET /v1/messages/timeline`.
#[derive(Serialize)]
struct DailySendsView {
    days: u32,
    data: Vec<DailySendsPointView>,
}

#[derive(Serialize)]
struct DailySendsPointView {
    /// The UTC day, `2026-12-03`.
    day: String,
    sms: u64,
    email: u64,
}

/// `GET /v1/messages/timeline?days=14`: how many messages the workspace created per UTC day and
/// channel over the last `days` days (1–90, default 14), oldest first — the console's chart.
/// Scope `messages:read`.
pub fn messages_timeline(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesRead)?;
    let days = match request.query_param("days") {
        None => 14,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|days| (1..=domain::MAX_TIMELINE_DAYS).contains(days))
            .ok_or_else(|| {
                AppError::invalid_field("days", "must be a whole number from 1 to 90")
            })?,
    };
    let now = app.clock.now();
    let mode = principal.mode();
    let points = app
        .db
        .read(|conn| domain::daily_sends(conn, &scope, mode, days, now))?;
    let view = DailySendsView {
        days,
        data: points
            .into_iter()
            .map(|point| DailySendsPointView {
                day: point.day,
                sms: point.sms,
                email: point.email,
            })
            .collect(),
    };
    ApiResponse::json(200, &view)
}

/// `GET /v1/messages/{id}`: one message with its delivery attempts. Scope `messages:read`.
pub fn show_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesRead)?;
    let workspace_id = scope.id();
    let id = MessageId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    app.db
        .read(|conn| detail(conn, (workspace_id, principal.mode()), &id))
}

/// `POST /v1/messages/{id}/cancel`: cancels a scheduled message and refunds it, once. Scope
/// `messages:send`. Accepts an `Idempotency-Key`.
pub fn cancel_message(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::MessagesSend)?;
    let workspace_id = scope.id();
    let id = MessageId::parse(request.param("id")).ok_or(AppError::NotFound)?;
    let mode = principal.mode();
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        domain::cancel_message(conn, &app.ids, (&scope, mode), &id, app.clock.now())?;
        detail(conn, (workspace_id, mode), &id)
    })
}

/// The message with its attempts and refund, as `GET /v1/messages/{id}` shows it.
fn detail(
    conn: &rusqlite::Connection,
    (workspace_id, mode): (&WorkspaceId, Mode),
    id: &MessageId,
) -> Result<ApiResponse, AppError> {
    let message = store::find_message(conn, workspace_id, mode, id)?.ok_or(AppError::NotFound)?;
    let attempts = store::list_attempts(conn, id)?;
    let refunded_at = billing::store::find_refunded_at(conn, id.as_str())?;
    ApiResponse::json(
        200,
        &message_view(&message, Some((&attempts, refunded_at.as_deref()))),
    )
}

/// A message as the API shows it; `detail` (one message, not a list) adds its HTML, the refund
/// and the attempts.
#[derive(Serialize)]
struct MessageView<'a> {
    #[serde(flatten)]
    message: view::MessageView<'a>,
    #[serde(flatten)]
    detail: Option<DetailView<'a>>,
}

#[derive(Serialize)]
struct DetailView<'a> {
    html: Option<&'a str>,
    refunded_at: Option<&'a str>,
    attempts: Vec<AttemptView<'a>>,
}

#[derive(Serialize)]
struct AttemptView<'a> {
    attempt: u32,
    delivery_cycle: u32,
    provider: &'a str,
    outcome: &'a str,
    provider_message_id: Option<&'a str>,
    error: Option<view::ErrorView<'a>>,
    duration_ms: u64,
    created_at: &'a str,
}

fn message_view<'a>(
    message: &'a MessageRow,
    detail: Option<(&'a [AttemptRow], Option<&'a str>)>,
) -> MessageView<'a> {
    MessageView {
        message: view::message_view(message),
        detail: detail.map(|(attempts, refunded_at)| DetailView {
            // A purged message keeps `''` where the schema needs a value; the API shows `null`.
            html: message
                .html
                .as_deref()
                .filter(|_| message.body_purged_at.is_none()),
            refunded_at,
            attempts: attempts
                .iter()
                .map(|attempt| AttemptView {
                    attempt: attempt.attempt_no,
                    delivery_cycle: attempt.delivery_cycle,
                    provider: &attempt.provider,
                    outcome: &attempt.outcome,
                    provider_message_id: attempt.provider_message_id.as_deref(),
                    error: view::error_view(
                        attempt.error_code.as_deref(),
                        attempt.error_message.as_deref(),
                    ),
                    duration_ms: attempt.duration_ms,
                    created_at: &attempt.created_at,
                })
                .collect(),
        }),
    }
}
