//! SQL of `provider_accounts` and `provider_account_secrets`.

use rusqlite::{Connection, OptionalExtension, Row, named_params, params};

use crate::billing::Channel;
use crate::error::AppError;
use crate::ids::{ProviderAccountId, WorkspaceId};

/// A provider account as stored (its secrets apart, sealed).
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: ProviderAccountId,
    pub workspace_id: WorkspaceId,
    pub channel: Channel,
    pub provider: String,
    /// The non-secret settings, a JSON object of strings.
    pub settings: String,
    pub priority: i64,
    pub enabled: bool,
    pub description: Option<String>,
    /// One more at every change (the built adapters' cache key).
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// One sealed secret of an account. Its `Debug` shows the field and the hint, never the bytes.
#[derive(Clone)]
pub struct SecretRow {
    pub field: String,
    pub sealed: Vec<u8>,
    /// The last characters of the value, shown as a hint (`…89ab`); empty for a short value.
    pub last4: String,
}

impl std::fmt::Debug for SecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretRow({}, …{})", self.field, self.last4)
    }
}

const COLUMNS: &str = "id, workspace_id, channel, provider, settings, priority, enabled,
    description, version, created_at, updated_at";

fn account_row(row: &Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        channel: row.get(2)?,
        provider: row.get(3)?,
        settings: row.get(4)?,
        priority: row.get(5)?,
        enabled: row.get(6)?,
        description: row.get(7)?,
        version: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

pub fn insert(conn: &Connection, account: &AccountRow) -> Result<(), AppError> {
    conn.prepare_cached(&format!(
        "INSERT INTO provider_accounts ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        account.id,
        account.workspace_id,
        account.channel,
        account.provider,
        account.settings,
        account.priority,
        account.enabled,
        account.description,
        account.version,
        account.created_at,
        account.updated_at,
    ])?;
    Ok(())
}

/// Writes every column an owner may change, and the version.
pub fn update(conn: &Connection, account: &AccountRow) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE provider_accounts SET settings = ?2, priority = ?3, enabled = ?4,
                description = ?5, version = ?6, updated_at = ?7
          WHERE id = ?1",
    )?
    .execute(params![
        account.id,
        account.settings,
        account.priority,
        account.enabled,
        account.description,
        account.version,
        account.updated_at,
    ])?;
    Ok(())
}

/// Deletes the account and its secrets.
pub fn delete(conn: &Connection, id: &ProviderAccountId) -> Result<(), AppError> {
    conn.prepare_cached("DELETE FROM provider_account_secrets WHERE account_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM provider_accounts WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The account `id` of `workspace_id`; `None` for any workspace's when `workspace_id` is `None`
/// (delivery and receipts, crier's own work on the row).
pub fn find(
    conn: &Connection,
    workspace_id: Option<&WorkspaceId>,
    id: &ProviderAccountId,
) -> Result<Option<AccountRow>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM provider_accounts
              WHERE id = :id AND (:workspace_id IS NULL OR workspace_id = :workspace_id)"
        ))?
        .query_row(
            named_params! { ":id": id, ":workspace_id": workspace_id },
            account_row,
        )
        .optional()?)
}

/// A page of the workspace's accounts, newest first.
pub fn list(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<AccountRow>, AppError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM provider_accounts
          WHERE workspace_id = :workspace_id AND (:before IS NULL OR id < :before)
          ORDER BY id DESC LIMIT :limit"
    ))?;
    let rows = statement.query_map(
        named_params! {
            ":workspace_id": workspace_id,
            ":before": before,
            ":limit": i64::try_from(limit).unwrap_or(i64::MAX),
        },
        account_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The workspace's enabled accounts of `channel`, in the order its messages try them.
pub fn enabled_chain(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    channel: Channel,
) -> Result<Vec<ProviderAccountId>, AppError> {
    let mut statement = conn.prepare_cached(
        "SELECT id FROM provider_accounts
          WHERE workspace_id = ?1 AND channel = ?2 AND enabled = 1
          ORDER BY priority, id",
    )?;
    let rows = statement.query_map(params![workspace_id, channel], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many accounts of `channel` the workspace has.
pub fn count(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    channel: Channel,
) -> Result<usize, AppError> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM provider_accounts WHERE workspace_id = ?1 AND channel = ?2",
        )?
        .query_row(params![workspace_id, channel], |row| row.get(0))?;
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// The account's sealed secrets, by field name.
pub fn secrets(conn: &Connection, id: &ProviderAccountId) -> Result<Vec<SecretRow>, AppError> {
    let mut statement = conn.prepare_cached(
        "SELECT field, sealed, last4 FROM provider_account_secrets
          WHERE account_id = ?1 ORDER BY field",
    )?;
    let rows = statement.query_map([id], |row| {
        Ok(SecretRow {
            field: row.get(0)?,
            sealed: row.get(1)?,
            last4: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets (or replaces) one sealed secret.
pub fn put_secret(
    conn: &Connection,
    id: &ProviderAccountId,
    secret: &SecretRow,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO provider_account_secrets (account_id, field, sealed, last4)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id, field) DO UPDATE SET sealed = excluded.sealed,
                                                      last4 = excluded.last4",
    )?
    .execute(params![id, secret.field, secret.sealed, secret.last4])?;
    Ok(())
}

pub fn remove_secret(
    conn: &Connection,
    id: &ProviderAccountId,
    field: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "DELETE FROM provider_account_secrets WHERE account_id = ?1 AND field = ?2",
    )?
    .execute(params![id, field])?;
    Ok(())
}
