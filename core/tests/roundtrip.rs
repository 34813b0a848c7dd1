//! Tokens minted by an independent library (`jsonwebtoken`, as the issuer does) must verify
//! here, and every tampering must be refused with the right error.

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
use hmac::Mac as _;
use jsonwebtoken::{EncodingKey, Header};
use portcullis_core::revocation::{RevocationEntry, RevocationKind, RevocationSet};
use portcullis_core::{Claim, Claims, Key, KeySet, TokenError, Validation, Verifier};
use serde_json::{Value, json};

const ISS: &str = "https://auth.portcullis.test";
const AUD: &str = "api";
const NOW: u64 = 1_767_225_600;
const HS_KID: &str = "hs-1";
const HS_SECRET: &[u8; 32] = b"portcullis-test-secret-32-bytes!";
const HS_OTHER_KID: &str = "hs-2";
const HS_OTHER_SECRET: &[u8; 32] = b"another-portcullis-test-secret-!";
const ED_KID: &str = "ed-1";
const ED_SEED: [u8; 32] = [0x42; 32];

/// PKCS#8 v1 wrapper of an Ed25519 seed (RFC 8410), as `jsonwebtoken` expects.
fn ed_pkcs8() -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&ED_SEED);
    der
}

fn ed_public() -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&ED_SEED)
        .verifying_key()
        .to_bytes()
}

fn keys() -> KeySet {
    let mut keys = KeySet::new();
    keys.insert(Key::hs256(HS_KID, HS_SECRET).unwrap()).unwrap();
    keys.insert(Key::hs256(HS_OTHER_KID, HS_OTHER_SECRET).unwrap())
        .unwrap();
    keys.insert(Key::ed25519(ED_KID, &ed_public()).unwrap())
        .unwrap();
    keys
}

fn verifier() -> Verifier {
    Verifier::new(keys(), Validation::new(ISS, AUD))
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "sub": "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "aud": AUD,
        "exp": NOW + 900,
        "nbf": NOW - 5,
        "iat": NOW - 5,
        "jti": "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
        "tid": "tnt_00000000000000000000000000000001",
        "sid": "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "roles": ["admin"],
        "perms": ["users:read", "users:write"],
        "amr": ["pwd"],
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn header(alg: jsonwebtoken::Algorithm, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    header.typ = Some("at+jwt".into());
    header
}

/// Mints with `jsonwebtoken`, like the issuer.
fn mint_hs(claims: &Value) -> String {
    let header = header(jsonwebtoken::Algorithm::HS256, HS_KID);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(HS_SECRET)).unwrap()
}

fn mint_ed(claims: &Value) -> String {
    let header = header(jsonwebtoken::Algorithm::EdDSA, ED_KID);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&ed_pkcs8())).unwrap()
}

/// Signs exact header and payload text, for shapes no JWT library will produce.
fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    sign_input(&input, secret)
}

fn sign_input(input: &str, secret: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn sign_raw_ed(header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = ed25519_dalek::SigningKey::from_bytes(&ED_SEED).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

const HS_HEADER: &str = r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt"}"#;

fn raw_claims(body: &str) -> String {
    sign_raw(HS_HEADER, body, HS_SECRET)
}

fn verify(token: &str) -> Result<Claims, TokenError> {
    verifier().verify(token, NOW)
}

fn segments(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    (parts[0].into(), parts[1].into(), parts[2].into())
}

#[test]
fn hs256_minted_token_verifies_with_all_claims() {
    let claims = verify(&mint_hs(&claims())).unwrap();
    assert_eq!(claims.iss(), ISS);
    assert!(claims.aud().eq([AUD]));
    assert_eq!(serde_json::to_value(&claims).unwrap()["aud"], AUD);
    assert_eq!(claims.exp(), NOW + 900);
    assert_eq!(claims.iat(), Some(NOW - 5));
    assert_eq!(claims.tid(), Some("tnt_00000000000000000000000000000001"));
    assert!(claims.perms().eq(["users:read", "users:write"]));
    assert!(claims.amr().eq(["pwd"]));
}

#[test]
fn eddsa_minted_token_verifies() {
    let claims = verify(&mint_ed(&claims())).unwrap();
    assert!(claims.roles().eq(["admin"]));
}

#[test]
fn claims_serialize_then_mint_round_trips() {
    let first = verify(&mint_ed(&claims())).unwrap();
    let again = verify(&mint_hs(&serde_json::to_value(&first).unwrap())).unwrap();
    assert_eq!(first, again);
}

#[test]
fn minimal_claims_and_unknown_claims_verify() {
    let minimal = json!({"iss": ISS, "sub": "usr_1", "aud": [AUD], "exp": NOW + 1,
                         "scope": "x", "ext": {"nested": [1, {"a": true}]}});
    let claims = verify(&mint_hs(&minimal)).unwrap();
    assert!(claims.aud().eq([AUD]));
    assert_eq!(serde_json::to_value(&claims).unwrap()["aud"], json!([AUD]));
    assert!(claims.roles().len() == 0 && claims.jti().is_none() && claims.iat().is_none());
}

#[test]
fn alg_swapped_to_other_key_type_is_mismatch() {
    let ed_header = r#"{"alg":"EdDSA","kid":"hs-1","typ":"at+jwt"}"#;
    let token = sign_raw_ed(ed_header, &claims().to_string());
    assert_eq!(verify(&token), Err(TokenError::AlgorithmMismatch));
    let hs_header = r#"{"alg":"HS256","kid":"ed-1","typ":"at+jwt"}"#;
    let token = sign_raw(hs_header, &claims().to_string(), HS_SECRET);
    assert_eq!(verify(&token), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn hmac_signed_with_ed25519_public_key_is_refused() {
    // The classic confusion attack: the public key used as an HMAC secret.
    let hs_header = r#"{"alg":"HS256","kid":"ed-1","typ":"at+jwt"}"#;
    let token = sign_raw(hs_header, &claims().to_string(), &ed_public());
    assert_eq!(verify(&token), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn unsupported_algorithms_are_refused_before_key_lookup() {
    for alg in [
        "none", "None", "NONE", "nonE", "HS384", "HS512", "RS256", "ES256", "hs256", "eddsa",
    ] {
        let header = format!(r#"{{"alg":"{alg}","kid":"hs-1","typ":"at+jwt"}}"#);
        let token = sign_raw(&header, &claims().to_string(), HS_SECRET);
        assert_eq!(
            verify(&token),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
        let (h, p, _) = segments(&token);
        assert_eq!(
            verify(&format!("{h}.{p}.")),
            Err(TokenError::UnsupportedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn kid_swapped_missing_or_unknown_is_refused() {
    let (_, payload, signature) = segments(&mint_hs(&claims()));
    let swapped = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"hs-2","typ":"at+jwt"}"#);
    assert_eq!(
        verify(&format!("{swapped}.{payload}.{signature}")),
        Err(TokenError::BadSignature)
    );
    let missing = sign_raw(
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        &claims().to_string(),
        HS_SECRET,
    );
    assert_eq!(verify(&missing), Err(TokenError::UnknownKey));
    let unknown = sign_raw(
        r#"{"alg":"HS256","kid":"hs-9","typ":"at+jwt"}"#,
        &claims().to_string(),
        HS_SECRET,
    );
    assert_eq!(verify(&unknown), Err(TokenError::UnknownKey));
}

#[test]
fn signed_with_other_secret_is_bad_signature() {
    let token = sign_raw(HS_HEADER, &claims().to_string(), HS_OTHER_SECRET);
    assert_eq!(verify(&token), Err(TokenError::BadSignature));
}

#[test]
fn payload_byte_flips_are_bad_signature() {
    for token in [mint_hs(&claims()), mint_ed(&claims())] {
        let (header, payload, signature) = segments(&token);
        let bytes = URL_SAFE_NO_PAD.decode(&payload).unwrap();
        for index in 0..bytes.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut flipped = bytes.clone();
                flipped[index] ^= bit;
                let tampered = format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(&flipped));
                assert_eq!(verify(&tampered), Err(TokenError::BadSignature));
            }
        }
    }
}

#[test]
fn header_byte_flips_are_refused() {
    for token in [mint_hs(&claims()), mint_ed(&claims())] {
        let (header, payload, signature) = segments(&token);
        let bytes = URL_SAFE_NO_PAD.decode(&header).unwrap();
        for index in 0..bytes.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut flipped = bytes.clone();
                flipped[index] ^= bit;
                let tampered =
                    format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode(&flipped));
                assert!(
                    verify(&tampered).is_err(),
                    "{}",
                    String::from_utf8_lossy(&flipped)
                );
            }
        }
    }
}

#[test]
fn signature_bit_flips_are_bad_signature() {
    for token in [mint_hs(&claims()), mint_ed(&claims())] {
        let (header, payload, signature) = segments(&token);
        let bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[index] ^= 1 << bit;
                let tampered = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&flipped));
                assert_eq!(verify(&tampered), Err(TokenError::BadSignature));
            }
        }
        let truncated = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&bytes[1..]));
        assert_eq!(verify(&truncated), Err(TokenError::BadSignature));
    }
}

#[test]
fn eddsa_non_canonical_s_is_bad_signature() {
    // S + L (the group order) verifies under lax checks in some libraries; never here.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let (header, payload, signature) = segments(&mint_ed(&claims()));
    let mut bytes = URL_SAFE_NO_PAD.decode(&signature).unwrap();
    let mut carry = 0u16;
    for (s, l) in bytes[32..].iter_mut().zip(L) {
        let sum = u16::from(*s) + u16::from(l) + carry;
        *s = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let tampered = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    assert_eq!(verify(&tampered), Err(TokenError::BadSignature));
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    assert_eq!(
        verify(&mint_hs(&with(claims(), "iss", json!("https://evil.test")))),
        Err(TokenError::InvalidIssuer)
    );
    assert_eq!(
        verify(&mint_hs(&with(claims(), "iss", json!(format!("{ISS}/"))))),
        Err(TokenError::InvalidIssuer)
    );
    assert_eq!(
        verify(&mint_hs(&with(claims(), "aud", json!("API")))),
        Err(TokenError::InvalidAudience)
    );
    assert_eq!(
        verify(&mint_hs(&with(claims(), "aud", json!(["web", "admin"])))),
        Err(TokenError::InvalidAudience)
    );
    assert!(verify(&mint_hs(&with(claims(), "aud", json!(["web", AUD])))).is_ok());
}

#[test]
fn wrong_or_missing_typ_is_invalid_type() {
    let body = claims().to_string();
    for (header, expected) in [
        (
            r#"{"alg":"HS256","kid":"hs-1","typ":"JWT"}"#,
            Err(TokenError::InvalidType),
        ),
        (
            r#"{"alg":"HS256","kid":"hs-1"}"#,
            Err(TokenError::InvalidType),
        ),
        (
            r#"{"alg":"HS256","kid":"hs-1","typ":"id+jwt"}"#,
            Err(TokenError::InvalidType),
        ),
        (
            r#"{"alg":"HS256","kid":"hs-1","typ":"application/at+jwt"}"#,
            Ok(()),
        ),
        (r#"{"alg":"HS256","kid":"hs-1","typ":"AT+JWT"}"#, Ok(())),
    ] {
        assert_eq!(
            verify(&sign_raw(header, &body, HS_SECRET)).map(|_| ()),
            expected,
            "{header}"
        );
    }
    let any = Verifier::new(keys(), Validation::new(ISS, AUD).with_typ(None));
    let untyped = sign_raw(r#"{"alg":"HS256","kid":"hs-1"}"#, &body, HS_SECRET);
    assert!(any.verify(&untyped, NOW).is_ok());
}

#[test]
fn expiry_and_leeway_edges() {
    let token = mint_hs(&with(claims(), "exp", json!(NOW)));
    let v = verifier();
    assert!(v.verify(&token, NOW + 29).is_ok());
    assert_eq!(v.verify(&token, NOW + 30), Err(TokenError::Expired));
    let strict = Verifier::new(keys(), Validation::new(ISS, AUD).with_leeway(0).unwrap());
    assert_eq!(strict.verify(&token, NOW), Err(TokenError::Expired));
    assert!(strict.verify(&token, NOW - 1).is_ok());
    let widest = Verifier::new(keys(), Validation::new(ISS, AUD).with_leeway(60).unwrap());
    assert!(widest.verify(&token, NOW + 59).is_ok());
    assert_eq!(widest.verify(&token, NOW + 60), Err(TokenError::Expired));
}

#[test]
fn not_before_and_issued_at_in_future_are_not_yet_valid() {
    let early = mint_hs(&with(claims(), "nbf", json!(NOW + 30)));
    assert!(verify(&early).is_ok());
    let too_early = mint_hs(&with(claims(), "nbf", json!(NOW + 31)));
    assert_eq!(verify(&too_early), Err(TokenError::NotYetValid));
    let future = mint_hs(&with(claims(), "iat", json!(NOW + 31)));
    assert_eq!(verify(&future), Err(TokenError::NotYetValid));
}

#[test]
fn time_claims_of_wrong_type_are_invalid() {
    for value in [
        json!("1767226500"),
        json!(1_767_226_500.5),
        json!(1.7672265e9),
        json!(-1),
        json!(null),
        json!(true),
        json!([NOW + 900]),
        json!({"t": NOW + 900}),
        json!(u64::MAX),
    ] {
        for (name, claim) in [
            ("exp", Claim::Exp),
            ("nbf", Claim::Nbf),
            ("iat", Claim::Iat),
        ] {
            let token = mint_hs(&with(claims(), name, value.clone()));
            assert_eq!(
                verify(&token),
                Err(TokenError::InvalidClaim(claim)),
                "{name}={value}"
            );
        }
    }
    // A float with an integral value is still not an integer.
    let token = raw_claims(
        &claims()
            .to_string()
            .replace(&(NOW + 900).to_string(), "1767226500.0"),
    );
    assert_eq!(verify(&token), Err(TokenError::InvalidClaim(Claim::Exp)));
}

#[test]
fn missing_required_claims_are_named() {
    for (name, claim) in [
        ("exp", Claim::Exp),
        ("iss", Claim::Iss),
        ("sub", Claim::Sub),
        ("aud", Claim::Aud),
    ] {
        let token = mint_hs(&without(claims(), name));
        assert_eq!(
            verify(&token),
            Err(TokenError::MissingClaim(claim)),
            "{name}"
        );
    }
}

#[test]
fn duplicate_claims_are_malformed() {
    let later = NOW + 100_000;
    for body in [
        format!(r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{NOW},"exp":{later}}}"#),
        format!(r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{NOW},"\u0065xp":{later}}}"#),
        format!(r#"{{"iss":"evil","iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{later}}}"#),
        format!(r#"{{"iss":"{ISS}","sub":"u","aud":"x","aud":"{AUD}","exp":{later}}}"#),
        format!(r#"{{"iss":"{ISS}","sub":"u","sub":"v","aud":"{AUD}","exp":{later}}}"#),
        format!(r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{later},"jti":"a","jti":"b"}}"#),
        format!(r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{later},"x":1,"x":1}}"#),
    ] {
        assert_eq!(
            verify(&raw_claims(&body)),
            Err(TokenError::Malformed),
            "{body}"
        );
    }
}

#[test]
fn duplicate_or_forbidden_header_members_are_malformed() {
    let body = claims().to_string();
    for header in [
        r#"{"alg":"HS256","alg":"HS256","kid":"hs-1","typ":"at+jwt"}"#,
        r#"{"alg":"none","alg":"HS256","kid":"hs-1","typ":"at+jwt"}"#,
        r#"{"alg":"HS256","kid":"hs-2","kid":"hs-1","typ":"at+jwt"}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","typ":"at+jwt"}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","jku":"https://evil.test/jwks"}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","jwk":{"kty":"oct","k":"AA"}}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","x5u":"https://evil.test/c"}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","x5c":["MIIB"]}"#,
        r#"{"alg":"HS256","kid":"hs-1","typ":"at+jwt","b64":false}"#,
        r#"["HS256"]"#,
    ] {
        assert_eq!(
            verify(&sign_raw(header, &body, HS_SECRET)),
            Err(TokenError::Malformed),
            "{header}"
        );
    }
}

#[test]
fn padding_and_non_canonical_base64_are_malformed() {
    let token = mint_hs(&claims());
    let (header, payload, signature) = segments(&token);
    // Padding on the signature; on a payload (signed as such) and on the header.
    assert_eq!(verify(&format!("{token}=")), Err(TokenError::Malformed));
    let padded_payload = format!("{payload}{}", "=".repeat((4 - payload.len() % 4) % 4));
    if padded_payload != payload {
        let token = sign_input(&format!("{header}.{padded_payload}"), HS_SECRET);
        assert_eq!(verify(&token), Err(TokenError::Malformed));
    }
    let token = sign_input(&format!("{header}=.{payload}"), HS_SECRET);
    assert!(verify(&token).is_err());
    // Standard-alphabet characters are not base64url.
    let std_sig = signature.replace('-', "+").replace('_', "/");
    if std_sig != signature {
        assert_eq!(
            verify(&format!("{header}.{payload}.{std_sig}")),
            Err(TokenError::Malformed)
        );
    }
    // HS256 signatures are 43 characters: the last one carries 2 unused bits.
    let last = signature.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = alphabet.find(last).unwrap();
    assert_eq!(value & 0b11, 0);
    let stray = alphabet.chars().nth(value | 1).unwrap();
    let non_canonical = format!(
        "{header}.{payload}.{}{stray}",
        &signature[..signature.len() - 1]
    );
    assert_eq!(verify(&non_canonical), Err(TokenError::Malformed));
}

#[test]
fn non_canonical_payload_is_malformed_even_when_signed() {
    // Set an unused low bit in the payload's last character and sign that exact text: the
    // signature is good, yet the encoding is not canonical.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for pad in 0..3 {
        let body = with(claims(), "pad", json!("x".repeat(pad))).to_string();
        let payload = URL_SAFE_NO_PAD.encode(body);
        let unused_bits = match payload.len() % 4 {
            2 => 0b1111,
            3 => 0b11,
            _ => continue, // a whole number of 3-byte groups has no unused bits
        };
        let last = payload.chars().last().unwrap();
        let value = alphabet.find(last).unwrap();
        let stray = alphabet.chars().nth(value | 1).unwrap();
        assert_eq!(value & unused_bits, 0);
        let tampered = format!("{}{stray}", &payload[..payload.len() - 1]);
        let header = URL_SAFE_NO_PAD.encode(HS_HEADER);
        let token = sign_input(&format!("{header}.{tampered}"), HS_SECRET);
        assert_eq!(verify(&token), Err(TokenError::Malformed));
        let canonical = sign_input(&format!("{header}.{payload}"), HS_SECRET);
        assert!(verify(&canonical).is_ok());
    }
}

#[test]
fn token_size_limit_is_8_kib() {
    let mut accepted_at_limit = false;
    for pad in 5_500..5_800 {
        let token = mint_hs(&with(claims(), "pad", json!("x".repeat(pad))));
        match token.len() {
            len if len <= 8192 => {
                assert!(verify(&token).is_ok(), "{len}");
                accepted_at_limit |= len == 8192 || len == 8191;
            }
            _ => assert_eq!(verify(&token), Err(TokenError::TooLarge)),
        }
    }
    assert!(accepted_at_limit);
}

#[test]
fn surrounding_text_is_malformed() {
    let token = mint_hs(&claims());
    for bad in [
        format!(" {token}"),
        format!("{token} "),
        format!("Bearer {token}"),
        format!("{token}\n"),
        format!("{token}.{}", "AAAA"),
    ] {
        assert!(
            matches!(verify(&bad), Err(TokenError::Malformed)),
            "{bad:?}"
        );
    }
}

fn revocation(kind: RevocationKind, value: &str, issued_before: Option<u64>) -> RevocationEntry {
    RevocationEntry {
        cursor: "1".into(),
        kind,
        value: value.into(),
        tenant_id: "tnt_00000000000000000000000000000001".into(),
        issued_before,
        expires_at: NOW + 900,
    }
}

#[test]
fn verify_unrevoked_refuses_each_revocation_kind() {
    let token = mint_ed(&claims());
    let v = verifier();
    assert!(
        v.verify_unrevoked(&token, NOW, &RevocationSet::new())
            .is_ok()
    );
    let c = claims();
    for entry in [
        revocation(RevocationKind::Jti, c["jti"].as_str().unwrap(), None),
        revocation(RevocationKind::Session, c["sid"].as_str().unwrap(), None),
        revocation(
            RevocationKind::Subject,
            c["sub"].as_str().unwrap(),
            Some(NOW),
        ),
    ] {
        let mut set = RevocationSet::new();
        set.apply(&entry);
        assert_eq!(
            v.verify_unrevoked(&token, NOW, &set),
            Err(TokenError::Revoked),
            "{entry:?}"
        );
    }
    let mut set = RevocationSet::new();
    set.apply(&revocation(
        RevocationKind::Subject,
        c["sub"].as_str().unwrap(),
        Some(NOW - 5),
    ));
    assert!(
        v.verify_unrevoked(&token, NOW, &set).is_ok(),
        "issued at issued_before: valid"
    );
    // A bad token is refused for its own reason before revocation is consulted.
    assert_eq!(
        v.verify_unrevoked("x", NOW, &set),
        Err(TokenError::Malformed)
    );
}
