//! Revocations: recording them (the durable store first, then the blacklist), checking tokens
//! against them, the feed, and keeping the blacklist complete and current.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::revocation::RevocationEntry;
use portcullis_core::{Claims, TokenError};
use tracing::{info, instrument, warn};

use super::tokens::AuthError;
use crate::clock::{Clock, unix_secs};
use crate::error::{ApiError, ErrorCode};
use crate::store::{
    Blacklist, NewRevocation, Revocation, RevocationProbe, RevocationRequest, RevocationStore,
    RevokedKind, SessionScope, StoreError, Tenant, matches_revoke,
};

/// How often each replica checks that its blacklist is complete (the Redis marker) and, with
/// an in-process blacklist beside other replicas, polls the feed: a revocation made on one
/// replica reaches the others within about this long (design note 0003).
pub(crate) const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// Feed entries read per query while catching up.
const FOLLOW_PAGE: u16 = 1_000;
/// Consecutive failed feed polls after which an in-process blacklist beside other replicas is
/// no longer trusted to be complete: checks then go to the database, and fail closed while it
/// is unreachable, instead of accepting tokens other replicas have revoked since.
pub(crate) const MAX_FAILED_POLLS: u32 = 5;

/// One page of the feed.
#[derive(Debug)]
pub(crate) struct FeedPage {
    pub(crate) entries: Vec<RevocationEntry>,
    pub(crate) next_cursor: i64,
    pub(crate) has_more: bool,
}

/// Records and checks revocations.
#[derive(Debug)]
pub(crate) struct RevocationService {
    store: Arc<dyn RevocationStore>,
    blacklist: Arc<dyn Blacklist>,
    clock: Clock,
    /// The access-token lifetime: a session or subject entry stays relevant that long.
    access_ttl_secs: u64,
}

impl RevocationService {
    pub(crate) fn new(
        store: Arc<dyn RevocationStore>,
        blacklist: Arc<dyn Blacklist>,
        clock: Clock,
        access_ttl_secs: u64,
    ) -> Self {
        Self {
            store,
            blacklist,
            clock,
            access_ttl_secs,
        }
    }

    /// `expires_at` of an entry revoking tokens issued up to `now`: the last of them expires
    /// one access-token lifetime later.
    pub(crate) fn entry_expiry(&self, now: u64) -> u64 {
        now.saturating_add(self.access_ttl_secs)
    }

    /// Whether a verified token is revoked: the blacklist in one round trip, or the durable
    /// store while the blacklist is incomplete or unreachable. Fails closed if both are down.
    pub(crate) async fn check(
        &self,
        probe: RevocationProbe<'_>,
        claims: &Claims,
    ) -> Result<(), AuthError> {
        let revoked = match self.blacklist.revokes(probe, claims).await {
            Ok(Some(revoked)) => revoked,
            Ok(None) => self.store_revokes(probe, claims).await?,
            Err(err) => {
                warn!(error = %err, "blacklist lookup failed; checking the database");
                self.store_revokes(probe, claims).await?
            }
        };
        if revoked {
            return Err(AuthError::Token(TokenError::Revoked));
        }
        Ok(())
    }

    async fn store_revokes(
        &self,
        probe: RevocationProbe<'_>,
        claims: &Claims,
    ) -> Result<bool, StoreError> {
        let matches = self
            .store
            .matching(probe, unix_secs(self.clock.now()))
            .await?;
        Ok(matches_revoke(&matches, claims))
    }

    /// Records a revocation durably, then copies it into the blacklist.
    pub(crate) async fn revoke(
        &self,
        request: &RevocationRequest,
    ) -> Result<Vec<Revocation>, ApiError> {
        let recorded = self.store.revoke(request).await?;
        self.publish(&recorded).await;
        Ok(recorded)
    }

    /// Revokes one access token until it expires.
    pub(crate) async fn revoke_access_token(
        &self,
        tenant: &Tenant,
        jti: &str,
        expires_at: u64,
    ) -> Result<(), ApiError> {
        let request = RevocationRequest {
            tenant: tenant.id,
            now: self.clock.now(),
            reason: "revoked",
            sessions: SessionScope::None,
            session_entry_expires_at: expires_at,
            entries: vec![NewRevocation {
                kind: RevokedKind::Jti,
                value: jti.to_owned(),
                issued_before: None,
                expires_at,
            }],
        };
        self.revoke(&request).await.map(drop)
    }

    /// Copies recorded revocations into the blacklist. If that fails the blacklist would be
    /// incomplete, so its marker is removed and lookups fall back to the database until it
    /// is rebuilt. If even that fails the blacklist is unreachable, and every lookup fails
    /// closed until it is back; it then follows the feed from its own cursor, which is older
    /// than these entries, so they reach it within a watch period. Either way the revocation
    /// is already durable and will be enforced: the caller is not told otherwise.
    pub(crate) async fn publish(&self, recorded: &[Revocation]) {
        if recorded.is_empty() {
            return;
        }
        let Err(err) = self
            .blacklist
            .publish(recorded, unix_secs(self.clock.now()))
            .await
        else {
            return;
        };
        warn!(error = %err, "blacklist write failed; marking the blacklist incomplete");
        if let Err(err) = self.blacklist.invalidate().await {
            warn!(
                error = %err,
                "blacklist unreachable; it catches up from the feed once it is back"
            );
        }
    }

    /// One page of the feed after cursor `since`.
    pub(crate) async fn feed(&self, since: i64, limit: u16) -> Result<FeedPage, ApiError> {
        let now = unix_secs(self.clock.now());
        let mut rows = self
            .store
            .feed_page(since, limit.saturating_add(1), now)
            .await?;
        if rows.is_empty() && since > 0 && self.store.latest_cursor().await? < since {
            // A cursor this feed never handed out: most likely the client polled a database
            // that was since restored or replaced. Answering an empty page would leave it
            // waiting forever for entries it will never see.
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`since` is beyond the newest entry of this feed; read it again from the start",
            ));
        }
        let has_more = rows.len() > usize::from(limit);
        rows.truncate(usize::from(limit));
        let next_cursor = rows.last().map_or(since, |row| row.cursor);
        Ok(FeedPage {
            entries: rows.iter().map(Revocation::to_entry).collect(),
            next_cursor,
            has_more,
        })
    }

    /// Rebuilds the blacklist from every unexpired revocation and sets its marker.
    #[instrument(skip_all, name = "blacklist.hydrate")]
    pub(crate) async fn hydrate(&self) -> Result<usize, StoreError> {
        let now = unix_secs(self.clock.now());
        let entries = self.store.unexpired(now).await?;
        self.blacklist.hydrate(&entries, now).await?;
        info!(
            entries = entries.len(),
            "revocation blacklist rebuilt from the database"
        );
        Ok(entries.len())
    }

    /// Runs for the life of the process: rebuilds the blacklist whenever it is incomplete
    /// (Redis restarted empty, was flushed, or lost a write), and brings an in-process
    /// blacklist the revocations other replicas wrote.
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(WATCH_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_polls = 0;
        loop {
            ticks.tick().await;
            match self.blacklist.is_hydrated().await {
                Ok(true) => match self.catch_up().await {
                    Ok(()) => failed_polls = 0,
                    Err(err) => {
                        failed_polls += 1;
                        warn!(error = %err, failed_polls, "reading the revocation feed failed");
                        if failed_polls >= MAX_FAILED_POLLS {
                            self.distrust_blacklist().await;
                            failed_polls = 0;
                        }
                    }
                },
                Ok(false) => {
                    warn!("revocation blacklist incomplete; rebuilding");
                    if let Err(err) = self.hydrate().await {
                        warn!(error = %err, "blacklist rebuild failed; will retry");
                    }
                }
                Err(err) => warn!(error = %err, "cannot reach the blacklist; will retry"),
            }
        }
    }

    /// Marks the blacklist incomplete after the feed could not be read for a while, so token
    /// checks consult the database (and fail closed while it stays unreachable) until the
    /// blacklist is rebuilt.
    async fn distrust_blacklist(&self) {
        warn!(
            failed_polls = MAX_FAILED_POLLS,
            "the revocation feed is unreadable; checking tokens against the database"
        );
        if let Err(err) = self.blacklist.invalidate().await {
            warn!(error = %err, "cannot mark the blacklist incomplete; will retry");
        }
    }

    /// Applies feed entries after the blacklist's cursor until it has them all, when the
    /// blacklist follows the feed.
    async fn catch_up(&self) -> Result<(), StoreError> {
        while let Some(since) = self.blacklist.feed_cursor().await? {
            let now = unix_secs(self.clock.now());
            let page = self.store.feed_page(since, FOLLOW_PAGE, now).await?;
            self.blacklist.follow(&page, now).await?;
            let moved = self
                .blacklist
                .feed_cursor()
                .await?
                .is_some_and(|next| next > since);
            if page.len() < usize::from(FOLLOW_PAGE) || !moved {
                break;
            }
        }
        Ok(())
    }
}
