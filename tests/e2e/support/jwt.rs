//! Reading and forging compact JWS by hand, independently of both `portcullis-core` and the
//! issuer's `jsonwebtoken`, so forged tokens are exactly what the test says.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;

fn segment(token: &str, index: usize) -> Value {
    let part = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("not a JWS: {token:?}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("segment {index}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("segment {index} not JSON: {e}"))
}

/// The JOSE header, unverified.
pub(crate) fn header(token: &str) -> Value {
    segment(token, 0)
}

/// The claims, unverified.
pub(crate) fn payload(token: &str) -> Value {
    segment(token, 1)
}

fn encode_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialize"))
}

/// `header.payload.` with an empty signature (for `alg: none`).
pub(crate) fn unsigned(header: &Value, payload: &Value) -> String {
    format!("{}.{}.", encode_json(header), encode_json(payload))
}

/// A compact JWS signed with HMAC-SHA256 under `secret`, whatever `header` says.
pub(crate) fn sign_hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", encode_json(header), encode_json(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}
