//! Campaigns (docs/rules/campaigns.md): one message, written once as a template, for an
//! audience of contacts (groups, segments, or all of them) in one workspace and mode. This part
//! keeps drafts — create, edit, duplicate, delete — checks every template when it is saved, and
//! renders a preview for a contact.

pub mod fanout;
pub mod launch;
pub mod links;
pub mod runner;
pub mod store;
pub mod template;
pub mod view;

use std::collections::BTreeSet;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::billing::Channel;
use crate::clock::{Timestamp, format_timestamp, parse_timestamp};
use crate::contacts::store::{ContactRow, FieldRow};
use crate::error::{AppError, FieldErrors};
use crate::ids::{CampaignId, ContactId, GroupId, Ids, SegmentId};
use crate::messages::segments::{MAX_SEGMENTS, Segmentation, segment};
use crate::scope::WorkspaceScope;
use crate::validate;
use crate::vocabulary::Mode;
use store::CampaignRow;
use template::{ContactContext, Escaping};

const MAX_NAME_LENGTH: usize = 200;
const MAX_FROM_NAME_LENGTH: usize = 100;
const MAX_SUBJECT_CHARS: usize = 998;
/// The most a template's source may hold (an email part; an SMS is bounded by its segments).
const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// The most groups and segments one audience names.
pub const MAX_AUDIENCE_LISTS: usize = 50;
const MAX_SCHEDULE_DAYS: i64 = 365;

crate::text_enum! {
    /// Where a campaign is in its life. Only a draft can be edited or deleted.
    pub enum CampaignStatus {
        Draft = "draft",
        Scheduled = "scheduled",
        Running = "running",
        Completed = "completed",
        Partial = "partial",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

/// Who receives a campaign: every contact of the mode, or the members of some groups and the
/// contacts of some segments (a contact in several is written to once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
}

/// The body of `POST /v1/campaigns`. Optional here so every problem is reported at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    pub name: Option<String>,
    pub channel: Option<String>,
    pub text: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub from_name: Option<String>,
    pub audience: Option<Audience>,
    pub scheduled_at: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub opt_out_line: Option<bool>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub track_links: Option<bool>,
}

/// The body of `PATCH /v1/campaigns/{id}`: a field sent replaces the draft's; `null` clears an
/// optional one. The channel never changes (duplicate the campaign instead).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignChanges {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub text: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub html: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub from_name: Option<Option<String>>,
    pub audience: Option<Audience>,
    #[serde(default, deserialize_with = "crate::validate::present")]
    pub scheduled_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub opt_out_line: Option<bool>,
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub track_links: Option<bool>,
}

/// The custom field keys a template may name, each with a value of its type to try it with.
fn custom_samples(definitions: &[FieldRow]) -> Vec<(&str, serde_json::Value)> {
    definitions
        .iter()
        .map(|field| (field.key.as_str(), field.field_type.sample()))
        .collect()
}

/// Checks one template part, reporting on `field`.
fn check_part(
    field: &str,
    source: &str,
    escaping: Escaping,
    keys: &[(&str, serde_json::Value)],
    errors: &mut FieldErrors,
) {
    if source.len() > MAX_TEMPLATE_BYTES {
        errors.add(
            field,
            format!("must be at most {} KiB", MAX_TEMPLATE_BYTES / 1024),
        );
    } else if let Err(problem) = template::check(source, escaping, keys) {
        errors.add(field, problem.0);
    }
}

/// A required text: present and not blank.
fn required<'a>(field: &str, value: Option<&'a str>, errors: &mut FieldErrors) -> Option<&'a str> {
    match value {
        Some(text) if !text.trim().is_empty() => Some(text),
        _ => {
            errors.add(field, "is required");
            None
        }
    }
}

/// Checks everything a draft holds against the channel's rules and the workspace's fields and
/// lists: `group_exists` and `segment_usable` say whether an id is the caller's (and, for a
/// segment, whether its rules still hold).
fn check_draft(
    (checks, campaign): (Checks, &CampaignRow),
    audience: &Audience,
    definitions: &[FieldRow],
    group_exists: &mut dyn FnMut(&GroupId) -> Result<bool, AppError>,
    segment_usable: &mut dyn FnMut(&SegmentId) -> Result<bool, AppError>,
    now: Timestamp,
    errors: &mut FieldErrors,
) -> Result<(), AppError> {
    check_name(&campaign.name, errors);
    let keys = custom_samples(definitions);
    match campaign.channel {
        Channel::Sms => {
            for (field, value) in [
                ("subject", &campaign.subject),
                ("html", &campaign.html),
                ("from_name", &campaign.from_name),
            ] {
                if value.is_some() {
                    errors.add(
                        field,
                        "is for email campaigns; an SMS campaign has only text",
                    );
                }
            }
            if let Some(text) = required("text", campaign.text.as_deref(), errors) {
                check_part("text", text, Escaping::None, &keys, errors);
                if !errors.contains("text") {
                    let segments = match render_for(campaign, None, SAMPLE_UNSUBSCRIBE_URL)? {
                        Rendered::Sms { segmentation, .. } => segmentation.segments,
                        Rendered::Email { .. } => 0,
                    };
                    if segments > MAX_SEGMENTS {
                        errors.add(
                            "text",
                            format!(
                                "is {segments} segments for a sample contact; at most \
                                 {MAX_SEGMENTS}"
                            ),
                        );
                    }
                }
            }
        }
        Channel::Email => {
            if campaign.opt_out_line {
                errors.add(
                    "opt_out_line",
                    "is for SMS campaigns; email always carries its unsubscribe link",
                );
            }
            if let Some(subject) = required("subject", campaign.subject.as_deref(), errors) {
                if subject.chars().count() > MAX_SUBJECT_CHARS {
                    errors.add(
                        "subject",
                        format!("must be at most {MAX_SUBJECT_CHARS} characters"),
                    );
                } else {
                    check_part("subject", subject, Escaping::None, &keys, errors);
                }
            }
            match (&campaign.html, &campaign.text) {
                (None, None) => errors.add("html", "an email campaign needs html or text"),
                (html, text) => {
                    if let Some(html) = html {
                        check_part("html", html, Escaping::Html, &keys, errors);
                    }
                    if let Some(text) = text {
                        check_part("text", text, Escaping::None, &keys, errors);
                    }
                }
            }
            if let Some(from_name) = &campaign.from_name {
                let length = from_name.chars().count();
                if !(1..=MAX_FROM_NAME_LENGTH).contains(&length)
                    || from_name.chars().any(char::is_control)
                {
                    errors.add(
                        "from_name",
                        format!("must be 1 to {MAX_FROM_NAME_LENGTH} characters, on one line"),
                    );
                }
            }
        }
    }
    check_audience(audience, group_exists, segment_usable, errors)?;
    if checks == Checks::Launch {
        // The scheduler starts a campaign when its time has come; an estimate ignores it.
        return Ok(());
    }
    if let Some(text) = &campaign.scheduled_at {
        match parse_timestamp(text) {
            Some(at) if at > now && at <= now + chrono::Duration::days(MAX_SCHEDULE_DAYS) => {}
            Some(_) => errors.add(
                "scheduled_at",
                "must be in the future, at most a year ahead",
            ),
            None => errors.add("scheduled_at", "must be an RFC 3339 timestamp"),
        }
    }
    Ok(())
}

/// A campaign's name: 1 to 200 characters on one line.
fn check_name(name: &str, errors: &mut FieldErrors) {
    if let Err(reason) = validate::text(name, 1, MAX_NAME_LENGTH) {
        errors.add("name", reason);
    }
}

/// An audience names everyone, or at least one list; every list must be the caller's.
fn check_audience(
    audience: &Audience,
    group_exists: &mut dyn FnMut(&GroupId) -> Result<bool, AppError>,
    segment_usable: &mut dyn FnMut(&SegmentId) -> Result<bool, AppError>,
    errors: &mut FieldErrors,
) -> Result<(), AppError> {
    let lists = audience.groups.len() + audience.segments.len();
    if audience.all && lists > 0 {
        errors.add(
            "audience",
            "names everyone (`all`) or some groups and segments, not both",
        );
    } else if !audience.all && lists == 0 {
        errors.add(
            "audience",
            "must be {\"all\": true} or name at least one group or segment",
        );
    } else if lists > MAX_AUDIENCE_LISTS {
        errors.add(
            "audience",
            format!("names at most {MAX_AUDIENCE_LISTS} groups and segments"),
        );
    } else {
        let mut unknown = Vec::new();
        for id in &audience.groups {
            let known = match GroupId::parse(id) {
                Some(group_id) => group_exists(&group_id)?,
                None => false,
            };
            if !known {
                unknown.push(id.as_str());
            }
        }
        if !unknown.is_empty() {
            errors.add(
                "audience.groups",
                format!("no such group among the caller's: {}", unknown.join(", ")),
            );
        }
        let mut unusable = Vec::new();
        for id in &audience.segments {
            let usable = match SegmentId::parse(id) {
                Some(segment_id) => segment_usable(&segment_id)?,
                None => false,
            };
            if !usable {
                unusable.push(id.as_str());
            }
        }
        if !unusable.is_empty() {
            errors.add(
                "audience.segments",
                format!(
                    "no such segment among the caller's, or one whose rules name a field, group \
                     or option deleted since: {}",
                    unusable.join(", ")
                ),
            );
        }
    }
    Ok(())
}

/// The audience with each list once, in the order given.
fn deduplicated(mut audience: Audience) -> Audience {
    let mut seen = BTreeSet::new();
    audience.groups.retain(|id| seen.insert(id.clone()));
    let mut seen = BTreeSet::new();
    audience.segments.retain(|id| seen.insert(id.clone()));
    audience
}

fn audience_text(audience: &Audience) -> Result<String, AppError> {
    serde_json::to_string(audience).map_err(AppError::internal)
}

/// The stored audience of a campaign.
pub fn audience_of(campaign: &CampaignRow) -> Result<Audience, AppError> {
    serde_json::from_str(&campaign.audience).map_err(AppError::internal)
}

/// What `checked` asks of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checks {
    /// Everything, its schedule included (saving a draft, launching or scheduling it).
    Draft,
    /// Everything but the schedule (an estimate, the scheduler's start).
    Launch,
}

/// Checks a campaign of the scope's workspace against its channel's rules and the workspace's
/// fields and lists as they are now; 422 naming every problem (`errors` holds any found before).
pub(crate) fn checked_with(
    conn: &Connection,
    scope: &WorkspaceScope,
    campaign: &CampaignRow,
    audience: &Audience,
    now: Timestamp,
    (checks, mut errors): (Checks, FieldErrors),
) -> Result<(), AppError> {
    let definitions = crate::contacts::fields::definitions(conn, scope)?;
    let mut group_exists =
        |id: &GroupId| match crate::contacts::groups::find_group(conn, scope, campaign.mode, id) {
            Ok(_) => Ok(true),
            Err(AppError::NotFound) => Ok(false),
            Err(other) => Err(other),
        };
    let mut segment_usable = |id: &SegmentId| match crate::contacts::segments::segment_audience(
        conn,
        scope,
        campaign.mode,
        id,
        "",
    ) {
        Ok(_) => Ok(true),
        Err(AppError::NotFound | AppError::Validation(_)) => Ok(false),
        Err(other) => Err(other),
    };
    check_draft(
        (checks, campaign),
        audience,
        &definitions,
        &mut group_exists,
        &mut segment_usable,
        now,
        &mut errors,
    )?;
    errors.into_result()
}

/// The campaign's templates against the workspace's custom fields as they are now (one deleted
/// since the draft was saved is refused, 422 on the template's field): what a preview and a test
/// send check before rendering, as an estimate and a launch check that and the rest.
pub fn content_checked(
    conn: &Connection,
    scope: &WorkspaceScope,
    campaign: &CampaignRow,
) -> Result<(), AppError> {
    let definitions = crate::contacts::fields::definitions(conn, scope)?;
    let keys = custom_samples(&definitions);
    let mut errors = FieldErrors::new();
    for (field, source, escaping) in [
        ("text", &campaign.text, Escaping::None),
        ("subject", &campaign.subject, Escaping::None),
        ("html", &campaign.html, Escaping::Html),
    ] {
        if let Some(source) = source {
            check_part(field, source, escaping, &keys, &mut errors);
        }
    }
    errors.into_result()
}

/// `checked_with` with no problem found before.
pub(crate) fn checked(
    conn: &Connection,
    scope: &WorkspaceScope,
    campaign: &CampaignRow,
    audience: &Audience,
    now: Timestamp,
    checks: Checks,
) -> Result<(), AppError> {
    checked_with(
        conn,
        scope,
        campaign,
        audience,
        now,
        (checks, FieldErrors::new()),
    )
}

/// A schedule as stored: UTC, so the scheduler compares it with `now` as text.
fn normalized_schedule(scheduled_at: Option<String>) -> Option<String> {
    scheduled_at.map(|text| parse_timestamp(&text).map_or(text, format_timestamp))
}

/// Creates a draft in `mode`. 422 naming every bad field, templates included.
pub fn create_campaign(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    mode: Mode,
    input: NewCampaign,
    now: Timestamp,
) -> Result<CampaignRow, AppError> {
    let mut errors = FieldErrors::new();
    let channel = match input.channel.as_deref().map(Channel::parse) {
        Some(Some(channel)) => channel,
        _ => {
            errors.add("channel", "must be sms or email");
            // Checked as SMS so the other fields are still reported.
            Channel::Sms
        }
    };
    let audience = match input.audience {
        Some(audience) => deduplicated(audience),
        None => {
            errors.add("audience", "is required");
            Audience {
                all: true,
                ..Audience::default()
            }
        }
    };
    let stamp = format_timestamp(now);
    let campaign = CampaignRow {
        id: CampaignId::generate(ids),
        workspace_id: scope.id().clone(),
        mode,
        name: input.name.as_deref().unwrap_or_default().trim().to_owned(),
        channel,
        status: CampaignStatus::Draft,
        text: input.text,
        subject: input.subject,
        html: input.html,
        from_name: input.from_name.map(|name| name.trim().to_owned()),
        audience: audience_text(&audience)?,
        scheduled_at: input.scheduled_at,
        opt_out_line: input.opt_out_line.unwrap_or(false),
        track_links: input.track_links.unwrap_or(false),
        duplicated_from: None,
        created_at: stamp.clone(),
        updated_at: stamp,
        progress: store::Progress::default(),
    };
    if errors.contains("channel") {
        // Without a channel the content cannot be judged; say only what is wrong for sure.
        check_name(&campaign.name, &mut errors);
        return Err(AppError::Validation(errors));
    }
    checked_with(
        conn,
        scope,
        &campaign,
        &audience,
        now,
        (Checks::Draft, errors),
    )?;
    let campaign = CampaignRow {
        scheduled_at: normalized_schedule(campaign.scheduled_at),
        ..campaign
    };
    store::insert_campaign(conn, &campaign)?;
    Ok(campaign)
}

/// The campaign `id` of the scope's workspace in `mode` (404 for any other).
pub fn find_campaign(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &CampaignId,
) -> Result<CampaignRow, AppError> {
    store::find_campaign(conn, scope.id(), mode, id)?.ok_or(AppError::NotFound)
}

fn not_a_draft(campaign: &CampaignRow) -> AppError {
    AppError::Conflict(format!(
        "The campaign {} is {}: only a draft can change. Duplicate it to start a new draft.",
        campaign.id, campaign.status
    ))
}

/// Applies a PATCH to a draft, checked as on creation. 409 once it is not a draft.
pub fn update_campaign(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &CampaignId,
    changes: CampaignChanges,
    now: Timestamp,
) -> Result<CampaignRow, AppError> {
    let mut campaign = find_campaign(conn, scope, mode, id)?;
    if campaign.status != CampaignStatus::Draft {
        return Err(not_a_draft(&campaign));
    }
    // A schedule is checked when it is set: a draft whose time has passed since (it launches
    // at once when launched) can still be renamed or edited.
    let checks = match changes.scheduled_at {
        Some(_) => Checks::Draft,
        None => Checks::Launch,
    };
    if let Some(name) = changes.name {
        campaign.name = name.trim().to_owned();
    }
    for (change, value) in [
        (changes.text, &mut campaign.text),
        (changes.subject, &mut campaign.subject),
        (changes.html, &mut campaign.html),
        (changes.scheduled_at, &mut campaign.scheduled_at),
    ] {
        if let Some(change) = change {
            *value = change;
        }
    }
    if let Some(from_name) = changes.from_name {
        campaign.from_name = from_name.map(|name| name.trim().to_owned());
    }
    if let Some(opt_out_line) = changes.opt_out_line {
        campaign.opt_out_line = opt_out_line;
    }
    if let Some(track_links) = changes.track_links {
        campaign.track_links = track_links;
    }
    let audience = match changes.audience {
        Some(audience) => deduplicated(audience),
        None => audience_of(&campaign)?,
    };
    campaign.audience = audience_text(&audience)?;
    campaign.updated_at = format_timestamp(now);
    checked(conn, scope, &campaign, &audience, now, checks)?;
    campaign.scheduled_at = normalized_schedule(campaign.scheduled_at);
    if !store::update_draft(conn, &campaign)? {
        return Err(AppError::internal(
            "a draft read in this transaction did not update",
        ));
    }
    Ok(campaign)
}

/// Deletes a draft for good. 409 once it is not a draft (a launched campaign is history).
pub fn delete_campaign(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &CampaignId,
) -> Result<(), AppError> {
    let campaign = find_campaign(conn, scope, mode, id)?;
    if campaign.status != CampaignStatus::Draft {
        return Err(not_a_draft(&campaign));
    }
    if store::delete_draft(conn, scope.id(), mode, id)? {
        Ok(())
    } else {
        Err(AppError::internal(
            "a draft read in this transaction did not delete",
        ))
    }
}

/// A new draft with the content and audience of campaign `id` (whatever its status), named
/// "`<name> (copy)`", unscheduled. Its templates and lists are checked again: a custom field or
/// group deleted since is a 422 naming it.
pub fn duplicate_campaign(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &CampaignId,
    now: Timestamp,
) -> Result<CampaignRow, AppError> {
    let original = find_campaign(conn, scope, mode, id)?;
    let audience = audience_of(&original)?;
    let stamp = format_timestamp(now);
    let mut name = format!("{} (copy)", original.name);
    if name.chars().count() > MAX_NAME_LENGTH {
        name = name.chars().take(MAX_NAME_LENGTH).collect();
    }
    let copy = CampaignRow {
        id: CampaignId::generate(ids),
        name,
        status: CampaignStatus::Draft,
        scheduled_at: None,
        duplicated_from: Some(original.id.clone()),
        created_at: stamp.clone(),
        updated_at: stamp,
        progress: store::Progress::default(),
        ..original
    };
    checked(conn, scope, &copy, &audience, now, Checks::Draft)?;
    store::insert_campaign(conn, &copy)?;
    Ok(copy)
}

/// What a template sees of `contact`.
pub fn contact_context(contact: &ContactRow) -> Result<ContactContext, AppError> {
    let custom: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&contact.custom).map_err(AppError::internal)?;
    Ok(ContactContext {
        name: Some(contact.name.clone()),
        first_name: contact.first_name.clone(),
        last_name: contact.last_name.clone(),
        phone: contact.phone.clone(),
        email: contact.email.clone(),
        language: contact
            .language
            .map(|language| language.as_str().to_owned()),
        custom: custom.into_iter().collect(),
    })
}

/// A link as long as a real unsubscribe link, for checks made without a recipient.
const SAMPLE_UNSUBSCRIBE_URL: &str =
    "https://crier.example.com/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The line a marketing SMS ends with when its campaign asks: short, in the contact's language.
pub fn opt_out_line(language: Option<&str>, unsubscribe_url: &str) -> String {
    match language {
        Some("fr") => format!("\nSTOP : {unsubscribe_url}"),
        _ => format!("\nSTOP: {unsubscribe_url}"),
    }
}

/// A campaign's content as one recipient receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    Sms {
        text: String,
        segmentation: Segmentation,
    },
    Email {
        subject: String,
        html: Option<String>,
        text: Option<String>,
    },
}

/// A campaign's content compiled once, rendered recipient after recipient.
pub struct Renderer {
    channel: Channel,
    opt_out_line: bool,
    parts: template::Compiled,
    /// A campaign that tracks links: what rewrites them for each recipient.
    tracker: Option<links::Tracker>,
}

impl Renderer {
    pub fn new(campaign: &CampaignRow) -> Result<Renderer, AppError> {
        let mut parts = Vec::new();
        for (name, source) in [
            ("text", &campaign.text),
            ("subject", &campaign.subject),
            (template::HTML_PART, &campaign.html),
        ] {
            if let Some(source) = source {
                parts.push((name, source.as_str()));
            }
        }
        let parts = template::Compiled::new(&parts)
            .map_err(|(name, problem)| AppError::invalid_field(name, problem.0))?;
        Ok(Renderer {
            channel: campaign.channel,
            opt_out_line: campaign.opt_out_line,
            parts,
            tracker: None,
        })
    }

    /// This renderer, rewriting links with `tracker` in what `render_to` renders.
    pub fn tracking(self, tracker: Option<links::Tracker>) -> Renderer {
        Renderer { tracker, ..self }
    }

    fn part(
        &self,
        name: &str,
        contact: &ContactContext,
        unsubscribe_url: &str,
    ) -> Result<Option<String>, AppError> {
        self.parts
            .render(name, contact, Some(unsubscribe_url))
            .transpose()
            .map_err(|problem| AppError::invalid_field(name, problem.0))
    }

    /// The content `contact` receives. An SMS ends with the opt-out line when the campaign asks
    /// for it, on a line of its own, counted in its segments.
    pub fn render(
        &self,
        contact: &ContactContext,
        unsubscribe_url: &str,
    ) -> Result<Rendered, AppError> {
        self.render_to(contact, unsubscribe_url, None)
    }

    /// `render` for a recipient of the campaign: when it tracks links, its URLs become the
    /// recipient's short links before the opt-out line is added and the segments counted.
    pub fn render_to(
        &self,
        contact: &ContactContext,
        unsubscribe_url: &str,
        recipient: Option<links::Recipient<'_>>,
    ) -> Result<Rendered, AppError> {
        let tracking = self.tracker.as_ref().zip(recipient);
        let text = |text: Option<String>| match (text, tracking) {
            (Some(text), Some((tracker, recipient))) => {
                Some(tracker.rewrite_text(&text, recipient))
            }
            (text, _) => text,
        };
        Ok(match self.channel {
            Channel::Sms => {
                let mut text =
                    text(self.part("text", contact, unsubscribe_url)?).unwrap_or_default();
                // Before the opt-out line: a message of nothing but that line is not the
                // campaign's message either.
                if text.trim().is_empty() {
                    return Err(AppError::invalid_field("text", RENDERS_EMPTY));
                }
                if self.opt_out_line {
                    text.push_str(&opt_out_line(contact.language.as_deref(), unsubscribe_url));
                }
                Rendered::Sms {
                    segmentation: segment(&text),
                    text,
                }
            }
            Channel::Email => {
                let subject = self
                    .part("subject", contact, unsubscribe_url)?
                    .unwrap_or_default();
                if subject.trim().is_empty() {
                    return Err(AppError::invalid_field("subject", RENDERS_EMPTY));
                }
                if subject.contains(['\r', '\n']) || subject.chars().count() > MAX_SUBJECT_CHARS {
                    return Err(AppError::invalid_field(
                        "subject",
                        "renders to more than one line of at most 998 characters for this contact",
                    ));
                }
                let blank = |part: &Option<String>| {
                    part.as_deref().is_none_or(|part| part.trim().is_empty())
                };
                let html = self.part(template::HTML_PART, contact, unsubscribe_url)?;
                let text = text(self.part("text", contact, unsubscribe_url)?);
                if blank(&html) && blank(&text) {
                    return Err(AppError::invalid_field("text", RENDERS_EMPTY));
                }
                Rendered::Email {
                    subject,
                    html: match (html, tracking) {
                        (Some(html), Some((tracker, recipient))) => {
                            Some(tracker.rewrite_html(&html, recipient))
                        }
                        (html, _) => html,
                    },
                    text,
                }
            }
        })
    }
}

/// Why a recipient's message was not made: its content came out blank for that contact (a
/// template of nothing but a field the contact leaves empty). Such a contact is left out as
/// `render_failed`, like any message that does not render; a send of nothing is never charged.
const RENDERS_EMPTY: &str = "renders empty";

/// Renders `campaign` for `contact` (a sample contact when `None`).
pub fn render_for(
    campaign: &CampaignRow,
    contact: Option<&ContactRow>,
    unsubscribe_url: &str,
) -> Result<Rendered, AppError> {
    let context = match contact {
        Some(contact) => contact_context(contact)?,
        None => ContactContext::sample(),
    };
    Renderer::new(campaign)?.render(&context, unsubscribe_url)
}

/// The contact named for a preview (its id as sent): one of the caller's in the campaign's mode,
/// else 422 on `contact_id`.
pub fn preview_contact(
    conn: &Connection,
    scope: &WorkspaceScope,
    mode: Mode,
    id: &str,
) -> Result<ContactRow, AppError> {
    let not_found = || AppError::invalid_field("contact_id", "no such contact among the caller's");
    let id = ContactId::parse(id).ok_or_else(not_found)?;
    crate::contacts::find_contact(conn, scope, mode, &id).map_err(|err| match err {
        AppError::NotFound => not_found(),
        other => other,
    })
}
