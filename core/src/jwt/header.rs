//! Strict parsing of the JOSE header (RFC 7515 section 4).
//!
//! Only `alg`, `kid` and `typ` are read. Members that would let the token choose its own
//! verification key (`jku`, `jwk`, `x5u`, `x5c`) or change how it must be processed (`crit`,
//! and RFC 7797's `b64`) are refused outright: keys come only from the configured set and no
//! extension is understood. Any other member is ignored, as RFC 7515 requires, but duplicate
//! names are refused everywhere. The JSON itself is read by `serde_json`.

use alloc::borrow::Cow;
use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::error::TokenError;
use crate::jwt::strict::{Name, Names, Strict, duplicate};

/// Header members this crate refuses whatever their value.
const FORBIDDEN: [&str; 6] = ["crit", "jku", "jwk", "x5u", "x5c", "b64"];

/// The JOSE header members this crate reads, borrowed from the decoded header when possible.
#[derive(Debug)]
pub(crate) struct Header<'a> {
    /// The algorithm the token claims; only ever compared with the chosen key's algorithm.
    pub(crate) alg: Cow<'a, str>,
    /// The key identifier.
    pub(crate) kid: Option<Cow<'a, str>>,
    /// The media type of the whole token (RFC 7515 section 4.1.9).
    pub(crate) typ: Option<Cow<'a, str>>,
}

impl<'a> Header<'a> {
    /// Parses a decoded header with `serde_json`.
    ///
    /// Every failure is [`TokenError::Malformed`]: not a JSON object, `alg` missing, a member
    /// read here that is not a string, a forbidden member or a duplicate name.
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self, TokenError> {
        let json = core::str::from_utf8(json).map_err(|_| TokenError::Malformed)?;
        serde_json::from_str(json).map_err(|_| TokenError::Malformed)
    }
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut alg = None;
        let mut kid = None;
        let mut typ = None;
        let mut others = Names::default();
        while let Some(Name(name)) = map.next_key()? {
            let slot = match name.as_ref() {
                "alg" => &mut alg,
                "kid" => &mut kid,
                "typ" => &mut typ,
                forbidden if FORBIDDEN.contains(&forbidden) => {
                    return Err(de::Error::custom(format_args!(
                        "header member `{forbidden}` is refused"
                    )));
                }
                _ => {
                    map.next_value::<Strict>()?;
                    others.push(name);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(duplicate(&name));
            }
            let Name(value) = map.next_value()?;
            *slot = Some(value);
        }
        others.check()?;
        Ok(Header {
            alg: alg.ok_or_else(|| de::Error::missing_field("alg"))?,
            kid,
            typ,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Header<'_>, TokenError> {
        Header::parse(json.as_bytes())
    }

    #[test]
    fn parse_minimal_header_borrows_members() {
        let header = parse(r#"{"alg":"EdDSA","kid":"k1","typ":"at+jwt","x5t":"ignored"}"#)
            .expect("valid header");
        assert_eq!(header.alg, "EdDSA");
        assert!(matches!(header.alg, Cow::Borrowed(_)));
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    }

    #[test]
    fn parse_escaped_member_names_are_recognised() {
        let header = parse(r#"{"\u0061lg":"HS256","kid":"\u006b1"}"#).expect("valid header");
        assert_eq!(header.alg, "HS256");
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(
            parse(r#"{"alg":"HS256","\u0061lg":"EdDSA"}"#).err(),
            Some(TokenError::Malformed)
        );
    }

    #[test]
    fn parse_duplicate_members_are_malformed() {
        for json in [
            r#"{"alg":"HS256","alg":"HS256"}"#,
            r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
            r#"{"alg":"HS256","typ":"JWT","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","x":1,"x":2}"#,
            r#"{"alg":"HS256","x":{"y":1,"y":1}}"#,
        ] {
            assert_eq!(parse(json).err(), Some(TokenError::Malformed), "{json}");
        }
    }

    #[test]
    fn parse_forbidden_members_are_malformed() {
        for member in FORBIDDEN {
            let json = alloc::format!(r#"{{"alg":"HS256","{member}":null}}"#);
            assert_eq!(parse(&json).err(), Some(TokenError::Malformed), "{member}");
        }
    }

    #[test]
    fn parse_wrong_shapes_are_malformed() {
        for json in [
            "",
            "[]",
            "null",
            r#"{"kid":"k1"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":5}"#,
            r#"{"alg":"HS256","kid":7}"#,
            r#"{"alg":"HS256","typ":["at+jwt"]}"#,
            r#"{"alg":"HS256"} "#,
            r#"{"alg":"HS256"}x"#,
            "\u{feff}{\"alg\":\"HS256\"}",
            r#"{"alg":"HS256",}"#,
        ] {
            let result = parse(json);
            if json == r#"{"alg":"HS256"} "# {
                // Trailing whitespace is valid JSON.
                assert!(result.is_ok());
            } else {
                assert_eq!(result.err(), Some(TokenError::Malformed), "{json}");
            }
        }
    }
}
