//! The claims of a Portcullis access token.
//!
//! Every edge request and SDK call verifies a token, and outside the MAC most of that time went
//! to allocating and copying one `String` per claim and list item. [`Claims`] therefore keeps
//! the decoded payload itself and hands out views of the strings in it (an escaped string is
//! unescaped once, after the payload): a verified token costs one allocation (the payload;
//! the positions of list items are kept inline up to eight), whatever claims it carries.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::iter::FusedIterator;
use core::ops::Range;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap as _, Serializer};

use crate::error::{Claim, TokenError};
use crate::jwt::strict::{Name, Names, Strict, drain_map, drain_seq, duplicate};

mod plain;

/// Where one string lies in [`Claims::text`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn is_empty(self) -> bool {
        self.start == self.end
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Positions are `u32`, which keeps [`Claims`] small enough to move cheaply: tokens are at
/// most 8 KiB, and only a claims object read from elsewhere could exceed 4 GiB of text.
fn position<E: de::Error>(at: usize) -> Result<u32, E> {
    u32::try_from(at).map_err(|_| E::custom("claims text beyond 4 GiB"))
}

/// The list items of a token, inline up to the usual handful: one heap allocation fewer per
/// verification.
type Items = smallvec::SmallVec<[Span; 8]>;

/// Where the items of one list claim lie in [`Claims::items`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct List {
    start: u32,
    end: u32,
}

impl List {
    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The `aud` claim: a string, or an array of strings (RFC 7519 section 4.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Audience {
    One(Span),
    Many(List),
}

/// The validated claims of an access token.
///
/// Only returned by [`Verifier::verify`](crate::Verifier::verify) once the signature, issuer,
/// audience and times have been checked. Unknown claims in the token are ignored (but must
/// still be valid JSON without duplicate names). Times are unix seconds from 0 to 2^53 − 1;
/// a time of another JSON type or out of that range is
/// [`InvalidClaim`](crate::TokenError::InvalidClaim), never treated as absent. `sub`, `jti`,
/// `tid` and `sid` are never empty.
///
/// `Serialize` writes the claims as a JWT claims object, omitting absent optional claims, so
/// the output can be handed to JavaScript as-is; `Deserialize` reads one under the same typing
/// rules as verification (it checks no signature and no time, issuer or audience).
///
/// ```
/// use portcullis_core::Claims;
/// let claims: Claims = serde_json::from_str(
///     r#"{"iss":"https://auth.example","sub":"usr_1","aud":["api","admin"],"exp":1900000000,
///         "perms":["users:read","billing:*"]}"#,
/// )?;
/// assert_eq!(claims.sub(), "usr_1");
/// assert!(claims.aud().any(|aud| aud == "admin"));
/// assert_eq!(claims.perms().collect::<Vec<_>>(), ["users:read", "billing:*"]);
/// assert!(claims.has_permission("billing:refund"));
/// assert_eq!(claims.jti(), None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Claims {
    /// The payload JSON, followed by the unescaped text of strings that had escapes in it.
    text: String,
    /// The list items of `aud`, `roles`, `perms` and `amr`.
    items: Items,
    iss: Span,
    sub: Span,
    aud: Audience,
    exp: u64,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<Span>,
    tid: Option<Span>,
    sid: Option<Span>,
    roles: List,
    perms: List,
    amr: List,
}

impl Claims {
    fn str(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or_default()
    }

    fn list(&self, list: List) -> ClaimValues<'_> {
        ClaimValues {
            text: &self.text,
            items: self.items.get(list.range()).unwrap_or_default().iter(),
        }
    }

    /// Issuer; after verification, always equal to the configured issuer.
    #[must_use]
    pub fn iss(&self) -> &str {
        self.str(self.iss)
    }

    /// Subject, e.g. `usr_…`.
    #[must_use]
    pub fn sub(&self) -> &str {
        self.str(self.sub)
    }

    /// The audiences: one when `aud` is a string, each element when it is an array. After
    /// verification, they always include the configured audience.
    #[must_use]
    pub fn aud(&self) -> ClaimValues<'_> {
        match &self.aud {
            Audience::One(one) => ClaimValues {
                text: &self.text,
                items: core::slice::from_ref(one).iter(),
            },
            Audience::Many(many) => self.list(*many),
        }
    }

    /// Whether `audience` is one of [`aud`](Self::aud) (exact, case-sensitive match).
    #[must_use]
    pub fn has_audience(&self, audience: &str) -> bool {
        self.aud().any(|one| one == audience)
    }

    /// Expiry, unix seconds.
    #[must_use]
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// Not-before, unix seconds.
    #[must_use]
    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }

    /// Issued-at, unix seconds.
    #[must_use]
    pub fn iat(&self) -> Option<u64> {
        self.iat
    }

    /// Token identifier (a UUIDv7), used by `jti` revocations.
    #[must_use]
    pub fn jti(&self) -> Option<&str> {
        self.jti.map(|span| self.str(span))
    }

    /// Tenant identifier, `tnt_…`.
    #[must_use]
    pub fn tid(&self) -> Option<&str> {
        self.tid.map(|span| self.str(span))
    }

    /// Session identifier, `ses_…`, used by `session` revocations.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.sid.map(|span| self.str(span))
    }

    /// Role names; none when the claim is absent.
    #[must_use]
    pub fn roles(&self) -> ClaimValues<'_> {
        self.list(self.roles)
    }

    /// Permission strings (`resource:action`); none when the claim is absent.
    #[must_use]
    pub fn perms(&self) -> ClaimValues<'_> {
        self.list(self.perms)
    }

    /// Authentication method references (RFC 8176); none when the claim is absent.
    #[must_use]
    pub fn amr(&self) -> ClaimValues<'_> {
        self.list(self.amr)
    }

    /// Whether [`perms`](Self::perms) grant `required`, as
    /// [`rbac::has_permission`](crate::rbac::has_permission) decides.
    #[must_use]
    pub fn has_permission(&self, required: &str) -> bool {
        crate::rbac::has_permission(self.perms(), required)
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        self.iss() == other.iss()
            && self.sub() == other.sub()
            && matches!(self.aud, Audience::Many(_)) == matches!(other.aud, Audience::Many(_))
            && self.aud().eq(other.aud())
            && self.exp == other.exp
            && self.nbf == other.nbf
            && self.iat == other.iat
            && self.jti() == other.jti()
            && self.tid() == other.tid()
            && self.sid() == other.sid()
            && self.roles().eq(other.roles())
            && self.perms().eq(other.perms())
            && self.amr().eq(other.amr())
    }
}

impl Eq for Claims {}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("iss", &self.iss())
            .field("sub", &self.sub())
            .field("aud", &self.aud())
            .field("exp", &self.exp)
            .field("nbf", &self.nbf)
            .field("iat", &self.iat)
            .field("jti", &self.jti())
            .field("tid", &self.tid())
            .field("sid", &self.sid())
            .field("roles", &self.roles())
            .field("perms", &self.perms())
            .field("amr", &self.amr())
            .finish()
    }
}

impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("iss", self.iss())?;
        map.serialize_entry("sub", self.sub())?;
        match self.aud {
            Audience::One(one) => map.serialize_entry("aud", self.str(one))?,
            Audience::Many(_) => map.serialize_entry("aud", &self.aud())?,
        }
        map.serialize_entry("exp", &self.exp)?;
        if let Some(nbf) = self.nbf {
            map.serialize_entry("nbf", &nbf)?;
        }
        if let Some(iat) = self.iat {
            map.serialize_entry("iat", &iat)?;
        }
        for (name, value) in [
            ("jti", self.jti()),
            ("tid", self.tid()),
            ("sid", self.sid()),
        ] {
            if let Some(value) = value {
                map.serialize_entry(name, value)?;
            }
        }
        map.serialize_entry("roles", &self.roles())?;
        map.serialize_entry("perms", &self.perms())?;
        map.serialize_entry("amr", &self.amr())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ClaimsVisitor { json: "" })?
            .into_claims(String::new())
            .map_err(de::Error::custom)
    }
}

/// The values of a list claim (or the audiences), borrowed from their [`Claims`].
#[derive(Clone)]
pub struct ClaimValues<'a> {
    text: &'a str,
    items: core::slice::Iter<'a, Span>,
}

impl<'a> Iterator for ClaimValues<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let span = self.items.next()?;
        Some(self.text.get(span.range()).unwrap_or_default())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl DoubleEndedIterator for ClaimValues<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let span = self.items.next_back()?;
        Some(self.text.get(span.range()).unwrap_or_default())
    }
}

impl ExactSizeIterator for ClaimValues<'_> {}

impl FusedIterator for ClaimValues<'_> {}

impl fmt::Debug for ClaimValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl Serialize for ClaimValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.clone())
    }
}

/// The largest time value accepted: 2^53 − 1, the largest integer every JSON implementation
/// (JavaScript included) represents exactly (RFC 7493 section 2.2).
pub(crate) const MAX_TIME: u64 = (1 << 53) - 1;

/// A claim value as read, before the type rule of its claim is applied. Strings are already
/// placed in the claims' text (see [`Texts`]).
enum Value {
    /// A plain non-negative integer (no sign, fraction or exponent) that fits in a `u64`.
    Unsigned(u64),
    /// A string.
    Text(Span),
    /// An array; `None` if any element is not a string.
    Strings(Option<List>),
    /// Anything else: a negative, fractional or exponent number, a boolean, `null`, an
    /// object.
    Other,
}

/// Places the strings of a claims object in the text of the [`Claims`] being built.
///
/// A string read straight from `json` (no escapes) is located where it is; any other string
/// is copied into `unescaped`, and its span is where it will be once `unescaped` is appended
/// to `json`, so every span indexes the one text the claims finally own.
#[derive(Default)]
struct Texts<'de> {
    json: &'de str,
    unescaped: String,
}

impl<'de> Texts<'de> {
    fn borrowed<E: de::Error>(&mut self, value: &'de str) -> Result<Span, E> {
        let base = self.json.as_ptr() as usize;
        let start = (value.as_ptr() as usize).wrapping_sub(base);
        match start.checked_add(value.len()) {
            Some(end) if end <= self.json.len() => Ok(Span {
                start: position(start)?,
                end: position(end)?,
            }),
            _ => self.copied(value),
        }
    }

    fn copied<E: de::Error>(&mut self, value: &str) -> Result<Span, E> {
        let start = self.json.len().saturating_add(self.unescaped.len());
        self.unescaped.push_str(value);
        Ok(Span {
            start: position(start)?,
            end: position(start.saturating_add(value.len()))?,
        })
    }
}

/// Reads one claim value, placing its strings in the text of the claims being built.
struct ValueSeed<'b, 'de> {
    texts: &'b mut Texts<'de>,
    items: &'b mut Items,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, 'de> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, 'de> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        // `serde_json` reports only negative integers as `i64`.
        Ok(Value::Other)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Unsigned(value))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        // Fractions, exponents, `-0` and integers beyond `u64` are never a valid time.
        Ok(Value::Other)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Value, E> {
        self.texts.borrowed(text).map(Value::Text)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        self.texts.copied(text).map(Value::Text)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let start = position(self.items.len())?;
        let mut valid = true;
        while let Some(item) = seq.next_element_seed(ElementSeed { texts: self.texts })? {
            match item {
                Some(span) if valid => self.items.push(span),
                _ => valid = false,
            }
        }
        let end = position(self.items.len())?;
        Ok(Value::Strings(valid.then_some(List { start, end })))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        drain_map(map)?;
        Ok(Value::Other)
    }
}

/// Reads one array element: `Some` for a string (placed in the text), `None` for any other
/// value (still read through).
struct ElementSeed<'b, 'de> {
    texts: &'b mut Texts<'de>,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_, 'de> {
    type Value = Option<Span>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Span>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_, 'de> {
    type Value = Option<Span>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Option<Span>, E> {
        self.texts.borrowed(text).map(Some)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<Span>, E> {
        self.texts.copied(text).map(Some)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Span>, A::Error> {
        drain_seq(seq)?;
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Span>, A::Error> {
        drain_map(map)?;
        Ok(None)
    }
}

/// Every claim this crate reads, in the order their errors are reported.
const CLAIMS: [Claim; 12] = [
    Claim::Iss,
    Claim::Sub,
    Claim::Aud,
    Claim::Exp,
    Claim::Nbf,
    Claim::Iat,
    Claim::Jti,
    Claim::Tid,
    Claim::Sid,
    Claim::Roles,
    Claim::Perms,
    Claim::Amr,
];

/// The claims as read, before any rule is applied.
///
/// Each claim is in one of three states, and keeping "wrong type" apart from "absent" is what
/// stops `"exp": "never"` from being read as a token without expiry: absent (bit clear in
/// `seen`), well-typed (bit set, value stored) or wrong type (bit set in `seen` and
/// `invalid`, nothing stored). Text and items of values of the wrong type may be left in the
/// buffers; such claims are refused as a whole.
#[derive(Default)]
struct RawClaims {
    seen: u16,
    invalid: u16,
    /// Unescaped strings, to follow the JSON text (see [`Texts`]).
    unescaped: String,
    items: Items,
    iss: Option<Span>,
    sub: Option<Span>,
    aud: Option<Audience>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<Span>,
    tid: Option<Span>,
    sid: Option<Span>,
    roles: Option<List>,
    perms: Option<List>,
    amr: Option<List>,
}

/// The bit of `claim` in [`RawClaims::seen`] and [`RawClaims::invalid`].
const fn bit(claim: Claim) -> u16 {
    1 << (claim as u16)
}

impl RawClaims {
    /// Stores a well-typed value, or records that the claim has the wrong type.
    fn store(&mut self, claim: Claim, value: Value) {
        match (claim, value) {
            (Claim::Iss, Value::Text(text)) => self.iss = Some(text),
            (Claim::Sub, Value::Text(text)) => self.sub = Some(text),
            (Claim::Aud, Value::Text(one)) => self.aud = Some(Audience::One(one)),
            (Claim::Aud, Value::Strings(Some(many))) => self.aud = Some(Audience::Many(many)),
            (Claim::Exp, Value::Unsigned(time)) if time <= MAX_TIME => self.exp = Some(time),
            (Claim::Nbf, Value::Unsigned(time)) if time <= MAX_TIME => self.nbf = Some(time),
            (Claim::Iat, Value::Unsigned(time)) if time <= MAX_TIME => self.iat = Some(time),
            (Claim::Jti, Value::Text(text)) => self.jti = Some(text),
            (Claim::Tid, Value::Text(text)) => self.tid = Some(text),
            (Claim::Sid, Value::Text(text)) => self.sid = Some(text),
            (Claim::Roles, Value::Strings(Some(list))) => self.roles = Some(list),
            (Claim::Perms, Value::Strings(Some(list))) => self.perms = Some(list),
            (Claim::Amr, Value::Strings(Some(list))) => self.amr = Some(list),
            // Fractions, exponents, signs and huge values are never a valid time.
            (claim, _) => self.invalid |= bit(claim),
        }
    }

    /// Applies the typing rules: wrong types first, in claim order, then empty identifiers,
    /// then missing required claims. `json` is the text the claims were read from.
    fn into_claims(self, mut json: String) -> Result<Claims, TokenError> {
        if self.invalid != 0 {
            let claim = CLAIMS
                .into_iter()
                .find(|&claim| self.invalid & bit(claim) != 0);
            return Err(TokenError::InvalidClaim(claim.unwrap_or(Claim::Iss)));
        }
        // An empty identifier could never be revoked or attributed meaningfully.
        let empty = [
            (Claim::Sub, self.sub),
            (Claim::Jti, self.jti),
            (Claim::Tid, self.tid),
            (Claim::Sid, self.sid),
        ];
        if let Some((claim, _)) = empty
            .iter()
            .find(|(_, span)| span.is_some_and(Span::is_empty))
        {
            return Err(TokenError::InvalidClaim(*claim));
        }
        Ok(Claims {
            iss: self.iss.ok_or(TokenError::MissingClaim(Claim::Iss))?,
            sub: self.sub.ok_or(TokenError::MissingClaim(Claim::Sub))?,
            aud: self.aud.ok_or(TokenError::MissingClaim(Claim::Aud))?,
            exp: self.exp.ok_or(TokenError::MissingClaim(Claim::Exp))?,
            nbf: self.nbf,
            iat: self.iat,
            jti: self.jti,
            tid: self.tid,
            sid: self.sid,
            roles: self.roles.unwrap_or_default(),
            perms: self.perms.unwrap_or_default(),
            amr: self.amr.unwrap_or_default(),
            text: {
                json.push_str(&self.unescaped);
                json
            },
            items: self.items,
        })
    }
}

/// The claim this crate reads under the member name `name`, if any.
fn claim_named(name: &[u8]) -> Option<Claim> {
    // Byte-array patterns compile to a branch tree on length and bytes, with no string
    // comparison calls: this dispatch runs for every member of every token.
    Some(match name {
        [b'i', b's', b's'] => Claim::Iss,
        [b's', b'u', b'b'] => Claim::Sub,
        [b'a', b'u', b'd'] => Claim::Aud,
        [b'e', b'x', b'p'] => Claim::Exp,
        [b'n', b'b', b'f'] => Claim::Nbf,
        [b'i', b'a', b't'] => Claim::Iat,
        [b'j', b't', b'i'] => Claim::Jti,
        [b't', b'i', b'd'] => Claim::Tid,
        [b's', b'i', b'd'] => Claim::Sid,
        [b'r', b'o', b'l', b'e', b's'] => Claim::Roles,
        [b'p', b'e', b'r', b'm', b's'] => Claim::Perms,
        [b'a', b'm', b'r'] => Claim::Amr,
        _ => return None,
    })
}

/// Reads a claims object into [`RawClaims`], locating unescaped strings in `json`, the text
/// being read (empty when the strings do not come from one text).
struct ClaimsVisitor<'de> {
    json: &'de str,
}

impl<'de> Visitor<'de> for ClaimsVisitor<'de> {
    type Value = RawClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    /// Reads the claims object. A wrong type is recorded, not an error; duplicate names
    /// (of claims read here or of any other member, at any depth) are errors.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        let mut raw = RawClaims::default();
        let mut texts = Texts {
            json: self.json,
            unescaped: String::new(),
        };
        let mut others = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            let Some(claim) = claim_named(name.as_bytes()) else {
                map.next_value::<Strict>()?;
                others.push(name);
                continue;
            };
            if raw.seen & bit(claim) != 0 {
                return Err(duplicate(&name));
            }
            raw.seen |= bit(claim);
            let value = map.next_value_seed(ValueSeed {
                texts: &mut texts,
                items: &mut raw.items,
            })?;
            raw.store(claim, value);
        }
        others.check()?;
        raw.unescaped = texts.unescaped;
        Ok(raw)
    }
}

/// Reads any claims object with `serde_json`.
fn read_general(json: &str) -> Result<RawClaims, TokenError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    Deserializer::deserialize_map(&mut deserializer, ClaimsVisitor { json })
        .and_then(|raw| deserializer.end().map(|()| raw))
        .map_err(|_| TokenError::Malformed)
}

impl Claims {
    /// Parses a decoded, already authenticated payload, keeping it as the claims' text: the
    /// plain form issuers mint in one pass ([`plain`]), anything else with `serde_json`.
    /// Applies typing rules only; the time, issuer and audience checks are the verifier's.
    ///
    /// Invalid UTF-8, JSON syntax errors, a payload that is not an object and duplicate names
    /// are [`TokenError::Malformed`].
    pub(crate) fn from_payload(payload: Vec<u8>) -> Result<Self, TokenError> {
        // One UTF-8 check of the whole text is cheaper than `serde_json` checking each string
        // of a byte slice separately (RFC 8259 section 8.1: JSON text is UTF-8).
        let json = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let raw = match plain::read(&json) {
            Some(raw) => raw,
            None => read_general(&json)?,
        };
        raw.into_claims(json)
    }

    #[cfg(test)]
    fn from_json(json: &[u8]) -> Result<Self, TokenError> {
        Self::from_payload(json.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    const BASE: &str = r#""iss":"https://auth.example","sub":"usr_1","aud":"api""#;

    fn parse_with(extra: &str) -> Result<Claims, TokenError> {
        Claims::from_json(format!("{{{BASE}{extra}}}").as_bytes())
    }

    #[test]
    fn from_json_full_claims_are_read() {
        let claims = parse_with(
            r#","exp":20,"nbf":5,"iat":6,"jti":"j","tid":"tnt_1","sid":"ses_1",
               "roles":["admin"],"perms":["users:read"],"amr":["pwd","otp"],"extra":{"a":[1]}"#,
        )
        .unwrap();
        assert_eq!(claims.exp(), 20);
        assert_eq!(claims.nbf(), Some(5));
        assert_eq!(claims.iat(), Some(6));
        assert_eq!(claims.jti(), Some("j"));
        assert_eq!(claims.tid(), Some("tnt_1"));
        assert_eq!(claims.sid(), Some("ses_1"));
        assert!(claims.roles().eq(["admin"]));
        assert!(claims.perms().eq(["users:read"]));
        assert!(claims.amr().eq(["pwd", "otp"]));
        assert!(claims.aud().eq(["api"]));
        assert_eq!(claims.iss(), "https://auth.example");
        assert_eq!(claims.sub(), "usr_1");
    }

    #[test]
    fn from_json_absent_lists_are_empty() {
        let claims = parse_with(r#","exp":1"#).unwrap();
        assert_eq!(
            claims.roles().len() + claims.perms().len() + claims.amr().len(),
            0
        );
        assert_eq!(claims.nbf(), None);
    }

    #[test]
    fn from_json_time_of_wrong_type_is_invalid_not_absent() {
        for value in [
            r#""20""#,
            "20.0",
            "2e1",
            "-1",
            "null",
            "true",
            "[20]",
            r#"{"v":20}"#,
            "1e300",
            "18446744073709551616",
            "9007199254740992",
        ] {
            for claim in [Claim::Exp, Claim::Nbf, Claim::Iat] {
                let extra = if claim == Claim::Exp {
                    format!(r#","exp":{value}"#)
                } else {
                    format!(r#","exp":20,"{claim}":{value}"#)
                };
                assert_eq!(
                    parse_with(&extra),
                    Err(TokenError::InvalidClaim(claim)),
                    "{extra}"
                );
            }
        }
        assert_eq!(
            parse_with(r#","exp":9007199254740991"#).unwrap().exp(),
            MAX_TIME
        );
        assert_eq!(parse_with(r#","exp":0"#).unwrap().exp(), 0);
    }

    #[test]
    fn from_json_number_beyond_f64_is_malformed() {
        // `serde_json` refuses a number it cannot represent even as an `f64`, so such a
        // payload is not JSON it accepts: refused as a whole rather than as a bad time.
        assert_eq!(parse_with(r#","exp":1e999"#), Err(TokenError::Malformed));
        assert_eq!(
            parse_with(r#","exp":20,"x":-1e999"#),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn from_json_missing_required_claims_are_named() {
        let cases = [
            (r#"{"sub":"s","aud":"a","exp":1}"#, Claim::Iss),
            (r#"{"iss":"i","aud":"a","exp":1}"#, Claim::Sub),
            (r#"{"iss":"i","sub":"s","exp":1}"#, Claim::Aud),
            (r#"{"iss":"i","sub":"s","aud":"a"}"#, Claim::Exp),
        ];
        for (json, claim) in cases {
            assert_eq!(
                Claims::from_json(json.as_bytes()),
                Err(TokenError::MissingClaim(claim))
            );
        }
    }

    #[test]
    fn from_json_strings_and_lists_of_wrong_type_are_invalid() {
        let cases = [
            (r#"{"iss":1,"sub":"s","aud":"a","exp":1}"#, Claim::Iss),
            (r#"{"iss":"i","sub":"","aud":"a","exp":1}"#, Claim::Sub),
            (r#"{"iss":"i","sub":null,"aud":"a","exp":1}"#, Claim::Sub),
            (r#"{"iss":"i","sub":"s","aud":["a",1],"exp":1}"#, Claim::Aud),
            (r#"{"iss":"i","sub":"s","aud":{"a":1},"exp":1}"#, Claim::Aud),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":1,"jti":""}"#,
                Claim::Jti,
            ),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":1,"sid":7}"#,
                Claim::Sid,
            ),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":1,"tid":["t"]}"#,
                Claim::Tid,
            ),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":1,"roles":"admin"}"#,
                Claim::Roles,
            ),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":1,"perms":[["a:b"]]}"#,
                Claim::Perms,
            ),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":1,"amr":null}"#,
                Claim::Amr,
            ),
        ];
        for (json, claim) in cases {
            assert_eq!(
                Claims::from_json(json.as_bytes()),
                Err(TokenError::InvalidClaim(claim)),
                "{json}"
            );
        }
    }

    #[test]
    fn from_json_duplicate_members_are_malformed() {
        for extra in [
            r#","exp":1,"exp":1"#,
            r#","exp":1,"\u0065xp":2"#,
            r#","exp":1,"iss":"other""#,
            r#","exp":1,"aud":["api"]"#,
            r#","exp":1,"roles":[],"roles":["admin"]"#,
            r#","exp":1,"x":1,"x":2"#,
            r#","exp":1,"x":{"y":1,"y":2}"#,
            r#","exp":1,"aud2":[{"y":1,"y":2}]"#,
            r#","exp":"bad","exp":1"#,
        ] {
            assert_eq!(parse_with(extra), Err(TokenError::Malformed), "{extra}");
        }
    }

    #[test]
    fn from_json_non_object_is_malformed() {
        for json in [
            "",
            "[]",
            "1",
            "\"s\"",
            "null",
            "{",
            "Example of Ed25519 signing",
        ] {
            assert_eq!(
                Claims::from_json(json.as_bytes()),
                Err(TokenError::Malformed),
                "{json}"
            );
        }
        assert_eq!(
            Claims::from_json(b"{\"iss\":\"\xff\"}"),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn from_json_audience_array_is_many() {
        let claims = Claims::from_json(br#"{"iss":"i","sub":"s","aud":["a","b"],"exp":1}"#);
        let claims = claims.unwrap();
        assert!(claims.aud().eq(["a", "b"]));
        assert!(claims.has_audience("b") && !claims.has_audience("c"));
    }

    #[test]
    fn from_json_escaped_strings_are_unescaped() {
        let claims = parse_with(r#","exp":1,"jti":"a\u00e9\n","roles":["\ud83d\ude00","x"]"#);
        let claims = claims.unwrap();
        assert_eq!(claims.jti(), Some("a\u{e9}\n"));
        assert!(claims.roles().eq(["\u{1f600}", "x"]));
    }

    #[test]
    fn wrong_type_in_a_list_leaves_no_trace_in_other_claims() {
        // The refused list wrote its first item into the buffers before the number was met.
        let claims = parse_with(r#","exp":1,"roles":["admin",1]"#);
        assert_eq!(claims, Err(TokenError::InvalidClaim(Claim::Roles)));
        let claims = parse_with(r#","exp":1,"perms":["a:b"],"amr":["pwd"]"#).unwrap();
        assert!(claims.perms().eq(["a:b"]) && claims.amr().eq(["pwd"]));
        assert_eq!(claims.roles().next(), None);
    }

    #[test]
    fn serialize_omits_absent_options() {
        let claims = parse_with(r#","exp":1,"jti":"j""#).unwrap();
        let json = serde_json::to_string(&claims).unwrap();
        assert_eq!(
            json,
            r#"{"iss":"https://auth.example","sub":"usr_1","aud":"api","exp":1,"jti":"j","roles":[],"perms":[],"amr":[]}"#
        );
        let many = Claims::from_json(br#"{"iss":"i","sub":"s","aud":["a"],"exp":1}"#).unwrap();
        let json = serde_json::to_string(&many).unwrap();
        assert!(json.contains(r#""aud":["a"]"#), "{json}");
    }

    #[test]
    fn serialize_then_deserialize_round_trips_under_the_same_rules() {
        let claims = parse_with(
            r#","exp":20,"nbf":5,"iat":6,"jti":"j","tid":"t","sid":"s","roles":["r"],
               "perms":["a:b","c:*"],"amr":["pwd"]"#,
        )
        .unwrap();
        let json = serde_json::to_string(&claims).unwrap();
        let back: Claims = serde_json::from_str(&json).unwrap();
        assert_eq!(back, claims);
        assert_eq!(format!("{back:?}"), format!("{claims:?}"));
        let refused = serde_json::from_str::<Claims>(r#"{"iss":"i","sub":"s","aud":"a"}"#);
        assert!(refused.is_err());
        let refused =
            serde_json::from_str::<Claims>(r#"{"iss":"i","sub":"s","aud":"a","exp":"1"}"#);
        assert!(refused.is_err());
    }
}
