//! Custom fields: the definitions a workspace makes (shared by its live and test contacts), and
//! the check of a contact's values against them on every write.

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::{Timestamp, format_timestamp};
use crate::contacts::store::{self, FieldRow};
use crate::error::{AppError, FieldErrors};
use crate::ids::{ContactFieldId, Ids};
use crate::scope::WorkspaceScope;
use crate::validate;

/// How many definitions one workspace may have.
pub const MAX_FIELDS_PER_WORKSPACE: usize = 50;
/// The longest key: `[a-z][a-z0-9_]{0,39}`.
const MAX_KEY_LENGTH: usize = 40;
const MAX_LABEL_LENGTH: usize = 100;
const MAX_OPTIONS: usize = 100;
const MAX_OPTION_LENGTH: usize = 100;
const MAX_TEXT_LENGTH: usize = 1000;
const MAX_URL_LENGTH: usize = 2048;

crate::text_enum! {
    /// What a custom field holds, and so which JSON values it accepts.
    pub enum FieldType {
        /// A string of at most 1 000 characters.
        Text = "text",
        /// A JSON number.
        Number = "number",
        /// A calendar date, `YYYY-MM-DD`.
        Date = "date",
        /// `true` or `false`.
        Boolean = "boolean",
        /// An `http://` or `https://` address.
        Url = "url",
        /// One of the definition's `options`.
        Select = "select",
    }
}

impl FieldType {
    /// A value of this type, for checking a template that names a field of it: a template
    /// must work for the values a contact can hold (`{{ contact.custom.score + 1 }}` for a
    /// number), so it is tried with one. A select field's value is one of its options: text.
    pub fn sample(self) -> serde_json::Value {
        match self {
            FieldType::Text | FieldType::Select => serde_json::Value::from("x"),
            FieldType::Number => serde_json::Value::from(1),
            FieldType::Date => serde_json::Value::from("2026-01-31"),
            FieldType::Boolean => serde_json::Value::from(true),
            FieldType::Url => serde_json::Value::from("https://example.com/x"),
        }
    }
}

/// The body of `POST /v1/contact-fields`. Fields are optional here so every problem is reported
/// at once, by `create_field`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewField {
    pub key: Option<String>,
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub field_type: Option<String>,
    pub options: Option<Vec<String>>,
}

/// The body of `PATCH /v1/contact-fields/{id}`: the key and type never change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChanges {
    pub label: Option<String>,
    pub options: Option<Vec<String>>,
}

/// `must be one of a, b, c`.
pub fn one_of<T: Copy + std::fmt::Display>(values: &[T]) -> String {
    let names: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("must be one of {}", names.join(", "))
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= MAX_KEY_LENGTH
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn checked_label(raw: &str, errors: &mut FieldErrors) -> Option<String> {
    match validate::text(raw, 1, MAX_LABEL_LENGTH) {
        Ok(label) => Some(label),
        Err(reason) => {
            errors.add("label", reason);
            None
        }
    }
}

/// The options of a `select` field: trimmed, each 1–100 characters, no repeats, 1–100 of them.
fn checked_options(options: &[String], errors: &mut FieldErrors) -> Vec<String> {
    if options.is_empty() || options.len() > MAX_OPTIONS {
        errors.add(
            "options",
            format!("must list 1 to {MAX_OPTIONS} choices for a select field"),
        );
        return Vec::new();
    }
    let mut checked: Vec<String> = Vec::with_capacity(options.len());
    for (index, option) in options.iter().enumerate() {
        match validate::text(option, 1, MAX_OPTION_LENGTH) {
            Ok(option) if checked.contains(&option) => {
                errors.add(format!("options[{index}]"), "is listed twice");
            }
            Ok(option) => checked.push(option),
            Err(reason) => errors.add(format!("options[{index}]"), reason),
        }
    }
    checked
}

/// The options a definition of `field_type` stores: required for `select`, refused otherwise.
fn options_for(
    field_type: FieldType,
    options: Option<&[String]>,
    errors: &mut FieldErrors,
) -> Option<Vec<String>> {
    match (field_type, options) {
        (FieldType::Select, Some(options)) => Some(checked_options(options, errors)),
        (FieldType::Select, None) => {
            errors.add("options", "is required for a select field");
            None
        }
        (_, Some(_)) => {
            errors.add("options", "is only for select fields");
            None
        }
        (_, None) => None,
    }
}

/// Defines a custom field. 422 for a bad key, label, type or options; 409 when the key is taken
/// (naming the definition) or the workspace already has 50.
pub fn create_field(
    conn: &Connection,
    ids: &Ids,
    scope: &WorkspaceScope,
    input: NewField,
    now: Timestamp,
) -> Result<FieldRow, AppError> {
    let mut errors = FieldErrors::new();
    let key = input.key.unwrap_or_default();
    if !is_valid_key(&key) {
        errors.add(
            "key",
            "must be a lower-case letter then up to 39 lower-case letters, digits or _",
        );
    }
    let label = checked_label(input.label.as_deref().unwrap_or_default(), &mut errors);
    let field_type = input.field_type.as_deref().and_then(FieldType::parse);
    if field_type.is_none() {
        errors.add("type", one_of(FieldType::ALL));
    }
    let options = field_type
        .and_then(|field_type| options_for(field_type, input.options.as_deref(), &mut errors));
    errors.into_result()?;
    let (Some(label), Some(field_type)) = (label, field_type) else {
        return Err(AppError::internal(
            "a refused label or type went unreported",
        ));
    };
    let existing = store::list_fields(conn, scope.id(), None, None)?;
    if let Some(taken) = existing.iter().find(|field| field.key == key) {
        return Err(AppError::Duplicate {
            message: format!("The custom field {} already has the key {key}.", taken.id),
            existing_id: taken.id.to_string(),
        });
    }
    if existing.len() >= MAX_FIELDS_PER_WORKSPACE {
        return Err(AppError::Conflict(format!(
            "A workspace has at most {MAX_FIELDS_PER_WORKSPACE} custom fields; delete one first."
        )));
    }
    let now = format_timestamp(now);
    let field = FieldRow {
        id: ContactFieldId::generate(ids),
        workspace_id: scope.id().clone(),
        key,
        label,
        field_type,
        options,
        created_at: now.clone(),
        updated_at: now,
    };
    store::insert_field(conn, &field)?;
    Ok(field)
}

/// Changes a definition's label or options. Values already stored are kept as they are (a
/// contact's value is checked again when that value is next written).
pub fn update_field(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &ContactFieldId,
    changes: FieldChanges,
    now: Timestamp,
) -> Result<FieldRow, AppError> {
    let mut field = store::find_field(conn, scope.id(), id)?.ok_or(AppError::NotFound)?;
    let mut errors = FieldErrors::new();
    if let Some(label) = changes
        .label
        .and_then(|raw| checked_label(&raw, &mut errors))
    {
        field.label = label;
    }
    if let Some(options) = changes.options {
        field.options = options_for(field.field_type, Some(&options), &mut errors);
    }
    errors.into_result()?;
    field.updated_at = format_timestamp(now);
    store::update_field(conn, &field)?;
    Ok(field)
}

/// Deletes a definition and its values on every contact, together.
pub fn delete_field(
    conn: &Connection,
    scope: &WorkspaceScope,
    id: &ContactFieldId,
    now: Timestamp,
) -> Result<(), AppError> {
    let field = store::find_field(conn, scope.id(), id)?.ok_or(AppError::NotFound)?;
    if store::delete_field(conn, &field, &format_timestamp(now))? {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// Why `value` does not fit `field`, if it does not.
fn value_problem(field: &FieldRow, value: &Value) -> Option<String> {
    let fits = match (field.field_type, value) {
        (FieldType::Text, Value::String(text)) => text.chars().count() <= MAX_TEXT_LENGTH,
        (FieldType::Number, Value::Number(_)) | (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Date, Value::String(text)) => crate::validate::calendar_day(text).is_ok(),
        (FieldType::Url, Value::String(text)) => is_web_address(text),
        (FieldType::Select, Value::String(choice)) => field
            .options
            .as_ref()
            .is_some_and(|options| options.contains(choice)),
        _ => false,
    };
    (!fits).then(|| match field.field_type {
        FieldType::Text => format!("must be text of at most {MAX_TEXT_LENGTH} characters"),
        FieldType::Number => "must be a number".to_owned(),
        // Written otherwise, or written right but not a day of the calendar (`1990-02-30`).
        FieldType::Date => crate::validate::calendar_day_problem(value).to_owned(),
        FieldType::Boolean => "must be true or false".to_owned(),
        FieldType::Url => "must be an http:// or https:// address".to_owned(),
        FieldType::Select => format!(
            "must be one of {}",
            field.options.as_deref().unwrap_or_default().join(", ")
        ),
    })
}

/// An `http://` or `https://` address with a host and no spaces.
fn is_web_address(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    text.len() <= MAX_URL_LENGTH
        && !text.chars().any(char::is_whitespace)
        && rest.is_some_and(|rest| {
            rest.split(['/', '?', '#'])
                .next()
                .is_some_and(|host| !host.is_empty())
        })
}

/// The workspace's custom field definitions, oldest first (what templates and imports may name).
pub fn definitions(conn: &Connection, scope: &WorkspaceScope) -> Result<Vec<FieldRow>, AppError> {
    store::list_fields(conn, scope.id(), None, None)
}

/// `stored` (a contact's values) with `changes` applied: a value sets its key, `null` removes
/// it. Each change is checked against its definition; problems go to `errors` as
/// `custom.<key>`.
pub fn apply_values(
    definitions: &[FieldRow],
    mut stored: Map<String, Value>,
    changes: Map<String, Value>,
    errors: &mut FieldErrors,
) -> Map<String, Value> {
    for (key, value) in changes {
        let Some(field) = definitions.iter().find(|field| field.key == key) else {
            errors.add(format!("custom.{key}"), "is not a defined custom field");
            continue;
        };
        if value.is_null() {
            stored.remove(&key);
        } else if let Some(problem) = value_problem(field, &value) {
            errors.add(format!("custom.{key}"), problem);
        } else {
            stored.insert(key, value);
        }
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(field_type: FieldType, options: Option<&[&str]>) -> FieldRow {
        FieldRow {
            id: ContactFieldId::parse("cfd_1").unwrap(),
            workspace_id: crate::ids::WorkspaceId::parse("wsp_1").unwrap(),
            key: "k".to_owned(),
            label: "K".to_owned(),
            field_type,
            options: options.map(|o| o.iter().map(|s| (*s).to_owned()).collect()),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn keys_are_lower_case_words() {
        for good in ["a", "plan", "plan_2", &"a".repeat(40)] {
            assert!(is_valid_key(good), "{good}");
        }
        for bad in ["", "2a", "_a", "Plan", "a-b", "a b", "é", &"a".repeat(41)] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn values_fit_their_type() {
        let cases = [
            (FieldType::Text, json!("hi"), json!(3)),
            (FieldType::Number, json!(2.5), json!("2.5")),
            (FieldType::Date, json!("2026-02-28"), json!("2026-02-30")),
            (FieldType::Boolean, json!(false), json!("false")),
            (FieldType::Url, json!("https://a.io/x"), json!("ftp://a.io")),
            (FieldType::Select, json!("gold"), json!("tin")),
        ];
        for (field_type, good, bad) in cases {
            let field = field(field_type, Some(&["gold", "silver"]));
            assert_eq!(value_problem(&field, &good), None, "{field_type} {good}");
            assert!(value_problem(&field, &bad).is_some(), "{field_type} {bad}");
        }
        let url = field(FieldType::Url, None);
        for bad in ["https://", "http:// a.io", "a.io", "https:///path"] {
            assert!(value_problem(&url, &json!(bad)).is_some(), "{bad}");
        }
        assert!(value_problem(&field(FieldType::Date, None), &json!("2026-2-28")).is_some());
    }
}
