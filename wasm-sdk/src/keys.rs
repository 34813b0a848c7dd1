//! The key set a verifier trusts, assembled from JavaScript values.

use portcullis_core::{Key, KeySet};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

/// The keys a [`WasmVerifier`](crate::WasmVerifier) will trust: HS256 secrets and the
/// Ed25519 keys of JWKS documents, in any mix, each owning its algorithm.
///
/// Built step by step so that the TypeScript layer can name the exact option that was refused
/// (`keys.hs256[1].secret`), instead of one error for the whole set.
///
/// ```
/// use portcullis_wasm_sdk::WasmKeyRing;
///
/// let mut keys = WasmKeyRing::new();
/// keys.add_hs256("hs-1", vec![7; 32]).unwrap();
/// keys.add_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed-1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
/// assert_eq!(keys.kids(), ["ed-1", "hs-1"]);
/// ```
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct WasmKeyRing {
    keys: KeySet,
}

#[wasm_bindgen]
impl WasmKeyRing {
    /// An empty ring. A verifier refuses to be built from one.
    #[wasm_bindgen(constructor)]
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an HS256 key.
    ///
    /// The secret arrives as an owned copy of the caller's `Uint8Array` in linear memory; it
    /// is wiped once the core has keyed its HMAC state, so the freed allocation does not keep
    /// the secret around for later allocations to expose.
    ///
    /// # Errors
    ///
    /// The core's [`KeyError`](portcullis_core::KeyError) message: an invalid `kid`, a secret
    /// under 32 bytes, or a `kid` already in the ring.
    #[wasm_bindgen(js_name = addHs256)]
    pub fn add_hs256(&mut self, kid: &str, secret: Vec<u8>) -> Result<(), JsError> {
        let secret = Zeroizing::new(secret);
        let key = Key::hs256(kid, &secret).map_err(|error| JsError::new(&error.to_string()))?;
        self.keys
            .insert(key)
            .map_err(|error| JsError::new(&error.to_string()))
    }

    /// Adds every key of a JWKS document (Ed25519 public keys only, as the core reads them).
    ///
    /// The document is checked whole before any key is added, so a refused document leaves
    /// the ring as it was.
    ///
    /// # Errors
    ///
    /// The core's [`KeyError`](portcullis_core::KeyError) message: malformed JSON, a key of
    /// another type, private key material, an invalid public key, or a `kid` that is already
    /// in the ring or appears twice in the document.
    #[wasm_bindgen(js_name = addJwks)]
    pub fn add_jwks(&mut self, json: &str) -> Result<(), JsError> {
        let document = KeySet::from_jwks(json).map_err(|error| JsError::new(&error.to_string()))?;
        let mut merged = self.keys.clone();
        for key in document.iter() {
            merged
                .insert(key.clone())
                .map_err(|error| JsError::new(&error.to_string()))?;
        }
        self.keys = merged;
        Ok(())
    }

    /// The `kid` of every key, in sorted order.
    #[must_use]
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|key| key.kid().to_owned()).collect()
    }

    /// The number of keys.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn size(&self) -> u32 {
        u32::try_from(self.keys.len()).unwrap_or(u32::MAX)
    }
}

impl WasmKeyRing {
    /// Hands the keys to a verifier.
    pub(crate) fn into_keys(self) -> KeySet {
        self.keys
    }
}
