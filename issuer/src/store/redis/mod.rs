//! Redis: the fast-path blacklist of unexpired revocations.
//!
//! Keys (design note 0001, `{prefix}` = `redis_prefix`):
//! - `{prefix}:rv:jti:{jti}`, `{prefix}:rv:ses:{sid}`: present while the entry is relevant;
//! - `{prefix}:rv:sub:{sub}`: the subject's `issued_before` in unix seconds, only ever raised;
//! - `{prefix}:rv:ready`: the completeness marker, holding the feed cursor up to which every
//!   entry is in. It is written in the same atomic batch as a full rebuild from PostgreSQL and
//!   only ever raised after that, by replicas following the feed. Without it, lookups go to
//!   PostgreSQL.
//!
//! Replicas write their own revocations directly, and every replica also follows the feed
//! from the marker's cursor: a write lost while Redis was unreachable (when not even the
//! marker could be removed) is repaired within a watch period of Redis coming back.
//!
//! Each entry expires at its `expires_at` plus the largest verifier leeway, when no token it
//! matches can still be accepted anywhere. Keys must not be evicted before that: Redis has to
//! run with `maxmemory-policy noeviction`, which [`RedisBlacklist::connect`] checks.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::{Claims, MAX_LEEWAY};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Pipeline};

use super::{
    Blacklist, Probe, Revocation, RevocationMatch, RevocationProbe, RevokedKind, StoreError,
    matches_revoke,
};
use tracing::warn;

use crate::crypto::secret::SecretString;

mod rate_limit;

pub(crate) use rate_limit::RedisRateLimiter;

/// Redis answers in well under a millisecond; waiting longer means it is in trouble, and the
/// PostgreSQL fallback is the better answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts per failed request: a request waits at most a few seconds for a
/// Redis that is down, then fails closed, rather than holding the client for half a minute.
const RECONNECT_RETRIES: usize = 1;
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Raises the marker's cursor to `ARGV[1]` if it is lower; leaves an absent marker absent,
/// so a follower never declares complete a blacklist that is waiting for a rebuild.
const RAISE_CURSOR: &str = "local current = redis.call('GET', KEYS[1]) \
     if current and tonumber(ARGV[1]) > (tonumber(current) or 0) then \
       redis.call('SET', KEYS[1], ARGV[1]) end \
     return 0";

/// Keeps the larger `issued_before` of a subject (`ARGV[1]`) and the later expiry
/// (`ARGV[2]`, unix seconds): replicas writing in any order never weaken a logout-all.
const RAISE_SUBJECT: &str = "local current = tonumber(redis.call('GET', KEYS[1]) or '') \
     if current == nil or tonumber(ARGV[1]) > current then \
       redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') end \
     redis.call('EXPIREAT', KEYS[1], ARGV[2], 'GT') \
     if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end \
     return 0";

/// The Redis blacklist.
#[derive(Clone)]
pub(crate) struct RedisBlacklist {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisBlacklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBlacklist")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBlacklist {
    /// Connects; fails if Redis is unreachable at start.
    pub(crate) async fn connect(url: &SecretString, prefix: String) -> Result<Self, StoreError> {
        let client = Client::open(url.expose())?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        let blacklist = Self { connection, prefix };
        blacklist.check_eviction_policy().await;
        Ok(blacklist)
    }

    /// Warns when Redis may evict keys: an evicted entry would un-revoke its tokens while the
    /// marker still says the blacklist is complete. Managed services often refuse `CONFIG`,
    /// so a refusal is reported, not fatal.
    async fn check_eviction_policy(&self) {
        let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut self.connection.clone())
            .await;
        match policy.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => {}
            Ok([_, policy]) => warn!(
                policy = %policy,
                "Redis may evict revocation entries: set maxmemory-policy noeviction"
            ),
            Ok(_) | Err(_) => {
                warn!("cannot read Redis's maxmemory-policy; make sure it is noeviction")
            }
        }
    }

    fn key(&self, kind: RevokedKind, value: &str) -> String {
        let short = match kind {
            RevokedKind::Jti => "jti",
            RevokedKind::Session => "ses",
            RevokedKind::Subject => "sub",
        };
        format!("{}:rv:{short}:{value}", self.prefix)
    }

    /// A rate limiter on the same connection and prefix.
    pub(crate) fn rate_limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter::new(self.connection.clone(), self.prefix.clone())
    }

    fn ready_key(&self) -> String {
        format!("{}:rv:ready", self.prefix)
    }

    /// Queues the write of every still-relevant entry; a subject entry only ever raises the
    /// stored `issued_before`.
    fn queue_entries(&self, pipe: &mut Pipeline, revocations: &[Revocation], now: u64) {
        for revocation in revocations {
            let entry = &revocation.entry;
            let expires = entry.expires_at.saturating_add(MAX_LEEWAY);
            if expires <= now {
                continue;
            }
            let key = self.key(entry.kind, &entry.value);
            match entry.kind {
                RevokedKind::Subject => {
                    let issued_before = entry.issued_before.unwrap_or(u64::MAX);
                    pipe.cmd("EVAL")
                        .arg(RAISE_SUBJECT)
                        .arg(1)
                        .arg(key)
                        .arg(issued_before)
                        .arg(expires)
                        .ignore();
                }
                RevokedKind::Jti | RevokedKind::Session => {
                    pipe.cmd("SET")
                        .arg(key)
                        .arg(1)
                        .arg("EXAT")
                        .arg(expires)
                        .ignore();
                }
            }
        }
    }
}

#[async_trait]
impl Blacklist for RedisBlacklist {
    async fn publish(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.queue_entries(&mut pipe, revocations, now);
        pipe.query_async::<()>(&mut self.connection.clone()).await?;
        Ok(())
    }

    async fn revokes(
        &self,
        probe: RevocationProbe<'_>,
        claims: &Claims,
    ) -> Result<Option<bool>, StoreError> {
        let probes = [
            (RevokedKind::Jti, probe.jti),
            (RevokedKind::Session, probe.session),
            (RevokedKind::Subject, probe.subject),
        ];
        let mut keys: Vec<String> = probes
            .iter()
            .map(|(kind, value)| self.key(*kind, value))
            .collect();
        keys.push(self.ready_key());
        let mut values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.connection.clone())
            .await?;
        if values.pop().flatten().is_none() {
            return Ok(None);
        }
        let matches: Vec<RevocationMatch> = probes
            .iter()
            .zip(values)
            .filter_map(|((kind, value), stored)| {
                let stored = stored?;
                Some(RevocationMatch {
                    kind: *kind,
                    value: (*value).to_owned(),
                    // An unreadable subject time revokes every token of the subject.
                    issued_before: (*kind == RevokedKind::Subject)
                        .then(|| stored.parse().unwrap_or(u64::MAX)),
                })
            })
            .collect();
        Ok(Some(matches_revoke(&matches, claims)))
    }

    async fn is_hydrated(&self) -> Result<bool, StoreError> {
        let exists: bool = redis::cmd("EXISTS")
            .arg(self.ready_key())
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(exists)
    }

    async fn hydrate(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.queue_entries(&mut pipe, revocations, now);
        let cursor = revocations.iter().map(|r| r.cursor).max().unwrap_or(0);
        pipe.cmd("SET").arg(self.ready_key()).arg(cursor).ignore();
        pipe.query_async::<()>(&mut self.connection.clone()).await?;
        Ok(())
    }

    async fn invalidate(&self) -> Result<(), StoreError> {
        redis::cmd("DEL")
            .arg(self.ready_key())
            .query_async::<()>(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    async fn feed_cursor(&self) -> Result<Option<i64>, StoreError> {
        let marker: Option<String> = redis::cmd("GET")
            .arg(self.ready_key())
            .query_async(&mut self.connection.clone())
            .await?;
        // A marker from before it held a cursor reads as 0: following re-reads the feed.
        Ok(marker.map(|cursor| cursor.parse().unwrap_or(0)))
    }

    async fn follow(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError> {
        let Some(cursor) = revocations.iter().map(|r| r.cursor).max() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.queue_entries(&mut pipe, revocations, now);
        pipe.cmd("EVAL")
            .arg(RAISE_CURSOR)
            .arg(1)
            .arg(self.ready_key())
            .arg(cursor)
            .ignore();
        pipe.query_async::<()>(&mut self.connection.clone()).await?;
        Ok(())
    }
}

#[async_trait]
impl Probe for RedisBlacklist {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection.clone())
            .await?;
        Ok(())
    }
}
