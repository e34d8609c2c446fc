//! Outgoing webhooks (docs/design/webhooks.md): the endpoints a workspace registers per mode,
//! one delivery per event and endpoint, the signature, retries and disablement. The runner
//! (`runner.rs`) prepares recorded events (`events`) into deliveries and sends them, between
//! transactions.

pub mod runner;
pub mod store;

use std::time::Duration;

use chrono::Duration as Span;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::clock::{Timestamp, format_timestamp, parse_timestamp};
use crate::error::AppError;
use crate::events::{self, EventType, NewEvent, ObjectKind};
use crate::ids::{Ids, WebhookDeliveryId, WebhookEndpointId};
use crate::outbound::{HttpReply, TransportError};
use crate::scope::WorkspaceScope;
use crate::vocabulary::Mode;
use store::{AttemptOutcome, DeliveryRow, DeliveryStatus, EndpointRow};

/// The longest a URL may be.
const MAX_URL_CHARS: usize = 2048;
/// The longest description.
const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long deliveries are retried: three days after the event.
pub const RETRY_FOR: Span = Span::days(3);
/// The wait after a first failed attempt; it doubles with each further one (with jitter).
const RETRY_BASE: Duration = Duration::from_secs(30);
/// The longest wait between attempts.
const RETRY_MAX: Duration = Duration::from_secs(6 * 60 * 60);
/// An endpoint whose attempts have all failed for this long (and at least `DISABLE_MIN_FAILURES`
/// in a row) is turned off.
pub const DISABLE_AFTER: Span = Span::days(3);
const DISABLE_MIN_FAILURES: u32 = 3;
/// How much of an answer the delivery log keeps.
const RESPONSE_PREFIX_CHARS: usize = 500;
/// The default and the longest time a rotated secret keeps signing beside the new one.
const DEFAULT_ROTATION_OVERLAP_SECONDS: i64 = 24 * 60 * 60;
const MAX_ROTATION_OVERLAP_SECONDS: i64 = 7 * 24 * 60 * 60;

/// How long events and settled deliveries are kept (the janitor deletes older ones).
pub const RETENTION: Span = Span::days(30);

/// The operator's settings for webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Whether endpoints may be (or resolve to) loopback, private or link-local addresses.
    pub allow_private: bool,
    /// Hosts (lowercase) that endpoints may reach over plain `http://`.
    pub http_hosts: Vec<String>,
    /// The bound on each delivery attempt (connect, send, answer).
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            allow_private: false,
            http_hosts: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The body of `POST /v1/webhook-endpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub enabled: Option<bool>,
}

/// The body of `PATCH /v1/webhook-endpoints/{id}`: what is sent changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub enabled: Option<bool>,
}

/// The body of `POST /v1/webhook-endpoints/{id}/rotate-secret`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the old secret keeps signing beside the new one (0 to 604800 seconds).
    pub overlap_seconds: Option<i64>,
}

/// Checks a URL against the operator's rules: `https://` (or `http://` to a host the operator
/// allows), a host, no credentials, and not an address literal of a private range unless
/// allowed. Host names are checked when each attempt connects (`outbound::guarded_client`).
pub fn check_url(raw: &str, settings: &WebhookSettings) -> Result<String, String> {
    let url = raw.trim();
    if url.is_empty() || url.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "must be a URL of at most {MAX_URL_CHARS} characters"
        ));
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| "must be an absolute http(s) URL".to_owned())?;
    let host = uri
        .host()
        .filter(|host| !host.is_empty())
        .ok_or("must be an absolute http(s) URL")?
        .to_ascii_lowercase();
    if uri
        .authority()
        .is_some_and(|authority| authority.as_str().contains('@'))
    {
        return Err("must not carry credentials".to_owned());
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if settings.http_hosts.contains(&host) => {}
        Some("http") => {
            return Err("must use https (plain http only to hosts the operator allows)".to_owned());
        }
        _ => return Err("must be an absolute http(s) URL".to_owned()),
    }
    if let Some(ip) = address_literal(&host)
        && !settings.allow_private
        && crate::outbound::is_private_target(ip)
    {
        return Err("must not be a private, loopback or link-local address".to_owned());
    }
    Ok(url.to_owned())
}

/// The address a URL's host names when it is an address rather than a name: `[…]` IPv6, and
/// IPv4 in every spelling the system's resolver takes as one (`inet_aton`: `127.0.0.1`, `127.1`,
/// `2130706433`, `0x7f000001`, `0177.0.0.1`). Such a host never reaches DNS, so this is what the
/// connection would go to. With a trailing dot (`192.168.1.1.`) the resolver would look the name
/// up instead; it is read as the address all the same, to refuse it at once (stricter only).
fn address_literal(host: &str) -> Option<std::net::IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse().ok();
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<u32> = host
        .split('.')
        .map(inet_aton_number)
        .collect::<Option<_>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|part| *part > 255) {
        return None;
    }
    // The last part fills the bytes the leading ones leave: 4 bytes after none, 1 after three.
    let last_bits = 32 - 8 * u32::try_from(leading.len()).ok()?;
    if last_bits < 32 && *last >= 1 << last_bits {
        return None;
    }
    let high = leading
        .iter()
        .enumerate()
        .fold(0u32, |address, (index, part)| {
            address | part << (24 - 8 * index)
        });
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(high | last)))
}

/// One part of an `inet_aton` address: decimal, octal after a leading `0`, hex after `0x`.
fn inet_aton_number(part: &str) -> Option<u32> {
    let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        None => (part, 10),
    };
    if digits.is_empty() {
        // `0x` alone is 0 to inet_aton; an empty part (`1..2`) is no number.
        return (radix == 16).then_some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

fn check_events(raw: &[String]) -> Result<Vec<EventType>, String> {
    if raw.is_empty() {
        return Err("must name at least one event type".to_owned());
    }
    let mut events = Vec::new();
    for word in raw {
        if word == "*" {
            return Ok(EventType::subscribable().collect());
        }
        match EventType::parse(word).filter(|kind| *kind != EventType::WebhookTest) {
            Some(kind) if !events.contains(&kind) => events.push(kind),
            Some(_) => {}
            None => {
                let known: Vec<&str> = EventType::subscribable().map(EventType::as_str).collect();
                return Err(format!(
                    "{word:?} is not an event type; one of {}, or \"*\"",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(events)
}

fn check_description(raw: Option<String>) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => crate::validate::text(&text, 1, MAX_DESCRIPTION_CHARS).map(Some),
    }
}

fn new_secret(ids: &Ids) -> String {
    format!(
        "whsec_{}",
        crate::secrets::base62(&ids.random_bytes(24), 32)
    )
}

/// A new endpoint; its signing secret is in the row (shown to the caller now and after a
/// rotation, never otherwise).
pub fn create_endpoint(
    conn: &Connection,
    ids: &Ids,
    (scope, mode): (&WorkspaceScope, Mode),
    body: NewEndpoint,
    settings: &WebhookSettings,
    now: Timestamp,
) -> Result<EndpointRow, AppError> {
    let url = check_url(&body.url, settings).map_err(|why| AppError::invalid_field("url", why))?;
    let events =
        check_events(&body.events).map_err(|why| AppError::invalid_field("events", why))?;
    let description = check_description(body.description)
        .map_err(|why| AppError::invalid_field("description", why))?;
    let now = format_timestamp(now);
    let endpoint = EndpointRow {
        id: WebhookEndpointId::generate(ids),
        workspace_id: scope.id().clone(),
        mode,
        url,
        description,
        events,
        enabled: body.enabled.unwrap_or(true),
        disabled_reason: None,
        secret: new_secret(ids),
        previous_secret: None,
        previous_secret_expires_at: None,
        consecutive_failures: 0,
        failing_since: None,
        created_at: now.clone(),
        updated_at: now,
    };
    store::insert_endpoint(conn, &endpoint)?;
    Ok(endpoint)
}

pub fn find_endpoint(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookEndpointId,
) -> Result<EndpointRow, AppError> {
    store::find_endpoint(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

pub fn list_endpoints(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<EndpointRow>, AppError> {
    store::list_endpoints(conn, scope.id(), mode, before, limit)
}

/// Changes what the body sends. Turning an endpoint on clears why crier had turned it off.
pub fn update_endpoint(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookEndpointId,
    body: EndpointChanges,
    settings: &WebhookSettings,
    now: Timestamp,
) -> Result<EndpointRow, AppError> {
    let mut endpoint = find_endpoint(conn, (scope, mode), id)?;
    if let Some(url) = body.url {
        endpoint.url =
            check_url(&url, settings).map_err(|why| AppError::invalid_field("url", why))?;
    }
    if let Some(events) = body.events {
        endpoint.events =
            check_events(&events).map_err(|why| AppError::invalid_field("events", why))?;
    }
    if let Some(description) = body.description {
        endpoint.description = check_description(description)
            .map_err(|why| AppError::invalid_field("description", why))?;
    }
    if let Some(enabled) = body.enabled {
        if enabled && !endpoint.enabled {
            endpoint.disabled_reason = None;
            endpoint.consecutive_failures = 0;
            endpoint.failing_since = None;
        }
        endpoint.enabled = enabled;
    }
    endpoint.updated_at = format_timestamp(now);
    store::update_endpoint(conn, &endpoint)?;
    Ok(endpoint)
}

/// Deletes the endpoint and its delivery log.
pub fn delete_endpoint(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookEndpointId,
) -> Result<(), AppError> {
    find_endpoint(conn, (scope, mode), id)?;
    store::delete_endpoint(conn, id)?;
    Ok(())
}

/// A new signing secret; the old one keeps signing (a second `v1=`) for the overlap.
pub fn rotate_secret(
    conn: &Connection,
    ids: &Ids,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookEndpointId,
    body: Rotation,
    now: Timestamp,
) -> Result<EndpointRow, AppError> {
    let overlap = body
        .overlap_seconds
        .unwrap_or(DEFAULT_ROTATION_OVERLAP_SECONDS);
    if !(0..=MAX_ROTATION_OVERLAP_SECONDS).contains(&overlap) {
        return Err(AppError::invalid_field(
            "overlap_seconds",
            format!("must be 0 to {MAX_ROTATION_OVERLAP_SECONDS} seconds"),
        ));
    }
    let mut endpoint = find_endpoint(conn, (scope, mode), id)?;
    let old = std::mem::replace(&mut endpoint.secret, new_secret(ids));
    if overlap > 0 {
        endpoint.previous_secret = Some(old);
        endpoint.previous_secret_expires_at = Some(format_timestamp(now + Span::seconds(overlap)));
    } else {
        endpoint.previous_secret = None;
        endpoint.previous_secret_expires_at = None;
    }
    endpoint.updated_at = format_timestamp(now);
    store::update_endpoint(conn, &endpoint)?;
    Ok(endpoint)
}

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Serialize)]
pub struct EndpointView<'a> {
    pub id: &'a str,
    pub mode: Mode,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub events: &'a [EventType],
    pub enabled: bool,
    /// Why crier turned the endpoint off (it kept failing); `null` otherwise.
    pub disabled_reason: Option<&'a str>,
    /// Until when the secret replaced by the last rotation still signs too.
    pub previous_secret_expires_at: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
}

pub fn endpoint_view(endpoint: &EndpointRow) -> EndpointView<'_> {
    EndpointView {
        id: endpoint.id.as_str(),
        mode: endpoint.mode,
        url: &endpoint.url,
        description: endpoint.description.as_deref(),
        events: &endpoint.events,
        enabled: endpoint.enabled,
        disabled_reason: endpoint.disabled_reason.as_deref(),
        previous_secret_expires_at: endpoint.previous_secret_expires_at.as_deref(),
        created_at: &endpoint.created_at,
        updated_at: &endpoint.updated_at,
    }
}

/// The whole event as delivered.
fn event_body(
    id: &str,
    kind: &str,
    created_at: &str,
    mode: Mode,
    object: serde_json::Value,
) -> String {
    serde_json::json!({
        "id": id,
        "type": kind,
        "created_at": created_at,
        "mode": mode,
        "data": { "object": object },
    })
    .to_string()
}

fn new_delivery(
    ids: &Ids,
    endpoint: &EndpointRow,
    event_id: &str,
    kind: &str,
    now: &str,
) -> DeliveryRow {
    DeliveryRow {
        id: WebhookDeliveryId::generate(ids),
        endpoint_id: endpoint.id.clone(),
        workspace_id: endpoint.workspace_id.clone(),
        mode: endpoint.mode,
        event_id: event_id.to_owned(),
        event_type: kind.to_owned(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now.to_owned(),
        last_attempt_at: None,
        response_status: None,
        error: None,
        latency_ms: None,
        response_body: None,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    }
}

/// `POST /v1/webhook-endpoints/{id}/test`: a `webhook.test` event (the endpoint itself as its
/// object) for this endpoint alone. Queued even while the endpoint is off; sent once it is on.
pub fn send_test_event(
    conn: &Connection,
    ids: &Ids,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookEndpointId,
    now: Timestamp,
) -> Result<DeliveryRow, AppError> {
    let endpoint = find_endpoint(conn, (scope, mode), id)?;
    let now = format_timestamp(now);
    let event_id = ids.new_id("evt");
    let kind = EventType::WebhookTest;
    let object = serde_json::to_value(endpoint_view(&endpoint)).map_err(AppError::internal)?;
    let payload = event_body(&event_id, kind.as_str(), &now, mode, object);
    let event = NewEvent {
        workspace_id: scope.id(),
        mode,
        event_type: kind,
        object_id: endpoint.id.as_str(),
        created_at: &now,
    };
    events::insert_prepared(conn, &event, &event_id, &payload)?;
    let delivery = new_delivery(ids, &endpoint, &event_id, kind.as_str(), &now);
    store::insert_delivery(conn, &delivery)?;
    Ok(delivery)
}

pub fn list_deliveries(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    endpoint_id: &WebhookEndpointId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRow>, AppError> {
    find_endpoint(conn, (scope, mode), endpoint_id)?;
    store::list_deliveries(conn, endpoint_id, before, limit)
}

pub fn find_delivery(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookDeliveryId,
) -> Result<DeliveryRow, AppError> {
    store::find_delivery(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

/// Sends a delivery again as soon as the runner gets to it, whatever its status (the event is
/// the same: same id, same body). 409 while its endpoint is turned off.
pub fn retry_delivery(
    conn: &Connection,
    (scope, mode): (&WorkspaceScope, Mode),
    id: &WebhookDeliveryId,
    now: Timestamp,
) -> Result<DeliveryRow, AppError> {
    let delivery = find_delivery(conn, (scope, mode), id)?;
    let endpoint = find_endpoint(conn, (scope, mode), &delivery.endpoint_id)?;
    if !endpoint.enabled {
        return Err(AppError::Conflict(
            "This delivery's endpoint is turned off; turn it on first.".to_owned(),
        ));
    }
    store::requeue(conn, id, &format_timestamp(now))?;
    find_delivery(conn, (scope, mode), id)
}

/// Prepares up to `limit` recorded events: each gets its `evt_…` id and body (the object as the
/// API shows it now), and a delivery for every enabled endpoint of its workspace and mode that
/// wants its type. One transaction: a crash leaves them all to prepare again. Returns how many.
pub fn prepare_events(
    conn: &Connection,
    ids: &Ids,
    now: Timestamp,
    limit: usize,
) -> Result<usize, AppError> {
    let now = format_timestamp(now);
    let recorded = events::unprepared(conn, limit)?;
    for event in &recorded {
        let event_id = ids.new_id("evt");
        let Some(kind) = event.event_type else {
            events::prepare(conn, event.seq, &event_id, "{}", &now)?;
            continue;
        };
        let object = match kind.object_kind() {
            ObjectKind::Message => crate::messages::view::find_json(
                conn,
                &event.workspace_id,
                event.mode,
                &event.object_id,
            )?,
            ObjectKind::Campaign => crate::campaigns::view::find_json(
                conn,
                &event.workspace_id,
                event.mode,
                &event.object_id,
            )?,
            ObjectKind::Payment => {
                crate::payments::view::find_json(conn, &event.workspace_id, &event.object_id)?
            }
            ObjectKind::Contact => crate::contacts::view::find_json(
                conn,
                &event.workspace_id,
                event.mode,
                &event.object_id,
            )?,
            ObjectKind::Import => crate::contacts::imports::view::find_json(
                conn,
                &event.workspace_id,
                event.mode,
                &event.object_id,
            )?,
            ObjectKind::Wallet => {
                crate::billing::low_balance_json(conn, &event.workspace_id, &event.object_id)?
            }
            ObjectKind::WebhookEndpoint => None,
        };
        let payload = event_body(
            &event_id,
            kind.as_str(),
            &event.created_at,
            event.mode,
            object.unwrap_or(serde_json::Value::Null),
        );
        events::prepare(conn, event.seq, &event_id, &payload, &now)?;
        for endpoint in store::enabled_endpoints(conn, &event.workspace_id, event.mode)? {
            if endpoint.events.contains(&kind) {
                let delivery = new_delivery(ids, &endpoint, &event_id, kind.as_str(), &now);
                store::insert_delivery(conn, &delivery)?;
            }
        }
    }
    Ok(recorded.len())
}

/// A delivery claimed for an attempt, with what the attempt sends.
pub struct Claimed {
    pub delivery: DeliveryRow,
    pub url: String,
    /// The current secret, then the rotated one while it still signs.
    pub secrets: Vec<String>,
    pub payload: String,
}

/// Takes up to `limit` due deliveries of enabled endpoints; each is leased until `lease_until`.
pub fn claim_due(
    conn: &Connection,
    now: Timestamp,
    lease_until: Timestamp,
    limit: usize,
) -> Result<Vec<Claimed>, AppError> {
    let now_text = format_timestamp(now);
    let due = store::claim_due(conn, &now_text, &format_timestamp(lease_until), limit)?;
    let mut claimed = Vec::with_capacity(due.len());
    for delivery in due {
        let Some(endpoint) = store::find_endpoint_by_id(conn, &delivery.endpoint_id)? else {
            continue;
        };
        let payload = events::payload(conn, &delivery.workspace_id, &delivery.event_id)?
            .unwrap_or_else(|| "{}".to_owned());
        let mut secrets = vec![endpoint.secret.clone()];
        if let (Some(previous), Some(until)) = (
            &endpoint.previous_secret,
            &endpoint.previous_secret_expires_at,
        ) && *until > now_text
        {
            secrets.push(previous.clone());
        }
        claimed.push(Claimed {
            delivery,
            url: endpoint.url,
            secrets,
            payload,
        });
    }
    Ok(claimed)
}

/// At start: deliveries whose attempt a crash cut are due at once (sent again: at least once).
pub fn release_leases(conn: &Connection, now: Timestamp) -> Result<usize, AppError> {
    store::release_leases(conn, &format_timestamp(now))
}

/// The `Crier-Signature` header's value: `t=<unix seconds>` then one `v1=<hex HMAC-SHA256 of
/// "<t>.<body>">` per secret.
pub fn signature_header(secrets: &[String], unix_seconds: i64, body: &str) -> String {
    let signed = format!("{unix_seconds}.{body}");
    let mut header = format!("t={unix_seconds}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&crate::outbound::hmac_sha256_hex(
            secret.as_bytes(),
            signed.as_bytes(),
        ));
    }
    header
}

/// What one attempt got.
pub struct AttemptResult {
    pub reply: Result<HttpReply, TransportError>,
    pub latency_ms: u64,
}

/// Records an attempt: a 2xx settles the delivery; anything else schedules the next attempt
/// (exponential backoff with jitter, `jitter` in [0, 1)) or, three days after the event, gives
/// up. The endpoint's run of failures is counted; one that has failed every attempt for three
/// days is turned off with the reason.
pub fn record_attempt(
    conn: &Connection,
    delivery: &DeliveryRow,
    result: &AttemptResult,
    now: Timestamp,
    jitter: f64,
) -> Result<(), AppError> {
    let now_text = format_timestamp(now);
    let attempts = delivery.attempts.saturating_add(1);
    let (succeeded, response_status, error, body) = match &result.reply {
        Ok(reply) => {
            let body: String = reply.body.chars().take(RESPONSE_PREFIX_CHARS).collect();
            let error = (!reply.is_success()).then(|| format!("answered HTTP {}", reply.status));
            (reply.is_success(), Some(reply.status), error, Some(body))
        }
        Err(failure) => (false, None, Some(failure.message.clone()), None),
    };
    let (status, next_attempt_at) = if succeeded {
        (DeliveryStatus::Succeeded, now_text.clone())
    } else {
        let give_up_at =
            parse_timestamp(&delivery.created_at).map_or(now, |created| created + RETRY_FOR);
        let wait = crate::delivery::backoff(RETRY_BASE, RETRY_MAX, attempts, jitter);
        let next = now + crate::clock::span(wait);
        if now >= give_up_at {
            (DeliveryStatus::Failed, now_text.clone())
        } else {
            (
                DeliveryStatus::Pending,
                format_timestamp(next.min(give_up_at)),
            )
        }
    };
    store::record_attempt(
        conn,
        &delivery.id,
        &AttemptOutcome {
            status,
            attempts,
            next_attempt_at: &next_attempt_at,
            response_status,
            error: error.as_deref(),
            latency_ms: i64::try_from(result.latency_ms).unwrap_or(i64::MAX),
            response_body: body.as_deref(),
            now: &now_text,
        },
    )?;
    let Some(mut endpoint) = store::find_endpoint_by_id(conn, &delivery.endpoint_id)? else {
        return Ok(());
    };
    if succeeded {
        if endpoint.consecutive_failures == 0 && endpoint.failing_since.is_none() {
            return Ok(());
        }
        endpoint.consecutive_failures = 0;
        endpoint.failing_since = None;
    } else {
        endpoint.consecutive_failures = endpoint.consecutive_failures.saturating_add(1);
        let since = endpoint
            .failing_since
            .get_or_insert_with(|| now_text.clone())
            .clone();
        let failing_long =
            parse_timestamp(&since).is_some_and(|since| since + DISABLE_AFTER <= now);
        if endpoint.enabled && failing_long && endpoint.consecutive_failures >= DISABLE_MIN_FAILURES
        {
            endpoint.enabled = false;
            endpoint.disabled_reason = Some(format!(
                "Turned off by crier: every delivery attempt since {since} failed ({} in a row; \
                 the last: {}). Fix the endpoint, then turn it on again.",
                endpoint.consecutive_failures,
                error.as_deref().unwrap_or("no answer")
            ));
        }
    }
    endpoint.updated_at = now_text;
    store::update_endpoint(conn, &endpoint)
}

/// Deletes events and settled deliveries older than `before` (the janitor's retention), at most
/// `limit` of each; returns how many rows went.
pub fn prune(conn: &Connection, before: Timestamp, limit: usize) -> Result<usize, AppError> {
    let before = format_timestamp(before);
    let deliveries = store::delete_settled_before(conn, &before, limit)?;
    let events = events::prune(conn, &before, limit)?;
    Ok(deliveries + events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_header_has_one_v1_per_secret() {
        let secrets = vec!["whsec_new".to_owned(), "whsec_old".to_owned()];
        let header = signature_header(&secrets, 1_795_000_000, "{\"id\":\"evt_1\"}");
        let expected_new =
            crate::outbound::hmac_sha256_hex(b"whsec_new", b"1795000000.{\"id\":\"evt_1\"}");
        let expected_old =
            crate::outbound::hmac_sha256_hex(b"whsec_old", b"1795000000.{\"id\":\"evt_1\"}");
        assert_eq!(
            header,
            format!("t=1795000000,v1={expected_new},v1={expected_old}")
        );
    }

    #[test]
    fn urls_follow_the_operators_rules() {
        let strict = WebhookSettings::default();
        assert_eq!(
            check_url(" https://hooks.example.com/a?b=1 ", &strict).unwrap(),
            "https://hooks.example.com/a?b=1"
        );
        for bad in [
            "",
            "hooks.example.com",
            "ftp://hooks.example.com/",
            "http://hooks.example.com/",
            "https://u:p@hooks.example.com/",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[fd00:ec2::254]/",
            "https://169.254.169.254/latest/meta-data",
            // The same addresses as the resolver also reads them.
            "https://127.1/x",
            "https://2130706433/x",
            "https://0x7f000001/x",
            "https://0177.0.0.1/x",
            "https://192.168.1.1./x",
            "https://10.0x10203/x",
            "https://0/x",
        ] {
            assert!(check_url(bad, &strict).is_err(), "{bad:?}");
        }
        // Names, and public addresses however written, pass.
        for good in [
            "https://1.2.3.example/x",
            "https://8.8.8.8/x",
            "https://134744072/x",
            "https://0x08.010.8.8/x",
        ] {
            assert!(check_url(good, &strict).is_ok(), "{good:?}");
        }
        let open = WebhookSettings {
            allow_private: true,
            http_hosts: vec!["localhost".to_owned()],
            ..WebhookSettings::default()
        };
        assert!(check_url("http://LOCALHOST:8080/h", &open).is_ok());
        assert!(check_url("https://127.0.0.1/", &open).is_ok());
        assert!(
            check_url("http://127.0.0.1/", &open).is_err(),
            "not a listed host"
        );
    }

    #[test]
    fn address_literals_are_read_as_the_resolver_reads_them() {
        let v4 = |text: &str| Some(std::net::IpAddr::V4(text.parse().unwrap()));
        assert_eq!(address_literal("127.0.0.1"), v4("127.0.0.1"));
        assert_eq!(address_literal("127.1"), v4("127.0.0.1"));
        assert_eq!(address_literal("10.1.258"), v4("10.1.1.2"));
        assert_eq!(address_literal("2130706433"), v4("127.0.0.1"));
        assert_eq!(address_literal("0x7f.0.0.1"), v4("127.0.0.1"));
        assert_eq!(address_literal("017700000001"), v4("127.0.0.1"));
        assert_eq!(address_literal("192.168.1.1."), v4("192.168.1.1"));
        assert_eq!(
            address_literal("[::1]"),
            Some(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST))
        );
        for name in [
            "hooks.example.com",
            "1.2.3.example",
            "256.0.0.1",
            "1.2.3.4.5",
            "1.2.65536",
            "4294967296",
            "08.0.0.1",
            "0x+7f.0.0.1",
            "1..2",
            "",
        ] {
            assert_eq!(address_literal(name), None, "{name:?}");
        }
    }

    #[test]
    fn event_lists_accept_a_star_and_refuse_unknown_types() {
        assert_eq!(
            check_events(&["*".to_owned()]).unwrap().len(),
            EventType::ALL.len() - 1
        );
        assert_eq!(
            check_events(&["message.sent".to_owned(), "message.sent".to_owned()]).unwrap(),
            vec![EventType::MessageSent]
        );
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["webhook.test".to_owned()]).is_err());
        assert!(check_events(&["message.lost".to_owned()]).is_err());
    }
}
