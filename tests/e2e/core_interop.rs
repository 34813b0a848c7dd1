//! The issuer mints with `jsonwebtoken`, `portcullis-core` verifies: every token must pass the
//! core verifier, and the revocation feed applied to a core `RevocationSet` must revoke exactly
//! what the issuer revoked (0001, "Rationale" and "Revocation feed").

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::revocation::{RevocationEntry, RevocationSet};
use portcullis_core::{Claims, Key, KeySet, TokenError, Validation, Verifier};
use serde_json::Value;

use crate::support::{Account, DEFAULT_TENANT_ID, Issuer, Options, jwt, unix_now};

fn hs256_config(kid: &str, secret: &[u8]) -> String {
    format!(
        "[[token.keys]]\nkid = \"{kid}\"\nalg = \"HS256\"\nsecret = \"{}\"\n",
        URL_SAFE_NO_PAD.encode(secret)
    )
}

fn verifier(issuer: &Issuer, keys: KeySet) -> Verifier {
    Verifier::new(keys, Validation::new(issuer.base_url(), "portcullis"))
}

/// Builds a core `RevocationSet` from the whole feed, following `has_more`.
async fn revocation_set(issuer: &Issuer) -> RevocationSet {
    let mut set = RevocationSet::new();
    let mut since: Option<String> = None;
    for _ in 0..100 {
        let page = issuer.revocations(since.as_deref()).await;
        assert_eq!(page.status, 200, "{page:?}");
        for entry in page.body["entries"].as_array().expect("entries") {
            let entry: RevocationEntry = serde_json::from_value(entry.clone())
                .unwrap_or_else(|error| panic!("core cannot read feed entry {entry}: {error}"));
            set.apply(&entry);
        }
        since = Some(page.str_field("next_cursor").to_owned());
        if page.body["has_more"] != true {
            return set;
        }
    }
    panic!("the feed kept saying has_more");
}

/// Asserts the claims core extracted match the session the issuer reports.
async fn assert_claims_match(issuer: &Issuer, account: &Account, claims: &Claims) {
    let me = issuer.me(&account.tokens.access_token).await;
    assert_eq!(me.status, 200, "{me:?}");
    let raw = account.tokens.claims();

    assert_eq!(claims.iss(), issuer.base_url());
    assert_eq!(claims.sub(), account.user_id);
    assert_eq!(claims.tid(), Some(DEFAULT_TENANT_ID));
    assert_eq!(claims.sid(), me.body["session_id"].as_str());
    assert!(claims.sid().is_some_and(|sid| sid.starts_with("ses_")));
    assert_eq!(claims.jti(), raw["jti"].as_str());
    assert!(
        claims.roles().any(|role| role == "member"),
        "{:?}",
        claims.roles()
    );
    assert!(claims.amr().eq(["pwd"]), "{:?}", claims.amr());
    assert_eq!(Some(claims.exp()), raw["exp"].as_u64());
}

#[tokio::test]
async fn core_verifier_accepts_hs256_token_and_applies_the_revocation_feed() {
    let secret = rand::random::<[u8; 32]>();
    let options = Options::new().config(&hs256_config("k1", &secret));
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let alice = issuer.signup().await;
    let token = &alice.tokens.access_token;
    assert_eq!(jwt::header(token)["kid"], "k1");
    let mut keys = KeySet::new();
    keys.insert(Key::hs256("k1", &secret).expect("HS256 key"))
        .expect("insert");
    let verifier = verifier(&issuer, keys);

    let claims = verifier
        .verify(token, unix_now())
        .expect("core accepts the issuer's token");
    assert_claims_match(&issuer, &alice, &claims).await;
    let before = revocation_set(&issuer).await;
    verifier
        .verify_unrevoked(token, unix_now(), &before)
        .expect("not revoked before logout");

    let logout = issuer.logout(token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");

    let after = revocation_set(&issuer).await;
    let verdict = verifier.verify_unrevoked(token, unix_now(), &after);
    assert!(
        matches!(verdict, Err(TokenError::Revoked)),
        "after logout: {verdict:?}"
    );
    assert_eq!(TokenError::Revoked.code(), "token_revoked");
    verifier
        .verify(token, unix_now())
        .expect("still well signed; only revoked");
}

#[tokio::test]
async fn core_verifier_applies_feed_after_logout_all_and_refresh_reuse() {
    let secret = rand::random::<[u8; 32]>();
    let options = Options::new()
        .config(&hs256_config("k1", &secret))
        .env("PORTCULLIS_TOKEN__REFRESH_GRACE_SECS", "0");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let mut keys = KeySet::new();
    keys.insert(Key::hs256("k1", &secret).expect("HS256 key"))
        .expect("insert");
    let verifier = verifier(&issuer, keys);

    // Refresh reuse revokes the family: the successor's access token too.
    let alice = issuer.signup().await;
    let rotated = issuer.refresh_ok(&alice.tokens.refresh_token).await;
    assert_eq!(
        issuer.refresh(&alice.tokens.refresh_token).await.status,
        401
    );
    // logout-all revokes every session of bob.
    let bob = issuer.signup().await;
    let bob_second = issuer.login(&bob.email, crate::support::PASSWORD).await;
    assert_eq!(
        issuer.logout_all(&bob.tokens.access_token).await.status,
        204
    );
    let carol = issuer.signup().await;

    let set = revocation_set(&issuer).await;
    let now = unix_now();
    for token in [
        &rotated.access_token,
        &bob.tokens.access_token,
        &bob_second.access_token,
    ] {
        let verdict = verifier.verify_unrevoked(token, now, &set);
        assert!(matches!(verdict, Err(TokenError::Revoked)), "{verdict:?}");
    }
    verifier
        .verify_unrevoked(&carol.tokens.access_token, now, &set)
        .expect("carol unaffected");
}

/// Fetches the JWKS, asserting it carries no private or secret key material.
async fn public_jwks(issuer: &Issuer) -> (String, Vec<Value>) {
    let jwks = issuer.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200, "{jwks:?}");
    let keys = jwks.body["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{jwks:?}"))
        .clone();
    for key in &keys {
        assert!(
            key.get("k").is_none(),
            "symmetric secret published: {jwks:?}"
        );
        assert!(key.get("d").is_none(), "private key published: {jwks:?}");
        assert_ne!(key["kty"], "oct", "symmetric key listed: {jwks:?}");
    }
    (jwks.text, keys)
}

#[tokio::test]
async fn core_verifier_accepts_eddsa_token_with_keys_from_jwks() {
    let options = Options::new().env("PORTCULLIS_TOKEN__ALGORITHM", "EdDSA");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let alice = issuer.signup().await;
    let token = &alice.tokens.access_token;
    let header = jwt::header(token);
    assert_eq!(header["alg"], "EdDSA", "{header}");

    let (jwks, keys) = public_jwks(&issuer).await;
    assert!(
        keys.iter().any(|key| key["kid"] == header["kid"]),
        "signing kid in JWKS: {jwks}"
    );
    for key in &keys {
        assert_eq!(key["kty"], "OKP", "{key}");
        assert_eq!(key["crv"], "Ed25519", "{key}");
        assert!(key["x"].is_string(), "{key}");
    }
    let keys = KeySet::from_jwks(&jwks).expect("core reads the JWKS");
    let verifier = verifier(&issuer, keys);

    let claims = verifier
        .verify(token, unix_now())
        .expect("core accepts the EdDSA token");
    assert_claims_match(&issuer, &alice, &claims).await;
}

#[tokio::test]
async fn core_verifier_accepts_token_of_configured_eddsa_key() {
    let seed = rand::random::<[u8; 32]>();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let config = format!(
        "[[token.keys]]\nkid = \"e1\"\nalg = \"EdDSA\"\nprivate_key = \"{}\"\n",
        URL_SAFE_NO_PAD.encode(seed)
    );
    let Some(issuer) = Issuer::start_with(Options::new().config(&config)).await else {
        return;
    };
    let alice = issuer.signup().await;

    let (_, keys) = public_jwks(&issuer).await;
    let published = keys
        .iter()
        .find(|key| key["kid"] == "e1")
        .expect("e1 in the JWKS");
    assert_eq!(
        published["x"],
        URL_SAFE_NO_PAD.encode(public),
        "JWKS x is the public key"
    );
    let mut key_set = KeySet::new();
    key_set
        .insert(Key::ed25519("e1", &public).expect("Ed25519 key"))
        .expect("insert");

    let claims = verifier(&issuer, key_set)
        .verify(&alice.tokens.access_token, unix_now())
        .expect("core accepts the token of the configured key");
    assert_claims_match(&issuer, &alice, &claims).await;
}

#[tokio::test]
async fn jwks_with_hs256_keys_publishes_no_secret_material() {
    let secret = rand::random::<[u8; 32]>();
    let options = Options::new().config(&hs256_config("k1", &secret));
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };

    let (jwks, _) = public_jwks(&issuer).await;

    assert!(
        !jwks.contains(&URL_SAFE_NO_PAD.encode(secret)),
        "the HS256 secret leaked: {jwks}"
    );
    KeySet::from_jwks(&jwks).expect("core reads a JWKS without oct keys");
}

#[tokio::test]
async fn jwks_with_generated_hs256_key_publishes_no_secret_material() {
    let Some(issuer) = Issuer::start().await else {
        return;
    };
    let alice = issuer.signup().await;
    assert_eq!(jwt::header(&alice.tokens.access_token)["alg"], "HS256");

    let (jwks, keys) = public_jwks(&issuer).await;

    let kid = jwt::header(&alice.tokens.access_token)["kid"].clone();
    assert!(
        keys.iter().all(|key| key["kid"] != kid),
        "the HS256 key is listed: {jwks}"
    );
}
