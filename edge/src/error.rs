//! Every answer the edge gives instead of forwarding, and its RFC 9457 rendering.
//!
//! The codes are the issuer's where the issuer has one (design note 0002), so a client handles
//! a refusal the same way whichever component gave it; the edge adds `headers_too_large`,
//! `rate_limited`, `revocation_list_stale` and `edge_misconfigured`. Rendering is pure and
//! only ever uses fixed text, numbers and configuration variable *names*: a token, secret or
//! header value cannot reach a refusal because no variant carries one.

use portcullis_core::TokenError;
use serde::Serialize;

/// Why a request was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Step 1: the method is on `PORTCULLIS_BLOCKED_METHODS`.
    MethodBlocked,
    /// Step 1: the path matches `PORTCULLIS_BLOCKED_PATHS`.
    PathBlocked,
    /// Step 1 (and the `Authorization` header): a malformed request; the text says what.
    InvalidRequest(&'static str),
    /// Step 1: the request line and headers exceed `PORTCULLIS_MAX_HEADER_BYTES`.
    HeadersTooLarge,
    /// Step 1: the body exceeds `PORTCULLIS_MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// Step 2: no route rule matches (deny by default).
    NoRoute,
    /// Step 3: no bearer token on a route that needs one.
    Unauthenticated,
    /// Step 3 or 4: the token was refused by the core or is revoked.
    Token(TokenError),
    /// Step 3: the token names a key the edge could not load (the JWKS was never fetched).
    KeysUnavailable,
    /// Step 4: the revocation list is older than the limit (closed mode).
    RevocationListStale {
        /// The list's age in seconds; `None` if this isolate never loaded one.
        age_secs: Option<u64>,
        /// `PORTCULLIS_REVOCATION_MAX_STALENESS_SECS`.
        limit_secs: u64,
        /// Seconds until a retry can find a fresher list.
        retry_after_secs: u64,
    },
    /// Step 5: the client is over its rate limit.
    RateLimited,
    /// Step 6: the token lacks the route's permission.
    InsufficientPermission,
    /// A required variable or binding is missing or invalid; names it, never its value.
    Misconfigured(&'static str),
    /// Step 7: the origin could not be reached.
    OriginUnavailable,
    /// Step 7: the origin did not start answering within the configured deadline.
    OriginTimeout { secs: u64 },
    /// A fault in the edge itself; the cause is logged, never shown.
    Internal,
}

/// Seconds a rate-limited client should wait. The binding does not say when its window ends;
/// this is the longest period it supports, so a client never retries into the same window.
pub(crate) const RATE_LIMIT_RETRY_AFTER_SECS: u64 = 60;

/// Seconds to wait after a `service_unavailable`, as the issuer answers.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

/// A rendered refusal: status, headers and the problem document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) title: &'static str,
    pub(crate) detail: String,
    pub(crate) www_authenticate: Option<&'static str>,
    pub(crate) retry_after_secs: Option<u64>,
}

/// The RFC 9457 document, shaped like the issuer's.
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
}

const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer error="invalid_token""#;

impl Refusal {
    /// The status, code, title, detail and headers of this refusal.
    pub(crate) fn problem(self) -> Problem {
        let (status, code, title, detail) = self.parts();
        Problem {
            status,
            code,
            title,
            detail,
            www_authenticate: self.challenge(),
            retry_after_secs: self.retry_after(),
        }
    }

    fn parts(self) -> (u16, &'static str, &'static str, String) {
        let fixed = |status, code, title, detail: &str| (status, code, title, detail.to_owned());
        match self {
            Self::MethodBlocked => fixed(
                405,
                "method_not_allowed",
                "Method not allowed",
                "this method is not accepted here",
            ),
            Self::PathBlocked => fixed(403, "forbidden", "Forbidden", "this path is blocked"),
            Self::InvalidRequest(detail) => {
                fixed(400, "invalid_request", "Invalid request", detail)
            }
            Self::HeadersTooLarge => fixed(
                431,
                "headers_too_large",
                "Request headers too large",
                "the request line and headers are over the size limit",
            ),
            Self::PayloadTooLarge => fixed(
                413,
                "payload_too_large",
                "Payload too large",
                "the request body is over the size limit",
            ),
            Self::NoRoute => fixed(
                403,
                "forbidden",
                "Forbidden",
                "no route rule allows this request",
            ),
            Self::Unauthenticated => fixed(
                401,
                "unauthenticated",
                "Authentication required",
                "a bearer token is required",
            ),
            Self::Token(error) => token_parts(error),
            Self::KeysUnavailable | Self::OriginUnavailable => self.unavailable_parts(),
            Self::RevocationListStale {
                age_secs,
                limit_secs,
                ..
            } => (503, "revocation_list_stale", "Revocation list stale", {
                match age_secs {
                    Some(age) => format!(
                        "the revocation list is {age} s old, over the limit of {limit_secs} s"
                    ),
                    None => format!(
                        "no revocation list has been loaded yet (the limit is {limit_secs} s)"
                    ),
                }
            }),
            Self::OriginTimeout { secs } => (
                504,
                "origin_timeout",
                "Origin timeout",
                format!("the origin did not answer within {secs} s"),
            ),
            Self::RateLimited => fixed(
                429,
                "rate_limited",
                "Rate limited",
                "too many requests from this client; retry later",
            ),
            Self::InsufficientPermission => fixed(
                403,
                "forbidden",
                "Forbidden",
                "the token lacks the permission this route requires",
            ),
            Self::Misconfigured(variable) => (
                503,
                "edge_misconfigured",
                "Edge misconfigured",
                format!("{variable} is missing or invalid"),
            ),
            Self::Internal => fixed(
                500,
                "internal_error",
                "Internal error",
                "the edge failed to answer",
            ),
        }
    }

    fn unavailable_parts(self) -> (u16, &'static str, &'static str, String) {
        let detail = if self == Self::KeysUnavailable {
            "the token's signing keys could not be loaded; retry shortly"
        } else {
            "the origin could not be reached; retry shortly"
        };
        (
            503,
            "service_unavailable",
            "Service unavailable",
            detail.to_owned(),
        )
    }

    fn challenge(self) -> Option<&'static str> {
        match self {
            Self::Unauthenticated => Some("Bearer"),
            Self::Token(_) => Some(INVALID_TOKEN_CHALLENGE),
            Self::InsufficientPermission => Some(r#"Bearer error="insufficient_scope""#),
            _ => None,
        }
    }

    fn retry_after(self) -> Option<u64> {
        match self {
            Self::RateLimited => Some(RATE_LIMIT_RETRY_AFTER_SECS),
            Self::RevocationListStale {
                retry_after_secs, ..
            } => Some(retry_after_secs),
            Self::KeysUnavailable | Self::OriginUnavailable => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

/// A refused token, as the issuer answers it (`issuer/src/error.rs`): expired and revoked
/// have their own codes, everything else is `invalid_token` with the core code as detail.
fn token_parts(error: TokenError) -> (u16, &'static str, &'static str, String) {
    match error {
        TokenError::Expired => (
            401,
            "token_expired",
            "Token expired",
            "the access token has expired".to_owned(),
        ),
        TokenError::Revoked => (
            401,
            "token_revoked",
            "Token revoked",
            "the access token was revoked".to_owned(),
        ),
        other => (
            401,
            "invalid_token",
            "Invalid token",
            other.code().to_owned(),
        ),
    }
}

impl Problem {
    /// The `application/problem+json` body.
    pub(crate) fn body(&self) -> String {
        let body = ProblemBody {
            problem_type: format!("urn:portcullis:problem:{}", self.code),
            title: self.title,
            status: self.status,
            detail: &self.detail,
            code: self.code,
        };
        // Strings and numbers always serialize; the fallback is still a valid document.
        serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::Claim;
    use serde_json::{Value, json};

    use super::*;

    fn body(refusal: Refusal) -> Value {
        serde_json::from_str(&refusal.problem().body()).unwrap()
    }

    #[test]
    fn problem_codes_and_statuses_match_the_contract() {
        let table = [
            (Refusal::MethodBlocked, 405, "method_not_allowed"),
            (Refusal::PathBlocked, 403, "forbidden"),
            (Refusal::InvalidRequest("x"), 400, "invalid_request"),
            (Refusal::HeadersTooLarge, 431, "headers_too_large"),
            (Refusal::PayloadTooLarge, 413, "payload_too_large"),
            (Refusal::NoRoute, 403, "forbidden"),
            (Refusal::Unauthenticated, 401, "unauthenticated"),
            (
                Refusal::Token(TokenError::BadSignature),
                401,
                "invalid_token",
            ),
            (Refusal::Token(TokenError::Expired), 401, "token_expired"),
            (Refusal::Token(TokenError::Revoked), 401, "token_revoked"),
            (Refusal::KeysUnavailable, 503, "service_unavailable"),
            (
                Refusal::RevocationListStale {
                    age_secs: Some(31),
                    limit_secs: 30,
                    retry_after_secs: 1,
                },
                503,
                "revocation_list_stale",
            ),
            (Refusal::RateLimited, 429, "rate_limited"),
            (Refusal::InsufficientPermission, 403, "forbidden"),
            (
                Refusal::Misconfigured("PORTCULLIS_ROUTES"),
                503,
                "edge_misconfigured",
            ),
            (Refusal::OriginUnavailable, 503, "service_unavailable"),
            (Refusal::OriginTimeout { secs: 30 }, 504, "origin_timeout"),
            (Refusal::Internal, 500, "internal_error"),
        ];
        for (refusal, status, code) in table {
            let problem = refusal.problem();
            assert_eq!(
                (problem.status, problem.code),
                (status, code),
                "{refusal:?}"
            );
            let body = body(refusal);
            assert_eq!(body["type"], format!("urn:portcullis:problem:{code}"));
            assert_eq!(body["status"], status);
            assert_eq!(body["code"], code);
            assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
            assert_eq!(body.as_object().unwrap().len(), 5);
        }
    }

    #[test]
    fn problem_challenges_follow_rfc_6750() {
        let challenge = |refusal: Refusal| refusal.problem().www_authenticate;
        assert_eq!(challenge(Refusal::Unauthenticated), Some("Bearer"));
        for error in [
            TokenError::Malformed,
            TokenError::Expired,
            TokenError::Revoked,
        ] {
            assert_eq!(
                challenge(Refusal::Token(error)),
                Some(r#"Bearer error="invalid_token""#)
            );
        }
        assert_eq!(
            challenge(Refusal::InsufficientPermission),
            Some(r#"Bearer error="insufficient_scope""#)
        );
        assert_eq!(challenge(Refusal::NoRoute), None);
        assert_eq!(challenge(Refusal::PathBlocked), None);
    }

    #[test]
    fn problem_invalid_token_detail_is_the_core_code() {
        let body = body(Refusal::Token(TokenError::InvalidClaim(Claim::Aud)));
        assert_eq!(body["detail"], "token_claim_invalid");
        let body = body_of(TokenError::InvalidAudience);
        assert_eq!(body["detail"], "token_audience_invalid");
    }

    fn body_of(error: TokenError) -> Value {
        body(Refusal::Token(error))
    }

    #[test]
    fn problem_stale_list_states_age_limit_and_retry() {
        let refusal = Refusal::RevocationListStale {
            age_secs: Some(42),
            limit_secs: 30,
            retry_after_secs: 1,
        };
        assert_eq!(
            body(refusal)["detail"],
            "the revocation list is 42 s old, over the limit of 30 s"
        );
        assert_eq!(refusal.problem().retry_after_secs, Some(1));
        let never = Refusal::RevocationListStale {
            age_secs: None,
            limit_secs: 30,
            retry_after_secs: 1,
        };
        assert!(body(never)["detail"].as_str().unwrap().contains("30 s"));
    }

    #[test]
    fn problem_misconfigured_names_the_variable_only() {
        let body = body(Refusal::Misconfigured("PORTCULLIS_HS256_KEYS"));
        assert_eq!(
            body,
            json!({
                "type": "urn:portcullis:problem:edge_misconfigured",
                "title": "Edge misconfigured",
                "status": 503,
                "detail": "PORTCULLIS_HS256_KEYS is missing or invalid",
                "code": "edge_misconfigured",
            })
        );
    }

    #[test]
    fn problem_retry_after_on_limits_and_outages() {
        assert_eq!(
            Refusal::RateLimited.problem().retry_after_secs,
            Some(RATE_LIMIT_RETRY_AFTER_SECS)
        );
        assert_eq!(
            Refusal::OriginUnavailable.problem().retry_after_secs,
            Some(5)
        );
        assert_eq!(Refusal::NoRoute.problem().retry_after_secs, None);
    }
}
