//! The claims of a Portcullis access token.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Claim, TokenError};
use crate::jwt::strict::{Name, Names, Strict, drain_map, drain_seq, duplicate};

/// The `aud` claim: one audience or several (RFC 7519 section 4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a JSON string.
    One(String),
    /// Several audiences, serialized as a JSON array of strings.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is this audience or one of them (exact, case-sensitive match).
    ///
    /// ```
    /// use portcullis_core::Audience;
    /// let aud = Audience::Many(vec!["api".into(), "admin".into()]);
    /// assert!(aud.contains("admin"));
    /// assert!(!aud.contains("Admin"));
    /// ```
    #[must_use]
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|one| one == audience),
        }
    }
}

/// The validated claims of an access token.
///
/// Only returned by [`Verifier::verify`](crate::Verifier::verify) once the signature, issuer,
/// audience and times have been checked. Unknown claims in the token are ignored (but must
/// still be valid JSON without duplicate names). Times are unix seconds from 0 to 2^53 − 1;
/// a time of another JSON type or out of that range is
/// [`InvalidClaim`](crate::TokenError::InvalidClaim), never treated as absent. `sub`, `jti`,
/// `tid` and `sid` are never empty. `Serialize` omits absent optional claims, so the output
/// can be handed to JavaScript as-is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Issuer; always equal to the configured issuer.
    pub iss: String,
    /// Subject, e.g. `usr_…`.
    pub sub: String,
    /// Audience; always contains the configured audience.
    pub aud: Audience,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not-before, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued-at, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Token identifier (a UUIDv7), used by `jti` revocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Tenant identifier, `tnt_…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Session identifier, `ses_…`, used by `session` revocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Role names; empty when the claim is absent.
    pub roles: Vec<String>,
    /// Permission strings (`resource:action`); empty when the claim is absent.
    pub perms: Vec<String>,
    /// Authentication method references (RFC 8176); empty when the claim is absent.
    pub amr: Vec<String>,
}

/// The largest time value accepted: 2^53 − 1, the largest integer every JSON implementation
/// (JavaScript included) represents exactly (RFC 7493 section 2.2).
pub(crate) const MAX_TIME: u64 = (1 << 53) - 1;

/// A claim value as read, before the type rule of its claim is applied.
enum Value {
    /// A plain non-negative integer (no sign, fraction or exponent) that fits in a `u64`.
    Unsigned(u64),
    /// A string.
    Text(String),
    /// An array; `None` if any element is not a string.
    Strings(Option<Vec<String>>),
    /// Anything else: a negative, fractional or exponent number, a boolean, `null`, an
    /// object.
    Other,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
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

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        Ok(Value::Text(String::from(text)))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
        Ok(Value::Text(text))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Room for the usual handful of roles or permissions up front: growing from empty
        // goes through the slower reallocation path.
        let mut items = Vec::with_capacity(4);
        let mut valid = true;
        while let Some(Element(item)) = seq.next_element()? {
            match item {
                Some(item) if valid => items.push(item),
                _ => valid = false,
            }
        }
        Ok(Value::Strings(valid.then_some(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        drain_map(map)?;
        Ok(Value::Other)
    }
}

/// An array element: `Some` for a string, `None` for any other value (still read through).
struct Element(Option<String>);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element, E> {
        Ok(Element(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element, E> {
        Ok(Element(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element, E> {
        Ok(Element(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element, E> {
        Ok(Element(None))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Element, E> {
        Ok(Element(Some(String::from(text))))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Element, E> {
        Ok(Element(Some(text)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Element, A::Error> {
        drain_seq(seq)?;
        Ok(Element(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Element, A::Error> {
        drain_map(map)?;
        Ok(Element(None))
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
/// `invalid`, nothing stored).
#[derive(Default)]
struct RawClaims {
    seen: u16,
    invalid: u16,
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    tid: Option<String>,
    sid: Option<String>,
    roles: Option<Vec<String>>,
    perms: Option<Vec<String>>,
    amr: Option<Vec<String>>,
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
    /// then missing required claims.
    fn into_claims(self) -> Result<Claims, TokenError> {
        if self.invalid != 0 {
            let claim = CLAIMS
                .into_iter()
                .find(|&claim| self.invalid & bit(claim) != 0);
            return Err(TokenError::InvalidClaim(claim.unwrap_or(Claim::Iss)));
        }
        // An empty identifier could never be revoked or attributed meaningfully.
        let empty = [
            (Claim::Sub, self.sub.as_deref()),
            (Claim::Jti, self.jti.as_deref()),
            (Claim::Tid, self.tid.as_deref()),
            (Claim::Sid, self.sid.as_deref()),
        ];
        if let Some((claim, _)) = empty.iter().find(|(_, value)| *value == Some("")) {
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
        })
    }
}

impl<'de> Deserialize<'de> for RawClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = RawClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    /// Reads the claims object. A wrong type is recorded, not an error; duplicate names
    /// (of claims read here or of any other member, at any depth) are errors.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        let mut raw = RawClaims::default();
        let mut others = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            // Byte-array patterns compile to a branch tree on length and bytes, with no
            // string comparison calls: this dispatch runs for every member of every token.
            let claim = match name.as_bytes() {
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
                _ => {
                    map.next_value::<Strict>()?;
                    others.push(name);
                    continue;
                }
            };
            if raw.seen & bit(claim) != 0 {
                return Err(duplicate(&name));
            }
            raw.seen |= bit(claim);
            let value = map.next_value()?;
            raw.store(claim, value);
        }
        others.check()?;
        Ok(raw)
    }
}

impl Claims {
    /// Parses a decoded, already authenticated payload with `serde_json`. Applies typing
    /// rules only; the time, issuer and audience checks are the verifier's.
    ///
    /// JSON syntax errors, a payload that is not an object and duplicate names are
    /// [`TokenError::Malformed`].
    pub(crate) fn from_json(json: &[u8]) -> Result<Self, TokenError> {
        // One UTF-8 check of the whole text is cheaper than `serde_json` checking each string
        // of a byte slice separately (RFC 8259 section 8.1: JSON text is UTF-8).
        let json = core::str::from_utf8(json).map_err(|_| TokenError::Malformed)?;
        serde_json::from_str::<RawClaims>(json)
            .map_err(|_| TokenError::Malformed)?
            .into_claims()
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::vec;

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
        assert_eq!(claims.exp, 20);
        assert_eq!(claims.nbf, Some(5));
        assert_eq!(claims.iat, Some(6));
        assert_eq!(claims.jti.as_deref(), Some("j"));
        assert_eq!(claims.tid.as_deref(), Some("tnt_1"));
        assert_eq!(claims.sid.as_deref(), Some("ses_1"));
        assert_eq!(claims.roles, ["admin"]);
        assert_eq!(claims.perms, ["users:read"]);
        assert_eq!(claims.amr, ["pwd", "otp"]);
        assert_eq!(claims.aud, Audience::One("api".into()));
    }

    #[test]
    fn from_json_absent_lists_are_empty() {
        let claims = parse_with(r#","exp":1"#).unwrap();
        assert!(claims.roles.is_empty() && claims.perms.is_empty() && claims.amr.is_empty());
        assert_eq!(claims.nbf, None);
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
            parse_with(r#","exp":9007199254740991"#).unwrap().exp,
            MAX_TIME
        );
        assert_eq!(parse_with(r#","exp":0"#).unwrap().exp, 0);
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
        assert_eq!(
            claims.unwrap().aud,
            Audience::Many(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn serialize_omits_absent_options() {
        let claims = parse_with(r#","exp":1,"jti":"j""#).unwrap();
        let json = serde_json::to_string(&claims).unwrap();
        assert_eq!(
            json,
            r#"{"iss":"https://auth.example","sub":"usr_1","aud":"api","exp":1,"jti":"j","roles":[],"perms":[],"amr":[]}"#
        );
        let many = Audience::Many(vec!["a".into()]);
        assert_eq!(serde_json::to_string(&many).unwrap(), r#"["a"]"#);
    }
}
