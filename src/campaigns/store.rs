//! SQL for campaigns. Plain statements, named parameters, cached; reads always name the
//! workspace and the mode.

use rusqlite::{Connection, OptionalExtension, Row, named_params};

use crate::billing::Channel;
use crate::campaigns::CampaignStatus;
use crate::error::AppError;
use crate::ids::{CampaignId, WorkspaceId};
use crate::vocabulary::Mode;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    pub id: CampaignId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub name: String,
    pub channel: Channel,
    pub status: CampaignStatus,
    /// SMS: the text; email: the plain-text part (templates).
    pub text: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub from_name: Option<String>,
    /// The audience as a JSON object (`campaigns::Audience`).
    pub audience: String,
    pub scheduled_at: Option<String>,
    pub opt_out_line: bool,
    pub duplicated_from: Option<CampaignId>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, workspace_id, mode, name, channel, status, text, subject, html, \
    from_name, audience, scheduled_at, opt_out_line, duplicated_from, created_at, updated_at";

fn campaign_row(row: &Row<'_>) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        mode: row.get(2)?,
        name: row.get(3)?,
        channel: row.get(4)?,
        status: row.get(5)?,
        text: row.get(6)?,
        subject: row.get(7)?,
        html: row.get(8)?,
        from_name: row.get(9)?,
        audience: row.get(10)?,
        scheduled_at: row.get(11)?,
        opt_out_line: row.get(12)?,
        duplicated_from: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
    })
}

pub fn insert_campaign(conn: &Connection, campaign: &CampaignRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO campaigns ({COLUMNS}) VALUES (:id, :workspace_id, :mode, :name, :channel,
            :status, :text, :subject, :html, :from_name, :audience, :scheduled_at, :opt_out_line,
            :duplicated_from, :created_at, :updated_at)"
    ))?
    .execute(named_params! {
        ":id": campaign.id,
        ":workspace_id": campaign.workspace_id,
        ":mode": campaign.mode,
        ":name": campaign.name,
        ":channel": campaign.channel,
        ":status": campaign.status,
        ":text": campaign.text,
        ":subject": campaign.subject,
        ":html": campaign.html,
        ":from_name": campaign.from_name,
        ":audience": campaign.audience,
        ":scheduled_at": campaign.scheduled_at,
        ":opt_out_line": campaign.opt_out_line,
        ":duplicated_from": campaign.duplicated_from,
        ":created_at": campaign.created_at,
        ":updated_at": campaign.updated_at,
    })?;
    Ok(())
}

/// Writes a draft's content (everything but its identity, status and origin), only while it is
/// still a draft: `false` if it is not (any more).
pub fn update_draft(conn: &Connection, campaign: &CampaignRow) -> Result<bool, AppError> {
    let updated = conn
        .prepare_cached(
            "UPDATE campaigns SET name = :name, text = :text, subject = :subject, html = :html,
                from_name = :from_name, audience = :audience, scheduled_at = :scheduled_at,
                opt_out_line = :opt_out_line, updated_at = :updated_at
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND status = 'draft'",
        )?
        .execute(named_params! {
            ":id": campaign.id,
            ":workspace_id": campaign.workspace_id,
            ":mode": campaign.mode,
            ":name": campaign.name,
            ":text": campaign.text,
            ":subject": campaign.subject,
            ":html": campaign.html,
            ":from_name": campaign.from_name,
            ":audience": campaign.audience,
            ":scheduled_at": campaign.scheduled_at,
            ":opt_out_line": campaign.opt_out_line,
            ":updated_at": campaign.updated_at,
        })?;
    Ok(updated == 1)
}

/// Deletes a draft for good: `false` if there is no such draft.
pub fn delete_draft(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &CampaignId,
) -> Result<bool, AppError> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM campaigns
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode
               AND status = 'draft'",
        )?
        .execute(named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode })?;
    Ok(deleted == 1)
}

/// The campaign `id` of the workspace in `mode`.
pub fn find_campaign(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &CampaignId,
) -> Result<Option<CampaignRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM campaigns
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            campaign_row,
        )
        .optional()?)
}

/// The workspace's campaigns of `mode`, newest first, after the cursor `before` (a campaign
/// id), optionally only those in `status`.
pub fn list_campaigns(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    status: Option<CampaignStatus>,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<CampaignRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM campaigns
         WHERE workspace_id = :workspace_id AND mode = :mode
           AND (:status IS NULL OR status = :status)
           AND (:before IS NULL OR rowid < (SELECT rowid FROM campaigns WHERE id = :before))
         ORDER BY rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":mode": mode,
            ":status": status,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        campaign_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}
