//! The decision: whether a request is forwarded, and with which identity (design note 0004,
//! steps 1 to 6, in that order; the first step that refuses answers).
//!
//! The decision is pure. Everything it needs from the runtime (reading the body, verifying a
//! token against keys that may have to be fetched, the replicated revocation list, the rate
//! limiter) comes through [`Effects`], so the order of the steps and every code are tested on
//! the host with a fake. The worker implements `Effects` in `handler`.

use portcullis_core::{Claims, TokenError};

use crate::config::{Config, StaleMode};
use crate::error::Refusal;
use crate::forward::Identity;
use crate::request_rules::{self, Head};
use crate::routes::Access;

/// The request as the decision sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request<'a> {
    pub(crate) head: Head<'a>,
    /// The `Authorization` header as received.
    pub(crate) authorization: Option<&'a str>,
    /// `CF-Connecting-IP`, the client address Cloudflare saw.
    pub(crate) client_ip: Option<&'a str>,
}

/// What the revocation step found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RevocationStatus {
    /// The list is fresh enough and does not revoke the token.
    Current,
    /// The list revokes the token (stale or not: a known revocation always counts).
    Revoked,
    /// The list is older than the limit; `None` if none was ever loaded.
    Stale { age_secs: Option<u64> },
}

/// The I/O the decision needs. The worker's implementation reads the JS clock; the decision
/// itself never asks for the time.
pub(crate) trait Effects {
    /// Reads the body, refusing it once it is over `limit` bytes; `None` without a body.
    async fn read_body(&mut self, limit: u64) -> Result<Option<Vec<u8>>, Refusal>;
    /// Verifies a bearer token (signature, `typ`, `iss`, `aud`, times) with the current keys.
    async fn verify(&mut self, token: &str) -> Result<Claims, Refusal>;
    /// Checks verified claims against the revocation list, syncing it first if it is due.
    async fn revocation_status(&mut self, claims: &Claims) -> RevocationStatus;
    /// Counts one request for `client`; `false` if it is over the limit.
    async fn within_rate_limit(&mut self, client: &str) -> bool;
    /// Logs a warning. Callers pass fixed text and numbers only, never request data.
    fn warn(&mut self, message: &str);
}

/// A request that may be forwarded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// The body read in step 1, to forward as is.
    pub(crate) body: Option<Vec<u8>>,
    /// `None` for public routes: they reach the origin with no identity headers.
    pub(crate) identity: Option<Identity>,
}

/// Runs steps 1 to 6.
///
/// # Errors
///
/// The refusal of the first step that refuses.
pub(crate) async fn decide<E: Effects>(
    config: &Config,
    request: &Request<'_>,
    effects: &mut E,
) -> Result<Admitted, Refusal> {
    let path = request_rules::check(config, &request.head)?;
    let body = effects.read_body(config.max_body_bytes).await?;

    let access = config
        .routes
        .access(request.head.method, &path)
        .ok_or(Refusal::NoRoute)?;
    if *access == Access::Public {
        rate_limit(effects, &client_by_address(request.client_ip)).await?;
        return Ok(Admitted {
            body,
            identity: None,
        });
    }

    let token = bearer_token(request.authorization)?.ok_or(Refusal::Unauthenticated)?;
    let claims = effects.verify(token).await?;
    check_revocation(config, effects, &claims).await?;
    rate_limit(effects, &format!("sub:{}", claims.sub())).await?;
    if let Access::Permission(permission) = access
        && !claims.has_permission(permission.as_str())
    {
        return Err(Refusal::InsufficientPermission);
    }

    let identity = Identity::from_claims(&claims).map_err(Refusal::Token)?;
    Ok(Admitted {
        body,
        identity: Some(identity),
    })
}

/// Step 4. A revoked token is refused even by a stale list; staleness alone refuses only in
/// `closed` mode.
async fn check_revocation<E: Effects>(
    config: &Config,
    effects: &mut E,
    claims: &Claims,
) -> Result<(), Refusal> {
    match effects.revocation_status(claims).await {
        RevocationStatus::Current => Ok(()),
        RevocationStatus::Revoked => Err(Refusal::Token(TokenError::Revoked)),
        RevocationStatus::Stale { age_secs } => match config.stale_mode {
            StaleMode::Closed => Err(Refusal::RevocationListStale {
                age_secs,
                limit_secs: config.max_staleness_secs,
                retry_after_secs: config.revocation_interval_ms.div_ceil(1_000).max(1),
            }),
            StaleMode::Open => {
                effects.warn("revocation list over the staleness limit; passing (stale mode open)");
                Ok(())
            }
        },
    }
}

async fn rate_limit<E: Effects>(effects: &mut E, client: &str) -> Result<(), Refusal> {
    if effects.within_rate_limit(client).await {
        Ok(())
    } else {
        Err(Refusal::RateLimited)
    }
}

/// The rate-limit key of a client without a token. Without `CF-Connecting-IP` (local
/// development) every such client shares one key.
fn client_by_address(address: Option<&str>) -> String {
    format!("ip:{}", address.map_or("unknown", str::trim))
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive, RFC 6750), as
/// the issuer reads it (`issuer/src/http/extract/principal.rs`).
///
/// The runtime joins repeated headers with `, `; a comma never occurs in a token, so one
/// means two `Authorization` headers, which are refused rather than resolved: a proxy, a
/// cache and the origin could each pick a different one.
fn bearer_token(value: Option<&str>) -> Result<Option<&str>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value.contains(',') {
        return Err(Refusal::InvalidRequest(
            "exactly one Authorization header is allowed",
        ));
    }
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    let token = token.trim();
    Ok((scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token))
}

#[cfg(test)]
mod tests {
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    use serde_json::json;

    use super::*;
    use crate::forward::{ROLES_HEADER, SUBJECT_HEADER, TENANT_HEADER};

    /// Runs a future whose effects never wait.
    fn run<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the fake effects never wait"),
        }
    }

    const ROUTES: &str = r#"[
        {"path": "/healthz", "access": "public"},
        {"path": "/admin/**", "methods": ["POST"], "permission": "users:write"},
        {"path": "/**", "access": "authenticated"}
    ]"#;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut vars = vec![
            ("PORTCULLIS_ORIGIN_URL", "http://127.0.0.1:9000"),
            ("PORTCULLIS_ISSUER_URL", "http://127.0.0.1:8080"),
            ("PORTCULLIS_ROUTES", ROUTES),
            ("PORTCULLIS_MAX_BODY_BYTES", "8"),
        ];
        vars.extend_from_slice(extra);
        Config::parse_pairs(&vars).unwrap()
    }

    /// Records every effect in order; each answer is set per test.
    struct Fake {
        calls: Vec<String>,
        body: Result<Option<Vec<u8>>, Refusal>,
        verify: Result<serde_json::Value, Refusal>,
        revocation: RevocationStatus,
        allow: bool,
    }

    impl Default for Fake {
        fn default() -> Self {
            Self {
                calls: Vec::new(),
                body: Ok(None),
                verify: Ok(json!({
                    "iss": "i", "sub": "usr_1", "aud": "a", "exp": 1, "tid": "tnt_1",
                    "roles": ["admin"], "perms": ["users:write"],
                })),
                revocation: RevocationStatus::Current,
                allow: true,
            }
        }
    }

    impl Effects for Fake {
        async fn read_body(&mut self, limit: u64) -> Result<Option<Vec<u8>>, Refusal> {
            self.calls.push(format!("body<={limit}"));
            self.body.clone()
        }

        async fn verify(&mut self, token: &str) -> Result<Claims, Refusal> {
            self.calls.push(format!("verify {token}"));
            self.verify
                .clone()
                .map(|claims| serde_json::from_value(claims).unwrap())
        }

        async fn revocation_status(&mut self, claims: &Claims) -> RevocationStatus {
            self.calls.push(format!("revocation {}", claims.sub()));
            self.revocation
        }

        async fn within_rate_limit(&mut self, client: &str) -> bool {
            self.calls.push(format!("rate {client}"));
            self.allow
        }

        fn warn(&mut self, message: &str) {
            self.calls.push(format!("warn {message}"));
        }
    }

    fn request<'a>(method: &'a str, path: &'a str, authorization: Option<&'a str>) -> Request<'a> {
        Request {
            head: Head {
                method,
                path,
                head_bytes: 10,
                content_length: None,
            },
            authorization,
            client_ip: Some("192.0.2.1"),
        }
    }

    fn decide_with(
        config: &Config,
        request: &Request<'_>,
        fake: &mut Fake,
    ) -> Result<Admitted, Refusal> {
        run(decide(config, request, fake))
    }

    #[test]
    fn decide_public_route_skips_token_and_limits_by_address() {
        let mut fake = Fake::default();
        let admitted = decide_with(&config(&[]), &request("GET", "/healthz", None), &mut fake);
        assert_eq!(
            admitted,
            Ok(Admitted {
                body: None,
                identity: None
            })
        );
        assert_eq!(fake.calls, ["body<=8", "rate ip:192.0.2.1"]);
    }

    #[test]
    fn decide_public_route_with_a_bad_token_still_passes_without_identity() {
        let mut fake = Fake {
            verify: Err(Refusal::Token(TokenError::BadSignature)),
            ..Fake::default()
        };
        let request = request("GET", "/healthz", Some("Bearer forged"));
        let admitted = decide_with(&config(&[]), &request, &mut fake).unwrap();
        assert_eq!(admitted.identity, None);
        assert!(!fake.calls.iter().any(|call| call.starts_with("verify")));
    }

    #[test]
    fn decide_authenticated_route_runs_every_step_in_order() {
        let mut fake = Fake {
            body: Ok(Some(b"hi".to_vec())),
            ..Fake::default()
        };
        let request = request("POST", "/admin/users", Some("Bearer a.b.c"));
        let admitted = decide_with(&config(&[]), &request, &mut fake).unwrap();
        assert_eq!(
            fake.calls,
            [
                "body<=8",
                "verify a.b.c",
                "revocation usr_1",
                "rate sub:usr_1"
            ]
        );
        assert_eq!(admitted.body.as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            admitted.identity.unwrap().headers(),
            [
                (SUBJECT_HEADER, "usr_1"),
                (TENANT_HEADER, "tnt_1"),
                (ROLES_HEADER, "admin")
            ]
        );
    }

    #[test]
    fn decide_request_rules_refuse_before_the_body_is_read() {
        let config = config(&[("PORTCULLIS_BLOCKED_PATHS", r#"["/blocked"]"#)]);
        for (method, path, refusal) in [
            ("TRACE", "/healthz", Refusal::MethodBlocked),
            ("GET", "/blocked", Refusal::PathBlocked),
        ] {
            let mut fake = Fake::default();
            let outcome = decide_with(&config, &request(method, path, None), &mut fake);
            assert_eq!(outcome, Err(refusal));
            assert!(fake.calls.is_empty(), "{method} {path}: {:?}", fake.calls);
        }
        let mut fake = Fake::default();
        let outcome = decide_with(&config, &request("GET", "/a/../b", None), &mut fake);
        assert!(matches!(outcome, Err(Refusal::InvalidRequest(_))));
        assert!(fake.calls.is_empty());
    }

    #[test]
    fn decide_body_refusal_comes_before_routing_and_token() {
        let mut fake = Fake {
            body: Err(Refusal::PayloadTooLarge),
            ..Fake::default()
        };
        let outcome = decide_with(&config(&[]), &request("POST", "/x", None), &mut fake);
        assert_eq!(outcome, Err(Refusal::PayloadTooLarge));
        assert_eq!(fake.calls, ["body<=8"]);
    }

    #[test]
    fn decide_no_matching_rule_is_forbidden() {
        let config = config(&[(
            "PORTCULLIS_ROUTES",
            r#"[{"path": "/a", "access": "public"}]"#,
        )]);
        let mut fake = Fake::default();
        let outcome = decide_with(&config, &request("GET", "/b", Some("Bearer t")), &mut fake);
        assert_eq!(outcome, Err(Refusal::NoRoute));
        assert_eq!(fake.calls, ["body<=8"]);
    }

    #[test]
    fn decide_missing_or_unusable_authorization_is_unauthenticated() {
        for authorization in [
            None,
            Some("Basic dXNlcjpwdw=="),
            Some("Bearer "),
            Some("Bearer"),
        ] {
            let mut fake = Fake::default();
            let outcome = decide_with(
                &config(&[]),
                &request("GET", "/x", authorization),
                &mut fake,
            );
            assert_eq!(outcome, Err(Refusal::Unauthenticated), "{authorization:?}");
            assert_eq!(fake.calls, ["body<=8"]);
        }
        let mut fake = Fake::default();
        let two = request("GET", "/x", Some("Bearer a.b.c, Bearer d.e.f"));
        assert!(matches!(
            decide_with(&config(&[]), &two, &mut fake),
            Err(Refusal::InvalidRequest(_))
        ));
    }

    #[test]
    fn decide_bearer_scheme_is_case_insensitive() {
        let mut fake = Fake::default();
        let request = request("GET", "/x", Some("bearer   a.b.c "));
        assert!(decide_with(&config(&[]), &request, &mut fake).is_ok());
        assert_eq!(fake.calls.get(1).map(String::as_str), Some("verify a.b.c"));
    }

    #[test]
    fn decide_refused_token_stops_before_revocation_and_rate_limit() {
        for error in [
            TokenError::Expired,
            TokenError::BadSignature,
            TokenError::InvalidAudience,
        ] {
            let mut fake = Fake {
                verify: Err(Refusal::Token(error)),
                ..Fake::default()
            };
            let outcome = decide_with(
                &config(&[]),
                &request("GET", "/x", Some("Bearer t")),
                &mut fake,
            );
            assert_eq!(outcome, Err(Refusal::Token(error)));
            assert_eq!(fake.calls, ["body<=8", "verify t"]);
        }
    }

    #[test]
    fn decide_revoked_token_is_refused_even_by_a_stale_list_in_open_mode() {
        let mut fake = Fake {
            revocation: RevocationStatus::Revoked,
            ..Fake::default()
        };
        let open = config(&[("PORTCULLIS_REVOCATION_STALE_MODE", "open")]);
        let outcome = decide_with(&open, &request("GET", "/x", Some("Bearer t")), &mut fake);
        assert_eq!(outcome, Err(Refusal::Token(TokenError::Revoked)));
        assert!(!fake.calls.iter().any(|call| call.starts_with("rate")));
    }

    #[test]
    fn decide_stale_list_closed_refuses_with_age_and_limit() {
        let mut fake = Fake {
            revocation: RevocationStatus::Stale { age_secs: Some(45) },
            ..Fake::default()
        };
        let config = config(&[("PORTCULLIS_REVOCATION_INTERVAL_MS", "2500")]);
        let outcome = decide_with(&config, &request("GET", "/x", Some("Bearer t")), &mut fake);
        assert_eq!(
            outcome,
            Err(Refusal::RevocationListStale {
                age_secs: Some(45),
                limit_secs: 30,
                retry_after_secs: 3,
            })
        );
        assert!(!fake.calls.iter().any(|call| call.starts_with("rate")));
    }

    #[test]
    fn decide_stale_list_open_passes_with_a_warning() {
        let mut fake = Fake {
            revocation: RevocationStatus::Stale { age_secs: None },
            ..Fake::default()
        };
        let open = config(&[("PORTCULLIS_REVOCATION_STALE_MODE", "open")]);
        let admitted = decide_with(&open, &request("GET", "/x", Some("Bearer t")), &mut fake);
        assert!(admitted.unwrap().identity.is_some());
        assert!(fake.calls.iter().any(|call| call.starts_with("warn ")));
        assert!(fake.calls.iter().all(|call| !call.contains("Bearer")));
    }

    #[test]
    fn decide_rate_limit_comes_before_the_permission_check() {
        let mut fake = Fake {
            allow: false,
            verify: Ok(json!({"iss": "i", "sub": "usr_2", "aud": "a", "exp": 1})),
            ..Fake::default()
        };
        let request = request("POST", "/admin/x", Some("Bearer t"));
        let outcome = decide_with(&config(&[]), &request, &mut fake);
        assert_eq!(outcome, Err(Refusal::RateLimited));
        let mut public = Fake {
            allow: false,
            ..Fake::default()
        };
        let outcome = decide_with(
            &config(&[]),
            &self::request("GET", "/healthz", None),
            &mut public,
        );
        assert_eq!(outcome, Err(Refusal::RateLimited));
    }

    #[test]
    fn decide_missing_permission_is_insufficient_scope() {
        let mut fake = Fake {
            verify: Ok(json!({"iss": "i", "sub": "usr_2", "aud": "a", "exp": 1,
                              "perms": ["users:read"]})),
            ..Fake::default()
        };
        let request = request("POST", "/admin/x", Some("Bearer t"));
        let outcome = decide_with(&config(&[]), &request, &mut fake);
        assert_eq!(outcome, Err(Refusal::InsufficientPermission));
        let mut wildcard = Fake {
            verify: Ok(json!({"iss": "i", "sub": "usr_2", "aud": "a", "exp": 1,
                              "perms": ["users:*"]})),
            ..Fake::default()
        };
        assert!(decide_with(&config(&[]), &request, &mut wildcard).is_ok());
    }

    #[test]
    fn decide_client_without_address_shares_one_key() {
        let mut fake = Fake::default();
        let mut request = request("GET", "/healthz", None);
        request.client_ip = None;
        assert!(decide_with(&config(&[]), &request, &mut fake).is_ok());
        assert_eq!(
            fake.calls.last().map(String::as_str),
            Some("rate ip:unknown")
        );
    }
}
