//! Where a request came from, for the audit log: the client address ([`ClientIp`]) and the
//! `User-Agent`.
//!
//! The user agent is whatever the client says, so it is only kept as printable text and cut
//! at [`MAX_USER_AGENT_CHARS`]: a client cannot grow an audit row, or smuggle line breaks
//! into what an admin reads.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::ClientIp;
use crate::AppState;
use crate::error::ApiError;
use crate::service::audit::RequestContext;

/// The longest user agent kept, in characters (the migrations enforce it too).
const MAX_USER_AGENT_CHARS: usize = 256;

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        // Only the first of several headers is kept; the audit log is a record, not a check.
        let user_agent = parts.headers.get(header::USER_AGENT);
        Ok(Self {
            ip,
            user_agent: user_agent.and_then(|value| printable(value.as_bytes())),
        })
    }
}

/// The header as printable text of at most [`MAX_USER_AGENT_CHARS`]; `None` when nothing
/// printable is left.
fn printable(raw: &[u8]) -> Option<String> {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_printable_and_bounded() {
        assert_eq!(printable(b"curl/8.5.0").as_deref(), Some("curl/8.5.0"));
        assert_eq!(printable(b"a\tb\x7fc").as_deref(), Some("abc"));
        assert_eq!(printable(b"  "), None);
        assert_eq!(printable(b"\xff\xfe").as_deref(), Some("\u{fffd}\u{fffd}"));
        let long = "é".repeat(MAX_USER_AGENT_CHARS + 10);
        let kept = printable(long.as_bytes()).unwrap();
        assert_eq!(kept.chars().count(), MAX_USER_AGENT_CHARS);
    }
}
