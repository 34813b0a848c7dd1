//! A login flood against the bounded password hasher (0002, "Configuration" and "Errors"):
//! with one hashing thread and the shortest queue wait, a burst of logins must be partly
//! refused with 503 `server_busy` rather than queued without end or failed with a 500, and
//! requests that hash nothing must keep being answered meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::support::{Issuer, Options, PASSWORD, Response, assert_problem, send};

/// Logins fired at once in one wave; far more than one hashing thread serves in a millisecond.
const FLOOD_SIZE: usize = 30;

/// Waves tried before concluding that nothing is refused. One almost always suffices; more
/// only keep a machine that happens to serialise a whole wave from failing the test.
const MAX_WAVES: usize = 3;

/// A bound on each probe that only a stuck runtime exceeds. Not a performance check: a probe
/// on a loaded 2-core machine answers in milliseconds, and the HTTP client's own 60 s timeout
/// would make a hang fail far less clearly.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// What one flood login tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    RightPassword,
    WrongPassword,
    UnknownEmail,
}

impl Attempt {
    fn of(index: usize) -> Attempt {
        match index % 3 {
            0 => Attempt::RightPassword,
            1 => Attempt::WrongPassword,
            _ => Attempt::UnknownEmail,
        }
    }
}

/// An issuer with one hashing thread and the smallest `password.queue_timeout_ms` config
/// validation allows, so a second concurrent hash is refused almost at once, and rate limits
/// raised out of the way.
async fn start_with_one_hashing_slot() -> Option<Issuer> {
    // The flood is from one client: rate limits would refuse it before it reaches the hasher,
    // and its ten wrong passwords for one account would delay the account.
    let options = Options::new()
        .rate_limits_raised()
        .lockout_off()
        .env("PORTCULLIS_PASSWORD__MAX_CONCURRENT_HASHES", "1")
        .env("PORTCULLIS_PASSWORD__QUEUE_TIMEOUT_MS", "1");
    Issuer::start_with(options).await
}

/// Asserts one flood answer is either what a login answers anyway or 503 `server_busy` with a
/// `Retry-After`; anything else (a 500 above all) fails. Returns whether it was refused.
fn check_flood_answer(attempt: Attempt, response: &Response) -> bool {
    assert_ne!(
        response.status, 500,
        "{attempt:?} failed under load: {response:?}"
    );
    if response.status == 503 {
        assert_problem(response, 503, "server_busy");
        let retry_after = response.header("retry-after").unwrap_or_default();
        assert!(
            retry_after.parse::<u64>().is_ok_and(|seconds| seconds > 0),
            "503 server_busy needs Retry-After in delay-seconds: {response:?}"
        );
        return true;
    }
    match attempt {
        Attempt::RightPassword => {
            assert_eq!(response.status, 200, "{attempt:?}: {response:?}");
            assert!(
                response.body["access_token"].is_string(),
                "{attempt:?}: {response:?}"
            );
        }
        Attempt::WrongPassword | Attempt::UnknownEmail => {
            assert_problem(response, 401, "invalid_credentials");
        }
    }
    false
}

/// Sends `FLOOD_SIZE` logins, released together (and with the prober) by `started`, and
/// returns each answer with what it tried; sets `finished` once every answer is in.
async fn login_flood(
    issuer: &Issuer,
    email: &str,
    started: &Arc<Barrier>,
    finished: &Arc<AtomicBool>,
) -> Vec<(Attempt, Response)> {
    let mut tasks = JoinSet::new();
    for index in 0..FLOOD_SIZE {
        let attempt = Attempt::of(index);
        let (email, password) = match attempt {
            Attempt::RightPassword => (email.to_owned(), PASSWORD.to_owned()),
            Attempt::WrongPassword => (email.to_owned(), format!("wrong password {index}")),
            Attempt::UnknownEmail => (format!("nobody-{index}@example.com"), PASSWORD.to_owned()),
        };
        let request = issuer
            .request(Method::POST, "/v1/auth/login")
            .json(&json!({"email": email, "password": password}));
        let barrier = Arc::clone(started);
        tasks.spawn(async move {
            barrier.wait().await;
            (attempt, send(request).await)
        });
    }
    let answers = tasks.join_all().await;
    finished.store(true, Ordering::SeqCst);
    answers
}

/// Until `finished`, asks `/healthz` and `/v1/auth/me` (neither hashes a password) in turn,
/// starting as the flood is released; asserts each answers 200. Returns the rounds made.
async fn probe_during_flood(
    issuer: &Issuer,
    access_token: &str,
    started: &Arc<Barrier>,
    finished: &Arc<AtomicBool>,
) -> usize {
    started.wait().await;
    let mut rounds = 0;
    loop {
        let health = issuer.request(Method::GET, "/healthz");
        let me = issuer
            .request(Method::GET, "/v1/auth/me")
            .bearer_auth(access_token);
        for (what, request) in [("GET /healthz", health), ("GET /v1/auth/me", me)] {
            let response = tokio::time::timeout(PROBE_TIMEOUT, send(request))
                .await
                .unwrap_or_else(|_| panic!("{what} unanswered for {PROBE_TIMEOUT:?} in a flood"));
            assert_eq!(
                response.status, 200,
                "{what} during the flood: {response:?}"
            );
        }
        rounds += 1;
        if finished.load(Ordering::SeqCst) {
            return rounds;
        }
    }
}

#[tokio::test]
async fn flood_of_logins_is_refused_with_server_busy_and_other_requests_still_answer() {
    let Some(issuer) = start_with_one_hashing_slot().await else {
        return;
    };
    let account = issuer.signup().await;

    let mut refused = 0;
    let mut answered = 0;
    for _ in 0..MAX_WAVES {
        // The flood's tasks and the prober all wait on the same barrier.
        let started = Arc::new(Barrier::new(FLOOD_SIZE + 1));
        let finished = Arc::new(AtomicBool::new(false));
        let (answers, rounds) = tokio::join!(
            login_flood(&issuer, &account.email, &started, &finished),
            probe_during_flood(&issuer, &account.tokens.access_token, &started, &finished),
        );
        assert!(rounds >= 1, "no probe ran during the flood");
        for (attempt, response) in &answers {
            answered += 1;
            if check_flood_answer(*attempt, response) {
                refused += 1;
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "{answered} logins at {FLOOD_SIZE} at a time with one hashing thread and a 1 ms queue \
         timeout, and none was refused with 503 server_busy: is the hasher unbounded?"
    );
    assert!(
        refused < answered,
        "every one of {answered} flood logins was refused: none was served"
    );

    // Every refused login gave its slot back (or never took one): a lone login is served.
    let after = issuer.login(&account.email, PASSWORD).await;
    assert_eq!(issuer.me(&after.access_token).await.status, 200);
}
