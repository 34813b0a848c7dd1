//! Token validation cost: `portcullis-core` against `jsonwebtoken` 10 doing the same checks,
//! and against the bare signature primitive over the same signing input (the floor).
//!
//! Run: `cargo bench -p portcullis-core --bench validate -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac as _};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use portcullis_core::{Key, KeySet, Validation, Verifier};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

const ISS: &str = "https://auth.portcullis.test";
const AUD: &str = "api";
/// `jsonwebtoken` reads the real clock, so the token must be valid now and for decades.
const IAT: u64 = 1_767_225_600;
const EXP: u64 = 4_000_000_000;
const NOW: u64 = IAT + 10;
const HS_SECRET: &[u8; 32] = b"portcullis-bench-secret-32-byte!";
const ED_SEED: [u8; 32] = [0x17; 32];

/// The claims the issuer puts in an access token.
fn claims() -> serde_json::Value {
    json!({
        "iss": ISS,
        "sub": "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "aud": AUD,
        "exp": EXP,
        "nbf": IAT,
        "iat": IAT,
        "jti": "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
        "tid": "tnt_00000000000000000000000000000001",
        "sid": "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "roles": ["admin"],
        "perms": ["users:read", "users:write", "billing:*"],
        "amr": ["pwd", "otp"],
    })
}

/// The same owned claims `portcullis_core::Claims` returns, for `jsonwebtoken` to fill.
#[derive(Deserialize)]
#[allow(dead_code)]
struct JwtClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: u64,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    tid: Option<String>,
    sid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    perms: Vec<String>,
    #[serde(default)]
    amr: Vec<String>,
}

fn header(alg: jsonwebtoken::Algorithm, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    header.typ = Some("at+jwt".into());
    header
}

fn ed_pkcs8() -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&ED_SEED);
    der
}

/// `jsonwebtoken` configured as close to the core's rules as it allows (it cannot check
/// `typ` or refuse duplicate members).
fn jwt_validation(alg: jsonwebtoken::Algorithm) -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 30;
    validation.validate_nbf = true;
    validation
}

fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    (input, URL_SAFE_NO_PAD.decode(signature).unwrap())
}

fn hs256(c: &mut Criterion) {
    let token = jsonwebtoken::encode(
        &header(jsonwebtoken::Algorithm::HS256, "hs-1"),
        &claims(),
        &EncodingKey::from_secret(HS_SECRET),
    )
    .unwrap();
    let mut keys = KeySet::new();
    keys.insert(Key::hs256("hs-1", HS_SECRET).unwrap()).unwrap();
    let verifier = Verifier::new(keys, Validation::new(ISS, AUD));
    verifier
        .verify(&token, NOW)
        .expect("core accepts the bench token");
    let jwt_key = DecodingKey::from_secret(HS_SECRET);
    let jwt_validation = jwt_validation(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<JwtClaims>(&token, &jwt_key, &jwt_validation).unwrap();
    let (input, signature) = split(&token);
    let prekeyed = Hmac::<Sha256>::new_from_slice(HS_SECRET).unwrap();

    let mut group = c.benchmark_group(format!("hs256/{}B", token.len()));
    group.bench_function("core_verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), black_box(NOW)).unwrap())
    });
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<JwtClaims>(black_box(&token), &jwt_key, &jwt_validation).unwrap()
        })
    });
    group.bench_function("bare_hmac_verify", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(HS_SECRET)).unwrap();
            mac.update(black_box(input.as_bytes()));
            mac.verify_slice(black_box(&signature)).unwrap();
        })
    });
    group.bench_function("bare_hmac_verify_prekeyed", |b| {
        b.iter(|| {
            let mut mac = black_box(&prekeyed).clone();
            mac.update(black_box(input.as_bytes()));
            mac.verify_slice(black_box(&signature)).unwrap();
        })
    });
    group.finish();
}

fn eddsa(c: &mut Criterion) {
    let token = jsonwebtoken::encode(
        &header(jsonwebtoken::Algorithm::EdDSA, "ed-1"),
        &claims(),
        &EncodingKey::from_ed_der(&ed_pkcs8()),
    )
    .unwrap();
    let public: VerifyingKey = SigningKey::from_bytes(&ED_SEED).verifying_key();
    let mut keys = KeySet::new();
    keys.insert(Key::ed25519("ed-1", public.as_bytes()).unwrap())
        .unwrap();
    let verifier = Verifier::new(keys, Validation::new(ISS, AUD));
    verifier
        .verify(&token, NOW)
        .expect("core accepts the bench token");
    let jwt_key =
        DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(public.as_bytes())).unwrap();
    let jwt_validation = jwt_validation(jsonwebtoken::Algorithm::EdDSA);
    jsonwebtoken::decode::<JwtClaims>(&token, &jwt_key, &jwt_validation).unwrap();
    let (input, signature) = split(&token);
    let signature = Signature::from_slice(&signature).unwrap();

    let mut group = c.benchmark_group(format!("eddsa/{}B", token.len()));
    group.bench_function("core_verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), black_box(NOW)).unwrap())
    });
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<JwtClaims>(black_box(&token), &jwt_key, &jwt_validation).unwrap()
        })
    });
    group.bench_function("bare_verify_strict", |b| {
        b.iter(|| {
            black_box(&public)
                .verify_strict(black_box(input.as_bytes()), black_box(&signature))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, hs256, eddsa);
criterion_main!(benches);
