//! A shortcut for claims objects in the plain form an issuer mints.
//!
//! `serde_json` reads every claims object correctly, but on a typical access token its
//! general machinery (a visitor call per value, escape handling, whitespace skipping) cost
//! more than the HMAC over the whole token. Issuers, ours included, write claims compactly:
//! no whitespace, no escapes, and only the registered claims with their expected types. This
//! module reads exactly that form, in one pass over the bytes, and declines everything else.
//!
//! It is a memo of the general reader, not a second set of rules, in the same way the verifier's
//! known headers are:
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
    /// [`MAX_TIME`](super::MAX_TIME); a larger number is declined.
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

    /// Asserts that `json` reads the same on both paths, and returns whether the plain one
    /// took it.
    fn agrees(json: &str) -> bool {
        match plain(json) {
            Some(claims) => {
                assert_eq!(claims, general(json), "{json}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn edge_values_take_the_plain_path_and_agree() {
        let base = r#""iss":"i","sub":"s","aud":"a""#;
        for json in [
            "{}".to_string(),
            r#"{"sub":""}"#.to_string(),
            r#"{"jti":"","sub":""}"#.to_string(),
            r#"{"iss":"","sub":"s","aud":"","exp":0}"#.to_string(),
            r#"{"iss":"i","sub":"s","aud":[],"exp":0}"#.to_string(),
            r#"{"iss":"i","sub":"s","aud":[""],"exp":0,"roles":[""]}"#.to_string(),
            format!(r#"{{{base},"exp":9007199254740991}}"#),
            format!(r#"{{{base},"exp":0,"nbf":0,"iat":10}}"#),
            format!("{{{base},\"exp\":1,\"jti\":\"\u{7f}\",\"tid\":\"\u{e9}\"}}"),
            format!("{{{base},\"exp\":1,\"sid\":\"\u{2028}\u{feff}\u{1f600}\"}}"),
            format!("{{{base},\"exp\":1,\"amr\":[\"/\",\"\u{7f}\",\"'\"]}}"),
            format!(r#"{{{base},"exp":1,"jti":""}}"#),
        ] {
            assert!(agrees(&json), "{json}");
        }
    }

    #[test]
    fn edge_values_outside_the_plain_form_are_declined() {
        let base = r#""iss":"i","sub":"s","aud":"a""#;
        for extra in [
            r#","exp":-0"#,
            r#","exp":0.0"#,
            r#","exp":0e0"#,
            r#","exp":00"#,
            r#","exp":1E3"#,
            r#","exp":+1"#,
            r#","exp":18446744073709551615"#,
            r#","exp":18446744073709551616"#,
            r#","exp":1,"\u0065xp":1"#,
            r#","\u0065xp":1"#,
            r#","exp":1,"EXP":1"#,
            r#","exp":1,"x":{}"#,
            r#","exp":1,"aud":"b""#,
            r#","exp":1,"jti":"\"""#,
            r#","exp":1,"jti":"a\/b""#,
            ",\"exp\":1,\"jti\":\"\u{1f}\"",
            ",\"exp\":1,\"jti\":\"\u{0}\"",
            r#","exp":1,"roles":[ ]"#,
            r#","exp":1,"roles":["a" ]"#,
            r#","exp":1,"roles":[,]"#,
            r#","exp":1,"roles":["a",]"#,
            r#","exp":1,"roles":[null]"#,
            r#","exp":1,"roles":[["a"]]"#,
            r#","exp":1,"aud":null"#,
            r#","exp":1 "#,
            ",\"exp\":1\t",
        ] {
            let json = format!("{{{base}{extra}}}");
            assert!(!agrees(&json), "{json}");
        }
        for json in [
            format!(" {MINTED}"),
            format!("{MINTED} "),
            format!("{MINTED}\n"),
            format!("\u{feff}{MINTED}"),
            format!("{MINTED}{{}}"),
            format!("{MINTED}}}"),
            format!("{MINTED}\u{0}"),
            "{ }".to_string(),
            "{}}".to_string(),
        ] {
            assert!(!agrees(&json), "{json}");
        }
    }

    /// The member names the plain form reads.
    const CLAIM_NAMES: [&str; 12] = [
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "tid", "sid", "roles", "perms", "amr",
    ];

    /// Names of an extra member: a duplicate claim, or a name that only resembles one.
    const EXTRA_NAMES: [&str; 9] = [
        "exp",
        "aud",
        "sub",
        "scope",
        "",
        "EXP",
        "ex\\u0070",
        "exp\u{7f}",
        "\u{e9}",
    ];

    /// Strings the plain form reads, including the edges of its string rule.
    const STRINGS: [&str; 5] = [
        "\"i\"",
        "\"\"",
        "\"\u{7f}\"",
        "\"\u{e9}\u{1f600}\u{2028}\"",
        "\"a/b'\"",
    ];

    /// Times the plain form reads, including both ends of the range.
    const TIMES: [&str; 4] = ["0", "7", "1900000000", "9007199254740991"];

    /// Lists the plain form reads.
    const LISTS: [&str; 5] = [
        "[]",
        "[\"\"]",
        "[\"a\"]",
        "[\"a\",\"b\"]",
        "[\"\u{7f}\",\"\"]",
    ];

    /// Values it declines: escapes, control characters, other numbers and types, and JSON
    /// that `serde_json` refuses.
    const OTHER_VALUES: [&str; 22] = [
        "\"a\\\"b\"",
        "\"\\u0061\"",
        "\"\u{1f}\"",
        "00",
        "-0",
        "0.0",
        "0e0",
        "1e3",
        "-1",
        "9007199254740992",
        "18446744073709551616",
        "1e999",
        "true",
        "null",
        "[ ]",
        "[\"a\",1]",
        "[\"a\",]",
        "[[\"a\"]]",
        "[null]",
        "{}",
        "{\"k\":1}",
        "{\"k\":1,\"k\":2}",
    ];

    /// A value for the claim `name`: mostly one of its type, sometimes any other.
    fn value_for(name: &str) -> BoxedStrategy<&'static str> {
        let typed = match name {
            "exp" | "nbf" | "iat" => prop::sample::select(&TIMES[..]).boxed(),
            "roles" | "perms" | "amr" => prop::sample::select(&LISTS[..]).boxed(),
            "aud" => prop_oneof![
                prop::sample::select(&STRINGS[..]),
                prop::sample::select(&LISTS[..]),
            ]
            .boxed(),
            _ => prop::sample::select(&STRINGS[..]).boxed(),
        };
        let any = prop::sample::select(
            [&STRINGS[..], &TIMES[..], &LISTS[..], &OTHER_VALUES[..]].concat(),
        );
        prop_oneof![20 => typed, 1 => any].boxed()
    }

    /// Mostly nothing, rarely whitespace or other bytes.
    fn rarely(bytes: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        prop_oneof![40 => Just(""), 1 => prop::sample::select(bytes)]
    }

    /// Claims-like objects built from fragments chosen to sit on both sides of every rule:
    /// distinct claims in any order, mostly with values of their type, sometimes a value of
    /// another type, an extra member, whitespace, or bytes around the object.
    fn objects() -> impl Strategy<Value = String> {
        let space = || rarely(&[" ", "\n", "\t", "\r"]);
        let members: Vec<_> = CLAIM_NAMES
            .into_iter()
            .map(|name| {
                let member = (value_for(name), space(), space(), space());
                let member =
                    member.prop_map(move |(value, a, b, c)| format!("{a}\"{name}\"{b}:{c}{value}"));
                prop::option::weighted(0.9, member)
            })
            .collect();
        let extra = prop::option::weighted(
            0.1,
            (
                prop::sample::select(&EXTRA_NAMES[..]),
                value_for("sub"),
                0..=CLAIM_NAMES.len(),
            ),
        );
        let around = || rarely(&[" ", "x", "}", "{}", ",", "\u{feff}"]);
        (members.prop_shuffle(), extra, around(), around()).prop_map(
            |(members, extra, before, after)| {
                let mut members: Vec<String> = members.into_iter().flatten().collect();
                if let Some((name, value, at)) = extra {
                    members.insert(at.min(members.len()), format!("\"{name}\":{value}"));
                }
                format!("{before}{{{}}}{after}", members.join(","))
            },
        )
    }

    /// Characters to insert into a payload: JSON punctuation, digits and number characters,
    /// whitespace, escapes, and the bytes at the edges of the string rule.
    const INSERTS: [char; 22] = [
        '"', '\\', ',', ':', '[', ']', '{', '}', '0', '9', 'a', 'e', 'u', '.', '-', '+', ' ', '\t',
        '\u{0}', '\u{1f}', '\u{7f}', '\u{e9}',
    ];

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
            edits in prop::collection::vec(
                (0..=MINTED.len(), prop::option::of(prop::sample::select(&INSERTS[..]))),
                1..4,
            ),
        ) {
            let mut chars: Vec<char> = MINTED.chars().collect();
            for (at, insert) in edits {
                let at = at.min(chars.len());
                match insert {
                    Some(char) => chars.insert(at, char),
                    None if at < chars.len() => {
                        chars.remove(at);
                    }
                    None => {}
                }
            }
            let json: String = chars.into_iter().collect();
            if let Some(claims) = plain(&json) {
                prop_assert_eq!(claims, general(&json), "{}", json);
            }
        }
    }
}
