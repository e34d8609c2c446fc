//! HTTP for campaigns. An API key works on the campaigns of its own mode; a console session on
//! the live ones. Handlers parse and authenticate, then call one domain function inside one
//! transaction.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::api_keys::format::Scope;
use crate::app::App;
use crate::billing::Channel;
use crate::campaigns::store::{self, CampaignRow};
use crate::campaigns::{self as domain, CampaignChanges, CampaignStatus, NewCampaign, Rendered};
use crate::contacts::fields::one_of;
use crate::error::AppError;
use crate::ids::CampaignId;
use crate::vocabulary::Mode;
use crate::web::auth::authenticate_request;
use crate::web::request::{Request, page_response};
use crate::web::response::ApiResponse;

/// `POST /v1/campaigns`: creates a draft in the caller's mode. Scope `campaigns:write`.
pub fn create_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let body: NewCampaign = request.json()?;
    let mode = principal.mode();
    let campaign = app.db.write(|conn| {
        domain::create_campaign(conn, &app.ids, &scope, mode, body, app.clock.now())
    })?;
    ApiResponse::json(201, &campaign_view(&campaign))
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
    let campaign = app
        .db
        .read(|conn| domain::find_campaign(conn, &scope, mode, &id))?;
    ApiResponse::json(200, &campaign_view(&campaign))
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
/// Scope `campaigns:write`.
pub fn duplicate_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsWrite)?;
    let id = campaign_id(request)?;
    let mode = principal.mode();
    let copy = app.db.write(|conn| {
        domain::duplicate_campaign(conn, &app.ids, &scope, mode, &id, app.clock.now())
    })?;
    ApiResponse::json(201, &campaign_view(&copy))
}

/// The body of `POST /v1/campaigns/{id}/preview`: the contact to render for (a sample contact
/// when absent).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    contact_id: Option<String>,
}

/// The link a preview shows where `{{ unsubscribe_url }}` stands: the shape of a real one.
fn preview_unsubscribe_url(app: &App) -> String {
    format!("{}/u/preview", app.config.public_url)
}

/// `POST /v1/campaigns/{id}/preview`: the campaign as one contact would receive it; for SMS
/// with its segments and encoding. Scope `campaigns:read`.
pub fn preview_campaign(app: &App, request: &mut Request<'_>) -> Result<ApiResponse, AppError> {
    let principal = authenticate_request(app, request)?;
    let scope = principal.require_scope(Scope::CampaignsRead)?;
    let id = campaign_id(request)?;
    let body: PreviewRequest = request.json_or_default()?;
    let mode = principal.mode();
    let (campaign, contact) = app.db.read(|conn| {
        let campaign = domain::find_campaign(conn, &scope, mode, &id)?;
        let contact = body
            .contact_id
            .as_deref()
            .map(|id| domain::preview_contact(conn, &scope, mode, id))
            .transpose()?;
        Ok((campaign, contact))
    })?;
    let rendered = domain::render_for(&campaign, contact.as_ref(), &preview_unsubscribe_url(app))?;
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

/// A campaign as the API shows it.
#[derive(Serialize)]
struct CampaignView<'a> {
    id: &'a str,
    mode: Mode,
    name: &'a str,
    channel: Channel,
    status: CampaignStatus,
    text: Option<&'a str>,
    subject: Option<&'a str>,
    html: Option<&'a str>,
    from_name: Option<&'a str>,
    audience: Option<&'a RawValue>,
    scheduled_at: Option<&'a str>,
    opt_out_line: bool,
    duplicated_from: Option<&'a str>,
    created_at: &'a str,
    updated_at: &'a str,
}

fn campaign_view(campaign: &CampaignRow) -> CampaignView<'_> {
    CampaignView {
        id: campaign.id.as_str(),
        mode: campaign.mode,
        name: &campaign.name,
        channel: campaign.channel,
        status: campaign.status,
        text: campaign.text.as_deref(),
        subject: campaign.subject.as_deref(),
        html: campaign.html.as_deref(),
        from_name: campaign.from_name.as_deref(),
        // Stored as a JSON object written by crier; shown as is.
        audience: serde_json::from_str::<&RawValue>(&campaign.audience).ok(),
        scheduled_at: campaign.scheduled_at.as_deref(),
        opt_out_line: campaign.opt_out_line,
        duplicated_from: campaign.duplicated_from.as_ref().map(CampaignId::as_str),
        created_at: &campaign.created_at,
        updated_at: &campaign.updated_at,
    }
}
