//! The one spelling of an id the API accepts, in paths and in bodies: the hyphenated
//! 8-4-4-4-12 form the API itself writes, hex digits in either case (RFC 9562 §4 asks for
//! case-insensitive comparison). `uuid`'s own parser also takes braced, unhyphenated and
//! `urn:uuid:` spellings; accepting those on some routes made one id look like several.
//! A path id in another spelling names nothing (404); a body id is a 400 naming the field.

use std::fmt;

use serde::{Deserialize, Deserializer};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(Uuid);

impl Id {
    pub fn uuid(self) -> Uuid {
        self.0
    }
}

/// An id the broker already holds (not client input): no spelling to check.
impl From<Uuid> for Id {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

/// `Some` only for the hyphenated form.
pub fn parse(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    let hyphens = [8, 13, 18, 23];
    let shape = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| if hyphens.contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    if shape { Uuid::try_parse(s).ok() } else { None }
}

/// Written as the API writes every id (hyphenated, lowercase).
impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Id, E> {
                parse(s).map(Id).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(s), &self))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hyphenated_form_is_an_id() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let want: Uuid = id.parse().unwrap();
        assert_eq!(parse(id), Some(want));
        assert_eq!(parse(&id.to_uppercase()), Some(want), "hex digits in either case");
        for other in [
            "67e5504410b1426f9247bb680e5fe0c8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e55044-10b1-426f-9247-bb680e5fe0c",
            "67e55044-10b1-426f-9247-bb680e5fe0c8 ",
            "67e55044+10b1-426f-9247-bb680e5fe0c8",
            "g7e55044-10b1-426f-9247-bb680e5fe0c8",
            "",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_uuid_parses_in_either_case(bytes in proptest::array::uniform16(proptest::num::u8::ANY)) {
            let id = Uuid::from_bytes(bytes);
            let text = id.hyphenated().to_string();
            proptest::prop_assert_eq!(parse(&text), Some(id));
            proptest::prop_assert_eq!(parse(&text.to_uppercase()), Some(id));
            proptest::prop_assert_eq!(parse(&id.simple().to_string()), None);
            proptest::prop_assert_eq!(parse(&id.braced().to_string()), None);
        }

        /// Whatever parses is exactly the hyphenated spelling of what it parsed to.
        #[test]
        fn nothing_else_parses(s in "\\PC{0,40}|[0-9a-fA-F-]{36}") {
            if let Some(id) = parse(&s) {
                proptest::prop_assert_eq!(id.hyphenated().to_string(), s.to_ascii_lowercase());
            }
        }
    }
}
