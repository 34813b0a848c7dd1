//! Key rotation at the issuer (0004, step 3: "the issuer's JWKS fetched and cached by
//! `kid`"): a token signed with a key the edge has not seen yet makes it fetch the JWKS again.

use std::time::{Duration, Instant};

use crate::harness::{Keys, Setup, Signing, Stack, assert_passed};
use crate::support::{Issuer, Options, PASSWORD};

/// How long the edge may take to accept the new key: its refetch throttle (10 s, 0004
/// "Decisions") and then some; a liveness bound, not a check.
const LIVENESS: Duration = Duration::from_secs(30);

/// A key rotation at the issuer: after a restart with a new active EdDSA key, tokens carry a
/// `kid` the edge's cached JWKS lacks; the edge must fetch the JWKS again and accept them
/// (within its refetch throttle), while tokens of the retired key keep passing.
#[tokio::test]
async fn a_new_signing_key_at_the_issuer_is_picked_up() {
    let Some(stack) = Stack::start(Setup::new()).await else {
        return;
    };
    let old = stack.login().await;
    stack.assert_token_passes(&old).await;

    let Stack {
        edge, issuer, keys, ..
    } = stack;
    let sandbox = issuer.shared_sandbox();
    let address = issuer.base_url().trim_start_matches("http://").to_owned();
    let email = issuer.signup().await.email;
    issuer.crash();

    let rotated = Keys::random(Signing::EdDsa);
    let config = format!(
        "{}\n{}",
        rotated.issuer_toml(),
        keys.issuer_toml()
            .replace("active = true", "active = false")
    );
    let options = Options::new()
        .config(&config)
        .env("PORTCULLIS_LISTEN", &address);
    let issuer = Issuer::start_in(&sandbox, options).await;
    let new = issuer.login(&email, PASSWORD).await;
    assert_eq!(
        crate::support::jwt::header(&new.access_token)["kid"],
        rotated.ed_kid.as_str()
    );

    let started = Instant::now();
    let mut interim = Vec::new();
    loop {
        let response = edge.get_bearer("/api/orders", &new.access_token).await;
        if response.status == 200 {
            break;
        }
        interim.push(response.status);
        assert!(
            started.elapsed() < LIVENESS,
            "a token of the new key still refused after {LIVENESS:?}: {response:?}\n{}",
            edge.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "new key accepted after {} ms (refused meanwhile: {interim:?})",
        started.elapsed().as_millis()
    );
    assert_passed(&edge.get_bearer("/api/orders", &old.access_token).await);
}
