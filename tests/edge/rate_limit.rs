//! The per-client rate limit (0004, step 5): keyed by the token's subject, else by the client
//! address in `CF-Connecting-IP`, through the `RATE_LIMITER` binding.
//!
//! Miniflare's limiter counts in fixed windows of the period aligned to the wall clock, so a
//! burst can straddle a window boundary and see its count reset. Rather than sleep to a window
//! start, each attempt notes the window before and after its burst and, only if a boundary
//! fell inside it, tries again with fresh clients; a limit that never refuses still fails.

use reqwest::Method;

use crate::harness::{Edge, Setup, Stack, assert_passed, assert_refusal};
use crate::support::{Response, unix_now};

/// Requests each client may make per window in these tests.
const LIMIT: u32 = 3;

/// The limiter's period (the harness starts every worker with 60 s).
const PERIOD_SECS: u64 = 60;

fn window() -> u64 {
    unix_now() / PERIOD_SECS
}

/// Asserts a 429 with a `Retry-After` of whole seconds within one period.
fn assert_rate_limited(response: &Response) {
    assert_refusal(response, 429, "rate_limited");
    let retry_after = response
        .header("retry-after")
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("want Retry-After in seconds, got {response:?}"));
    assert!(
        (1..=PERIOD_SECS).contains(&retry_after),
        "Retry-After {retry_after} outside 1..={PERIOD_SECS}: {response:?}"
    );
}

/// Sends `LIMIT + 1` requests built by `send`; `Some((window, last answer))` when the burst
/// stayed in one window, `None` when a window boundary fell inside it (the attempt proves
/// nothing).
async fn burst<F, Fut>(send: F) -> Option<(u64, Response)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Response>,
{
    let started = window();
    for attempt in 1..=LIMIT {
        let response = send().await;
        assert_eq!(
            response.status, 200,
            "request {attempt} of {LIMIT}: {response:?}"
        );
    }
    let last = send().await;
    (window() == started).then_some((started, last))
}

#[tokio::test]
async fn one_subject_is_limited_and_another_still_passes() {
    let Some(stack) = Stack::start(Setup::new().rate_limit(LIMIT)).await else {
        return;
    };

    for _ in 0..3 {
        let alice = stack.issuer.signup().await;
        let bob = stack.login().await;
        let token = alice.tokens.access_token.clone();
        let before = stack.origin.count();
        let Some((started, last)) = burst(|| stack.edge.get_bearer("/api/orders", &token)).await
        else {
            continue;
        };
        assert_rate_limited(&last);
        assert_eq!(
            stack.origin.count(),
            before + LIMIT as usize,
            "the refused request reached the origin: {}",
            stack.origin.summary()
        );

        // Keyed by subject, not by token: alice's second session shares her budget.
        let second = stack
            .issuer
            .login(&alice.email, crate::support::PASSWORD)
            .await;
        let again = stack
            .edge
            .get_bearer("/api/orders", &second.access_token)
            .await;
        if window() == started {
            assert_rate_limited(&again);
        }
        // Another subject from the same address is not affected.
        stack.assert_token_passes(&bob).await;
        return;
    }
    panic!("three bursts in a row straddled a window boundary");
}

/// `CF-Connecting-IP` is set by Cloudflare in production; Miniflare passes a client's value
/// through, which lets one test be several clients.
async fn get_from(edge: &Edge, path: &str, address: &str) -> Response {
    let request = edge
        .request(Method::GET, path)
        .header("cf-connecting-ip", address);
    edge.send(request).await
}

#[tokio::test]
async fn anonymous_clients_are_limited_by_address() {
    let Some(stack) = Stack::start(Setup::new().rate_limit(LIMIT)).await else {
        return;
    };

    for attempt in 0..3_u8 {
        let first = format!("203.0.113.{}", 10 + attempt);
        let second = format!("198.51.100.{}", 10 + attempt);
        let Some((_, last)) = burst(|| get_from(&stack.edge, "/healthz", &first)).await else {
            continue;
        };
        assert_rate_limited(&last);
        assert_passed(&get_from(&stack.edge, "/healthz", &second).await);
        return;
    }
    panic!("three bursts in a row straddled a window boundary");
}
