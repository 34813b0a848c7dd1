//! Durability across a crash (issue #3, 0003 "In-process blacklist"): what the issuer answered
//! before it was killed with SIGKILL holds for the next process on the same store. Every kind of
//! revocation (a token's `jti`, a session, a subject) is enforced after the restart, with the
//! in-process blacklist rebuilt from the durable store before the issuer answers.

use std::os::unix::process::ExitStatusExt as _;

use crate::support::{Issuer, Options, PASSWORD, assert_problem, jwt};

/// The `iss` of every issuer of a test: each process listens on its own port, and tokens issued
/// by one must verify on the next, as behind one public name in production.
pub(crate) const PUBLIC_URL: &str = "http://portcullis.e2e.invalid";

const SIGKILL: i32 = 9;

/// `options` with the fixed public URL (see [`PUBLIC_URL`]).
pub(crate) fn with_public_url(options: Options) -> Options {
    options.env("PORTCULLIS_PUBLIC_URL", PUBLIC_URL)
}

/// Writes one revocation of each kind, kills the issuer with SIGKILL right after the last
/// answer, starts a new issuer with `options` on the same store, and checks every revocation is
/// enforced at once (no polling: the blacklist is rebuilt before the issuer reports ready),
/// while untouched sessions, refresh rotation and logins keep working.
pub(crate) async fn check_revocations_survive_a_crash(options: Options) {
    let options = with_public_url(options);
    let Some(first) = Issuer::start_with(options.clone()).await else {
        return;
    };

    // alice: one session logged out (session kind), one kept.
    let alice = first.signup().await;
    let kept = first.login(&alice.email, PASSWORD).await;
    // bob: logs out everywhere (subject kind).
    let bob = first.signup().await;
    let bob_second = first.login(&bob.email, PASSWORD).await;
    // carol: one access token revoked through RFC 7009 (jti kind).
    let carol = first.signup().await;

    let logout = first
        .logout(
            &alice.tokens.access_token,
            Some(&alice.tokens.refresh_token),
        )
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let logout_all = first.logout_all(&bob.tokens.access_token).await;
    assert_eq!(logout_all.status, 204, "{logout_all:?}");
    let revoke = first
        .revoke(&carol.tokens.access_token, Some("access_token"))
        .await;
    assert_eq!(revoke.status, 200, "{revoke:?}");
    let revoked = [
        &alice.tokens.access_token,
        &bob.tokens.access_token,
        &bob_second.access_token,
        &carol.tokens.access_token,
    ];
    for token in revoked {
        assert_problem(&first.me(token).await, 401, "token_revoked");
    }

    let sandbox = first.shared_sandbox();
    let status = first.crash();
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "not killed by SIGKILL: {status}"
    );

    let second = Issuer::start_in(&sandbox, options).await;
    for token in revoked {
        let me = second.me(token).await;
        assert_problem(&me, 401, "token_revoked");
    }
    for refresh_token in [
        &alice.tokens.refresh_token,
        &bob.tokens.refresh_token,
        &bob_second.refresh_token,
    ] {
        let refresh = second.refresh(refresh_token).await;
        assert_problem(&refresh, 401, "invalid_refresh_token");
    }

    // What was not revoked still works: the kept session's access token, its refresh token
    // (issued before the crash) rotates, and the users can log in again.
    assert_eq!(second.me(&kept.access_token).await.status, 200);
    let rotated = second.refresh_ok(&kept.refresh_token).await;
    assert_ne!(rotated.refresh_token, kept.refresh_token, "rotation");
    assert_eq!(
        rotated.claims()["sid"],
        kept.claims()["sid"],
        "same session"
    );
    assert_eq!(second.me(&rotated.access_token).await.status, 200);
    let carol_renewed = second.refresh_ok(&carol.tokens.refresh_token).await;
    assert_eq!(second.me(&carol_renewed.access_token).await.status, 200);
    for email in [&alice.email, &bob.email] {
        let again = second.login(email, PASSWORD).await;
        assert_eq!(second.me(&again.access_token).await.status, 200, "{email}");
    }
}

#[tokio::test]
async fn revocations_written_before_a_crash_are_enforced_after_restart() {
    check_revocations_survive_a_crash(Options::new()).await;
}

/// A registration answered before the crash is there after it, and the pre-crash access token
/// of the new user verifies on the next process (the signing keys survived too).
#[tokio::test]
async fn registration_before_a_crash_survives_restart() {
    let options = with_public_url(Options::new());
    let Some(first) = Issuer::start_with(options.clone()).await else {
        return;
    };
    let email = format!("crash-{}@example.com", uuid::Uuid::new_v4().simple());
    let user_id = first.register_ok(&email, PASSWORD).await;
    let tokens = first.login(&email, PASSWORD).await;
    let sandbox = first.shared_sandbox();
    first.crash();

    let second = Issuer::start_in(&sandbox, options).await;
    let me = second.me(&tokens.access_token).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["user_id"], user_id.as_str(), "{me:?}");
    let login = second.login(&email, PASSWORD).await;
    assert_eq!(login.claims()["sub"], user_id.as_str());
}

/// Changing `token.algorithm` is not ignored once a key is stored: the next start generates a
/// key of the new algorithm and signs with it, while tokens of the retired key keep verifying
/// until they expire; a start with the same setting generates nothing.
#[tokio::test]
async fn algorithm_change_rotates_the_signing_key_and_retired_tokens_still_verify() {
    let options = with_public_url(Options::new());
    let Some(first) = Issuer::start_with(options.clone()).await else {
        return;
    };
    let alice = first.signup().await;
    let old_header = jwt::header(&alice.tokens.access_token);
    assert_eq!(old_header["alg"], "HS256", "{old_header}");
    let sandbox = first.shared_sandbox();
    assert!(first.stop().await.success());

    let eddsa = options.env("PORTCULLIS_TOKEN__ALGORITHM", "EdDSA");
    let second = Issuer::start_in(&sandbox, eddsa.clone()).await;
    let renewed = second.login(&alice.email, PASSWORD).await;
    let new_header = jwt::header(&renewed.access_token);
    assert_eq!(new_header["alg"], "EdDSA", "{new_header}");
    assert_ne!(new_header["kid"], old_header["kid"], "a new key");
    let jwks = second.get("/.well-known/jwks.json").await;
    let kids: Vec<_> = jwks.body["keys"]
        .as_array()
        .expect("a JWKS")
        .iter()
        .map(|key| key["kid"].clone())
        .collect();
    assert_eq!(kids, [new_header["kid"].clone()], "{jwks:?}");
    let me = second.me(&alice.tokens.access_token).await;
    assert_eq!(me.status, 200, "a retired key still verifies: {me:?}");
    assert!(second.stop().await.success());

    let third = Issuer::start_in(&sandbox, eddsa).await;
    let again = third.login(&alice.email, PASSWORD).await;
    assert_eq!(jwt::header(&again.access_token)["kid"], new_header["kid"]);
    assert_eq!(third.me(&renewed.access_token).await.status, 200);
    assert_eq!(third.me(&alice.tokens.access_token).await.status, 200);
}
