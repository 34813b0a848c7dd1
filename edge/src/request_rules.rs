//! Step 1, the request rules in the seed's WAF spirit: blocked methods and paths, paths in
//! normal form, and the size of the request head and declared body.
//!
//! These run before anything else, on every route, and look only at the request head. The
//! body's actual length is counted later by whoever reads it (see `gate`), because a request
//! without `Content-Length` only reveals its size by being read.

use crate::config::Config;
use crate::error::Refusal;
use crate::path::NormalPath;

/// The parts of the request head the rules look at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head<'a> {
    /// The method exactly as received (not normalised: unknown methods must stay unknown).
    pub(crate) method: &'a str,
    /// The URL path, still percent-encoded.
    pub(crate) path: &'a str,
    /// The size of the request line and headers; see [`head_size`].
    pub(crate) head_bytes: u64,
    /// The `Content-Length` header, if any.
    pub(crate) content_length: Option<&'a str>,
}

/// Applies the rules in the contract's order; the path in normal form on success.
///
/// A path that is not in normal form cannot be compared with blocked patterns (they are
/// matched on decoded segments), so it is refused as not normal whether or not it would have
/// matched one: both are refusals, only the code differs.
pub(crate) fn check(config: &Config, head: &Head<'_>) -> Result<NormalPath, Refusal> {
    if config.is_blocked_method(head.method) {
        return Err(Refusal::MethodBlocked);
    }
    let path = NormalPath::parse(head.path);
    if let Ok(path) = &path
        && config.is_blocked_path(path)
    {
        return Err(Refusal::PathBlocked);
    }
    let path = path.map_err(|error| Refusal::InvalidRequest(error.detail()))?;
    if head.head_bytes > config.max_header_bytes {
        return Err(Refusal::HeadersTooLarge);
    }
    if let Some(declared) = declared_length(head.content_length)?
        && declared > config.max_body_bytes
    {
        return Err(Refusal::PayloadTooLarge);
    }
    Ok(path)
}

/// The declared body length. Only plain digits are accepted: a list (`5, 5`), a sign or
/// spaces inside are ambiguous between servers, which is how request smuggling starts.
fn declared_length(value: Option<&str>) -> Result<Option<u64>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value.trim();
    let parsed = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse::<u64>().ok())
        .flatten();
    parsed.map(Some).ok_or(Refusal::InvalidRequest(
        "the Content-Length header is not a whole number",
    ))
}

/// The size of an HTTP/1.1 request head with this method, target and headers: the request
/// line, each `name: value` line, and the blank line. The runtime does not expose the bytes
/// as received, so this is what they would be; headers the runtime merged (`a, b`) count
/// once, with the separator.
pub(crate) fn head_size<'a>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> u64 {
    const LINE_END: usize = 2;
    const HTTP_VERSION: usize = " HTTP/1.1".len();
    let request_line = method.len() + 1 + target.len() + HTTP_VERSION + LINE_END;
    let header_lines: usize = headers
        .into_iter()
        .map(|(name, value)| name.len() + 2 + value.len() + LINE_END)
        .sum();
    u64::try_from(request_line + header_lines + LINE_END).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut vars = vec![
            ("PORTCULLIS_ORIGIN_URL", "http://127.0.0.1:9000"),
            ("PORTCULLIS_ISSUER_URL", "http://127.0.0.1:8080"),
            (
                "PORTCULLIS_ROUTES",
                r#"[{"path": "/**", "access": "public"}]"#,
            ),
            ("PORTCULLIS_MAX_HEADER_BYTES", "100"),
            ("PORTCULLIS_MAX_BODY_BYTES", "10"),
            (
                "PORTCULLIS_BLOCKED_PATHS",
                r#"["/internal/**", "/*/secret"]"#,
            ),
        ];
        vars.extend_from_slice(extra);
        Config::parse_pairs(&vars).unwrap()
    }

    fn head<'a>(method: &'a str, path: &'a str) -> Head<'a> {
        Head {
            method,
            path,
            head_bytes: 50,
            content_length: None,
        }
    }

    #[test]
    fn check_blocked_methods_any_case_are_405() {
        let config = config(&[]);
        for method in ["TRACE", "trace", "CONNECT"] {
            assert_eq!(
                check(&config, &head(method, "/")),
                Err(Refusal::MethodBlocked)
            );
        }
        assert!(check(&config, &head("GET", "/")).is_ok());
        assert!(check(&config, &head("PROPFIND", "/")).is_ok());
    }

    #[test]
    fn check_blocked_paths_are_403_even_when_encoded() {
        let config = config(&[]);
        for path in [
            "/internal",
            "/internal/x",
            "/%69nternal/x",
            "/a/secret",
            "/a/secret/",
        ] {
            assert_eq!(
                check(&config, &head("GET", path)),
                Err(Refusal::PathBlocked),
                "{path}"
            );
        }
        assert!(check(&config, &head("GET", "/a/b/secret")).is_ok());
    }

    #[test]
    fn check_non_normal_paths_are_400() {
        let config = config(&[]);
        for path in [
            "//x", "/a/../b", "/a/./b", "/a\\b", "/a%2fb", "/a%2Eb", "/a%5cb", "/%25",
        ] {
            assert!(
                matches!(
                    check(&config, &head("GET", path)),
                    Err(Refusal::InvalidRequest(_))
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn check_order_method_then_path_then_sizes() {
        let config = config(&[]);
        let mut both = head("TRACE", "/internal/x");
        both.head_bytes = 1_000;
        assert_eq!(check(&config, &both), Err(Refusal::MethodBlocked));
        both.method = "GET";
        assert_eq!(check(&config, &both), Err(Refusal::PathBlocked));
        both.path = "/a//b";
        assert!(matches!(
            check(&config, &both),
            Err(Refusal::InvalidRequest(_))
        ));
        both.path = "/ok";
        both.content_length = Some("11");
        assert_eq!(check(&config, &both), Err(Refusal::HeadersTooLarge));
        both.head_bytes = 100;
        assert_eq!(check(&config, &both), Err(Refusal::PayloadTooLarge));
        both.content_length = Some("10");
        assert!(check(&config, &both).is_ok());
    }

    #[test]
    fn check_malformed_content_length_is_400() {
        let config = config(&[]);
        for value in [
            "",
            "-1",
            "+5",
            "5, 5",
            "1e3",
            "0x10",
            "99999999999999999999999",
        ] {
            let mut request = head("POST", "/");
            request.content_length = Some(value);
            assert!(
                matches!(check(&config, &request), Err(Refusal::InvalidRequest(_))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn head_size_counts_request_line_headers_and_blank_line() {
        // "GET /a HTTP/1.1\r\n" (17) + "host: x\r\n" (9) + "\r\n" (2)
        assert_eq!(head_size("GET", "/a", [("host", "x")]), 28);
        assert_eq!(head_size("GET", "/", []), 16 + 2);
    }
}
