//! Register → login → me → refresh → logout, token shapes, introspection, and the answers that
//! must not reveal whether an account exists.

use serde_json::{Value, json};

use crate::support::{
    DEFAULT_TENANT_ID, Issuer, Options, PASSWORD, Tokens, assert_prefixed_id, assert_problem,
    assert_refresh_token_format, jwt, unix_now,
};

/// Asserts an RFC 6749 §5.1 token response and the access-token shape of API.md and 0001.
fn assert_token_response(issuer: &Issuer, tokens: &Tokens, user_id: &str) {
    let response = &tokens.response;
    assert_eq!(tokens.token_type, "Bearer", "{response:?}");
    assert!(
        (1..=900).contains(&tokens.expires_in),
        "expires_in (default TTL 900): {response:?}"
    );
    assert_refresh_token_format(&tokens.refresh_token);
    let cache_control = response.header("cache-control").unwrap_or_default();
    assert!(
        cache_control.contains("no-store"),
        "want Cache-Control: no-store, got {response:?}"
    );

    let header = jwt::header(&tokens.access_token);
    assert_eq!(header["alg"], "HS256", "default algorithm: {header}");
    let typ = header["typ"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert_eq!(typ, "at+jwt", "typ: {header}");
    assert!(
        header["kid"].as_str().is_some_and(|kid| !kid.is_empty()),
        "kid: {header}"
    );

    let claims = tokens.claims();
    assert_eq!(claims["iss"], issuer.base_url(), "iss: {claims}");
    let audience_ok = claims["aud"] == "portcullis"
        || claims["aud"]
            .as_array()
            .is_some_and(|aud| aud.contains(&json!("portcullis")));
    assert!(audience_ok, "aud: {claims}");
    assert_eq!(claims["sub"], user_id, "sub: {claims}");
    assert_eq!(claims["tid"], DEFAULT_TENANT_ID, "tid: {claims}");
    assert_prefixed_id(claims["sid"].as_str().expect("sid"), "ses_");
    let jti = uuid::Uuid::parse_str(claims["jti"].as_str().expect("jti")).expect("jti a UUID");
    assert_eq!(jti.get_version_num(), 7, "jti a UUIDv7: {claims}");
    let (exp, iat) = (
        claims["exp"].as_u64().expect("exp"),
        claims["iat"].as_u64().expect("iat"),
    );
    assert_eq!(exp - iat, 900, "default access TTL: {claims}");
    assert!(exp > unix_now(), "already expired: {claims}");
    assert!(claims["nbf"].is_u64(), "nbf: {claims}");
    assert!(
        claims["roles"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("member"))),
        "{claims}"
    );
    assert!(claims["perms"].is_array(), "perms: {claims}");
    assert_eq!(claims["amr"], json!(["pwd"]), "amr: {claims}");
}

#[tokio::test]
async fn lifecycle_register_login_me_refresh_logout_follows_contract() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let user_id = issuer
        .register_ok("Alice.Lifecycle@Example.COM", PASSWORD)
        .await;
    assert_prefixed_id(&user_id, "usr_");

    let first = issuer.login("alice.lifecycle@example.com", PASSWORD).await;
    assert_token_response(&issuer, &first, &user_id);

    let me = issuer.me(&first.access_token).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["user_id"], user_id, "{me:?}");
    assert_eq!(me.body["tenant_id"], DEFAULT_TENANT_ID, "{me:?}");
    assert!(
        me.body["roles"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("member"))),
        "{me:?}"
    );
    assert_eq!(me.body["session_id"], first.claims()["sid"], "{me:?}");
    assert_eq!(me.body["mfa"]["totp_enabled"], false, "{me:?}");

    let second = issuer.refresh_ok(&first.refresh_token).await;
    assert_token_response(&issuer, &second, &user_id);
    assert_ne!(
        second.access_token, first.access_token,
        "refresh must mint a new access token"
    );
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "refresh must rotate"
    );
    assert_eq!(
        second.claims()["sid"],
        first.claims()["sid"],
        "rotation keeps the session"
    );
    assert_eq!(issuer.me(&second.access_token).await.status, 200);

    let logout = issuer
        .logout(&second.access_token, Some(&second.refresh_token))
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");

    assert_problem(&issuer.me(&second.access_token).await, 401, "token_revoked");
    let as_bearer = issuer
        .introspect(&second.access_token, &second.access_token)
        .await;
    assert_problem(&as_bearer, 401, "token_revoked");
    let refresh = issuer.refresh(&second.refresh_token).await;
    assert_problem(&refresh, 401, "invalid_refresh_token");

    let fresh = issuer.login("alice.lifecycle@example.com", PASSWORD).await;
    let old = issuer
        .introspect(&fresh.access_token, &second.access_token)
        .await;
    assert_eq!(old.status, 200, "{old:?}");
    assert_eq!(old.body, json!({"active": false}), "revoked token: {old:?}");

    let live = issuer
        .introspect(&fresh.access_token, &fresh.access_token)
        .await;
    let claims = fresh.claims();
    assert_eq!(live.status, 200, "{live:?}");
    assert_eq!(live.body["active"], true, "{live:?}");
    assert_eq!(live.body["sub"], user_id, "{live:?}");
    assert_eq!(live.body["exp"], claims["exp"], "{live:?}");
    assert_eq!(live.body["jti"], claims["jti"], "{live:?}");
}

/// The brief for issue #2 asks `me` to report the normalized address (trim, NFKC, lowercase:
/// the form accounts are looked up by).
#[tokio::test]
async fn me_mixed_case_registration_returns_normalized_email() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    issuer.register_ok("Bob.Mixed@Example.COM", PASSWORD).await;

    let tokens = issuer.login("bob.mixed@example.com", PASSWORD).await;
    let me = issuer.me(&tokens.access_token).await;

    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(
        me.body["email"], "bob.mixed@example.com",
        "normalized email: {me:?}"
    );
}

#[tokio::test]
async fn introspect_token_of_another_user_is_inactive() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let bob = issuer.signup().await;

    let verdict = issuer
        .introspect(&bob.tokens.access_token, &alice.tokens.access_token)
        .await;

    assert_eq!(verdict.status, 200, "{verdict:?}");
    assert_eq!(verdict.body, json!({"active": false}), "{verdict:?}");
}

#[tokio::test]
async fn introspect_garbage_token_is_inactive() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    for token in ["garbage", "prt_AAAA", "a.b.c"] {
        let verdict = issuer.introspect(&alice.tokens.access_token, token).await;
        assert_eq!(verdict.status, 200, "{token}: {verdict:?}");
        assert_eq!(
            verdict.body,
            json!({"active": false}),
            "{token}: {verdict:?}"
        );
    }
}

#[tokio::test]
async fn login_unknown_email_and_wrong_password_answer_identically() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    let wrong_password = issuer
        .login_raw(&alice.email, "not the password at all")
        .await;
    let unknown_email = issuer.login_raw("nobody-here@example.com", PASSWORD).await;

    assert_problem(&wrong_password, 401, "invalid_credentials");
    assert_problem(&unknown_email, 401, "invalid_credentials");
    for member in ["type", "title", "status", "detail", "code"] {
        assert_eq!(
            wrong_password.body[member], unknown_email.body[member],
            "{member} differs: {wrong_password:?} vs {unknown_email:?}"
        );
    }
    let members = |body: &Value| {
        body.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
    };
    assert_eq!(members(&wrong_password.body), members(&unknown_email.body));
}

#[tokio::test]
async fn register_existing_email_variant_returns_201_without_taking_over() {
    // Four wrong passwords for one account: the lockout would delay the last ones.
    let options = Options::new().rate_limits_raised().lockout_off();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let original = issuer
        .register("alice@example.com", "first password 1")
        .await;
    assert_eq!(original.status, 201, "{original:?}");
    let original_id = original.str_field("user_id").to_owned();

    // Upper case, and full-width letters that NFKC folds to "alice".
    for variant in [
        "ALICE@example.com",
        "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}@example.com",
    ] {
        let duplicate = issuer.register(variant, "second password 2").await;
        assert_eq!(
            duplicate.status, 201,
            "{variant}: must look like a new registration"
        );
        let duplicate_id = duplicate.str_field("user_id");
        assert_prefixed_id(duplicate_id, "usr_");
        assert_ne!(
            duplicate_id, original_id,
            "{variant}: must not reveal the existing id"
        );
        let keys = |body: &Value| {
            body.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(
            keys(&duplicate.body),
            keys(&original.body),
            "{variant}: same shape"
        );

        let taken_over = issuer
            .login_raw("alice@example.com", "second password 2")
            .await;
        assert_problem(&taken_over, 401, "invalid_credentials");
        let via_variant = issuer.login_raw(variant, "second password 2").await;
        assert_problem(&via_variant, 401, "invalid_credentials");
    }

    let tokens = issuer.login("alice@example.com", "first password 1").await;
    assert_eq!(
        issuer.me(&tokens.access_token).await.body["user_id"],
        original_id
    );
    let normalized_login = issuer.login("ALICE@Example.com", "first password 1").await;
    assert_eq!(normalized_login.claims()["sub"], original_id.as_str());
}

/// A taken email must cost the same committed write as a free one, or the answer's timing
/// tells an attacker which addresses have accounts: each attempt leaves an account event.
#[tokio::test]
async fn register_taken_email_commits_an_account_event_like_a_new_one() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    for email in ["bob@example.com", "BOB@example.com", "bob@example.com"] {
        let registered = issuer.register(email, "bob's password 1").await;
        assert_eq!(registered.status, 201, "{registered:?}");
    }

    let mut database = issuer.sandbox().database().await;
    assert_eq!(database.account_event_count("registered").await, 1);
    assert_eq!(
        database.account_event_count("registration_conflict").await,
        2
    );
}
