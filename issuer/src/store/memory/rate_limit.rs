//! The in-process rate limiter: `governor`'s keyed GCRA, one limiter per budget.
//!
//! Single-node only (embedded, or PostgreSQL without Redis, where each replica then holds its
//! own budgets: a client spreading requests over `n` replicas gets up to `n` times the limit).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Limit;
use crate::store::{RateLimiter, StoreError};

/// How many checks pass between two sweeps of keys whose budget is full again.
const SWEEP_EVERY: u64 = 4_096;

type Keyed = DefaultKeyedRateLimiter<String>;

/// Budgets in process memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryRateLimiter {
    limiters: Mutex<HashMap<Limit, Arc<Keyed>>>,
    checks: AtomicU64,
}

impl MemoryRateLimiter {
    fn limiter(&self, limit: Limit) -> Result<Arc<Keyed>, StoreError> {
        let mut limiters = self
            .limiters
            .lock()
            .map_err(|_| StoreError::Corrupt("the rate-limiter lock is poisoned".to_owned()))?;
        if let Some(found) = limiters.get(&limit) {
            return Ok(found.clone());
        }
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(limit.interval())
            .ok_or_else(|| StoreError::Corrupt("a rate limit with no interval".to_owned()))?
            .allow_burst(burst);
        let created = Arc::new(Keyed::dashmap(quota));
        limiters.insert(limit, created.clone());
        Ok(created)
    }

    /// Forgets keys whose budget is full again, so memory follows recent clients only.
    fn sweep(&self) -> Result<(), StoreError> {
        let limiters: Vec<_> = self
            .limiters
            .lock()
            .map_err(|_| StoreError::Corrupt("the rate-limiter lock is poisoned".to_owned()))?
            .values()
            .cloned()
            .collect();
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, key: &str, limit: Limit) -> Result<Option<Duration>, StoreError> {
        let limiter = self.limiter(limit)?;
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep()?;
        }
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => Ok(None),
            Err(refused) => Ok(Some(refused.wait_time_from(DefaultClock::default().now()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_passes_then_the_key_waits_alone() {
        let limiter = MemoryRateLimiter::default();
        let limit = Limit::new(6, 3);
        for _ in 0..3 {
            assert_eq!(limiter.acquire("a", limit).await.unwrap(), None);
        }
        let wait = limiter.acquire("a", limit).await.unwrap().unwrap();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(limiter.acquire("b", limit).await.unwrap(), None);
        assert_eq!(limiter.acquire("a", Limit::new(6, 4)).await.unwrap(), None);
    }
}
