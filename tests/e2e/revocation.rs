//! Logout-all, RFC 7009 revocation and the revocation feed (0001, "Revocation feed"). The
//! rebuild of the Redis blacklist is in `postgres_only`.

use serde_json::Value;

use crate::support::{DEFAULT_TENANT_ID, Issuer, PASSWORD, Response, assert_problem, unix_now};

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let first = alice.tokens;
    let second = issuer.login(&alice.email, PASSWORD).await;
    let bob = issuer.signup().await;
    assert_ne!(
        first.claims()["sid"],
        second.claims()["sid"],
        "two logins, two sessions"
    );

    let logout = issuer.logout_all(&first.access_token).await;
    assert_eq!(logout.status, 204, "{logout:?}");

    for tokens in [&first, &second] {
        assert_problem(&issuer.me(&tokens.access_token).await, 401, "token_revoked");
        let refresh = issuer.refresh(&tokens.refresh_token).await;
        assert_problem(&refresh, 401, "invalid_refresh_token");
    }
    assert_eq!(
        issuer.me(&bob.tokens.access_token).await.status,
        200,
        "other users unaffected"
    );
    let again = issuer.login(&alice.email, PASSWORD).await;
    assert_eq!(
        issuer.me(&again.access_token).await.status,
        200,
        "new logins still work"
    );
}

#[tokio::test]
async fn oauth_revoke_refresh_token_revokes_its_session() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let other_session = issuer.login(&alice.email, PASSWORD).await;

    let revoke = issuer
        .revoke(&alice.tokens.refresh_token, Some("refresh_token"))
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");

    let refresh = issuer.refresh(&alice.tokens.refresh_token).await;
    assert_problem(&refresh, 401, "invalid_refresh_token");
    assert_problem(
        &issuer.me(&alice.tokens.access_token).await,
        401,
        "token_revoked",
    );
    assert_eq!(
        issuer.me(&other_session.access_token).await.status,
        200,
        "only that session"
    );
}

#[tokio::test]
async fn oauth_revoke_refresh_token_without_hint_revokes_its_session() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    let revoke = issuer.revoke(&alice.tokens.refresh_token, None).await;
    assert_eq!(revoke.status, 200, "{revoke:?}");

    let refresh = issuer.refresh(&alice.tokens.refresh_token).await;
    assert_problem(&refresh, 401, "invalid_refresh_token");
    assert_problem(
        &issuer.me(&alice.tokens.access_token).await,
        401,
        "token_revoked",
    );
}

#[tokio::test]
async fn oauth_revoke_access_token_blacklists_it() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    let revoke = issuer
        .revoke(&alice.tokens.access_token, Some("access_token"))
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");

    assert_problem(
        &issuer.me(&alice.tokens.access_token).await,
        401,
        "token_revoked",
    );
}

#[tokio::test]
async fn oauth_revoke_garbage_token_returns_200() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for token in [
        "garbage",
        "prt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "a.b.c",
    ] {
        let revoke = issuer.revoke(token, None).await;
        assert_eq!(revoke.status, 200, "{token}: {revoke:?}");
        let hinted = issuer.revoke(token, Some("refresh_token")).await;
        assert_eq!(hinted.status, 200, "{token}: {hinted:?}");
    }
}

/// The feed entries, asserting the page shape and that cursors strictly increase.
fn feed_entries(page: &Response) -> Vec<Value> {
    assert_eq!(page.status, 200, "{page:?}");
    let entries = page.body["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{page:?}"))
        .clone();
    let cursors: Vec<u64> = entries.iter().map(cursor).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors not increasing: {cursors:?}"
    );
    assert!(page.body["has_more"].is_boolean(), "has_more: {page:?}");
    if let Some(last) = entries.last() {
        assert_eq!(
            page.body["next_cursor"], last["cursor"],
            "next_cursor: {page:?}"
        );
    }
    for entry in &entries {
        let kind = entry["kind"].as_str().unwrap_or_default();
        assert!(
            ["jti", "session", "subject"].contains(&kind),
            "kind: {entry}"
        );
        assert!(
            entry["value"].as_str().is_some_and(|v| !v.is_empty()),
            "value: {entry}"
        );
        assert_eq!(entry["tenant_id"], DEFAULT_TENANT_ID, "tenant_id: {entry}");
        assert!(
            entry["expires_at"].as_u64().is_some_and(|t| t > unix_now()),
            "{entry}"
        );
        if kind == "subject" {
            assert!(entry["issued_before"].is_u64(), "issued_before: {entry}");
        }
    }
    entries
}

/// A cursor: a decimal string (0001).
fn cursor(entry: &Value) -> u64 {
    let cursor = entry["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("cursor a string: {entry}"));
    cursor
        .parse()
        .unwrap_or_else(|_| panic!("cursor not decimal: {entry}"))
}

/// Whether `entries` revoke the access token with these claims.
fn revokes(entries: &[Value], claims: &Value) -> bool {
    entries.iter().any(|entry| match entry["kind"].as_str() {
        Some("jti") => entry["value"] == claims["jti"],
        Some("session") => entry["value"] == claims["sid"],
        Some("subject") => {
            entry["value"] == claims["sub"]
                && claims["iat"].as_u64() < entry["issued_before"].as_u64()
        }
        _ => false,
    })
}

#[tokio::test]
async fn revocation_feed_since_cursor_returns_only_later_entries() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let sessions = [
        alice.tokens.clone(),
        issuer.login(&alice.email, PASSWORD).await,
        issuer.login(&alice.email, PASSWORD).await,
    ];

    let empty = issuer.revocations(None).await;
    let before = feed_entries(&empty);
    assert!(
        !revokes(&before, &sessions[0].claims()),
        "nothing revoked yet: {empty:?}"
    );

    let first_logout = issuer.logout(&sessions[0].access_token, None).await;
    assert_eq!(first_logout.status, 204, "{first_logout:?}");
    let page = issuer.revocations(None).await;
    let all = feed_entries(&page);
    assert!(
        revokes(&all, &sessions[0].claims()),
        "logout not in the feed: {page:?}"
    );
    let first_cursor = page.str_field("next_cursor").to_owned();

    let caught_up = issuer.revocations(Some(&first_cursor)).await;
    assert!(
        feed_entries(&caught_up).is_empty(),
        "nothing after the last cursor: {caught_up:?}"
    );
    assert_eq!(
        caught_up.body["next_cursor"],
        first_cursor.as_str(),
        "stays at since"
    );

    for tokens in &sessions[1..] {
        let logout = issuer.logout(&tokens.access_token, None).await;
        assert_eq!(logout.status, 204, "{logout:?}");
    }
    let later = issuer.revocations(Some(&first_cursor)).await;
    let new_entries = feed_entries(&later);
    let since: u64 = first_cursor.parse().expect("decimal cursor");
    assert!(
        new_entries.iter().all(|e| cursor(e) > since),
        "entries at or before since: {later:?}"
    );
    assert!(
        !revokes(&new_entries, &sessions[0].claims()),
        "old entry repeated: {later:?}"
    );
    assert!(
        revokes(&new_entries, &sessions[1].claims()),
        "second logout missing: {later:?}"
    );
    assert!(
        revokes(&new_entries, &sessions[2].claims()),
        "third logout missing: {later:?}"
    );
    let next: u64 = later
        .str_field("next_cursor")
        .parse()
        .expect("decimal cursor");
    assert!(next > since, "next_cursor must advance: {later:?}");

    // The full feed is the first page followed by the later one.
    let full = feed_entries(&issuer.revocations(None).await);
    assert_eq!(full.len(), all.len() + new_entries.len(), "{full:?}");
}

#[tokio::test]
async fn revocation_feed_limit_pages_with_has_more() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let second = issuer.login(&alice.email, PASSWORD).await;
    for tokens in [&alice.tokens, &second] {
        assert_eq!(issuer.logout(&tokens.access_token, None).await.status, 204);
    }
    let all = feed_entries(&issuer.revocations(None).await);
    assert!(all.len() >= 2, "two logouts, two entries at least: {all:?}");

    let mut collected = Vec::new();
    let mut since: Option<String> = None;
    for _ in 0..=all.len() {
        let path = match &since {
            Some(since) => format!("/v1/revocations?since={since}&limit=1"),
            None => "/v1/revocations?limit=1".to_owned(),
        };
        let page = issuer.get(&path).await;
        let entries = feed_entries(&page);
        assert!(entries.len() <= 1, "limit=1: {page:?}");
        collected.extend(entries);
        since = Some(page.str_field("next_cursor").to_owned());
        if page.body["has_more"] == false {
            break;
        }
    }
    assert_eq!(
        collected, all,
        "paging with limit=1 must yield the whole feed"
    );
}

#[tokio::test]
async fn revocation_feed_bad_since_returns_invalid_request() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for since in [
        "abc",
        "1.5",
        "12abc",
        "%20",
        "-1",
        "+1",
        "99999999999999999999",
    ] {
        let page = issuer.revocations(Some(since)).await;
        assert_problem(&page, 400, "invalid_request");
    }
}

/// A cursor beyond the newest entry was never handed out (the database was restored or
/// replaced): an empty page would leave the poller waiting for entries it can never see.
#[tokio::test]
async fn revocation_feed_since_beyond_newest_entry_returns_invalid_request() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let empty = issuer.revocations(None).await;
    assert_eq!(empty.status, 200, "{empty:?}");
    assert_problem(&issuer.revocations(Some("1")).await, 400, "invalid_request");

    let alice = issuer.signup().await;
    let logout = issuer.logout(&alice.tokens.access_token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let page = issuer.revocations(None).await;
    let newest = page.str_field("next_cursor").to_owned();
    let at_newest = issuer.revocations(Some(&newest)).await;
    assert_eq!(at_newest.status, 200, "{at_newest:?}");
    let beyond = (newest.parse::<u64>().expect("decimal cursor") + 1).to_string();
    assert_problem(
        &issuer.revocations(Some(&beyond)).await,
        400,
        "invalid_request",
    );
}

/// RFC 7009 §2.1: a wrong `token_type_hint` only costs a wider search.
#[tokio::test]
async fn oauth_revoke_refresh_token_with_wrong_hint_still_revokes() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    let revoke = issuer
        .revoke(&alice.tokens.refresh_token, Some("access_token"))
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");

    let refresh = issuer.refresh(&alice.tokens.refresh_token).await;
    assert_problem(&refresh, 401, "invalid_refresh_token");
    assert_problem(
        &issuer.me(&alice.tokens.access_token).await,
        401,
        "token_revoked",
    );
}
