//! Known-answer vectors from the RFCs, read from the shared `vectors/public.json`.
//!
//! The file lives in the `shared` folder beside the repository checkout, so it is resolved
//! relative to this crate's manifest (`core/../../shared`), wherever the repository is cloned.

// Test code: an unexpected value should fail the test loudly, so unwrapping, indexing and
// panicking are fine here (as `clippy.toml` allows inside `#[test]` functions).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use portcullis_core::jws::CompactJws;
use portcullis_core::{Key, KeyError, KeySet, TokenError, Validation, Verifier};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/vectors/public.json"
);

fn vector(id: &str) -> Value {
    let text = std::fs::read_to_string(VECTORS).expect("shared/vectors/public.json is readable");
    let all: Value = serde_json::from_str(&text).expect("vectors are JSON");
    all["vectors"]
        .as_array()
        .expect("a vectors array")
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("vector {id} is present"))
        .clone()
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string"))
}

fn hex(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 2, 0);
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rfc7515_a1_hs256_signature_verifies_at_jws_layer() {
    let v = vector("jws-hs256-rfc7515-a1");
    let key_bytes = hex(text(&v, "key_hex"));
    assert_eq!(
        key_bytes,
        URL_SAFE_NO_PAD.decode(text(&v["jwk"], "k")).unwrap()
    );
    let key = Key::hs256("a1", &key_bytes).unwrap();

    let jws = CompactJws::parse(text(&v, "compact")).unwrap();
    assert_eq!(jws.signing_input(), text(&v, "signing_input"));
    assert_eq!(jws.signature(), hex(text(&v, "signature_hex")));
    let payload = jws.verify(&key).unwrap();
    assert_eq!(payload, text(&v, "payload_utf8").as_bytes());
}

#[test]
fn rfc7515_a1_with_another_key_is_bad_signature() {
    let v = vector("jws-hs256-rfc7515-a1");
    let mut key_bytes = hex(text(&v, "key_hex"));
    key_bytes[0] ^= 1;
    let jws = CompactJws::parse(text(&v, "compact")).unwrap();
    let key = Key::hs256("a1", &key_bytes).unwrap();
    assert_eq!(jws.verify(&key), Err(TokenError::BadSignature));
}

#[test]
fn rfc7515_a1_as_jwt_is_refused_for_missing_kid() {
    // The vector is a valid signature but not a Portcullis access token: it has no `kid` (keys
    // are only ever chosen by `kid`), no `aud` and no `sub`, and `typ` is "JWT". Even with the
    // clock pinned before `exp` and issuer and `typ` configured to match, the verifier must
    // refuse it, at the first rule it breaks: the missing `kid`.
    let v = vector("jws-hs256-rfc7515-a1");
    let mut keys = KeySet::new();
    keys.insert(Key::hs256("a1", &hex(text(&v, "key_hex"))).unwrap())
        .unwrap();
    let validation = Validation::new("joe", "any").with_typ(Some("JWT"));
    let verifier = Verifier::new(keys, validation);
    let before_exp = 1_300_819_000;
    assert_eq!(
        verifier.verify(text(&v, "compact"), before_exp),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn rfc7515_a1_oct_jwk_is_refused_in_a_jwks() {
    let v = vector("jws-hs256-rfc7515-a1");
    let jwks = serde_json::json!({"keys": [v["jwk"]]}).to_string();
    assert_eq!(
        KeySet::from_jwks(&jwks).err(),
        Some(KeyError::UnsupportedKey)
    );
}

#[test]
fn rfc7519_6_1_alg_none_is_refused_everywhere() {
    let v = vector("jwt-unsecured-rfc7519-6.1");
    let token = text(&v, "compact");
    let hs = Key::hs256("k1", &[9u8; 32]).unwrap();
    let ed = Key::ed25519(
        "k2",
        &hex(text(
            &vector("jws-eddsa-ed25519-rfc8037-a4"),
            "public_key_hex",
        )),
    )
    .unwrap();
    let jws = CompactJws::parse(token).unwrap();
    assert!(jws.signature().is_empty());
    assert_eq!(jws.verify(&hs), Err(TokenError::UnsupportedAlgorithm));
    assert_eq!(jws.verify(&ed), Err(TokenError::UnsupportedAlgorithm));

    let mut keys = KeySet::new();
    keys.insert(hs).unwrap();
    keys.insert(ed).unwrap();
    let verifier = Verifier::new(keys, Validation::new("joe", "api").with_typ(None));
    assert_eq!(
        verifier.verify(token, 1_300_819_000),
        Err(TokenError::UnsupportedAlgorithm)
    );
}

#[test]
fn rfc8037_a4_eddsa_signature_verifies_at_jws_layer() {
    let v = vector("jws-eddsa-ed25519-rfc8037-a4");
    let public = hex(text(&v, "public_key_hex"));
    assert_eq!(
        public,
        URL_SAFE_NO_PAD.decode(text(&v["public_jwk"], "x")).unwrap()
    );
    let jws = CompactJws::parse(text(&v, "compact")).unwrap();
    assert_eq!(jws.signature(), hex(text(&v, "signature_hex")));
    let payload = jws.verify(&Key::ed25519("a4", &public).unwrap()).unwrap();
    assert_eq!(payload, text(&v, "payload_utf8").as_bytes());
}

#[test]
fn rfc8037_a4_signing_reproduces_the_signature() {
    let v = vector("jws-eddsa-ed25519-rfc8037-a4");
    let seed: [u8; 32] = hex(text(&v, "private_seed_hex")).try_into().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let signature = signing.sign(text(&v, "signing_input").as_bytes());
    assert_eq!(
        signature.to_bytes().to_vec(),
        hex(text(&v, "signature_hex"))
    );
}

#[test]
fn rfc8037_a4_public_jwk_loads_and_private_jwk_is_refused() {
    let v = vector("jws-eddsa-ed25519-rfc8037-a4");
    let mut public = v["public_jwk"].clone();
    public["kid"] = "a4".into();
    let keys = KeySet::from_jwks(&serde_json::json!({"keys": [public]}).to_string()).unwrap();
    let jws = CompactJws::parse(text(&v, "compact")).unwrap();
    assert!(jws.verify(keys.get("a4").unwrap()).is_ok());

    let mut private = v["private_jwk"].clone();
    private["kid"] = "a4".into();
    let jwks = serde_json::json!({"keys": [private]}).to_string();
    assert_eq!(
        KeySet::from_jwks(&jwks).err(),
        Some(KeyError::PrivateKeyMaterial)
    );
}

#[test]
fn rfc8037_a4_as_jwt_is_refused() {
    let v = vector("jws-eddsa-ed25519-rfc8037-a4");
    let public = hex(text(&v, "public_key_hex"));
    let mut keys = KeySet::new();
    keys.insert(Key::ed25519("a4", &public).unwrap()).unwrap();
    let verifier = Verifier::new(keys, Validation::new("joe", "api").with_typ(None));
    // As published: no `kid`, so no key can be chosen.
    assert_eq!(
        verifier.verify(text(&v, "compact"), 0),
        Err(TokenError::UnknownKey)
    );

    // Re-signed with the vector's private key and a `kid`: the signature is now good, and the
    // token is refused because its payload is not a JSON claims object.
    let seed: [u8; 32] = hex(text(&v, "private_seed_hex")).try_into().unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"a4"}"#);
    let signing_input = format!("{header}.{}", text(&v, "payload_b64url"));
    let signature = URL_SAFE_NO_PAD.encode(signing.sign(signing_input.as_bytes()).to_bytes());
    let token = format!("{signing_input}.{signature}");
    assert_eq!(verifier.verify(&token, 0), Err(TokenError::Malformed));
}

#[test]
fn rfc4231_short_hmac_keys_are_refused_as_hs256_secrets() {
    let v = vector("hmac-sha256-rfc4231");
    for case in v["cases"].as_array().unwrap() {
        let key = hex(text(case, "key_hex"));
        let result = Key::hs256("k", &key);
        if key.len() < 32 {
            assert_eq!(
                result.err(),
                Some(KeyError::SecretTooShort),
                "case {}",
                case["test_case"]
            );
        } else {
            assert!(result.is_ok(), "case {}", case["test_case"]);
        }
    }
}
