//! The revocation list: entries of the issuer's feed (`GET /v1/revocations?since=`).

use portcullis_core::revocation::{RevocationEntry, RevocationSet};
use wasm_bindgen::prelude::*;

use crate::time::unix_secs;

/// The revocations a verifier consults, filled from the issuer's feed.
///
/// Entries cross the boundary as the JSON text of the feed's `entries` array and are read by
/// the core's own `RevocationEntry` type, so the SDK accepts exactly what the issuer emits.
///
/// ```
/// use portcullis_wasm_sdk::WasmRevocationList;
///
/// let mut list = WasmRevocationList::new();
/// let applied = list.apply(r#"[{"cursor":"7","kind":"jti","value":"0193-a",
///     "tenant_id":"tnt_1","expires_at":1767226500}]"#).unwrap();
/// assert_eq!((applied, list.size(), list.cursor().as_deref()), (1, 1, Some("7")));
/// assert!(list.prune(1_767_226_500.0 + 61.0));
/// assert_eq!(list.size(), 0);
/// ```
#[wasm_bindgen]
#[derive(Debug, Default)]
pub struct WasmRevocationList {
    set: RevocationSet,
}

#[wasm_bindgen]
impl WasmRevocationList {
    /// An empty list.
    #[wasm_bindgen(constructor)]
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a JSON array of feed entries and returns how many there were.
    ///
    /// All or nothing: the whole array is read before any entry is applied, so a page with
    /// one malformed entry changes nothing (and the caller does not advance its cursor past
    /// entries it never applied). Applying an entry twice changes nothing.
    ///
    /// # Errors
    ///
    /// If the text is not a JSON array of entries of the feed's shape (missing or mistyped
    /// members, an unknown `kind`, a duplicate member).
    pub fn apply(&mut self, entries_json: &str) -> Result<u32, JsError> {
        let entries: Vec<RevocationEntry> = serde_json::from_str(entries_json)
            .map_err(|error| JsError::new(&format!("malformed revocation entries: {error}")))?;
        self.set.apply_all(&entries);
        Ok(u32::try_from(entries.len()).unwrap_or(u32::MAX))
    }

    /// The largest cursor applied so far, to resume the feed with `?since=`.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn cursor(&self) -> Option<String> {
        self.set.cursor().map(str::to_owned)
    }

    /// The number of distinct revoked identifiers.
    #[wasm_bindgen(getter)]
    #[must_use]
    pub fn size(&self) -> u32 {
        u32::try_from(self.set.len()).unwrap_or(u32::MAX)
    }

    /// Drops entries that can no longer match a valid token at `now` (unix seconds).
    ///
    /// Returns `false`, pruning nothing, when `now` is not whole unix seconds: keeping an
    /// entry too long is harmless, dropping it early would resurrect a revoked token.
    pub fn prune(&mut self, now: f64) -> bool {
        let Some(now) = unix_secs(now) else {
            return false;
        };
        self.set.prune(now);
        true
    }
}

impl WasmRevocationList {
    /// The set, for [`WasmVerifier::verify_unrevoked`](crate::WasmVerifier::verify_unrevoked).
    pub(crate) fn set(&self) -> &RevocationSet {
        &self.set
    }
}
