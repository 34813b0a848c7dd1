//! Rate-limit budgets in Redis, shared by every replica: GCRA in one atomic script.
//!
//! Key `{prefix}:rl:{key}` holds the key's theoretical arrival time (TAT) in microseconds of
//! Redis's clock, and expires once the budget is full again, so idle clients cost nothing.
//! Redis's `TIME` is the clock, so replicas with skewed clocks still share one budget.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::config::Limit;
use crate::store::{RateLimiter, StoreError};

/// GCRA. `ARGV[1]`: emission interval, `ARGV[2]`: burst, both in microseconds and requests.
/// Returns 0 when the request passes (and moves the TAT), else the microseconds to wait
/// (leaving the key as it was). Microsecond times stay below 2^53, exact in Lua numbers, and
/// are written with `%.0f` because `tostring` would round them to 14 digits.
const GCRA: &str = "local t = redis.call('TIME') \
     local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) \
     local interval = tonumber(ARGV[1]) \
     local burst = tonumber(ARGV[2]) \
     local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now \
     if tat < now then tat = now end \
     local wait = tat - interval * (burst - 1) - now \
     if wait > 0 then return wait end \
     local next_tat = tat + interval \
     redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', \
       string.format('%.0f', math.ceil((next_tat - now) / 1000) + 1)) \
     return 0";

/// The Redis rate limiter.
#[derive(Clone)]
pub(crate) struct RedisRateLimiter {
    connection: ConnectionManager,
    prefix: String,
    script: Script,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    pub(super) fn new(connection: ConnectionManager, prefix: String) -> Self {
        Self {
            connection,
            prefix,
            script: Script::new(GCRA),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, limit: Limit) -> Result<Option<Duration>, StoreError> {
        let interval = u64::try_from(limit.interval().as_micros()).unwrap_or(u64::MAX);
        let wait: u64 = self
            .script
            .key(format!("{}:rl:{key}", self.prefix))
            .arg(interval)
            .arg(limit.burst)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }
}
