//! Allowed requests (0004, steps 2, 3 and 7): a valid token reaches the origin with the
//! identity the edge vouches for, and nothing a client sent under those names survives.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Setup, Stack, assert_invalid_token, assert_passed, tamper_claims};
use crate::support::DEFAULT_TENANT_ID;

/// The identity headers the edge sets, as the origin must see them.
fn assert_identity(seen: &crate::harness::origin::Seen, sub: &str, tenant: &str, roles: &str) {
    assert_eq!(seen.header("x-portcullis-subject"), Some(sub), "{seen:?}");
    assert_eq!(seen.header("x-portcullis-tenant"), Some(tenant), "{seen:?}");
    assert_eq!(seen.header("x-portcullis-roles"), Some(roles), "{seen:?}");
}

#[tokio::test]
async fn valid_token_reaches_the_origin_with_identity_headers() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;
    let claims = tokens.claims();
    let sub = claims["sub"].as_str().unwrap();
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID, "{claims}");

    let response = stack
        .edge
        .get_bearer(
            "/api/orders?page=2&sort=-date&q=a%2Fb%20c",
            &tokens.access_token,
        )
        .await;
    assert_passed(&response);
    let seen = stack.origin.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/api/orders");
    assert_eq!(seen.query.as_deref(), Some("page=2&sort=-date&q=a%2Fb%20c"));
    assert_identity(&seen, sub, DEFAULT_TENANT_ID, "member");

    // Method and body go through unchanged.
    let body = vec![b'x'; 3000];
    let request = stack
        .edge
        .request(Method::PUT, "/api/orders/7")
        .bearer_auth(&tokens.access_token)
        .body(body);
    assert_passed(&stack.edge.send(request).await);
    let seen = stack.origin.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("PUT", "/api/orders/7")
    );
    assert_eq!(seen.body_len, Some(3000), "{seen:?}");
    assert_identity(&seen, sub, DEFAULT_TENANT_ID, "member");

    // A route that requires a permission the user holds (`member` grants `profile:read`).
    assert_passed(
        &stack
            .edge
            .get_bearer("/profile/me", &tokens.access_token)
            .await,
    );
    assert_identity(&stack.origin.last(), sub, DEFAULT_TENANT_ID, "member");

    // Several roles arrive comma-separated, in the token's order.
    let multi = stack.keys.resign(&tokens.access_token, |claims| {
        claims["roles"] = json!(["auditor", "member", "billing"]);
    });
    assert_passed(&stack.edge.get_bearer("/api/roles", &multi).await);
    assert_identity(
        &stack.origin.last(),
        sub,
        DEFAULT_TENANT_ID,
        "auditor,member,billing",
    );
    // The scheme is case-insensitive (RFC 9110 §11.1), as at the issuer.
    let lower = format!("bearer {}", tokens.access_token);
    let response = stack
        .edge
        .raw_get("/api/orders", &[("authorization", &lower)])
        .await;
    assert_passed(&response);
    assert_identity(&stack.origin.last(), sub, DEFAULT_TENANT_ID, "member");
    assert_eq!(stack.origin.count(), 5, "{}", stack.origin.summary());
}

#[tokio::test]
async fn public_route_reaches_the_origin_without_a_token_or_identity() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;

    assert_passed(&stack.edge.get("/healthz").await);
    let seen = stack.origin.last();
    assert_eq!(seen.path, "/healthz");
    assert!(seen.identity_headers().is_empty(), "{seen:?}");

    // Even with a valid token, a public route gets no identity: the origin must not learn to
    // trust identity headers on routes the edge does not gate.
    let response = stack
        .edge
        .get_bearer("/public/docs/index.html", &tokens.access_token)
        .await;
    assert_passed(&response);
    let seen = stack.origin.last();
    assert_eq!(seen.path, "/public/docs/index.html");
    assert!(seen.identity_headers().is_empty(), "{seen:?}");
}

/// Header names are case-insensitive, so a spoofed `x-PORTCULLIS-subject` is the same header
/// as the edge's own. Sent raw, because HTTP clients lowercase or title-case names themselves.
#[tokio::test]
async fn spoofed_identity_headers_are_stripped_in_any_case() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;
    let sub = tokens.claims()["sub"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", tokens.access_token);
    let spoofed = [
        (
            "X-Portcullis-Subject",
            "usr_0190000000007000800000000000dead",
        ),
        (
            "x-portcullis-subject",
            "usr_0190000000007000800000000000beef",
        ),
        (
            "X-PORTCULLIS-TENANT",
            "tnt_0190000000007000800000000000dead",
        ),
        ("x-PortCullis-Roles", "admin,owner"),
        ("X-Portcullis-Permissions", "*:*"),
        ("x-portcullis-", "empty suffix"),
    ];

    let mut authenticated: Vec<(&str, &str)> = spoofed.to_vec();
    authenticated.push(("Authorization", &bearer));
    let response = stack.edge.raw_get("/api/whoami", &authenticated).await;
    assert_passed(&response);
    let seen = stack.origin.last();
    assert_eq!(seen.path, "/api/whoami");
    assert_identity(&seen, &sub, DEFAULT_TENANT_ID, "member");
    assert_eq!(
        seen.identity_headers().len(),
        3,
        "only the edge's three identity headers: {seen:?}"
    );

    for route in ["/public/page", "/healthz"] {
        let response = stack.edge.raw_get(route, &spoofed).await;
        assert_passed(&response);
        let seen = stack.origin.last();
        assert_eq!(seen.path, route);
        assert!(
            seen.identity_headers().is_empty(),
            "{route}: a public route gets no identity at all: {seen:?}"
        );
    }

    // With a token on a public route: still nothing, neither spoofed nor real.
    let mut public_with_token: Vec<(&str, &str)> = spoofed.to_vec();
    public_with_token.push(("Authorization", &bearer));
    assert_passed(&stack.edge.raw_get("/public/page", &public_with_token).await);
    assert!(stack.origin.last().identity_headers().is_empty());
}

/// HS256: the secret comes from `PORTCULLIS_HS256_KEYS` and no JWKS is fetched
/// (`PORTCULLIS_JWKS_URL=off`), so an EdDSA token, even one the issuer signed, has no key.
#[tokio::test]
async fn hs256_tokens_verify_with_the_configured_secret() {
    let Some(stack) = Stack::start(Setup::hs256()).await else {
        return;
    };
    let tokens = stack.login().await;
    assert_eq!(
        crate::support::jwt::header(&tokens.access_token)["alg"],
        "HS256"
    );
    let sub = tokens.claims()["sub"].as_str().unwrap().to_owned();

    assert_passed(&stack.edge.get_bearer("/api/x", &tokens.access_token).await);
    assert_identity(&stack.origin.last(), &sub, DEFAULT_TENANT_ID, "member");
    let before = stack.origin.count();

    let tampered = tamper_claims(&tokens.access_token);
    assert_invalid_token(
        &stack.edge.get_bearer("/api/x", &tampered).await,
        "invalid_token",
    );

    let ed_signed = stack.keys.resign_header(&tokens.access_token, |header| {
        header["alg"] = json!("EdDSA");
        header["kid"] = json!(stack.keys.ed_kid);
    });
    assert_invalid_token(
        &stack.edge.get_bearer("/api/x", &ed_signed).await,
        "invalid_token",
    );
    assert_eq!(
        stack.origin.count(),
        before,
        "refused requests reached the origin"
    );
}

/// Connection-level headers are the client's business with the edge, not the origin's, and
/// `Proxy-Authorization` is a credential meant for the edge at most; the origin gets its own
/// `Host` (0004, "Decisions": forwarding).
#[tokio::test]
async fn hop_by_hop_headers_and_host_are_not_forwarded() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;
    let bearer = format!("Bearer {}", tokens.access_token);
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
        ("Proxy-Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("X-Kept", "yes"),
    ];
    let response = stack.edge.raw_get("/api/hop", &headers).await;
    assert_passed(&response);

    let seen = stack.origin.last();
    for name in [
        "proxy-authorization",
        "proxy-connection",
        "keep-alive",
        "te",
        "upgrade",
    ] {
        assert!(
            seen.header(name).is_none(),
            "{name} was forwarded: {seen:?}"
        );
    }
    assert_eq!(seen.header("x-kept"), Some("yes"), "{seen:?}");
    let origin_host = stack.origin.url().trim_start_matches("http://").to_owned();
    assert_eq!(seen.header("host"), Some(origin_host.as_str()), "{seen:?}");
}

/// A redirect from the origin goes back to the client; the edge never follows it (it would
/// fetch whatever the origin names, with the client's credentials).
#[tokio::test]
async fn origin_redirects_are_returned_not_followed() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let response = stack.edge.get("/public/redirect").await;
    assert_eq!(response.status, 302, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some(crate::harness::origin::REDIRECT_TARGET),
        "{response:?}"
    );
    assert_eq!(stack.origin.count(), 1, "{}", stack.origin.summary());
}

#[tokio::test]
async fn an_unreachable_origin_is_service_unavailable() {
    // Port 9 (discard) is closed on these machines: the connection is refused at once.
    let setup = Setup::new().var("PORTCULLIS_ORIGIN_URL", "http://127.0.0.1:9");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };
    let response = stack.edge.get("/healthz").await;
    crate::harness::assert_refusal(&response, 503, "service_unavailable");
    assert!(
        response.header("retry-after").is_some(),
        "want Retry-After: {response:?}"
    );
}

#[tokio::test]
async fn a_silent_origin_is_origin_timeout() {
    // An origin that accepts connections and never answers: without a deadline of its own
    // the edge would hold the request until the runtime gave up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let setup = Setup::new()
        .var("PORTCULLIS_ORIGIN_URL", &silent)
        .var("PORTCULLIS_ORIGIN_TIMEOUT_SECS", "1");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };
    let response = stack.edge.get("/healthz").await;
    crate::harness::assert_refusal(&response, 504, "origin_timeout");
    assert_eq!(
        response.body["detail"], "the origin did not answer within 1 s",
        "{response:?}"
    );
    holder.abort();
}
