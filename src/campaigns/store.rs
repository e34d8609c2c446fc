//! SQL for campaigns. Plain statements, named parameters, cached; reads always name the
//! workspace and the mode.

use rusqlite::{Connection, OptionalExtension, Row, named_params};

use crate::billing::Channel;
use crate::campaigns::CampaignStatus;
use crate::error::AppError;
use crate::ids::{ApiKeyId, CampaignId, WorkspaceId};
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
    /// Whether the content's URLs are rewritten to short links that count clicks.
    pub track_links: bool,
    pub duplicated_from: Option<CampaignId>,
    pub created_at: String,
    pub updated_at: String,
    /// What the launch fixed and how far sending went (all empty for a draft).
    pub progress: Progress,
}

/// A campaign's launch and its course: written by the launch, each fan-out chunk, a cancel
/// and the finish (docs/rules/campaigns.md, "Launch" to "Finish").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub launched_at: Option<String>,
    pub launched_by_key: Option<ApiKeyId>,
    /// SMS: the effective sender at launch.
    pub sender: Option<String>,
    /// The audience as the launch compiled it (`contacts::rules::SqlCondition`).
    pub audience_sql: Option<String>,
    pub audience_params: Option<String>,
    /// The newest contact at launch: the fan-out goes no further.
    pub fanout_last_rowid: Option<i64>,
    /// The last contact the fan-out has done (committed with its messages).
    pub fanout_cursor: i64,
    pub fanout_done_at: Option<String>,
    pub planned_recipients: Option<u64>,
    pub planned_units: Option<u64>,
    /// Charged to the wallet for the campaign's pool: at launch, and any enlargement.
    pub reserved_minor: i64,
    pub currency: Option<String>,
    /// Contacts left out, by reason: a JSON object.
    pub excluded: String,
    pub messages_created: u64,
    /// The pool's leftover, refunded when the fan-out ended.
    pub refunded_minor: i64,
    pub cancel_refunds: u64,
    pub cancelled_at: Option<String>,
    pub cancel_done_at: Option<String>,
    pub finished_at: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
}

const COLUMNS: &str = "id, workspace_id, mode, name, channel, status, text, subject, html, \
    from_name, audience, scheduled_at, opt_out_line, duplicated_from, created_at, updated_at, \
    launched_at, launched_by_key, sender, audience_sql, audience_params, fanout_last_rowid, \
    fanout_cursor, fanout_done_at, planned_recipients, planned_units, reserved_minor, currency, \
    excluded, messages_created, refunded_minor, cancel_refunds, cancelled_at, cancel_done_at, \
    finished_at, failure_code, failure_message, track_links";

/// A stored count (SQLite integers are signed).
fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.unsigned_abs())
}

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
        progress: Progress {
            launched_at: row.get(16)?,
            launched_by_key: row.get(17)?,
            sender: row.get(18)?,
            audience_sql: row.get(19)?,
            audience_params: row.get(20)?,
            fanout_last_rowid: row.get(21)?,
            fanout_cursor: row.get(22)?,
            fanout_done_at: row.get(23)?,
            planned_recipients: row.get::<_, Option<i64>>(24)?.map(i64::unsigned_abs),
            planned_units: row.get::<_, Option<i64>>(25)?.map(i64::unsigned_abs),
            reserved_minor: row.get(26)?,
            currency: row.get(27)?,
            excluded: row.get(28)?,
            messages_created: count(row, 29)?,
            refunded_minor: row.get(30)?,
            cancel_refunds: count(row, 31)?,
            cancelled_at: row.get(32)?,
            cancel_done_at: row.get(33)?,
            finished_at: row.get(34)?,
            failure_code: row.get(35)?,
            failure_message: row.get(36)?,
        },
        track_links: row.get(37)?,
    })
}

pub fn insert_campaign(conn: &Connection, campaign: &CampaignRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO campaigns (id, workspace_id, mode, name, channel, status, text, subject, html,
            from_name, audience, scheduled_at, opt_out_line, track_links, duplicated_from,
            created_at, updated_at) VALUES (:id, :workspace_id, :mode, :name, :channel,
            :status, :text, :subject, :html, :from_name, :audience, :scheduled_at, :opt_out_line,
            :track_links, :duplicated_from, :created_at, :updated_at)",
    )?
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
        ":track_links": campaign.track_links,
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
                opt_out_line = :opt_out_line, track_links = :track_links,
                updated_at = :updated_at
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
            ":track_links": campaign.track_links,
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

/// Writes a campaign's status and progress, only if its status is still `expected` (every
/// caller read it in the same transaction): `false` if not.
pub fn save_progress(
    conn: &Connection,
    campaign: &CampaignRow,
    expected: CampaignStatus,
) -> Result<bool, AppError> {
    let p = &campaign.progress;
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let updated = conn
        .prepare_cached(
            "UPDATE campaigns SET status = :status, updated_at = :updated_at,
                 launched_at = :launched_at, launched_by_key = :launched_by_key,
                 sender = :sender, audience_sql = :audience_sql,
                 audience_params = :audience_params, fanout_last_rowid = :fanout_last_rowid,
                 fanout_cursor = :fanout_cursor, fanout_done_at = :fanout_done_at,
                 planned_recipients = :planned_recipients, planned_units = :planned_units,
                 reserved_minor = :reserved_minor, currency = :currency, excluded = :excluded,
                 messages_created = :messages_created, refunded_minor = :refunded_minor,
                 cancel_refunds = :cancel_refunds, cancelled_at = :cancelled_at,
                 cancel_done_at = :cancel_done_at, finished_at = :finished_at,
                 failure_code = :failure_code, failure_message = :failure_message
             WHERE id = :id AND status = :expected",
        )?
        .execute(named_params! {
            ":id": campaign.id,
            ":expected": expected,
            ":status": campaign.status,
            ":updated_at": campaign.updated_at,
            ":launched_at": p.launched_at,
            ":launched_by_key": p.launched_by_key,
            ":sender": p.sender,
            ":audience_sql": p.audience_sql,
            ":audience_params": p.audience_params,
            ":fanout_last_rowid": p.fanout_last_rowid,
            ":fanout_cursor": p.fanout_cursor,
            ":fanout_done_at": p.fanout_done_at,
            ":planned_recipients": p.planned_recipients.map(signed),
            ":planned_units": p.planned_units.map(signed),
            ":reserved_minor": p.reserved_minor,
            ":currency": p.currency,
            ":excluded": p.excluded,
            ":messages_created": signed(p.messages_created),
            ":refunded_minor": p.refunded_minor,
            ":cancel_refunds": signed(p.cancel_refunds),
            ":cancelled_at": p.cancelled_at,
            ":cancel_done_at": p.cancel_done_at,
            ":finished_at": p.finished_at,
            ":failure_code": p.failure_code,
            ":failure_message": p.failure_message,
        })?;
    Ok(updated == 1)
}

/// The campaign `id`, whatever its workspace: for the runner, which works every workspace's.
pub fn find_any_campaign(
    conn: &Connection,
    id: &CampaignId,
) -> Result<Option<CampaignRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM campaigns WHERE id = ?1"))?
        .query_row([id], campaign_row)
        .optional()?)
}

/// The campaigns the runner has work for, oldest first: scheduled ones whose time has come,
/// running ones, and cancelled ones with messages still to cancel.
pub fn campaigns_to_work(conn: &Connection, now: &str) -> Result<Vec<CampaignId>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM campaigns
         WHERE (status = 'scheduled' AND scheduled_at <= :now)
            OR status = 'running'
            OR (status = 'cancelled' AND cancel_done_at IS NULL)
         ORDER BY rowid",
    )?;
    let rows = stmt.query_map(named_params! { ":now": now }, |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The largest link id ever given (0 before the first): the next launch's links follow it.
pub fn last_link_id(conn: &Connection) -> Result<i64, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'campaign_links'), 0)",
        )?
        .query_row([], |row| row.get(0))?)
}

/// Stores one of a launching campaign's links.
pub fn insert_link(
    conn: &Connection,
    campaign_id: &CampaignId,
    position: usize,
    url: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO campaign_links (campaign_id, position, url) VALUES (?1, ?2, ?3)",
    )?
    .execute(rusqlite::params![
        campaign_id,
        i64::try_from(position).unwrap_or(i64::MAX),
        url
    ])?;
    Ok(())
}

/// A campaign's links: id and target URL, in position order.
pub fn campaign_links(
    conn: &Connection,
    campaign_id: &CampaignId,
) -> Result<Vec<(i64, String)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, url FROM campaign_links WHERE campaign_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([campaign_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stored link with its campaign's workspace and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub campaign_id: CampaignId,
    pub workspace_id: WorkspaceId,
    pub mode: Mode,
    pub url: String,
}

/// The link `id`, whatever its workspace (a click carries no credential but its code).
pub fn find_link(conn: &Connection, id: i64) -> Result<Option<LinkRow>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT l.campaign_id, c.workspace_id, c.mode, l.url
             FROM campaign_links l JOIN campaigns c ON c.id = l.campaign_id
             WHERE l.id = ?1",
        )?
        .query_row([id], |row| {
            Ok(LinkRow {
                campaign_id: row.get(0)?,
                workspace_id: row.get(1)?,
                mode: row.get(2)?,
                url: row.get(3)?,
            })
        })
        .optional()?)
}

pub fn insert_click(
    conn: &Connection,
    click: &crate::campaigns::links::Click,
    clicked_at: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO campaign_clicks (campaign_id, link_id, contact_id, workspace_id, mode,
            clicked_at) VALUES (:campaign_id, :link_id, :contact_id, :workspace_id, :mode,
            :clicked_at)",
    )?
    .execute(named_params! {
        ":campaign_id": click.campaign_id,
        ":link_id": click.link_id,
        ":contact_id": click.contact_id,
        ":workspace_id": click.workspace_id,
        ":mode": click.mode,
        ":clicked_at": clicked_at,
    })?;
    Ok(())
}

/// A campaign's clicks, and how many contacts clicked (one index range).
pub fn click_counts(conn: &Connection, campaign_id: &CampaignId) -> Result<(u64, u64), AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), count(DISTINCT contact_id) FROM campaign_clicks
             WHERE campaign_id = ?1",
        )?
        .query_row([campaign_id], |row| Ok((count(row, 0)?, count(row, 1)?)))?)
}

/// A campaign's clicks per period (the first `prefix_len` characters of their time), oldest
/// first.
pub fn click_timeline(
    conn: &Connection,
    campaign_id: &CampaignId,
    prefix_len: usize,
) -> Result<Vec<(String, u64)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(clicked_at, 1, :n) AS period, count(*) FROM campaign_clicks
         WHERE campaign_id = :campaign_id GROUP BY period ORDER BY period",
    )?;
    let rows = stmt.query_map(
        named_params! { ":campaign_id": campaign_id, ":n": prefix_len as i64 },
        |row| Ok((row.get(0)?, count(row, 1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What `crier doctor` finds wrong with launched campaigns (docs/rules/campaigns.md, "What
/// crier keeps true"), one sentence each, at most 100.
pub fn discrepancies(conn: &Connection) -> Result<Vec<String>, AppError> {
    let mut problems = Vec::new();
    // Money: what the ledger charged for the campaign is what it reserved, and every unit of
    // the pool is either still in it or carried by one of its messages.
    let mut money = conn.prepare_cached(
        "SELECT c.id, c.reserved_minor,
                (SELECT COALESCE(-sum(l.amount_minor), 0) FROM wallet_ledger l
                 WHERE l.workspace_id = c.workspace_id AND l.reference = c.id
                   AND l.kind = 'charge') AS ledger,
                COALESCE(p.charge_minor, 0)
                  + (SELECT COALESCE(sum(r.charge_minor), 0) FROM messages m
                     JOIN billing_reservations r ON r.reference = m.id
                     WHERE m.campaign_id = c.id) AS accounted,
                c.fanout_done_at IS NOT NULL AND p.reference IS NOT NULL
                  AND p.refunded_at IS NULL AS pool_left_open
         FROM campaigns c LEFT JOIN billing_reservations p ON p.reference = c.id
         WHERE c.mode = 'live' AND c.launched_at IS NOT NULL
           AND c.status NOT IN ('draft', 'scheduled')
         ORDER BY c.rowid",
    )?;
    let rows = money.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, bool>(4)?,
        ))
    })?;
    for row in rows {
        let (id, reserved, ledger, accounted, pool_left_open) = row?;
        if ledger != reserved {
            problems.push(format!(
                "campaign {id}: the ledger charged {ledger} but the campaign reserved {reserved}"
            ));
        }
        if accounted != reserved {
            problems.push(format!(
                "campaign {id}: its pool and messages account for {accounted} of {reserved} reserved"
            ));
        }
        if pool_left_open {
            problems.push(format!(
                "campaign {id}: the fan-out ended but the pool's leftover was not refunded"
            ));
        }
    }
    // Messages: as many as the fan-out counted, each carrying its reservation's share; none
    // left to send once the campaign is over.
    let mut messages = conn.prepare_cached(
        "SELECT c.id, c.messages_created,
                (SELECT count(*) FROM messages m WHERE m.campaign_id = c.id),
                (SELECT count(*) FROM messages m JOIN billing_reservations r ON r.reference = m.id
                 WHERE m.campaign_id = c.id
                   AND (r.charge_minor <> m.charge_minor OR r.units <> m.units
                        OR r.included_units <> m.included_units)),
                c.status IN ('completed', 'partial', 'failed')
                  OR (c.status = 'cancelled' AND c.cancel_done_at IS NOT NULL),
                EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = c.id
                        AND m.status IN ('scheduled', 'queued', 'sending'))
         FROM campaigns c
         WHERE c.launched_at IS NOT NULL AND c.status NOT IN ('draft', 'scheduled')
         ORDER BY c.rowid",
    )?;
    let rows = messages.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, bool>(4)?,
            row.get::<_, bool>(5)?,
        ))
    })?;
    for row in rows {
        let (id, counted, stored, mismatched, over, unsettled) = row?;
        if counted != stored {
            problems.push(format!(
                "campaign {id}: the fan-out counted {counted} messages but {stored} exist"
            ));
        }
        if mismatched > 0 {
            problems.push(format!(
                "campaign {id}: {mismatched} message(s) carry other figures than their reservation"
            ));
        }
        if over && unsettled {
            problems.push(format!(
                "campaign {id}: it is over but messages of it can still be sent"
            ));
        }
    }
    // Stats: the tallies the triggers keep (V25) agree with the messages counted one by one.
    let mut tallies = conn.prepare_cached(
        "WITH counted AS (
             SELECT campaign_id, status, count(*) AS messages, sum(charge_minor) AS charge_minor
             FROM messages WHERE campaign_id IS NOT NULL GROUP BY campaign_id, status)
         SELECT t.campaign_id, t.status, t.messages, t.charge_minor,
                COALESCE(c.messages, 0), COALESCE(c.charge_minor, 0)
         FROM campaign_tallies t LEFT JOIN counted c USING (campaign_id, status)
         WHERE t.messages <> COALESCE(c.messages, 0)
            OR t.charge_minor <> COALESCE(c.charge_minor, 0)
         UNION ALL
         SELECT c.campaign_id, c.status, 0, 0, c.messages, c.charge_minor
         FROM counted c LEFT JOIN campaign_tallies t USING (campaign_id, status)
         WHERE t.campaign_id IS NULL",
    )?;
    let rows = tallies.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    for row in rows {
        let (id, status, tallied, tallied_minor, counted, counted_minor) = row?;
        problems.push(format!(
            "campaign {id}: its stats count {tallied} {status} message(s) carrying \
             {tallied_minor} but {counted} carrying {counted_minor} exist"
        ));
    }
    problems.truncate(100);
    Ok(problems)
}
