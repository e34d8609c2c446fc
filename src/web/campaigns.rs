//! HTTP for campaigns. An API key works on the campaigns of its own mode; a console session on
//! the live ones. Handlers parse and authenticate, then call one domain function inside one
//! transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::activity::{Action, Event};
use crate::api_keys::format::Scope;
use crate::app::App;
use crate::auth::principal::Principal;
use crate::billing::{self, Channel, Charging};
use crate::campaigns::fanout::{self, Stats};
use crate::campaigns::launch::{self, Launcher, Links};
use crate::campaigns::links;
use crate::campaigns::runner::CANCEL_BATCH;
use crate::campaigns::store::{self, CampaignRow};
use crate::campaigns::view;
use crate::campaigns::{
    self as domain, CampaignChanges, CampaignStatus, Checks, NewCampaign, Rendered,
};
use crate::contacts::fields::one_of;
use crate::error::AppError;
use crate::ids::CampaignId;
use crate::messages::MessageStatus;
use crate::messages::compose::Draft;
use crate::money::Money;
use crate::vocabulary::Mode;
use crate::web::activity::{actor, record};
use crate::web::auth::authenticate_request;
use crate::web::idempotency::{self, OPTIONAL_PER_WORKSPACE, Per, Requirement};
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

/// `POST /v1/campaigns`: creates a draft in the caller's mode. Scope `campaigns:write`.
/// Accepts an `Idempotency-Key`.
pub fn create_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let body: NewCampaign = request.json()?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let campaign =
            domain::create_campaign(conn, &app.ids, &scope, mode, body, app.clock.now())?;
        let event = Event::about(
            Action::CampaignCreated,
            scope.id(),
            mode,
            campaign.id.as_str(),
        );
        record(app, conn, &actor, event)?;
        ApiResponse::json(201, &campaign_view(&campaign))
    })
}

/// `GET /v1/campaigns`: the caller's campaigns, newest first; `status` filters. Scope
/// `campaigns:read`.
pub fn list_campaigns(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsRead)?;
    let page = request.page()?;
    let status = match request.query_param("status") {
        None => None,
        Some(text) => Some(
            CampaignStatus::parse(&text)
                .ok_or_else(|| AppError::invalid_field("status", one_of(CampaignStatus::ALL)))?,
        ),
    };
    let mode = principal.mode();
    let campaigns = app.db.read(|conn| {
        store::list_campaigns(
            conn,
            scope.id(),
            mode,
            status,
            page.cursor.as_deref(),
            page.fetch(),
        )
    })?;
    let (campaigns, next_cursor) = page.split(campaigns, |campaign| campaign.id.as_str());
    let data: Vec<CampaignView<'_>> = campaigns.iter().map(campaign_view).collect();
    page_response(&data, next_cursor)
}

fn campaign_id(request: &Request<'_>) -> Result<CampaignId, AppError> {
    CampaignId::parse(request.param("id")).ok_or(AppError::NotFound)
}

/// `GET /v1/campaigns/{id}`. Scope `campaigns:read`.
pub fn show_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsRead)?;
    let id = campaign_id(request)?;
    let mode = principal.mode();
    let (campaign, stats) = app.db.read(|conn| {
        let campaign = domain::find_campaign(conn, &scope, mode, &id)?;
        // Only a campaign that started has messages and money (one cancelled or failed while
        // scheduled never did), and clicks if it tracks links.
        let stats = match campaign.progress.launched_at {
            Some(_) => Some((
                fanout::stats(conn, &campaign)?,
                campaign
                    .track_links
                    .then(|| links::click_counts(conn, &campaign.id))
                    .transpose()?,
            )),
            None => None,
        };
        Ok((campaign, stats))
    })?;
    let mut view = campaign_view(&campaign);
    view.stats = stats
        .as_ref()
        .map(|(stats, clicks)| stats_view(&campaign, stats, *clicks));
    ApiResponse::json(200, &view)
}

/// `PATCH /v1/campaigns/{id}`: changes a draft (409 once launched). Scope `campaigns:write`.
pub fn update_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let id = campaign_id(request)?;
    let changes: CampaignChanges = request.json()?;
    let mode = principal.mode();
    let campaign = app
        .db
        .write(|conn| domain::update_campaign(conn, &scope, mode, &id, changes, app.clock.now()))?;
    ApiResponse::json(200, &campaign_view(&campaign))
}

/// `DELETE /v1/campaigns/{id}`: deletes a draft for good (409 once launched). Scope
/// `campaigns:write`.
pub fn delete_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let id = campaign_id(request)?;
    let mode = principal.mode();
    app.db
        .write(|conn| domain::delete_campaign(conn, &scope, mode, &id))?;
    Ok(ApiResponse::no_content())
}

/// `POST /v1/campaigns/{id}/duplicate`: a new draft with the campaign's content and audience.
/// Scope `campaigns:write`. Accepts an `Idempotency-Key`.
pub fn duplicate_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let id = campaign_id(request)?;
    let mode = principal.mode();
    idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
        let copy = domain::duplicate_campaign(conn, &app.ids, &scope, mode, &id, app.clock.now())?;
        ApiResponse::json(201, &campaign_view(&copy))
    })
}

/// The body of `POST /v1/campaigns/{id}/preview`: the contact to render for (a sample contact
/// when absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    contact_id: Option<String>,
}

/// The campaign `id` rendered for a preview or a test send: for the caller's contact
/// `contact_id` (the sample contact without one), with the unsubscribe link standing in for
/// the contact's own at its length (`preview_unsubscribe_url`), so the segments are the
/// campaign messages'.
fn render_preview(
    app: &App,
    scope: &crate::scope::WorkspaceScope,
    mode: crate::vocabulary::Mode,
    id: &CampaignId,
    contact_id: Option<&str>,
) -> Result<Rendered, AppError> {
    let (campaign, contact) = app.db.read(|conn| {
        let campaign = domain::find_campaign(conn, scope, mode, id)?;
        domain::content_checked(conn, scope, &campaign)?;
        let contact = contact_id
            .map(|id| domain::preview_contact(conn, scope, mode, id))
            .transpose()?;
        Ok((campaign, contact))
    })?;
    let link = crate::contacts::unsubscribe::preview_unsubscribe_url(
        &app.config.public_url,
        scope.id(),
        campaign.mode,
        contact.as_ref().map(|contact| &contact.id),
        campaign.channel,
    );
    domain::render_for(&campaign, contact.as_ref(), &link)
}

/// `POST /v1/campaigns/{id}/preview`: the campaign as one contact would receive it; for SMS
/// with its segments and encoding. Scope `campaigns:read`. A read: it takes no
/// `Idempotency-Key`.
pub fn preview_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsRead)?;
    let id = campaign_id(request)?;
    let body: PreviewRequest = request.json_or_default()?;
    let mode = principal.mode();
    let rendered = render_preview(app, &scope, mode, &id, body.contact_id.as_deref())?;
    let view = match &rendered {
        Rendered::Sms { text, segmentation } => PreviewView {
            channel: Channel::Sms,
            contact_id: body.contact_id.as_deref(),
            text: Some(text),
            subject: None,
            html: None,
            segments: Some(segmentation.segments),
            encoding: Some(segmentation.encoding.as_str()),
            non_gsm_characters: Some(
                segmentation
                    .non_gsm_characters
                    .iter()
                    .map(char::to_string)
                    .collect(),
            ),
        },
        Rendered::Email {
            subject,
            html,
            text,
        } => PreviewView {
            channel: Channel::Email,
            contact_id: body.contact_id.as_deref(),
            text: text.as_deref(),
            subject: Some(subject),
            html: html.as_deref(),
            segments: None,
            encoding: None,
            non_gsm_characters: None,
        },
    };
    ApiResponse::json(200, &view)
}

#[derive(Serialize)]
struct PreviewView<'a> {
    channel: Channel,
    /// The contact rendered for; `null` for the sample contact.
    contact_id: Option<&'a str>,
    text: Option<&'a str>,
    subject: Option<&'a str>,
    html: Option<&'a str>,
    segments: Option<u32>,
    encoding: Option<&'static str>,
    non_gsm_characters: Option<Vec<String>>,
}

fn links(app: &App) -> Links<'_> {
    Links {
        key: &app.unsubscribe_key,
        public_url: &app.config.public_url,
        delivery: &app.config.delivery,
    }
}

fn charging_of(mode: Mode) -> Charging {
    match mode {
        Mode::Live => Charging::Live,
        Mode::Test => Charging::Test,
    }
}

/// `POST /v1/campaigns/{id}/estimate`: who the campaign would go to now and what it would
/// cost — contacts left out by reason, SMS segments per recipient after personalisation,
/// units, included units, charge, the wallet after — changing nothing. Scope `campaigns:read`.
/// A read: it takes no `Idempotency-Key`.
pub fn estimate_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsRead)?;
    let id = campaign_id(request)?;
    let NoFields {} = request.json_or_default()?;
    let mode = principal.mode();
    let now = app.clock.now();
    let campaign = app
        .db
        .read(|conn| domain::find_campaign(conn, &scope, mode, &id))?;
    let estimate = launch::estimate(&app.db, links(app), &scope, &campaign, now)?;
    let quote = app.db.read(|conn| {
        billing::quote(
            conn,
            &app.config.billing_catalog,
            &scope,
            campaign.channel,
            estimate.units,
            now,
        )
    })?;
    let charged = mode == Mode::Live;
    let currency = &quote.charge.currency;
    let reach = &estimate.reach;
    let view = EstimateView {
        channel: campaign.channel,
        contacts: reach.contacts,
        recipients: estimate.recipients,
        excluded: ExcludedView {
            unsubscribed: reach.unsubscribed,
            invalid: reach.invalid,
            bounced: reach.bounced,
            complained: reach.complained,
            no_address: reach.no_address,
            duplicate: estimate.duplicates,
            deleted: estimate.deleted,
            render_failed: estimate.render_failed,
        },
        segments: (campaign.channel == Channel::Sms).then(|| {
            estimate
                .segments
                .iter()
                .map(|(segments, recipients)| SegmentCount {
                    segments: *segments,
                    recipients: *recipients,
                })
                .collect()
        }),
        units: quote.units,
        included_units: quote.included_units,
        billable_units: quote.billable_units,
        balance: Money::new(quote.balance_minor, currency),
        balance_after: Money::new(
            if charged {
                quote.balance_minor - quote.charge.amount_minor
            } else {
                quote.balance_minor
            },
            currency,
        ),
        affordable: !charged || quote.charge.amount_minor <= quote.balance_minor,
        charge: quote.charge.clone(),
        mode,
        charged,
    };
    ApiResponse::json(200, &view)
}

/// The body of a call that takes none: absent, or `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// Contacts an estimate leaves out, by reason.
#[derive(Serialize)]
struct ExcludedView {
    unsubscribed: u64,
    invalid: u64,
    bounced: u64,
    complained: u64,
    no_address: u64,
    duplicate: u64,
    deleted: u64,
    render_failed: u64,
}

#[derive(Serialize)]
struct SegmentCount {
    segments: u32,
    recipients: u64,
}

#[derive(Serialize)]
struct EstimateView {
    channel: Channel,
    /// The audience's contacts (not deleted), each once.
    contacts: u64,
    /// The messages a launch now would write.
    recipients: u64,
    excluded: ExcludedView,
    /// SMS: how many recipients get a message of each length.
    segments: Option<Vec<SegmentCount>>,
    units: u64,
    included_units: u64,
    billable_units: u64,
    charge: Money,
    balance: Money,
    balance_after: Money,
    affordable: bool,
    mode: Mode,
    charged: bool,
}

/// `POST /v1/campaigns/{id}/launch`: starts a draft now — the whole charge reserved with its
/// move to `running` in one transaction (402 `insufficient_funds` and nothing changes), the
/// messages written by the campaign runner — or, when its `scheduled_at` is ahead, schedules
/// it. `Idempotency-Key` required. Scope `campaigns:write`.
pub fn launch_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let id = campaign_id(request)?;
    let NoFields {} = request.json_or_default()?;
    let mode = principal.mode();
    let now = app.clock.now();
    let api_key_id = match &principal {
        Principal::ApiKey(key) => Some(key.key_id()),
        Principal::Session(_) => None,
    };
    let idempotency = (Requirement::Required, Per::Workspace);
    // Before the transaction, on a read: the estimate walks the whole audience (renders every
    // SMS), the costly part. `None`: the campaign is scheduled rather than started.
    let prepared = app
        .db
        .read(|conn| {
            let campaign = domain::find_campaign(conn, &scope, mode, &id)?;
            launch::ensure_status(&campaign, CampaignStatus::Draft)?;
            // Refusals of the campaign as it stands are made here, before the key is recorded,
            // so a retry with the same key once it is fixed goes through.
            if launch::launches_later(&campaign, now) {
                let audience = domain::audience_of(&campaign)?;
                domain::checked(conn, &scope, &campaign, &audience, now, Checks::Draft)?;
                return Ok(None);
            }
            Ok(Some(campaign))
        })
        .and_then(|campaign| match campaign {
            None => Ok(None),
            Some(campaign) => {
                let estimate = launch::estimate(&app.db, links(app), &scope, &campaign, now)?;
                launch::has_recipients(&campaign, &estimate)?;
                Ok(Some(estimate))
            }
        });
    let prepared = match prepared {
        Ok(prepared) => prepared,
        // Unless this is the retry of a launch that went through: that one replays.
        Err(refused) => {
            return idempotency::replay_completed(app, request, &principal, idempotency)?
                .ok_or(refused);
        }
    };
    let launcher = Launcher {
        api_key_id,
        charging: charging_of(mode),
    };
    let actor = actor(app, request, &principal);
    let response = idempotency::in_transaction_checked(
        app,
        request,
        &principal,
        idempotency,
        |_| Ok(()),
        |conn, ()| {
            let campaign = match &prepared {
                None => launch::schedule(conn, (&scope, mode), &id, api_key_id, now)?,
                Some(estimate) => launch::launch(
                    conn,
                    &app.ids,
                    &app.config.billing_catalog,
                    (&scope, mode),
                    &id,
                    CampaignStatus::Draft,
                    (launcher, &app.config.default_sms_sender),
                    estimate,
                    now,
                )?,
            };
            let event = Event::about(Action::CampaignLaunched, scope.id(), mode, id.as_str())
                .detail("scheduled", prepared.is_none());
            record(app, conn, &actor, event)?;
            ApiResponse::json(200, &campaign_view(&campaign))
        },
    )?;
    if response.status == 200 {
        app.campaigns.notify();
    }
    Ok(response)
}

/// `POST /v1/campaigns/{id}/cancel`: a scheduled campaign stops; a running one stops its
/// fan-out and cancels every message not yet handed to a provider, refunding exactly those and
/// what the fan-out had not used. Cancelling again changes nothing. Scope `campaigns:write`.
/// Accepts an `Idempotency-Key`.
pub fn cancel_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let id = campaign_id(request)?;
    let mode = principal.mode();
    let actor = actor(app, request, &principal);
    let response =
        idempotency::in_transaction(app, request, &principal, OPTIONAL_PER_WORKSPACE, |conn| {
            let campaign = fanout::cancel(
                conn,
                &app.ids,
                (&scope, mode),
                &id,
                CANCEL_BATCH,
                app.clock.now(),
            )?;
            let event = Event::about(Action::CampaignCancelled, scope.id(), mode, id.as_str());
            record(app, conn, &actor, event)?;
            ApiResponse::json(200, &campaign_view(&campaign))
        })?;
    if response.status == 200 {
        app.campaigns.notify();
    }
    Ok(response)
}

/// The body of `POST /v1/campaigns/{id}/test`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    /// The phone number or address to send to.
    to: Option<String>,
    /// The contact to render for (the sample contact when absent).
    contact_id: Option<String>,
}

/// `POST /v1/campaigns/{id}/test`: sends the campaign, rendered for a contact (or the sample
/// contact), to one phone number or address — as a transactional message, priced and charged
/// like any send (`Idempotency-Key` required). Scopes `campaigns:write` and `messages:send`.
pub fn test_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scopes(&[Scope::CampaignsWrite, Scope::MessagesSend])?;
    let id = campaign_id(request)?;
    let body: TestRequest = request.json()?;
    let mode = principal.mode();
    let rendered = render_preview(app, &scope, mode, &id, body.contact_id.as_deref())?;
    let to = body
        .to
        .ok_or_else(|| AppError::invalid_field("to", "is required"))?;
    let draft = match rendered {
        Rendered::Sms { text, .. } => Draft {
            channel: Channel::Sms.as_str().to_owned(),
            to,
            text: Some(text),
            subject: None,
            html: None,
            from: None,
            category: None,
            scheduled_at: None,
            metadata: Some(serde_json::json!({ "campaign_test": id.as_str() })),
        },
        Rendered::Email {
            subject,
            html,
            text,
        } => Draft {
            channel: Channel::Email.as_str().to_owned(),
            to,
            text,
            subject: Some(subject),
            html,
            from: None,
            category: None,
            scheduled_at: None,
            metadata: Some(serde_json::json!({ "campaign_test": id.as_str() })),
        },
    };
    crate::web::messages::send_draft(app, request, &principal, &scope, draft)
}

/// The body of `GET /v1/campaigns/{id}/timeline`.
#[derive(Serialize)]
struct TimelineView {
    period: &'static str,
    data: Vec<TimelinePointView>,
}

#[derive(Serialize)]
struct TimelinePointView {
    /// The period's start (RFC 3339, UTC).
    start: String,
    sent: u64,
    delivered: u64,
    failed: u64,
    /// Clicks on the campaign's short links (0 when it does not track links).
    clicks: u64,
}

/// `GET /v1/campaigns/{id}/timeline?period=minute|hour`: the campaign's messages sent,
/// delivered and failed, and its link clicks, per minute (the default) or hour, oldest first —
/// for a chart. Scope `campaigns:read`.
pub fn campaign_timeline(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsRead)?;
    let id = campaign_id(request)?;
    let period = request.query_param("period");
    let mode = principal.mode();
    let (hourly, points, clicks) = app.db.read(|conn| {
        let campaign = domain::find_campaign(conn, &scope, mode, &id)?;
        let hourly = match period.as_deref() {
            None | Some("minute") => false,
            Some("hour") => true,
            Some(_) => return Err(AppError::invalid_field("period", "must be minute or hour")),
        };
        Ok((
            hourly,
            crate::messages::campaign_timeline(conn, &campaign.id, hourly)?,
            links::click_timeline(conn, &campaign.id, hourly)?,
        ))
    })?;
    let suffix = if hourly { ":00:00.000Z" } else { ":00.000Z" };
    // The messages' periods and the clicks' merged, in time order (the period text sorts so).
    let mut merged: BTreeMap<&str, TimelinePointView> = BTreeMap::new();
    let point = |period: &str| TimelinePointView {
        start: format!("{period}{suffix}"),
        sent: 0,
        delivered: 0,
        failed: 0,
        clicks: 0,
    };
    for messages in &points {
        let entry = merged
            .entry(&messages.period)
            .or_insert_with(|| point(&messages.period));
        entry.sent = messages.sent;
        entry.delivered = messages.delivered;
        entry.failed = messages.failed;
    }
    for (period, clicks) in &clicks {
        merged.entry(period).or_insert_with(|| point(period)).clicks = *clicks;
    }
    let view = TimelineView {
        period: if hourly { "hour" } else { "minute" },
        data: merged.into_values().collect(),
    };
    ApiResponse::json(200, &view)
}

/// A campaign as the API shows it; `GET /v1/campaigns/{id}` of a launched campaign adds its
/// stats.
#[derive(Serialize)]
struct CampaignView<'a> {
    #[serde(flatten)]
    campaign: view::CampaignView<'a>,
    /// `GET /v1/campaigns/{id}` of a launched campaign: its messages and money.
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<StatsView>,
}

/// A campaign's messages and money.
#[derive(Serialize)]
struct StatsView {
    /// Messages per status: queued (with `scheduled` and `sending`), sent, delivered, failed,
    /// cancelled.
    messages: BTreeMap<&'static str, u64>,
    /// The charge the campaign's messages carry.
    charged: Money,
    /// Given back: the pool's leftover and the messages refunded (cancelled, or failed unsent).
    refunded: Money,
    /// A campaign that tracks links: clicks on its short links, every one counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    clicks: Option<u64>,
    /// … and the recipients who clicked (each contact once, whichever links).
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_clicks: Option<u64>,
}

fn stats_view(campaign: &CampaignRow, stats: &Stats, clicks: Option<(u64, u64)>) -> StatsView {
    let currency = campaign.progress.currency.as_deref().unwrap_or_default();
    let mut messages: BTreeMap<&'static str, u64> =
        ["queued", "sent", "delivered", "failed", "cancelled"]
            .into_iter()
            .map(|status| (status, 0))
            .collect();
    for (status, count) in &stats.by_status {
        let key = match status {
            MessageStatus::Scheduled | MessageStatus::Queued | MessageStatus::Sending => "queued",
            other => other.as_str(),
        };
        *messages.entry(key).or_default() += count;
    }
    StatsView {
        messages,
        charged: Money::new(stats.carried_minor, currency),
        refunded: Money::new(stats.refunded_minor, currency),
        clicks: clicks.map(|(clicks, _)| clicks),
        unique_clicks: clicks.map(|(_, unique)| unique),
    }
}

fn campaign_view(campaign: &CampaignRow) -> CampaignView<'_> {
    CampaignView {
        campaign: view::campaign_view(campaign),
        stats: None,
    }
}
