//! The in-process blacklist: Redis's job when there is no Redis (design note 0003).
//!
//! A `portcullis_core` [`RevocationSet`] behind a lock, so the issuer decides exactly as edges
//! and SDKs do. It holds every revocation this process writes, the unexpired ones read from
//! the durable store at start, and, beside other replicas on PostgreSQL, whatever the
//! revocation service reads from the feed every second ([`Blacklist::feed_cursor`]).
//!
//! Only feed entries move the set's cursor: entries this process writes are applied without
//! one. A replica's own entry can be newer than another replica's entry it has not polled
//! yet, and moving the cursor past it would skip that entry for good.

use async_trait::async_trait;
use portcullis_core::Claims;
use portcullis_core::revocation::RevocationSet;
use tokio::sync::RwLock;

use super::{Blacklist, Revocation, RevocationProbe, StoreError};

mod rate_limit;

pub(crate) use rate_limit::MemoryRateLimiter;

/// The in-process blacklist.
#[derive(Debug)]
pub(crate) struct MemoryBlacklist {
    state: RwLock<State>,
    /// Whether other processes write revocations this one must poll for.
    follows_feed: bool,
}

#[derive(Debug, Default)]
struct State {
    set: RevocationSet,
    /// Set once the durable store's entries are in; until then lookups go to the store.
    hydrated: bool,
}

impl State {
    /// Adds entries (moving the cursor only for feed entries) and drops the expired ones.
    fn apply(&mut self, revocations: &[Revocation], now: u64, moves_cursor: bool) {
        for revocation in revocations {
            let mut entry = revocation.to_entry();
            if !moves_cursor {
                entry.cursor.clear();
            }
            self.set.apply(&entry);
        }
        self.set.prune(now);
    }
}

impl MemoryBlacklist {
    /// The only writer of its durable store (SQLite): nothing to poll.
    pub(crate) fn single_node() -> Self {
        Self {
            state: RwLock::default(),
            follows_feed: false,
        }
    }

    /// One of many replicas sharing PostgreSQL: the feed brings the others' revocations.
    pub(crate) fn following_feed() -> Self {
        Self {
            state: RwLock::default(),
            follows_feed: true,
        }
    }
}

#[async_trait]
impl Blacklist for MemoryBlacklist {
    async fn publish(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError> {
        self.state.write().await.apply(revocations, now, false);
        Ok(())
    }

    async fn revokes(
        &self,
        _probe: RevocationProbe<'_>,
        claims: &Claims,
    ) -> Result<Option<bool>, StoreError> {
        let state = self.state.read().await;
        Ok(state.hydrated.then(|| state.set.is_revoked(claims)))
    }

    async fn is_hydrated(&self) -> Result<bool, StoreError> {
        Ok(self.state.read().await.hydrated)
    }

    async fn hydrate(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError> {
        // Merged, not replaced: entries published while the store was being read stay in.
        let mut state = self.state.write().await;
        state.apply(revocations, now, true);
        state.hydrated = true;
        Ok(())
    }

    async fn invalidate(&self) -> Result<(), StoreError> {
        self.state.write().await.hydrated = false;
        Ok(())
    }

    async fn feed_cursor(&self) -> Result<Option<i64>, StoreError> {
        if !self.follows_feed {
            return Ok(None);
        }
        let state = self.state.read().await;
        Ok(Some(
            state.set.cursor().and_then(|c| c.parse().ok()).unwrap_or(0),
        ))
    }

    async fn follow(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError> {
        self.state.write().await.apply(revocations, now, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::MAX_LEEWAY;

    use super::*;
    use crate::ids::DEFAULT_TENANT;
    use crate::store::tests::claims;
    use crate::store::{NewRevocation, RevokedKind};

    const PROBE: RevocationProbe<'static> = RevocationProbe {
        jti: "jti-1",
        session: "ses_1",
        subject: "usr_1",
    };

    fn revocation(cursor: i64, kind: RevokedKind, value: &str, expires_at: u64) -> Revocation {
        Revocation {
            cursor,
            tenant: DEFAULT_TENANT,
            entry: NewRevocation {
                kind,
                value: value.into(),
                issued_before: (kind == RevokedKind::Subject).then_some(100),
                expires_at,
            },
        }
    }

    #[tokio::test]
    async fn lookups_wait_for_hydration() {
        let blacklist = MemoryBlacklist::single_node();
        assert_eq!(blacklist.revokes(PROBE, &claims(100)).await.unwrap(), None);
        blacklist.hydrate(&[], 0).await.unwrap();
        assert_eq!(
            blacklist.revokes(PROBE, &claims(100)).await.unwrap(),
            Some(false)
        );
        blacklist.invalidate().await.unwrap();
        assert!(!blacklist.is_hydrated().await.unwrap());
    }

    #[tokio::test]
    async fn entries_revoke_like_the_core_until_they_expire() {
        let blacklist = &MemoryBlacklist::single_node();
        let subject = revocation(1, RevokedKind::Subject, "usr_1", 2_000);
        blacklist.hydrate(&[subject], 0).await.unwrap();
        let revokes = |iat| async move { blacklist.revokes(PROBE, &claims(iat)).await.unwrap() };
        assert_eq!(
            revokes(99).await,
            Some(true),
            "issued before the subject entry"
        );
        assert_eq!(revokes(100).await, Some(false), "issued at or after it");

        let jti = revocation(2, RevokedKind::Jti, "jti-1", 1_000);
        blacklist.publish(&[jti], 500).await.unwrap();
        assert_eq!(revokes(100).await, Some(true));
        blacklist.publish(&[], 1_000 + MAX_LEEWAY).await.unwrap();
        assert_eq!(
            revokes(100).await,
            Some(true),
            "kept through the verifier leeway"
        );
        blacklist
            .publish(&[], 1_000 + MAX_LEEWAY + 1)
            .await
            .unwrap();
        assert_eq!(
            revokes(100).await,
            Some(false),
            "expired entries are dropped"
        );
        assert_eq!(
            revokes(99).await,
            Some(true),
            "the subject entry lives longer"
        );
        blacklist
            .publish(&[], 2_000 + MAX_LEEWAY + 1)
            .await
            .unwrap();
        assert_eq!(revokes(99).await, Some(false));
    }

    #[tokio::test]
    async fn only_feed_entries_move_the_cursor() {
        assert_eq!(
            MemoryBlacklist::single_node().feed_cursor().await.unwrap(),
            None
        );
        let blacklist = MemoryBlacklist::following_feed();
        assert_eq!(blacklist.feed_cursor().await.unwrap(), Some(0));
        let theirs = revocation(7, RevokedKind::Session, "ses_9", 2_000);
        blacklist.hydrate(&[theirs], 0).await.unwrap();
        assert_eq!(blacklist.feed_cursor().await.unwrap(), Some(7));
        // This replica's own entry 9 must not hide entry 8, which another replica may have
        // committed first but this one has not polled yet.
        let ours = revocation(9, RevokedKind::Session, "ses_1", 2_000);
        blacklist.publish(&[ours], 0).await.unwrap();
        assert_eq!(blacklist.feed_cursor().await.unwrap(), Some(7));
        assert_eq!(
            blacklist.revokes(PROBE, &claims(100)).await.unwrap(),
            Some(true)
        );
        let polled = revocation(8, RevokedKind::Jti, "jti-8", 2_000);
        blacklist.follow(&[polled], 0).await.unwrap();
        assert_eq!(blacklist.feed_cursor().await.unwrap(), Some(8));
    }
}
