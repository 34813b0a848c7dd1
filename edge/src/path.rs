//! Request paths in normal form, split into the segments route rules are matched against.
//!
//! Rules only protect what they can see. A path the origin could read differently from the
//! edge (`/a/../admin`, `/admin%2Fusers`, `/%61dmin`, `/admin;x=1`) would let a request match
//! a weak rule at the edge and reach a protected resource at the origin, so such paths are
//! refused instead of guessed at. Design note 0004, *Paths*.

/// Why a path is not in normal form. The text is safe to show to the client: it names the
/// rule that failed, never the path itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// Two slashes in a row.
    EmptySegment,
    /// A `.` or `..` segment.
    DotSegment,
    /// A backslash, which some servers read as a separator.
    Backslash,
    /// `%2F`, `%5C`, `%2E` or `%25` (any case): an encoded separator, dot or percent.
    EncodedDelimiter,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A `;`, raw or encoded: servlet containers drop `;…` path parameters before routing.
    Semicolon,
    /// An encoded control character, or encoded bytes that are not UTF-8.
    BadEncodedByte,
}

impl PathError {
    /// The client-facing reason.
    pub(crate) const fn detail(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the request path must start with `/`",
            Self::EmptySegment => "the request path has an empty segment (`//`)",
            Self::DotSegment => "the request path has a `.` or `..` segment",
            Self::Backslash => "the request path contains a backslash",
            Self::EncodedDelimiter => {
                "the request path contains an encoded `/`, `\\`, `.` or `%` \
                 (`%2F`, `%5C`, `%2E`, `%25`)"
            }
            Self::BadEscape => "the request path has a malformed percent-escape",
            Self::Semicolon => "the request path contains `;`",
            Self::BadEncodedByte => {
                "the request path encodes a control character or bytes that are not UTF-8"
            }
        }
    }
}

/// A path in normal form, as percent-decoded segments.
///
/// `/` has no segments. A single trailing slash is allowed and ignored for matching
/// (`/admin/` is matched as `/admin`), so a rule for `/admin` also covers the spelling that
/// most origins treat as the same resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NormalPath {
    segments: Vec<String>,
}

impl NormalPath {
    /// Checks `raw` (the URL's path, still percent-encoded) and decodes its segments.
    ///
    /// Segments are decoded for matching because origins decode them before routing:
    /// `/%61dmin` is `/admin` to the origin, so it must be `/admin` to the rules too. The
    /// encodings that could change the segment structure are refused before decoding, so a
    /// decoded segment never contains `/`, `\`, `%` or forms `.`/`..`.
    pub(crate) fn parse(raw: &str) -> Result<Self, PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        if raw.contains('\\') {
            return Err(PathError::Backslash);
        }
        if raw.contains(';') {
            return Err(PathError::Semicolon);
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            // `/`, or `//` (an empty segment followed by the tolerated trailing slash).
            return if raw.len() <= 1 {
                Ok(Self {
                    segments: Vec::new(),
                })
            } else {
                Err(PathError::EmptySegment)
            };
        }
        let segments = rest
            .split('/')
            .map(decode_segment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { segments })
    }

    /// The decoded segments, in order.
    pub(crate) fn segments(&self) -> &[String] {
        &self.segments
    }
}

fn decode_segment(segment: &str) -> Result<String, PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if segment == "." || segment == ".." {
        return Err(PathError::DotSegment);
    }
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte != b'%' {
            decoded.push(byte);
            index += 1;
            continue;
        }
        let escaped = bytes
            .get(index + 1..index + 3)
            .and_then(hex_pair)
            .ok_or(PathError::BadEscape)?;
        match escaped {
            b'/' | b'\\' | b'.' | b'%' => return Err(PathError::EncodedDelimiter),
            b';' => return Err(PathError::Semicolon),
            byte if byte.is_ascii_control() => return Err(PathError::BadEncodedByte),
            byte => decoded.push(byte),
        }
        index += 3;
    }
    String::from_utf8(decoded).map_err(|_| PathError::BadEncodedByte)
}

/// The byte two ASCII hex digits encode.
fn hex_pair(pair: &[u8]) -> Option<u8> {
    let [high, low] = pair else {
        return None;
    };
    let digit = |byte: u8| char::from(byte).to_digit(16);
    let value = digit(*high)? * 16 + digit(*low)?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Vec<String> {
        NormalPath::parse(raw).unwrap().segments().to_vec()
    }

    #[test]
    fn parse_plain_paths_split_into_segments() {
        assert!(segments("/").is_empty());
        assert_eq!(segments("/healthz"), ["healthz"]);
        assert_eq!(segments("/a/b/c"), ["a", "b", "c"]);
        assert_eq!(
            segments("/admin/"),
            ["admin"],
            "one trailing slash is ignored"
        );
        assert_eq!(
            segments("/a.b/..c/x..y/.well-known"),
            ["a.b", "..c", "x..y", ".well-known"]
        );
    }

    #[test]
    fn parse_decodes_escapes_for_matching() {
        assert_eq!(segments("/%61dmin"), ["admin"]);
        assert_eq!(segments("/caf%C3%A9/a%20b"), ["café", "a b"]);
        assert_eq!(segments("/%7euser"), ["~user"]);
    }

    #[test]
    fn parse_non_normal_paths_are_refused() {
        let cases = [
            ("", PathError::NotAbsolute),
            ("admin", PathError::NotAbsolute),
            ("//", PathError::EmptySegment),
            ("//admin", PathError::EmptySegment),
            ("/admin//users", PathError::EmptySegment),
            ("/admin//", PathError::EmptySegment),
            ("/.", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/a/./b", PathError::DotSegment),
            ("/a/../admin", PathError::DotSegment),
            ("/a/..", PathError::DotSegment),
            ("/a\\b", PathError::Backslash),
            ("/\\admin", PathError::Backslash),
            ("/admin;jsessionid=1/x", PathError::Semicolon),
            ("/admin%3Bx", PathError::Semicolon),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/a%00b", PathError::BadEncodedByte),
            ("/a%7F", PathError::BadEncodedByte),
            ("/a%FF", PathError::BadEncodedByte),
        ];
        for (raw, error) in cases {
            assert_eq!(NormalPath::parse(raw), Err(error), "{raw}");
        }
    }

    #[test]
    fn parse_encoded_delimiters_any_case_are_refused() {
        for escape in ["%2F", "%2f", "%5C", "%5c", "%2E", "%2e", "%25", "%25"] {
            for raw in [
                format!("/admin{escape}users"),
                format!("/{escape}"),
                format!("/a/{escape}{escape}/b"),
            ] {
                assert_eq!(
                    NormalPath::parse(&raw),
                    Err(PathError::EncodedDelimiter),
                    "{raw}"
                );
            }
        }
        // `%252F` is `%2F` once decoded: refusing `%25` keeps double-decoding origins safe.
        assert_eq!(
            NormalPath::parse("/a%252Fb"),
            Err(PathError::EncodedDelimiter)
        );
    }

    #[test]
    fn detail_never_echoes_the_path() {
        for error in [PathError::DotSegment, PathError::EncodedDelimiter] {
            assert!(!error.detail().contains("admin"));
        }
    }
}
