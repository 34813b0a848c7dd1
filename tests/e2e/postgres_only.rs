//! Tests that exist only with PostgreSQL (0003, "Selection"): the Redis fast path and its loss,
//! the master key PostgreSQL requires, and PostgreSQL without Redis, where replicas share the
//! database and each keeps an in-process blacklist refreshed from the revocation feed.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use sqlx::Connection as _;

use crate::restart::{check_revocations_survive_a_crash, with_public_url};
use crate::startup::{RUN_TIMEOUT, assert_refused, serve_with};
use crate::support::database::Database;
use crate::support::relay::Relay;
use crate::support::smtp::{SinkTls, SmtpSink};
use crate::support::{
    Issuer, Options, PASSWORD, POSTGRES_REDIS_BACKEND_TEXT, Response, Sandbox, Services,
    assert_problem, assert_refresh_token_format, fresh_email, otp, send,
};

/// 0003: "a revocation reaches other replicas within ~1 s"; this bounds the wait generously for
/// a busy machine, it is not a timing check of the 1 s.
const REPLICA_PROPAGATION: Duration = Duration::from_secs(5);

/// PostgreSQL without Redis: the harness's database and master key, no Redis at all.
fn without_redis() -> Options {
    with_public_url(
        Options::new()
            .without_env("PORTCULLIS_REDIS_URL")
            .without_env("PORTCULLIS_REDIS_PREFIX"),
    )
}

/// Asks `replica` for `me` with `access_token` until it answers `401 token_revoked`; until then
/// the only acceptable answer is 200 (the revocation has not reached it yet). Panics after
/// [`REPLICA_PROPAGATION`].
async fn await_revoked_on(replica: &Issuer, access_token: &str, what: &str) -> Response {
    let deadline = Instant::now() + REPLICA_PROPAGATION;
    loop {
        let me = replica.me(access_token).await;
        if me.status == 401 {
            return me;
        }
        assert_eq!(me.status, 200, "{what}: unexpected answer: {me:?}");
        assert!(
            Instant::now() < deadline,
            "{what}: still accepted by the other replica after {REPLICA_PROPAGATION:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection to the test's PostgreSQL database.
async fn postgres(issuer: &Issuer) -> sqlx::PgConnection {
    let Database::Postgres(connection) = issuer.sandbox().database().await else {
        panic!("a PostgreSQL sandbox");
    };
    connection
}

/// Waits until `count` statements of the test's database wait for a lock (a bound on the
/// loop, not a timing check).
async fn await_lock_waiters(issuer: &Issuer, count: i64) {
    let mut observer = postgres(issuer).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if waiting >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} of {count} statements reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A wrong password counted while a success of the same account deletes its counter row (a
/// success resets the count) is counted afresh: 401, never 500. The test plays the success:
/// it locks the row, lets a wrong login reach it, deletes the row and commits.
#[tokio::test]
async fn a_failure_racing_a_reset_of_the_count_is_counted_afresh() {
    let Some(issuer) = Issuer::start_with(Options::new().rate_limits_raised()).await else {
        return;
    };
    let email = fresh_email("reset-race");
    issuer.register_ok(&email, PASSWORD).await;
    let wrong = json!({"email": email, "password": "not the password at all"});
    let first = send(issuer.request(Method::POST, "/v1/auth/login").json(&wrong)).await;
    assert_problem(&first, 401, "invalid_credentials");

    let mut success = postgres(&issuer).await;
    let mut reset = success.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM account_lockouts FOR UPDATE")
        .fetch_all(&mut *reset)
        .await
        .unwrap();
    let racing = tokio::spawn(send(
        issuer.request(Method::POST, "/v1/auth/login").json(&wrong),
    ));
    await_lock_waiters(&issuer, 1).await;
    sqlx::query("DELETE FROM account_lockouts")
        .execute(&mut *reset)
        .await
        .unwrap();
    reset.commit().await.unwrap();

    assert_problem(&racing.await.unwrap(), 401, "invalid_credentials");
    let (failures, _) = issuer.sandbox().database().await.lockout_counts().await;
    assert_eq!(
        failures, 1,
        "the count started afresh with the racing failure"
    );
}

/// Two backup-code regenerations whose replacements overlap leave one set of ten: each deletes
/// what the one before it stored. The test holds the stored codes but one locked, as a third
/// regeneration would, until both requests wait, then lets go: one request spends a TOTP
/// code, the other the code left unlocked. Whichever runs second sees the first one's set:
/// if the TOTP request went first, the backup code is no longer in the set and is refused.
#[tokio::test]
async fn overlapping_backup_code_regenerations_leave_one_set() {
    let options = Options::new().rate_limits_raised().lockout_off();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let bearer = issuer.signup().await.tokens.access_token;
    let post = |path: &str, body: serde_json::Value| {
        issuer
            .request(Method::POST, path)
            .bearer_auth(&bearer)
            .json(&body)
    };
    let enrollment = send(post("/v1/auth/mfa/totp/enroll", json!({}))).await;
    let secret = enrollment.str_field("secret").to_owned();
    let code = otp::code(&secret, 0);
    let confirmed = send(post("/v1/auth/mfa/totp/confirm", json!({"code": code}))).await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let kept = confirmed.body["backup_codes"][0]
        .as_str()
        .unwrap()
        .to_owned();

    let mut third = postgres(&issuer).await;
    let mut holding = third.begin().await.unwrap();
    sqlx::query("DELETE FROM mfa_backup_codes WHERE code_hash <> sha256(convert_to($1, 'UTF8'))")
        .bind(kept.replace('-', ""))
        .execute(&mut *holding)
        .await
        .unwrap();
    let path = "/v1/auth/mfa/backup-codes/regenerate";
    let with_totp = tokio::spawn(send(post(path, json!({"code": otp::code(&secret, 1)}))));
    let with_backup = tokio::spawn(send(post(path, json!({"code": kept}))));
    await_lock_waiters(&issuer, 2).await;
    holding.commit().await.unwrap();

    let answers = [with_totp.await.unwrap(), with_backup.await.unwrap()];
    assert_eq!(
        answers[0].status, 200,
        "a fresh TOTP code always works: {answers:?}"
    );
    if answers[1].status != 200 {
        assert_problem(&answers[1], 401, "invalid_mfa_code");
    }
    let me = issuer.me(&bearer).await;
    assert_eq!(me.body["mfa"]["backup_codes_left"], 10, "{me:?}");
}

/// After Redis loses every key of this issuer (the blacklist and its "populated" marker), a
/// logged-out access token must stay refused: the issuer rebuilds the blacklist from PostgreSQL.
///
/// Asserted: from the moment the keys are gone, `GET /v1/auth/me` with the logged-out token is
/// never 200 (a 401 or a 503 while rebuilding are both acceptable on the way), and within 10 s
/// (a bound on the loop, not a timing check) it is `401 token_revoked`. A live token keeps
/// working afterwards.
#[tokio::test]
async fn revocation_survives_redis_data_loss() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    let bob = issuer.signup().await;
    let logout = issuer.logout(&alice.tokens.access_token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    assert_problem(
        &issuer.me(&alice.tokens.access_token).await,
        401,
        "token_revoked",
    );

    let deleted = issuer.sandbox().delete_redis_keys().await;
    assert!(
        deleted > 0,
        "the issuer keeps its blacklist under its prefix, found no keys"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let verdict = loop {
        let me = issuer.me(&alice.tokens.access_token).await;
        assert_ne!(
            me.status, 200,
            "a logged-out token was accepted after Redis lost its data"
        );
        assert!(
            me.status == 401 || me.status == 503,
            "unexpected answer: {me:?}"
        );
        if me.status == 401 && me.body["code"] == "token_revoked" {
            break me;
        }
        assert!(
            Instant::now() < deadline,
            "no 401 token_revoked within 10 s: {me:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_problem(&verdict, 401, "token_revoked");

    assert_eq!(
        issuer.me(&bob.tokens.access_token).await.status,
        200,
        "live token still works"
    );
    let refresh = issuer.refresh(&alice.tokens.refresh_token).await;
    assert_problem(&refresh, 401, "invalid_refresh_token");
    let renewed = issuer.refresh_ok(&bob.tokens.refresh_token).await;
    assert_refresh_token_format(&renewed.refresh_token);
}

#[tokio::test]
async fn serve_missing_master_key_with_database_exits_naming_the_setting() {
    let options = Options::new().without_env("PORTCULLIS_MASTER_KEY");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "master_key");
}

/// Every connection is made before any migration runs: with a database that answers and a
/// Redis that does not, the issuer refuses naming `redis_url`, and the fresh database is left
/// as it was, without a single table (not even sqlx's bookkeeping).
#[tokio::test]
async fn unreachable_redis_is_refused_before_any_migration() {
    let Some(sandbox) = Sandbox::new().await else {
        return;
    };
    let options = Options::new().env("PORTCULLIS_REDIS_URL", "redis://127.0.0.1:1");
    let output = sandbox.run(&["serve"], &options, RUN_TIMEOUT).await;
    assert_refused(&output, "redis_url");
    let tables = sandbox.database().await.table_count().await;
    assert_eq!(
        tables, 0,
        "migrations ran before Redis was reached: {output:?}"
    );
}

/// 0003, PostgreSQL set and Redis unset: two replicas on one database, each with its own
/// in-process blacklist. A logout on one is enforced on the other within a bounded poll (the
/// feed is polled every second), in both directions and for both a session and a subject.
#[tokio::test]
async fn logout_on_one_replica_is_enforced_on_another_without_redis() {
    let Some(first) = Issuer::start_with(without_redis()).await else {
        return;
    };
    let second = Issuer::start_in(&first.shared_sandbox(), without_redis()).await;
    for replica in [&first, &second] {
        let line = replica.start_line();
        assert!(
            line.contains("postgres") && !line.contains(POSTGRES_REDIS_BACKEND_TEXT),
            "the start line must name PostgreSQL without claiming Redis: {line:?}"
        );
    }

    let alice = first.signup().await;
    let bob = second.signup().await;
    let bob_elsewhere = first.login(&bob.email, PASSWORD).await;
    for tokens in [&alice.tokens, &bob.tokens, &bob_elsewhere] {
        for replica in [&first, &second] {
            let me = replica.me(&tokens.access_token).await;
            assert_eq!(
                me.status, 200,
                "replicas accept each other's tokens: {me:?}"
            );
        }
    }

    // A session logged out on the first replica.
    let logout = first.logout(&alice.tokens.access_token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    assert_problem(
        &first.me(&alice.tokens.access_token).await,
        401,
        "token_revoked",
    );
    let verdict = await_revoked_on(&second, &alice.tokens.access_token, "logout").await;
    assert_problem(&verdict, 401, "token_revoked");
    let refresh = second.refresh(&alice.tokens.refresh_token).await;
    assert_problem(&refresh, 401, "invalid_refresh_token");

    // A subject logged out everywhere on the second replica.
    let logout_all = second.logout_all(&bob.tokens.access_token).await;
    assert_eq!(logout_all.status, 204, "{logout_all:?}");
    for tokens in [&bob.tokens, &bob_elsewhere] {
        let verdict = await_revoked_on(&first, &tokens.access_token, "logout-all").await;
        assert_problem(&verdict, 401, "token_revoked");
        assert_problem(&second.me(&tokens.access_token).await, 401, "token_revoked");
    }

    // Nothing else was revoked.
    let carol = second.signup().await;
    assert_eq!(first.me(&carol.tokens.access_token).await.status, 200);
    let renewed = first.refresh_ok(&carol.tokens.refresh_token).await;
    assert_eq!(second.me(&renewed.access_token).await.status, 200);
}

/// PostgreSQL without Redis: the in-process blacklist of the next process is hydrated from
/// PostgreSQL, so revocations written before a crash hold after it.
#[tokio::test]
async fn revocations_survive_a_crash_without_redis() {
    check_revocations_survive_a_crash(without_redis()).await;
}

/// Introspects `token` with itself as the caller, under a `Host` that maps to no tenant
/// domain (an IP literal), so answering it needs no database: only the token, the key ring
/// and the in-process blacklist.
async fn introspect_without_database(issuer: &Issuer, token: &str) -> Response {
    let request = issuer
        .request(Method::POST, "/oauth/introspect")
        .header(reqwest::header::HOST, "[::1]")
        .bearer_auth(token)
        .form(&[("token", token)]);
    issuer.send(request).await
}

/// PostgreSQL without Redis, cut off from the database: the replica cannot learn of
/// revocations other replicas write, so after a few failed feed polls it stops trusting its
/// in-process blacklist and fails closed, instead of introspecting tokens as active for as
/// long as the outage lasts; once the database is back it rebuilds the blacklist and answers
/// again.
#[tokio::test]
async fn replica_cut_off_from_the_feed_fails_closed_then_recovers() {
    let Some(issuer) = Issuer::start_with(without_redis()).await else {
        return;
    };
    let alice = issuer.signup().await;
    let token = &alice.tokens.access_token;
    let introspect = introspect_without_database(&issuer, token).await;
    assert_eq!(introspect.body["active"], true, "{introspect:?}");

    issuer.sandbox().allow_database_connections(false).await;
    // MAX_FAILED_POLLS polls of one second each, generously bounded for a busy machine.
    let cut_off = Instant::now();
    loop {
        let answer = introspect_without_database(&issuer, token).await;
        if answer.status != 200 {
            assert!(answer.is_problem_json(), "{answer:?}");
            break;
        }
        assert_eq!(answer.body["active"], true, "{answer:?}");
        assert!(
            cut_off.elapsed() < Duration::from_secs(30),
            "still introspecting as active without the feed: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    issuer.sandbox().allow_database_connections(true).await;
    let restored = Instant::now();
    loop {
        let answer = introspect_without_database(&issuer, token).await;
        if answer.status == 200 {
            assert_eq!(answer.body["active"], true, "{answer:?}");
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(30),
            "never recovered: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Design note 0005, "Email": two replicas share one outbox, each with its own worker; rows are
/// claimed `FOR UPDATE SKIP LOCKED` with a lease, so every message goes out once (a worker
/// wakes when its own replica queues, and polls every 100 ms for the other's messages).
#[tokio::test]
async fn two_replicas_send_each_queued_message_once() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let options = || with_public_url(Options::new().smtp(&sink).rate_limits_raised());
    let Some(first) = Issuer::start_with(options()).await else {
        return;
    };
    let second = Issuer::start_in(&first.shared_sandbox(), options()).await;
    let emails: Vec<String> = (0..12)
        .map(|n| fresh_email(&format!("replica-{n}")))
        .collect();
    for (n, email) in emails.iter().enumerate() {
        let replica = if n % 2 == 0 { &first } else { &second };
        replica.register_ok(email, PASSWORD).await;
    }
    for email in &emails {
        sink.first_to(email, "Confirm your email address").await;
    }
    let mut database = first.sandbox().database().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while database.outbox().await.iter().any(|row| !row.sent) {
        assert!(Instant::now() < deadline, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let messages = sink.messages().await;
    for email in &emails {
        let copies = messages.iter().filter(|mail| mail.is_to(email)).count();
        assert_eq!(copies, 1, "{email}: {messages:#?}");
    }
}

/// `forgot` must not tell by its time whether an address has an account, and queuing a link
/// for a real account writes rows that an unknown address does not. So the answer never waits
/// for the queue: with the outbox locked, forgot for a real account still answers 202, while
/// the link waits behind the lock; once the lock goes, the mail arrives. (The times themselves
/// are measured by `scripts/bench-forgot`, see BENCHMARKS.md.)
#[tokio::test]
async fn forgot_answers_before_the_reset_link_is_queued() {
    let sink = SmtpSink::start(SinkTls::Plain).await;
    let options = Options::new().smtp(&sink).rate_limits_raised();
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let email = fresh_email("forgot-first");
    issuer.register_ok(&email, PASSWORD).await;
    sink.first_to(&email, "Confirm your email address").await;

    let mut holder = postgres(&issuer).await;
    let mut holding = holder.begin().await.unwrap();
    sqlx::query("LOCK TABLE email_outbox IN EXCLUSIVE MODE")
        .execute(&mut *holding)
        .await
        .unwrap();
    let forgot = issuer
        .request(Method::POST, "/v1/auth/password/forgot")
        .json(&json!({"email": email}));
    // A bound on a hang, not a timing check: a forgot that waited for the queue would wait
    // for as long as the lock is held.
    let accepted = tokio::time::timeout(RUN_TIMEOUT, send(forgot))
        .await
        .expect("forgot answered while the outbox was locked");
    assert_eq!(accepted.status, 202, "{accepted:?}");
    await_lock_waiters(&issuer, 1).await;
    holding.rollback().await.unwrap();
    sink.first_to(&email, "Reset your password").await;
}

/// A dependency that cannot be reached answers 503 `service_unavailable` with `Retry-After`,
/// never a 500: clients and load balancers retry a 503, and the same request works once the
/// dependency is back. The issuer reaches Redis (the rate limiter's store) through a relay
/// that the test cuts; the answer names nothing of the cause.
#[tokio::test]
async fn cut_off_redis_answers_503_with_retry_after() {
    let Some(services) = Services::available().await else {
        return;
    };
    let relay = Relay::start(services.redis_address().await).await;
    let redis_url = format!("redis://{}", relay.address());
    let options = Options::new().env("PORTCULLIS_REDIS_URL", &redis_url);
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let account = issuer.signup().await;

    relay.cut();
    let refused = tokio::time::timeout(RUN_TIMEOUT, issuer.login_raw(&account.email, PASSWORD))
        .await
        .expect("an answer while Redis is cut off");
    assert_problem(&refused, 503, "service_unavailable");
    assert_eq!(refused.header("retry-after"), Some("5"), "{refused:?}");
    assert!(
        !refused.text.contains(&relay.address().to_string()),
        "{refused:?}"
    );
}
