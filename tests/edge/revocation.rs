//! The replicated revocation list (0004, step 4 and "Revocation replication"): a logout at
//! the issuer is refused at the edge as `token_revoked`, and a worker that starts after a
//! revocation enforces it on its very first request. How fast it propagates is measured by
//! `edge/bench/propagation`, not asserted: [`LIVENESS`] only keeps a broken edge from hanging
//! the suite.

use std::time::{Duration, Instant};

use crate::harness::origin::Origin;
use crate::harness::{Edge, Setup, Signing, Stack, assert_invalid_token, assert_passed};
use crate::support::{Issuer, PASSWORD};

/// How long a revocation may take to reach the edge before the test gives up: many times the
/// 1 s bound of 0004, for a machine busy with other builds.
const LIVENESS: Duration = Duration::from_secs(20);

/// What polling a revoked token until the edge refuses it saw.
#[derive(Debug)]
struct Refused {
    took: Duration,
    /// Requests the edge still passed (to the origin) meanwhile.
    passes: usize,
}

/// Polls `GET /api/orders` with `token` until the edge stops passing it. Panics if the token
/// still passes after [`LIVENESS`], or if anything other than a pass or a `token_revoked`
/// refusal comes back.
async fn until_refused(edge: &Edge, token: &str) -> Refused {
    let started = Instant::now();
    let mut passes = 0;
    loop {
        let response = edge.get_bearer("/api/orders", token).await;
        if response.status != 200 {
            assert_invalid_token(&response, "token_revoked");
            return Refused {
                took: started.elapsed(),
                passes,
            };
        }
        passes += 1;
        assert!(
            started.elapsed() < LIVENESS,
            "the edge still passes a token revoked {LIVENESS:?} ago\n{}",
            edge.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn logout_at_the_issuer_is_refused_at_the_edge() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let alice = stack.login().await;
    let bob = stack.login().await;
    stack.assert_token_passes(&alice).await;
    stack.assert_token_passes(&bob).await;
    let passed = stack.origin.count();

    let logout = stack
        .issuer
        .logout(&alice.access_token, Some(&alice.refresh_token))
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let refused = until_refused(&stack.edge, &alice.access_token).await;
    println!(
        "logout reached the edge after {} ms",
        refused.took.as_millis()
    );

    // Refused for good, and only alice.
    let again = stack
        .edge
        .get_bearer("/api/orders", &alice.access_token)
        .await;
    assert_invalid_token(&again, "token_revoked");
    stack.assert_token_passes(&bob).await;
    assert_eq!(
        stack.origin.count(),
        passed + refused.passes + 1,
        "a refused request reached the origin: {}",
        stack.origin.summary()
    );
}

/// A logout-all is a `subject` entry: every token of the user issued before it is refused,
/// a token from a later login passes (as the issuer itself decides, `GET /v1/auth/me`).
#[tokio::test]
async fn logout_all_refuses_every_older_session_but_not_a_new_login() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let alice = stack.issuer.signup().await;
    let first = alice.tokens.clone();
    let second = stack.issuer.login(&alice.email, PASSWORD).await;
    for tokens in [&first, &second] {
        stack.assert_token_passes(tokens).await;
    }

    let logout = stack.issuer.logout_all(&first.access_token).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    until_refused(&stack.edge, &first.access_token).await;
    until_refused(&stack.edge, &second.access_token).await;

    // The subject entry is in the edge's list by now; a later login must still pass wherever
    // the issuer accepts it.
    let third = stack.issuer.login(&alice.email, PASSWORD).await;
    let me = stack.issuer.me(&third.access_token).await;
    assert_eq!(me.status, 200, "the issuer accepts the new login: {me:?}");
    stack.assert_token_passes(&third).await;
}

/// 0004: "a cold isolate loads the full list before answering any authenticated route".
#[tokio::test]
async fn a_revocation_made_before_the_worker_starts_is_enforced_on_its_first_request() {
    let Some((issuer, keys)) = Stack::issuer(Signing::EdDsa).await else {
        return;
    };
    let alice = issuer.signup().await.tokens;
    let bob = issuer.signup().await.tokens;
    let logout = issuer.logout(&alice.access_token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");

    let origin = Origin::start().await;
    let config = Stack::edge_config(&Setup::new(), &issuer, &origin, &keys);
    let edge = Edge::start(&config).await;

    // The very first request this worker ever sees.
    let first = edge.get_bearer("/api/orders", &alice.access_token).await;
    assert_invalid_token(&first, "token_revoked");
    assert_eq!(origin.count(), 0, "{}", origin.summary());
    assert_passed(&edge.get_bearer("/api/orders", &bob.access_token).await);
}

/// The feed's three kinds, each matched on its own claim: revoking one access token (RFC 7009)
/// is a `jti` entry and leaves the session's later token alone; revoking the refresh token is
/// a `session` entry and refuses every token carrying that `sid`, however new.
#[tokio::test]
async fn token_and_session_revocations_match_their_own_claims() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let first = stack.login().await;
    let refreshed = stack.issuer.refresh_ok(&first.refresh_token).await;
    assert_eq!(first.claims()["sid"], refreshed.claims()["sid"]);
    assert_ne!(first.claims()["jti"], refreshed.claims()["jti"]);
    let bystander = stack.login().await;
    for tokens in [&first, &refreshed, &bystander] {
        stack.assert_token_passes(tokens).await;
    }

    let revoke = stack
        .issuer
        .revoke(&first.access_token, Some("access_token"))
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");
    until_refused(&stack.edge, &first.access_token).await;
    let me = stack.issuer.me(&refreshed.access_token).await;
    assert_eq!(
        me.status, 200,
        "the issuer keeps the session's other token: {me:?}"
    );
    let other = stack
        .edge
        .get_bearer("/api/orders", &refreshed.access_token)
        .await;
    assert_passed(&other);

    let revoke = stack
        .issuer
        .revoke(&refreshed.refresh_token, Some("refresh_token"))
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");
    until_refused(&stack.edge, &refreshed.access_token).await;
    let bystander = stack
        .edge
        .get_bearer("/api/orders", &bystander.access_token)
        .await;
    assert_passed(&bystander);
}

/// The feed answers at most 1,000 entries a page (0001, "Revocation feed"); a cold worker
/// must follow `has_more` to the end before it answers, or a revocation on a later page is
/// forgotten. 1,100 `jti` entries, made by revoking tokens the test signs with the issuer's
/// key (as valid as the issuer's own, so the issuer records them).
#[tokio::test]
async fn a_cold_worker_loads_every_page_of_the_feed() {
    const REVOKED: usize = 1100;
    let Some((issuer, keys)) = Stack::issuer(Signing::EdDsa).await else {
        return;
    };
    let alice = issuer.signup().await.tokens;
    let tokens: Vec<String> = (0..REVOKED)
        .map(|_| {
            keys.resign(&alice.access_token, |claims| {
                claims["jti"] = serde_json::json!(uuid::Uuid::now_v7().to_string());
            })
        })
        .collect();
    let (a, b) = tokens.split_at(REVOKED / 2);
    tokio::join!(revoke_each(&issuer, a), revoke_each(&issuer, b));
    let first_page = issuer.get("/v1/revocations?limit=1000").await;
    assert_eq!(
        first_page.body["has_more"],
        true,
        "{}",
        first_page.text.len()
    );

    let origin = Origin::start().await;
    let config = Stack::edge_config(&Setup::new(), &issuer, &origin, &keys);
    let edge = Edge::start(&config).await;

    let last = edge.get_bearer("/api/orders", &tokens[REVOKED - 1]).await;
    assert_invalid_token(&last, "token_revoked");
    let first = edge.get_bearer("/api/orders", &tokens[0]).await;
    assert_invalid_token(&first, "token_revoked");
    assert_eq!(origin.count(), 0, "{}", origin.summary());
    assert_passed(&edge.get_bearer("/api/orders", &alice.access_token).await);
}

/// Revokes each of `tokens` at the issuer (RFC 7009, as access tokens).
async fn revoke_each(issuer: &Issuer, tokens: &[String]) {
    for token in tokens {
        let revoke = issuer.revoke(token, Some("access_token")).await;
        assert_eq!(revoke.status, 200, "{revoke:?}");
    }
}
