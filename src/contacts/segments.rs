//! Segments (docs/rules/contacts.md, "Segments"): contacts chosen by rules rather than listed.
//! A segment lives in one workspace and mode, like a group; its rules (`rules.rs`) are checked
//! when saved and again whenever it is used, because a custom field or group it names may have
//! been deleted since: such a segment is *broken* (it says why) and is refused, never quietly
//! evaluated as something else.
//!
//! `Audience` is what a send to a segment needs: the SQL condition choosing its contacts (the
//! workspace, the mode, not deleted, the rules), its count and its contact ids in keyset pages.

use std::collections::BTreeSet;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::Value;

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::reach::{Exclusion, exclusion_sql};
use crate::contacts::rules::{Rules, SqlCondition};
/// A contact of a fan-out part as the writer checks it again (`audience_marks`).
pub use crate::contacts::store::AudienceMarkRow as AudienceMark;
use crate::contacts::store::{self, ContactFilter, ContactRow, SegmentRow};
use crate::error::{AppError, FieldErrors};
use crate::ids::{ContactId, GroupId, Ids, SegmentId};
use crate::scope::WorkspaceScope;
use crate::validate;
use crate::vocabulary::Mode;

const MAX_SEGMENT_NAME_LENGTH: usize = 100;
/// How many contacts a preview shows.
pub const SAMPLE_SIZE: usize = 10;

/// The body of `POST /v1/segments`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSegment {
    pub name: Option<String>,
    pub rules: Option<Value>,
}

/// The body of `PATCH /v1/segments/{id}`: what is sent changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentChanges {
    pub name: Option<String>,
    pub rules: Option<Value>,
}

/// The body of `POST /v1/segments/preview`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub rules: Option<Value>,
}

/// The contacts some rules choose in one workspace and mode, ready to count or walk.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    scope: WorkspaceScope,
    mode: Mode,
    rules: SqlCondition,
}

impl Audience {
    fn filter(&self) -> ContactFilter<'_> {
        ContactFilter {
            segment: Some(&self.rules),
            ..ContactFilter::default()
        }
    }

    /// The whole condition over `contacts c` — the workspace, the mode, not deleted, the rules
    /// — and its parameters in order, for a caller that selects in SQL (`INSERT … SELECT`).
    pub fn condition(&self) -> SqlCondition {
        let (sql, params) = store::contacts_where(self.scope.id(), self.mode, &self.filter());
        SqlCondition { sql, params }
    }

    /// How many contacts match now.
    pub fn count(&self, conn: &Connection) -> Result<i64, AppError> {
        store::count_contacts(conn, self.scope.id(), self.mode, &self.filter())
    }

    /// Up to `limit` matching contact ids, oldest contact first, after the contact `after`.
    pub fn contact_ids(
        &self,
        conn: &Connection,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, AppError> {
        store::matching_contact_ids(
            conn,
            self.scope.id(),
            self.mode,
            &self.filter(),
            after,
            limit,
        )
    }

    /// Matching contacts as the list shows them: newest first, after the cursor `before`.
    pub fn contacts(
        &self,
        conn: &Connection,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactRow>, AppError> {
        store::list_contacts(
            conn,
            self.scope.id(),
            self.mode,
            &self.filter(),
            store::ContactOrder::NewestFirst,
            before,
            limit,
        )
    }

    /// The rules alone, as SQL over `contacts c` (without the workspace and mode).
    pub fn rules(&self) -> &SqlCondition {
        &self.rules
    }
}

/// How an audience splits for a marketing message on one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Every contact of the audience (not deleted), each once.
    pub contacts: u64,
    pub no_address: u64,
    pub unsubscribed: u64,
    pub invalid: u64,
    /// Email only.
    pub bounced: u64,
    pub complained: u64,
}

impl Reach {
    /// The contacts a marketing message may go to.
    pub fn eligible(&self) -> u64 {
        self.contacts.saturating_sub(
            self.no_address + self.unsubscribed + self.invalid + self.bounced + self.complained,
        )
    }
}

impl Audience {
    /// How the audience splits for a marketing message on `channel` (`reach::Exclusion`).
    pub fn reach(&self, conn: &Connection, channel: Channel) -> Result<Reach, AppError> {
        let [
            contacts,
            no_address,
            unsubscribed,
            invalid,
            bounced,
            complained,
        ] = store::count_exclusions(conn, &self.condition(), exclusion_sql(channel))?;
        Ok(Reach {
            contacts,
            no_address,
            unsubscribed,
            invalid,
            bounced,
            complained,
        })
    }
}

/// A campaign's audience resolved: its contacts, and — when it names several lists — how many
/// contacts the lists hold one by one (a contact in two lists counts twice) and how many of its
/// groups' members are deleted contacts.
#[derive(Debug, Clone, PartialEq)]
pub struct ListsAudience {
    pub audience: Audience,
    /// The lists' sizes added up (contacts not deleted); equal to the audience's size with one
    /// list or `all`.
    pub listed: Option<u64>,
    pub deleted_members: u64,
}

/// The contacts of the workspace in `mode` that are in any of `groups` or `segments` (each the
/// caller's: 404 otherwise; a broken segment is a 422 on `audience.segments`), or all of them
/// when `all`.
pub fn lists_audience(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    all: bool,
    groups: &[GroupId],
    segments: &[SegmentId],
) -> Result<ListsAudience, AppError> {
    if all {
        return Ok(ListsAudience {
            audience: Audience {
                scope: scope.clone(),
                mode,
                rules: SqlCondition {
                    sql: "1".to_owned(),
                    params: Vec::new(),
                },
            },
            listed: None,
            deleted_members: 0,
        });
    }
    let mut parts = Vec::new();
    let mut params = Vec::new();
    let mut listed = 0;
    if !groups.is_empty() {
        for id in groups {
            crate::contacts::groups::find_group(conn, scope, mode, id)?;
        }
        parts.push(format!(
            "c.id IN (SELECT contact_id FROM group_members WHERE group_id IN ({}))",
            vec!["?"; groups.len()].join(", ")
        ));
        params.extend(
            groups
                .iter()
                .map(|id| rusqlite::types::Value::Text(id.to_string())),
        );
    }
    let (group_members, deleted_members) =
        store::group_member_counts(conn, scope.id(), mode, groups)?;
    listed += group_members;
    for id in segments {
        let segment = segment_audience(conn, scope, mode, id, "audience.segments")?;
        listed += segment.count(conn)?.unsigned_abs();
        parts.push(format!("({})", segment.rules.sql));
        params.extend(segment.rules.params.iter().cloned());
    }
    let several = groups.len() + segments.len() > 1;
    Ok(ListsAudience {
        audience: Audience {
            scope: scope.clone(),
            mode,
            rules: SqlCondition {
                sql: format!("({})", parts.join(" OR ")),
                params,
            },
        },
        listed: several.then_some(listed),
        deleted_members,
    })
}

/// One contact a fan-out reaches: its rowid (the fan-out's cursor), the contact, and why a
/// marketing message leaves it out, if it does.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceMember {
    pub rowid: i64,
    pub contact: ContactRow,
    pub exclusion: Option<Exclusion>,
}

/// Up to `limit` contacts of a stored audience condition (`Audience::condition`, kept by a
/// campaign's launch) with rowids in `(after, last]`, in rowid order, each with its exclusion
/// for a marketing message on `channel`.
pub fn audience_page(
    conn: &Connection,
    condition: &SqlCondition,
    channel: Channel,
    range: (i64, i64),
    limit: usize,
) -> Result<Vec<AudienceMember>, AppError> {
    store::audience_page(conn, condition, exclusion_sql(channel), range, limit)?
        .into_iter()
        .map(|(rowid, contact, exclusion)| {
            let exclusion = match exclusion.as_deref() {
                None => None,
                Some(text) => Some(
                    Exclusion::parse(text)
                        .ok_or_else(|| AppError::internal(format!("unknown exclusion {text}")))?,
                ),
            };
            Ok(AudienceMember {
                rowid,
                contact,
                exclusion,
            })
        })
        .collect()
}

/// What a fan-out part prepared on a read connection checks again in the writer: for each
/// contact of the stored audience with rowid in `(after, last]`, its rowid, id, addresses and
/// exclusion on `channel`. Equal to the `mark`s of the members the part read when none of
/// those changed in between.
pub fn audience_marks(
    conn: &Connection,
    condition: &SqlCondition,
    channel: Channel,
    range: (i64, i64),
) -> Result<Vec<AudienceMark>, AppError> {
    store::audience_marks(conn, condition, exclusion_sql(channel), range)
}

impl AudienceMember {
    /// The member as `audience_marks` reads it.
    pub fn mark(&self) -> AudienceMark {
        AudienceMark {
            rowid: self.rowid,
            contact_id: self.contact.id.clone(),
            phone: self.contact.phone.clone(),
            email: self.contact.email.clone(),
            exclusion: self
                .exclusion
                .map(|exclusion| exclusion.as_str().to_owned()),
        }
    }
}

/// The newest contact's rowid: a fan-out started now goes no further.
pub fn newest_contact_rowid(conn: &Connection) -> Result<i64, AppError> {
    store::newest_contact_rowid(conn)
}

/// Checks `value` as the rules of a segment of the workspace in `mode`; problems go to
/// `errors` under paths starting with `path`. Every group named must be the workspace's, of
/// `mode`.
fn checked_rules(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    value: &Value,
    path: &str,
    errors: &mut FieldErrors,
) -> Result<Option<Rules>, AppError> {
    let definitions = store::list_fields(conn, scope.id(), None, None)?;
    let (rules, groups) = Rules::parse(value, path, &definitions, errors);
    let named: Vec<GroupId> = groups
        .iter()
        .map(|(_, id)| id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let existing: BTreeSet<GroupId> = store::existing_group_ids(conn, scope.id(), mode, &named)?
        .into_iter()
        .collect();
    let mut missing = false;
    for (at, id) in &groups {
        if !existing.contains(id) {
            errors.add(at, "no such group among the caller's");
            missing = true;
        }
    }
    Ok(rules.filter(|_| !missing))
}

/// The audience of rules sent by the caller (not saved). 422 naming every bad node by its path
/// under `rules`.
pub fn rules_audience(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    value: &Value,
) -> Result<Audience, AppError> {
    let mut errors = FieldErrors::new();
    let rules = checked_rules(conn, scope, mode, value, "rules", &mut errors)?;
    errors.into_result()?;
    let rules = rules.ok_or_else(|| AppError::internal("refused rules went unreported"))?;
    Ok(Audience {
        scope: scope.clone(),
        mode,
        rules: rules.to_sql(),
    })
}

/// What a saved segment's rules are now: its audience, or why it is broken (problems by path).
pub fn saved_audience(
    conn: &Connection,
    scope: &WorkspaceScope,
    segment: &SegmentRow,
) -> Result<Result<Audience, FieldErrors>, AppError> {
    let value: Value = serde_json::from_str(&segment.rules).map_err(AppError::internal)?;
    let mut errors = FieldErrors::new();
    let rules = checked_rules(conn, scope, segment.mode, &value, "rules", &mut errors)?;
    Ok(match rules {
        Some(rules) if errors.is_empty() => Ok(Audience {
            scope: scope.clone(),
            mode: segment.mode,
            rules: rules.to_sql(),
        }),
        _ => Err(errors),
    })
}

/// Why a broken segment cannot be used, for a field that names it (`segment`).
pub const BROKEN: &str = "the segment's rules name a custom field, group or value that no \
    longer exists; GET the segment for its problems and PATCH its rules";

/// The audience of the saved segment `id` of the workspace in `mode`: 404 when it is not the
/// caller's, 422 on `field` when it is broken. For sends (campaigns) and `?segment=`.
pub fn segment_audience(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &SegmentId,
    field: &str,
) -> Result<Audience, AppError> {
    let segment = find_segment(conn, scope, mode, id)?;
    saved_audience(conn, scope, &segment)?.map_err(|_| AppError::invalid_field(field, BROKEN))
}

/// What a preview shows: how many contacts the rules choose now, and the newest few.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub count: i64,
    pub sample: Vec<ContactRow>,
}

/// Counts and samples the contacts `rules` choose, changing nothing.
pub fn preview(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    input: PreviewRequest,
) -> Result<Preview, AppError> {
    let value = input
        .rules
        .ok_or_else(|| AppError::invalid_field("rules", "is required"))?;
    let audience = rules_audience(conn, scope, mode, &value)?;
    Ok(Preview {
        count: audience.count(conn)?,
        sample: audience.contacts(conn, None, SAMPLE_SIZE)?,
    })
}

fn checked_name(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    validate::text(raw, 1, MAX_SEGMENT_NAME_LENGTH)
        .map_err(|reason| errors.add("name", reason))
        .ok()
}

/// The rules as stored: the JSON the client sent.
fn rules_text(value: &Value) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(AppError::internal)
}

/// 409 naming the segment (other than `except`) of the same workspace and mode with this name.
fn ensure_unique_name(
    conn: &Connection,
    segment: &SegmentRow,
    except: Option<&SegmentId>,
) -> Result<(), AppError> {
    let existing =
        store::find_segment_id_by_name(conn, &segment.workspace_id, segment.mode, &segment.name)?;
    match existing {
        Some(existing) if Some(&existing) != except => Err(AppError::Duplicate {
            message: format!("The segment {existing} already has this name."),
            existing_id: existing.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Saves a segment in `mode`. 422 naming the name and every bad node of the rules at once; 409
/// for a name already taken.
pub fn create_segment(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    mode: Mode,
    input: NewSegment,
    now: Timestamp,
) -> Result<SegmentRow, AppError> {
    let mut errors = FieldErrors::new();
    let name = checked_name(input.name.as_deref().unwrap_or_default(), &mut errors);
    match &input.rules {
        Some(value) => {
            checked_rules(conn, scope, mode, value, "rules", &mut errors)?;
        }
        None => errors.add("rules", "is required"),
    }
    errors.into_result()?;
    let (Some(name), Some(rules)) = (name, input.rules) else {
        return Err(AppError::internal("a refused segment went unreported"));
    };
    let now = format_timestamp(now);
    let segment = SegmentRow {
        id: SegmentId::generate(ids),
        workspace_id: scope.id().clone(),
        mode,
        name,
        rules: rules_text(&rules)?,
        created_at: now.clone(),
        updated_at: now,
    };
    ensure_unique_name(conn, &segment, None)?;
    store::insert_segment(conn, &segment)?;
    Ok(segment)
}

/// The segment `id` of the workspace in `mode` (404 for any other).
pub fn find_segment(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &SegmentId,
) -> Result<SegmentRow, AppError> {
    store::find_segment(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

/// The workspace's segments of `mode`, newest first, after the cursor `before`.
pub fn list_segments(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<SegmentRow>, AppError> {
    store::list_segments(conn, scope.id(), mode, before, limit)
}

/// Renames a segment or replaces its rules, checked as on creation.
pub fn update_segment(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &SegmentId,
    changes: SegmentChanges,
    now: Timestamp,
) -> Result<SegmentRow, AppError> {
    let mut segment = find_segment(conn, scope, mode, id)?;
    let mut errors = FieldErrors::new();
    if let Some(name) = changes.name.and_then(|raw| checked_name(&raw, &mut errors)) {
        segment.name = name;
    }
    if let Some(value) = &changes.rules
        && checked_rules(conn, scope, mode, value, "rules", &mut errors)?.is_some()
    {
        segment.rules = rules_text(value)?;
    }
    errors.into_result()?;
    ensure_unique_name(conn, &segment, Some(id))?;
    segment.updated_at = format_timestamp(now);
    store::update_segment(conn, &segment)?;
    Ok(segment)
}

/// Deletes a segment (never a contact).
pub fn delete_segment(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &SegmentId,
) -> Result<(), AppError> {
    if store::delete_segment(conn, scope.id(), mode, id)? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// A saved segment now: its live count, or the problems that break it.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluation {
    Count(i64),
    Broken(FieldErrors),
}

/// Counts a saved segment's contacts now, or says why it is broken.
pub fn evaluate(
    conn: &Connection,
    scope: &WorkspaceScope,
    segment: &SegmentRow,
) -> Result<Evaluation, AppError> {
    Ok(match saved_audience(conn, scope, segment)? {
        Ok(audience) => Evaluation::Count(audience.count(conn)?),
        Err(problems) => Evaluation::Broken(problems),
    })
}
