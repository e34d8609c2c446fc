//! SQL for messages and their delivery attempts. Plain statements, named parameters (positional
//! for the insert, which a fan-out makes a million times), cached;
//! every function runs on the caller's connection (inside its transaction when it writes).

use std::sync::LazyLock;

use rusqlite::{CachedStatement, Connection, OptionalExtension, Row, named_params, params};

use crate::billing::Channel;
use crate::error::AppError;
use crate::ids::{ApiKeyId, ContactId, MessageId, WorkspaceId};
use crate::messages::MessageStatus;
use crate::messages::compose::Category;
use crate::vocabulary::Mode;

/// A message row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: MessageId,
    pub workspace_id: WorkspaceId,
    pub api_key_id: Option<ApiKeyId>,
    pub campaign_id: Option<String>,
    pub mode: Mode,
    pub channel: Channel,
    pub category: Category,
    pub to_address: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub metadata: String,
    pub encoding: Option<String>,
    pub segments: Option<u32>,
    pub units: u64,
    pub included_units: u64,
    pub charge_minor: i64,
    pub currency: String,
    pub status: MessageStatus,
    pub scheduled_at: Option<String>,
    pub next_attempt_at: String,
    pub delivery_cycles: u32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<String>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    pub failed_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// The workspace's contact for the address when it was sent, if any.
    pub contact_id: Option<ContactId>,
    /// SMS: the route its number took when it was created (`+23767=avlytext,mboasms`,
    /// `default=twilio`, `test=log`; `delivery::routes`). `None` for email.
    pub route: Option<String>,
    /// When retention dropped the subject and bodies (`purge_batch`); `None` while kept.
    pub body_purged_at: Option<String>,
    /// A campaign email's From display name (its campaign's `from_name`); `None` otherwise.
    pub from_name: Option<String>,
}

const COLUMNS: &str = "id, workspace_id, api_key_id, campaign_id, mode, channel, category, \
    to_address, sender, subject, text, html, metadata, encoding, segments, units, included_units, \
    charge_minor, currency, status, scheduled_at, next_attempt_at, delivery_cycles, lease_owner, \
    lease_expires_at, provider, provider_message_id, error_code, error_message, created_at, \
    updated_at, sent_at, delivered_at, failed_at, cancelled_at, contact_id, route, body_purged_at, \
    from_name";

/// A stored non-negative integer (SQLite integers are signed).
pub(crate) fn unsigned(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.max(0).unsigned_abs())
}

fn message_row(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        api_key_id: row.get(2)?,
        campaign_id: row.get(3)?,
        mode: row.get(4)?,
        channel: row.get(5)?,
        category: row.get(6)?,
        to_address: row.get(7)?,
        sender: row.get(8)?,
        subject: row.get(9)?,
        text: row.get(10)?,
        html: row.get(11)?,
        metadata: row.get(12)?,
        encoding: row.get(13)?,
        segments: row.get(14)?,
        units: unsigned(row, 15)?,
        included_units: unsigned(row, 16)?,
        charge_minor: row.get(17)?,
        currency: row.get(18)?,
        status: row.get(19)?,
        scheduled_at: row.get(20)?,
        next_attempt_at: row.get(21)?,
        delivery_cycles: row.get(22)?,
        lease_owner: row.get(23)?,
        lease_expires_at: row.get(24)?,
        provider: row.get(25)?,
        provider_message_id: row.get(26)?,
        error_code: row.get(27)?,
        error_message: row.get(28)?,
        created_at: row.get(29)?,
        updated_at: row.get(30)?,
        sent_at: row.get(31)?,
        delivered_at: row.get(32)?,
        failed_at: row.get(33)?,
        cancelled_at: row.get(34)?,
        contact_id: row.get(35)?,
        route: row.get(36)?,
        body_purged_at: row.get(37)?,
        from_name: row.get(38)?,
    })
}

/// Stores a new message, `scheduled` or `queued` (`MessageInserts::insert`).
pub fn insert_message(conn: &Connection, message: &MessageRow) -> Result<(), AppError> {
    MessageInserts::new(conn)?.insert(message)
}

/// The insert of `insert_message`, prepared once for many messages: a fan-out part writes
/// hundreds, and looking the statement up in the cache for each (hashing its SQL) was ~2% of it.
pub struct MessageInserts<'conn> {
    statement: CachedStatement<'conn>,
}

impl<'conn> MessageInserts<'conn> {
    pub fn new(conn: &'conn Connection) -> Result<MessageInserts<'conn>, AppError> {
        static INSERT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO messages ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                    ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, 0, NULL, NULL, NULL,
                    NULL, NULL, NULL, ?23, ?23, NULL, NULL, NULL, NULL, ?24, ?25, NULL, ?26)"
            )
        });
        Ok(MessageInserts {
            statement: conn.prepare_cached(&INSERT)?,
        })
    }

    /// Stores `message`, which must be `scheduled` or `queued`.
    pub fn insert(&mut self, message: &MessageRow) -> Result<(), AppError> {
        // A message created settled would need its event recorded: the trigger that did it is gone
        // (V40, it made every insert open a statement journal), and crier creates none.
        if !matches!(
            message.status,
            MessageStatus::Scheduled | MessageStatus::Queued
        ) {
            return Err(AppError::internal(format!(
                "a message is created scheduled or queued, not {}",
                message.status
            )));
        }
        self.statement.execute(params![
            message.id,
            message.workspace_id,
            message.api_key_id,
            message.campaign_id,
            message.mode,
            message.channel,
            message.category,
            message.to_address,
            message.sender,
            message.subject,
            message.text,
            message.html,
            message.metadata,
            message.encoding,
            message.segments,
            i64::try_from(message.units).unwrap_or(i64::MAX),
            i64::try_from(message.included_units).unwrap_or(i64::MAX),
            message.charge_minor,
            message.currency,
            message.status,
            message.scheduled_at,
            message.next_attempt_at,
            message.created_at,
            message.contact_id,
            message.route,
            message.from_name,
        ])?;
        Ok(())
    }
}

/// The workspace's `scheduled` messages of `mode` to `address` (an erasure cancels them). A
/// campaign's messages are never `scheduled` (the campaign is), and are not in the recipient
/// index (V43).
pub fn scheduled_to(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    address: &str,
) -> Result<Vec<MessageId>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM messages
         WHERE workspace_id = :workspace_id AND to_address = :address AND mode = :mode
           AND campaign_id IS NULL AND status = 'scheduled'",
    )?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":mode": mode, ":address": address },
        |row| row.get(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What an erasure leaves of a finished message to an erased address (`to_address` below).
pub const ERASED_RECIPIENT: &str = "[erased]";

/// What a scrub leaves of a finished message: the recipient `[erased]`, the subject and bodies
/// empty, the metadata `{}`.
const SCRUB: &str = "UPDATE messages SET to_address = :erased,
         subject = CASE WHEN subject IS NULL THEN NULL ELSE '' END,
         text = '', html = NULL, metadata = '{}', updated_at = :now";

/// The statuses a scrub touches: a message no dispatcher can still hand over.
const SCRUBBED_STATUSES: &str = "status IN ('sent', 'delivered', 'failed', 'cancelled')";

/// Scrubs the workspace's finished messages (sent, delivered, failed, cancelled) of `mode`
/// sent through the API to `address` (`SCRUB`; campaign messages: `scrub_campaign_messages`).
/// Prices, statuses, times and attempts stay (the ledger names messages by id only). Returns
/// how many changed.
pub fn scrub_recipient(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    address: &str,
    now: &str,
) -> Result<usize, AppError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{SCRUB} WHERE workspace_id = :workspace_id AND to_address = :address AND mode = :mode
               AND campaign_id IS NULL AND {SCRUBBED_STATUSES}"
        )
    });
    Ok(conn.prepare_cached(&SQL)?.execute(named_params! {
        ":workspace_id": workspace_id, ":mode": mode, ":address": address,
        ":erased": ERASED_RECIPIENT, ":now": now,
    })?)
}

/// Scrubs the finished campaign messages of the contact `contact_id` — only those sent to
/// `address` when one is given — like `scrub_recipient`. Returns how many changed.
pub fn scrub_campaign_messages(
    conn: &Connection,
    contact_id: &ContactId,
    address: Option<&str>,
    now: &str,
) -> Result<usize, AppError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{SCRUB} WHERE contact_id = :contact_id AND campaign_id IS NOT NULL
               AND (:address IS NULL OR to_address = :address) AND {SCRUBBED_STATUSES}"
        )
    });
    Ok(conn.prepare_cached(&SQL)?.execute(named_params! {
        ":contact_id": contact_id, ":address": address,
        ":erased": ERASED_RECIPIENT, ":now": now,
    })?)
}

/// What one batch of the retention walk did (`purge_batch`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeBatch {
    /// Messages looked at: the walk's and the pending ones that finished.
    pub examined: usize,
    /// Messages whose subject and bodies were dropped.
    pub purged: usize,
}

/// One batch of retention: drops the subject and bodies of up to `limit` finished messages
/// created before `cutoff` (`purge_message`). First the messages the walk passed unfinished and
/// that have finished since, then the walk itself goes on in id order (creation order) from its
/// cursor and stops at the first message created at or after `cutoff`; an unfinished message
/// it passes waits in `message_retention_pending`. The cursor moves in the same transaction.
pub fn purge_batch(
    conn: &Connection,
    cutoff: &str,
    now: &str,
    limit: usize,
) -> Result<PurgeBatch, AppError> {
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut batch = PurgeBatch::default();
    let finished: Vec<String> = conn
        .prepare_cached(
            "SELECT p.message_id FROM message_retention_pending p
             JOIN messages m ON m.id = p.message_id
             WHERE m.status IN ('sent', 'delivered', 'failed', 'cancelled')
             LIMIT ?1",
        )?
        .query_map([limit_sql], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &finished {
        purge_message(conn, id, now)?;
        conn.prepare_cached("DELETE FROM message_retention_pending WHERE message_id = ?1")?
            .execute([id])?;
    }
    batch.examined += finished.len();
    batch.purged += finished.len();
    let room = limit.saturating_sub(finished.len());
    if room == 0 {
        return Ok(batch);
    }
    let cursor: String = conn
        .prepare_cached("SELECT cursor FROM message_retention WHERE id = 1")?
        .query_row([], |row| row.get(0))?;
    let walked: Vec<(String, MessageStatus, String)> = conn
        .prepare_cached(
            "SELECT id, status, created_at FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?
        .query_map(
            params![cursor, i64::try_from(room).unwrap_or(i64::MAX)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut passed = None;
    for (id, status, created_at) in &walked {
        if created_at.as_str() >= cutoff {
            break;
        }
        if status.is_finished() {
            purge_message(conn, id, now)?;
            batch.purged += 1;
        } else {
            conn.prepare_cached(
                "INSERT INTO message_retention_pending (message_id) VALUES (?1)
                 ON CONFLICT DO NOTHING",
            )?
            .execute([id])?;
        }
        batch.examined += 1;
        passed = Some(id);
    }
    if let Some(id) = passed {
        conn.prepare_cached("UPDATE message_retention SET cursor = ?1 WHERE id = 1")?
            .execute([id])?;
    }
    Ok(batch)
}

/// Drops one message's subject and bodies (the subject and text become `''` where the schema
/// requires them, the HTML `NULL`) and its attempts' error texts (the provider's words, which
/// may quote the message); stamps `body_purged_at`. The recipient, metadata, amounts, statuses,
/// times, error codes and the reservation stay; `updated_at` is the delivery's and stays too.
fn purge_message(conn: &Connection, id: &str, now: &str) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE messages SET subject = CASE WHEN subject IS NULL THEN NULL ELSE '' END,
             text = '', html = NULL, body_purged_at = ?2
         WHERE id = ?1 AND body_purged_at IS NULL",
    )?
    .execute(params![id, now])?;
    conn.prepare_cached(
        "UPDATE message_attempts SET error_message = NULL
         WHERE message_id = ?1 AND error_message IS NOT NULL",
    )?
    .execute([id])?;
    Ok(())
}

/// The message `id` of the workspace in `mode` (never another workspace's or world's).
pub fn find_message(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    id: &MessageId,
) -> Result<Option<MessageRow>, AppError> {
    static SELECT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM messages
             WHERE id = :id AND workspace_id = :workspace_id AND mode = :mode"
        )
    });
    Ok(conn
        .prepare_cached(&SELECT)?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id, ":mode": mode },
            message_row,
        )
        .optional()?)
}

/// What `GET /v1/messages` narrows by; `None` matches everything.
#[derive(Debug, Default)]
pub struct MessageFilter<'a> {
    pub status: Option<MessageStatus>,
    pub channel: Option<Channel>,
    pub campaign_id: Option<&'a str>,
    /// Created at or after (an RFC 3339 timestamp in the stored fixed-width form).
    pub created_from: Option<&'a str>,
    /// Created before.
    pub created_to: Option<&'a str>,
}

/// The workspace's messages of `mode`, newest first (insertion order: ids made in the same
/// millisecond do not sort by time), after the cursor `before` (a message id): at most `limit`
/// rows of `view::LISTED_COLUMNS`, each handed to `each` as it is read (`view::listed_view`).
pub fn list_messages(
    conn: &Connection,
    (workspace_id, mode): (&WorkspaceId, Mode),
    filter: &MessageFilter<'_>,
    before: Option<&str>,
    limit: usize,
    mut each: impl FnMut(&Row<'_>) -> Result<(), AppError>,
) -> Result<(), AppError> {
    static SELECT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM messages
             WHERE workspace_id = :workspace_id AND mode = :mode
               AND (:before IS NULL OR rowid < (SELECT rowid FROM messages WHERE id = :before))
               AND (:status IS NULL OR status = :status)
               AND (:channel IS NULL OR channel = :channel)
               AND (:campaign_id IS NULL OR campaign_id = :campaign_id)
               AND (:created_from IS NULL OR created_at >= :created_from)
               AND (:created_to IS NULL OR created_at < :created_to)
             ORDER BY rowid DESC LIMIT :limit",
            crate::messages::view::LISTED_COLUMNS
        )
    });
    let mut stmt = conn.prepare_cached(&SELECT)?;
    let mut rows = stmt.query(named_params! {
        ":workspace_id": workspace_id,
        ":mode": mode,
        ":before": before,
        ":status": filter.status,
        ":channel": filter.channel,
        ":campaign_id": filter.campaign_id,
        ":created_from": filter.created_from,
        ":created_to": filter.created_to,
        ":limit": limit as i64,
    })?;
    while let Some(row) = rows.next()? {
        each(row)?;
    }
    Ok(())
}

/// One provider call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: String,
    pub message_id: MessageId,
    pub attempt_no: u32,
    pub delivery_cycle: u32,
    pub provider: String,
    /// `accepted`, `retryable_error` or `final_error`.
    pub outcome: String,
    pub provider_message_id: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub duration_ms: u64,
    pub created_at: String,
}

/// Records an attempt, numbered after the message's earlier ones.
pub fn insert_attempt(conn: &Connection, attempt: &AttemptRow) -> Result<u32, AppError> {
    // The number is read by a statement of its own: an INSERT whose values read the table it
    // inserts into makes SQLite stage them in a temporary table first (~15% of its cost).
    let attempt_no: u32 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(attempt_no), 0) + 1 FROM message_attempts
             WHERE message_id = ?1",
        )?
        .query_row([&attempt.message_id], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO message_attempts (id, message_id, attempt_no, delivery_cycle, provider,
             outcome, provider_message_id, error_code, error_message, duration_ms, created_at)
         VALUES (:id, :message_id, :attempt_no, :delivery_cycle, :provider, :outcome,
             :provider_message_id, :error_code, :error_message, :duration_ms, :created_at)",
    )?
    .execute(named_params! {
        ":id": attempt.id,
        ":message_id": attempt.message_id,
        ":attempt_no": attempt_no,
        ":delivery_cycle": attempt.delivery_cycle,
        ":provider": attempt.provider,
        ":outcome": attempt.outcome,
        ":provider_message_id": attempt.provider_message_id,
        ":error_code": attempt.error_code,
        ":error_message": attempt.error_message,
        ":duration_ms": attempt.duration_ms as i64,
        ":created_at": attempt.created_at,
    })?;
    Ok(attempt_no)
}

/// Records attempts, each numbered after its message's earlier ones (`insert_attempt` for
/// many, on one cached statement).
pub fn insert_attempts(conn: &Connection, attempts: &[&AttemptRow]) -> Result<(), AppError> {
    for attempt in attempts {
        insert_attempt(conn, attempt)?;
    }
    Ok(())
}

/// Ends the owner's claim on many `sending` messages: each goes `sent` with the provider and
/// provider id of its accepted attempt, at the attempt's time, its cycle counted (as `settle`
/// does). Returns the ids it moved; a
/// message whose claim was lost (see `settle`) is left as it is.
pub fn settle_sent(
    conn: &Connection,
    owner: &str,
    accepted: &[&AttemptRow],
) -> Result<Vec<MessageId>, AppError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET status = 'sent', lease_owner = NULL, lease_expires_at = NULL,
             provider = :provider, provider_message_id = :provider_message_id,
             error_code = NULL, error_message = NULL, sent_at = :now, updated_at = :now,
             delivery_cycles = max(delivery_cycles, :cycle)
         WHERE id = :id AND lease_owner = :owner AND status = 'sending'",
    )?;
    let mut settled = Vec::with_capacity(accepted.len());
    for attempt in accepted {
        let changed = stmt.execute(named_params! {
            ":id": attempt.message_id, ":owner": owner, ":now": attempt.created_at,
            ":cycle": attempt.delivery_cycle,
            ":provider": attempt.provider, ":provider_message_id": attempt.provider_message_id,
        })?;
        if changed == 1 {
            settled.push(attempt.message_id.clone());
        }
    }
    Ok(settled)
}

pub fn list_attempts(
    conn: &Connection,
    message_id: &MessageId,
) -> Result<Vec<AttemptRow>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, message_id, attempt_no, delivery_cycle, provider, outcome,
                provider_message_id, error_code, error_message, duration_ms, created_at
         FROM message_attempts WHERE message_id = ?1 ORDER BY attempt_no",
    )?;
    let rows = stmt.query_map([message_id], |row| {
        Ok(AttemptRow {
            id: row.get(0)?,
            message_id: row.get(1)?,
            attempt_no: row.get(2)?,
            delivery_cycle: row.get(3)?,
            provider: row.get(4)?,
            outcome: row.get(5)?,
            provider_message_id: row.get(6)?,
            error_code: row.get(7)?,
            error_message: row.get(8)?,
            duration_ms: unsigned(row, 9)?,
            created_at: row.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `scheduled` → `cancelled`. False when the message is not scheduled (any more).
pub fn cancel_scheduled(conn: &Connection, id: &MessageId, now: &str) -> Result<bool, AppError> {
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET status = 'cancelled', cancelled_at = :now, updated_at = :now
             WHERE id = :id AND status = 'scheduled'",
        )?
        .execute(named_params! { ":id": id, ":now": now })?;
    Ok(changed == 1)
}

/// Moves every `scheduled` message whose time has come to `queued`, due at once. Returns how
/// many moved.
pub fn queue_due_scheduled(conn: &Connection, now: &str, limit: usize) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "UPDATE messages SET status = 'queued', next_attempt_at = scheduled_at,
                 updated_at = :now
             WHERE id IN (SELECT id FROM messages
                          WHERE status = 'scheduled' AND scheduled_at <= :now
                          ORDER BY scheduled_at LIMIT :limit)",
        )?
        .execute(named_params! { ":now": now, ":limit": limit as i64 })?)
}

/// Claims up to `limit` messages for `owner` until `lease_until`: queued ones that are due, and
/// `sending` ones whose lease expired (their dispatcher crashed). A claim spends no delivery
/// cycle: `begin_cycles` counts them when the dispatcher comes to a message (a window of up to
/// `MAX_CYCLE_WINDOW` at a time), so a crash costs the rest of its batch nothing.
///
/// Transactional messages go first (docs/rules/messages.md, "Claim order"): an OTP sent while a
/// campaign's million messages are queued is in the next batch any dispatcher claims, not behind
/// the backlog. Then marketing ones fill the batch, oldest due first — so within marketing,
/// campaigns are served in due-time order (the fan-out's chunks of campaigns running together
/// interleave; a campaign launched after another's backlog was queued waits behind it).
pub fn claim_due(
    conn: &Connection,
    owner: &str,
    now: &str,
    lease_until: &str,
    limit: usize,
) -> Result<Vec<MessageRow>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "UPDATE messages SET status = 'sending', lease_owner = :owner,
             lease_expires_at = :lease_until, updated_at = :now
         WHERE id IN ({CLAIMABLE})
         RETURNING {COLUMNS}"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":owner": owner, ":now": now, ":lease_until": lease_until, ":limit": limit as i64 },
        message_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The ids `claim_due` takes: the first `:limit` due at `:now` by (transactional first, due time).
///
/// Each queued side takes its first rows in the order of its own partial index, so however long
/// the queue only `limit` rows of each are read; the transactional side never walks a marketing
/// row. The plan (the bundled SQLite; `the_claim_walks_three_partial_indexes` checks the
/// searches):
///
/// ```text
/// SEARCH messages USING INDEX messages_due_transactional (next_attempt_at<?)
/// SEARCH messages USING COVERING INDEX messages_due_transactional (next_attempt_at<?) -- count
/// SEARCH messages USING INDEX messages_due (next_attempt_at<?)
/// SEARCH messages USING INDEX messages_leased (lease_expires_at<?)
/// USE TEMP B-TREE FOR ORDER BY          -- the expired leases by (rank, lease end)
/// USE TEMP B-TREE FOR ORDER BY          -- the ≤ 3 × limit candidates
/// ```
///
/// The marketing side walks `messages_due` (every queued message) and skips the transactional
/// rows in it, each a look-up of the row for its category. It asks only for the places the due
/// transactional messages leave in the batch (`:limit` less their count, itself capped at
/// `:limit`): with a transactional backlog that fills the batch it reads nothing — it used to
/// walk the whole backlog on every claim, a third of the dispatchers' CPU draining 30,000 OTPs
/// — and otherwise it skips fewer than `:limit` transactional rows. The batch is the same: the
/// marketing rows the old, unbounded side could get into it were already within the first
/// `:limit` less that count. A `sending`
/// message whose lease expired keeps its rank (transactional or not), then goes by its lease's
/// end; those are sorted whole, but they are only what dispatchers held (at most workers × batch).
const CLAIMABLE: &str = "
    SELECT id FROM (
        SELECT * FROM (SELECT id, 0 AS rank, next_attempt_at AS due FROM messages
                       WHERE status = 'queued' AND category = 'transactional'
                         AND next_attempt_at <= :now
                       ORDER BY next_attempt_at LIMIT :limit)
        UNION ALL
        SELECT * FROM (SELECT id, 1 AS rank, next_attempt_at AS due FROM messages
                       WHERE status = 'queued' AND category = 'marketing'
                         AND next_attempt_at <= :now
                       ORDER BY next_attempt_at
                       LIMIT max(0, :limit - (
                           SELECT count(*) FROM (SELECT 1 FROM messages
                               WHERE status = 'queued' AND category = 'transactional'
                                 AND next_attempt_at <= :now
                               LIMIT :limit))))
        UNION ALL
        SELECT * FROM (SELECT id, category <> 'transactional' AS rank, lease_expires_at AS due
                       FROM messages
                       WHERE status = 'sending' AND lease_expires_at <= :now
                       ORDER BY rank, lease_expires_at LIMIT :limit)
    ) ORDER BY rank, due LIMIT :limit";

/// Counts a delivery cycle for each of `ids` that `owner` holds, just before the first of them
/// is called; committed before that call, so a crash during it still counts. Returns each held
/// message's cycle number now; a message `owner` no longer holds (its lease ran out and another
/// dispatcher may have it) is left out and must not be sent from here.
pub fn begin_cycles(
    conn: &Connection,
    ids: &[&MessageId],
    owner: &str,
) -> Result<Vec<(MessageId, u32)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET delivery_cycles = delivery_cycles + 1
         WHERE id = :id AND lease_owner = :owner AND status = 'sending'
         RETURNING delivery_cycles",
    )?;
    let mut begun = Vec::with_capacity(ids.len());
    for id in ids {
        let cycle: Option<u32> = stmt
            .query_row(named_params! { ":id": id, ":owner": owner }, |row| {
                row.get(0)
            })
            .optional()?;
        if let Some(cycle) = cycle {
            begun.push(((*id).clone(), cycle));
        }
    }
    Ok(begun)
}

/// Takes back the cycle `begin_cycles` counted for a message `owner` hands back without having
/// called any provider for it (a graceful stop).
pub fn give_back_cycle(conn: &Connection, id: &MessageId, owner: &str) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE messages SET delivery_cycles = delivery_cycles - 1
         WHERE id = :id AND lease_owner = :owner AND status = 'sending' AND delivery_cycles > 0",
    )?
    .execute(named_params! { ":id": id, ":owner": owner })?;
    Ok(())
}

/// Extends the lease on the owner's messages still `sending`; returns the ids it still holds
/// (a message whose lease ran out may have been taken over, and must not be sent again here).
pub fn extend_leases(
    conn: &Connection,
    owner: &str,
    ids: &[&MessageId],
    lease_until: &str,
) -> Result<Vec<MessageId>, AppError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET lease_expires_at = :lease_until
         WHERE id = :id AND lease_owner = :owner AND status = 'sending'
         RETURNING id",
    )?;
    let mut held = Vec::new();
    for id in ids {
        let kept: Option<MessageId> = stmt
            .query_row(
                named_params! { ":id": id, ":owner": owner, ":lease_until": lease_until },
                |row| row.get(0),
            )
            .optional()?;
        held.extend(kept);
    }
    Ok(held)
}

/// Whether `owner` still holds the message's lease.
pub fn holds_lease(conn: &Connection, id: &MessageId, owner: &str) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM messages WHERE id = ?1 AND lease_owner = ?2 AND status = 'sending'",
        )?
        .query_row(rusqlite::params![id, owner], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A provider accepted the message for a dispatcher that had lost its claim: the message is
/// sent, unless it already reached a final state (then only the attempt records it).
pub fn accept_late(
    conn: &Connection,
    id: &MessageId,
    (provider, provider_message_id): (&str, Option<&str>),
    now: &str,
) -> Result<bool, AppError> {
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET status = 'sent', lease_owner = NULL, lease_expires_at = NULL,
                 provider = :provider, provider_message_id = :provider_message_id,
                 error_code = NULL, error_message = NULL, sent_at = :now, updated_at = :now
             WHERE id = :id AND status IN ('queued', 'sending')",
        )?
        .execute(named_params! {
            ":id": id, ":provider": provider, ":provider_message_id": provider_message_id, ":now": now,
        })?;
    Ok(changed == 1)
}

/// How a delivery cycle ended for one message.
#[derive(Debug, Clone, Copy)]
pub enum Settlement<'a> {
    Sent {
        provider: &'a str,
        provider_message_id: Option<&'a str>,
    },
    /// Back to `queued`, due again at `next_attempt_at`.
    Retry {
        next_attempt_at: &'a str,
        error: (&'a str, &'a str),
    },
    Failed {
        provider: Option<&'a str>,
        error: (&'a str, &'a str),
    },
    /// Shutdown: back to `queued`, due now. Only a message never attempted in this claim is
    /// released, so no cycle was counted for it.
    Released,
}

/// Ends the owner's claim on a `sending` message, whose delivery cycle `cycle` this settlement
/// ends (`delivery_cycles` becomes at least that: a cycle not counted before its call is counted
/// here; 0 for `Released`). False when the claim was lost (the lease expired and another
/// dispatcher took the message over), in which case nothing changes.
pub fn settle(
    conn: &Connection,
    id: &MessageId,
    owner: &str,
    (settlement, cycle): (Settlement<'_>, u32),
    now: &str,
) -> Result<bool, AppError> {
    let params = named_params! { ":id": id, ":owner": owner, ":now": now };
    let claimed = "WHERE id = :id AND lease_owner = :owner AND status = 'sending'";
    let changed = match settlement {
        Settlement::Sent {
            provider,
            provider_message_id,
        } => conn
            .prepare_cached(&format!(
                "UPDATE messages SET status = 'sent', lease_owner = NULL, lease_expires_at = NULL,
                     provider = :provider, provider_message_id = :provider_message_id,
                     error_code = NULL, error_message = NULL, sent_at = :now, updated_at = :now,
                     delivery_cycles = max(delivery_cycles, :cycle)
                 {claimed}"
            ))?
            .execute(named_params! {
                ":id": id, ":owner": owner, ":now": now, ":cycle": cycle,
                ":provider": provider, ":provider_message_id": provider_message_id,
            })?,
        Settlement::Retry {
            next_attempt_at,
            error: (code, message),
        } => conn
            .prepare_cached(&format!(
                "UPDATE messages SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                     next_attempt_at = :next_attempt_at, error_code = :code,
                     error_message = :message, updated_at = :now,
                     delivery_cycles = max(delivery_cycles, :cycle)
                 {claimed}"
            ))?
            .execute(named_params! {
                ":id": id, ":owner": owner, ":now": now, ":cycle": cycle,
                ":next_attempt_at": next_attempt_at, ":code": code, ":message": message,
            })?,
        Settlement::Failed {
            provider,
            error: (code, message),
        } => conn
            .prepare_cached(&format!(
                "UPDATE messages SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL,
                     provider = COALESCE(:provider, provider), error_code = :code,
                     error_message = :message, failed_at = :now, updated_at = :now,
                     delivery_cycles = max(delivery_cycles, :cycle)
                 {claimed}"
            ))?
            .execute(named_params! {
                ":id": id, ":owner": owner, ":now": now, ":cycle": cycle,
                ":provider": provider, ":code": code, ":message": message,
            })?,
        Settlement::Released => conn
            .prepare_cached(&format!(
                "UPDATE messages SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                     next_attempt_at = :now, updated_at = :now
                 {claimed}"
            ))?
            .execute(params)?,
    };
    Ok(changed == 1)
}

/// The message a provider knows as `provider_message_id`: by the message's own record, or by
/// an accepted attempt (a receipt can arrive before the dispatcher's settlement, or for an
/// acceptance a dispatcher that lost its claim recorded).
pub fn find_by_provider_id(
    conn: &Connection,
    provider: &str,
    provider_message_id: &str,
) -> Result<Option<MessageRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages WHERE id = COALESCE(
                 (SELECT id FROM messages
                  WHERE provider = :provider AND provider_message_id = :provider_message_id),
                 (SELECT message_id FROM message_attempts
                  WHERE provider = :provider AND provider_message_id = :provider_message_id
                    AND outcome = 'accepted' LIMIT 1))"
        ))?
        .query_row(
            named_params! { ":provider": provider, ":provider_message_id": provider_message_id },
            message_row,
        )
        .optional()?)
}

/// The message `id`, whatever its workspace and mode: what a relay's bounce or complaint names
/// (crier acting on a row it stores; the message says whose it is).
pub fn find_by_id(conn: &Connection, id: &MessageId) -> Result<Option<MessageRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = :id"))?
        .query_row(named_params! { ":id": id }, message_row)
        .optional()?)
}

/// A delivery receipt's verdict on a `sent` message: `delivered` or `failed`. Only `sent`
/// messages move (a receipt never undoes a final state); returns whether this one did.
pub fn apply_receipt(
    conn: &Connection,
    id: &MessageId,
    delivered: bool,
    error: (Option<&str>, Option<&str>),
    now: &str,
) -> Result<bool, AppError> {
    let changed = if delivered {
        conn.prepare_cached(
            "UPDATE messages SET status = 'delivered', delivered_at = :now, updated_at = :now
             WHERE id = :id AND status = 'sent'",
        )?
        .execute(named_params! { ":id": id, ":now": now })?
    } else {
        conn.prepare_cached(
            "UPDATE messages SET status = 'failed', failed_at = :now, updated_at = :now,
                 error_code = COALESCE(:code, 'undelivered'),
                 error_message = COALESCE(:message, 'The provider could not deliver the message.')
             WHERE id = :id AND status = 'sent'",
        )?
        .execute(named_params! {
            ":id": id, ":now": now, ":code": error.0, ":message": error.1,
        })?
    };
    Ok(changed == 1)
}

/// Messages still `sending` with a lease that ended before `before` (the doctor's check: the
/// dispatcher should have reclaimed them).
pub fn count_stuck(conn: &Connection, before: &str) -> Result<u64, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages WHERE status = 'sending' AND lease_expires_at < ?1",
        )?
        .query_row([before], |row| unsigned(row, 0))?)
}

/// The latest time any message was changed: how far the database's own clock got (for `doctor`
/// on a copy, whose leases are judged against the moment it was taken, not today).
pub fn latest_change(conn: &Connection) -> Result<Option<String>, AppError> {
    Ok(conn
        .prepare_cached("SELECT max(updated_at) FROM messages")?
        .query_row([], |row| row.get(0))?)
}

/// Messages per status, for `/metrics`.
pub fn count_by_status(conn: &Connection) -> Result<Vec<(String, u64)>, AppError> {
    let mut stmt =
        conn.prepare_cached("SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY 1")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, unsigned(row, 1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Live messages whose refund does not match their outcome: (id, status, refunded). A message
/// must be refunded exactly when it was cancelled, or failed without any accepted attempt.
pub fn refund_discrepancies(conn: &Connection) -> Result<Vec<(String, String, bool)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.status, r.refunded_at IS NOT NULL AS refunded,
                (m.status = 'cancelled'
                 OR (m.status = 'failed' AND NOT EXISTS (
                        SELECT 1 FROM message_attempts a
                        WHERE a.message_id = m.id AND a.outcome = 'accepted'))) AS owed
         FROM messages m JOIN billing_reservations r ON r.reference = m.id
         WHERE m.mode = 'live' AND refunded <> owed
         ORDER BY m.rowid LIMIT 100",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The provider (and its id) that accepted the message in an earlier attempt, if any — a
/// dispatcher that lost its lease may have delivered it after all.
pub fn find_acceptance(
    conn: &Connection,
    message_id: &MessageId,
) -> Result<Option<(String, Option<String>)>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT provider, provider_message_id FROM message_attempts
             WHERE message_id = ?1 AND outcome = 'accepted' ORDER BY attempt_no LIMIT 1",
        )?
        .query_row([message_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// When the longest-waiting due `queued` message became due, if any is waiting.
pub fn oldest_due(conn: &Connection, now: &str) -> Result<Option<String>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(next_attempt_at) FROM messages
             WHERE status = 'queued' AND next_attempt_at <= ?1",
        )?
        .query_row([now], |row| row.get(0))?)
}

/// Cancels up to `limit` of the campaign's messages not yet handed to a dispatcher (`scheduled`
/// or `queued`) and returns their ids.
pub fn cancel_campaign_batch(
    conn: &Connection,
    campaign_id: &str,
    limit: usize,
    now: &str,
) -> Result<Vec<MessageId>, AppError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET status = 'cancelled', cancelled_at = :now, updated_at = :now
         WHERE id IN (SELECT id FROM messages
                      WHERE campaign_id = :campaign_id AND status IN ('scheduled', 'queued')
                      LIMIT :limit)
         RETURNING id",
    )?;
    let rows = stmt.query_map(
        named_params! { ":campaign_id": campaign_id, ":limit": limit as i64, ":now": now },
        |row| row.get(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A campaign's messages of one status: how many, and the charge they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub status: MessageStatus,
    pub messages: u64,
    pub charge_minor: i64,
}

/// The campaign's messages per status, from the tallies the triggers of V25 keep as messages
/// are written and change status: a few rows, however many messages.
pub fn campaign_counts(conn: &Connection, campaign_id: &str) -> Result<Vec<StatusCount>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, messages, charge_minor FROM campaign_tallies
         WHERE campaign_id = ?1 AND messages > 0 ORDER BY status",
    )?;
    let rows = stmt.query_map([campaign_id], |row| {
        Ok(StatusCount {
            status: row.get(0)?,
            messages: unsigned(row, 1)?,
            charge_minor: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Counts `messages` new `queued` messages of the campaign, carrying `charge_minor`, in its
/// tallies (the fan-out's part that wrote them calls this once).
pub fn tally_created(
    conn: &Connection,
    campaign_id: &str,
    messages: u64,
    charge_minor: i64,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO campaign_tallies (campaign_id, status, messages, charge_minor)
         VALUES (?1, 'queued', ?2, ?3)
         ON CONFLICT (campaign_id, status) DO UPDATE
         SET messages = messages + excluded.messages,
             charge_minor = charge_minor + excluded.charge_minor",
    )?
    .execute(params![
        campaign_id,
        i64::try_from(messages).unwrap_or(i64::MAX),
        charge_minor
    ])?;
    Ok(())
}

/// Whether any of the campaign's messages may still be sent (scheduled, queued or sending).
pub fn campaign_unsettled(conn: &Connection, campaign_id: &str) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM campaign_tallies WHERE campaign_id = ?1
               AND status IN ('scheduled', 'queued', 'sending') AND messages > 0 LIMIT 1",
        )?
        .query_row([campaign_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// What the campaign's messages gave back: the charges of those whose reservation is refunded.
/// Every cancelled message of a campaign was refunded with its cancel batch (their tally says
/// how much); of the failed ones, only those no provider accepted were, and failures are few.
pub fn campaign_refunded_minor(conn: &Connection, campaign_id: &str) -> Result<i64, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT (SELECT COALESCE(sum(charge_minor), 0) FROM campaign_tallies
                     WHERE campaign_id = ?1 AND status = 'cancelled')
                  + (SELECT COALESCE(sum(m.charge_minor), 0)
                     FROM messages m JOIN billing_reservations r ON r.reference = m.id
                     WHERE m.campaign_id = ?1 AND m.status = 'failed'
                       AND r.refunded_at IS NOT NULL)",
        )?
        .query_row([campaign_id], |row| row.get(0))?)
}

/// One period of a campaign's timeline: how many of its messages were sent, delivered and
/// failed in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimelinePoint {
    /// The period's start, as the first `prefix_len` characters of an RFC 3339 timestamp
    /// (`2026-12-03T12:15` for a minute).
    pub period: String,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// The campaign's sends, deliveries and failures per period, oldest first; a period is the
/// first `prefix_len` characters of the timestamps (16: minutes, 13: hours).
pub fn campaign_timeline(
    conn: &Connection,
    campaign_id: &str,
    prefix_len: usize,
) -> Result<Vec<TimelinePoint>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT period, sum(what = 'sent'), sum(what = 'delivered'), sum(what = 'failed') FROM (
             SELECT substr(sent_at, 1, :n) AS period, 'sent' AS what FROM messages
             WHERE campaign_id = :campaign_id AND sent_at IS NOT NULL
             UNION ALL
             SELECT substr(delivered_at, 1, :n), 'delivered' FROM messages
             WHERE campaign_id = :campaign_id AND delivered_at IS NOT NULL
             UNION ALL
             SELECT substr(failed_at, 1, :n), 'failed' FROM messages
             WHERE campaign_id = :campaign_id AND failed_at IS NOT NULL)
         GROUP BY period ORDER BY period",
    )?;
    let rows = stmt.query_map(
        named_params! { ":campaign_id": campaign_id, ":n": prefix_len as i64 },
        |row| {
            Ok(TimelinePoint {
                period: row.get(0)?,
                sent: unsigned(row, 1)?,
                delivered: unsigned(row, 2)?,
                failed: unsigned(row, 3)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One UTC day of a workspace's sends: messages created that day, per channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DailySends {
    /// `2026-12-03`.
    pub day: String,
    pub sms: u64,
    pub email: u64,
}

/// The workspace's messages of `mode` created from `from` (an RFC 3339 timestamp at a UTC
/// midnight) on, counted per UTC day and channel, oldest day first; days without any are left
/// out. It walks the workspace's index (`messages_by_workspace`), so its cost grows with all of
/// the workspace's messages of the mode, not only the days asked for: fine for a console's chart, not for a
/// hot path.
pub fn daily_sends(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    mode: Mode,
    from: &str,
) -> Result<Vec<DailySends>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(created_at, 1, 10) AS day, sum(channel = 'sms'), sum(channel = 'email')
         FROM messages
         WHERE workspace_id = :workspace_id AND mode = :mode AND created_at >= :from
         GROUP BY day ORDER BY day",
    )?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":mode": mode, ":from": from },
        |row| {
            Ok(DailySends {
                day: row.get(0)?,
                sms: unsigned(row, 1)?,
                email: unsigned(row, 2)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    //! The claim against a real SQLite file: which messages a claim takes, in which order, and
    //! the indexes it walks to find them.

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::clock::{ManualClock, Timestamp, format_timestamp};
    use crate::config::Config;
    use crate::db::{Db, DbSettings};
    use crate::ids::{Ids, SeededRandom};
    use crate::users::{NewUser, create_user};
    use crate::workspaces::create_workspace;

    /// `seconds` after the fixture's start, as stored.
    fn at(seconds: i64) -> String {
        format_timestamp(start() + chrono::Duration::seconds(seconds))
    }

    fn start() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap()
    }

    struct Fixture {
        db: Db,
        ids: Ids,
        workspace: WorkspaceId,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&DbSettings::from_config(&Config::for_tests(dir.path()))).unwrap();
        let ids = Ids::new(
            Arc::new(ManualClock::new(start())),
            Arc::new(SeededRandom::new(23)),
        );
        let workspace = db
            .write(|conn| {
                let user = NewUser {
                    email: "owner@x.io".into(),
                    name: "O".into(),
                    password_hash: "x".into(),
                };
                let user = create_user(conn, &ids, user, false, start())?;
                Ok(create_workspace(conn, &ids, "Acme", &user.id, "XAF", start())?.id)
            })
            .unwrap();
        Fixture {
            db,
            ids,
            workspace,
            _dir: dir,
        }
    }

    impl Fixture {
        /// A queued SMS of `category` due at `due`; returns its id.
        fn queued(&self, category: Category, due: &str) -> MessageId {
            let message = MessageRow {
                id: MessageId::generate(&self.ids),
                workspace_id: self.workspace.clone(),
                api_key_id: None,
                campaign_id: (category == Category::Marketing).then(|| "cmp_test".to_owned()),
                mode: Mode::Live,
                channel: Channel::Sms,
                category,
                to_address: "+237677123456".to_owned(),
                sender: Some("Acme".to_owned()),
                subject: None,
                text: Some("hello".to_owned()),
                html: None,
                metadata: "{}".to_owned(),
                encoding: Some("gsm7".to_owned()),
                segments: Some(1),
                units: 1,
                included_units: 0,
                charge_minor: 25,
                currency: "XAF".to_owned(),
                status: MessageStatus::Queued,
                scheduled_at: None,
                next_attempt_at: due.to_owned(),
                delivery_cycles: 0,
                lease_owner: None,
                lease_expires_at: None,
                provider: None,
                provider_message_id: None,
                error_code: None,
                error_message: None,
                created_at: due.to_owned(),
                updated_at: due.to_owned(),
                sent_at: None,
                delivered_at: None,
                failed_at: None,
                cancelled_at: None,
                contact_id: None,
                route: None,
                body_purged_at: None,
                from_name: None,
            };
            self.db
                .write(|conn| insert_message(conn, &message))
                .unwrap();
            message.id
        }

        fn claim(&self, owner: &str, now: &str, lease_until: &str, limit: usize) -> Vec<MessageId> {
            let rows = self
                .db
                .write(|conn| claim_due(conn, owner, now, lease_until, limit))
                .unwrap();
            assert!(rows.iter().all(|row| row.status == MessageStatus::Sending));
            rows.into_iter().map(|row| row.id).collect()
        }
    }

    fn set(ids: &[&MessageId]) -> BTreeSet<MessageId> {
        ids.iter().map(|id| (*id).clone()).collect()
    }

    fn claimed(ids: Vec<MessageId>) -> BTreeSet<MessageId> {
        ids.into_iter().collect()
    }

    #[test]
    fn a_claim_takes_due_transactional_messages_before_older_marketing_ones() {
        let f = fixture();
        // A campaign's backlog, due first …
        let m1 = f.queued(Category::Marketing, &at(1));
        let m2 = f.queued(Category::Marketing, &at(2));
        let m3 = f.queued(Category::Marketing, &at(3));
        // … then two OTPs, and one not due yet (a retry's backoff).
        let t1 = f.queued(Category::Transactional, &at(5));
        let t2 = f.queued(Category::Transactional, &at(6));
        let later = f.queued(Category::Transactional, &at(50));

        // Transactional first, then the oldest marketing ones fill the batch.
        assert_eq!(
            claimed(f.claim("a", &at(10), &at(40), 3)),
            set(&[&t1, &t2, &m1])
        );
        assert_eq!(claimed(f.claim("b", &at(10), &at(41), 1)), set(&[&m2]));
        // Not due is not claimed, however high its rank.
        assert_eq!(claimed(f.claim("c", &at(10), &at(42), 5)), set(&[&m3]));
        assert!(f.claim("d", &at(10), &at(40), 5).is_empty());

        // Expired leases come back by their rank, then their lease's end: at 45 every lease
        // above has run out, and a batch of two takes the two transactional ones (`later` is
        // not due yet).
        let retaken = f.claim("e", &at(45), &at(90), 2);
        assert_eq!(claimed(retaken), set(&[&t1, &t2]));
        // At 55, `later` is due and beats the expired marketing leases; then the lease that
        // ended first (m1's, at 40).
        let next = f.claim("f", &at(55), &at(90), 2);
        assert_eq!(claimed(next), set(&[&later, &m1]));
        assert_eq!(claimed(f.claim("g", &at(55), &at(90), 9)), set(&[&m2, &m3]));
    }

    #[test]
    fn marketing_fills_only_the_places_the_due_transactional_messages_leave() {
        let f = fixture();
        let m1 = f.queued(Category::Marketing, &at(1));
        let m2 = f.queued(Category::Marketing, &at(2));
        let t: Vec<MessageId> = (3..8)
            .map(|second| f.queued(Category::Transactional, &at(second)))
            .collect();
        let m3 = f.queued(Category::Marketing, &at(8));
        // Five due transactional messages fill a batch of four, and of five: no marketing one.
        let first = f.claim("a", &at(10), &at(60), 4);
        assert_eq!(claimed(first), set(&[&t[0], &t[1], &t[2], &t[3]]));
        // One left: it and the two oldest marketing messages make a batch of three.
        let second = f.claim("b", &at(10), &at(60), 3);
        assert_eq!(claimed(second), set(&[&t[4], &m1, &m2]));
        assert_eq!(claimed(f.claim("c", &at(10), &at(60), 9)), set(&[&m3]));
        assert!(f.claim("d", &at(10), &at(60), 9).is_empty());
    }

    #[test]
    fn the_claim_walks_three_partial_indexes() {
        let f = fixture();
        let plan =
            f.db.read(|conn| {
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {CLAIMABLE}"))?;
                let rows = stmt
                    .query_map(named_params! { ":now": at(0), ":limit": 50 }, |row| {
                        row.get::<_, String>(3)
                    })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap();
        let searches: Vec<&str> = plan
            .iter()
            .map(String::as_str)
            .filter(|line| line.starts_with("SEARCH") || line.starts_with("SCAN messages"))
            .collect();
        assert_eq!(
            searches,
            [
                "SEARCH messages USING INDEX messages_due_transactional (next_attempt_at<?)",
                "SEARCH messages USING COVERING INDEX messages_due_transactional (next_attempt_at<?)",
                "SEARCH messages USING INDEX messages_due (next_attempt_at<?)",
                "SEARCH messages USING INDEX messages_leased (lease_expires_at<?)",
            ],
            "{plan:#?}"
        );
    }

    #[test]
    fn a_listed_message_reads_as_its_whole_row_shows_it() {
        // The list writes each message from SQLite's copy of its columns (`view::listed_view`);
        // the detail and the webhooks from a `MessageRow`. Every kind of row must show the same.
        let f = fixture();
        let queued = f.queued(Category::Transactional, &at(1));
        let scheduled = f.queued(Category::Marketing, &at(2));
        let failed = f.queued(Category::Transactional, &at(3));
        let purged = f.queued(Category::Transactional, &at(4));
        let email = f.queued(Category::Transactional, &at(5));
        let test_mode = f.queued(Category::Transactional, &at(6));
        f.db.write(|conn| {
            let set = |id: &MessageId, assignments: &str| {
                conn.execute(
                    &format!("UPDATE messages SET {assignments} WHERE id = ?1"),
                    [id],
                )
            };
            // Every timestamp of a row its own value, so a column read in another's place shows.
            for id in [&queued, &scheduled, &failed, &purged, &email, &test_mode] {
                set(
                    id,
                    "updated_at = replace(created_at, '10:00', '11:01'), \
                     scheduled_at = replace(created_at, '10:00', '11:02'), \
                     sent_at = replace(created_at, '10:00', '11:03'), \
                     delivered_at = replace(created_at, '10:00', '11:04'), \
                     failed_at = replace(created_at, '10:00', '11:05'), \
                     cancelled_at = replace(created_at, '10:00', '11:06')",
                )?;
            }
            conn.execute(
                "INSERT INTO contacts (id, workspace_id, mode, name, phone, phone_state,
                     email_state, created_at, updated_at)
                 VALUES ('con_x', ?1, 'live', 'Ada', '+237677123456', 'valid', 'valid',
                     ?2, ?2)",
                rusqlite::params![f.workspace, at(0)],
            )?;
            set(
                &queued,
                "api_key_id = 'key_x', contact_id = 'con_x', \
                 route = '+23767=avlytext,mboasms', \
                 text = 'say \"hi\" \\ back' || char(10, 1, 233, 128512), \
                 metadata = '{\"order\": {\"id\": 7, \"tags\": [\"a\", \"é\"]}}'",
            )?;
            set(&scheduled, "status = 'scheduled', metadata = 'not json'")?;
            set(
                &failed,
                "status = 'failed', provider = 'twilio', provider_message_id = 'SM1', \
                 error_code = 'provider_rejected', error_message = 'Invalid \"To\"', \
                 delivery_cycles = 2",
            )?;
            set(
                &purged,
                "status = 'delivered', subject = '', text = '', \
                 body_purged_at = replace(created_at, '10:00', '11:07')",
            )?;
            set(
                &email,
                "channel = 'email', to_address = 'a@x.io', sender = NULL, encoding = NULL, \
                 segments = NULL, subject = 'Your receipt', html = '<p>hi</p>', \
                 error_code = 'soft_bounce', status = 'cancelled'",
            )?;
            set(&test_mode, "mode = 'test', charge_minor = 0")?;
            Ok(())
        })
        .unwrap();
        for (mode, expected) in [
            (
                Mode::Live,
                vec![&email, &purged, &failed, &scheduled, &queued],
            ),
            (Mode::Test, vec![&test_mode]),
        ] {
            let (listed, whole) =
                f.db.read(|conn| {
                    let mut listed = Vec::new();
                    list_messages(
                        conn,
                        (&f.workspace, mode),
                        &MessageFilter::default(),
                        None,
                        10,
                        |row| {
                            let view = crate::messages::view::listed_view(row)?;
                            listed.push(serde_json::to_value(&view).unwrap());
                            Ok(())
                        },
                    )?;
                    let mut whole = Vec::new();
                    for id in &expected {
                        let row = find_message(conn, &f.workspace, mode, id)?.unwrap();
                        let view = crate::messages::view::message_view(&row);
                        whole.push(serde_json::to_value(&view).unwrap());
                    }
                    Ok((listed, whole))
                })
                .unwrap();
            assert_eq!(listed, whole);
            if mode == Mode::Test {
                assert_eq!(listed[0]["charged"], false);
                continue;
            }
            // The rows above reach what they are meant to: escapes, JSON kept as is, the rules.
            let [email, purged, failed, scheduled, queued] = &listed[..] else {
                panic!("{listed:#?}")
            };
            assert_eq!(queued["text"], "say \"hi\" \\ back\n\u{1}é😀");
            assert_eq!(queued["metadata"]["order"]["tags"][1], "é");
            assert_eq!(queued["route"]["providers"][1], "mboasms");
            assert_eq!(queued["next_attempt_at"], at(1));
            assert_eq!(queued["contact_id"], "con_x");
            assert_ne!(queued["sent_at"], queued["delivered_at"]);
            assert_eq!(scheduled["metadata"], serde_json::Value::Null);
            assert_eq!(scheduled["next_attempt_at"], serde_json::Value::Null);
            assert_eq!(failed["error"]["message"], "Invalid \"To\"");
            assert_eq!(failed["delivery_cycles"], 2);
            assert_eq!(purged["text"], serde_json::Value::Null);
            assert_eq!(email["subject"], "Your receipt");
            assert_eq!(email["error"]["message"], serde_json::Value::Null);
            assert_eq!(email["charged"], true);
        }
    }
}
