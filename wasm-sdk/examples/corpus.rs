//! Writes the differential corpus: tokens with the verdict the native `portcullis-core` gives
//! each, the input of the differential test that holds the SDK in Node and in Chromium to the
//! same verdicts and error codes.
//!
//! Run: `cargo run -p portcullis-wasm-sdk --example corpus -- <out.json>`
//!
//! Every case also names the verdict it was written to provoke, and the run fails if the
//! native core disagrees or if a stable error code is not covered, so the corpus cannot
//! silently drift into testing something else.

use std::collections::BTreeSet;
use std::error::Error;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac as _};
use portcullis_core::revocation::{RevocationEntry, RevocationSet};
use portcullis_core::{Key, KeySet, TokenError, Validation, Verifier};
use serde_json::{Value, json};
use sha2::Sha256;

const ISSUER: &str = "https://auth.portcullis.test";
const AUDIENCE: &str = "api";
const LEEWAY: u64 = 30;
/// The fixed verification time of every case.
const NOW: u64 = 1_767_225_700;
const HS_KID: &str = "hs-1";
const HS_SECRET: &[u8; 32] = b"portcullis-corpus-secret-32byte!";
const ED_KID: &str = "ed-1";
const ED_SEED: [u8; 32] = [0x2a; 32];

/// Every code `TokenError::code` can return, which the corpus must cover.
const CODES: [&str; 12] = [
    "token_malformed",
    "token_algorithm_unsupported",
    "token_key_unknown",
    "token_algorithm_mismatch",
    "token_signature_invalid",
    "token_type_invalid",
    "token_claim_invalid",
    "token_expired",
    "token_not_yet_valid",
    "token_issuer_invalid",
    "token_audience_invalid",
    "token_revoked",
];

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac(secret: &[u8], input: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "hmac key length")?;
    mac.update(input.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

/// A compact JWS over raw header and payload JSON text, signed with `alg`'s key.
fn sign(alg: &str, header: &str, payload: &str) -> Result<String, Box<dyn Error>> {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = match alg {
        "HS256" => hmac(HS_SECRET, &input)?,
        "EdDSA" => SigningKey::from_bytes(&ED_SEED)
            .sign(input.as_bytes())
            .to_bytes()
            .to_vec(),
        "HS256-with-ed-public" => {
            // Algorithm confusion: the Ed25519 public key used as an HMAC secret.
            let public = SigningKey::from_bytes(&ED_SEED).verifying_key();
            hmac(public.as_bytes(), &input)?
        }
        _ => Vec::new(),
    };
    Ok(format!("{input}.{}", b64(signature)))
}

fn header(alg: &str, kid: &str) -> String {
    format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}}"#)
}

/// The issuer's claim set, with `changes` merged in (`null` removes a claim).
fn claims(changes: &Value) -> String {
    let mut claims = json!({
        "iss": ISSUER,
        "sub": "usr_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "aud": AUDIENCE,
        "exp": NOW + 840,
        "nbf": NOW - 60,
        "iat": NOW - 60,
        "jti": "0193a1b2-c3d4-7e5f-8071-8293a4b5c6d7",
        "tid": "tnt_00000000000000000000000000000001",
        "sid": "ses_0193a1b2c3d4e5f60718293a4b5c6d7e",
        "roles": ["admin"],
        "perms": ["users:read", "users:write", "billing:*"],
        "amr": ["pwd", "otp"],
    });
    if let (Some(target), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (name, value) in changes {
            if value.is_null() {
                target.remove(name);
            } else {
                target.insert(name.clone(), value.clone());
            }
        }
    }
    claims.to_string()
}

fn hs(changes: &Value) -> Result<String, Box<dyn Error>> {
    sign("HS256", &header("HS256", HS_KID), &claims(changes))
}

fn with_signature_of(token: &str, other: &str) -> String {
    let body = token.rsplit_once('.').map_or(token, |(body, _)| body);
    let signature = other
        .rsplit_once('.')
        .map_or("", |(_, signature)| signature);
    format!("{body}.{signature}")
}

/// Flips one character in the middle of the signature segment.
fn flip_signature(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = token.rfind('.').map_or(0, |dot| dot + 10);
    if let Some(byte) = bytes.get_mut(at) {
        *byte = if *byte == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(bytes).unwrap_or_default()
}

fn revocations() -> Vec<RevocationEntry> {
    let entry = |cursor: &str, kind: &str, value: &str, issued_before: Option<u64>| {
        serde_json::from_value::<RevocationEntry>(json!({
            "cursor": cursor,
            "kind": kind,
            "value": value,
            "tenant_id": "tnt_00000000000000000000000000000001",
            "issued_before": issued_before,
            "expires_at": NOW + 900,
        }))
    };
    [
        entry("101", "jti", "rev-jti-1", None),
        entry("102", "session", "ses_revoked", None),
        entry("103", "subject", "usr_revoked", Some(NOW - 30)),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
}

/// `(name, token, the verdict the case is meant to provoke)`.
type Case = (&'static str, String, &'static str);

fn cases() -> Result<Vec<Case>, Box<dyn Error>> {
    let valid = hs(&json!({}))?;
    let eddsa = sign("EdDSA", &header("EdDSA", ED_KID), &claims(&json!({})))?;
    let typ = |typ: &str| format!(r#"{{"alg":"HS256","kid":"{HS_KID}","typ":"{typ}"}}"#);
    let hs_header = header("HS256", HS_KID);
    let big = "x".repeat(9_000);
    Ok(vec![
        ("hs256_valid", valid.clone(), "ok"),
        ("eddsa_valid", eddsa.clone(), "ok"),
        (
            "hs256_aud_array_valid",
            hs(&json!({"aud": ["web", "api"]}))?,
            "ok",
        ),
        (
            "hs256_minimal_claims_valid",
            hs(&json!({"nbf": null, "iat": null, "jti": null,
            "tid": null, "sid": null, "roles": null, "perms": null, "amr": null}))?,
            "ok",
        ),
        (
            "hs256_unknown_claims_ignored",
            hs(&json!({"scope": "x", "ext": {"a": 1}}))?,
            "ok",
        ),
        (
            "typ_application_prefix_valid",
            sign("HS256", &typ("application/at+jwt"), &claims(&json!({})))?,
            "ok",
        ),
        (
            "typ_uppercase_valid",
            sign("HS256", &typ("AT+JWT"), &claims(&json!({})))?,
            "ok",
        ),
        (
            "header_member_order_valid",
            sign(
                "HS256",
                &format!(r#"{{"typ":"at+jwt","kid":"{HS_KID}","alg":"HS256"}}"#),
                &claims(&json!({})),
            )?,
            "ok",
        ),
        (
            "expired_within_leeway_valid",
            hs(&json!({"exp": NOW - 10}))?,
            "ok",
        ),
        ("expired", hs(&json!({"exp": NOW - 600}))?, "token_expired"),
        (
            "expired_at_leeway_edge",
            hs(&json!({"exp": NOW - LEEWAY}))?,
            "token_expired",
        ),
        (
            "nbf_in_future",
            hs(&json!({"nbf": NOW + 120}))?,
            "token_not_yet_valid",
        ),
        (
            "iat_in_future",
            hs(&json!({"iat": NOW + 120, "nbf": null}))?,
            "token_not_yet_valid",
        ),
        (
            "wrong_issuer",
            hs(&json!({"iss": "https://evil.example"}))?,
            "token_issuer_invalid",
        ),
        (
            "issuer_trailing_slash",
            hs(&json!({"iss": format!("{ISSUER}/")}))?,
            "token_issuer_invalid",
        ),
        (
            "wrong_audience",
            hs(&json!({"aud": "billing"}))?,
            "token_audience_invalid",
        ),
        (
            "audience_array_without_expected",
            hs(&json!({"aud": ["web", "API"]}))?,
            "token_audience_invalid",
        ),
        (
            "tampered_payload",
            with_signature_of(&hs(&json!({"sub": "usr_admin"}))?, &valid),
            "token_signature_invalid",
        ),
        (
            "tampered_signature",
            flip_signature(&valid),
            "token_signature_invalid",
        ),
        (
            "eddsa_tampered_signature",
            flip_signature(&eddsa),
            "token_signature_invalid",
        ),
        (
            "hs256_signed_with_other_secret",
            with_signature_of(&valid, &eddsa),
            "token_signature_invalid",
        ),
        (
            "alg_none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","kid":"hs-1","typ":"at+jwt"}"#),
                b64(claims(&json!({})))
            ),
            "token_algorithm_unsupported",
        ),
        (
            "alg_none_uppercase",
            sign(
                "none",
                r#"{"alg":"NONE","kid":"hs-1","typ":"at+jwt"}"#,
                &claims(&json!({})),
            )?,
            "token_algorithm_unsupported",
        ),
        (
            "alg_rs256",
            sign("HS256", &header("RS256", HS_KID), &claims(&json!({})))?,
            "token_algorithm_unsupported",
        ),
        (
            "alg_lowercase_hs256",
            sign("HS256", &header("hs256", HS_KID), &claims(&json!({})))?,
            "token_algorithm_unsupported",
        ),
        (
            "alg_eddsa_on_hs_key",
            sign("EdDSA", &header("EdDSA", HS_KID), &claims(&json!({})))?,
            "token_algorithm_mismatch",
        ),
        (
            "alg_confusion_ed_public_as_hmac",
            sign(
                "HS256-with-ed-public",
                &header("HS256", ED_KID),
                &claims(&json!({})),
            )?,
            "token_algorithm_mismatch",
        ),
        (
            "unknown_kid",
            sign("HS256", &header("HS256", "hs-2"), &claims(&json!({})))?,
            "token_key_unknown",
        ),
        (
            "missing_kid",
            sign(
                "HS256",
                r#"{"alg":"HS256","typ":"at+jwt"}"#,
                &claims(&json!({})),
            )?,
            "token_key_unknown",
        ),
        (
            "typ_jwt",
            sign("HS256", &typ("JWT"), &claims(&json!({})))?,
            "token_type_invalid",
        ),
        (
            "typ_missing",
            sign(
                "HS256",
                &format!(r#"{{"alg":"HS256","kid":"{HS_KID}"}}"#),
                &claims(&json!({})),
            )?,
            "token_type_invalid",
        ),
        (
            "header_crit",
            sign(
                "HS256",
                &format!(
                    r#"{{"alg":"HS256","kid":"{HS_KID}",
            "typ":"at+jwt","crit":["exp"]}}"#
                ),
                &claims(&json!({})),
            )?,
            "token_malformed",
        ),
        (
            "header_jku",
            sign(
                "HS256",
                &format!(
                    r#"{{"alg":"HS256","kid":"{HS_KID}",
            "typ":"at+jwt","jku":"https://evil.example/jwks"}}"#
                ),
                &claims(&json!({})),
            )?,
            "token_malformed",
        ),
        (
            "exp_as_string",
            hs(&json!({"exp": (NOW + 840).to_string()}))?,
            "token_claim_invalid",
        ),
        (
            "exp_fractional",
            sign(
                "HS256",
                &hs_header,
                &claims(&json!({})).replace(
                    &format!("\"exp\":{}", NOW + 840),
                    &format!("\"exp\":{}.5", NOW + 840),
                ),
            )?,
            "token_claim_invalid",
        ),
        (
            "exp_missing",
            hs(&json!({"exp": null}))?,
            "token_claim_invalid",
        ),
        ("sub_empty", hs(&json!({"sub": ""}))?, "token_claim_invalid"),
        (
            "roles_not_strings",
            hs(&json!({"roles": ["admin", 7]}))?,
            "token_claim_invalid",
        ),
        (
            "duplicate_claim",
            sign(
                "HS256",
                &hs_header,
                &claims(&json!({})).replacen('{', &format!(r#"{{"exp":{},"#, NOW + 9_000), 1),
            )?,
            "token_malformed",
        ),
        ("empty_string", String::new(), "token_malformed"),
        (
            "two_segments",
            valid
                .rsplit_once('.')
                .map_or_else(String::new, |(b, _)| b.into()),
            "token_malformed",
        ),
        ("four_segments", format!("{valid}.AAAA"), "token_malformed"),
        (
            "padded_segment",
            valid.replacen('.', "=.", 1),
            "token_malformed",
        ),
        (
            "not_base64url",
            valid.replacen('e', "+", 1),
            "token_malformed",
        ),
        (
            "header_not_json",
            sign("HS256", "not json", &claims(&json!({})))?,
            "token_malformed",
        ),
        (
            "payload_array",
            sign("HS256", &hs_header, "[1,2]")?,
            "token_malformed",
        ),
        ("non_ascii", format!("{valid}é"), "token_malformed"),
        ("too_large", hs(&json!({"pad": big}))?, "token_malformed"),
        (
            "revoked_jti",
            hs(&json!({"jti": "rev-jti-1"}))?,
            "token_revoked",
        ),
        (
            "revoked_session",
            hs(&json!({"sid": "ses_revoked"}))?,
            "token_revoked",
        ),
        (
            "revoked_subject_older_token",
            hs(&json!({"sub": "usr_revoked"}))?,
            "token_revoked",
        ),
        (
            "revoked_subject_newer_token_valid",
            hs(&json!({"sub": "usr_revoked", "iat": NOW - 5, "nbf": NOW - 5}))?,
            "ok",
        ),
    ])
}

fn main() -> Result<(), Box<dyn Error>> {
    let signing = SigningKey::from_bytes(&ED_SEED);
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": ED_KID, "alg": "EdDSA",
        "use": "sig", "x": b64(signing.verifying_key().as_bytes())}]});
    let mut keys = KeySet::from_jwks(&jwks.to_string())?;
    keys.insert(Key::hs256(HS_KID, HS_SECRET)?)?;
    let verifier = Verifier::new(keys, Validation::new(ISSUER, AUDIENCE).with_leeway(LEEWAY)?);
    let entries = revocations();
    let mut revoked = RevocationSet::new();
    revoked.apply_all(&entries);

    let mut out = Vec::new();
    let mut covered = BTreeSet::new();
    for (name, token, intended) in cases()? {
        let (verdict, claims) = match verifier.verify_unrevoked(&token, NOW, &revoked) {
            Ok(claims) => ("ok", serde_json::to_value(&claims)?),
            Err(error) => (TokenError::code(error), Value::Null),
        };
        if verdict != intended {
            return Err(format!("case {name}: core says {verdict}, meant {intended}").into());
        }
        covered.insert(verdict);
        out.push(json!({"name": name, "token": token, "verdict": verdict, "claims": claims}));
    }
    if let Some(missing) = CODES.iter().find(|code| !covered.contains(*code)) {
        return Err(format!("no case gives {missing}").into());
    }

    let corpus = json!({
        "now": NOW,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "leeway": LEEWAY,
        "hs256": [{"kid": HS_KID, "secret": b64(HS_SECRET)}],
        "jwks": jwks,
        "revocations": entries,
        "cases": out,
    });
    let text = serde_json::to_string_pretty(&corpus)?;
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(&path, text + "\n")?,
        None => println!("{text}"),
    }
    Ok(())
}
