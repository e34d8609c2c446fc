//! Words with a fixed set of values (a message's status, a channel, live or test) as enums that
//! are stored, shown and parsed as their text: `text_enum!` writes `as_str`, `parse`, `Display`,
//! `Serialize` and the SQLite conversions for each, so no code compares such a value as a string.
//! A stored value outside the set fails the read loudly instead of being guessed at.

/// Declares `pub enum $name { Variant = "text", … }` with its text conversions.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<$name> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("{text:?} is not a {}", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}

text_enum! {
    /// Live or test: every object that can be either carries its mode. Test objects are priced
    /// but never charged and never reach a real provider.
    pub enum Mode {
        Live = "live",
        Test = "test",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    text_enum! {
        pub enum Colour {
            Red = "red",
            Light = "light-blue",
        }
    }

    #[test]
    fn text_enums_round_trip_through_text_json_and_sqlite() {
        for colour in Colour::ALL {
            assert_eq!(Colour::parse(colour.as_str()), Some(*colour));
            assert_eq!(
                serde_json::to_string(colour).unwrap(),
                format!("\"{colour}\"")
            );
        }
        assert_eq!(Colour::parse("Red"), None);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read: Colour = conn
            .query_row("SELECT ?1", [Colour::Light], |row| row.get(0))
            .unwrap();
        assert_eq!(read, Colour::Light);
        let unknown = conn.query_row("SELECT 'green'", [], |row| row.get::<_, Colour>(0));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("\"green\" is not a Colour")
        );
        assert_eq!(Mode::parse("test"), Some(Mode::Test));
    }
}
