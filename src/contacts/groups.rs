//! Groups of contacts (docs/rules/contacts.md, "Groups"): named sets of contacts in one
//! workspace and mode. Membership changes take a list of contact ids that must all be the
//! caller's: one bad id refuses the whole call, so a client never half-applies a list.

use std::collections::BTreeSet;

use rusqlite::Connection;
use serde::Deserialize;

use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::store::{self, GroupRow};
use crate::error::AppError;
use crate::ids::{ContactId, GroupId, Ids};
use crate::scope::WorkspaceScope;
use crate::validate;
use crate::vocabulary::Mode;

const MAX_GROUP_NAME_LENGTH: usize = 100;
/// The most contact ids one membership call takes.
pub const MAX_IDS_PER_CALL: usize = 10_000;
/// How many refused ids the error sentence names (all are in `details.invalid_ids`).
const IDS_NAMED_IN_MESSAGE: usize = 20;

/// The body of `POST /v1/groups` and `PATCH /v1/groups/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupName {
    pub name: Option<String>,
}

/// The body of `POST` and `DELETE /v1/groups/{id}/contacts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactIds {
    #[serde(default)]
    pub contact_ids: Vec<String>,
}

/// What adding contacts did: how many joined, how many were members already (the API's answer
/// as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Added {
    pub added: usize,
    pub already_members: usize,
}

/// What removing contacts did: how many left, how many were not members (the API's answer as
/// is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    pub removed: usize,
    pub not_members: usize,
}

fn checked_name(input: GroupName) -> Result<String, AppError> {
    validate::text(
        input.name.as_deref().unwrap_or_default(),
        1,
        MAX_GROUP_NAME_LENGTH,
    )
    .map_err(|reason| AppError::invalid_field("name", reason))
}

/// 409 naming the group (other than `except`) of the same workspace and mode with this name.
fn ensure_unique_name(
    conn: &Connection,
    group: &GroupRow,
    except: Option<&GroupId>,
) -> Result<(), AppError> {
    let existing =
        store::find_group_id_by_name(conn, &group.workspace_id, group.mode, &group.name)?;
    match existing {
        Some(existing) if Some(&existing) != except => Err(AppError::Duplicate {
            message: format!("The group {existing} already has this name."),
            existing_id: existing.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Creates an empty group in `mode`. 422 for a bad name, 409 for a name already taken.
pub fn create_group(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    mode: Mode,
    input: GroupName,
    now: Timestamp,
) -> Result<GroupRow, AppError> {
    let now = format_timestamp(now);
    let group = GroupRow {
        id: GroupId::generate(ids),
        workspace_id: scope.id().clone(),
        mode,
        name: checked_name(input)?,
        member_count: 0,
        created_at: now.clone(),
        updated_at: now,
    };
    ensure_unique_name(conn, &group, None)?;
    store::insert_group(conn, &group)?;
    Ok(group)
}

/// The group `id` of the workspace in `mode` (404 for any other).
pub fn find_group(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &GroupId,
) -> Result<GroupRow, AppError> {
    store::find_group(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

/// Renames a group, checked as on creation.
pub fn rename_group(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &GroupId,
    input: GroupName,
    now: Timestamp,
) -> Result<GroupRow, AppError> {
    let mut group = find_group(conn, scope, mode, id)?;
    group.name = checked_name(input)?;
    ensure_unique_name(conn, &group, Some(id))?;
    group.updated_at = format_timestamp(now);
    store::rename_group(conn, &group)?;
    Ok(group)
}

/// Deletes a group and its memberships; the contacts stay.
pub fn delete_group(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &GroupId,
) -> Result<(), AppError> {
    if store::delete_group(conn, scope.id(), mode, id)? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

fn invalid_ids(reason: impl Into<String>, ids: Vec<String>) -> AppError {
    AppError::InvalidIds {
        field: "contact_ids",
        reason: reason.into(),
        ids,
    }
}

/// The ids sent, each once, all of them contacts (not deleted) of the workspace in `mode`.
/// Otherwise 422: a count outside 1–`MAX_IDS_PER_CALL`, or the ids that are malformed, unknown,
/// deleted, of another workspace or of the other mode.
fn checked_contact_ids(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    input: ContactIds,
) -> Result<Vec<ContactId>, AppError> {
    let sent = input.contact_ids.len();
    if !(1..=MAX_IDS_PER_CALL).contains(&sent) {
        return Err(AppError::invalid_field(
            "contact_ids",
            format!("must hold 1 to {MAX_IDS_PER_CALL} ids; {sent} were sent"),
        ));
    }
    let mut bad = Vec::new();
    let mut wanted = BTreeSet::new();
    for text in input.contact_ids {
        match ContactId::parse(&text) {
            Some(id) => {
                wanted.insert(id);
            }
            None => bad.push(text),
        }
    }
    let wanted: Vec<ContactId> = wanted.into_iter().collect();
    let found: BTreeSet<ContactId> = store::existing_contact_ids(conn, scope.id(), mode, &wanted)?
        .into_iter()
        .collect();
    bad.extend(
        wanted
            .iter()
            .filter(|id| !found.contains(*id))
            .map(ContactId::to_string),
    );
    if bad.is_empty() {
        Ok(wanted)
    } else {
        Err(invalid_ids(refusal_sentence(&bad), bad))
    }
}

/// Names the first `IDS_NAMED_IN_MESSAGE` refused ids, and how many more there are.
fn refusal_sentence(bad: &[String]) -> String {
    let named = bad[..bad.len().min(IDS_NAMED_IN_MESSAGE)].join(", ");
    let more = bad.len().saturating_sub(IDS_NAMED_IN_MESSAGE);
    let tail = if more > 0 {
        format!(" (and {more} more, see details.invalid_ids)")
    } else {
        String::new()
    };
    format!(
        "{} id(s) are not contacts of this workspace and mode (malformed, unknown or deleted): \
         {named}{tail}; nothing was changed",
        bad.len()
    )
}

/// Adds contacts to a group of the workspace in `mode`. All ids must be acceptable or nothing
/// changes; ids already in the group are counted, not refused.
pub fn add_members(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &GroupId,
    input: ContactIds,
    now: Timestamp,
) -> Result<Added, AppError> {
    let group = find_group(conn, scope, mode, id)?;
    let contact_ids = checked_contact_ids(conn, scope, mode, input)?;
    let added = store::add_group_members(conn, &group.id, &contact_ids, &format_timestamp(now))?;
    Ok(Added {
        added,
        already_members: contact_ids.len() - added,
    })
}

/// Takes contacts out of a group of the workspace in `mode`, checked as for adding; ids not in
/// the group are counted, not refused.
pub fn remove_members(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &GroupId,
    input: ContactIds,
) -> Result<Removed, AppError> {
    let group = find_group(conn, scope, mode, id)?;
    let contact_ids = checked_contact_ids(conn, scope, mode, input)?;
    let removed = store::remove_group_members(conn, &group.id, &contact_ids)?;
    Ok(Removed {
        removed,
        not_members: contact_ids.len() - removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_at_most_twenty_ids() {
        let bad: Vec<String> = (0..25).map(|n| format!("con_{n}")).collect();
        let sentence = refusal_sentence(&bad);
        assert!(sentence.starts_with("25 id(s)"));
        assert!(sentence.contains("con_19"));
        assert!(!sentence.contains("con_20"));
        assert!(sentence.contains("and 5 more"));
    }
}
