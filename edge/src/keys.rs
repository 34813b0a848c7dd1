//! Verification keys: the HS256 keys of the secret plus the issuer's JWKS, fetched and cached
//! by `kid` (design note 0004, *Configuration*).
//!
//! A fetched JWKS is used for `PORTCULLIS_JWKS_MAX_AGE_SECS`, then refetched. A token naming
//! an unknown `kid` triggers a refetch (a key rotated in since the last fetch), but at most
//! once every [`REFETCH_INTERVAL_MS`], so tokens with random `kid`s cannot turn the edge into
//! a JWKS flood. A failed fetch keeps the keys already cached: already-issued tokens keep
//! passing while the issuer is down, and the revocation staleness limit bounds how long.

use std::rc::Rc;

use portcullis_core::{Key, KeyError, KeySet, Validation, Verifier};

/// The shortest time between two JWKS fetches, in milliseconds.
pub(crate) const REFETCH_INTERVAL_MS: u64 = 10_000;

/// The isolate's keys and the verifier built from them.
#[derive(Debug)]
pub(crate) struct KeyCache {
    validation: Validation,
    hs256: Vec<Key>,
    jwks_enabled: bool,
    /// When the JWKS in use was fetched; `None` before the first successful fetch.
    fetched_at_ms: Option<u64>,
    /// When the last fetch was attempted, successful or not.
    attempted_at_ms: Option<u64>,
    /// Rebuilt only when the keys change: `Verifier::new` precomputes per-key state.
    verifier: Rc<Verifier>,
}

impl KeyCache {
    /// A cache holding the HS256 keys; `jwks_enabled` says whether a JWKS is to be fetched.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKid`] if two HS256 keys share a `kid`.
    pub(crate) fn new(
        validation: Validation,
        hs256: Vec<Key>,
        jwks_enabled: bool,
    ) -> Result<Self, KeyError> {
        let verifier = Rc::new(build(&validation, &hs256, &[])?);
        Ok(Self {
            validation,
            hs256,
            jwks_enabled,
            fetched_at_ms: None,
            attempted_at_ms: None,
            verifier,
        })
    }

    /// The verifier for the keys cached now.
    pub(crate) fn verifier(&self) -> Rc<Verifier> {
        Rc::clone(&self.verifier)
    }

    /// Whether a JWKS was ever fetched (always true without one).
    pub(crate) fn jwks_loaded(&self) -> bool {
        !self.jwks_enabled || self.fetched_at_ms.is_some()
    }

    /// Whether a fetch may start now: none in the last [`REFETCH_INTERVAL_MS`].
    fn may_fetch(&self, now_ms: u64) -> bool {
        self.jwks_enabled
            && self
                .attempted_at_ms
                .is_none_or(|at| now_ms.saturating_sub(at) >= REFETCH_INTERVAL_MS)
    }

    /// Whether the JWKS should be (re)fetched before verifying: never fetched, or older than
    /// `max_age_ms`.
    pub(crate) fn refresh_due(&self, now_ms: u64, max_age_ms: u64) -> bool {
        let expired = self
            .fetched_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= max_age_ms);
        expired && self.may_fetch(now_ms)
    }

    /// Whether a token with an unknown `kid` may trigger a fetch now.
    pub(crate) fn refetch_allowed(&self, now_ms: u64) -> bool {
        self.may_fetch(now_ms)
    }

    /// Records that a fetch starts, so concurrent requests do not start another.
    pub(crate) fn start_fetch(&mut self, now_ms: u64) {
        self.attempted_at_ms = Some(now_ms);
    }

    /// Installs a fetched JWKS document.
    ///
    /// # Errors
    ///
    /// The document's [`KeyError`], or [`KeyError::DuplicateKid`] if it reuses an HS256
    /// `kid` (which key would verify would otherwise depend on a lookup order). The cached
    /// keys stay in use.
    pub(crate) fn install(&mut self, jwks: &str, now_ms: u64) -> Result<usize, KeyError> {
        let fetched = KeySet::from_jwks(jwks)?;
        let fetched: Vec<Key> = fetched.iter().cloned().collect();
        let verifier = build(&self.validation, &self.hs256, &fetched)?;
        self.verifier = Rc::new(verifier);
        self.fetched_at_ms = Some(now_ms);
        Ok(fetched.len())
    }
}

fn build(validation: &Validation, hs256: &[Key], jwks: &[Key]) -> Result<Verifier, KeyError> {
    let mut keys = KeySet::new();
    for key in hs256.iter().chain(jwks) {
        keys.insert(key.clone())?;
    }
    Ok(Verifier::new(keys, validation.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e1",
        "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn cache(jwks: bool) -> KeyCache {
        let hs = vec![Key::hs256("h1", &[7u8; 32]).unwrap()];
        KeyCache::new(Validation::new("iss", "aud"), hs, jwks).unwrap()
    }

    #[test]
    fn refresh_due_cold_then_after_max_age() {
        let mut keys = cache(true);
        assert!(keys.refresh_due(0, 300_000));
        assert!(!keys.jwks_loaded());
        keys.start_fetch(0);
        assert_eq!(keys.install(JWKS, 0), Ok(1));
        assert!(keys.jwks_loaded());
        assert!(keys.verifier().keys().get("e1").is_some());
        assert!(keys.verifier().keys().get("h1").is_some());
        assert!(!keys.refresh_due(299_999, 300_000));
        assert!(keys.refresh_due(300_000, 300_000));
    }

    #[test]
    fn refetch_allowed_at_most_every_ten_seconds() {
        let mut keys = cache(true);
        keys.start_fetch(1_000);
        assert!(!keys.refetch_allowed(10_999));
        assert!(
            !keys.refresh_due(10_999, 300_000),
            "a failed cold fetch is not retried at once"
        );
        assert!(keys.refetch_allowed(11_000));
    }

    #[test]
    fn install_failure_keeps_cached_keys() {
        let mut keys = cache(true);
        keys.install(JWKS, 0).unwrap();
        for bad in [
            "not json",
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"h1",
                "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        ] {
            assert!(keys.install(bad, 5).is_err(), "{bad}");
            assert!(keys.verifier().keys().get("e1").is_some());
        }
        assert_eq!(keys.install(r#"{"keys":[]}"#, 9), Ok(0));
        assert!(
            keys.verifier().keys().get("e1").is_none(),
            "a removed key stops verifying"
        );
        assert!(keys.verifier().keys().get("h1").is_some());
    }

    #[test]
    fn without_jwks_nothing_is_fetched() {
        let keys = cache(false);
        assert!(keys.jwks_loaded());
        assert!(!keys.refresh_due(0, 1));
        assert!(!keys.refetch_allowed(u64::MAX));
    }
}
