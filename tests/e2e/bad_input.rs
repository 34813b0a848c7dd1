//! Malformed, hostile and unauthenticated requests: every one is a problem+json 4xx with the
//! stable code of 0002 ("Errors"), never a 500.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Issuer, Options, PASSWORD, assert_bearer_challenge, assert_client_problem, assert_field_error,
    assert_problem, jwt, unix_now,
};

/// The JSON endpoints that take a body without authentication.
const JSON_ENDPOINTS: [&str; 3] = ["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh"];

const REGISTER: &str = "/v1/auth/register";
const LOGIN: &str = "/v1/auth/login";

#[tokio::test]
async fn json_endpoints_malformed_json_return_malformed_json() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for path in JSON_ENDPOINTS {
        for body in ["{'email': 'a'}", "not json", "{", "{\"", "\u{1}"] {
            let response = issuer.post_raw(path, Some("application/json"), body).await;
            assert_problem(&response, 400, "malformed_json");
        }
    }
}

/// A body that stops being JSON after a prefix that already has a wrong shape (an unknown
/// member) is still not JSON: `malformed_json` (400), not `validation_failed` (0002 gives
/// `validation_failed` to "JSON of the wrong shape", and this is not JSON at all).
#[tokio::test]
async fn json_endpoints_syntax_error_after_wrong_shape_returns_malformed_json() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let valid = json!({"email": "a@example.com", "password": PASSWORD}).to_string();
    let bodies = [
        format!("{valid}}}"),
        format!("{valid} x"),
        r#"{"a":1}}"#.to_owned(),
        r#"{"a":1"#.to_owned(),
        r#"{"email":"a@example.com","a":[1,"#.to_owned(),
        r#"{"email":1,"#.to_owned(),
    ];

    for path in [REGISTER, LOGIN] {
        for body in &bodies {
            let response = issuer
                .post_raw(path, Some("application/json"), body.clone())
                .await;
            assert_eq!(response.status, 400, "{path} {body:?}: {response:?}");
            assert_problem(&response, 400, "malformed_json");
        }
    }
}

#[tokio::test]
async fn json_endpoints_empty_body_returns_malformed_json() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for path in JSON_ENDPOINTS {
        let response = issuer.post_raw(path, Some("application/json"), "").await;
        assert_problem(&response, 400, "malformed_json");
    }
}

#[tokio::test]
async fn json_endpoints_wrong_content_type_return_unsupported_media_type() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let body = json!({"email": "a@example.com", "password": PASSWORD}).to_string();

    for path in JSON_ENDPOINTS {
        for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
            let response = issuer
                .post_raw(path, Some(content_type), body.clone())
                .await;
            assert_problem(&response, 415, "unsupported_media_type");
        }
    }
}

#[tokio::test]
async fn json_endpoints_missing_content_type_return_unsupported_media_type() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let body = json!({"email": "a@example.com", "password": PASSWORD}).to_string();

    for path in JSON_ENDPOINTS {
        let response = issuer.post_raw(path, None, body.clone()).await;
        assert_problem(&response, 415, "unsupported_media_type");
    }
}

#[tokio::test]
async fn register_and_login_wrong_shape_return_validation_failed() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let bodies = [
        (
            "unknown field",
            json!({"email": "a@example.com", "password": PASSWORD, "admin": true}),
        ),
        ("missing password", json!({"email": "a@example.com"})),
        ("missing email", json!({"password": PASSWORD})),
        ("empty object", json!({})),
        (
            "password a number",
            json!({"email": "a@example.com", "password": 12345678}),
        ),
        (
            "email an array",
            json!({"email": ["a@example.com"], "password": PASSWORD}),
        ),
        ("email null", json!({"email": null, "password": PASSWORD})),
        ("not an object", json!(["a@example.com", PASSWORD])),
        ("a string", json!("a@example.com")),
    ];

    for path in [REGISTER, LOGIN] {
        for (what, body) in &bodies {
            let response = issuer.post_json(path, body).await;
            assert_eq!(response.status, 422, "{path} {what}: {response:?}");
            assert_problem(&response, 422, "validation_failed");
        }
    }
}

#[tokio::test]
async fn refresh_wrong_shape_returns_validation_failed() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for body in [
        json!({}),
        json!({"refresh_token": 1}),
        json!({"refresh_token": "x", "a": 1}),
    ] {
        let response = issuer.post_json("/v1/auth/refresh", &body).await;
        assert_problem(&response, 422, "validation_failed");
    }
}

#[tokio::test]
async fn register_short_password_returns_validation_failed_naming_password() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let response = issuer.register("short@example.com", "short1").await;

    assert_problem(&response, 422, "validation_failed");
    assert_field_error(&response, "password");
}

#[tokio::test]
async fn register_password_over_max_length_returns_validation_failed() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let response = issuer.register("long@example.com", &"p".repeat(300)).await;

    assert_problem(&response, 422, "validation_failed");
    assert_field_error(&response, "password");
}

/// A 1 MB password exceeds the 64 KiB body limit: 413, or 422 if the issuer reads it anyway.
/// Sent over a bare connection, since the issuer may answer before reading the body.
#[tokio::test]
async fn register_and_login_megabyte_password_refused_as_problem() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let huge = "p".repeat(1 << 20);

    for path in [REGISTER, LOGIN] {
        let body = json!({"email": "a@example.com", "password": huge}).to_string();
        let response = issuer
            .post_raw_early_answer(path, "application/json", body.into_bytes())
            .await;
        let code = assert_client_problem(&response);
        assert!(
            (response.status, code.as_str()) == (413, "payload_too_large")
                || (response.status, code.as_str()) == (422, "validation_failed"),
            "{path}: {response:?}"
        );
    }
}

#[tokio::test]
async fn register_invalid_email_returns_validation_failed_naming_email() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };

    for email in [
        "not-an-email",
        "@example.com",
        "alice@",
        "",
        "a b@example.com",
        "a@b@c.com",
    ] {
        let response = issuer.register(email, PASSWORD).await;
        assert_eq!(response.status, 422, "{email:?}: {response:?}");
        assert_problem(&response, 422, "validation_failed");
        assert_field_error(&response, "email");
    }
}

#[tokio::test]
async fn me_without_bearer_returns_unauthenticated_with_challenge() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    let response = issuer.get("/v1/auth/me").await;

    assert_problem(&response, 401, "unauthenticated");
    assert_bearer_challenge(&response);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        !challenge.contains("invalid_token"),
        "no token was presented: {response:?}"
    );
}

#[tokio::test]
async fn me_garbage_bearer_returns_invalid_token_with_challenge() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for token in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "prt_AAAA"] {
        let response = issuer.me(token).await;
        assert_problem(&response, 401, "invalid_token");
        assert_bearer_challenge(&response);
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{token}: {response:?}"
        );
    }
}

/// Asserts 401 `invalid_token` whose detail carries the core code (0002, "Errors").
fn assert_invalid_token(response: &crate::support::Response, core_code: &str) {
    assert_problem(response, 401, "invalid_token");
    let detail = response.str_field("detail");
    assert!(
        detail.contains(core_code),
        "detail should carry {core_code}: {response:?}"
    );
}

#[tokio::test]
async fn me_alg_none_token_returns_invalid_token() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let mut header = jwt::header(&alice.tokens.access_token);
    let claims = alice.tokens.claims();

    for alg in ["none", "None", "NONE"] {
        header["alg"] = json!(alg);
        let forged = jwt::unsigned(&header, &claims);
        assert_invalid_token(&issuer.me(&forged).await, "token_algorithm_unsupported");
    }
}

#[tokio::test]
async fn me_token_signed_with_another_key_returns_invalid_token() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let header = jwt::header(&alice.tokens.access_token);
    let claims = alice.tokens.claims();

    let forged = jwt::sign_hs256(&header, &claims, &rand::random::<[u8; 32]>());

    assert_invalid_token(&issuer.me(&forged).await, "token_signature_invalid");
}

#[tokio::test]
async fn me_token_with_unknown_kid_returns_invalid_token() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let mut header = jwt::header(&alice.tokens.access_token);
    header["kid"] = json!("no-such-key");

    let forged = jwt::sign_hs256(&header, &alice.tokens.claims(), &rand::random::<[u8; 32]>());

    assert_invalid_token(&issuer.me(&forged).await, "token_key_unknown");
}

/// With a configured HS256 key the suite can mint tokens itself and break one claim at a time.
#[tokio::test]
async fn me_tokens_with_bad_claims_signed_by_the_real_key_are_refused() {
    let secret = rand::random::<[u8; 32]>();
    let config = format!(
        "[[token.keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"{}\"\n",
        URL_SAFE_NO_PAD.encode(secret)
    );
    let Some(issuer) = Issuer::start_with(Options::new().config(&config)).await else {
        return;
    };
    let alice = issuer.signup().await;
    let header = jwt::header(&alice.tokens.access_token);
    let claims = alice.tokens.claims();
    assert_eq!(header["kid"], "k1", "the configured key signs");

    // Control: re-signing the genuine claims with the genuine key is accepted.
    let genuine = jwt::sign_hs256(&header, &claims, &secret);
    assert_eq!(
        issuer.me(&genuine).await.status,
        200,
        "the suite forges correctly"
    );

    let now = unix_now();
    let with = |name: &str, value: Value| {
        let mut changed = claims.clone();
        changed[name] = value;
        jwt::sign_hs256(&header, &changed, &secret)
    };
    let expired = {
        let mut changed = claims.clone();
        changed["iat"] = json!(now - 7200);
        changed["nbf"] = json!(now - 7200);
        changed["exp"] = json!(now - 3600);
        jwt::sign_hs256(&header, &changed, &secret)
    };
    assert_problem(&issuer.me(&expired).await, 401, "token_expired");
    let future = with("nbf", json!(now + 3600));
    assert_invalid_token(&issuer.me(&future).await, "token_not_yet_valid");
    let audience = with("aud", json!("someone-else"));
    assert_invalid_token(&issuer.me(&audience).await, "token_audience_invalid");
    let issuer_claim = with("iss", json!("https://evil.example"));
    assert_invalid_token(&issuer.me(&issuer_claim).await, "token_issuer_invalid");
    let no_exp = {
        let mut changed = claims.clone();
        changed.as_object_mut().expect("object").remove("exp");
        jwt::sign_hs256(&header, &changed, &secret)
    };
    assert_invalid_token(&issuer.me(&no_exp).await, "token_claim_invalid");
    let string_exp = with("exp", json!((now + 600).to_string()));
    assert_invalid_token(&issuer.me(&string_exp).await, "token_claim_invalid");
    let mut wrong_typ = header.clone();
    wrong_typ["typ"] = json!("JWT");
    let typ = jwt::sign_hs256(&wrong_typ, &claims, &secret);
    assert_invalid_token(&issuer.me(&typ).await, "token_type_invalid");
}

#[tokio::test]
async fn unknown_route_returns_not_found_problem() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    for path in ["/v1/nope", "/nope", "/v1/auth/login/extra"] {
        assert_problem(&issuer.get(path).await, 404, "not_found");
    }
}

#[tokio::test]
async fn wrong_method_returns_method_not_allowed_problem() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };

    assert_problem(&issuer.get(LOGIN).await, 405, "method_not_allowed");
    let delete = issuer
        .send(issuer.request(Method::DELETE, "/v1/auth/me"))
        .await;
    assert_problem(&delete, 405, "method_not_allowed");
    let post = issuer
        .send(issuer.request(Method::POST, "/.well-known/jwks.json"))
        .await;
    assert_problem(&post, 405, "method_not_allowed");
}

#[tokio::test]
async fn introspect_and_revoke_without_token_return_invalid_request() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let bearer = Some(alice.tokens.access_token.as_str());

    let introspect = issuer.post_form("/oauth/introspect", bearer, &[]).await;
    assert_problem(&introspect, 400, "invalid_request");
    let hint_only = [("token_type_hint", "access_token")];
    let introspect = issuer
        .post_form("/oauth/introspect", bearer, &hint_only)
        .await;
    assert_problem(&introspect, 400, "invalid_request");

    assert_problem(
        &issuer.post_form("/oauth/revoke", None, &[]).await,
        400,
        "invalid_request",
    );
    let revoke = issuer.post_form("/oauth/revoke", None, &hint_only).await;
    assert_problem(&revoke, 400, "invalid_request");
}

#[tokio::test]
async fn introspect_without_bearer_returns_unauthenticated() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;

    let response = issuer
        .post_form(
            "/oauth/introspect",
            None,
            &[("token", &alice.tokens.access_token)],
        )
        .await;

    assert_problem(&response, 401, "unauthenticated");
    assert_bearer_challenge(&response);
}

/// Hand-picked hostile bodies for the JSON endpoints.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        "null",
        "[]",
        "true",
        "1e999",
        "\"\\ud800\"",
        r#"{"email":"a@example.com","email":"b@example.com","password":"x"}"#,
        r#"{"email":"a@example.com","password":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000"}"#,
        r#"{"email":"\u0000@example.com","password":"correct horse battery"}"#,
        r#"{"email":"a@example.com","password":"correct horse battery","name":{"x":[1,2]}}"#,
        r#"{"email":"a@example.com","password":18446744073709551616}"#,
        "\u{feff}{\"email\":\"a@example.com\",\"password\":\"correct horse battery\"}",
    ]
    .iter()
    .map(|body| body.as_bytes().to_vec())
    .collect();
    bodies.push(vec![0xff, 0xfe, 0x7b, 0x7d]);
    bodies.push(b"{\"email\":\"\xc3\x28@example.com\",\"password\":\"xxxxxxxxxx\"}".to_vec());
    bodies.push("[".repeat(10_000).into_bytes());
    bodies.push(format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes());
    let long_email = format!("{}@example.com", "a".repeat(10_000));
    bodies.push(
        json!({"email": long_email, "password": PASSWORD})
            .to_string()
            .into_bytes(),
    );
    bodies
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[a-z]{1,8}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(member_name(), inner, 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("email".to_owned()),
        Just("password".to_owned()),
        Just("name".to_owned()),
        Just("refresh_token".to_owned()),
        "[a-z_]{1,10}",
    ]
}

/// Random bodies: raw bytes, arbitrary JSON, and objects with the expected member names.
fn random_body() -> impl Strategy<Value = Vec<u8>> {
    let object = proptest::collection::btree_map(member_name(), arbitrary_json(), 0..4)
        .prop_map(|members| Value::Object(members.into_iter().collect()));
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        ".{0,200}".prop_map(String::into_bytes),
        arbitrary_json().prop_map(|value| value.to_string().into_bytes()),
        object.prop_map(|value| value.to_string().into_bytes()),
    ]
}

/// Whatever the body, the answer is below 500, and every error is a problem document.
#[test]
fn register_and_login_random_bodies_never_fail_with_5xx() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(issuer) = runtime.block_on(Issuer::start()) else {
        return;
    };
    let check = |path: &str, body: &[u8]| -> Result<(), TestCaseError> {
        let response =
            runtime.block_on(issuer.post_raw(path, Some("application/json"), body.to_vec()));
        let shown = String::from_utf8_lossy(body);
        prop_assert!(response.status < 500, "{path} {shown:?}: {response:?}");
        if response.status >= 400 {
            prop_assert!(response.is_problem_json(), "{path} {shown:?}: {response:?}");
            prop_assert!(
                response.body["code"].is_string(),
                "{path} {shown:?}: {response:?}"
            );
        }
        Ok(())
    };

    for body in hostile_bodies() {
        for path in JSON_ENDPOINTS {
            check(path, &body).unwrap_or_else(|error| panic!("{error}"));
        }
    }
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    for path in [REGISTER, LOGIN] {
        let outcome = runner.run(&random_body(), |body| check(path, &body));
        outcome.unwrap_or_else(|error| panic!("{path}: {error}"));
    }
}

/// 0002: "401 responses carry `WWW-Authenticate: Bearer` (with `error="invalid_token"` when a
/// token was presented)" — every 401, whatever its code.
#[tokio::test]
async fn every_401_carries_a_bearer_challenge() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let bob = issuer.signup().await;
    assert_eq!(
        issuer.logout(&bob.tokens.access_token, None).await.status,
        204
    );

    let presented = [
        ("garbage bearer", issuer.me("garbage").await),
        ("revoked bearer", issuer.me(&bob.tokens.access_token).await),
    ];
    for (what, response) in &presented {
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_bearer_challenge(response);
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{what}: {response:?}"
        );
    }
    let others = [
        ("no bearer", issuer.get("/v1/auth/me").await),
        (
            "wrong password",
            issuer.login_raw(&alice.email, "wrong password!").await,
        ),
        ("unknown refresh token", issuer.refresh("prt_unknown").await),
        (
            "logout without bearer",
            issuer.post_json("/v1/auth/logout", &json!({})).await,
        ),
    ];
    for (what, response) in &others {
        assert_eq!(response.status, 401, "{what}: {response:?}");
        assert_bearer_challenge(response);
    }
}

/// `password.min_length` 8 and `max_length` 256 count characters, not bytes.
#[tokio::test]
async fn register_password_length_bounds_count_characters() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };

    let cases = [
        ("p".repeat(7), 422),
        ("p".repeat(8), 201),
        ("p".repeat(256), 201),
        ("p".repeat(257), 422),
        ("é".repeat(256), 201),
        ("é".repeat(7), 422),
    ];
    for (index, (password, status)) in cases.iter().enumerate() {
        let email = format!("bounds-{index}@example.com");
        let response = issuer.register(&email, password).await;
        let length = password.chars().count();
        assert_eq!(
            response.status, *status,
            "{length} characters: {response:?}"
        );
        if *status == 422 {
            assert_problem(&response, 422, "validation_failed");
            assert_field_error(&response, "password");
        } else {
            issuer.login(&email, password).await;
        }
    }
}

/// A `Content-Length` over the body limit is refused as soon as the head arrives: waiting for
/// a body that will be refused anyway would let a client hold the connection until the
/// request timeout (408) by announcing a huge body and sending two bytes.
#[tokio::test]
async fn declared_length_over_the_body_limit_is_refused_before_the_body() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    for path in [LOGIN, "/oauth/introspect"] {
        let response = issuer
            .post_declaring_length(path, "application/json", 999_999_999, b"{}".to_vec())
            .await;
        assert_problem(&response, 413, "payload_too_large");
    }
}

/// The form endpoints refuse another media type the way the JSON endpoints do: 415.
#[tokio::test]
async fn form_endpoints_wrong_content_type_return_unsupported_media_type() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let body = json!({"token": alice.tokens.access_token}).to_string();
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        for content_type in [Some("application/json"), Some("text/plain"), None] {
            let request = issuer
                .request(Method::POST, path)
                .bearer_auth(&alice.tokens.access_token)
                .body(body.clone());
            let request = match content_type {
                Some(value) => request.header(reqwest::header::CONTENT_TYPE, value),
                None => request,
            };
            let response = issuer.send(request).await;
            assert_problem(&response, 415, "unsupported_media_type");
        }
    }
    let me = issuer.me(&alice.tokens.access_token).await;
    assert_eq!(
        me.status, 200,
        "a refused revocation revokes nothing: {me:?}"
    );
}

/// Two `X-Tenant-ID` headers are refused: otherwise the tenant would be whichever one the
/// issuer, a proxy or an edge happens to read first.
#[tokio::test]
async fn repeated_tenant_header_returns_invalid_request() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let request = issuer
        .request(Method::POST, REGISTER)
        .header("X-Tenant-ID", "default")
        .header("X-Tenant-ID", "default")
        .json(&json!({"email": "twice@example.com", "password": PASSWORD}));
    assert_problem(&issuer.send(request).await, 400, "invalid_request");
}
