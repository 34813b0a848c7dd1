//! TOTP MFA with backup codes (design note 0005, "TOTP MFA"; issue #6), with codes from pyotp
//! (`support::otp`), never from the issuer's own TOTP code: enrolment, confirmation, the MFA
//! step of login, replay and concurrency, backup codes, regeneration, removal, the lockout,
//! a tenant that requires MFA, and the secret sealed at rest.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::smtp::{SinkTls, SmtpSink};
use crate::support::{
    Account, DEFAULT_TENANT_ID, Issuer, Options, PASSWORD, Response, Tokens, assert_field_error,
    assert_problem, otp, send,
};

/// A signed-up user with confirmed TOTP: the pyotp code of step 0 confirmed it, so step 1 is
/// the next code it accepts.
struct Enrolled {
    account: Account,
    secret: String,
    /// The code that confirmed the enrolment (spent).
    confirmed_with: String,
    backup_codes: Vec<String>,
}

/// A POST with a JSON body and, when given, a bearer token.
async fn post(issuer: &Issuer, path: &str, bearer: Option<&str>, body: &Value) -> Response {
    let mut request = issuer.request(Method::POST, path).json(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    issuer.send(request).await
}

async fn enroll(issuer: &Issuer, bearer: &str) -> Response {
    post(issuer, "/v1/auth/mfa/totp/enroll", Some(bearer), &json!({})).await
}

async fn confirm(issuer: &Issuer, bearer: &str, code: &str) -> Response {
    post(
        issuer,
        "/v1/auth/mfa/totp/confirm",
        Some(bearer),
        &json!({"code": code}),
    )
    .await
}

async fn verify(issuer: &Issuer, mfa_token: &str, code: &str) -> Response {
    post(
        issuer,
        "/v1/auth/mfa/verify",
        None,
        &json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

async fn disable(issuer: &Issuer, bearer: &str, body: &Value) -> Response {
    let request = issuer
        .request(Method::DELETE, "/v1/auth/mfa/totp")
        .bearer_auth(bearer)
        .json(body);
    issuer.send(request).await
}

/// The backup codes of an answer: ten distinct `xxxx-xxxx-xxxx-xxxx` codes.
fn backup_codes(response: &Response) -> Vec<String> {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let codes: Vec<String> = response.body["backup_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no backup_codes: {response:?}"))
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{response:?}");
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10, "{codes:?}");
    for code in &codes {
        let groups: Vec<&str> = code.split('-').collect();
        assert!(
            groups.len() == 4
                && groups.iter().all(|group| group.len() == 4
                    && group
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))),
            "{code:?}"
        );
    }
    codes
}

/// Signs up, enrolls and confirms with pyotp's code of the current step.
async fn enrolled(issuer: &Issuer) -> Enrolled {
    let account = issuer.signup().await;
    let enrollment = enroll(issuer, &account.tokens.access_token).await;
    assert_eq!(enrollment.status, 200, "{enrollment:?}");
    let secret = enrollment.str_field("secret").to_owned();
    let confirmed_with = otp::code(&secret, 0);
    let confirmed = confirm(issuer, &account.tokens.access_token, &confirmed_with).await;
    let backup_codes = backup_codes(&confirmed);
    Enrolled {
        account,
        secret,
        confirmed_with,
        backup_codes,
    }
}

/// The password step for a user with MFA: 200 `{mfa_required, mfa_token}` and no token.
async fn mfa_token(issuer: &Issuer, email: &str) -> String {
    let response = issuer.login_raw(email, PASSWORD).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body["mfa_required"], true, "{response:?}");
    assert!(response.body.get("access_token").is_none(), "{response:?}");
    assert!(response.body.get("refresh_token").is_none(), "{response:?}");
    assert!(
        response.body.get("mfa_enrollment_required").is_none(),
        "{response:?}"
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let token = response.str_field("mfa_token");
    assert!(token.starts_with("pmt_") && token.len() == 47, "{token:?}");
    token.to_owned()
}

/// A token response whose access token says password and one-time password.
fn assert_pwd_otp(response: Response) -> Tokens {
    let tokens = Tokens::from_response(response);
    assert_eq!(tokens.claims()["amr"], json!(["pwd", "otp"]), "{tokens:?}");
    tokens
}

async fn mfa_status(issuer: &Issuer, bearer: &str) -> Value {
    let me = issuer.me(bearer).await;
    assert_eq!(me.status, 200, "{me:?}");
    me.body["mfa"].clone()
}

/// The whole flow with a real authenticator's codes: enrol (the otpauth URI read by pyotp
/// gives the same secret), confirm, then a login asks for the code and the token says
/// `pwd` + `otp`; the same code, an enrolment while enrolled and a used `mfa_token` are refused.
#[tokio::test]
async fn mfa_enrol_confirm_and_log_in_with_pyotp_codes() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let account = issuer.signup().await;
    let bearer = account.tokens.access_token.clone();
    assert_eq!(account.tokens.claims()["amr"], json!(["pwd"]));
    assert_eq!(
        mfa_status(&issuer, &bearer).await,
        json!({"totp_enabled": false, "backup_codes_left": 0})
    );

    let enrollment = enroll(&issuer, &bearer).await;
    assert_eq!(enrollment.status, 200, "{enrollment:?}");
    assert_eq!(enrollment.header("cache-control"), Some("no-store"));
    let secret = enrollment.str_field("secret").to_owned();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    let uri = enrollment.str_field("otpauth_uri");
    let (parsed_secret, issuer_name, name) = otp::parse_uri(uri);
    assert_eq!(
        (parsed_secret.as_str(), issuer_name.as_str(), name.as_str()),
        (secret.as_str(), "Portcullis", account.email.as_str()),
        "{uri}"
    );
    let svg = enrollment.str_field("qr_svg");
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    // Not enabled until confirmed; a second enrolment replaces the first.
    assert_eq!(mfa_status(&issuer, &bearer).await["totp_enabled"], false);
    let again = enroll(&issuer, &bearer).await;
    assert_eq!(again.status, 200, "{again:?}");
    let secret = again.str_field("secret").to_owned();

    let wrong = confirm(&issuer, &bearer, &otp::wrong_code(&secret)).await;
    assert_problem(&wrong, 401, "invalid_mfa_code");
    backup_codes(&confirm(&issuer, &bearer, &otp::code(&secret, 0)).await);
    assert_eq!(
        mfa_status(&issuer, &bearer).await,
        json!({"totp_enabled": true, "backup_codes_left": 10})
    );
    assert_problem(&enroll(&issuer, &bearer).await, 409, "mfa_already_enabled");

    let token = mfa_token(&issuer, &account.email).await;
    let code = otp::code(&secret, 1);
    let tokens = assert_pwd_otp(verify(&issuer, &token, &code).await);
    assert_eq!(issuer.me(&tokens.access_token).await.status, 200);
    // The refreshed token keeps the session's amr.
    let refreshed = issuer.refresh_ok(&tokens.refresh_token).await;
    assert_eq!(refreshed.claims()["amr"], json!(["pwd", "otp"]));

    assert_problem(
        &verify(&issuer, &token, &code).await,
        401,
        "invalid_mfa_token",
    );
    let next = mfa_token(&issuer, &account.email).await;
    assert_problem(
        &verify(&issuer, &next, &code).await,
        401,
        "invalid_mfa_code",
    );
}

/// Eight logins present the same fresh code at once: exactly one gets tokens, and the
/// others' `mfa_token`s, not spent by the failure, still take a backup code.
#[tokio::test]
async fn mfa_one_code_presented_concurrently_is_accepted_once() {
    let options = Options::new().rate_limits_raised().lockout_off();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(mfa_token(&issuer, &user.account.email).await);
    }
    let code = otp::code(&user.secret, 1);
    let mut attempts = JoinSet::new();
    for token in tokens.clone() {
        let request = issuer
            .request(Method::POST, "/v1/auth/mfa/verify")
            .json(&json!({"mfa_token": token, "code": code}));
        attempts.spawn(async move { (token, send(request).await) });
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    while let Some(joined) = attempts.join_next().await {
        let (token, response) = joined.unwrap();
        if response.status == 200 {
            winners.push(response);
        } else {
            assert_problem(&response, 401, "invalid_mfa_code");
            losers.push(token);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one verify wins");
    assert_pwd_otp(winners.remove(0));
    assert_eq!(losers.len(), 7);
    let backup = &user.backup_codes[0];
    assert_pwd_otp(verify(&issuer, &losers[0], backup).await);
}

/// A backup code works once, as shown or typed loosely; ten logins racing with one code get
/// one session; the count in `/me` goes down.
#[tokio::test]
async fn mfa_backup_codes_are_single_use_also_concurrently() {
    let options = Options::new().rate_limits_raised().lockout_off();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let email = &user.account.email;
    let first = &user.backup_codes[0];
    let token = mfa_token(&issuer, email).await;
    assert_pwd_otp(verify(&issuer, &token, first).await);
    let token = mfa_token(&issuer, email).await;
    assert_problem(
        &verify(&issuer, &token, first).await,
        401,
        "invalid_mfa_code",
    );
    let loose = user.backup_codes[1].replace('-', " ").to_ascii_uppercase();
    assert_pwd_otp(verify(&issuer, &token, &loose).await);

    let raced = user.backup_codes[2].clone();
    let mut attempts = JoinSet::new();
    for _ in 0..10 {
        let token = mfa_token(&issuer, email).await;
        let request = issuer
            .request(Method::POST, "/v1/auth/mfa/verify")
            .json(&json!({"mfa_token": token, "code": raced}));
        attempts.spawn(send(request));
    }
    let mut won = 0;
    while let Some(joined) = attempts.join_next().await {
        let response = joined.unwrap();
        if response.status == 200 {
            won += 1;
        } else {
            assert_problem(&response, 401, "invalid_mfa_code");
        }
    }
    assert_eq!(won, 1, "a backup code is spent once");
    let bearer = &user.account.tokens.access_token;
    assert_eq!(mfa_status(&issuer, bearer).await["backup_codes_left"], 7);
}

/// Regeneration needs a current code, hands out ten new codes and retires the old ones.
#[tokio::test]
async fn mfa_regenerated_backup_codes_replace_the_old_set() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let bearer = &user.account.tokens.access_token;
    let path = "/v1/auth/mfa/backup-codes/regenerate";
    let wrong = otp::wrong_code(&user.secret);
    let refused = post(&issuer, path, Some(bearer), &json!({"code": wrong})).await;
    assert_problem(&refused, 401, "invalid_mfa_code");
    let code = otp::code(&user.secret, 1);
    let fresh = backup_codes(&post(&issuer, path, Some(bearer), &json!({"code": code})).await);
    assert!(fresh.iter().all(|code| !user.backup_codes.contains(code)));

    let token = mfa_token(&issuer, &user.account.email).await;
    let old = &user.backup_codes[0];
    assert_problem(&verify(&issuer, &token, old).await, 401, "invalid_mfa_code");
    assert_pwd_otp(verify(&issuer, &token, &fresh[0]).await);
}

/// Five regenerations at once, each with its own backup code, leave exactly one set of ten:
/// each replaces what the one before it stored. A request whose code a racing regeneration
/// retired first is refused like any spent code.
#[tokio::test]
async fn mfa_concurrent_regenerations_leave_one_set() {
    let options = Options::new().rate_limits_raised().lockout_off();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let bearer = &user.account.tokens.access_token;
    let mut attempts = JoinSet::new();
    for code in &user.backup_codes[..5] {
        let request = issuer
            .request(Method::POST, "/v1/auth/mfa/backup-codes/regenerate")
            .bearer_auth(bearer)
            .json(&json!({"code": code}));
        attempts.spawn(send(request));
    }
    let mut regenerated = 0;
    while let Some(joined) = attempts.join_next().await {
        let response = joined.unwrap();
        if response.status == 200 {
            backup_codes(&response);
            regenerated += 1;
        } else {
            assert_problem(&response, 401, "invalid_mfa_code");
        }
    }
    assert!(regenerated >= 1);
    assert_eq!(mfa_status(&issuer, bearer).await["backup_codes_left"], 10);
}

/// Removal needs a current code or the password; afterwards login gives tokens at once.
#[tokio::test]
async fn mfa_removal_needs_a_current_code_or_the_password() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let bearer = &user.account.tokens.access_token;
    let wrong = otp::wrong_code(&user.secret);
    assert_problem(
        &disable(&issuer, bearer, &json!({"code": wrong})).await,
        401,
        "invalid_mfa_code",
    );
    assert_problem(
        &disable(&issuer, bearer, &json!({"password": "not the password"})).await,
        401,
        "invalid_credentials",
    );
    let code = otp::code(&user.secret, 1);
    let both = json!({"code": code, "password": PASSWORD});
    assert_problem(
        &disable(&issuer, bearer, &both).await,
        400,
        "invalid_request",
    );
    let removed = disable(&issuer, bearer, &json!({"code": code})).await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert_eq!(
        mfa_status(&issuer, bearer).await,
        json!({"totp_enabled": false, "backup_codes_left": 0})
    );
    let tokens = issuer.login(&user.account.email, PASSWORD).await;
    assert_eq!(tokens.claims()["amr"], json!(["pwd"]));
    assert_problem(
        &disable(&issuer, bearer, &json!({"password": PASSWORD})).await,
        409,
        "mfa_not_enrolled",
    );

    let other = enrolled(&issuer).await;
    let bearer = &other.account.tokens.access_token;
    let removed = disable(&issuer, bearer, &json!({"password": PASSWORD})).await;
    assert_eq!(removed.status, 204, "{removed:?}");
}

/// Wrong codes count like wrong passwords: the third locks the account, and then the right
/// code (and the right password) is refused before it is checked.
#[tokio::test]
async fn mfa_wrong_codes_hit_the_lockout() {
    let options = Options::new()
        .rate_limits_raised()
        .config("[lockout]\nmax_failures = 3\nlock_secs = 600\n");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    // The password step counts until the second factor succeeds (or the right password
    // would buy unlimited guesses at the code): with it, two wrong codes reach the lock.
    let token = mfa_token(&issuer, &user.account.email).await;
    let wrong = otp::wrong_code(&user.secret);
    for _ in 0..2 {
        assert_problem(
            &verify(&issuer, &token, &wrong).await,
            401,
            "invalid_mfa_code",
        );
    }
    let right = otp::code(&user.secret, 1);
    let locked = verify(&issuer, &token, &right).await;
    assert_problem(&locked, 423, "account_locked");
    assert!(locked.header("retry-after").is_some(), "{locked:?}");
    let backup = verify(&issuer, &token, &user.backup_codes[0]).await;
    assert_problem(&backup, 423, "account_locked");
    let password = issuer.login_raw(&user.account.email, PASSWORD).await;
    assert_problem(&password, 423, "account_locked");
}

/// A tenant that requires MFA: login answers with an enrolment token, which enroll and
/// confirm take instead of a bearer; confirming completes the login; later logins ask for
/// the code.
#[tokio::test]
async fn mfa_required_by_the_tenant_enrols_during_login() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    issuer
        .sandbox()
        .database()
        .await
        .require_mfa(DEFAULT_TENANT_ID)
        .await;
    let email = crate::support::fresh_email("required");
    issuer.register_ok(&email, PASSWORD).await;
    let login = issuer.login_raw(&email, PASSWORD).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.body["mfa_required"], true, "{login:?}");
    assert_eq!(login.body["mfa_enrollment_required"], true, "{login:?}");
    assert!(login.body.get("access_token").is_none(), "{login:?}");
    let token = login.str_field("mfa_token").to_owned();

    assert_problem(
        &verify(&issuer, &token, "123456").await,
        401,
        "mfa_required",
    );
    let anonymous = post(&issuer, "/v1/auth/mfa/totp/enroll", None, &json!({})).await;
    assert_problem(&anonymous, 401, "unauthenticated");
    let enrollment = post(
        &issuer,
        "/v1/auth/mfa/totp/enroll",
        None,
        &json!({"mfa_token": token}),
    )
    .await;
    assert_eq!(enrollment.status, 200, "{enrollment:?}");
    let secret = enrollment.str_field("secret").to_owned();
    let body = json!({"mfa_token": token, "code": otp::code(&secret, 0)});
    let confirmed = post(&issuer, "/v1/auth/mfa/totp/confirm", None, &body).await;
    backup_codes(&confirmed);
    let tokens = assert_pwd_otp(confirmed);
    assert_eq!(issuer.me(&tokens.access_token).await.status, 200);
    let again = post(&issuer, "/v1/auth/mfa/totp/confirm", None, &body).await;
    assert_problem(&again, 401, "invalid_mfa_token");

    let next = mfa_token(&issuer, &email).await;
    assert_pwd_otp(verify(&issuer, &next, &otp::code(&secret, 1)).await);
}

/// An `mfa_token` past its lifetime, or one never issued, is refused.
#[tokio::test]
async fn mfa_expired_or_unknown_tokens_are_refused() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let token = mfa_token(&issuer, &user.account.email).await;
    issuer
        .sandbox()
        .database()
        .await
        .expire_mfa_challenges()
        .await;
    let code = otp::code(&user.secret, 1);
    assert_problem(
        &verify(&issuer, &token, &code).await,
        401,
        "invalid_mfa_token",
    );
    let unknown = format!("pmt_{}", "A".repeat(43));
    assert_problem(
        &verify(&issuer, &unknown, &code).await,
        401,
        "invalid_mfa_token",
    );
    assert_problem(
        &verify(&issuer, "garbage", &code).await,
        401,
        "invalid_mfa_token",
    );
}

/// The stored secret is sealed: neither its base32 form nor its raw bytes are in the row.
#[tokio::test]
async fn mfa_secret_is_encrypted_at_rest() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let raw = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &user.secret)
        .expect("the secret is base32");
    assert_eq!(raw.len(), 20);
    let rows = issuer
        .sandbox()
        .database()
        .await
        .stored_totp_secrets()
        .await;
    assert_eq!(rows.len(), 1);
    let (nonce, sealed) = &rows[0];
    assert_eq!(nonce.len(), 12);
    assert_eq!(sealed.len(), raw.len() + 16, "ciphertext and tag");
    for stored in [nonce, sealed] {
        let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(&raw), "raw secret stored");
        assert!(!contains(&raw[..8]), "part of the raw secret stored");
        assert!(!contains(user.secret.as_bytes()), "base32 secret stored");
        assert!(!contains(user.secret.to_ascii_lowercase().as_bytes()));
    }
}

/// Bad input to the MFA routes: problem documents with stable codes, never a 500.
#[tokio::test]
async fn mfa_bad_inputs_get_problem_documents() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let token = mfa_token(&issuer, &user.account.email).await;
    for bad in ["12a456", "1234567", "12345", "", "１２３４５６"] {
        let response = verify(&issuer, &token, bad).await;
        assert_problem(&response, 422, "validation_failed");
        assert_field_error(&response, "code");
    }
    let path = "/v1/auth/mfa/verify";
    let cases = [
        (json!({"code": "123456"}), "mfa_token"),
        (json!({"mfa_token": token}), "code"),
        (json!({"mfa_token": token, "code": 123_456}), "code"),
        (
            json!({"mfa_token": token, "code": "123456", "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let response = post(&issuer, path, None, &body).await;
        assert_problem(&response, 422, "validation_failed");
        assert_field_error(&response, field);
    }
    let broken = issuer
        .post_raw(path, Some("application/json"), "{\"mfa_token\":")
        .await;
    assert_problem(&broken, 400, "malformed_json");
    let huge = json!({"mfa_token": token, "code": "1".repeat(1 << 20)}).to_string();
    let response = issuer
        .post_raw_early_answer(path, "application/json", huge.into_bytes())
        .await;
    assert_problem(&response, 413, "payload_too_large");

    let bearer = &user.account.tokens.access_token;
    let seven = confirm(&issuer, bearer, "1234567").await;
    assert_problem(&seven, 422, "validation_failed");
    assert_problem(
        &disable(&issuer, bearer, &json!({})).await,
        400,
        "invalid_request",
    );
    let garbage = enroll(&issuer, "not-a-token").await;
    assert_problem(&garbage, 401, "invalid_token");
    // The failures above spent nothing: the token still completes the login.
    assert_pwd_otp(verify(&issuer, &token, &otp::code(&user.secret, 1)).await);
}

/// The default budget of `mfa/verify` per account (5, burst 5) stops a sixth guess with 429
/// and `Retry-After`, before the code is looked at.
#[tokio::test]
async fn mfa_verify_is_rate_limited_per_account() {
    let Some(issuer) = Issuer::start_with(Options::new().lockout_off()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let token = mfa_token(&issuer, &user.account.email).await;
    let wrong = otp::wrong_code(&user.secret);
    for _ in 0..5 {
        assert_problem(
            &verify(&issuer, &token, &wrong).await,
            401,
            "invalid_mfa_code",
        );
    }
    let limited = verify(&issuer, &token, &otp::code(&user.secret, 1)).await;
    assert_problem(&limited, 429, "rate_limited");
    assert!(limited.header("retry-after").is_some(), "{limited:?}");
}

/// Every MFA event reaches the audit log with its outcome and method, and no code.
#[tokio::test]
async fn mfa_events_are_audited_without_codes() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let email = &user.account.email;
    let mut database = issuer.sandbox().database().await;
    database.grant_role(&user.account.user_id, "admin").await;
    drop(database);
    let token = mfa_token(&issuer, email).await;
    let wrong = otp::wrong_code(&user.secret);
    assert_problem(
        &verify(&issuer, &token, &wrong).await,
        401,
        "invalid_mfa_code",
    );
    let admin = assert_pwd_otp(verify(&issuer, &token, &user.backup_codes[0]).await);
    let bearer = admin.access_token.as_str();
    let path = "/v1/auth/mfa/backup-codes/regenerate";
    let code = otp::code(&user.secret, 1);
    let regenerated = post(&issuer, path, Some(bearer), &json!({"code": code})).await;
    backup_codes(&regenerated);
    let removed = disable(&issuer, bearer, &json!({"password": PASSWORD})).await;
    assert_eq!(removed.status, 204, "{removed:?}");

    let query = format!(
        "/v1/audit-events?user_id={}&limit=100",
        user.account.user_id
    );
    let listed = issuer.get_with_bearer(&query, bearer).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let events: Vec<(String, String, String)> = listed.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|event| event["type"] != "login")
        .map(|event| {
            (
                event["type"].as_str().unwrap().to_owned(),
                event["outcome"].as_str().unwrap().to_owned(),
                event["detail"]["method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("register", "success", ""),
        ("mfa_enrolled", "success", "totp"),
        ("mfa_verify", "failure", "totp"),
        ("backup_code_used", "success", "backup_code"),
        ("mfa_verify", "success", "backup_code"),
        ("backup_codes_regenerated", "success", "totp"),
        ("mfa_disabled", "success", "password"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(events, expected, "{listed:?}");
    let text = listed.text;
    for secret in [&user.secret, &user.backup_codes[0], &wrong, &code] {
        assert!(
            !text.contains(secret.as_str()),
            "{secret} in the audit log: {text}"
        );
    }
}

/// Random bodies for the MFA routes: raw bytes, and objects made of their member names with
/// values of every JSON type (long strings, digits, near-codes).
fn random_mfa_body(token: String) -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "[0-9]{0,9}".prop_map(Value::String),
        "[a-z2-7 -]{0,24}".prop_map(Value::String),
        Just(Value::String(token)),
        proptest::collection::vec("[0-9]{6}", 0..3)
            .prop_map(|items| Value::Array(items.into_iter().map(Value::String).collect())),
    ];
    let name = prop_oneof![
        Just("mfa_token".to_owned()),
        Just("code".to_owned()),
        Just("password".to_owned()),
        "[a-z_]{1,10}",
    ];
    let object = proptest::collection::btree_map(name, value, 0..4)
        .prop_map(|members| Value::Object(members.into_iter().collect()).to_string());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..128),
        object.prop_map(String::into_bytes),
    ]
}

/// Whatever the body, every MFA route answers below 500 with a problem document on error.
#[test]
fn mfa_routes_random_bodies_never_fail_with_5xx() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let options = Options::new().rate_limits_raised().lockout_off();
    let Some(issuer) = runtime.block_on(Issuer::start_with(options)) else {
        return;
    };
    let user = runtime.block_on(enrolled(&issuer));
    let token = runtime.block_on(mfa_token(&issuer, &user.account.email));
    let bearer = user.account.tokens.access_token.clone();
    let routes = [
        (Method::POST, "/v1/auth/mfa/verify", false),
        (Method::POST, "/v1/auth/mfa/totp/enroll", true),
        (Method::POST, "/v1/auth/mfa/totp/confirm", true),
        (Method::POST, "/v1/auth/mfa/totp/confirm", false),
        (Method::POST, "/v1/auth/mfa/backup-codes/regenerate", true),
        (Method::DELETE, "/v1/auth/mfa/totp", true),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    for (method, path, authenticated) in routes {
        let check = |body: Vec<u8>| -> Result<(), TestCaseError> {
            let mut request = issuer
                .request(method.clone(), path)
                .header("content-type", "application/json")
                .body(body.clone());
            if authenticated {
                request = request.bearer_auth(&bearer);
            }
            let response = runtime.block_on(issuer.send(request));
            let shown = String::from_utf8_lossy(&body);
            prop_assert!(response.status < 500, "{path} {shown:?}: {response:?}");
            if response.status >= 400 {
                prop_assert!(response.is_problem_json(), "{path} {shown:?}: {response:?}");
                prop_assert!(response.body["code"].is_string(), "{path}: {response:?}");
            }
            Ok(())
        };
        let outcome = runner.run(&random_mfa_body(token.clone()), check);
        outcome.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    }
}

/// The sealed secret opens with the same master key after a restart (embedded: the data
/// directory's key; PostgreSQL: `PORTCULLIS_MASTER_KEY`), and the accepted step is durable.
#[tokio::test]
async fn mfa_survives_a_restart() {
    let Some(first) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&first).await;
    let sandbox = first.shared_sandbox();
    let status = first.stop().await;
    assert!(status.success(), "{status}");
    let second = Issuer::start_in(&sandbox, Options::new().rate_limits_raised()).await;
    let token = mfa_token(&second, &user.account.email).await;
    let spent = &user.confirmed_with;
    assert_problem(
        &verify(&second, &token, spent).await,
        401,
        "invalid_mfa_code",
    );
    assert_pwd_otp(verify(&second, &token, &otp::code(&user.secret, 1)).await);
}

/// Five confirmations of one enrolment at once: one hands out backup codes, the others learn
/// that TOTP is already enabled; exactly one set of codes is stored.
#[tokio::test]
async fn mfa_concurrent_confirmations_confirm_once() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let account = issuer.signup().await;
    let bearer = account.tokens.access_token.clone();
    let enrollment = enroll(&issuer, &bearer).await;
    let secret = enrollment.str_field("secret").to_owned();
    let code = otp::code(&secret, 0);
    let mut attempts = JoinSet::new();
    for _ in 0..5 {
        let request = issuer
            .request(Method::POST, "/v1/auth/mfa/totp/confirm")
            .bearer_auth(&bearer)
            .json(&json!({"code": code}));
        attempts.spawn(send(request));
    }
    let mut confirmed = 0;
    while let Some(joined) = attempts.join_next().await {
        let response = joined.unwrap();
        match response.status {
            200 => {
                backup_codes(&response);
                confirmed += 1;
            }
            // Each check is counted from its start, so side-by-side attempts past the third
            // wait out the first delay.
            423 => assert_problem(&response, 423, "account_locked"),
            _ => assert_problem(&response, 409, "mfa_already_enabled"),
        }
    }
    assert_eq!(confirmed, 1);
    assert_eq!(
        mfa_status(&issuer, &bearer).await,
        json!({"totp_enabled": true, "backup_codes_left": 10})
    );
}

/// The alerts around the second factor reach the user's mailbox: turning TOTP on and off, a
/// login completed with a code (and none for a password step that stops at the code), and a
/// lock caused by wrong codes.
#[tokio::test]
async fn mfa_changes_completed_logins_and_code_locks_are_mailed() {
    const SIGN_IN: &str = "New sign-in to your account";
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let options = Options::new()
        .rate_limits_raised()
        .smtp(&sink)
        .config("[lockout]\nmax_failures = 3\nlock_secs = 600\n");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let email = &user.account.email;
    sink.first_to(email, "Two-step verification is on").await;
    sink.first_to(email, SIGN_IN).await;

    let token = mfa_token(&issuer, email).await;
    assert_pwd_otp(verify(&issuer, &token, &otp::code(&user.secret, 1)).await);
    sink.nth_to(email, SIGN_IN, 2).await;
    // A password step that stops at the code signs nobody in.
    mfa_token(&issuer, email).await;
    let bearer = &user.account.tokens.access_token;
    let removed = disable(&issuer, bearer, &json!({"password": PASSWORD})).await;
    assert_eq!(removed.status, 204, "{removed:?}");
    sink.first_to(email, "Two-step verification is off").await;
    let sign_ins = sink
        .messages()
        .await
        .into_iter()
        .filter(|mail| mail.is_to(email) && mail.subject == SIGN_IN)
        .count();
    assert_eq!(sign_ins, 2, "{:#?}", sink.messages().await);

    let other = enrolled(&issuer).await;
    // The password step is the first of the three counted attempts.
    let token = mfa_token(&issuer, &other.account.email).await;
    let wrong = otp::wrong_code(&other.secret);
    for _ in 0..2 {
        let refused = verify(&issuer, &token, &wrong).await;
        assert_problem(&refused, 401, "invalid_mfa_code");
    }
    let locked = sink
        .first_to(&other.account.email, "Your account is locked")
        .await;
    assert!(!locked.text.contains(&wrong), "{locked:?}");
}

/// Authenticator apps show a code as `123 456`; typed or pasted that way (with a stray space
/// around it too) it is the same code.
#[tokio::test]
async fn mfa_codes_typed_with_spaces_are_accepted() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let token = mfa_token(&issuer, &user.account.email).await;
    let code = otp::code(&user.secret, 1);
    let spaced = format!(" {} {} ", &code[..3], &code[3..]);
    assert_pwd_otp(verify(&issuer, &token, &spaced).await);
}

/// An `mfa_token` was won with the password of its time: once the password is changed, or
/// reset from a mailed link, a half-done login with the old one cannot be finished, even with
/// a right code; a login with the new password can.
#[tokio::test]
async fn mfa_a_new_password_ends_half_done_logins() {
    const CHANGED: &str = "a changed passphrase here";
    const RESET: &str = "a passphrase from the reset link";
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let options = Options::new().rate_limits_raised().smtp(&sink);
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let email = &user.account.email;
    let code = otp::code(&user.secret, 1);
    // A verified address: a reset of an unverified one would remove the second factor.
    let link = sink.first_to(email, "Confirm your email address").await;
    let body = json!({"token": link.token()});
    let verified = post(&issuer, "/v1/auth/email/verify", None, &body).await;
    assert_eq!(verified.status, 204, "{verified:?}");

    let before_change = mfa_token(&issuer, email).await;
    let body = json!({"current_password": PASSWORD, "new_password": CHANGED});
    let changed = post(
        &issuer,
        "/v1/auth/password/change",
        Some(&user.account.tokens.access_token),
        &body,
    )
    .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    let refused = verify(&issuer, &before_change, &code).await;
    assert_problem(&refused, 401, "invalid_mfa_token");

    let before_reset = issuer.login_raw(email, CHANGED).await;
    let before_reset = before_reset.str_field("mfa_token").to_owned();
    let forgot = post(
        &issuer,
        "/v1/auth/password/forgot",
        None,
        &json!({"email": email}),
    )
    .await;
    assert_eq!(forgot.status, 202, "{forgot:?}");
    let mail = sink.first_to(email, "Reset your password").await;
    let body = json!({"token": mail.token(), "new_password": RESET});
    let reset = post(&issuer, "/v1/auth/password/reset", None, &body).await;
    assert_eq!(reset.status, 204, "{reset:?}");
    let refused = verify(&issuer, &before_reset, &code).await;
    assert_problem(&refused, 401, "invalid_mfa_token");

    let after = issuer.login_raw(email, RESET).await;
    assert_pwd_otp(verify(&issuer, after.str_field("mfa_token"), &code).await);
}

/// Two regenerations side by side, each with a different backup code of the same set (a
/// double submit from two tabs): the one that runs second finds the set already replaced, so
/// its code is refused instead of being answered with codes that no longer work. The codes
/// that were handed out are the ones that work.
#[tokio::test]
async fn mfa_side_by_side_regenerations_hand_out_only_working_codes() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let user = enrolled(&issuer).await;
    let bearer = &user.account.tokens.access_token;
    let mut set = user.backup_codes.clone();
    for round in 0..3 {
        let mut regenerations = JoinSet::new();
        for code in &set[..2] {
            let request = issuer
                .request(Method::POST, "/v1/auth/mfa/backup-codes/regenerate")
                .bearer_auth(bearer)
                .json(&json!({"code": code}));
            regenerations.spawn(send(request));
        }
        let answers = regenerations.join_all().await;
        let (won, lost): (Vec<_>, Vec<_>) = answers.iter().partition(|r| r.status == 200);
        assert_eq!(won.len(), 1, "round {round}: {answers:#?}");
        assert_problem(lost[0], 401, "invalid_mfa_code");
        set = backup_codes(won[0]);
        let status = mfa_status(&issuer, bearer).await;
        assert_eq!(status["backup_codes_left"], 10, "round {round}: {status}");
    }
    let token = mfa_token(&issuer, &user.account.email).await;
    assert_pwd_otp(verify(&issuer, &token, &set[9]).await);
}

/// Someone who registers an address before its owner and turns on TOTP must not keep the
/// owner out: the owner's reset from the mailed link proves the address, and since it had
/// never been verified, the second factor set up without that proof goes (with an alert and
/// an audit event). Once an address is verified, a reset leaves its second factor alone.
#[tokio::test]
async fn mfa_set_up_before_the_address_was_verified_goes_with_a_reset() {
    const OWNERS: &str = "the owner's own passphrase";
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let options = Options::new().rate_limits_raised().smtp(&sink);
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let reset = |email: String, round: usize| {
        let issuer = &issuer;
        let sink = &sink;
        async move {
            let body = json!({"email": email});
            let forgot = post(issuer, "/v1/auth/password/forgot", None, &body).await;
            assert_eq!(forgot.status, 202, "{forgot:?}");
            let mail = sink.nth_to(&email, "Reset your password", round).await;
            let body = json!({"token": mail.token(), "new_password": OWNERS});
            let done = post(issuer, "/v1/auth/password/reset", None, &body).await;
            assert_eq!(done.status, 204, "{done:?}");
        }
    };

    let squatted = enrolled(&issuer).await;
    let email = squatted.account.email.clone();
    reset(email.clone(), 1).await;
    let owner = Tokens::from_response(issuer.login_raw(&email, OWNERS).await);
    assert_eq!(
        mfa_status(&issuer, &owner.access_token).await,
        json!({"totp_enabled": false, "backup_codes_left": 0})
    );
    sink.first_to(&email, "Two-step verification is off").await;
    let admin_email = crate::support::fresh_email("admin");
    let admin_id = issuer.register_ok(&admin_email, PASSWORD).await;
    let mut database = issuer.sandbox().database().await;
    database.grant_role(&admin_id, "admin").await;
    drop(database);
    let admin = issuer.login(&admin_email, PASSWORD).await.access_token;
    let query = format!(
        "/v1/audit-events?type=mfa_disabled&user_id={}",
        squatted.account.user_id
    );
    let listed = issuer.get_with_bearer(&query, &admin).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(
        listed.body["events"][0]["detail"]["method"], "password_reset",
        "{listed:?}"
    );

    // An enrolment never confirmed is removed too, but MFA was never on: nothing to report.
    let pending = issuer.signup().await;
    let enrollment = enroll(&issuer, &pending.tokens.access_token).await;
    assert_eq!(enrollment.status, 200, "{enrollment:?}");
    reset(pending.email.clone(), 1).await;
    let query = format!(
        "/v1/audit-events?type=mfa_disabled&user_id={}",
        pending.user_id
    );
    let listed = issuer.get_with_bearer(&query, &admin).await;
    assert_eq!(listed.body["events"], json!([]), "{listed:?}");

    let verified = issuer.signup().await;
    let link = sink
        .first_to(&verified.email, "Confirm your email address")
        .await;
    let body = json!({"token": link.token()});
    let confirmed = post(&issuer, "/v1/auth/email/verify", None, &body).await;
    assert_eq!(confirmed.status, 204, "{confirmed:?}");
    let bearer = &verified.tokens.access_token;
    let secret = enroll(&issuer, bearer).await.str_field("secret").to_owned();
    backup_codes(&confirm(&issuer, bearer, &otp::code(&secret, 0)).await);
    reset(verified.email.clone(), 1).await;
    let after = issuer.login_raw(&verified.email, OWNERS).await;
    assert_eq!(after.body["mfa_required"], true, "{after:?}");
}
