//! SQL for idempotency records.

use rusqlite::{Connection, OptionalExtension, named_params};

use crate::error::AppError;

/// Where a record belongs: (workspace, API key or user, key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordScope {
    /// Empty for records kept per user rather than per workspace.
    pub workspace_id: String,
    pub actor_id: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    InFlight {
        lease_token: String,
        lease_expires_at: String,
    },
    Completed {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub fingerprint: Vec<u8>,
    pub state: RecordState,
    /// End of retention: from then on the record no longer counts.
    pub expires_at: String,
}

pub fn find_record(conn: &Connection, scope: &RecordScope) -> Result<Option<Record>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT fingerprint, state, status, content_type, body, lease_token, lease_expires_at,
                    expires_at
             FROM idempotency_records
             WHERE workspace_id = :workspace_id AND actor_id = :actor_id AND key = :key",
        )?
        .query_row(
            named_params! {
                ":workspace_id": scope.workspace_id, ":actor_id": scope.actor_id, ":key": scope.key,
            },
            |row| {
                let state: String = row.get(1)?;
                let state = if state == "completed" {
                    RecordState::Completed {
                        status: row.get(2)?,
                        content_type: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        body: row.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                    }
                } else {
                    RecordState::InFlight {
                        lease_token: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        lease_expires_at: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                    }
                };
                Ok(Record {
                    fingerprint: row.get(0)?,
                    state,
                    expires_at: row.get(7)?,
                })
            },
        )
        .optional()?)
}

/// Stores a completed outcome, replacing an in-flight record of the same scope if there is one.
pub fn save_completed(
    conn: &Connection,
    scope: &RecordScope,
    fingerprint: &[u8],
    (status, content_type, body): (u16, &str, &[u8]),
    now: &str,
    expires_at: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_records
             (workspace_id, actor_id, key, fingerprint, state, status, content_type, body,
              created_at, expires_at)
         VALUES (:workspace_id, :actor_id, :key, :fingerprint, 'completed', :status,
                 :content_type, :body, :now, :expires_at)
         ON CONFLICT (workspace_id, actor_id, key) DO UPDATE SET
             fingerprint = excluded.fingerprint, state = 'completed', status = excluded.status,
             content_type = excluded.content_type, body = excluded.body, lease_token = NULL,
             lease_expires_at = NULL, created_at = excluded.created_at,
             expires_at = excluded.expires_at",
    )?
    .execute(named_params! {
        ":workspace_id": scope.workspace_id, ":actor_id": scope.actor_id, ":key": scope.key,
        ":fingerprint": fingerprint, ":status": status, ":content_type": content_type,
        ":body": body, ":now": now, ":expires_at": expires_at,
    })?;
    Ok(())
}

/// Takes (or takes over) the lease on a scope.
pub fn save_in_flight(
    conn: &Connection,
    scope: &RecordScope,
    fingerprint: &[u8],
    lease_token: &str,
    lease_expires_at: &str,
    now: &str,
    expires_at: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_records
             (workspace_id, actor_id, key, fingerprint, state, lease_token, lease_expires_at,
              created_at, expires_at)
         VALUES (:workspace_id, :actor_id, :key, :fingerprint, 'in_flight', :lease_token,
                 :lease_expires_at, :now, :expires_at)
         ON CONFLICT (workspace_id, actor_id, key) DO UPDATE SET
             fingerprint = excluded.fingerprint, state = 'in_flight', status = NULL,
             content_type = NULL, body = NULL, lease_token = excluded.lease_token,
             lease_expires_at = excluded.lease_expires_at, created_at = excluded.created_at,
             expires_at = excluded.expires_at",
    )?
    .execute(named_params! {
        ":workspace_id": scope.workspace_id, ":actor_id": scope.actor_id, ":key": scope.key,
        ":fingerprint": fingerprint, ":lease_token": lease_token,
        ":lease_expires_at": lease_expires_at, ":now": now, ":expires_at": expires_at,
    })?;
    Ok(())
}

/// Whether `lease_token` still holds the lease on `scope` (nobody took it over).
pub fn holds_lease(
    conn: &Connection,
    scope: &RecordScope,
    lease_token: &str,
) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM idempotency_records
                            WHERE workspace_id = :workspace_id AND actor_id = :actor_id
                              AND key = :key AND state = 'in_flight' AND lease_token = :token)",
        )?
        .query_row(
            named_params! {
                ":workspace_id": scope.workspace_id, ":actor_id": scope.actor_id,
                ":key": scope.key, ":token": lease_token,
            },
            |row| row.get(0),
        )?)
}

/// Drops an in-flight record held by `lease_token` (its operation failed with a 5xx).
pub fn release_lease(
    conn: &Connection,
    scope: &RecordScope,
    lease_token: &str,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "DELETE FROM idempotency_records
         WHERE workspace_id = :workspace_id AND actor_id = :actor_id AND key = :key
           AND state = 'in_flight' AND lease_token = :token",
    )?
    .execute(named_params! {
        ":workspace_id": scope.workspace_id, ":actor_id": scope.actor_id, ":key": scope.key,
        ":token": lease_token,
    })?;
    Ok(())
}

/// Deletes up to `limit` records whose retention ended by `now`, except in-flight ones whose
/// lease is still live; returns how many.
pub fn delete_expired(conn: &Connection, now: &str, limit: usize) -> Result<usize, AppError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM idempotency_records WHERE rowid IN
                 (SELECT rowid FROM idempotency_records
                  WHERE expires_at <= ?1
                    AND (state = 'completed' OR lease_expires_at <= ?1)
                  LIMIT ?2)",
        )?
        .execute(rusqlite::params![now, limit as i64])?)
}
