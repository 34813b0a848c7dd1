//! The audit log (design note 0005, "Audit log"; issue #6): security events with tenant, user,
//! client address, user agent, time and outcome, listed by `GET /v1/audit-events` to holders
//! of `audit:read` (the `admin` role has `*`), newest first and cursor-paginated.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Issuer, Options, PASSWORD, Response, assert_problem, fresh_email, send};

const AGENT: &str = "audit-test-agent/1.0";

/// A request from the test client with `User-Agent: AGENT`.
fn request(issuer: &Issuer, method: Method, path: &str) -> reqwest::RequestBuilder {
    issuer.request(method, path).header("user-agent", AGENT)
}

async fn login(issuer: &Issuer, email: &str, password: &str) -> Response {
    let body = json!({"email": email, "password": password});
    send(request(issuer, Method::POST, "/v1/auth/login").json(&body)).await
}

async fn list(issuer: &Issuer, bearer: &str, query: &str) -> Response {
    issuer
        .get_with_bearer(&format!("/v1/audit-events{query}"), bearer)
        .await
}

/// The events of one page, asserting a 200.
fn events(response: &Response) -> Vec<Value> {
    assert_eq!(response.status, 200, "{response:?}");
    response.body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {response:?}"))
        .clone()
}

/// An admin of the default tenant: registered, granted `admin` with SQL, logged in.
async fn admin(issuer: &Issuer) -> String {
    let email = fresh_email("admin");
    let user_id = issuer.register_ok(&email, PASSWORD).await;
    let mut database = issuer.sandbox().database().await;
    database.grant_role(&user_id, "admin").await;
    drop(database);
    issuer.login(&email, PASSWORD).await.access_token
}

#[tokio::test]
async fn audit_events_record_the_flows_and_filter_by_user_and_type() {
    let options = Options::new()
        .rate_limits_raised()
        .env("PORTCULLIS_TOKEN__REFRESH_GRACE_SECS", "0")
        .config("[lockout]\nmax_failures = 3\nlock_secs = 60\n");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let admin = admin(&issuer).await;
    let bob = fresh_email("bob");
    let body = json!({"email": bob, "password": PASSWORD});
    let registered = send(request(&issuer, Method::POST, "/v1/auth/register").json(&body)).await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let bob_id = registered.str_field("user_id").to_owned();

    assert_problem(
        &login(&issuer, &bob, "wrong password 1").await,
        401,
        "invalid_credentials",
    );
    let tokens = login(&issuer, &bob, PASSWORD).await;
    assert_eq!(tokens.status, 200, "{tokens:?}");
    let access = tokens.str_field("access_token").to_owned();
    let refresh = tokens.str_field("refresh_token").to_owned();
    let rotated = send(
        request(&issuer, Method::POST, "/v1/auth/refresh").json(&json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(rotated.status, 200, "{rotated:?}");
    let reused = send(
        request(&issuer, Method::POST, "/v1/auth/refresh").json(&json!({"refresh_token": refresh})),
    )
    .await;
    assert_problem(&reused, 401, "refresh_token_reused");
    let second = login(&issuer, &bob, PASSWORD)
        .await
        .str_field("access_token")
        .to_owned();
    let logout = request(&issuer, Method::POST, "/v1/auth/logout").bearer_auth(&second);
    assert_eq!(send(logout.json(&json!({}))).await.status, 204);
    let third = login(&issuer, &bob, PASSWORD)
        .await
        .str_field("access_token")
        .to_owned();
    let logout_all = request(&issuer, Method::POST, "/v1/auth/logout-all").bearer_auth(&third);
    assert_eq!(send(logout_all.json(&json!({}))).await.status, 204);
    for attempt in 1..=3 {
        let wrong = login(&issuer, &bob, &format!("wrong password {attempt}")).await;
        assert_problem(&wrong, 401, "invalid_credentials");
    }
    assert_eq!(login(&issuer, &bob, PASSWORD).await.status, 423);
    drop(access);

    let page = list(&issuer, &admin, &format!("?user_id={bob_id}")).await;
    let got: Vec<(String, String)> = events(&page)
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("login", "refused"),
        ("login", "failure"),
        ("lockout", "failure"),
        ("login", "failure"),
        ("login", "failure"),
        ("logout_all", "success"),
        ("login", "success"),
        ("logout", "success"),
        ("login", "success"),
        ("refresh_token_reused", "failure"),
        ("login", "success"),
        ("login", "failure"),
        ("register", "success"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, o)| ((*k).to_owned(), (*o).to_owned()))
        .collect();
    assert_eq!(got, want, "newest first: {page:?}");
    for event in events(&page) {
        assert_eq!(event["user_id"], bob_id.as_str(), "{event}");
        assert_eq!(event["ip"], "127.0.0.1", "{event}");
        assert_eq!(event["user_agent"], AGENT, "{event}");
        assert!(event["detail"].is_object(), "{event}");
        assert!(
            event["created_at"].as_str().unwrap().ends_with('Z'),
            "{event}"
        );
    }
    let lockout = &events(&page)[2];
    assert_eq!(lockout["detail"]["failures"], 3, "{lockout}");
    assert!(lockout["detail"]["locked_until"].is_string(), "{lockout}");

    let logins = events(&list(&issuer, &admin, &format!("?user_id={bob_id}&type=login")).await);
    assert_eq!(logins.len(), 8);
    assert!(logins.iter().all(|event| event["type"] == "login"));
    let all_logins = events(&list(&issuer, &admin, "?type=login").await);
    assert_eq!(all_logins.len(), 9, "the admin's own login too");
}

#[tokio::test]
async fn audit_events_paginate_with_a_cursor_and_filter_by_time() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let admin = admin(&issuer).await;
    for _ in 0..3 {
        issuer.signup().await;
    }
    // register + login each: 8 events with the admin's own.
    let everything = events(&list(&issuer, &admin, "?limit=100").await);
    assert_eq!(everything.len(), 8);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("?limit=3&cursor={cursor}"),
            None => "?limit=3".to_owned(),
        };
        let page = list(&issuer, &admin, &query).await;
        paged.extend(events(&page));
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, everything, "the pages, in order, are the whole list");
    let ids: Vec<u64> = paged
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first: {ids:?}"
    );

    let future = "2999-01-01T00:00:00Z";
    let past = "2000-01-01T00:00:00Z";
    assert!(events(&list(&issuer, &admin, &format!("?since={future}")).await).is_empty());
    assert!(events(&list(&issuer, &admin, &format!("?until={past}")).await).is_empty());
    let window = format!("?since={past}&until={future}&limit=100");
    assert_eq!(events(&list(&issuer, &admin, &window).await).len(), 8);
}

#[tokio::test]
async fn audit_events_are_for_permitted_callers_of_the_same_tenant_only() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let admin = admin(&issuer).await;
    let member = issuer.signup().await;

    let mut database = issuer.sandbox().database().await;
    database.create_tenant("other").await;
    drop(database);
    let carol = fresh_email("carol");
    let register = issuer
        .request(Method::POST, "/v1/auth/register")
        .header("x-tenant-id", "other")
        .json(&json!({"email": carol, "password": PASSWORD}));
    let carol_id = issuer.send(register).await.str_field("user_id").to_owned();
    let carol_login = issuer
        .request(Method::POST, "/v1/auth/login")
        .header("x-tenant-id", "other")
        .json(&json!({"email": carol, "password": PASSWORD}));
    let carol_token = issuer
        .send(carol_login)
        .await
        .str_field("access_token")
        .to_owned();

    let mine = events(&list(&issuer, &admin, "?limit=100").await);
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|event| event["user_id"] != carol_id.as_str()),
        "another tenant's events are invisible: {mine:?}"
    );
    let filtered = events(&list(&issuer, &admin, &format!("?user_id={carol_id}")).await);
    assert!(filtered.is_empty(), "{filtered:?}");

    let forbidden = list(&issuer, &member.tokens.access_token, "").await;
    assert_problem(&forbidden, 403, "forbidden");
    // Carol has no admin role in her tenant either.
    let request = issuer
        .request(Method::GET, "/v1/audit-events")
        .header("x-tenant-id", "other")
        .bearer_auth(&carol_token);
    assert_problem(&issuer.send(request).await, 403, "forbidden");
    assert_problem(
        &issuer.get("/v1/audit-events").await,
        401,
        "unauthenticated",
    );
    // Permission first: a caller without it learns nothing about the parameters.
    let bad = list(&issuer, &member.tokens.access_token, "?limit=0").await;
    assert_problem(&bad, 403, "forbidden");

    for query in [
        "?type=nope",
        "?limit=0",
        "?limit=101",
        "?since=yesterday",
        "?user_id=bob",
        "?cursor=abc",
        "?colour=blue",
        "?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
    ] {
        assert_problem(&list(&issuer, &admin, query).await, 400, "invalid_request");
    }
}
