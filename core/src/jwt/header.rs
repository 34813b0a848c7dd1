//! Strict parsing of the JOSE header (RFC 7515 section 4).
//!
//! Only `alg`, `kid` and `typ` are read. Members that would let the token choose its own
//! verification key (`jku`, `jwk`, `x5u`, `x5c`) or change how it must be processed (`crit`,
//! and RFC 7797's `b64`) are refused outright: keys come only from the configured set and no
//! extension is understood. Any other member is ignored, as RFC 7515 requires, but duplicate
//! names are refused everywhere.

use alloc::borrow::Cow;

use crate::error::TokenError;
use crate::json::{Kind, Reader, UniqueNames};

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
    /// Parses a decoded header.
    ///
    /// Every failure is [`TokenError::Malformed`]: not a JSON object, `alg` missing, a member
    /// read here that is not a string, a forbidden member or a duplicate name.
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self, TokenError> {
        let mut reader = Reader::new(json)?;
        let mut alg = None;
        let mut kid = None;
        let mut typ = None;
        let mut others = UniqueNames::default();
        reader.object(|reader, name| {
            let slot = match name.as_ref() {
                "alg" => &mut alg,
                "kid" => &mut kid,
                "typ" => &mut typ,
                forbidden if FORBIDDEN.contains(&forbidden) => return Err(TokenError::Malformed),
                _ => {
                    others.push(name);
                    return reader.skip_value();
                }
            };
            if slot.is_some() || reader.peek_kind()? != Kind::String {
                return Err(TokenError::Malformed);
            }
            *slot = Some(reader.string()?);
            Ok(())
        })?;
        reader.finish()?;
        others.check()?;
        Ok(Header {
            alg: alg.ok_or(TokenError::Malformed)?,
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
