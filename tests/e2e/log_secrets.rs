//! No secret reaches the log, even at `RUST_LOG=trace` (0002, "Start-up": logs go to stderr).
//!
//! The issuer keeps passwords and tokens out of its log by types (redacting wrappers, spans
//! that skip their arguments, sensitive headers), and a dependency logging at trace level
//! (a request body, a header, a query parameter) would undo that silently. So these tests
//! drive every path that carries a secret, with the most verbose filter, in both log formats,
//! and search the whole log for each secret the run saw.

use serde_json::{Value, json};

use crate::support::smtp::{SinkTls, SmtpSink};
use crate::support::{Issuer, Options, Tokens, assert_client_problem, assert_problem, jwt, otp};

/// Both log formats, as `PORTCULLIS_LOG_FORMAT` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// One secret the run handled, with a label for the failure message.
struct Secret {
    label: String,
    value: String,
}

/// Every secret of the run, in every form that is a credential on its own.
#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn add(&mut self, label: impl Into<String>, value: &str) {
        assert!(value.len() >= 8, "too short to search for: {value:?}");
        self.0.push(Secret {
            label: label.into(),
            value: value.to_owned(),
        });
    }

    /// The access token and, on its own, its signature: header and claims are readable by
    /// anyone holding the token, so a logged signature is as good as the logged token.
    fn add_access_token(&mut self, label: &str, token: &str) {
        self.add(format!("{label} access token"), token);
        let signature = token.rsplit('.').next().unwrap_or_default();
        self.add(format!("{label} access token signature"), signature);
    }

    /// The refresh token and its secret part without the `prt_` prefix.
    fn add_refresh_token(&mut self, label: &str, token: &str) {
        self.add(format!("{label} refresh token"), token);
        let secret = token.strip_prefix("prt_").unwrap_or(token);
        self.add(format!("{label} refresh token secret"), secret);
    }

    fn add_tokens(&mut self, label: &str, tokens: &Tokens) {
        self.add_access_token(label, &tokens.access_token);
        self.add_refresh_token(label, &tokens.refresh_token);
    }

    /// Asserts no secret occurs anywhere in `log`, naming the first line that holds one.
    fn assert_absent_from(&self, log: &str) {
        for secret in &self.0 {
            if let Some(line) = log.lines().find(|line| line.contains(&secret.value)) {
                panic!(
                    "the {} ({:?}) is in the log:\n{line}",
                    secret.label, secret.value
                );
            }
        }
    }
}

/// A fresh password nothing else in the log could contain by chance.
fn distinctive(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

/// An issuer logging everything at trace level, in `format`, with no refresh grace window so
/// a second presentation takes the reuse-detection path, mailing through `sink`, and budgets
/// raised for the dozen logins of one run from one client.
async fn start_verbose(format: Format, sink: &SmtpSink) -> Option<Issuer> {
    let mut options = Options::new()
        .rate_limits_raised()
        .smtp(sink)
        .env("RUST_LOG", "trace")
        .env("PORTCULLIS_TOKEN__REFRESH_GRACE_SECS", "0");
    if format == Format::Json {
        options = options.env("PORTCULLIS_LOG_FORMAT", "json");
    }
    Issuer::start_with(options).await
}

/// Drives every path that carries a secret: register, login, `me`, refresh, introspection of
/// both kinds of token, a failed login, garbage bearers and refresh tokens, refresh-token
/// reuse, logout, RFC 7009 revocation, logins into a delayed (locked) account, and MFA
/// enrolment and login. Returns every secret the issuer saw.
async fn handle_secrets(issuer: &Issuer) -> Secrets {
    let mut secrets = Secrets::default();
    let email = format!("{}@example.com", distinctive("log-secrets"));
    let password = distinctive("Right-Password");
    let wrong_password = distinctive("Wrong-Password");
    secrets.add("password", &password);
    secrets.add("wrong password", &wrong_password);

    issuer.register_ok(&email, &password).await;
    let first = issuer.login(&email, &password).await;
    secrets.add_tokens("first", &first);
    assert_eq!(issuer.me(&first.access_token).await.status, 200);

    let second = issuer.refresh_ok(&first.refresh_token).await;
    secrets.add_tokens("rotated", &second);
    for token in [&second.access_token, &second.refresh_token] {
        let verdict = issuer.introspect(&second.access_token, token).await;
        assert_eq!(verdict.status, 200, "{verdict:?}");
        assert_eq!(verdict.body["active"], true, "{verdict:?}");
    }

    let refused = issuer.login_raw(&email, &wrong_password).await;
    assert_problem(&refused, 401, "invalid_credentials");

    let garbage = distinctive("garbage-bearer");
    secrets.add("garbage bearer", &garbage);
    let forged = jwt::sign_hs256(
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": "nope"}),
        &json!({"sub": "usr_nobody", "exp": 4_102_444_800_u64}),
        distinctive("forging-key").as_bytes(),
    );
    secrets.add_access_token("forged", &forged);
    for bearer in [&garbage, &forged] {
        let response = issuer.me(bearer).await;
        assert_eq!(response.status, 401, "{response:?}");
    }
    let garbage_refresh = format!("prt_{}", distinctive("GarbageRefresh"));
    secrets.add_refresh_token("garbage", &garbage_refresh);
    assert_client_problem(&issuer.refresh(&garbage_refresh).await);

    // Presenting the rotated-away token again revokes the family (no grace window).
    let reused = issuer.refresh(&first.refresh_token).await;
    assert_problem(&reused, 401, "refresh_token_reused");

    let third = issuer.login(&email, &password).await;
    secrets.add_tokens("logged-out", &third);
    let logout = issuer
        .logout(&third.access_token, Some(&third.refresh_token))
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");

    let fourth = issuer.login(&email, &password).await;
    secrets.add_tokens("revoked", &fourth);
    let revoked = issuer
        .revoke(&fourth.refresh_token, Some("refresh_token"))
        .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert_client_problem(&issuer.refresh(&fourth.refresh_token).await);

    // Guesses that delay the account, then the right password refused by the lockout: the
    // refused password is never checked, and must not be logged either.
    let guessed = format!("{}@example.com", distinctive("log-secrets-locked"));
    let guessed_password = distinctive("Guessed-Password");
    secrets.add("password of a delayed account", &guessed_password);
    issuer.register_ok(&guessed, &guessed_password).await;
    for attempt in 0..3 {
        let guess = distinctive(&format!("Guess-{attempt}"));
        secrets.add(format!("guess {attempt}"), &guess);
        assert_problem(
            &issuer.login_raw(&guessed, &guess).await,
            401,
            "invalid_credentials",
        );
    }
    let refused = issuer.login_raw(&guessed, &guessed_password).await;
    assert_problem(&refused, 423, "account_locked");
    handle_mfa_secrets(issuer, &mut secrets).await;
    secrets
}

/// The MFA paths: enrolment (secret, otpauth URI), confirmation (backup codes), the
/// `mfa_token` of a login and its verification with a backup code and a TOTP code. Six-digit
/// codes are too short to search a log for without false alarms; they travel in the same
/// fields (`code`) as the backup codes, which are searched.
async fn handle_mfa_secrets(issuer: &Issuer, secrets: &mut Secrets) {
    let email = format!("{}@example.com", distinctive("log-secrets-mfa"));
    let password = distinctive("Mfa-Password");
    secrets.add("MFA user's password", &password);
    issuer.register_ok(&email, &password).await;
    let session = issuer.login(&email, &password).await;
    secrets.add_tokens("pre-MFA", &session);
    let post = |path: &'static str, body: Value| {
        let request = issuer
            .request(reqwest::Method::POST, path)
            .bearer_auth(&session.access_token)
            .json(&body);
        issuer.send(request)
    };
    let enrollment = post("/v1/auth/mfa/totp/enroll", json!({})).await;
    assert_eq!(enrollment.status, 200, "{enrollment:?}");
    let secret = enrollment.str_field("secret").to_owned();
    secrets.add("TOTP secret", &secret);
    secrets.add("otpauth URI", enrollment.str_field("otpauth_uri"));
    let confirmed = post(
        "/v1/auth/mfa/totp/confirm",
        json!({"code": otp::code(&secret, 0)}),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let codes: Vec<String> = confirmed.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    for (index, code) in codes.iter().enumerate() {
        secrets.add(format!("backup code {index}"), code);
        secrets.add(
            format!("backup code {index} without dashes"),
            &code.replace('-', ""),
        );
    }

    let verify = |token: String, code: String| {
        let request = issuer
            .request(reqwest::Method::POST, "/v1/auth/mfa/verify")
            .json(&json!({"mfa_token": token, "code": code}));
        issuer.send(request)
    };
    let login = issuer.login_raw(&email, &password).await;
    let token = login.str_field("mfa_token").to_owned();
    secrets.add("mfa_token", &token);
    let wrong = verify(token.clone(), otp::wrong_code(&secret)).await;
    assert_problem(&wrong, 401, "invalid_mfa_code");
    let with_backup = Tokens::from_response(verify(token, codes[0].clone()).await);
    secrets.add_tokens("backup-code login", &with_backup);
    let login = issuer.login_raw(&email, &password).await;
    let token = login.str_field("mfa_token").to_owned();
    secrets.add("second mfa_token", &token);
    let with_totp = Tokens::from_response(verify(token, otp::code(&secret, 1)).await);
    secrets.add_tokens("TOTP login", &with_totp);
}

/// The mailed links and the passwords around them: email verification, a reset link used
/// and presented again, a password change (also with a wrong current password), and garbage
/// link tokens.
async fn handle_mail_secrets(issuer: &Issuer, sink: &SmtpSink, secrets: &mut Secrets) {
    let email = format!("{}@example.com", distinctive("log-secrets-mail"));
    let password = distinctive("Mail-Password");
    secrets.add("mail account password", &password);
    issuer.register_ok(&email, &password).await;
    let verify = sink.first_to(&email, "Confirm your email address").await;
    let token = verify.token();
    secrets.add("verification token", &token);
    let body = json!({"token": token});
    assert_eq!(
        issuer
            .post_json("/v1/auth/email/verify", &body)
            .await
            .status,
        204
    );
    assert_client_problem(&issuer.post_json("/v1/auth/email/verify", &body).await);

    let forgot = json!({"email": email});
    assert_eq!(
        issuer
            .post_json("/v1/auth/password/forgot", &forgot)
            .await
            .status,
        202
    );
    let reset = sink.first_to(&email, "Reset your password").await;
    let token = reset.token();
    secrets.add("reset token", &token);
    let reset_password = distinctive("Reset-Password");
    secrets.add("password set by reset", &reset_password);
    let body = json!({"token": token, "new_password": reset_password});
    assert_eq!(
        issuer
            .post_json("/v1/auth/password/reset", &body)
            .await
            .status,
        204
    );
    assert_client_problem(&issuer.post_json("/v1/auth/password/reset", &body).await);
    let garbage = format!("plk_{}", distinctive("GarbageLink"));
    secrets.add("garbage link token", &garbage);
    let body = json!({"token": garbage, "new_password": reset_password});
    assert_client_problem(&issuer.post_json("/v1/auth/password/reset", &body).await);

    let tokens = issuer.login(&email, &reset_password).await;
    secrets.add_tokens("mail account", &tokens);
    let changed_password = distinctive("Changed-Password");
    secrets.add("password set by change", &changed_password);
    let wrong = distinctive("Wrong-Current");
    secrets.add("wrong current password", &wrong);
    for (current, status) in [(&wrong, 401), (&reset_password, 204)] {
        let request = issuer
            .request(reqwest::Method::POST, "/v1/auth/password/change")
            .bearer_auth(&tokens.access_token)
            .json(&json!({"current_password": current, "new_password": changed_password}));
        let response = issuer.send(request).await;
        assert_eq!(response.status, status, "{response:?}");
    }
    issuer.login(&email, &changed_password).await;
}

/// Asserts the log is worth searching: it has the events of the requests just made, and
/// events below `info`, so the `trace` filter really was in force.
fn assert_log_is_verbose(log: &str, format: Format) {
    assert!(!log.trim().is_empty(), "the issuer logged nothing");
    assert!(
        log.contains("/v1/auth/login") && log.contains("/oauth/revoke"),
        "no request events in the log:\n{log}"
    );
    let below_info = match format {
        Format::Text => [" DEBUG ", " TRACE "],
        Format::Json => ["\"level\":\"DEBUG\"", "\"level\":\"TRACE\""],
    };
    assert!(
        below_info.iter().any(|level| log.contains(level)),
        "no event below info: was RUST_LOG=trace passed on?\n{log}"
    );
}

/// Asserts every line of a JSON log is one JSON object, as log shippers expect.
fn assert_json_lines(log: &str) {
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not a JSON log line ({error}): {line}"));
        assert!(parsed.is_object(), "not a JSON object: {line}");
    }
}

async fn check_log_holds_no_secret(format: Format) {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start_verbose(format, &sink).await else {
        return;
    };
    let mut secrets = handle_secrets(&issuer).await;
    handle_mail_secrets(&issuer, &sink, &mut secrets).await;
    let stdout = issuer.stdout();
    let (status, log) = issuer.stop_and_read_stderr().await;
    assert!(status.success(), "graceful shutdown on SIGTERM: {status}");
    // Only the start line goes to stdout, but a secret printed there leaks all the same.
    secrets.assert_absent_from(&stdout);

    assert_log_is_verbose(&log, format);
    if format == Format::Json {
        assert_json_lines(&log);
    }
    secrets.assert_absent_from(&log);
}

#[tokio::test]
async fn log_secrets_text_log_at_trace_holds_no_password_or_token() {
    check_log_holds_no_secret(Format::Text).await;
}

#[tokio::test]
async fn log_secrets_json_log_at_trace_holds_no_password_or_token_and_parses() {
    check_log_holds_no_secret(Format::Json).await;
}
