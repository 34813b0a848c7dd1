//! Rate limits (design note 0005, "Rate limits"; issue #6): on by default, per client IP and
//! per account, refused with 429 `rate_limited` and `Retry-After`. The test client connects
//! from 127.0.0.1, which is a trusted proxy only where a test configures it.

use reqwest::Method;
use serde_json::json;

use crate::support::{Issuer, Options, PASSWORD, Response, assert_problem};

const LOGIN: &str = "/v1/auth/login";

/// The documented default: 10 logins at once per client IP.
const DEFAULT_LOGIN_BURST_PER_IP: usize = 10;
/// The documented default: 5 logins at once per account.
const DEFAULT_LOGIN_BURST_PER_ACCOUNT: usize = 5;
/// The documented default: 5 registrations at once per client IP.
const DEFAULT_REGISTER_BURST_PER_IP: usize = 5;
/// The documented default: 3 registrations at once per address.
const DEFAULT_REGISTER_BURST_PER_ACCOUNT: usize = 3;

fn unknown_email() -> String {
    format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A login, with `X-Forwarded-For: forwarded` when given.
async fn login(issuer: &Issuer, email: &str, password: &str, forwarded: Option<&str>) -> Response {
    let mut request = issuer
        .request(Method::POST, LOGIN)
        .json(&json!({"email": email, "password": password}));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    issuer.send(request).await
}

/// Asserts a 429 `rate_limited` whose `Retry-After` is a whole number of seconds within a
/// minute (every default budget refills at least one request a minute).
fn assert_rate_limited(response: &Response) {
    assert_problem(response, 429, "rate_limited");
    let retry_after = response.header("retry-after").unwrap_or_default();
    assert!(
        retry_after
            .parse::<u64>()
            .is_ok_and(|seconds| (1..=60).contains(&seconds)),
        "429 needs Retry-After in delay-seconds: {response:?}"
    );
}

/// Trusts the test client as a proxy, so `X-Forwarded-For` names the client.
fn behind_a_trusted_proxy(extra: &str) -> Options {
    Options::new().config(&format!(
        "[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n{extra}"
    ))
}

#[tokio::test]
async fn one_login_over_the_per_ip_budget_is_refused_with_retry_after() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    for _ in 0..DEFAULT_LOGIN_BURST_PER_IP {
        let response = login(&issuer, &unknown_email(), PASSWORD, None).await;
        assert_problem(&response, 401, "invalid_credentials");
    }
    let refused = login(&issuer, &unknown_email(), PASSWORD, None).await;
    assert_rate_limited(&refused);
    // Other routes are not limited.
    assert_eq!(issuer.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn rotating_forwarded_for_from_an_untrusted_peer_does_not_escape_the_limit() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    for index in 0..DEFAULT_LOGIN_BURST_PER_IP {
        let forwarded = format!("198.51.100.{index}");
        let response = login(&issuer, &unknown_email(), PASSWORD, Some(&forwarded)).await;
        assert_problem(&response, 401, "invalid_credentials");
    }
    let refused = login(&issuer, &unknown_email(), PASSWORD, Some("203.0.113.77")).await;
    assert_rate_limited(&refused);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let options =
        behind_a_trusted_proxy("[rate_limit]\nlogin_per_ip = { per_minute = 1, burst = 2 }");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    for _ in 0..2 {
        let response = login(&issuer, &unknown_email(), PASSWORD, Some("198.51.100.1")).await;
        assert_problem(&response, 401, "invalid_credentials");
    }
    let refused = login(&issuer, &unknown_email(), PASSWORD, Some("198.51.100.1")).await;
    assert_problem(&refused, 429, "rate_limited");
    let other = login(&issuer, &unknown_email(), PASSWORD, Some("198.51.100.2")).await;
    assert_problem(&other, 401, "invalid_credentials");
    // A client-written entry left of the proxy's own changes nothing: the right-most
    // untrusted entry is the one the proxy saw.
    let forged = "198.51.100.9, 198.51.100.1";
    let refused = login(&issuer, &unknown_email(), PASSWORD, Some(forged)).await;
    assert_problem(&refused, 429, "rate_limited");
    // Without the header the trusted peer itself is the client, with a budget of its own.
    let direct = login(&issuer, &unknown_email(), PASSWORD, None).await;
    assert_problem(&direct, 401, "invalid_credentials");
}

#[tokio::test]
async fn the_per_account_limit_holds_across_forwarded_addresses() {
    // Five wrong passwords: without this the lockout would answer the last ones
    // (`lockout.rs` shows both together).
    let options = behind_a_trusted_proxy("").lockout_off();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let email = unknown_email();
    issuer.register_ok(&email, PASSWORD).await;
    for index in 0..DEFAULT_LOGIN_BURST_PER_ACCOUNT {
        let forwarded = format!("198.51.100.{index}");
        let response = login(&issuer, &email, "wrong password!", Some(&forwarded)).await;
        assert_problem(&response, 401, "invalid_credentials");
    }
    // The right password from a fresh address: the account's budget is spent. The address
    // is normalized the way login normalizes it, so a change of case is the same account.
    let shouted = email.to_uppercase();
    let refused = login(&issuer, &shouted, PASSWORD, Some("203.0.113.1")).await;
    assert_rate_limited(&refused);
    // Another account from that address is still served.
    let other = login(&issuer, &unknown_email(), PASSWORD, Some("203.0.113.1")).await;
    assert_problem(&other, 401, "invalid_credentials");
}

#[tokio::test]
async fn registrations_over_the_per_ip_budget_are_refused() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    for _ in 0..DEFAULT_REGISTER_BURST_PER_IP {
        issuer.register_ok(&unknown_email(), PASSWORD).await;
    }
    let refused = issuer.register(&unknown_email(), PASSWORD).await;
    assert_rate_limited(&refused);
}

/// Registering one address again and again (each attempt would mail it) is limited per
/// address, whatever the client address and the spelling of the email.
#[tokio::test]
async fn registrations_of_one_address_over_the_per_account_budget_are_refused() {
    let Some(issuer) = Issuer::start_with(behind_a_trusted_proxy("")).await else {
        return;
    };
    let email = unknown_email();
    for index in 0..DEFAULT_REGISTER_BURST_PER_ACCOUNT {
        let request = issuer
            .request(Method::POST, "/v1/auth/register")
            .header("x-forwarded-for", format!("198.51.100.{index}"))
            .json(&json!({"email": email, "password": PASSWORD}));
        assert_eq!(issuer.send(request).await.status, 201);
    }
    let request = issuer
        .request(Method::POST, "/v1/auth/register")
        .header("x-forwarded-for", "203.0.113.1")
        .json(&json!({"email": email.to_uppercase(), "password": PASSWORD}));
    assert_rate_limited(&issuer.send(request).await);
    let other = issuer.register(&unknown_email(), PASSWORD).await;
    assert_eq!(other.status, 201, "{other:?}");
}
