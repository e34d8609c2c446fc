//! Workspaces and the people in them: membership roles, the last-owner rule, invitations.
//!
//! Rules (docs/rules/access.md): owners, admins manage members, invitations; only an owner may grant the
//! owner role or change or remove an owner; the last owner can never leave, be removed or be
//! demoted. Everything is scoped to the caller's workspace: another workspace's member or
//! invitation is `not_found`.

pub mod store;

use crate::ids::{UserId, WorkspaceId};
use chrono::Duration;
use rusqlite::Connection;

use crate::clock::{Timestamp, format_timestamp};
use crate::error::AppError;
use crate::ids::Ids;
use crate::scope::WorkspaceScope;
use crate::secrets;
use store::{Invitation, Member, Workspace};

/// Invitations can be accepted for this long.
pub fn invitation_lifetime() -> Duration {
    Duration::days(7)
}

fn only_owners(what: &str) -> AppError {
    AppError::Forbidden(format!("Only an owner can {what}."))
}

fn last_owner() -> AppError {
    AppError::Conflict(
        "The workspace's last owner cannot leave, be removed or be demoted; make someone else an owner first."
            .to_owned(),
    )
}

/// The actor's role as it stands inside this transaction (a demotion committed since the
/// request was authenticated counts). Not a member any more → `not_found`.
fn actor_role(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    actor_id: &UserId,
) -> Result<Role, AppError> {
    store::find_role(conn, workspace_id, actor_id)?.ok_or(AppError::NotFound)
}

fn require_admin(role: Role) -> Result<(), AppError> {
    if role < Role::Admin {
        return Err(AppError::Forbidden(
            "This needs the admin role or higher in the workspace.".to_owned(),
        ));
    }
    Ok(())
}

/// Changes `user_id`'s role in `workspace_id` on behalf of `actor_id` (an admin or owner).
pub fn change_role(
    conn: &Connection,
    scope: &WorkspaceScope,
    actor_id: &UserId,
    user_id: &UserId,
    new_role: Role,
) -> Result<Member, AppError> {
    let workspace_id = scope.id();
    let actor_role = actor_role(conn, workspace_id, actor_id)?;
    require_admin(actor_role)?;
    let member = store::find_member(conn, workspace_id, user_id)?.ok_or(AppError::NotFound)?;
    if (new_role == Role::Owner || member.role == Role::Owner) && actor_role != Role::Owner {
        return Err(only_owners(
            "grant the owner role or change an owner's role",
        ));
    }
    if member.role == Role::Owner
        && new_role != Role::Owner
        && store::count_owners(conn, workspace_id)? <= 1
    {
        return Err(last_owner());
    }
    store::update_role(conn, workspace_id, user_id, new_role)?;
    store::find_member(conn, workspace_id, user_id)?.ok_or(AppError::NotFound)
}

/// Removes `user_id` from `workspace_id`. Anyone may leave; removing someone else needs admin,
/// removing an owner needs owner; the last owner stays.
pub fn remove_member(
    conn: &Connection,
    scope: &WorkspaceScope,
    actor_id: &UserId,
    user_id: &UserId,
) -> Result<(), AppError> {
    let workspace_id = scope.id();
    let actor_role = actor_role(conn, workspace_id, actor_id)?;
    let member = store::find_member(conn, workspace_id, user_id)?.ok_or(AppError::NotFound)?;
    if user_id != actor_id {
        if actor_role < Role::Admin {
            return Err(AppError::Forbidden(
                "Only owners and admins can remove other members.".to_owned(),
            ));
        }
        if member.role == Role::Owner && actor_role != Role::Owner {
            return Err(only_owners("remove an owner"));
        }
    }
    if member.role == Role::Owner && store::count_owners(conn, workspace_id)? <= 1 {
        return Err(last_owner());
    }
    store::delete_membership(conn, workspace_id, user_id)
}

/// A new invitation; the token is shown once and stored only as a hash.
pub struct CreatedInvitation {
    pub invitation: Invitation,
    pub token: String,
}

/// Invites `email` into `workspace_id` with `role` on behalf of `actor_id` (an admin or owner).
pub fn invite(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    actor_id: &UserId,
    email: &str,
    role: Role,
    now: Timestamp,
) -> Result<CreatedInvitation, AppError> {
    let workspace_id = scope.id();
    let actor_role = actor_role(conn, workspace_id, actor_id)?;
    require_admin(actor_role)?;
    if role == Role::Owner && actor_role != Role::Owner {
        return Err(only_owners("invite an owner"));
    }
    if let Some(user) = crate::users::find_by_email(conn, email)?
        && store::find_role(conn, workspace_id, &user.id)?.is_some()
    {
        return Err(AppError::Conflict(
            "This person is already a member of the workspace.".to_owned(),
        ));
    }
    let token = secrets::new_token(ids);
    let invitation = Invitation {
        id: ids.new_id("inv"),
        workspace_id: workspace_id.to_owned(),
        email: email.to_owned(),
        role,
        invited_by: actor_id.clone(),
        created_at: format_timestamp(now),
        expires_at: format_timestamp(now + invitation_lifetime()),
    };
    store::insert_invitation(conn, &invitation, &secrets::token_hash(&token))?;
    Ok(CreatedInvitation { invitation, token })
}

/// Accepts the invitation behind `token` for `user_id` (who must have the invited email):
/// membership added, invitation used up. Unknown, used, revoked or expired → `not_found`; so is
/// an invitation whose inviter may no longer grant its role (removed or demoted since), which
/// keeps a removed admin from walking back in through invitations they made.
pub fn accept_invitation(
    conn: &Connection,
    token: &str,
    user_id: &UserId,
    now: Timestamp,
) -> Result<Invitation, AppError> {
    let now_text = format_timestamp(now);
    let invitation = store::find_pending_invitation(conn, &secrets::token_hash(token), &now_text)?
        .ok_or(AppError::NotFound)?;
    let inviter_role = store::find_role(conn, &invitation.workspace_id, &invitation.invited_by)?;
    let needed = if invitation.role == Role::Owner {
        Role::Owner
    } else {
        Role::Admin
    };
    if inviter_role.is_none_or(|role| role < needed) {
        return Err(AppError::NotFound);
    }
    let user = crate::users::find(conn, user_id)?.ok_or(AppError::NotFound)?;
    if user.email != invitation.email {
        return Err(AppError::Forbidden(
            "This invitation was sent to another email address.".to_owned(),
        ));
    }
    store::insert_membership(
        conn,
        &invitation.workspace_id,
        user_id,
        invitation.role,
        &now_text,
    )?;
    store::mark_invitation_accepted(conn, &invitation.id, &now_text)?;
    Ok(invitation)
}

/// A member's role in a workspace. Ordered: `Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// The user's role in the workspace, if a member.
pub fn role_of(
    conn: &Connection,
    workspace_id: &WorkspaceId,
    user_id: &UserId,
) -> Result<Option<Role>, AppError> {
    store::find_role(conn, workspace_id, user_id)
}

/// The workspace the user joined first, with their role there: where a new session starts.
pub fn first_workspace_of(
    conn: &Connection,
    user_id: &UserId,
) -> Result<Option<(Workspace, Role)>, AppError> {
    Ok(store::page_user_workspaces(conn, user_id, None, 1)?
        .into_iter()
        .next())
}

/// Creates a workspace owned by `owner_id`, with a wallet in `currency`.
pub fn create_workspace(
    conn: &Connection,
    ids: &Ids,
    name: &str,
    owner_id: &UserId,
    currency: &str,
    now: Timestamp,
) -> Result<Workspace, AppError> {
    let workspace = Workspace {
        id: WorkspaceId::generate(ids),
        name: name.to_owned(),
        created_at: format_timestamp(now),
    };
    store::insert_workspace(conn, &workspace)?;
    store::insert_membership(
        conn,
        &workspace.id,
        owner_id,
        Role::Owner,
        &workspace.created_at,
    )?;
    crate::billing::open_wallet(conn, &workspace.id, currency)?;
    Ok(workspace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use crate::ids::SeededRandom;
    use crate::users::{NewUser, create_user};
    use crate::workspaces::create_workspace;
    use chrono::TimeZone;
    use std::sync::Arc;

    struct Fixture {
        conn: Connection,
        ids: Ids,
        now: Timestamp,
        workspace: crate::ids::WorkspaceId,
        scope: WorkspaceScope,
        owner: crate::ids::UserId,
    }

    fn fixture() -> Fixture {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::run(&mut conn).unwrap();
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let ids = Ids::new(
            Arc::new(ManualClock::new(now)),
            Arc::new(SeededRandom::new(1)),
        );
        let owner = add_user(&conn, &ids, "owner@x.io", now);
        let workspace = create_workspace(&conn, &ids, "Acme", &owner, "XAF", now)
            .unwrap()
            .id;
        Fixture {
            conn,
            ids,
            now,
            scope: WorkspaceScope::trusted(&workspace),
            workspace,
            owner,
        }
    }

    fn add_user(conn: &Connection, ids: &Ids, email: &str, now: Timestamp) -> crate::ids::UserId {
        let new_user = NewUser {
            email: email.to_owned(),
            name: "N".to_owned(),
            password_hash: "x".to_owned(),
        };
        create_user(conn, ids, new_user, false, now).unwrap().id
    }

    fn join(f: &Fixture, email: &str, role: Role) -> crate::ids::UserId {
        let user = add_user(&f.conn, &f.ids, email, f.now);
        store::insert_membership(
            &f.conn,
            &f.workspace,
            &user,
            role,
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap();
        user
    }

    #[test]
    fn the_last_owner_can_neither_leave_nor_be_demoted() {
        let f = fixture();
        let err = remove_member(&f.conn, &f.scope, &f.owner, &f.owner).unwrap_err();
        assert_eq!(err.code(), "conflict");
        let err = change_role(&f.conn, &f.scope, &f.owner, &f.owner, Role::Admin).unwrap_err();
        assert_eq!(err.code(), "conflict");
        // With a second owner, the first may step down.
        let second = join(&f, "second@x.io", Role::Owner);
        change_role(&f.conn, &f.scope, &f.owner, &f.owner, Role::Admin).unwrap();
        assert_eq!(
            store::find_role(&f.conn, &f.workspace, &second).unwrap(),
            Some(Role::Owner)
        );
        assert_eq!(store::count_owners(&f.conn, &f.workspace).unwrap(), 1);
    }

    #[test]
    fn admins_cannot_touch_owners_or_grant_ownership() {
        let f = fixture();
        let admin = join(&f, "admin@x.io", Role::Admin);
        let member = join(&f, "member@x.io", Role::Member);
        for err in [
            change_role(&f.conn, &f.scope, &admin, &f.owner, Role::Member).unwrap_err(),
            change_role(&f.conn, &f.scope, &admin, &member, Role::Owner).unwrap_err(),
            remove_member(&f.conn, &f.scope, &admin, &f.owner).unwrap_err(),
        ] {
            assert_eq!(err.code(), "forbidden");
        }
        assert_eq!(
            store::find_role(&f.conn, &f.workspace, &f.owner).unwrap(),
            Some(Role::Owner)
        );
        change_role(&f.conn, &f.scope, &admin, &member, Role::Admin).unwrap();
        remove_member(&f.conn, &f.scope, &admin, &member).unwrap();
        assert_eq!(
            store::find_role(&f.conn, &f.workspace, &member).unwrap(),
            None
        );
    }

    #[test]
    fn members_may_leave_but_not_remove_others() {
        let f = fixture();
        let alice = join(&f, "alice@x.io", Role::Member);
        let bob = join(&f, "bob@x.io", Role::Member);
        let err = remove_member(&f.conn, &f.scope, &alice, &bob).unwrap_err();
        assert_eq!(err.code(), "forbidden");
        remove_member(&f.conn, &f.scope, &alice, &alice).unwrap();
        assert_eq!(
            store::find_role(&f.conn, &f.workspace, &alice).unwrap(),
            None
        );
    }

    #[test]
    fn an_invitation_is_accepted_once_by_its_email_only() {
        let f = fixture();
        let created = invite(
            &f.conn,
            &f.ids,
            &f.scope,
            &f.owner,
            "new@x.io",
            Role::Admin,
            f.now,
        )
        .unwrap();
        let stranger = add_user(&f.conn, &f.ids, "stranger@x.io", f.now);
        let err = accept_invitation(&f.conn, &created.token, &stranger, f.now).unwrap_err();
        assert_eq!(err.code(), "forbidden");
        let invitee = add_user(&f.conn, &f.ids, "new@x.io", f.now);
        accept_invitation(&f.conn, &created.token, &invitee, f.now).unwrap();
        assert_eq!(
            store::find_role(&f.conn, &f.workspace, &invitee).unwrap(),
            Some(Role::Admin)
        );
        let again = accept_invitation(&f.conn, &created.token, &invitee, f.now).unwrap_err();
        assert_eq!(again.code(), "not_found");
    }

    #[test]
    fn an_invitation_dies_with_its_inviters_rights() {
        let f = fixture();
        let admin = join(&f, "admin@x.io", Role::Admin);
        let created = invite(
            &f.conn,
            &f.ids,
            &f.scope,
            &admin,
            "friend@x.io",
            Role::Admin,
            f.now,
        )
        .unwrap();
        remove_member(&f.conn, &f.scope, &f.owner, &admin).unwrap();
        let friend = add_user(&f.conn, &f.ids, "friend@x.io", f.now);
        let err = accept_invitation(&f.conn, &created.token, &friend, f.now).unwrap_err();
        assert_eq!(err.code(), "not_found");
        assert_eq!(
            store::find_role(&f.conn, &f.workspace, &friend).unwrap(),
            None
        );
    }

    #[test]
    fn a_demoted_actor_acts_with_their_current_role() {
        let f = fixture();
        let admin = join(&f, "admin@x.io", Role::Admin);
        let member = join(&f, "member@x.io", Role::Member);
        change_role(&f.conn, &f.scope, &f.owner, &admin, Role::Member).unwrap();
        let err = change_role(&f.conn, &f.scope, &admin, &member, Role::Admin).unwrap_err();
        assert_eq!(err.code(), "forbidden");
    }

    #[test]
    fn an_expired_invitation_is_not_found() {
        let f = fixture();
        let created = invite(
            &f.conn,
            &f.ids,
            &f.scope,
            &f.owner,
            "late@x.io",
            Role::Member,
            f.now,
        )
        .unwrap();
        let invitee = add_user(&f.conn, &f.ids, "late@x.io", f.now);
        let later = f.now + invitation_lifetime() + Duration::seconds(1);
        assert_eq!(
            accept_invitation(&f.conn, &created.token, &invitee, later)
                .unwrap_err()
                .code(),
            "not_found"
        );
    }
}
