//! Refresh rotation, reuse detection and concurrent presentations (0001, "Refresh rotation").

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::support::{
    Issuer, Options, PASSWORD, Response, assert_client_problem, assert_problem, send,
};

const PARALLEL_REFRESHES: usize = 50;

/// An issuer without the grace window: any second presentation is reuse.
async fn start_without_grace() -> Option<Issuer> {
    Issuer::start_with(Options::new().env("PORTCULLIS_TOKEN__REFRESH_GRACE_SECS", "0")).await
}

/// Presents `refresh_token` `PARALLEL_REFRESHES` times at once, each from its own task, all
/// released together by a barrier.
async fn refresh_in_parallel(issuer: &Issuer, refresh_token: &str) -> Vec<Response> {
    let barrier = Arc::new(Barrier::new(PARALLEL_REFRESHES));
    let mut tasks = JoinSet::new();
    for _ in 0..PARALLEL_REFRESHES {
        let request = issuer
            .request(Method::POST, "/v1/auth/refresh")
            .json(&json!({"refresh_token": refresh_token}));
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            send(request).await
        });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn refresh_unknown_token_returns_invalid_refresh_token() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let unknown = "prt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_problem(&issuer.refresh(unknown).await, 401, "invalid_refresh_token");
    assert_problem(
        &issuer.refresh("garbage").await,
        401,
        "invalid_refresh_token",
    );
}

#[tokio::test]
async fn refresh_reused_token_without_grace_revokes_family() {
    let Some(issuer) = start_without_grace().await else {
        return;
    };
    let alice = issuer.signup().await;
    let first = alice.tokens;

    let second = issuer.refresh_ok(&first.refresh_token).await;
    assert_eq!(issuer.me(&second.access_token).await.status, 200);

    assert_problem(
        &issuer.refresh(&first.refresh_token).await,
        401,
        "refresh_token_reused",
    );
    assert_problem(
        &issuer.refresh(&second.refresh_token).await,
        401,
        "invalid_refresh_token",
    );
    assert_problem(&issuer.me(&second.access_token).await, 401, "token_revoked");
    assert_problem(&issuer.me(&first.access_token).await, 401, "token_revoked");

    // The user is not locked out: a new login starts a new, working family.
    let again = issuer.login(&alice.email, PASSWORD).await;
    assert_eq!(issuer.me(&again.access_token).await.status, 200);
}

/// Without grace, 50 simultaneous presentations of one token: at most one wins; every other one
/// is a 401. The losers are presentations of a used token outside the (zero) grace window, so
/// per 0001 they revoke the whole family: the winner's successor must be dead afterwards too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_concurrent_presentations_without_grace_yield_at_most_one_winner() {
    let Some(issuer) = start_without_grace().await else {
        return;
    };
    let alice = issuer.signup().await;

    let responses = refresh_in_parallel(&issuer, &alice.tokens.refresh_token).await;

    let winners: Vec<&Response> = responses.iter().filter(|r| r.status == 200).collect();
    println!(
        "{} of {PARALLEL_REFRESHES} presentations won",
        winners.len()
    );
    assert!(
        winners.len() <= 1,
        "{} presentations won: {winners:?}",
        winners.len()
    );
    for loser in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(loser.status, 401, "{loser:?}");
        let code = assert_client_problem(loser);
        assert!(
            code == "refresh_token_reused" || code == "invalid_refresh_token",
            "loser code: {loser:?}"
        );
    }
    if let Some(winner) = winners.first() {
        let successor = winner.str_field("refresh_token");
        assert_problem(
            &issuer.refresh(successor).await,
            401,
            "invalid_refresh_token",
        );
        let access = winner.str_field("access_token");
        assert_problem(&issuer.me(access).await, 401, "token_revoked");
    }
}

/// With the default 10 s grace, 50 simultaneous presentations all receive the same successor
/// (or a 401), so there is at most one live successor; once it is used, the original is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_concurrent_presentations_within_grace_share_one_successor() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let original = alice.tokens.refresh_token;

    let responses = refresh_in_parallel(&issuer, &original).await;

    for response in &responses {
        if response.status != 200 {
            assert_eq!(response.status, 401, "{response:?}");
            assert_client_problem(response);
        }
    }
    let successors: BTreeSet<&str> = responses
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.str_field("refresh_token"))
        .collect();
    let accepted = responses.iter().filter(|r| r.status == 200).count();
    println!("{accepted} of {PARALLEL_REFRESHES} presentations answered 200");
    assert_eq!(
        successors.len(),
        1,
        "want exactly one distinct successor, got {successors:?}"
    );

    // At most one live successor: try every distinct one; exactly the one works.
    let mut live = Vec::new();
    for successor in &successors {
        let response = issuer.refresh(successor).await;
        if response.status == 200 {
            live.push(response);
        } else {
            assert_client_problem(&response);
        }
    }
    assert_eq!(live.len(), 1, "successors {successors:?} gave {live:?}");

    // Its successor was used, so the original is dead, grace window or not.
    let late = issuer.refresh(&original).await;
    assert_eq!(
        late.status, 401,
        "original after its successor was used: {late:?}"
    );
    assert_client_problem(&late);
}

#[tokio::test]
async fn refresh_sequential_rotation_keeps_one_live_token() {
    let Some(issuer) = start_without_grace().await else {
        return;
    };
    let alice = issuer.signup().await;

    let mut current = alice.tokens;
    for _ in 0..5 {
        let next = issuer.refresh_ok(&current.refresh_token).await;
        assert_eq!(next.claims()["sid"], current.claims()["sid"], "same family");
        assert_eq!(issuer.me(&next.access_token).await.status, 200);
        current = next;
    }
}
