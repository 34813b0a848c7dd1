//! The issuer goes away (0004, step 4 and "Staleness"): tokens the edge already trusts keep
//! passing while its revocation list is younger than `PORTCULLIS_REVOCATION_MAX_STALENESS_SECS`;
//! past it, authenticated routes answer 503 `revocation_list_stale` (mode `closed`) or keep
//! passing with a logged warning (mode `open`). Public routes never depend on the list.

use std::time::{Duration, Instant};

use crate::harness::{Setup, Stack, assert_passed, assert_refusal, detail};
use crate::support::{Issuer, Options};

/// The staleness limit these tests configure: a few refresh intervals (1 s each), so a pass
/// right after the issuer stops is certain and the limit is soon reached.
const MAX_STALENESS_SECS: u64 = 4;

/// How long the list may take to turn stale before the test gives up (a liveness bound).
const LIVENESS: Duration = Duration::from_secs(45);

/// A worker whose list turns stale [`MAX_STALENESS_SECS`] after the issuer goes away.
fn short_staleness() -> Setup {
    Setup::new().var(
        "PORTCULLIS_REVOCATION_MAX_STALENESS_SECS",
        &MAX_STALENESS_SECS.to_string(),
    )
}

#[tokio::test]
async fn issuer_down_keeps_tokens_until_the_limit_then_fails_closed() {
    let Some(stack) = Stack::start(short_staleness()).await else {
        return;
    };
    let tokens = stack.login().await;
    // Loads the keys (JWKS) and the list while the issuer is up.
    stack.assert_token_passes(&tokens).await;

    let Stack {
        edge,
        origin,
        issuer,
        ..
    } = stack;
    let stopped = Instant::now();
    issuer.crash();

    // The list is at most an interval old: the token still passes, keys and all.
    assert_passed(&edge.get_bearer("/api/orders", &tokens.access_token).await);
    let mut passed = origin.count();

    let stale = loop {
        let response = edge.get_bearer("/api/orders", &tokens.access_token).await;
        if response.status != 200 {
            break response;
        }
        passed += 1;
        assert!(
            stopped.elapsed() < LIVENESS,
            "still passing {LIVENESS:?} after the issuer stopped \
             (limit {MAX_STALENESS_SECS} s)\n{}",
            edge.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "the edge failed closed {} ms after the issuer stopped",
        stopped.elapsed().as_millis()
    );
    assert_refusal(&stale, 503, "revocation_list_stale");
    // The interval (1 s) rounded up to seconds (0004, "Decisions": refusal details).
    assert_eq!(stale.header("retry-after"), Some("1"), "{stale:?}");
    assert!(
        detail(&stale).contains(&MAX_STALENESS_SECS.to_string()),
        "the detail must give the list's age and the limit: {stale:?}"
    );

    // It stays closed while the issuer is away, and public routes do not care.
    let again = edge.get_bearer("/api/orders", &tokens.access_token).await;
    assert_refusal(&again, 503, "revocation_list_stale");
    assert_eq!(
        origin.count(),
        passed,
        "refused requests reached the origin: {}",
        origin.summary()
    );
    assert_passed(&edge.get("/healthz").await);
}

#[tokio::test]
async fn issuer_down_keeps_passing_in_open_mode_with_a_warning() {
    let setup = short_staleness().var("PORTCULLIS_REVOCATION_STALE_MODE", "open");
    let Some(stack) = Stack::start(setup).await else {
        return;
    };
    let tokens = stack.login().await;
    stack.assert_token_passes(&tokens).await;

    let Stack { edge, issuer, .. } = stack;
    let stopped = Instant::now();
    issuer.crash();

    // Every request passes, before and after the limit; the worker says (in its log) once it
    // is passing on a stale list.
    loop {
        let response = edge.get_bearer("/api/orders", &tokens.access_token).await;
        assert_passed(&response);
        let logs = edge.logs().to_ascii_lowercase();
        if stopped.elapsed() > Duration::from_secs(MAX_STALENESS_SECS + 2) && logs.contains("stale")
        {
            break;
        }
        assert!(
            stopped.elapsed() < LIVENESS,
            "no warning about the stale list in the worker's log {LIVENESS:?} after the \
             issuer stopped\n{}",
            edge.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// With the issuer unreachable since the worker started, no key was ever fetched: a token is
/// then answered 503 `service_unavailable`, not 401, because it may well be valid and a 401
/// would make its client throw it away (0004, "Decisions": token step).
#[tokio::test]
async fn no_keys_yet_and_the_issuer_away_is_service_unavailable() {
    let Some((issuer, keys)) = Stack::issuer(crate::harness::Signing::EdDsa).await else {
        return;
    };
    let tokens = issuer.signup().await.tokens;
    let origin = crate::harness::origin::Origin::start().await;
    let config = Stack::edge_config(&Setup::new(), &issuer, &origin, &keys);
    issuer.crash();
    let edge = crate::harness::Edge::start(&config).await;

    let response = edge.get_bearer("/api/orders", &tokens.access_token).await;
    assert_refusal(&response, 503, "service_unavailable");
    assert_eq!(origin.count(), 0, "{}", origin.summary());
    // A public route needs neither keys nor the list.
    assert_passed(&edge.get("/healthz").await);
}

/// An outage must not outlive the issuer's absence: once the issuer answers again (same
/// address, same data), the replica's alarm catches up, the token passes again, and a
/// revocation made after the return is enforced.
#[tokio::test]
async fn the_edge_recovers_when_the_issuer_returns() {
    let Some(stack) = Stack::start(short_staleness()).await else {
        return;
    };
    let tokens = stack.login().await;
    stack.assert_token_passes(&tokens).await;

    let Stack {
        edge, issuer, keys, ..
    } = stack;
    let sandbox = issuer.shared_sandbox();
    let address = issuer.base_url().trim_start_matches("http://").to_owned();
    let stopped = Instant::now();
    issuer.crash();
    let stale = until(&edge, &tokens.access_token, stopped, |status| status != 200).await;
    assert_refusal(&stale, 503, "revocation_list_stale");

    let options = Options::new()
        .config(&keys.issuer_toml())
        .env("PORTCULLIS_LISTEN", &address);
    let issuer = Issuer::start_in(&sandbox, options).await;
    let back = Instant::now();
    until(&edge, &tokens.access_token, back, |status| status == 200).await;

    let logout = issuer.logout(&tokens.access_token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let revoked = Instant::now();
    let refused = until(&edge, &tokens.access_token, revoked, |status| status != 200).await;
    assert_refusal(&refused, 401, "token_revoked");
}

/// Polls `GET /api/orders` with `token` until `done(status)`; panics after [`LIVENESS`]
/// counted from `since`.
async fn until(
    edge: &crate::harness::Edge,
    token: &str,
    since: Instant,
    done: impl Fn(u16) -> bool,
) -> crate::support::Response {
    loop {
        let response = edge.get_bearer("/api/orders", token).await;
        if done(response.status) {
            return response;
        }
        assert!(
            since.elapsed() < LIVENESS,
            "no change after {LIVENESS:?}; last answer {response:?}\n{}",
            edge.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
