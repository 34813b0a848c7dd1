//! The claims of a Portcullis access token.

use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

use crate::error::{Claim, TokenError};
use crate::json::{Kind, Number, Reader, UniqueNames};

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

/// A NumericDate: a plain non-negative integer no larger than [`MAX_TIME`]; `None` for any
/// other JSON value, which is still read through.
fn time(reader: &mut Reader<'_>) -> Result<Option<u64>, TokenError> {
    if reader.peek_kind()? != Kind::Number {
        reader.skip_value()?;
        return Ok(None);
    }
    Ok(match reader.number()? {
        Number::Unsigned(value) if value <= MAX_TIME => Some(value),
        // Fractions, exponents, signs and huge values are never a valid time.
        Number::Unsigned(_) | Number::Other => None,
    })
}

/// A string; `None` for any other JSON value, which is still read through.
fn string(reader: &mut Reader<'_>) -> Result<Option<String>, TokenError> {
    if reader.peek_kind()? != Kind::String {
        reader.skip_value()?;
        return Ok(None);
    }
    Ok(Some(reader.string()?.into_owned()))
}

/// An array of strings; `None` if it is not an array or any element is not a string.
fn strings(reader: &mut Reader<'_>) -> Result<Option<Vec<String>>, TokenError> {
    if reader.peek_kind()? != Kind::Array {
        reader.skip_value()?;
        return Ok(None);
    }
    // Room for the usual handful of roles or permissions up front: growing from empty goes
    // through the slower reallocation path.
    let mut items = Vec::with_capacity(4);
    let mut valid = true;
    reader.array(|reader| {
        match string(reader)? {
            Some(item) if valid => items.push(item),
            _ => valid = false,
        }
        Ok(())
    })?;
    Ok(valid.then_some(items))
}

/// `aud`: a string or an array of strings.
fn audience(reader: &mut Reader<'_>) -> Result<Option<Audience>, TokenError> {
    if reader.peek_kind()? == Kind::Array {
        return Ok(strings(reader)?.map(Audience::Many));
    }
    Ok(string(reader)?.map(Audience::One))
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
    /// Records a member, refusing a second occurrence of the same name.
    fn see(&mut self, claim: Claim) -> Result<(), TokenError> {
        if self.seen & bit(claim) != 0 {
            return Err(TokenError::Malformed);
        }
        self.seen |= bit(claim);
        Ok(())
    }

    /// Stores a well-typed value or records the wrong type.
    fn store<T>(&mut self, claim: Claim, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.invalid |= bit(claim);
        }
        value
    }

    /// Reads the claims object. Syntax errors and duplicate names are `Malformed`.
    fn read(json: &[u8]) -> Result<Self, TokenError> {
        let mut reader = Reader::new(json)?;
        let mut raw = Self::default();
        let mut others = UniqueNames::default();
        reader.object(|reader, name| {
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
                    others.push(name);
                    return reader.skip_value();
                }
            };
            raw.see(claim)?;
            match claim {
                Claim::Iss => raw.iss = raw.store(claim, string(reader)?),
                Claim::Sub => raw.sub = raw.store(claim, string(reader)?),
                Claim::Aud => raw.aud = raw.store(claim, audience(reader)?),
                Claim::Exp => raw.exp = raw.store(claim, time(reader)?),
                Claim::Nbf => raw.nbf = raw.store(claim, time(reader)?),
                Claim::Iat => raw.iat = raw.store(claim, time(reader)?),
                Claim::Jti => raw.jti = raw.store(claim, string(reader)?),
                Claim::Tid => raw.tid = raw.store(claim, string(reader)?),
                Claim::Sid => raw.sid = raw.store(claim, string(reader)?),
                Claim::Roles => raw.roles = raw.store(claim, strings(reader)?),
                Claim::Perms => raw.perms = raw.store(claim, strings(reader)?),
                Claim::Amr => raw.amr = raw.store(claim, strings(reader)?),
            }
            Ok(())
        })?;
        reader.finish()?;
        others.check()?;
        Ok(raw)
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

impl Claims {
    /// Parses a decoded, already authenticated payload. Applies typing rules only; the
    /// time, issuer and audience checks are the verifier's.
    pub(crate) fn from_json(json: &[u8]) -> Result<Self, TokenError> {
        RawClaims::read(json)?.into_claims()
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
