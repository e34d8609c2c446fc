//! Sender IDs and business verification (docs/rules/billing.md): a workspace asks, an admin decides.
//! The effective SMS sender is the approved sender ID of a verified workspace, else the
//! instance's default sender.

use rusqlite::{Connection, OptionalExtension, named_params};
use serde::Serialize;

use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::{UserId, WorkspaceId};
use crate::scope::WorkspaceScope;

/// A sender ID request and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderId {
    #[serde(rename = "value")]
    pub sender_id: String,
    pub status: String,
    pub rejection_reason: Option<String>,
    pub requested_at: String,
}

/// Business details submitted for verification and the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub status: String,
    pub business_name: String,
    pub country: String,
    pub website: Option<String>,
    pub document_refs: Vec<String>,
    pub rejection_reason: Option<String>,
    pub submitted_at: String,
}

/// A sender ID as typed → stored form (upper-case), or why not: 3–11 characters of letters,
/// digits and spaces, with at least one letter.
pub fn normalize_sender_id(raw: &str) -> Result<String, &'static str> {
    let value = raw.trim().to_uppercase();
    let length = value.chars().count();
    let allowed = value.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ');
    let has_letter = value.chars().any(|c| c.is_ascii_alphabetic());
    if (3..=11).contains(&length) && allowed && has_letter {
        Ok(value)
    } else {
        Err("must be 3 to 11 letters, digits or spaces, with at least one letter")
    }
}

pub fn find_sender_id(
    conn: &Connection,
    scope: &WorkspaceScope,
) -> Result<Option<SenderId>, AppError> {
    let workspace_id = scope.id();
    Ok(conn
        .prepare_cached(
            "SELECT sender_id, status, rejection_reason, requested_at FROM sender_ids
             WHERE workspace_id = ?1",
        )?
        .query_row([workspace_id], |row| {
            Ok(SenderId {
                sender_id: row.get(0)?,
                status: row.get(1)?,
                rejection_reason: row.get(2)?,
                requested_at: row.get(3)?,
            })
        })
        .optional()?)
}

/// Requests (or replaces the request for) the workspace's sender ID; back to `pending`.
/// Taken by another workspace (pending or approved) → 409.
pub fn request_sender_id(
    conn: &Connection,
    scope: &WorkspaceScope,
    sender_id: &str,
    actor: &UserId,
    now: Timestamp,
) -> Result<SenderId, AppError> {
    let workspace_id = scope.id();
    let taken: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sender_ids
                            WHERE sender_id = ?1 AND status <> 'rejected' AND workspace_id <> ?2)",
        )?
        .query_row(rusqlite::params![sender_id, workspace_id], |row| row.get(0))?;
    if taken {
        return Err(AppError::Conflict(format!(
            "The sender ID {sender_id} is already taken on this instance."
        )));
    }
    conn.prepare_cached(
        "INSERT INTO sender_ids (workspace_id, sender_id, status, requested_by, requested_at)
         VALUES (:workspace_id, :sender_id, 'pending', :actor, :now)
         ON CONFLICT (workspace_id) DO UPDATE SET
             sender_id = excluded.sender_id, status = 'pending', rejection_reason = NULL,
             requested_by = excluded.requested_by, requested_at = excluded.requested_at,
             decided_by = NULL, decided_at = NULL",
    )?
    .execute(named_params! {
        ":workspace_id": workspace_id, ":sender_id": sender_id, ":actor": actor,
        ":now": format_timestamp(now),
    })?;
    find_sender_id(conn, scope)?.ok_or_else(|| AppError::internal("sender ID vanished"))
}

pub fn find_verification(
    conn: &Connection,
    scope: &WorkspaceScope,
) -> Result<Option<Verification>, AppError> {
    let workspace_id = scope.id();
    Ok(conn
        .prepare_cached(
            "SELECT status, business_name, country, website, document_refs, rejection_reason,
                    submitted_at
             FROM verifications WHERE workspace_id = ?1",
        )?
        .query_row([workspace_id], verification_from_row)
        .optional()?)
}

fn verification_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Verification> {
    let refs: String = row.get(4)?;
    Ok(Verification {
        status: row.get(0)?,
        business_name: row.get(1)?,
        country: row.get(2)?,
        website: row.get(3)?,
        document_refs: serde_json::from_str(&refs).unwrap_or_default(),
        rejection_reason: row.get(5)?,
        submitted_at: row.get(6)?,
    })
}

/// Business details for verification, already validated.
pub struct VerificationRequest {
    pub business_name: String,
    pub country: String,
    pub website: Option<String>,
    pub document_refs: Vec<String>,
}

/// Submits (or resubmits) the workspace's business details; back to `pending`.
pub fn submit_verification(
    conn: &Connection,
    scope: &WorkspaceScope,
    request: &VerificationRequest,
    actor: &UserId,
    now: Timestamp,
) -> Result<Verification, AppError> {
    let workspace_id = scope.id();
    let refs = serde_json::to_string(&request.document_refs).map_err(AppError::internal)?;
    conn.prepare_cached(
        "INSERT INTO verifications (workspace_id, status, business_name, country, website,
                                    document_refs, submitted_by, submitted_at)
         VALUES (:workspace_id, 'pending', :name, :country, :website, :refs, :actor, :now)
         ON CONFLICT (workspace_id) DO UPDATE SET
             status = 'pending', business_name = excluded.business_name,
             country = excluded.country, website = excluded.website,
             document_refs = excluded.document_refs, rejection_reason = NULL,
             submitted_by = excluded.submitted_by, submitted_at = excluded.submitted_at,
             decided_by = NULL, decided_at = NULL",
    )?
    .execute(named_params! {
        ":workspace_id": workspace_id, ":name": request.business_name, ":country": request.country,
        ":website": request.website, ":refs": refs, ":actor": actor, ":now": format_timestamp(now),
    })?;
    find_verification(conn, scope)?.ok_or_else(|| AppError::internal("verification vanished"))
}

/// Which request an instance admin decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    SenderId,
    Verification,
}

impl Subject {
    fn table(self) -> &'static str {
        match self {
            Subject::SenderId => "sender_ids",
            Subject::Verification => "verifications",
        }
    }

    /// The column a reviewer's `expected` value is compared with: what they looked at.
    fn reviewed_column(self) -> &'static str {
        match self {
            Subject::SenderId => "sender_id",
            Subject::Verification => "submitted_at",
        }
    }

    fn approved_status(self) -> &'static str {
        match self {
            Subject::SenderId => "approved",
            Subject::Verification => "verified",
        }
    }
}

/// An instance admin's decision on a pending request.
pub struct Decision<'a> {
    /// `None` approves; `Some(reason)` rejects.
    pub rejection_reason: Option<&'a str>,
    /// What the admin reviewed — the sender ID, or the verification's `submitted_at` — so a
    /// request changed since cannot be decided by mistake (409). `None` decides whatever is
    /// pending.
    pub expected: Option<&'a str>,
    pub admin_id: &'a UserId,
}

/// Approves or rejects a pending request of the workspace. Nothing pending → 404; pending but
/// not what the admin reviewed → 409.
pub fn decide(
    conn: &Connection,
    subject: Subject,
    workspace_id: &WorkspaceId,
    decision: &Decision<'_>,
    now: Timestamp,
) -> Result<(), AppError> {
    let Decision {
        rejection_reason,
        expected,
        admin_id,
    } = *decision;
    let status = match rejection_reason {
        Some(_) => "rejected",
        None => subject.approved_status(),
    };
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE {} SET status = :status, rejection_reason = :reason, decided_by = :admin,
                           decided_at = :now
             WHERE workspace_id = :workspace_id AND status = 'pending'
               AND (:expected IS NULL OR {} = :expected)",
            subject.table(),
            subject.reviewed_column()
        ))?
        .execute(named_params! {
            ":status": status, ":reason": rejection_reason, ":admin": admin_id,
            ":now": format_timestamp(now), ":workspace_id": workspace_id, ":expected": expected,
        })?;
    if changed == 0 {
        let pending: bool = conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE workspace_id = ?1 AND status = 'pending')",
                subject.table()
            ))?
            .query_row([workspace_id], |row| row.get(0))?;
        return Err(if pending {
            AppError::Conflict(
                "The request changed since you reviewed it; review it again.".to_owned(),
            )
        } else {
            AppError::NotFound
        });
    }
    Ok(())
}

/// A workspace's sender ID request as an instance admin reviews it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderIdReview {
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub sender_id: SenderId,
}

/// A workspace's verification as an instance admin reviews it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationReview {
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub verification: Verification,
}

/// One page of the instance's sender ID requests in `status`, oldest request first (workspace
/// id breaks ties), after the cursor `after` (a workspace id: the last one of the previous
/// page). A cursor without a sender ID request gives an empty page.
pub fn list_sender_ids(
    conn: &Connection,
    status: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<SenderIdReview>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.workspace_id, w.name, s.sender_id, s.status, s.rejection_reason, s.requested_at
         FROM sender_ids s JOIN workspaces w ON w.id = s.workspace_id
         WHERE s.status = :status
           AND (:after IS NULL OR (s.requested_at, s.workspace_id) >
                (SELECT requested_at, workspace_id FROM sender_ids WHERE workspace_id = :after))
         ORDER BY s.requested_at, s.workspace_id LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! { ":status": status, ":after": after, ":limit": limit as i64 },
        |row| {
            Ok(SenderIdReview {
                workspace_id: row.get(0)?,
                workspace_name: row.get(1)?,
                sender_id: SenderId {
                    sender_id: row.get(2)?,
                    status: row.get(3)?,
                    rejection_reason: row.get(4)?,
                    requested_at: row.get(5)?,
                },
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One page of the instance's verifications in `status`, oldest submission first (workspace id
/// breaks ties), after the cursor `after` (a workspace id: the last one of the previous page).
/// A cursor without a verification gives an empty page.
pub fn list_verifications(
    conn: &Connection,
    status: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<VerificationReview>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.status, v.business_name, v.country, v.website, v.document_refs,
                v.rejection_reason, v.submitted_at, v.workspace_id, w.name
         FROM verifications v JOIN workspaces w ON w.id = v.workspace_id
         WHERE v.status = :status
           AND (:after IS NULL OR (v.submitted_at, v.workspace_id) >
                (SELECT submitted_at, workspace_id FROM verifications WHERE workspace_id = :after))
         ORDER BY v.submitted_at, v.workspace_id LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! { ":status": status, ":after": after, ":limit": limit as i64 },
        |row| {
            Ok(VerificationReview {
                verification: verification_from_row(row)?,
                workspace_id: row.get(7)?,
                workspace_name: row.get(8)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The workspace's effective sender, read from its sender ID and verification.
pub fn effective_sender_of(
    conn: &Connection,
    scope: &WorkspaceScope,
    default_sender: &str,
) -> Result<String, AppError> {
    let sender_id = find_sender_id(conn, scope)?;
    let verification = find_verification(conn, scope)?;
    Ok(effective_sender(
        sender_id.as_ref(),
        verification.as_ref(),
        default_sender,
    ))
}

/// The sender SMS go out with: the approved sender ID when the workspace is verified, else the
/// instance default.
pub fn effective_sender(
    sender_id: Option<&SenderId>,
    verification: Option<&Verification>,
    default_sender: &str,
) -> String {
    let verified = verification.is_some_and(|v| v.status == "verified");
    match sender_id {
        Some(sender) if verified && sender.status == "approved" => sender.sender_id.clone(),
        _ => default_sender.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_id_rules() {
        assert_eq!(normalize_sender_id(" Acme Shop ").unwrap(), "ACME SHOP");
        assert_eq!(normalize_sender_id("abc").unwrap(), "ABC");
        assert_eq!(normalize_sender_id("A1234567890").unwrap(), "A1234567890");
        for bad in ["ab", "A12345678901", "1234", "AC-ME", "ÉCOLE", "   "] {
            assert!(normalize_sender_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_effective_sender_needs_approval_and_verification() {
        let sender = |status: &str| SenderId {
            sender_id: "ACME".into(),
            status: status.into(),
            rejection_reason: None,
            requested_at: "t".into(),
        };
        let verification = |status: &str| Verification {
            status: status.into(),
            business_name: "Acme".into(),
            country: "CM".into(),
            website: None,
            document_refs: vec![],
            rejection_reason: None,
            submitted_at: "t".into(),
        };
        let cases = [
            (
                Some(sender("approved")),
                Some(verification("verified")),
                "ACME",
            ),
            (
                Some(sender("approved")),
                Some(verification("pending")),
                "CRIER",
            ),
            (
                Some(sender("pending")),
                Some(verification("verified")),
                "CRIER",
            ),
            (None, Some(verification("verified")), "CRIER"),
            (Some(sender("approved")), None, "CRIER"),
        ];
        for (sender, verification, expected) in cases {
            assert_eq!(
                effective_sender(sender.as_ref(), verification.as_ref(), "CRIER"),
                expected
            );
        }
    }
}
