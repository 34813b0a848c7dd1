//! Account lockout (design note 0005, "Lockout"; issue #6): on by default, counted per account
//! (tenant and normalized email, with or without an account behind it), graduated delays from
//! the 3rd failure, then a lock; refused before the password is checked with 423
//! `account_locked`, `Retry-After` and `locked_until`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{
    DEFAULT_TENANT_ID, Issuer, Options, PASSWORD, Response, assert_problem, fresh_email, send,
};

const WRONG: &str = "not the password at all";

/// A login from the test client with `X-Forwarded-For: forwarded`, in `tenant` when given.
async fn login(
    issuer: &Issuer,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
    tenant: Option<&str>,
) -> Response {
    let mut request = issuer
        .request(Method::POST, "/v1/auth/login")
        .json(&json!({"email": email, "password": password}));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    if let Some(tenant) = tenant {
        request = request.header("x-tenant-id", tenant);
    }
    issuer.send(request).await
}

/// Asserts a 423 `account_locked` speaking of "this account", with a whole-second
/// `Retry-After` of at most `max_wait` and a `locked_until` in the future; returns the
/// `Retry-After` seconds.
fn assert_locked(response: &Response, max_wait: u64) -> u64 {
    assert_problem(response, 423, "account_locked");
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("423 needs Retry-After in delay-seconds: {response:?}"));
    assert!((1..=max_wait).contains(&retry_after), "{response:?}");
    let until = response.str_field("locked_until");
    let until = chrono::DateTime::parse_from_rfc3339(until)
        .unwrap_or_else(|error| panic!("locked_until {until:?}: {error}"));
    assert!(
        until.timestamp() > i64::try_from(crate::support::unix_now()).unwrap() - 1,
        "{response:?}"
    );
    assert!(
        response.str_field("detail").contains("this account"),
        "{response:?}"
    );
    retry_after
}

/// The brute force: 100 wrong passwords for one account from one untrusted peer that
/// rotates `X-Forwarded-For`. The lock stops the guessing (the right password too), the per-IP
/// budget then refuses the client, and once the lock is over the right password works.
#[tokio::test]
async fn brute_force_with_rotating_forwarded_for_hits_the_lockout_and_the_rate_limit() {
    let options = Options::new().config(
        "[lockout]\nmax_failures = 3\nlock_secs = 10\n\
         [rate_limit]\nlogin_per_ip = { per_minute = 60, burst = 40 }\n\
         login_per_account = { per_minute = 100000, burst = 100000 }\n",
    );
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let email = fresh_email("victim");
    issuer.register_ok(&email, PASSWORD).await;

    let mut statuses = Vec::new();
    for index in 0..100 {
        let forwarded = format!("198.51.100.{}", index % 250);
        let response = login(&issuer, &email, WRONG, Some(&forwarded), None).await;
        match response.status {
            401 => assert_problem(&response, 401, "invalid_credentials"),
            423 => drop(assert_locked(&response, 10)),
            429 => assert_problem(&response, 429, "rate_limited"),
            _ => panic!("attempt {index}: {response:?}"),
        }
        statuses.push(response.status);
        if index == 2 {
            // The lock is on: the right password is refused before it is checked.
            let right = login(&issuer, &email, PASSWORD, Some("203.0.113.5"), None).await;
            assert_locked(&right, 10);
        }
    }
    let count = |status| statuses.iter().filter(|&&s| s == status).count();
    assert_eq!(
        count(401),
        3,
        "three guesses were checked, then the lock: {statuses:?}"
    );
    assert!(
        count(423) >= 20,
        "the lock answered the guesses: {statuses:?}"
    );
    assert!(count(429) >= 20, "the per-IP budget ran out: {statuses:?}");
    assert_eq!(
        statuses.iter().position(|&s| s == 423),
        Some(3),
        "the lock starts with the 3rd failure: {statuses:?}"
    );

    // After the lock (and with the per-IP budget refilled) the right password works.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = login(&issuer, &email, PASSWORD, None, None).await;
    assert_eq!(after.status, 200, "after the lock: {after:?}");
}

/// Logs in `attempts` times with a wrong password, returning each answer.
async fn wrong_logins(issuer: &Issuer, email: &str, attempts: usize) -> Vec<Response> {
    let mut answers = Vec::new();
    for _ in 0..attempts {
        answers.push(login(issuer, email, WRONG, None, None).await);
    }
    answers
}

/// The members of a problem body, with the values that differ by nature (times) removed.
fn shape(response: &Response) -> Value {
    let mut body = response.body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("locked_until");
    }
    json!({"status": response.status, "body": body, "has_retry_after":
        response.header("retry-after").is_some()})
}

#[tokio::test]
async fn an_unknown_email_is_delayed_and_locked_exactly_like_a_real_one() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let real = fresh_email("real");
    issuer.register_ok(&real, PASSWORD).await;
    let unknown = fresh_email("unknown");

    // Three failures, then an attempt inside the 1 s delay of the 3rd.
    let real_answers = wrong_logins(&issuer, &real, 4).await;
    let unknown_answers = wrong_logins(&issuer, &unknown, 4).await;
    let statuses: Vec<_> = real_answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 423], "{real_answers:?}");
    for (real, unknown) in real_answers.iter().zip(&unknown_answers) {
        assert_eq!(shape(real), shape(unknown));
    }
    assert_eq!(assert_locked(&real_answers[3], 1), 1);
    assert_eq!(assert_locked(&unknown_answers[3], 1), 1);

    // The delay is over after a second; the 4th failure doubles it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for email in [&real, &unknown] {
        let answers = wrong_logins(&issuer, email, 2).await;
        assert_problem(&answers[0], 401, "invalid_credentials");
        assert_eq!(assert_locked(&answers[1], 2), 2, "{answers:?}");
    }
}

/// Guesses sent side by side cannot all pass a guard that none of them has been counted by:
/// each attempt is counted before its password is checked, so with a lock at the 3rd failure
/// only three of 30 simultaneous logins are checked, the lock is recorded once, and the rest
/// are refused; so is the right password afterwards.
#[tokio::test]
async fn side_by_side_guesses_are_checked_only_up_to_the_lock() {
    let options = Options::new()
        .rate_limits_raised()
        .config("[lockout]\nmax_failures = 3\nlock_secs = 600\n");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let email = fresh_email("parallel");
    issuer.register_ok(&email, PASSWORD).await;

    let mut tasks = JoinSet::new();
    for _ in 0..30 {
        let request = issuer
            .request(Method::POST, "/v1/auth/login")
            .json(&json!({"email": email, "password": WRONG}));
        tasks.spawn(send(request));
    }
    let answers = tasks.join_all().await;
    let (refused, checked): (Vec<_>, Vec<_>) = answers.iter().partition(|r| r.status == 423);
    assert_eq!(
        checked.len(),
        3,
        "only attempts before the lock: {answers:#?}"
    );
    for answer in checked {
        assert_problem(answer, 401, "invalid_credentials");
    }
    // A 600 s lock, rounded up to the whole second.
    for answer in refused {
        assert_locked(answer, 601);
    }
    let mut database = issuer.sandbox().database().await;
    let (failures, lockouts) = database.lockout_counts().await;
    assert_eq!(
        (failures, lockouts),
        (3, 1),
        "three counted, one lock recorded"
    );
    assert_locked(&login(&issuer, &email, PASSWORD, None, None).await, 601);
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let email = fresh_email("forgetful");
    issuer.register_ok(&email, PASSWORD).await;
    for _ in 0..2 {
        for answer in wrong_logins(&issuer, &email, 2).await {
            assert_problem(&answer, 401, "invalid_credentials");
        }
        // Four failures in a row would be delayed by now; two since the last success are not.
        let right = login(&issuer, &email, PASSWORD, None, None).await;
        assert_eq!(right.status, 200, "{right:?}");
    }
}

#[tokio::test]
async fn a_tenant_override_applies_to_that_tenant_only() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let mut database = issuer.sandbox().database().await;
    let strict = database.create_tenant("strict").await;
    database
        .set_lockout_policy(&strict, Some(1), Some(60))
        .await;
    drop(database);
    let email = fresh_email("tenant");
    for tenant in ["strict", DEFAULT_TENANT_ID] {
        let request = issuer
            .request(Method::POST, "/v1/auth/register")
            .header("x-tenant-id", tenant)
            .json(&json!({"email": email, "password": PASSWORD}));
        assert_eq!(issuer.send(request).await.status, 201);
    }

    let wrong = login(&issuer, &email, WRONG, None, Some("strict")).await;
    assert_problem(&wrong, 401, "invalid_credentials");
    let refused = login(&issuer, &email, PASSWORD, None, Some("strict")).await;
    let wait = assert_locked(&refused, 60);
    assert!(
        wait > 30,
        "the tenant's 60 s lock, not a delay: {refused:?}"
    );

    // The same address in the default tenant is another account under the default rule.
    let wrong = login(&issuer, &email, WRONG, None, None).await;
    assert_problem(&wrong, 401, "invalid_credentials");
    let right = login(&issuer, &email, PASSWORD, None, None).await;
    assert_eq!(right.status, 200, "{right:?}");
}
