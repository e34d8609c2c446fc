//! One type per kind of id, so a user id cannot be passed where a workspace id is expected.
//!
//! Each is the same text as before (`wsp_01JD…`) in the database and in JSON; only Rust tells
//! them apart. They are made in three ways: `generate` for a new object, `parse` for an id that
//! arrives from outside (a path parameter, a command-line argument), and reading a stored row.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Serialize, Serializer};

use super::Ids;

/// Whether `text` looks like an id of `prefix`: `{prefix}_` then letters, digits or `_`. Only
/// the form is checked — whether such an object exists is the store's question — so an id of
/// another kind can be answered "not found" without a query.
fn has_id_form(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// What every id of this kind starts with, before the `_`.
            pub const PREFIX: &'static str = $prefix;

            /// A new, unique id.
            pub fn generate(ids: &Ids) -> $name {
                $name(ids.new_id($prefix))
            }

            /// An id that arrived from outside, if it has this kind's form.
            pub fn parse(text: &str) -> Option<$name> {
                has_id_form(text, $prefix).then(|| $name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
            }
        }

        /// Stored ids are crier's own, written from a typed id: read back as they are.
        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<$name> {
                String::column_result(value).map($name)
            }
        }
    };
}

typed_id! {
    /// A workspace: `wsp_…`.
    WorkspaceId, "wsp"
}

typed_id! {
    /// A user: `usr_…`.
    UserId, "usr"
}

typed_id! {
    /// An API key (its id, never the secret): `key_…`.
    ApiKeyId, "key"
}

typed_id! {
    /// A message: `msg_…`.
    MessageId, "msg"
}

typed_id! {
    /// A payment (checkout) session: `pay_…`.
    PaymentSessionId, "pay"
}

typed_id! {
    /// A contact: `con_…`.
    ContactId, "con"
}

impl ContactId {
    /// An id of a generated one's form and length (`con_` and 26 characters), all zeros: the
    /// sample contact's, where a preview renders without a real one.
    pub fn sample() -> ContactId {
        ContactId(format!("{}_{}", Self::PREFIX, "0".repeat(26)))
    }
}

typed_id! {
    /// The definition of a contact custom field: `cfd_…`.
    ContactFieldId, "cfd"
}

typed_id! {
    /// A group of contacts: `grp_…`.
    GroupId, "grp"
}

typed_id! {
    /// A campaign: `cmp_…`.
    CampaignId, "cmp"
}

typed_id! {
    /// A CSV import of contacts: `imp_…`.
    ContactImportId, "imp"
}

typed_id! {
    /// A saved segment (rules over contacts): `seg_…`.
    SegmentId, "seg"
}

typed_id! {
    /// A webhook endpoint: `whe_…`.
    WebhookEndpointId, "whe"
}

typed_id! {
    /// One event's delivery to one webhook endpoint: `whd_…`.
    WebhookDeliveryId, "whd"
}

typed_id! {
    /// A workspace's sending domain (its own From domain and DKIM key): `sdm_…`.
    SendingDomainId, "sdm"
}

typed_id! {
    /// A workspace's own provider account (its credentials for a provider): `pac_…`.
    ProviderAccountId, "pac"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::SeededRandom;
    use chrono::{TimeZone, Utc};
    use std::sync::Arc;

    #[test]
    fn generated_ids_parse_back_as_their_own_kind_only() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        ));
        let ids = Ids::new(clock, Arc::new(SeededRandom::new(1)));
        let message = MessageId::generate(&ids);
        assert!(message.as_str().starts_with("msg_"));
        assert_eq!(MessageId::parse(message.as_str()), Some(message.clone()));
        assert_eq!(WorkspaceId::parse(message.as_str()), None);
    }

    #[test]
    fn parse_checks_prefix_and_charset_only() {
        assert!(WorkspaceId::parse("wsp_nosuchthing").is_some());
        assert!(WorkspaceId::parse("wsp_it_1").is_some());
        for bad in [
            "wsp_", "wsp", "wspx_1", "usr_1", "wsp_a/b", "wsp_a b", "", "wsp_é",
        ] {
            assert_eq!(WorkspaceId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_their_text_in_json_and_sqlite() {
        let id = UserId::parse("usr_1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"usr_1\"");
        assert_eq!(id.to_string(), "usr_1");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let back: UserId = conn
            .query_row("SELECT ?1", [&id], |row| row.get(0))
            .unwrap();
        assert_eq!(back, id);
        let text: String = conn
            .query_row("SELECT ?1", [&id], |row| row.get(0))
            .unwrap();
        assert_eq!(text, "usr_1");
    }
}
