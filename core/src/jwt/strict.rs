//! `serde` glue that makes `serde_json` as strict as the token rules require.
//!
//! JSON syntax is entirely `serde_json`'s (RFC 8259: no comments, no trailing commas, no
//! lone surrogates in `\u` escapes, no control characters in strings, UTF-8 only, nesting
//! limited to 128 levels). What this module adds is policy, not parsing:
//!
//! - [`Name`]: a member name borrowed from the input unless it contains escapes, so a name
//!   spelt with escapes (`"\u0061lg"`) is recognised as the name it decodes to.
//! - [`Names`]: refuses a member name that occurs twice in one object. `serde_json` keeps the
//!   last of two members with the same name; two parsers that disagree on which duplicate
//!   wins are a classic way to smuggle a claim past one of them.
//! - [`Strict`]: reads through any value, refusing duplicate names in every object nested in
//!   it, for members whose values the crate never uses.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A member name or string value, borrowed from the JSON text when it has no escapes.
pub(crate) struct Name<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(String::from(text))))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(text)))
    }
}

/// Member names seen in one object, checked for duplicates once the object is read.
///
/// Sorting at the end costs O(n log n) whatever the names are, so an object full of members
/// cannot make the check quadratic. Nothing is allocated until a name is pushed.
#[derive(Default)]
pub(crate) struct Names<'de> {
    names: Vec<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    pub(crate) fn push(&mut self, name: Cow<'de, str>) {
        self.names.push(name);
    }

    /// Fails if any name was pushed twice.
    pub(crate) fn check<E: de::Error>(&mut self) -> Result<(), E> {
        if self.names.len() < 2 {
            return Ok(());
        }
        self.names.sort_unstable();
        match self
            .names
            .windows(2)
            .find(|pair| pair.first() == pair.last())
        {
            Some(pair) => Err(duplicate(pair.first().map_or("", |name| name.as_ref()))),
            None => Ok(()),
        }
    }
}

/// The error for a member name that occurs twice in one object.
pub(crate) fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format_args!("duplicate member `{name}`"))
}

/// Any JSON value, read and discarded, with duplicate member names refused at every depth.
pub(crate) struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Strict, A::Error> {
        drain_seq(seq)?;
        Ok(Strict)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Strict, A::Error> {
        drain_map(map)?;
        Ok(Strict)
    }
}

/// Reads the rest of an array through [`Strict`].
pub(crate) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Strict>()?.is_some() {}
    Ok(())
}

/// Reads the rest of an object through [`Strict`], refusing duplicate names.
pub(crate) fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    let mut names = Names::default();
    while let Some(Name(name)) = map.next_key()? {
        map.next_value::<Strict>()?;
        names.push(name);
    }
    names.check()
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    fn strict(json: &str) -> bool {
        serde_json::from_str::<Strict>(json).is_ok()
    }

    #[test]
    fn strict_accepts_json_without_duplicates() {
        for json in [
            "0",
            "-1.5e3",
            "true",
            "null",
            r#""a\"\u00e9\uD83D\uDE00""#,
            "[1,[2,[3]],{}]",
            r#"{"a":{"b":[{"a":1,"b":2}]},"b":{"a":1}} "#,
        ] {
            assert!(strict(json), "{json}");
        }
    }

    #[test]
    fn strict_refuses_duplicates_at_any_depth() {
        for json in [
            r#"{"a":1,"a":1}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"x":{"b":1,"b":2}}"#,
            r#"[{"b":1,"c":{"d":[{"e":1,"e":1}]}}]"#,
        ] {
            assert!(!strict(json), "{json}");
        }
    }

    #[test]
    fn strict_refuses_what_rfc8259_refuses() {
        for json in [
            "",
            "01",
            "1.",
            "[1,]",
            r#"{"a":1,}"#,
            "\u{feff}{}",
            r#""\ud800""#,
            r#""\udc00x""#,
            "\"a\u{1}\"",
            "{} x",
            "// c\n{}",
        ] {
            assert!(!strict(json), "{json}");
        }
        assert!(serde_json::from_slice::<Strict>(b"\"\xff\"").is_err());
    }

    #[test]
    fn strict_deep_nesting_is_refused_without_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(!strict(&deep));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        assert!(!strict(&objects));
        let shallow = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(strict(&shallow));
    }

    #[test]
    fn name_borrows_unless_escaped() {
        let Name(plain) = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(plain, Cow::Borrowed("plain")));
        let Name(escaped) = serde_json::from_str(r#""a\u0062c\n""#).unwrap();
        assert_eq!(escaped, "abc\n");
    }
}
