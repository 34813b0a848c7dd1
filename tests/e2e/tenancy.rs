//! Tenant resolution (0001, "Tenancy"): `X-Tenant-ID` by slug or id, else `default`.

use reqwest::Method;
use serde_json::json;

use crate::support::{DEFAULT_TENANT_ID, Issuer, PASSWORD, Response, assert_problem};

async fn register_in(issuer: &Issuer, tenant: &str, email: &str) -> Response {
    let request = issuer
        .request(Method::POST, "/v1/auth/register")
        .header("X-Tenant-ID", tenant)
        .json(&json!({"email": email, "password": PASSWORD}));
    issuer.send(request).await
}

async fn login_in(issuer: &Issuer, tenant: &str, email: &str) -> Response {
    let request = issuer
        .request(Method::POST, "/v1/auth/login")
        .header("X-Tenant-ID", tenant)
        .json(&json!({"email": email, "password": PASSWORD}));
    issuer.send(request).await
}

async fn me_in(issuer: &Issuer, tenant: &str, access_token: &str) -> Response {
    let request = issuer
        .request(Method::GET, "/v1/auth/me")
        .header("X-Tenant-ID", tenant)
        .bearer_auth(access_token);
    issuer.send(request).await
}

#[tokio::test]
async fn tenant_header_default_slug_or_id_behaves_like_no_header() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let registered = register_in(&issuer, "default", "tenant-a@example.com").await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let user_id = registered.str_field("user_id");

    let plain = issuer.login("tenant-a@example.com", PASSWORD).await;
    assert_eq!(
        plain.claims()["sub"],
        user_id,
        "same user without the header"
    );
    for tenant in ["default", DEFAULT_TENANT_ID] {
        let login = login_in(&issuer, tenant, "tenant-a@example.com").await;
        assert_eq!(login.status, 200, "{tenant}: {login:?}");
        let me = me_in(&issuer, tenant, &plain.access_token).await;
        assert_eq!(me.status, 200, "{tenant}: {me:?}");
        assert_eq!(me.body["tenant_id"], DEFAULT_TENANT_ID, "{me:?}");
        assert_eq!(me.body["user_id"], user_id, "{me:?}");
    }
}

#[tokio::test]
async fn tenant_header_unknown_returns_tenant_not_found() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    for tenant in ["nope", "tnt_0193c6e4a8f37c2e9b1d5f0a2c4e6b8d"] {
        assert_problem(
            &register_in(&issuer, tenant, "x@example.com").await,
            404,
            "tenant_not_found",
        );
        assert_problem(
            &login_in(&issuer, tenant, &alice.email).await,
            404,
            "tenant_not_found",
        );
        let me = me_in(&issuer, tenant, &alice.tokens.access_token).await;
        assert_problem(&me, 404, "tenant_not_found");
    }
}

/// A second tenant, created directly in this test's store (tenant administration is not part of
/// issue #2). Returns its id.
async fn create_tenant(issuer: &Issuer, slug: &str) -> String {
    issuer.sandbox().database().await.create_tenant(slug).await
}

#[tokio::test]
async fn token_presented_under_another_tenant_is_refused() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let other = create_tenant(&issuer, "other").await;
    let alice = issuer.signup().await;

    for tenant in ["other", other.as_str()] {
        let me = me_in(&issuer, tenant, &alice.tokens.access_token).await;
        assert_eq!(
            me.status, 401,
            "a default-tenant token under {tenant}: {me:?}"
        );
        assert!(me.is_problem_json(), "{me:?}");
    }
    // Accounts do not cross tenants either.
    assert_problem(
        &login_in(&issuer, "other", &alice.email).await,
        401,
        "invalid_credentials",
    );
    let bob = register_in(&issuer, "other", "bob@example.com").await;
    assert_eq!(bob.status, 201, "{bob:?}");
    let bob_login = login_in(&issuer, "other", "bob@example.com").await;
    assert_eq!(bob_login.status, 200, "{bob_login:?}");
    let bob_token = bob_login.str_field("access_token");
    assert_eq!(
        crate::support::jwt::payload(bob_token)["tid"],
        other.as_str()
    );
    assert_eq!(me_in(&issuer, "other", bob_token).await.status, 200);
    assert_eq!(
        issuer.me(bob_token).await.status,
        401,
        "other-tenant token without the header"
    );
}

/// 0001: the tenant comes from `Host` (table `tenant_domains`) before `X-Tenant-ID`.
#[tokio::test]
async fn tenant_resolved_from_mapped_host_domain() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let acme = create_tenant(&issuer, "acme").await;
    let mut database = issuer.sandbox().database().await;
    database.map_domain("auth.acme.test", &acme).await;
    let on_host = |method: Method, path: &str| {
        let port = issuer
            .base_url()
            .rsplit(':')
            .next()
            .expect("port")
            .to_owned();
        issuer
            .request(method, path)
            .header("Host", format!("auth.acme.test:{port}"))
    };

    let body = json!({"email": "carol@example.com", "password": PASSWORD});
    let registered = issuer
        .send(on_host(Method::POST, "/v1/auth/register").json(&body))
        .await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let login = issuer
        .send(on_host(Method::POST, "/v1/auth/login").json(&body))
        .await;
    assert_eq!(login.status, 200, "{login:?}");
    let token = login.str_field("access_token");
    assert_eq!(crate::support::jwt::payload(token)["tid"], acme.as_str());
    let me = issuer
        .send(on_host(Method::GET, "/v1/auth/me").bearer_auth(token))
        .await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["tenant_id"], acme.as_str(), "{me:?}");

    // The same address in the default tenant is another, unknown account.
    let elsewhere = issuer.login_raw("carol@example.com", PASSWORD).await;
    assert_problem(&elsewhere, 401, "invalid_credentials");
}
