//! The CSV form of contacts (`GET /v1/contacts/export`, docs/rules/contacts.md "Export"): one
//! row per contact with every field, the channel states and unsubscriptions, then one column per
//! custom field definition (`custom.<key>`). The header names are the field names the import
//! maps by default, so an export can be imported again as it is.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::contacts::store::{ContactRow, FieldRow};
use crate::error::AppError;

/// The built-in columns, in order.
pub const COLUMNS: &[&str] = &[
    "id",
    "name",
    "first_name",
    "last_name",
    "phone",
    "phone_input",
    "email",
    "language",
    "phone_state",
    "email_state",
    "sms_unsubscribed_at",
    "sms_unsubscribed_via",
    "email_unsubscribed_at",
    "email_unsubscribed_via",
    "created_at",
    "updated_at",
];

/// The header row: the built-in columns, then `custom.<key>` for each definition.
pub fn header(definitions: &[FieldRow]) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|column| (*column).to_owned())
        .chain(
            definitions
                .iter()
                .map(|field| format!("custom.{}", field.key)),
        )
        .collect()
}

/// A text a person typed, made safe to open in a spreadsheet: a cell that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return would be read as a formula (CSV injection), so it gets a
/// leading `'`. Values crier checked itself (E.164 phones, addresses, times) are never changed.
fn inert(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn custom_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => inert(text).into_owned(),
        Some(other) => other.to_string(),
    }
}

/// One contact's row, in the order of `header(definitions)`.
pub fn record(contact: &ContactRow, definitions: &[FieldRow]) -> Result<Vec<String>, AppError> {
    let custom: Map<String, Value> =
        serde_json::from_str(&contact.custom).map_err(AppError::internal)?;
    let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
    let word = |value: Option<&'static str>| value.unwrap_or_default().to_owned();
    let mut row = vec![
        contact.id.to_string(),
        inert(&contact.name).into_owned(),
        contact
            .first_name
            .as_deref()
            .map(inert)
            .unwrap_or_default()
            .into_owned(),
        contact
            .last_name
            .as_deref()
            .map(inert)
            .unwrap_or_default()
            .into_owned(),
        text(contact.phone.as_deref()),
        contact
            .phone_input
            .as_deref()
            .map(inert)
            .unwrap_or_default()
            .into_owned(),
        text(contact.email.as_deref()),
        word(contact.language.map(|language| language.as_str())),
        // A channel's state means nothing without its address (as in the API's view).
        word(contact.phone.as_ref().map(|_| contact.phone_state.as_str())),
        word(contact.email.as_ref().map(|_| contact.email_state.as_str())),
        text(contact.sms_unsubscribed_at.as_deref()),
        word(contact.sms_unsubscribed_via.map(|via| via.as_str())),
        text(contact.email_unsubscribed_at.as_deref()),
        word(contact.email_unsubscribed_via.map(|via| via.as_str())),
        contact.created_at.clone(),
        contact.updated_at.clone(),
    ];
    row.extend(
        definitions
            .iter()
            .map(|field| custom_cell(custom.get(&field.key))),
    );
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_made_inert() {
        for formula in ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(inert(formula), format!("'{formula}"));
        }
        for plain in ["Ada", "", "a=b", "'quoted"] {
            assert_eq!(inert(plain), plain);
        }
        assert_eq!(custom_cell(Some(&Value::from(12.5))), "12.5");
        assert_eq!(custom_cell(Some(&Value::Bool(true))), "true");
        assert_eq!(
            custom_cell(Some(&Value::from("=HYPERLINK()"))),
            "'=HYPERLINK()"
        );
        assert_eq!(custom_cell(None), "");
    }
}
