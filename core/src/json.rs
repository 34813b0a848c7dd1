//! A strict, allocation-light JSON reader for token headers and claims (RFC 8259).
//!
//! Why not `serde_json` here: it is the right tool elsewhere in the crate, but on the token
//! path its generic machinery cost more than the HMAC itself, and it keeps the last of two
//! members with the same name. Two parsers that disagree on which duplicate wins are a
//! classic way to smuggle a claim past one of them, so this reader refuses duplicate names in
//! every object it reads, including objects nested in claims that are otherwise ignored.
//!
//! The reader accepts exactly RFC 8259 JSON in UTF-8: no comments, no trailing commas, no
//! leading zeros, no lone surrogates in `\u` escapes, no control characters in strings, no
//! byte order mark. Nesting is limited to [`MAX_DEPTH`]. Strings without escapes are borrowed
//! from the input. It is tested against `serde_json` as a reference (`tests/properties.rs`).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::TokenError;

/// The deepest nesting of arrays and objects accepted. Tokens are small and flat; the limit
/// bounds recursion so hostile input cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// Every JSON defect is a malformed token.
const BAD: TokenError = TokenError::Malformed;

type Result<T> = core::result::Result<T, TokenError>;

/// The type of the next value, from its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Object,
    Array,
    Literal,
}

/// A number, classified for the only use the crate has for numbers: NumericDate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Number {
    /// A plain non-negative integer (no sign, fraction or exponent) that fits in a `u64`.
    Unsigned(u64),
    /// Any other valid number: negative, fractional, with an exponent, or too large.
    Other,
}

/// A cursor over one JSON text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, which must be UTF-8 (RFC 8259 section 8.1).
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self> {
        let text = core::str::from_utf8(bytes).map_err(|_| BAD)?;
        Ok(Self {
            text,
            pos: 0,
            depth: 0,
        })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.eat(byte) { Ok(()) } else { Err(BAD) }
    }

    /// Succeeds only if nothing but whitespace is left.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.skip_whitespace();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(BAD)
        }
    }

    /// The type of the next value.
    #[inline]
    pub(crate) fn peek_kind(&mut self) -> Result<Kind> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'"') => Ok(Kind::String),
            Some(b'-' | b'0'..=b'9') => Ok(Kind::Number),
            Some(b'{') => Ok(Kind::Object),
            Some(b'[') => Ok(Kind::Array),
            Some(b't' | b'f' | b'n') => Ok(Kind::Literal),
            _ => Err(BAD),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(BAD)
        } else {
            Ok(())
        }
    }

    /// Reads an object, calling `member` with each name; `member` must consume the value.
    ///
    /// Duplicate names are the caller's to detect (see [`UniqueNames`]), because only the
    /// caller knows which names it has already mapped to fields.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<()>,
    ) -> Result<()> {
        self.skip_whitespace();
        self.expect(b'{')?;
        self.enter()?;
        self.skip_whitespace();
        if !self.eat(b'}') {
            loop {
                let name = self.string()?;
                self.skip_whitespace();
                self.expect(b':')?;
                member(self, name)?;
                self.skip_whitespace();
                if !self.eat(b',') {
                    self.expect(b'}')?;
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads an array, calling `element` for each element; `element` must consume it.
    pub(crate) fn array(&mut self, mut element: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.skip_whitespace();
        self.expect(b'[')?;
        self.enter()?;
        self.skip_whitespace();
        if !self.eat(b']') {
            loop {
                element(self)?;
                self.skip_whitespace();
                if !self.eat(b',') {
                    self.expect(b']')?;
                    break;
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Reads a string, borrowed from the input unless it contains escapes.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>> {
        self.skip_whitespace();
        self.expect(b'"')?;
        let start = self.pos;
        self.skip_plain();
        if self.peek() == Some(b'"') {
            // `"`, `\` and control bytes are ASCII, so they always sit on a character boundary
            // of the (already validated) UTF-8 text: `get` cannot fail here.
            let text = self.text.get(start..self.pos).ok_or(BAD)?;
            self.pos += 1;
            return Ok(Cow::Borrowed(text));
        }
        let mut owned = String::from(self.text.get(start..self.pos).ok_or(BAD)?);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    owned.push(self.escape()?);
                }
                _ => return Err(BAD),
            }
            let run = self.pos;
            self.skip_plain();
            owned.push_str(self.text.get(run..self.pos).ok_or(BAD)?);
        }
    }

    /// Advances past string content up to the next `"`, `\\`, control byte or the end.
    #[inline]
    fn skip_plain(&mut self) {
        let rest = self.text.as_bytes().get(self.pos..).unwrap_or_default();
        self.pos += plain_len(rest);
    }

    /// Decodes the escape after a backslash.
    fn escape(&mut self) -> Result<char> {
        let byte = self.peek().ok_or(BAD)?;
        self.pos += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(BAD),
        })
    }

    /// Decodes `XXXX` after `\u`, joining a surrogate pair; a lone surrogate is refused
    /// (it is not a Unicode scalar value and different parsers would replace it differently).
    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                self.expect(b'\\')?;
                self.expect(b'u')?;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(BAD);
                }
                0x1_0000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(BAD),
            _ => first,
        };
        char::from_u32(code).ok_or(BAD)
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .text
            .as_bytes()
            .get(self.pos..self.pos + 4)
            .ok_or(BAD)?;
        let mut value = 0u32;
        for &digit in digits {
            let nibble = char::from(digit).to_digit(16).ok_or(BAD)?;
            value = (value << 4) | nibble;
        }
        self.pos += 4;
        Ok(value)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Reads a number (RFC 8259 section 6 grammar).
    pub(crate) fn number(&mut self) -> Result<Number> {
        self.skip_whitespace();
        let negative = self.eat(b'-');
        // The integer part, accumulated while it is scanned; `None` once it exceeds u64.
        let mut value = Some(0u64);
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(digit @ b'0'..=b'9') = self.peek() {
                    value = value
                        .and_then(|v| v.checked_mul(10))
                        .and_then(|v| v.checked_add(u64::from(digit - b'0')));
                    self.pos += 1;
                }
            }
            _ => return Err(BAD),
        }
        let mut plain = !negative;
        if self.eat(b'.') {
            plain = false;
            if self.digits() == 0 {
                return Err(BAD);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            plain = false;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(BAD);
            }
        }
        Ok(match value {
            Some(value) if plain => Number::Unsigned(value),
            _ => Number::Other,
        })
    }

    fn literal(&mut self) -> Result<()> {
        self.skip_whitespace();
        let rest = self.text.as_bytes().get(self.pos..).ok_or(BAD)?;
        let word: &[u8] = match rest.first() {
            Some(b't') => b"true",
            Some(b'f') => b"false",
            Some(b'n') => b"null",
            _ => return Err(BAD),
        };
        if !rest.starts_with(word) {
            return Err(BAD);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Reads and discards any value, still refusing duplicate names in nested objects.
    pub(crate) fn skip_value(&mut self) -> Result<()> {
        match self.peek_kind()? {
            Kind::String => self.string().map(drop),
            Kind::Number => self.number().map(drop),
            Kind::Literal => self.literal(),
            Kind::Array => self.array(Self::skip_value),
            Kind::Object => {
                let mut names = UniqueNames::default();
                self.object(|reader, name| {
                    names.push(name);
                    reader.skip_value()
                })?;
                names.check()
            }
        }
    }
}

/// The length of the prefix of `bytes` free of `"`, `\\` and control bytes.
///
/// Scans eight bytes per step with word-wide bit tricks (safe code, no SIMD intrinsics): for
/// each byte, `x - 0x01` borrows into the high bit exactly when `x` is zero, so XOR-ing with
/// the byte sought and testing for zero finds it. A borrow can flag a byte *after* a real
/// match, never before it, so the lowest flagged byte is always exact.
#[inline]
fn plain_len(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(word);
        let quote = word ^ QUOTES;
        let backslash = word ^ BACKSLASHES;
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(SPACES) & !word);
        let found = found & HIGH;
        if found != 0 {
            // Little-endian: the lowest set bit belongs to the first flagged byte.
            return offset + (found.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    let rest = chunks.remainder();
    offset
        + rest
            .iter()
            .position(|&byte| matches!(byte, b'"' | b'\\' | 0x00..=0x1f))
            .unwrap_or(rest.len())
}

/// Member names seen in one object, checked for duplicates once the object is read.
///
/// Sorting at the end costs O(n log n) whatever the names are, so an object full of members
/// cannot make the check quadratic or defeat a hash function.
#[derive(Default)]
pub(crate) struct UniqueNames<'a> {
    names: Vec<Cow<'a, str>>,
}

impl<'a> UniqueNames<'a> {
    pub(crate) fn push(&mut self, name: Cow<'a, str>) {
        self.names.push(name);
    }

    pub(crate) fn check(&mut self) -> Result<()> {
        if self.names.len() < 2 {
            return Ok(());
        }
        self.names.sort_unstable();
        if self
            .names
            .windows(2)
            .any(|pair| pair.first() == pair.last())
        {
            return Err(BAD);
        }
        Ok(())
    }
}

/// Whether `json` is one valid JSON value under this reader's rules (test helper).
#[cfg(test)]
pub(crate) fn is_valid(json: &[u8]) -> bool {
    Reader::new(json)
        .and_then(|mut reader| {
            reader.skip_value()?;
            reader.finish()
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use alloc::borrow::ToOwned;
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    fn valid(json: &str) -> bool {
        is_valid(json.as_bytes())
    }

    #[test]
    fn reader_accepts_rfc8259_values() {
        for json in [
            "0",
            "-0",
            "1",
            "-1",
            "1.5",
            "1e5",
            "1E+5",
            "1e-5",
            "-0.0e0",
            "123456789012345678901234",
            "true",
            "false",
            "null",
            r#""""#,
            r#""a\"\\\/\b\f\n\r\tb""#,
            r#""\u00e9\uD83D\uDE00""#,
            "[]",
            "[1,[2,[3]]]",
            "{}",
            r#"{"a":{"b":[{}]}}"#,
            " \t\r\n{ \"a\" : 1 } \n",
            "\"é😀\"",
        ] {
            assert!(valid(json), "{json}");
        }
    }

    #[test]
    fn reader_refuses_non_json() {
        for json in [
            "",
            " ",
            "01",
            "-",
            "+1",
            "1.",
            ".5",
            "1e",
            "1e+",
            "0x1",
            "NaN",
            "Infinity",
            "tru",
            "nul",
            "True",
            "[1,]",
            "[,1]",
            "{,}",
            r#"{"a":1,}"#,
            r#"{"a"}"#,
            r#"{"a" 1}"#,
            "{1:1}",
            "[1 2]",
            r#""a"#,
            "\"a\u{1}\"",
            r#""\x""#,
            r#""\u12""#,
            r#""\uD800""#,
            r#""\uDC00""#,
            r#""\uD800\u0041""#,
            "\u{feff}{}",
            "{}{}",
            "[] x",
            "/*c*/1",
            "'a'",
        ] {
            assert!(!valid(json), "{json}");
        }
        assert!(!is_valid(b"\"\xff\""));
    }

    #[test]
    fn reader_refuses_duplicates_at_any_depth() {
        assert!(valid(r#"{"a":{"b":1,"c":[{"d":1}]}}"#));
        assert!(!valid(r#"{"a":1,"a":1}"#));
        assert!(!valid(r#"{"a":{"b":1,"b":2}}"#));
        assert!(!valid(r#"[{"x":[{"y":1,"y":1}]}]"#));
        assert!(!valid(r#"{"a":1,"\u0061":2}"#));
    }

    #[test]
    fn reader_limits_depth_without_overflow() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(valid(&ok));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(!valid(&deep));
        let hostile = "[".repeat(100_000);
        assert!(!valid(&hostile));
    }

    #[test]
    fn number_classifies_plain_unsigned_integers() {
        let read = |json: &str| Reader::new(json.as_bytes()).unwrap().number().unwrap();
        assert_eq!(read("0"), Number::Unsigned(0));
        assert_eq!(read("18446744073709551615"), Number::Unsigned(u64::MAX));
        for other in ["18446744073709551616", "-0", "-1", "1.0", "1e3", "10E0"] {
            assert_eq!(read(other), Number::Other, "{other}");
        }
    }

    #[test]
    fn plain_len_matches_bytewise_scan() {
        let special = |byte: u8| matches!(byte, b'"' | b'\\' | 0x00..=0x1f);
        let mut input = Vec::new();
        for len in 0..40u8 {
            for position in 0..=len {
                for marker in [b'"', b'\\', 0x00, 0x1f, b' ', 0x7f, 0x80, 0xff, b'!', b']'] {
                    input.clear();
                    input.extend((0..len).map(|i| {
                        if i == position {
                            marker
                        } else {
                            b'a' + (i % 26)
                        }
                    }));
                    let expected = input
                        .iter()
                        .position(|&b| special(b))
                        .unwrap_or(input.len());
                    assert_eq!(plain_len(&input), expected, "{input:?}");
                }
            }
        }
        assert_eq!(plain_len(b"\x01\x01\"\x01\x01\x01\x01\x01\x01"), 0);
        assert_eq!(plain_len(b"abc\x1f\"xyz0123"), 3);
    }

    /// A reference duplicate-name check on top of `serde_json`'s parser.
    struct NoDuplicates;

    impl<'de> serde::Deserialize<'de> for NoDuplicates {
        fn deserialize<D: serde::Deserializer<'de>>(
            deserializer: D,
        ) -> core::result::Result<Self, D::Error> {
            deserializer.deserialize_any(NoDuplicatesVisitor)
        }
    }

    struct NoDuplicatesVisitor;

    impl<'de> serde::de::Visitor<'de> for NoDuplicatesVisitor {
        type Value = NoDuplicates;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> core::result::Result<NoDuplicates, E> {
            Ok(NoDuplicates)
        }
        fn visit_i64<E>(self, _: i64) -> core::result::Result<NoDuplicates, E> {
            Ok(NoDuplicates)
        }
        fn visit_u64<E>(self, _: u64) -> core::result::Result<NoDuplicates, E> {
            Ok(NoDuplicates)
        }
        fn visit_f64<E>(self, _: f64) -> core::result::Result<NoDuplicates, E> {
            Ok(NoDuplicates)
        }
        fn visit_str<E>(self, _: &str) -> core::result::Result<NoDuplicates, E> {
            Ok(NoDuplicates)
        }
        fn visit_unit<E>(self) -> core::result::Result<NoDuplicates, E> {
            Ok(NoDuplicates)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> core::result::Result<NoDuplicates, A::Error> {
            while seq.next_element::<NoDuplicates>()?.is_some() {}
            Ok(NoDuplicates)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> core::result::Result<NoDuplicates, A::Error> {
            let mut names = Vec::new();
            while let Some(name) = map.next_key::<String>()? {
                if names.contains(&name) {
                    return Err(serde::de::Error::custom("duplicate"));
                }
                names.push(name);
                map.next_value::<NoDuplicates>()?;
            }
            Ok(NoDuplicates)
        }
    }

    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let atom = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(":".to_owned()),
            Just(",".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just(r#""a""#.to_owned()),
            Just(r#""b""#.to_owned()),
            Just(r#""\u0061""#.to_owned()),
            Just(r#""\ud83d\ude00""#.to_owned()),
            Just(r#""\ud83d""#.to_owned()),
            Just(r#""\"\\\/\b\f\n\r\t""#.to_owned()),
            Just(r#""é""#.to_owned()),
            Just("0".to_owned()),
            Just("-0".to_owned()),
            Just("12".to_owned()),
            Just("01".to_owned()),
            Just("1.5".to_owned()),
            Just("1e5".to_owned()),
            Just("-".to_owned()),
            Just(".".to_owned()),
            Just("e".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just("fals".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("\u{1}".to_owned()),
            "[ -~]{0,3}",
        ];
        proptest::collection::vec(atom, 0..20).prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        #[test]
        fn reader_agrees_with_serde_json(text in json_text()) {
            let ours = is_valid(text.as_bytes());
            let reference = serde_json::from_str::<NoDuplicates>(&text);
            // RFC 8259 lets parsers limit number range; `serde_json` refuses values beyond f64,
            // this reader (which only interprets integers) does not. Not a disagreement.
            let out_of_range = reference
                .as_ref()
                .err()
                .is_some_and(|error| error.to_string().contains("out of range"));
            proptest::prop_assume!(!out_of_range);
            let reference = reference.is_ok();
            proptest::prop_assert_eq!(ours, reference, "{}", text);
        }

        #[test]
        fn string_decodes_like_serde_json(text in json_text()) {
            let literal = alloc::format!("\"{}\"", text.replace('"', "\\\""));
            let ours = Reader::new(literal.as_bytes()).and_then(|mut reader| {
                let value = reader.string()?.into_owned();
                reader.finish()?;
                Ok(value)
            });
            let reference = serde_json::from_str::<String>(&literal);
            proptest::prop_assert_eq!(ours.ok(), reference.ok(), "{}", literal);
        }
    }

    #[test]
    fn string_borrows_unless_escaped() {
        let mut reader = Reader::new(br#""plain""#).unwrap();
        assert!(matches!(reader.string().unwrap(), Cow::Borrowed("plain")));
        let mut reader = Reader::new(br#""a\u0062c\n""#).unwrap();
        assert_eq!(reader.string().unwrap(), "abc\n");
    }
}
