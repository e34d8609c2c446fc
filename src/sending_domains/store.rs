//! SQL for sending domains. The sealed private key is read by `active_key` alone: lists and
//! lookups never carry it.

use rusqlite::{Connection, OptionalExtension, Row, named_params};

use crate::error::AppError;
use crate::ids::{SendingDomainId, WorkspaceId};
use crate::sending_domains::{DkimAlgorithm, DomainStatus};

/// A sending domain as stored, without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    pub id: SendingDomainId,
    pub workspace_id: WorkspaceId,
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The TXT record's value (`v=DKIM1; k=…; p=…`).
    pub dns_value: String,
    pub status: DomainStatus,
    pub rejection_reason: Option<String>,
    pub from_mailbox: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub reviewed_at: Option<String>,
}

const COLUMNS: &str = "id, workspace_id, domain, selector, algorithm, dns_value, status, \
    rejection_reason, from_mailbox, created_at, updated_at, reviewed_at";

fn domain_row(row: &Row<'_>) -> rusqlite::Result<DomainRow> {
    Ok(DomainRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        domain: row.get(2)?,
        selector: row.get(3)?,
        algorithm: row.get(4)?,
        dns_value: row.get(5)?,
        status: row.get(6)?,
        rejection_reason: row.get(7)?,
        from_mailbox: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        reviewed_at: row.get(11)?,
    })
}

pub fn insert(conn: &Connection, row: &DomainRow, sealed_key: &[u8]) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO sending_domains ({COLUMNS}, private_key)
         VALUES (:id, :workspace_id, :domain, :selector, :algorithm, :dns_value, :status,
                 NULL, NULL, :created_at, :created_at, NULL, :private_key)"
    ))?
    .execute(named_params! {
        ":id": row.id,
        ":workspace_id": row.workspace_id,
        ":domain": row.domain,
        ":selector": row.selector,
        ":algorithm": row.algorithm,
        ":dns_value": row.dns_value,
        ":status": row.status,
        ":created_at": row.created_at,
        ":private_key": sealed_key,
    })?;
    Ok(())
}

/// The domain `id` of `workspace_id`.
pub fn find(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &SendingDomainId,
) -> Result<Option<DomainRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sending_domains WHERE id = :id AND workspace_id = :workspace_id"
        ))?
        .query_row(
            named_params! {":id": id, ":workspace_id": workspace_id},
            domain_row,
        )
        .optional()?)
}

/// The domain `id`, whichever workspace has it (instance admins' reviews).
pub fn find_any(conn: &Connection, id: &SendingDomainId) -> Result<Option<DomainRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sending_domains WHERE id = :id"
        ))?
        .query_row(named_params! {":id": id}, domain_row)
        .optional()?)
}

/// The workspace's row for `domain`, if it added it.
pub fn find_by_domain(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    domain: &str,
) -> Result<Option<DomainRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sending_domains
              WHERE workspace_id = :workspace_id AND domain = :domain"
        ))?
        .query_row(
            named_params! {":workspace_id": workspace_id, ":domain": domain},
            domain_row,
        )
        .optional()?)
}

/// The workspace that has `domain` active, if one does.
pub fn active_owner(conn: &Connection, domain: &str) -> Result<Option<WorkspaceId>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT workspace_id FROM sending_domains WHERE domain = :domain AND status = 'active'",
        )?
        .query_row(named_params! {":domain": domain}, |row| row.get(0))
        .optional()?)
}

/// The workspace's domains, newest first, before the cursor.
pub fn list(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<DomainRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sending_domains
          WHERE workspace_id = :workspace_id AND (:before IS NULL OR id < :before)
          ORDER BY id DESC LIMIT :limit"
    ))?;
    let rows = statement.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        domain_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every workspace's domains in `status`, oldest first, after the cursor (instance admins).
pub fn list_by_status(
    conn: &Connection,
    status: DomainStatus,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<DomainRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sending_domains
          WHERE status = :status AND (:after IS NULL OR id > :after)
          ORDER BY id LIMIT :limit"
    ))?;
    let rows = statement.query_map(
        named_params! {
            ":status": status,
            ":after": after,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        domain_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets the domain's status as an admin decided it; leaving `active` drops its From.
pub fn set_status(
    conn: &Connection,
    id: &SendingDomainId,
    status: DomainStatus,
    reason: Option<&str>,
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE sending_domains
            SET status = :status, rejection_reason = :reason, reviewed_at = :now,
                updated_at = :now,
                from_mailbox = CASE WHEN :status = 'active' THEN from_mailbox END
          WHERE id = :id",
    )?
    .execute(named_params! {
        ":id": id,
        ":status": status,
        ":reason": reason,
        ":now": now,
    })?;
    Ok(())
}

/// Sets (or clears) the workspace's From on domain `id`, clearing it on its other domains.
pub fn set_from(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &SendingDomainId,
    from: Option<&str>,
    now: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE sending_domains SET from_mailbox = NULL, updated_at = :now
          WHERE workspace_id = :workspace_id AND id <> :id AND from_mailbox IS NOT NULL",
    )?
    .execute(named_params! {":workspace_id": workspace_id, ":id": id, ":now": now})?;
    conn.prepare_cached(
        "UPDATE sending_domains SET from_mailbox = :from, updated_at = :now
          WHERE workspace_id = :workspace_id AND id = :id",
    )?
    .execute(named_params! {
        ":workspace_id": workspace_id,
        ":id": id,
        ":from": from,
        ":now": now,
    })?;
    Ok(())
}

pub fn delete(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &SendingDomainId,
) -> Result<bool, AppError> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM sending_domains WHERE id = :id AND workspace_id = :workspace_id",
        )?
        .execute(named_params! {":id": id, ":workspace_id": workspace_id})?;
    Ok(deleted > 0)
}

/// The From mailbox of the workspace's active domain that has one.
pub fn workspace_from(
    conn: &Connection,
    workspace_id: &WorkspaceId,
) -> Result<Option<String>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT from_mailbox FROM sending_domains
              WHERE workspace_id = :workspace_id AND status = 'active'
                AND from_mailbox IS NOT NULL",
        )?
        .query_row(named_params! {":workspace_id": workspace_id}, |row| {
            row.get(0)
        })
        .optional()?)
}

/// What signing as an active domain of a workspace needs: the sealed key and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: SendingDomainId,
    pub domain: String,
    pub selector: String,
    pub updated_at: String,
    pub sealed_key: Vec<u8>,
}

pub fn active_key(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    domain: &str,
) -> Result<Option<KeyRow>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, domain, selector, updated_at, private_key FROM sending_domains
              WHERE workspace_id = :workspace_id AND domain = :domain AND status = 'active'",
        )?
        .query_row(
            named_params! {":workspace_id": workspace_id, ":domain": domain},
            |row| {
                Ok(KeyRow {
                    id: row.get(0)?,
                    domain: row.get(1)?,
                    selector: row.get(2)?,
                    updated_at: row.get(3)?,
                    sealed_key: row.get(4)?,
                })
            },
        )
        .optional()?)
}
