//! The verifier and the one-string answer it gives JavaScript.

use portcullis_core::{Claims, DEFAULT_TYP, TokenError, Validation, Verifier};
use wasm_bindgen::prelude::*;

use crate::compact::compact;
use crate::keys::WasmKeyRing;
use crate::revocations::WasmRevocationList;
use crate::time::unix_secs;

/// The code of the answer for a `now` that is not whole unix seconds. Not a token verdict:
/// the TypeScript layer checks its clock before calling, so this only guards the boundary.
const CLOCK_INVALID: &str = "config_invalid";

/// A `portcullis-core` [`Verifier`] behind the JavaScript boundary.
///
/// ```
/// use portcullis_wasm_sdk::{WasmKeyRing, WasmVerifier};
///
/// let mut keys = WasmKeyRing::new();
/// keys.add_hs256("k1", vec![7; 32]).unwrap();
/// let verifier = WasmVerifier::new(keys, "https://auth.example", "api", 30, None, false).unwrap();
/// // A header naming no configured key, an empty payload and a dummy signature.
/// let verdict = verifier.verify(b"eyJhbGciOiJIUzI1NiIsImtpZCI6Im5vbmUifQ.e30.AAAA", 1.0);
/// assert_eq!(verdict, "token_key_unknown unknown token key");
/// ```
#[wasm_bindgen]
#[derive(Debug)]
pub struct WasmVerifier {
    inner: Verifier,
}

#[wasm_bindgen]
impl WasmVerifier {
    /// A verifier trusting exactly `keys`, requiring `issuer` and `audience`.
    ///
    /// `leeway` is in seconds (at most 60). `typ` is the header `typ` to require, `None` for
    /// the core's default `at+jwt`; only `any_typ` turns the check off, so a forgotten
    /// argument can never weaken validation.
    ///
    /// # Errors
    ///
    /// An empty key ring, an empty issuer or audience, `any_typ` together with a `typ`, or a
    /// leeway above 60 seconds.
    #[wasm_bindgen(constructor)]
    pub fn new(
        keys: WasmKeyRing,
        issuer: &str,
        audience: &str,
        leeway: u32,
        typ: Option<String>,
        any_typ: bool,
    ) -> Result<WasmVerifier, JsError> {
        let keys = keys.into_keys();
        if keys.is_empty() {
            return Err(JsError::new("no keys: a verifier needs at least one key"));
        }
        if issuer.is_empty() || audience.is_empty() {
            return Err(JsError::new("issuer and audience must not be empty"));
        }
        let typ = match (typ.as_deref(), any_typ) {
            (Some(_), true) => return Err(JsError::new("typ and any_typ exclude each other")),
            (Some(typ), false) => Some(typ),
            (None, false) => Some(DEFAULT_TYP),
            (None, true) => None,
        };
        let validation = Validation::new(issuer, audience)
            .with_leeway(u64::from(leeway))
            .map_err(|error| JsError::new(&error.to_string()))?
            .with_typ(typ);
        Ok(Self {
            inner: Verifier::new(keys, validation),
        })
    }

    /// Verifies `token` (its UTF-8 bytes) at `now` (unix seconds) and answers with one
    /// string: the claims, or the core's stable error code, a space and the error message.
    ///
    /// The claims come in the compact form of [`crate::compact`] (first character U+0001),
    /// or as a JSON object (first character `{`) when they do not fit it; a code starts with
    /// neither, so the first character tells the answers apart. One string crosses the
    /// boundary instead of one boundary call per property, and nothing is thrown across it, so
    /// the TypeScript layer alone decides how a refusal surfaces (a `PortcullisError` with the
    /// core's code).
    ///
    /// The token arrives as bytes because the TypeScript layer encodes it with the engine's
    /// native `TextEncoder.encodeInto` into a reused buffer: the glue's own string passing
    /// copies an ASCII string one character at a time in JavaScript. Bytes that are not UTF-8
    /// (which `encodeInto` never writes) are a malformed token.
    #[must_use]
    pub fn verify(&self, token: &[u8], now: f64) -> String {
        match (unix_secs(now), core::str::from_utf8(token)) {
            (None, _) => clock_invalid(),
            (Some(_), Err(_)) => verdict(Err(TokenError::Malformed)),
            (Some(now), Ok(token)) => verdict(self.inner.verify(token, now)),
        }
    }

    /// [`verify`](Self::verify), then refuses a token that `revoked` revokes
    /// (`token_revoked`).
    #[wasm_bindgen(js_name = verifyUnrevoked)]
    #[must_use]
    pub fn verify_unrevoked(&self, token: &[u8], now: f64, revoked: &WasmRevocationList) -> String {
        match (unix_secs(now), core::str::from_utf8(token)) {
            (None, _) => clock_invalid(),
            (Some(_), Err(_)) => verdict(Err(TokenError::Malformed)),
            (Some(now), Ok(token)) => {
                verdict(self.inner.verify_unrevoked(token, now, revoked.set()))
            }
        }
    }
}

/// The answer string of [`WasmVerifier::verify`].
fn verdict(result: Result<Claims, TokenError>) -> String {
    let error = match result {
        Ok(claims) => match compact(&claims).map_or_else(|| serde_json::to_string(&claims), Ok) {
            Ok(answer) => return answer,
            // Unreachable for this type (no maps, no floats); refuse rather than guess.
            Err(_) => TokenError::Malformed,
        },
        Err(error) => error,
    };
    format!("{} {error}", error.code())
}

fn clock_invalid() -> String {
    format!("{CLOCK_INVALID} now must be whole unix seconds from 0 to 2^53 - 1")
}

#[cfg(test)]
mod tests {
    use portcullis_core::Claim;

    use super::*;

    fn claims() -> Claims {
        serde_json::from_str(
            r#"{"iss":"https://auth.example","sub":"usr_1","aud":["api","web"],"exp":2000,
                "iat":1000,"jti":"j1","roles":["admin"],"amr":["pwd"]}"#,
        )
        .unwrap()
    }

    fn claims_from(json: &str) -> Claims {
        serde_json::from_str(json).unwrap()
    }

    /// The JSON object of a compact answer, read as `compactClaims` in `verifier.ts` does.
    fn decode(answer: &str) -> serde_json::Value {
        let mut parts = answer.split('\0');
        let head: Vec<u32> = parts.next().unwrap().chars().map(u32::from).collect();
        assert_eq!(head.len(), 13, "{answer:?}");
        assert_eq!(head[0], 1);
        let names = [
            "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "tid", "sid", "roles", "perms", "amr",
        ];
        let mut object = serde_json::Map::new();
        for (name, code) in names.into_iter().zip(&head[1..]) {
            let value = match code {
                1 => continue,
                2 if matches!(name, "exp" | "nbf" | "iat") => {
                    serde_json::json!(parts.next().unwrap().parse::<u64>().unwrap())
                }
                2 => serde_json::json!(parts.next().unwrap()),
                n => serde_json::json!((3..*n).map(|_| parts.next().unwrap()).collect::<Vec<_>>()),
            };
            object.insert(name.to_owned(), value);
        }
        assert_eq!(parts.next(), None);
        serde_json::Value::Object(object)
    }

    #[test]
    fn verdict_claims_are_compact_and_mean_what_the_json_means() {
        for claims in [
            claims(),
            claims_from(r#"{"iss":"i","sub":"s","aud":"api","exp":1}"#),
            claims_from(r#"{"iss":"i","sub":"s","aud":["api"],"exp":1,"perms":["a:*"]}"#),
            claims_from(
                r#"{"iss":"i","sub":"s\u00e9\n\"","aud":["a","b"],"exp":9007199254740991,
                    "nbf":0,"iat":3,"jti":"j","tid":"t","sid":"\ud83d\ude00","x":[1]}"#,
            ),
        ] {
            let answer = verdict(Ok(claims.clone()));
            assert!(answer.starts_with('\u{1}'), "{answer:?}");
            let json: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(&claims).unwrap()).unwrap();
            assert_eq!(decode(&answer), json);
        }
    }

    #[test]
    fn verdict_claims_with_a_nul_fall_back_to_json_without_absent_members() {
        let claims = claims_from(
            r#"{"iss":"https://auth.example","sub":"usr_\u0000","aud":["api","web"],"exp":2000,
                "roles":["admin"],"amr":["pwd"]}"#,
        );
        let json = verdict(Ok(claims));
        assert!(json.starts_with('{'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["sub"], "usr_\u{0}");
        assert_eq!(value["aud"], serde_json::json!(["api", "web"]));
        assert!(value.get("nbf").is_none() && value.get("sid").is_none());
        assert_eq!(value["perms"], serde_json::json!([]));
    }

    #[test]
    fn verify_bytes_that_are_not_utf8_are_a_malformed_token() {
        let mut keys = WasmKeyRing::new();
        keys.add_hs256("k1", vec![7; 32]).unwrap();
        let verifier = WasmVerifier::new(keys, "iss", "aud", 0, None, false).unwrap();
        assert_eq!(
            verifier.verify(b"a.\xff.c", 1.0),
            "token_malformed malformed token"
        );
    }

    #[test]
    fn verdict_error_is_code_space_message() {
        assert_eq!(
            verdict(Err(TokenError::Expired)),
            "token_expired token expired"
        );
        assert_eq!(
            verdict(Err(TokenError::InvalidClaim(Claim::Exp))),
            "token_claim_invalid invalid claim `exp`"
        );
        assert_eq!(
            verdict(Err(TokenError::TooLarge)),
            "token_malformed token too large"
        );
    }

    #[test]
    fn verify_bad_clock_is_refused_before_the_token_is_read() {
        let mut keys = WasmKeyRing::new();
        keys.add_hs256("k1", vec![7; 32]).unwrap();
        let verifier = WasmVerifier::new(keys, "iss", "aud", 0, None, false).unwrap();
        for now in [f64::NAN, -1.0, 0.5] {
            let answer = verifier.verify(b"a.b.c", now);
            assert!(answer.starts_with("config_invalid "), "{answer}");
        }
        assert!(
            verifier
                .verify(b"a.b.c", 0.0)
                .starts_with("token_malformed ")
        );
    }
}
