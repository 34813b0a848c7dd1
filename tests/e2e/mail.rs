//! Email and one-time links (design note 0005, "Email", "One-time tokens") against a real SMTP
//! server (aiosmtpd, `support::smtp`): verification, password reset and change, the outbox
//! surviving an SMTP outage, TLS with a private CA, tenant templates, and links that only
//! ever name `public_url`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::smtp::{Mail, SinkTls, SmtpSink};
use crate::support::{
    DEFAULT_TENANT_ID, Issuer, Options, PASSWORD, Response, assert_problem, fresh_email, send,
};

const VERIFY_SUBJECT: &str = "Confirm your email address";
const WELCOME_SUBJECT: &str = "Welcome";
const RESET_SUBJECT: &str = "Reset your password";
const CHANGED_SUBJECT: &str = "Your password was changed";
const LOCKED_SUBJECT: &str = "Your account is locked";
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn start(sink: &SmtpSink, options: Options) -> Option<Issuer> {
    Issuer::start_with(options.smtp(sink).rate_limits_raised()).await
}

async fn verify(issuer: &Issuer, token: &str) -> Response {
    issuer
        .post_json("/v1/auth/email/verify", &json!({"token": token}))
        .await
}

async fn forgot(issuer: &Issuer, email: &str) -> Response {
    issuer
        .post_json("/v1/auth/password/forgot", &json!({"email": email}))
        .await
}

async fn reset(issuer: &Issuer, token: &str, new_password: &str) -> Response {
    issuer
        .post_json(
            "/v1/auth/password/reset",
            &json!({"token": token, "new_password": new_password}),
        )
        .await
}

async fn change(issuer: &Issuer, bearer: &str, current: &str, new: &str) -> Response {
    let request = issuer
        .request(Method::POST, "/v1/auth/password/change")
        .bearer_auth(bearer)
        .json(&json!({"current_password": current, "new_password": new}));
    issuer.send(request).await
}

/// Asks for a reset link for `email` and returns the `count`-th reset mail to it.
async fn reset_mail(issuer: &Issuer, sink: &SmtpSink, email: &str, count: usize) -> Mail {
    assert_eq!(forgot(issuer, email).await.status, 202);
    sink.nth_to(email, RESET_SUBJECT, count).await
}

#[tokio::test]
async fn mail_registration_link_verifies_the_address_once_and_welcomes() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let email = fresh_email("verify");
    issuer.register_ok(&email, PASSWORD).await;
    let mail = sink.first_to(&email, VERIFY_SUBJECT).await;
    let prefix = format!("{}/auth/verify-email?token=plk_", issuer.base_url());
    mail.link(&prefix);
    assert!(mail.html.contains(&mail.token()), "{}", mail.html);
    assert!(mail.from.contains("no-reply@localhost"), "{mail:?}");
    // Registering the taken address again answers alike and mails nothing: the sign-in alert
    // queued after it arrives, and no second verification came before it.
    issuer.register_ok(&email, "another long passphrase").await;

    let login = issuer
        .request(Method::POST, "/v1/auth/login")
        .header("user-agent", "mail-e2e/<1.0>")
        .json(&json!({"email": email, "password": PASSWORD}));
    let tokens = crate::support::Tokens::from_response(issuer.send(login).await);
    let alert = sink.first_to(&email, "New sign-in to your account").await;
    let verifications = sink
        .messages()
        .await
        .into_iter()
        .filter(|mail| mail.is_to(&email) && mail.subject == VERIFY_SUBJECT)
        .count();
    assert_eq!(verifications, 1);
    assert!(
        alert
            .text
            .contains("from 127.0.0.1, with a browser that calls itself \"mail-e2e/<1.0>\""),
        "{alert:?}"
    );
    assert!(
        alert.html.contains("&lt;1.0&gt;") && !alert.html.contains("<1.0>"),
        "{alert:?}"
    );
    assert_eq!(
        issuer.me(&tokens.access_token).await.body["email_verified"],
        false
    );
    let verified = verify(&issuer, &mail.token()).await;
    assert_eq!(verified.status, 204, "{verified:?}");
    assert_eq!(
        issuer.me(&tokens.access_token).await.body["email_verified"],
        true
    );
    sink.first_to(&email, WELCOME_SUBJECT).await;
    // Sent messages keep no body, so no link token outlives its delivery.
    let outbox = issuer.sandbox().database().await.outbox().await;
    assert!(
        outbox.iter().filter(|row| row.sent).count() >= 2,
        "{outbox:?}"
    );
    for row in outbox.iter().filter(|row| row.sent) {
        assert_eq!(row.body_chars, 0, "{outbox:?}");
    }

    assert_problem(
        &verify(&issuer, &mail.token()).await,
        400,
        "invalid_link_token",
    );
}

#[tokio::test]
async fn mail_reset_sets_the_password_and_revokes_every_session() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let account = issuer.signup().await;
    let other = issuer.login(&account.email, PASSWORD).await;
    let mail = reset_mail(&issuer, &sink, &account.email, 1).await;
    let link = format!("{}/auth/reset-password?token=plk_", issuer.base_url());
    mail.link(&link);

    let done = reset(&issuer, &mail.token(), NEW_PASSWORD).await;
    assert_eq!(done.status, 204, "{done:?}");
    assert_problem(
        &issuer.login_raw(&account.email, PASSWORD).await,
        401,
        "invalid_credentials",
    );
    let fresh = issuer.login(&account.email, NEW_PASSWORD).await;
    assert_eq!(issuer.me(&fresh.access_token).await.status, 200);
    for old in [&account.tokens, &other] {
        assert_problem(
            &issuer.refresh(&old.refresh_token).await,
            401,
            "invalid_refresh_token",
        );
        assert_eq!(issuer.me(&old.access_token).await.status, 401);
    }
    // Edges learn it from the feed: both sessions and the subject.
    let feed = issuer.revocations(None).await;
    let entries = feed.body["entries"].as_array().expect("entries").clone();
    for old in [&account.tokens, &other] {
        let sid = old.claims()["sid"].clone();
        assert!(
            entries
                .iter()
                .any(|entry| entry["kind"] == "session" && entry["value"] == sid),
            "{feed:?}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|entry| entry["kind"] == "subject" && entry["value"] == account.user_id.as_str()),
        "{feed:?}"
    );
    sink.first_to(&account.email, CHANGED_SUBJECT).await;

    assert_problem(
        &reset(&issuer, &mail.token(), "yet another passphrase").await,
        400,
        "invalid_link_token",
    );
}

#[tokio::test]
async fn mail_a_newer_reset_request_retires_the_older_link() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let account = issuer.signup().await;
    let older = reset_mail(&issuer, &sink, &account.email, 1).await;
    let newer = reset_mail(&issuer, &sink, &account.email, 2).await;
    assert_ne!(older.token(), newer.token());
    assert_problem(
        &reset(&issuer, &older.token(), NEW_PASSWORD).await,
        400,
        "invalid_link_token",
    );
    assert_eq!(
        reset(&issuer, &newer.token(), NEW_PASSWORD).await.status,
        204
    );
}

/// `forgot` answers before its link is queued; requests sent back to back must still be
/// queued in order, so the newer link retires the older one and not the other way round.
#[tokio::test]
async fn mail_back_to_back_reset_requests_leave_the_later_link_working() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    for round in 0..5 {
        let account = issuer.signup().await;
        assert_eq!(forgot(&issuer, &account.email).await.status, 202);
        assert_eq!(forgot(&issuer, &account.email).await.status, 202);
        let older = sink.nth_to(&account.email, RESET_SUBJECT, 1).await;
        let newer = sink.nth_to(&account.email, RESET_SUBJECT, 2).await;
        let newer_reset = reset(&issuer, &newer.token(), NEW_PASSWORD).await;
        assert_eq!(newer_reset.status, 204, "round {round}: {newer_reset:?}");
        assert_problem(
            &reset(&issuer, &older.token(), "yet another passphrase").await,
            400,
            "invalid_link_token",
        );
    }
}

#[tokio::test]
async fn mail_a_password_change_retires_reset_links() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let account = issuer.signup().await;
    let mail = reset_mail(&issuer, &sink, &account.email, 1).await;
    let changed = change(
        &issuer,
        &account.tokens.access_token,
        PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    assert_problem(
        &reset(&issuer, &mail.token(), "yet another passphrase").await,
        400,
        "invalid_link_token",
    );
    issuer.login(&account.email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn mail_forgot_for_an_unknown_address_is_accepted_and_mails_nothing() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let unknown = fresh_email("nobody");
    let accepted = forgot(&issuer, &unknown).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    // The outbox sends in queue order, so once a later message has arrived, a message to the
    // unknown address would have arrived before it.
    let account = issuer.signup().await;
    reset_mail(&issuer, &sink, &account.email, 1).await;
    let messages = sink.messages().await;
    assert!(
        !messages.iter().any(|mail| mail.is_to(&unknown)),
        "{messages:#?}"
    );
}

#[tokio::test]
async fn mail_change_password_revokes_other_sessions_but_not_the_current() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let account = issuer.signup().await;
    let other = issuer.login(&account.email, PASSWORD).await;
    let current = &account.tokens;
    let changed = change(&issuer, &current.access_token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status, 204, "{changed:?}");

    assert_eq!(issuer.me(&current.access_token).await.status, 200);
    issuer.refresh_ok(&current.refresh_token).await;
    assert_eq!(issuer.me(&other.access_token).await.status, 401);
    assert_problem(
        &issuer.refresh(&other.refresh_token).await,
        401,
        "invalid_refresh_token",
    );
    let feed = issuer.revocations(None).await;
    let other_sid = other.claims()["sid"].clone();
    assert!(
        feed.body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|entry| entry["kind"] == "session" && entry["value"] == other_sid),
        "{feed:?}"
    );
    issuer.login(&account.email, NEW_PASSWORD).await;
    sink.first_to(&account.email, CHANGED_SUBJECT).await;
}

#[tokio::test]
async fn mail_a_wrong_current_password_counts_toward_the_lockout_and_the_lock_is_mailed() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let options = Options::new().env("PORTCULLIS_LOCKOUT__MAX_FAILURES", "2");
    let Some(issuer) = start(&sink, options).await else {
        return;
    };
    let account = issuer.signup().await;
    let bearer = &account.tokens.access_token;
    for _ in 0..2 {
        assert_problem(
            &change(&issuer, bearer, "not the password", NEW_PASSWORD).await,
            401,
            "invalid_credentials",
        );
    }
    let mut database = issuer.sandbox().database().await;
    assert_eq!(database.lockout_counts().await, (2, 1));
    // Locked now: even the right password is refused, and login is locked too.
    assert_problem(
        &change(&issuer, bearer, PASSWORD, NEW_PASSWORD).await,
        423,
        "account_locked",
    );
    assert_problem(
        &issuer.login_raw(&account.email, PASSWORD).await,
        423,
        "account_locked",
    );
    let mail = sink.first_to(&account.email, LOCKED_SUBJECT).await;
    assert!(mail.text.contains("locked until"), "{mail:?}");

    // A reset through the mailed link proves the address and ends the lock.
    let token = reset_mail(&issuer, &sink, &account.email, 1).await.token();
    assert_eq!(reset(&issuer, &token, NEW_PASSWORD).await.status, 204);
    issuer.login(&account.email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_is_delivered_once_it_is_up_again() {
    let mut sink = SmtpSink::reserve(SinkTls::Plain);
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let email = fresh_email("outage");
    issuer.register_ok(&email, PASSWORD).await;
    assert_eq!(forgot(&issuer, &email).await.status, 202);
    sink.up().await;
    let verify_mail = sink.first_to(&email, VERIFY_SUBJECT).await;
    sink.first_to(&email, RESET_SUBJECT).await;
    assert_eq!(verify(&issuer, &verify_mail.token()).await.status, 204);

    // Down again after delivering: the pooled connection is dead, the next request still
    // succeeds, and its message goes out once the server is back.
    sink.down().await;
    assert_eq!(forgot(&issuer, &email).await.status, 202);
    sink.up().await;
    let reset_mail = sink.first_to(&email, RESET_SUBJECT).await;
    assert_eq!(
        reset(&issuer, &reset_mail.token(), NEW_PASSWORD)
            .await
            .status,
        204
    );
}

/// A server that accepts the connection and never answers must cost one attempt, not the
/// worker: the message is retried, and goes out once a working server listens there.
#[tokio::test]
async fn mail_a_server_that_never_answers_delays_mail_but_does_not_stall_the_worker() {
    let mut sink = SmtpSink::reserve(SinkTls::Plain);
    let silent = std::net::TcpListener::bind(("127.0.0.1", sink.smtp_port()))
        .expect("bind the silent server");
    let options = Options::new()
        .env("PORTCULLIS_MAIL__TIMEOUT_SECS", "1")
        .env("PORTCULLIS_MAIL__RETRY_INITIAL_SECS", "1");
    let Some(issuer) = start(&sink, options).await else {
        return;
    };
    let email = fresh_email("silent");
    issuer.register_ok(&email, PASSWORD).await;
    // The worker's connection is accepted, then held open without a greeting.
    let (held, _) = tokio::task::spawn_blocking(move || silent.accept())
        .await
        .expect("the accepting task")
        .expect("the worker connects");
    sink.up().await;
    let mail = sink.first_to(&email, VERIFY_SUBJECT).await;
    assert_eq!(verify(&issuer, &mail.token()).await.status, 204);
    drop(held);
}

async fn check_tls(tls: SinkTls) {
    let sink = SmtpSink::start(tls).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let email = fresh_email("tls");
    issuer.register_ok(&email, PASSWORD).await;
    let mail = sink.first_to(&email, VERIFY_SUBJECT).await;
    assert_eq!(verify(&issuer, &mail.token()).await.status, 204);
}

#[tokio::test]
async fn mail_starttls_with_a_private_ca() {
    check_tls(SinkTls::StartTls).await;
}

#[tokio::test]
async fn mail_implicit_tls_with_a_private_ca() {
    check_tls(SinkTls::Implicit).await;
}

#[tokio::test]
async fn mail_an_untrusted_server_certificate_is_refused_and_the_message_kept() {
    let sink = SmtpSink::start(SinkTls::StartTls).await;
    // No `mail.tls_root_cert`: the sink's private CA is not trusted.
    let options = Options::new()
        .env("PORTCULLIS_MAIL__SMTP_URL", &sink.smtp_url())
        .env("PORTCULLIS_MAIL__RETRY_INITIAL_SECS", "1")
        .env("PORTCULLIS_MAIL__POLL_INTERVAL_MS", "100");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let email = fresh_email("untrusted");
    issuer.register_ok(&email, PASSWORD).await;
    let mut database = issuer.sandbox().database().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failed = loop {
        let outbox = database.outbox().await;
        if let Some(row) = outbox.iter().find(|row| row.last_error.is_some()) {
            break row.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt: {outbox:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(!failed.sent && failed.body_chars > 0, "{failed:?}");
    assert!(sink.messages().await.is_empty());
}

#[tokio::test]
async fn mail_a_tenant_template_sets_subject_and_sender() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let mut database = issuer.sandbox().database().await;
    database
        .set_mail_template(
            DEFAULT_TENANT_ID,
            "verify_email",
            "Acme Accounts <accounts@acme.test>",
            "Acme: confirm within {{ expires_in_hours }} hours",
        )
        .await;
    let email = fresh_email("template");
    issuer.register_ok(&email, PASSWORD).await;
    let mail = sink.first_to(&email, "Acme: confirm within 24 hours").await;
    assert_eq!(mail.envelope_from, "accounts@acme.test");
    assert!(mail.from.contains("Acme Accounts"), "{mail:?}");
    assert_eq!(verify(&issuer, &mail.token()).await.status, 204);
}

#[tokio::test]
async fn mail_links_name_public_url_whatever_the_request_headers() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let public_url = "https://auth.portcullis.test";
    let options = Options::new().env("PORTCULLIS_PUBLIC_URL", public_url);
    let Some(issuer) = start(&sink, options).await else {
        return;
    };
    let email = fresh_email("forged-host");
    issuer.register_ok(&email, PASSWORD).await;
    let request = issuer
        .request(Method::POST, "/v1/auth/password/forgot")
        .header("host", "evil.test")
        .header("x-forwarded-host", "evil.test")
        .header("forwarded", "host=evil.test")
        .json(&json!({"email": email}));
    let accepted = issuer.send(request).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let mail = sink.first_to(&email, RESET_SUBJECT).await;
    mail.link(&format!("{public_url}/auth/reset-password?token=plk_"));
    assert!(!mail.text.contains("evil.test") && !mail.html.contains("evil.test"));
    let verify_mail = sink.first_to(&email, VERIFY_SUBJECT).await;
    verify_mail.link(&format!("{public_url}/auth/verify-email?token=plk_"));
}

#[tokio::test]
async fn mail_bad_input_gets_problem_documents() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let huge = "plk_".to_owned() + &"A".repeat(30_000);
    let cases: [(&str, Value, u16, &str); 10] = [
        ("/v1/auth/email/verify", json!({}), 422, "validation_failed"),
        (
            "/v1/auth/email/verify",
            json!({"token": 5}),
            422,
            "validation_failed",
        ),
        (
            "/v1/auth/email/verify",
            json!({"token": "plk_nope"}),
            400,
            "invalid_link_token",
        ),
        (
            "/v1/auth/email/verify",
            json!({"token": huge}),
            400,
            "invalid_link_token",
        ),
        (
            "/v1/auth/password/forgot",
            json!({"email": "not-an-address"}),
            422,
            "validation_failed",
        ),
        (
            "/v1/auth/password/forgot",
            json!({"mail": "a@example.com"}),
            422,
            "validation_failed",
        ),
        (
            "/v1/auth/password/reset",
            json!({"token": "plk_x"}),
            422,
            "validation_failed",
        ),
        (
            "/v1/auth/password/reset",
            json!({"token": "plk_x", "new_password": "a long enough one"}),
            400,
            "invalid_link_token",
        ),
        (
            "/v1/auth/password/reset",
            json!({"token": ["plk_x"], "new_password": "a long enough one"}),
            422,
            "validation_failed",
        ),
        (
            "/v1/auth/password/change",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            401,
            "unauthenticated",
        ),
    ];
    for (path, body, status, code) in cases {
        let response = issuer.post_json(path, &body).await;
        assert_problem(&response, status, code);
    }
    let account = issuer.signup().await;
    let short = change(&issuer, &account.tokens.access_token, PASSWORD, "short").await;
    assert_problem(&short, 422, "validation_failed");
    assert_eq!(
        short.body["errors"][0]["field"], "new_password",
        "{short:?}"
    );
    let missing = issuer
        .send(
            issuer
                .request(Method::POST, "/v1/auth/password/change")
                .bearer_auth(&account.tokens.access_token)
                .json(&json!({"new_password": NEW_PASSWORD})),
        )
        .await;
    assert_problem(&missing, 422, "validation_failed");
    // A well-formed token that was never issued is refused like a used one.
    let reset_mail_free = reset(
        &issuer,
        "plk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        NEW_PASSWORD,
    )
    .await;
    assert_problem(&reset_mail_free, 400, "invalid_link_token");
}

#[tokio::test]
async fn mail_a_reset_link_presented_concurrently_resets_once() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let account = issuer.signup().await;
    let token = reset_mail(&issuer, &sink, &account.email, 1).await.token();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let password = format!("{NEW_PASSWORD} {n}");
            let request = issuer
                .request(Method::POST, "/v1/auth/password/reset")
                .json(&json!({"token": token, "new_password": password}));
            tokio::spawn(async move { (password, send(request).await) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("a reset task"));
    }
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, response)| response.status == 204)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for (_, response) in outcomes.iter().filter(|(_, r)| r.status != 204) {
        assert_problem(response, 400, "invalid_link_token");
    }
    issuer.login(&account.email, &winners[0].0).await;
}

/// A change checks the current password, then hashes the new one: a reset landing in between
/// must not be overwritten by a change whose "current" password the reset just replaced (the
/// reset also closed the session that asked for the change).
#[tokio::test]
async fn mail_a_reset_and_a_change_racing_change_the_password_once() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    for round in 0..3 {
        let account = issuer.signup().await;
        let token = reset_mail(&issuer, &sink, &account.email, 1).await.token();
        let changed = format!("{NEW_PASSWORD} changed {round}");
        let reset_to = format!("{NEW_PASSWORD} reset {round}");
        let change_request = issuer
            .request(Method::POST, "/v1/auth/password/change")
            .bearer_auth(&account.tokens.access_token)
            .json(&json!({"current_password": PASSWORD, "new_password": changed}));
        let reset_request = issuer
            .request(Method::POST, "/v1/auth/password/reset")
            .json(&json!({"token": token, "new_password": reset_to}));
        let (change, reset) = tokio::join!(send(change_request), send(reset_request));
        let winners = [(&change, &changed), (&reset, &reset_to)]
            .into_iter()
            .filter(|(response, _)| response.status == 204)
            .map(|(_, password)| password)
            .collect::<Vec<_>>();
        assert_eq!(winners.len(), 1, "round {round}: {change:?} {reset:?}");
        issuer.login(&account.email, winners[0]).await;
    }
}

#[tokio::test]
async fn mail_flows_are_audited() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let Some(issuer) = start(&sink, Options::new()).await else {
        return;
    };
    let email = fresh_email("audited");
    let user_id = issuer.register_ok(&email, PASSWORD).await;
    let mut database = issuer.sandbox().database().await;
    database.grant_role(&user_id, "admin").await;
    let token = sink.first_to(&email, VERIFY_SUBJECT).await.token();
    assert_eq!(verify(&issuer, &token).await.status, 204);
    let token = reset_mail(&issuer, &sink, &email, 1).await.token();
    assert_eq!(reset(&issuer, &token, NEW_PASSWORD).await.status, 204);
    let tokens = issuer.login(&email, NEW_PASSWORD).await;
    let changed = change(&issuer, &tokens.access_token, NEW_PASSWORD, PASSWORD).await;
    assert_eq!(changed.status, 204, "{changed:?}");
    for kind in ["email_verified", "password_reset", "password_changed"] {
        let page = issuer
            .get_with_bearer(
                &format!("/v1/audit-events?type={kind}&user_id={user_id}"),
                &tokens.access_token,
            )
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        let events = page.body["events"].as_array().expect("events");
        assert_eq!(events.len(), 1, "{kind}: {page:?}");
        assert_eq!(events[0]["outcome"], "success", "{page:?}");
    }
}

#[tokio::test]
async fn mail_forgot_is_rate_limited_per_address() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let email = fresh_email("flood");
    for _ in 0..3 {
        assert_eq!(forgot(&issuer, &email).await.status, 202);
    }
    let limited = forgot(&issuer, &email).await;
    assert_problem(&limited, 429, "rate_limited");
    assert!(limited.header("retry-after").is_some(), "{limited:?}");
}

#[tokio::test]
async fn mail_without_smtp_url_the_issuer_says_mail_stays_queued() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let email = fresh_email("queued");
    issuer.register_ok(&email, PASSWORD).await;
    let (status, stderr) = issuer.stop_and_read_stderr().await;
    assert!(status.success(), "{status}");
    assert!(stderr.contains("mail.smtp_url is not set"), "{stderr}");
}

/// A login with the old password that is being checked while a reset commits must not come
/// out with a working session: it read the old hash before the reset, and it opens its
/// session after the reset has swept the user's sessions. Argon2 is slowed (passes) so that
/// the login's check spans the reset's commit: the login is sent while the reset is still
/// hashing the new password.
#[tokio::test]
async fn mail_a_login_racing_a_reset_gets_no_session() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let slow =
        Options::new().config("[password]\nargon2_iterations = 100\nargon2_memory_kib = 38912\n");
    let Some(issuer) = start(&sink, slow).await else {
        return;
    };
    let account = issuer.signup().await;
    let mail = reset_mail(&issuer, &sink, &account.email, 1).await;
    let reset = issuer
        .request(Method::POST, "/v1/auth/password/reset")
        .json(&json!({"token": mail.token(), "new_password": NEW_PASSWORD}));
    let resetting = tokio::spawn(send(reset));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let login = issuer.login_raw(&account.email, PASSWORD).await;
    let reset = resetting.await.unwrap();
    assert_eq!(reset.status, 204, "{reset:?}");
    if login.status == 200 {
        let tokens = crate::support::Tokens::from_response(login);
        let me = issuer.me(&tokens.access_token).await;
        assert_eq!(
            me.status, 401,
            "a session of the old password outlived the reset"
        );
    } else {
        assert_problem(&login, 401, "invalid_credentials");
    }
}

/// The attempt that starts a lock records and mails it before its password is checked, so a
/// client that hangs up during the (slowed) check cannot lock an account without a trace:
/// the lock is in the audit log, the owner gets the alert, and the right password waits.
#[tokio::test]
async fn mail_a_lock_whose_client_hangs_up_is_still_recorded_and_mailed() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let slow = Options::new().config(
        "[password]\nargon2_iterations = 100\nargon2_memory_kib = 38912\n\
         [lockout]\nmax_failures = 1\nlock_secs = 600\n",
    );
    let Some(issuer) = start(&sink, slow).await else {
        return;
    };
    let email = fresh_email("hangs-up");
    issuer.register_ok(&email, PASSWORD).await;
    let wrong = issuer
        .request(Method::POST, "/v1/auth/login")
        .json(&json!({"email": email, "password": "not the password at all"}));
    let patience = std::time::Duration::from_millis(300);
    let hung_up = tokio::time::timeout(patience, send(wrong)).await;
    assert!(
        hung_up.is_err(),
        "the slowed check outlasts the client: {hung_up:?}"
    );

    sink.first_to(&email, LOCKED_SUBJECT).await;
    let mut database = issuer.sandbox().database().await;
    assert_eq!(
        database.lockout_counts().await,
        (1, 1),
        "counted, one lock recorded"
    );
    assert_problem(
        &issuer.login_raw(&email, PASSWORD).await,
        423,
        "account_locked",
    );
}
