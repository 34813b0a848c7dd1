//! The verifier and the one-string answer it gives JavaScript.

use portcullis_core::{Claims, DEFAULT_TYP, TokenError, Validation, Verifier};
use wasm_bindgen::prelude::*;

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
/// let verdict = verifier.verify("eyJhbGciOiJIUzI1NiIsImtpZCI6Im5vbmUifQ.e30.AAAA", 1.0);
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

    /// Verifies `token` at `now` (unix seconds) and answers with one string: the claims as a
    /// JSON object, or the core's stable error code, a space and the error message.
    ///
    /// A claims object always starts with `{` and a code never does, so the first character
    /// tells the two apart. One string crosses the boundary and the engine's native
    /// `JSON.parse` builds the object, instead of one boundary call per property; and nothing
    /// is thrown across the boundary, so the TypeScript layer alone decides how a refusal
    /// surfaces (a `PortcullisError` with the core's code).
    #[must_use]
    pub fn verify(&self, token: &str, now: f64) -> String {
        match unix_secs(now) {
            Some(now) => verdict(self.inner.verify(token, now)),
            None => clock_invalid(),
        }
    }

    /// [`verify`](Self::verify), then refuses a token that `revoked` revokes
    /// (`token_revoked`).
    #[wasm_bindgen(js_name = verifyUnrevoked)]
    #[must_use]
    pub fn verify_unrevoked(&self, token: &str, now: f64, revoked: &WasmRevocationList) -> String {
        match unix_secs(now) {
            Some(now) => verdict(self.inner.verify_unrevoked(token, now, revoked.set())),
            None => clock_invalid(),
        }
    }
}

/// The answer string of [`WasmVerifier::verify`].
fn verdict(result: Result<Claims, TokenError>) -> String {
    let error = match result {
        Ok(claims) => match serde_json::to_string(&claims) {
            Ok(json) => return json,
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

    #[test]
    fn verdict_claims_are_one_json_object_without_absent_members() {
        let json = verdict(Ok(claims()));
        assert!(json.starts_with('{'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["aud"], serde_json::json!(["api", "web"]));
        assert_eq!(value["exp"], 2_000);
        assert!(value.get("nbf").is_none() && value.get("sid").is_none());
        assert_eq!(value["perms"], serde_json::json!([]));
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
            let answer = verifier.verify("a.b.c", now);
            assert!(answer.starts_with("config_invalid "), "{answer}");
        }
        assert!(
            verifier
                .verify("a.b.c", 0.0)
                .starts_with("token_malformed ")
        );
    }
}
