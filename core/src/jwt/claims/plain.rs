//! A shortcut for claims objects in the plain form an issuer mints.
//!
//! `serde_json` reads every claims object correctly, but on a typical access token its
//! general machinery (a visitor call per value, escape handling, whitespace skipping) cost
//! more than the HMAC over the whole token. Issuers, ours included, write claims compactly:
//! no whitespace, no escapes, and only the registered claims with their expected types. This
//! module reads exactly that form, in one pass over the bytes, and declines everything else.
//!
//! It is a memo of the general reader, not a second set of rules, in the same way
//! the verifier's known headers are:
//! - the accepted language is a strict subset of RFC 8259 (an object of claim names read by
//!   [`Claims`](super::Claims), each at most once; values are strings without `\` or control
//!   characters, unsigned integers without leading zeros, or arrays of such strings; nothing
//!   between tokens), on text already checked to be UTF-8, where `serde_json` reads the same
//!   values;
//! - anything else, including every error case, returns `None` and the caller runs the
//!   general reader from the start, so errors and their precedence are always `serde_json`'s
//!   and the rules' own.
//!
//! A property test holds the two readers to the same result on every input this one accepts.

use super::{Audience, List, RawClaims, Span, bit, claim_named};
use crate::error::Claim;

/// Reads `json` if it is in the plain form, or `None` to hand it to the general reader.
pub(super) fn read(json: &str) -> Option<RawClaims> {
    let mut reader = Reader {
        bytes: json.as_bytes(),
        at: 0,
    };
    let mut raw = RawClaims::default();
    reader.expect(b'{')?;
    if reader.peek()? == b'}' {
        reader.at += 1;
    } else {
        loop {
            let name = reader.string()?;
            let claim = claim_named(reader.bytes.get(name.range())?)?;
            reader.expect(b':')?;
            if raw.seen & bit(claim) != 0 {
                return None;
            }
            raw.seen |= bit(claim);
            reader.value(claim, &mut raw)?;
            match reader.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    (reader.at == reader.bytes.len()).then_some(raw)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A string without escapes or control characters; its contents' position.
    fn string(&mut self) -> Option<Span> {
        self.expect(b'"')?;
        let start = self.at;
        let len = memchr::memchr(b'"', self.bytes.get(start..)?)?;
        let end = start + len;
        // `\` or a control character: the general reader's business. Without an early exit
        // the check compiles to vector instructions, which pays even on short strings.
        let contents = self.bytes.get(start..end)?;
        if contents
            .iter()
            .fold(false, |odd, &byte| odd | (byte == b'\\') | (byte < 0x20))
        {
            return None;
        }
        self.at = end + 1;
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// An unsigned integer without sign, fraction, exponent or leading zero, up to
    /// [`MAX_TIME`](super::MAX_TIME); a longer number is declined.
    fn unsigned(&mut self) -> Option<u64> {
        let first = self.next()?;
        let mut value = u64::from(first.checked_sub(b'0').filter(|digit| *digit <= 9)?);
        if value == 0 {
            // "0" alone; "01" is invalid JSON, "0.5" is for the general reader.
            return (!self.peek()?.is_ascii_digit()).then_some(0);
        }
        while let Some(digit) = self.peek().and_then(|byte| byte.checked_sub(b'0')) {
            if digit > 9 {
                break;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
            if value > super::MAX_TIME {
                return None;
            }
            self.at += 1;
        }
        Some(value)
    }

    /// An array of plain strings, its items appended to `raw.items`.
    fn strings(&mut self, raw: &mut RawClaims) -> Option<List> {
        self.expect(b'[')?;
        let start = u32::try_from(raw.items.len()).ok()?;
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                let item = self.string()?;
                raw.items.push(item);
                match self.next()? {
                    b',' => {}
                    b']' => break,
                    _ => return None,
                }
            }
        }
        let end = u32::try_from(raw.items.len()).ok()?;
        Some(List { start, end })
    }

    /// Reads the value of `claim` into `raw`, if it has the type the claim requires.
    fn value(&mut self, claim: Claim, raw: &mut RawClaims) -> Option<()> {
        match claim {
            Claim::Iss => raw.iss = Some(self.string()?),
            Claim::Sub => raw.sub = Some(self.string()?),
            Claim::Aud if self.peek()? == b'[' => {
                raw.aud = Some(Audience::Many(self.strings(raw)?));
            }
            Claim::Aud => raw.aud = Some(Audience::One(self.string()?)),
            Claim::Exp => raw.exp = Some(self.unsigned()?),
            Claim::Nbf => raw.nbf = Some(self.unsigned()?),
            Claim::Iat => raw.iat = Some(self.unsigned()?),
            Claim::Jti => raw.jti = Some(self.string()?),
            Claim::Tid => raw.tid = Some(self.string()?),
            Claim::Sid => raw.sid = Some(self.string()?),
            Claim::Roles => raw.roles = Some(self.strings(raw)?),
            Claim::Perms => raw.perms = Some(self.strings(raw)?),
            Claim::Amr => raw.amr = Some(self.strings(raw)?),
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use super::super::{Claims, read_general};
    use super::*;
    use crate::error::TokenError;

    /// The issuer's claims, as `jsonwebtoken` serializes `MintedClaims`.
    const MINTED: &str = concat!(
        r#"{"iss":"https://auth.example","sub":"usr_0193a1b2c3d4e5f60718293a4b5c6d7e","#,
        r#""aud":"api","exp":1900000900,"iat":1900000000,"nbf":1900000000,"#,
        r#""jti":"0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7","tid":"tnt_1","sid":"ses_1","#,
        r#""roles":["admin"],"perms":["users:read","billing:*"],"amr":["pwd","otp"]}"#
    );

    fn plain(json: &str) -> Option<Result<Claims, TokenError>> {
        read(json).map(|raw| raw.into_claims(json.to_string()))
    }

    fn general(json: &str) -> Result<Claims, TokenError> {
        read_general(json).and_then(|raw| raw.into_claims(json.to_string()))
    }

    #[test]
    fn minted_claims_take_the_plain_path() {
        let claims = plain(MINTED).expect("plain form").unwrap();
        assert_eq!(claims, general(MINTED).unwrap());
        assert!(claims.perms().eq(["users:read", "billing:*"]));
        assert_eq!(claims.exp(), 1_900_000_900);
        let many = r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":0,"roles":[]}"#;
        assert_eq!(plain(many).unwrap(), general(many));
    }

    #[test]
    fn anything_but_the_plain_form_is_declined() {
        let base = r#""iss":"i","sub":"s","aud":"a""#;
        for extra in [
            r#","exp": 1"#,
            r#","exp":1,"jti":"a\u0062""#,
            r#","exp":1,"jti":"a	b""#,
            r#","exp":1,"scope":"x""#,
            r#","exp":1,"exp":2"#,
            r#","exp":"1""#,
            r#","exp":01"#,
            r#","exp":1.0"#,
            r#","exp":1e3"#,
            r#","exp":-1"#,
            r#","exp":9007199254740992"#,
            r#","exp":1,"roles":["a",1]"#,
            r#","exp":1,"roles":"admin""#,
            r#","exp":1,"aud":["a"]"#,
            r#","exp":1,"#,
            r#","exp":1}"#,
            r#","exp":1]"#,
        ] {
            let json = format!("{{{base}{extra}}}");
            assert!(read(&json).is_none(), "{json}");
        }
        for json in ["", "{", "[]", "{}x", r#"{"iss":"i""#, r#"{"iss""#] {
            assert!(read(json).is_none(), "{json}");
        }
    }

    /// Claims-like objects built from fragments chosen to sit on both sides of every rule.
    fn objects() -> impl Strategy<Value = String> {
        let names = prop::sample::select(
            &[
                "iss",
                "sub",
                "aud",
                "exp",
                "nbf",
                "iat",
                "jti",
                "tid",
                "sid",
                "roles",
                "perms",
                "amr",
                "scope",
                "ex\\u0070",
                "",
            ][..],
        );
        let values = prop::sample::select(
            &[
                "\"i\"",
                "\"\"",
                "\"a\\\"b\"",
                "\"\u{e9}\u{1f600}\"",
                "0",
                "00",
                "7",
                "1900000000",
                "9007199254740991",
                "9007199254740992",
                "18446744073709551616",
                "1.5",
                "1e3",
                "-1",
                "true",
                "null",
                "[]",
                "[\"a\"]",
                "[\"a\",\"b\"]",
                "[\"a\",1]",
                "[[\"a\"]]",
                "{\"k\":1}",
                "{\"k\":1,\"k\":2}",
            ][..],
        );
        let separators = prop::sample::select(&["", "", "", " ", "\n"][..]);
        prop::collection::vec((names, values, separators), 0..14).prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(name, value, space)| format!("\"{name}\":{space}{value}"))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn plain_reader_agrees_with_the_general_reader(json in objects()) {
            if let Some(claims) = plain(&json) {
                prop_assert_eq!(claims, general(&json), "{}", json);
            }
        }

        #[test]
        fn plain_reader_agrees_on_damaged_minted_claims(
            at in 0..MINTED.len(),
            byte in prop::sample::select(&b"\"\\,:[]{}0a 9.-"[..]),
            remove in any::<bool>(),
        ) {
            let mut bytes = MINTED.as_bytes().to_vec();
            if remove {
                bytes.remove(at);
            } else {
                bytes.insert(at, byte);
            }
            if let Ok(json) = String::from_utf8(bytes)
                && let Some(claims) = plain(&json)
            {
                prop_assert_eq!(claims, general(&json), "{}", json);
            }
        }
    }
}
