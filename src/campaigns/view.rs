//! A campaign as the API shows it: one view shared by the campaign routes (`GET
//! /v1/campaigns/{id}` adds its stats) and the `campaign.*` webhook events.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::billing::Channel;
use crate::campaigns::CampaignStatus;
use crate::campaigns::store::CampaignRow;
use crate::ids::CampaignId;
use crate::money::Money;
use crate::vocabulary::Mode;

/// A campaign as the API shows it.
#[derive(Serialize)]
pub struct CampaignView<'a> {
    pub id: &'a str,
    pub mode: Mode,
    pub name: &'a str,
    pub channel: Channel,
    pub status: CampaignStatus,
    pub text: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub html: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub audience: Option<&'a RawValue>,
    pub scheduled_at: Option<&'a str>,
    pub opt_out_line: bool,
    pub track_links: bool,
    pub duplicated_from: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    /// Once launched (or scheduled): what the launch fixed and how far it went.
    pub launch: Option<LaunchView<'a>>,
}

#[derive(Serialize)]
pub struct LaunchView<'a> {
    pub launched_at: Option<&'a str>,
    /// SMS: the sender every message goes out from.
    pub sender: Option<&'a str>,
    /// Recipients and units the launch reserved for.
    pub planned_recipients: Option<u64>,
    pub planned_units: Option<u64>,
    /// Charged to the wallet for the campaign (the launch's reservation and any enlargement).
    pub reserved: Option<Money>,
    /// Whether the fan-out has written every message.
    pub fanout_done: bool,
    pub messages_created: u64,
    /// Contacts left out, by reason.
    pub excluded: Option<&'a RawValue>,
    pub cancelled_at: Option<&'a str>,
    pub finished_at: Option<&'a str>,
    pub failure: Option<FailureView<'a>>,
}

#[derive(Serialize)]
pub struct FailureView<'a> {
    pub code: &'a str,
    pub message: Option<&'a str>,
}

pub fn launch_view(campaign: &CampaignRow) -> Option<LaunchView<'_>> {
    let progress = &campaign.progress;
    if campaign.status == CampaignStatus::Draft {
        return None;
    }
    Some(LaunchView {
        launched_at: progress.launched_at.as_deref(),
        sender: progress.sender.as_deref(),
        planned_recipients: progress.planned_recipients,
        planned_units: progress.planned_units,
        reserved: progress
            .currency
            .as_deref()
            .map(|currency| Money::new(progress.reserved_minor, currency)),
        fanout_done: progress.fanout_done_at.is_some(),
        messages_created: progress.messages_created,
        // Stored as a JSON object written by crier; shown as is.
        excluded: serde_json::from_str::<&RawValue>(&progress.excluded).ok(),
        cancelled_at: progress.cancelled_at.as_deref(),
        finished_at: progress.finished_at.as_deref(),
        failure: progress.failure_code.as_deref().map(|code| FailureView {
            code,
            message: progress.failure_message.as_deref(),
        }),
    })
}

pub fn campaign_view(campaign: &CampaignRow) -> CampaignView<'_> {
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
        track_links: campaign.track_links,
        duplicated_from: campaign.duplicated_from.as_ref().map(CampaignId::as_str),
        created_at: &campaign.created_at,
        updated_at: &campaign.updated_at,
        launch: launch_view(campaign),
    }
}

/// The campaign `id` of the workspace and mode as the API shows it (without its stats), for an
/// event; `None` when there is none.
pub fn find_json(
    conn: &rusqlite::Connection,
    workspace_id: &crate::ids::WorkspaceId,
    mode: Mode,
    id: &str,
) -> Result<Option<serde_json::Value>, crate::error::AppError> {
    let Some(id) = CampaignId::parse(id) else {
        return Ok(None);
    };
    let campaign = crate::campaigns::store::find_campaign(conn, workspace_id, mode, &id)?;
    campaign
        .map(|campaign| serde_json::to_value(campaign_view(&campaign)))
        .transpose()
        .map_err(crate::error::AppError::internal)
}
