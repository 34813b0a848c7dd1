//! Refused tokens (0004, steps 3 and 6): each case answers with its status, code and
//! challenge, in the issuer's problem shape, and none of them reaches the origin.

use reqwest::Method;
use serde_json::json;

use crate::harness::{
    Setup, Stack, assert_invalid_token, assert_passed, assert_refusal, flip_signature_bit,
    tamper_claims,
};
use crate::support::{jwt, unix_now};

#[tokio::test]
async fn missing_token_is_unauthenticated_with_a_bare_bearer_challenge() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };

    for path in ["/api/orders", "/profile/me"] {
        let response = stack.edge.get(path).await;
        assert_refusal(&response, 401, "unauthenticated");
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer") && !challenge.contains("error="),
            "{path}: want a bare `Bearer` challenge (RFC 6750 §3.1: no error code when the \
             request had no token), got {response:?}"
        );
    }

    // Another scheme is not a bearer token either.
    let request = stack
        .edge
        .request(Method::GET, "/api/orders")
        .basic_auth("alice", Some("secret"));
    let response = stack.edge.send(request).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());
}

/// Every way a token can be wrong on an otherwise valid request; the origin sees none, and
/// the valid token still passes afterwards (no refusal poisons a cache).
#[tokio::test]
async fn invalid_tokens_are_refused_with_their_codes() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;
    let valid = tokens.access_token.clone();
    let now = unix_now();
    let keys = &stack.keys;

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired an hour ago (far beyond the leeway)",
            keys.resign(&valid, |claims| {
                claims["iat"] = json!(now - 7200);
                claims["nbf"] = json!(now - 7200);
                claims["exp"] = json!(now - 3600);
            }),
            "token_expired",
        ),
        (
            "claims changed, signature kept",
            tamper_claims(&valid),
            "invalid_token",
        ),
        (
            "one signature bit flipped",
            flip_signature_bit(&valid),
            "invalid_token",
        ),
        (
            "signed under a kid the issuer never published",
            keys.resign_header(&valid, |header| header["kid"] = json!("nobody-knows-me")),
            "invalid_token",
        ),
        (
            "another issuer",
            keys.resign(&valid, |claims| {
                claims["iss"] = json!("https://evil.example")
            }),
            "invalid_token",
        ),
        (
            "another audience",
            keys.resign(&valid, |claims| claims["aud"] = json!("billing")),
            "invalid_token",
        ),
        (
            "not valid before an hour from now",
            keys.resign(&valid, |claims| claims["nbf"] = json!(now + 3600)),
            "invalid_token",
        ),
        (
            "alg none",
            jwt::unsigned(
                &json!({"alg": "none", "typ": "at+jwt", "kid": keys.ed_kid}),
                &jwt::payload(&valid),
            ),
            "invalid_token",
        ),
        (
            "HS256 under the EdDSA kid, keyed with the public key's bytes",
            jwt::sign_hs256(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": keys.ed_kid}),
                &jwt::payload(&valid),
                &keys.ed_public_key(),
            ),
            "invalid_token",
        ),
        (
            "not an access token (typ)",
            keys.resign_header(&valid, |header| header["typ"] = json!("JWT+refresh")),
            "invalid_token",
        ),
        (
            "not a JWT at all",
            "prt_notajwt".to_owned(),
            "invalid_token",
        ),
    ];

    for (what, token, code) in &cases {
        let response = stack.edge.get_bearer("/api/orders", token).await;
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_invalid_token(&response, code);
        assert!(
            !response.text.contains(token.as_str()),
            "{what}: the refusal repeats the token: {response:?}"
        );
    }
    assert_eq!(
        stack.origin.count(),
        0,
        "refused tokens reached the origin: {}",
        stack.origin.summary()
    );

    assert_passed(&stack.edge.get_bearer("/api/orders", &valid).await);
}

/// The worker expects another audience than the issuer stamps: the issuer's own, otherwise
/// valid token is refused, and the same claims for the expected audience pass.
#[tokio::test]
async fn wrong_audience_is_invalid_token() {
    let setup = Setup::new().var("PORTCULLIS_AUDIENCE", "billing");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };
    let tokens = stack.login().await;
    assert_eq!(tokens.claims()["aud"], "portcullis");

    let response = stack.edge.get_bearer("/api/x", &tokens.access_token).await;
    assert_invalid_token(&response, "invalid_token");
    assert_eq!(stack.origin.count(), 0);

    let for_billing = stack.keys.resign(&tokens.access_token, |claims| {
        claims["aud"] = json!("billing");
    });
    assert_passed(&stack.edge.get_bearer("/api/x", &for_billing).await);
}

#[tokio::test]
async fn missing_permission_is_forbidden_with_insufficient_scope() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let tokens = stack.login().await;
    assert!(
        !tokens.claims()["perms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|perm| perm == "users:write" || perm == "users:*"),
        "a fresh member must lack users:write: {}",
        tokens.claims()
    );

    let request = stack
        .edge
        .request(Method::POST, "/admin/users")
        .bearer_auth(&tokens.access_token)
        .json(&json!({"email": "x@example.com"}));
    let response = stack.edge.send(request).await;
    assert_refusal(&response, 403, "forbidden");
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="insufficient_scope""#),
        "want WWW-Authenticate: Bearer error=\"insufficient_scope\", got {response:?}"
    );
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());

    // The same user with the permission (a wildcard grant, as core's RBAC allows) passes.
    let admin = stack.keys.resign(&tokens.access_token, |claims| {
        claims["perms"] = json!(["profile:read", "users:*"]);
    });
    let request = stack
        .edge
        .request(Method::POST, "/admin/users")
        .bearer_auth(&admin)
        .json(&json!({"email": "x@example.com"}));
    assert_passed(&stack.edge.send(request).await);
    assert_eq!(stack.origin.last().path, "/admin/users");
}

/// 0004: "Token, secret and header values never appear in a refusal or a log line."
#[tokio::test]
async fn tokens_and_secrets_stay_out_of_refusals_and_logs() {
    let Some(stack) = Stack::start(Setup::hs256()).await else {
        return;
    };
    let tokens = stack.login().await;
    let valid = tokens.access_token.clone();
    let expired = stack.keys.resign(&valid, |claims| {
        claims["exp"] = json!(unix_now() - 3600);
    });
    let tampered = tamper_claims(&valid);
    let cookie = "session=cookie-value-that-must-stay-private";

    let mut answers = Vec::new();
    for token in [&valid, &expired, &tampered] {
        let request = stack
            .edge
            .request(Method::GET, "/api/x")
            .bearer_auth(token)
            .header("cookie", cookie);
        answers.push(stack.edge.send(request).await);
    }
    let request = stack
        .edge
        .request(Method::POST, "/admin/users")
        .bearer_auth(&valid);
    answers.push(stack.edge.send(request).await);
    assert_eq!(answers[0].status, 200, "{:?}", answers[0]);

    let secrets = [
        valid.as_str(),
        expired.as_str(),
        tampered.as_str(),
        valid.rsplit('.').next().unwrap(),
        "cookie-value-that-must-stay-private",
    ];
    let hs_secret = stack.keys.hs_secret_base64url();
    let logs = stack.edge.logs();
    for secret in secrets.iter().chain([&hs_secret.as_str()]) {
        for refusal in &answers[1..] {
            assert!(
                !refusal.text.contains(secret),
                "a refusal repeats a secret: {refusal:?}"
            );
        }
        assert!(
            !logs.contains(secret),
            "the worker logged a secret value:\n{logs}"
        );
    }
}

/// Two `Authorization` headers: which one would the origin read? Refused, as at the issuer.
#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let alice = stack.login().await;
    let bob = stack.login().await;
    let first = format!("Bearer {}", alice.access_token);
    let second = format!("Bearer {}", bob.access_token);
    let response = stack
        .edge
        .raw_get(
            "/api/orders",
            &[("Authorization", &first), ("Authorization", &second)],
        )
        .await;
    assert_refusal(&response, 400, "invalid_request");
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());
}

/// Claims the edge would have to put in a header but cannot carry unambiguously (a comma in a
/// role would split it in two, a control character could end the header) are refused, never
/// forwarded mangled (0004, "Decisions": identity headers).
#[tokio::test]
async fn identity_claims_that_cannot_be_headers_are_invalid_token() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let valid = stack.login().await.access_token;
    let keys = &stack.keys;
    let cases: Vec<(&str, String)> = vec![
        (
            "a comma in a role",
            keys.resign(&valid, |claims| claims["roles"] = json!(["member,admin"])),
        ),
        (
            "a role with surrounding spaces",
            keys.resign(&valid, |claims| claims["roles"] = json!([" admin"])),
        ),
        (
            "a control character in a role",
            keys.resign(&valid, |claims| claims["roles"] = json!(["mem\rber"])),
        ),
        (
            "a non-ASCII subject",
            keys.resign(&valid, |claims| claims["sub"] = json!("usr_\u{e9}")),
        ),
        (
            "a line break in the tenant",
            keys.resign(&valid, |claims| {
                claims["tid"] = json!("tnt_1\nX-Portcullis-Roles: admin")
            }),
        ),
    ];
    for (what, token) in &cases {
        let response = stack.edge.get_bearer("/api/orders", token).await;
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_invalid_token(&response, "invalid_token");
    }
    assert_eq!(stack.origin.count(), 0, "{}", stack.origin.summary());
}
