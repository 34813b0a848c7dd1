//! Redis: the fast-path blacklist of unexpired revocations.
//!
//! Keys (design note 0001, `{prefix}` = `redis_prefix`):
//! - `{prefix}:rv:jti:{jti}`, `{prefix}:rv:ses:{sid}`: present while the entry is relevant;
//! - `{prefix}:rv:sub:{sub}`: the subject's `issued_before` in unix seconds;
//! - `{prefix}:rv:ready`: the completeness marker, written in the same atomic batch as a full
//!   rebuild from PostgreSQL. Without it, lookups go to PostgreSQL.
//!
//! Each entry expires at its `expires_at` plus the largest verifier leeway, when no token it
//! matches can still be accepted anywhere.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::{Claims, MAX_LEEWAY};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Pipeline};

use super::{
    Blacklist, Probe, Revocation, RevocationMatch, RevocationProbe, RevokedKind, StoreError,
    matches_revoke,
};
use crate::crypto::secret::SecretString;

/// Redis answers in well under a millisecond; waiting longer means it is in trouble, and the
/// PostgreSQL fallback is the better answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

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
            .set_connection_timeout(Some(CONNECTION_TIMEOUT));
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { connection, prefix })
    }

    fn key(&self, kind: RevokedKind, value: &str) -> String {
        let short = match kind {
            RevokedKind::Jti => "jti",
            RevokedKind::Session => "ses",
            RevokedKind::Subject => "sub",
        };
        format!("{}:rv:{short}:{value}", self.prefix)
    }

    fn ready_key(&self) -> String {
        format!("{}:rv:ready", self.prefix)
    }

    /// Queues one SET per still-relevant entry, in cursor order so the latest subject entry
    /// wins within the batch.
    fn queue_entries(&self, pipe: &mut Pipeline, revocations: &[Revocation], now: u64) {
        for revocation in revocations {
            let entry = &revocation.entry;
            let expires = entry.expires_at.saturating_add(MAX_LEEWAY);
            if expires <= now {
                continue;
            }
            let value = match entry.kind {
                RevokedKind::Subject => entry.issued_before.unwrap_or(u64::MAX).to_string(),
                RevokedKind::Jti | RevokedKind::Session => "1".to_owned(),
            };
            pipe.cmd("SET")
                .arg(self.key(entry.kind, &entry.value))
                .arg(value)
                .arg("EXAT")
                .arg(expires)
                .ignore();
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
        pipe.cmd("SET").arg(self.ready_key()).arg("1").ignore();
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
