//! The compact form of a claims answer: the values without JSON syntax, for a cheaper trip to
//! JavaScript.
//!
//! `serde_json` escaping every string and `JSON.parse` reading it back cost about 1.5 µs of an
//! HS256 verification in Node 20, a quarter of it. The compact form is written by the core's
//! own `Serialize` implementation of [`Claims`] (so member order, absent members and the shape
//! of `aud` are the core's), but into a [`Serializer`] that copies each value verbatim:
//!
//! ```text
//! U+0001 <one code per slot of SLOTS> NUL value NUL value ...
//! ```
//!
//! A slot's code is [`ABSENT`], [`SCALAR`] (one value: a string, or a decimal integer for the
//! times) or [`LIST`] plus the number of items that follow. The values are separated by NUL,
//! which therefore must not occur in them. A claims object that does not fit (a NUL in a
//! value, or a member, type or order other than [`SLOTS`]) gets `None`, and the caller answers
//! with JSON instead: the compact form is an optimisation, never a second meaning.

use core::fmt::{self, Write as _};

use portcullis_core::Claims;
use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeSeq, Serializer};

/// The first character of a compact answer. A JSON answer starts with `{`, an error with its
/// code, so the first character tells the three apart.
pub(crate) const MARKER: char = '\u{1}';
/// Separates the values.
const SEPARATOR: char = '\0';
/// The code of a slot the claims do not have.
const ABSENT: u32 = 1;
/// The code of a slot with one value.
const SCALAR: u32 = 2;
/// The code of an empty list; a list of `n` items is `LIST + n`.
const LIST: u32 = 3;

/// What a slot holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string.
    Str,
    /// An unsigned integer.
    Int,
    /// A string or a list of strings (`aud`).
    StrOrList,
    /// A list of strings.
    List,
}

/// The members the core serialises, in its order, with whether they may be absent. The
/// TypeScript decoder (`compactClaims` in `js/src/verifier.ts`) reads the same slots.
const SLOTS: [(&str, Kind, bool); 12] = [
    ("iss", Kind::Str, false),
    ("sub", Kind::Str, false),
    ("aud", Kind::StrOrList, false),
    ("exp", Kind::Int, false),
    ("nbf", Kind::Int, true),
    ("iat", Kind::Int, true),
    ("jti", Kind::Str, true),
    ("tid", Kind::Str, true),
    ("sid", Kind::Str, true),
    ("roles", Kind::List, false),
    ("perms", Kind::List, false),
    ("amr", Kind::List, false),
];

/// `claims` in the compact form, or `None` if they do not fit it.
pub(crate) fn compact(claims: &Claims) -> Option<String> {
    let mut writer = Compact {
        codes: [ABSENT; SLOTS.len()],
        body: String::with_capacity(512),
        next: 0,
    };
    claims.serialize(Role::Top(&mut writer)).ok()?;
    // Every slot the core must write was written.
    let complete = SLOTS
        .iter()
        .zip(writer.codes)
        .all(|(&(_, _, optional), code)| optional || code != ABSENT);
    if !complete {
        return None;
    }
    let mut answer = String::with_capacity(16 + writer.body.len());
    answer.push(MARKER);
    for code in writer.codes {
        // Under the surrogates: the list lengths of a token of at most 8 KiB are far smaller.
        answer.push(char::from_u32(code).filter(|_| code < 0xd800)?);
    }
    answer.push_str(&writer.body);
    Some(answer)
}

/// The state of one compact answer.
struct Compact {
    /// The code of each slot.
    codes: [u32; SLOTS.len()],
    /// The values, each preceded by [`SEPARATOR`].
    body: String,
    /// The first slot the next member may fill.
    next: usize,
}

impl Compact {
    fn push_str(&mut self, value: &str) -> Result<(), Unfit> {
        if value.contains(SEPARATOR) {
            return Err(Unfit);
        }
        self.body.push(SEPARATOR);
        self.body.push_str(value);
        Ok(())
    }
}

/// A claims object the compact form cannot carry; the answer falls back to JSON.
#[derive(Debug)]
struct Unfit;

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("claims do not fit the compact form")
    }
}

impl core::error::Error for Unfit {}

impl ser::Error for Unfit {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Self
    }
}

/// What the value being serialised is: the claims object, a member name (naming a slot at
/// or after `next`), the value of a slot, or an item of a list slot.
enum Role<'a> {
    Top(&'a mut Compact),
    Name(&'a mut Compact),
    Value(&'a mut Compact, usize),
    Item(&'a mut Compact),
}

/// The list of slot `slot` being written, counting its items.
struct Items<'a> {
    writer: &'a mut Compact,
    slot: usize,
    count: u32,
}

macro_rules! unfit {
    ($($method:ident($($ty:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $ty),*) -> Result<$ok, Unfit> {
            Err(Unfit)
        })*
    };
}

impl<'a> Serializer for Role<'a> {
    type Ok = ();
    type Error = Unfit;
    type SerializeSeq = Items<'a>;
    type SerializeTuple = Impossible<(), Unfit>;
    type SerializeTupleStruct = Impossible<(), Unfit>;
    type SerializeTupleVariant = Impossible<(), Unfit>;
    type SerializeMap = &'a mut Compact;
    type SerializeStruct = Impossible<(), Unfit>;
    type SerializeStructVariant = Impossible<(), Unfit>;

    fn serialize_str(self, value: &str) -> Result<(), Unfit> {
        match self {
            Self::Name(writer) => {
                // The slot this member fills; only optional slots may be skipped on the way.
                let (offset, _) = SLOTS
                    .iter()
                    .skip(writer.next)
                    .enumerate()
                    .find(|(_, (name, _, _))| *name == value)
                    .ok_or(Unfit)?;
                let skipped = SLOTS.iter().skip(writer.next).take(offset);
                if !skipped.clone().all(|&(_, _, optional)| optional) {
                    return Err(Unfit);
                }
                writer.next += offset;
                Ok(())
            }
            Self::Value(writer, slot) => match SLOTS.get(slot) {
                Some((_, Kind::Str | Kind::StrOrList, _)) => {
                    writer.push_str(value)?;
                    set(writer, slot, SCALAR)
                }
                _ => Err(Unfit),
            },
            Self::Item(writer) => writer.push_str(value),
            Self::Top(_) => Err(Unfit),
        }
    }

    fn serialize_u64(self, value: u64) -> Result<(), Unfit> {
        match self {
            Self::Value(writer, slot) if matches!(SLOTS.get(slot), Some((_, Kind::Int, _))) => {
                writer.body.push(SEPARATOR);
                write!(writer.body, "{value}").map_err(|_| Unfit)?;
                set(writer, slot, SCALAR)
            }
            _ => Err(Unfit),
        }
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Items<'a>, Unfit> {
        match self {
            Self::Value(writer, slot)
                if matches!(SLOTS.get(slot), Some((_, Kind::List | Kind::StrOrList, _))) =>
            {
                Ok(Items {
                    writer,
                    slot,
                    count: 0,
                })
            }
            _ => Err(Unfit),
        }
    }

    fn serialize_map(self, _: Option<usize>) -> Result<&'a mut Compact, Unfit> {
        match self {
            Self::Top(writer) => Ok(writer),
            _ => Err(Unfit),
        }
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Unfit> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unfit> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unfit> {
        Err(Unfit)
    }

    unfit! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeTupleVariant;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeStructVariant;
    }
}

/// Records `code` for `slot`, which must not have been written yet, and moves past it.
fn set(writer: &mut Compact, slot: usize, code: u32) -> Result<(), Unfit> {
    let current = writer.codes.get_mut(slot).ok_or(Unfit)?;
    if *current != ABSENT {
        return Err(Unfit);
    }
    *current = code;
    writer.next = slot + 1;
    Ok(())
}

impl SerializeMap for &mut Compact {
    type Ok = ();
    type Error = Unfit;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Unfit> {
        key.serialize(Role::Name(self))
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Unfit> {
        let slot = self.next;
        value.serialize(Role::Value(self, slot))
    }

    fn end(self) -> Result<(), Unfit> {
        Ok(())
    }
}

impl SerializeSeq for Items<'_> {
    type Ok = ();
    type Error = Unfit;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Unfit> {
        value.serialize(Role::Item(self.writer))?;
        self.count += 1;
        Ok(())
    }

    fn end(self) -> Result<(), Unfit> {
        set(self.writer, self.slot, LIST + self.count)
    }
}
