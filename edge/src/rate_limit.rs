//! Step 5: the per-client rate limit, through the Workers rate-limiting binding
//! `RATE_LIMITER` (limit and period are set in `wrangler.toml`; workerd simulates the binding
//! locally).
//!
//! The limiter is abuse protection, not access control: if the binding itself fails, the
//! request passes and a warning is logged, rather than one limiter hiccup refusing every
//! request at the edge. A missing binding is a configuration error and refuses everything.

use worker::{Env, RateLimiter, console_warn};

use crate::error::Refusal;

/// The binding name in `wrangler.toml`.
pub(crate) const BINDING: &str = "RATE_LIMITER";

/// The isolate's handle on the limiter.
#[derive(Debug)]
pub(crate) struct Limiter(RateLimiter);

impl Limiter {
    /// The `RATE_LIMITER` binding.
    ///
    /// # Errors
    ///
    /// [`Refusal::Misconfigured`] if the binding is missing or not a rate limiter.
    pub(crate) fn from_env(env: &Env) -> Result<Self, Refusal> {
        env.rate_limiter(BINDING)
            .map(Self)
            .map_err(|_| Refusal::Misconfigured(BINDING))
    }

    /// Counts one request for `key`; `false` once the key is over its limit.
    pub(crate) async fn allow(&self, key: &str) -> bool {
        match self.0.limit(key.to_owned()).await {
            Ok(outcome) => outcome.success,
            Err(_) => {
                console_warn!("rate limiter failed; letting the request through");
                true
            }
        }
    }
}
