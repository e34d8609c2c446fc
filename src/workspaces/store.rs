//! SQL for workspaces, memberships and invitations.

use rusqlite::{Connection, OptionalExtension, named_params};

use crate::billing::store::BillingAccount;
use crate::error::AppError;
use crate::ids::{UserId, WorkspaceId};
use crate::users::store::{User, user_from_row};
use crate::workspaces::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: String,
}

pub fn insert_workspace(conn: &Connection, workspace: &Workspace) -> Result<(), AppError> {
    conn.prepare_cached("INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![
            &workspace.id,
            &workspace.name,
            &workspace.created_at
        ])?;
    Ok(())
}

pub fn find_workspace(conn: &Connection, id: &WorkspaceId) -> Result<Option<Workspace>, AppError> {
    Ok(conn
        .prepare_cached("SELECT id, name, created_at FROM workspaces WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(Workspace {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
            })
        })
        .optional()?)
}

/// Workspaces with exactly this name (names are not unique).
pub fn find_workspaces_named(conn: &Connection, name: &str) -> Result<Vec<Workspace>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, created_at FROM workspaces WHERE name = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([name], |row| {
        Ok(Workspace {
            id: row.get(0)?,
            name: row.get(1)?,
            created_at: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn rename_workspace(conn: &Connection, id: &WorkspaceId, name: &str) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE workspaces SET name = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![id, name])?;
    Ok(())
}

/// A workspace as the instance admin sees it in the list of every workspace: its billing
/// account, where its verification and sender ID stand, how many members it has and who owns it.
#[derive(Debug, Clone)]
pub struct WorkspaceOverview {
    pub workspace: Workspace,
    pub account: BillingAccount,
    /// `pending`, `verified` or `rejected`; `None` when it never submitted one.
    pub verification_status: Option<String>,
    /// The requested sender ID and its status (`pending`, `approved`, `rejected`).
    pub sender_id: Option<(String, String)>,
    pub member_count: u64,
    /// The longest-standing owner's email (a workspace always has one; `None` only if the rows
    /// say otherwise).
    pub owner_email: Option<String>,
}

/// The overview columns, read in one statement: `sender_ids` and `verifications` are at most
/// one row per workspace (their key is the workspace), members and owner are correlated
/// subqueries over the memberships' primary key, so a page costs one query whatever its size.
/// Billing owns the plan and wallet columns and the two review tables; this read only joins them
/// for display, it never decides anything from them.
const OVERVIEW_SELECT: &str = "
    SELECT w.id, w.plan_code, w.plan_activated_at, w.plan_period_end, w.wallet_currency,
           w.wallet_balance_minor, w.custom_included_sms_per_month,
           w.custom_included_email_per_day, w.low_balance_threshold_minor, w.name, w.created_at,
           v.status, s.sender_id, s.status,
           (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id),
           (SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.workspace_id = w.id AND m.role = 'owner'
            ORDER BY m.created_at, m.rowid LIMIT 1)
    FROM workspaces w
    LEFT JOIN verifications v ON v.workspace_id = w.id
    LEFT JOIN sender_ids s ON s.workspace_id = w.id";

fn overview_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkspaceOverview> {
    let sender_id: Option<String> = row.get(12)?;
    let sender_status: Option<String> = row.get(13)?;
    Ok(WorkspaceOverview {
        workspace: Workspace {
            id: row.get(0)?,
            name: row.get(9)?,
            created_at: row.get(10)?,
        },
        account: BillingAccount::from_row(row, 0)?,
        verification_status: row.get(11)?,
        sender_id: sender_id.zip(sender_status),
        member_count: u64::try_from(row.get::<_, i64>(14)?).unwrap_or(0),
        owner_email: row.get(15)?,
    })
}

/// One page of every workspace on the instance, newest first (rowid: creation order), after the
/// cursor `before` (a workspace id: the last one of the previous page), narrowed to names that
/// contain `name_contains` without regard to ASCII case. A cursor that is no workspace gives an
/// empty page.
pub fn page_all_workspaces(
    conn: &Connection,
    name_contains: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<WorkspaceOverview>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{OVERVIEW_SELECT}
         WHERE (:q IS NULL OR instr(lower(w.name), lower(:q)) > 0)
           AND (:before IS NULL OR w.rowid < (SELECT rowid FROM workspaces WHERE id = :before))
         ORDER BY w.rowid DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! { ":q": name_contains, ":before": before, ":limit": limit as i64 },
        overview_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One workspace's overview, as `page_all_workspaces` shows it.
pub fn find_workspace_overview(
    conn: &Connection,
    id: &WorkspaceId,
) -> Result<Option<WorkspaceOverview>, AppError> {
    Ok(conn
        .prepare_cached(&format!("{OVERVIEW_SELECT} WHERE w.id = ?1"))?
        .query_row([id], overview_from_row)
        .optional()?)
}

pub fn insert_membership(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: &UserId,
    role: Role,
    now: &str,
) -> Result<(), AppError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO memberships (workspace_id, user_id, role, created_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(rusqlite::params![workspace_id, user_id, role.as_str(), now])?;
    if inserted == 0 {
        return Err(AppError::Conflict(
            "This user is already a member of the workspace.".to_owned(),
        ));
    }
    Ok(())
}

pub fn find_role(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: &UserId,
) -> Result<Option<Role>, AppError> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM memberships WHERE workspace_id = ?1 AND user_id = ?2")?
        .query_row(rusqlite::params![workspace_id, user_id], |row| row.get(0))
        .optional()?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// Every workspace of the user with their role, oldest membership first (rowid, i.e. join order,
/// breaks ties between memberships made in the same millisecond). For sign-in and the session's
/// own view; the list endpoint pages with `page_user_workspaces`.
pub fn list_user_workspaces(
    conn: &Connection,
    user_id: &UserId,
) -> Result<Vec<(Workspace, Role)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.id, w.name, w.created_at, m.role
         FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.user_id = ?1 ORDER BY m.created_at, m.rowid",
    )?;
    let rows = stmt.query_map([user_id], workspace_with_role)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One page of the user's workspaces in the order of `list_user_workspaces`, after the cursor
/// `after` (a workspace id: the last one of the previous page). A cursor that is not one of the
/// user's workspaces gives an empty page.
pub fn page_user_workspaces(
    conn: &Connection,
    user_id: &UserId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(Workspace, Role)>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.id, w.name, w.created_at, m.role
         FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.user_id = :user_id
           AND (:after IS NULL OR (m.created_at, m.rowid) >
                (SELECT created_at, rowid FROM memberships
                 WHERE user_id = :user_id AND workspace_id = :after))
         ORDER BY m.created_at, m.rowid LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! { ":user_id": user_id, ":after": after, ":limit": limit as i64 },
        workspace_with_role,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn workspace_with_role(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Workspace, Role)> {
    let role: String = row.get(3)?;
    Ok((
        Workspace {
            id: row.get(0)?,
            name: row.get(1)?,
            created_at: row.get(2)?,
        },
        Role::parse(&role).unwrap_or(Role::Member),
    ))
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: String,
}

/// One page of the workspace's members, longest-standing first (rowid breaks ties between
/// memberships made in the same millisecond), after the cursor `after` (a user id: the last
/// member of the previous page). A cursor that is not a member gives an empty page.
pub fn list_members(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Member>, AppError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.email, u.name, u.password_hash, u.is_instance_admin, u.created_at,
                m.role, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = :workspace_id
           AND (:after IS NULL OR (m.created_at, m.rowid) >
                (SELECT created_at, rowid FROM memberships
                 WHERE workspace_id = :workspace_id AND user_id = :after))
         ORDER BY m.created_at, m.rowid LIMIT :limit",
    )?;
    let rows = stmt.query_map(
        named_params! { ":workspace_id": workspace_id, ":after": after, ":limit": limit as i64 },
        member_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn find_member(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: &UserId,
) -> Result<Option<Member>, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.email, u.name, u.password_hash, u.is_instance_admin, u.created_at,
                    m.role, m.created_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = ?1 AND m.user_id = ?2",
        )?
        .query_row(rusqlite::params![workspace_id, user_id], member_from_row)
        .optional()?)
}

/// Six user columns (`auth::store::user_from_row`), then role and joined-at.
fn member_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    let role: String = row.get(6)?;
    Ok(Member {
        user: user_from_row(row)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        joined_at: row.get(7)?,
    })
}

pub fn count_owners(conn: &Connection, workspace_id: &WorkspaceId) -> Result<i64, AppError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM memberships WHERE workspace_id = ?1 AND role = 'owner'",
        )?
        .query_row([workspace_id], |row| row.get(0))?)
}

pub fn update_role(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: &UserId,
    role: Role,
) -> Result<(), AppError> {
    conn.prepare_cached(
        "UPDATE memberships SET role = ?3 WHERE workspace_id = ?1 AND user_id = ?2",
    )?
    .execute(rusqlite::params![workspace_id, user_id, role.as_str()])?;
    Ok(())
}

pub fn delete_membership(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: &UserId,
) -> Result<(), AppError> {
    conn.prepare_cached("DELETE FROM memberships WHERE workspace_id = ?1 AND user_id = ?2")?
        .execute(rusqlite::params![workspace_id, user_id])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: String,
    pub expires_at: String,
}

const INVITATION_COLUMNS: &str =
    "id, workspace_id, email, role, invited_by, created_at, expires_at";

fn invitation_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Invitation> {
    let role: String = row.get(3)?;
    Ok(Invitation {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        email: row.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        invited_by: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

pub fn insert_invitation(
    conn: &Connection,
    invitation: &Invitation,
    token_hash: &[u8],
) -> Result<(), AppError> {
    conn.prepare_cached(
        "INSERT INTO invitations (id, workspace_id, email, role, token_hash, invited_by, created_at, expires_at)
         VALUES (:id, :workspace_id, :email, :role, :token_hash, :invited_by, :created_at, :expires_at)",
    )?
    .execute(named_params! {
        ":id": invitation.id, ":workspace_id": invitation.workspace_id, ":email": invitation.email,
        ":role": invitation.role.as_str(), ":token_hash": token_hash,
        ":invited_by": invitation.invited_by, ":created_at": invitation.created_at,
        ":expires_at": invitation.expires_at,
    })?;
    Ok(())
}

/// A pending invitation (not accepted, not revoked, not expired at `now`) by its token's hash.
pub fn find_pending_invitation(
    conn: &Connection,
    token_hash: &[u8],
    now: &str,
) -> Result<Option<Invitation>, AppError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations
             WHERE token_hash = ?1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?2"
        ))?
        .query_row(rusqlite::params![token_hash, now], invitation_from_row)
        .optional()?)
}

/// One page of the workspace's pending invitations at `now`, newest id first, after the cursor
/// `before` (an invitation id: the last one of the previous page; it may have been accepted or
/// revoked since and still marks the place). A cursor that is not one of the workspace's
/// invitations gives an empty page.
pub fn list_pending_invitations(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    now: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<Invitation>, AppError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations
         WHERE workspace_id = :workspace_id AND accepted_at IS NULL AND revoked_at IS NULL
           AND expires_at > :now
           AND (:before IS NULL OR id <
                (SELECT id FROM invitations WHERE workspace_id = :workspace_id AND id = :before))
         ORDER BY id DESC LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! {
            ":workspace_id": workspace_id, ":now": now, ":before": before, ":limit": limit as i64,
        },
        invitation_from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a pending invitation of the workspace; `false` when there is none with that id.
pub fn revoke_invitation(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    id: &str,
    now: &str,
) -> Result<bool, AppError> {
    Ok(conn
        .prepare_cached(
            "UPDATE invitations SET revoked_at = ?3
             WHERE workspace_id = ?1 AND id = ?2 AND accepted_at IS NULL AND revoked_at IS NULL",
        )?
        .execute(rusqlite::params![workspace_id, id, now])?
        == 1)
}

pub fn mark_invitation_accepted(conn: &Connection, id: &str, now: &str) -> Result<(), AppError> {
    conn.prepare_cached("UPDATE invitations SET accepted_at = ?2 WHERE id = ?1")?
        .execute([id, now])?;
    Ok(())
}
