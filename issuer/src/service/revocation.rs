//! Revocations: recording them (PostgreSQL first, then Redis), checking tokens against them,
//! the feed, and keeping the Redis blacklist complete.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::Claims;
use portcullis_core::revocation::{RevocationEntry, RevocationKind, RevocationSet};
use tracing::{info, instrument, warn};

use super::tokens::AuthError;
use crate::clock::{Clock, unix_secs};
use crate::error::{ApiError, FailureClass};
use crate::store::{
    Blacklist, NewRevocation, Revocation, RevocationMatch, RevocationProbe, RevocationRequest,
    RevocationStore, RevokedKind, SessionScope, StoreError, Tenant,
};

/// How often each replica checks that the blacklist marker is still there.
pub(crate) const WATCH_PERIOD: Duration = Duration::from_secs(2);

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

    /// Whether a verified token is revoked: the blacklist in one round trip, or PostgreSQL
    /// while the blacklist is incomplete or unreachable. Fails closed if both are down.
    pub(crate) async fn check(
        &self,
        probe: RevocationProbe<'_>,
        claims: &Claims,
    ) -> Result<(), AuthError> {
        let matches = match self.blacklist.lookup(probe).await {
            Ok(Some(matches)) => matches,
            Ok(None) => {
                self.store
                    .matching(probe, unix_secs(self.clock.now()))
                    .await?
            }
            Err(err) => {
                warn!(error = %err, "blacklist lookup failed; checking PostgreSQL");
                self.store
                    .matching(probe, unix_secs(self.clock.now()))
                    .await?
            }
        };
        revocation_set(&matches, claims)
            .check(claims)
            .map_err(AuthError::Token)
    }

    /// Records a revocation durably, then copies it into the blacklist.
    pub(crate) async fn revoke(
        &self,
        request: &RevocationRequest,
    ) -> Result<Vec<Revocation>, ApiError> {
        let recorded = self.store.revoke(request).await?;
        self.publish(&recorded).await?;
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
    /// silently incomplete, so its marker is removed (lookups fall back to PostgreSQL until
    /// it is rebuilt); if even that fails, the caller gets an error.
    pub(crate) async fn publish(&self, recorded: &[Revocation]) -> Result<(), ApiError> {
        if recorded.is_empty() {
            return Ok(());
        }
        let Err(err) = self
            .blacklist
            .publish(recorded, unix_secs(self.clock.now()))
            .await
        else {
            return Ok(());
        };
        warn!(error = %err, "blacklist write failed; marking the blacklist incomplete");
        self.blacklist
            .invalidate()
            .await
            .map_err(|err| ApiError::internal(FailureClass::Unavailable, err))
    }

    /// One page of the feed after cursor `since`.
    pub(crate) async fn feed(&self, since: i64, limit: u16) -> Result<FeedPage, ApiError> {
        let now = unix_secs(self.clock.now());
        let mut rows = self
            .store
            .feed_page(since, limit.saturating_add(1), now)
            .await?;
        let has_more = rows.len() > usize::from(limit);
        rows.truncate(usize::from(limit));
        let next_cursor = rows.last().map_or(since, |row| row.cursor);
        Ok(FeedPage {
            entries: rows.iter().map(feed_entry).collect(),
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
            "revocation blacklist rebuilt from PostgreSQL"
        );
        Ok(entries.len())
    }

    /// Runs for the life of the process: rebuilds the blacklist whenever its marker is gone
    /// (Redis restarted empty, was flushed, or lost a write).
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(WATCH_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.blacklist.is_hydrated().await {
                Ok(true) => {}
                Ok(false) => {
                    warn!("revocation blacklist marker missing; rebuilding");
                    if let Err(err) = self.hydrate().await {
                        warn!(error = %err, "blacklist rebuild failed; will retry");
                    }
                }
                Err(err) => warn!(error = %err, "cannot reach the blacklist; will retry"),
            }
        }
    }
}

/// The matches as a core revocation set, so the issuer decides exactly as edges and SDKs do.
fn revocation_set(matches: &[RevocationMatch], claims: &Claims) -> RevocationSet {
    let mut set = RevocationSet::new();
    for found in matches {
        set.apply(&RevocationEntry {
            cursor: String::new(),
            kind: core_kind(found.kind),
            value: found.value.clone(),
            tenant_id: claims.tid.clone().unwrap_or_default(),
            issued_before: found.issued_before,
            expires_at: u64::MAX,
        });
    }
    set
}

fn core_kind(kind: RevokedKind) -> RevocationKind {
    match kind {
        RevokedKind::Jti => RevocationKind::Jti,
        RevokedKind::Session => RevocationKind::Session,
        RevokedKind::Subject => RevocationKind::Subject,
    }
}

fn feed_entry(row: &Revocation) -> RevocationEntry {
    RevocationEntry {
        cursor: row.cursor.to_string(),
        kind: core_kind(row.entry.kind),
        value: row.entry.value.clone(),
        tenant_id: row.tenant.to_string(),
        issued_before: row.entry.issued_before,
        expires_at: row.entry.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::Audience;

    use super::*;

    fn claims(iat: u64) -> Claims {
        Claims {
            iss: "http://issuer".into(),
            sub: "usr_1".into(),
            aud: Audience::One("portcullis".into()),
            exp: iat + 900,
            nbf: Some(iat),
            iat: Some(iat),
            jti: Some("jti-1".into()),
            tid: Some("tnt_1".into()),
            sid: Some("ses_1".into()),
            roles: vec![],
            perms: vec![],
            amr: vec![],
        }
    }

    fn hit(kind: RevokedKind, value: &str, issued_before: Option<u64>) -> RevocationMatch {
        RevocationMatch {
            kind,
            value: value.into(),
            issued_before,
        }
    }

    #[test]
    fn matches_revoke_like_the_core_does() {
        assert!(!revocation_set(&[], &claims(100)).is_revoked(&claims(100)));
        let jti = [hit(RevokedKind::Jti, "jti-1", None)];
        assert!(revocation_set(&jti, &claims(100)).is_revoked(&claims(100)));
        let session = [hit(RevokedKind::Session, "ses_1", None)];
        assert!(revocation_set(&session, &claims(100)).is_revoked(&claims(100)));
        let subject = [hit(RevokedKind::Subject, "usr_1", Some(100))];
        assert!(revocation_set(&subject, &claims(99)).is_revoked(&claims(99)));
        assert!(!revocation_set(&subject, &claims(100)).is_revoked(&claims(100)));
    }
}
