//! The isolate's copy of the revocation list, synced from the `RevocationReplica` Durable
//! Object (design note 0004, *Revocation replication*).
//!
//! Lookups go to a core `RevocationSet` in the isolate's memory: no I/O per check. A copy is
//! synced before answering once it is older than half the interval; a cold isolate loads the
//! whole list first. When a sync fails the old copy stays; its age, taken from the replica's
//! `fetched_at`, keeps growing, and the staleness limit decides.

use portcullis_core::Claims;
use portcullis_core::revocation::RevocationSet;

use crate::feed::{FeedError, SyncAnswer, check_order, parse_cursor};
use crate::gate::RevocationStatus;

/// One isolate's copy.
#[derive(Clone, Debug, Default)]
pub(crate) struct IsolateCopy {
    set: RevocationSet,
    /// The replica cursor of the last applied answer; the next sync asks for what follows.
    cursor: Option<u64>,
    /// When the replica last read the whole feed, as of the last applied answer.
    fetched_at_ms: Option<u64>,
    /// When the last sync started.
    started_at_ms: Option<u64>,
    /// When the last sync failed.
    failed_at_ms: Option<u64>,
}

impl IsolateCopy {
    /// Whether a request should sync before using the copy.
    ///
    /// A warm copy is synced once half an interval has passed since the last sync started;
    /// requests that arrive while one is running use the copy they have. A cold isolate syncs
    /// on every request until one succeeds, so none answers without the list. After a failed
    /// sync, requests use what they have (or fail the staleness check) for half an interval
    /// instead of each waiting on a replica that is down.
    pub(crate) fn needs_sync(&self, now_ms: u64, interval_ms: u64) -> bool {
        let half = interval_ms / 2;
        let within_half = |at: Option<u64>| at.is_some_and(|at| now_ms.saturating_sub(at) < half);
        if within_half(self.failed_at_ms) {
            return false;
        }
        self.fetched_at_ms.is_none() || !within_half(self.started_at_ms)
    }

    /// The cursor to ask the replica for (`None`: everything).
    pub(crate) fn since(&self) -> Option<u64> {
        self.cursor
    }

    /// Records that a sync started.
    pub(crate) fn start_sync(&mut self, now_ms: u64) {
        self.started_at_ms = Some(now_ms);
    }

    /// Records that a sync failed; the copy is unchanged.
    pub(crate) fn fail_sync(&mut self, now_ms: u64) {
        self.failed_at_ms = Some(now_ms);
    }

    /// Applies the replica's answer to a sync that asked for the entries after `since`, or
    /// for all of them (`None`).
    ///
    /// Entries are only ever added (until they expire), so a full answer is merged into the
    /// copy, never swapped for it: whatever the replica has lost, the copy still revokes. A
    /// full answer resets the cursor to the replica's, even backwards, so the next delta
    /// starts where the replica actually is.
    ///
    /// # Errors
    ///
    /// [`FeedError::Backwards`] if a delta's cursor is behind `since`: the replica restarted
    /// and its feed position is lower (all entries expired, or the issuer's feed was
    /// rewound); the caller then asks for the full list. [`FeedError::BadCursor`] or
    /// [`FeedError::OutOfOrder`] for an inconsistent answer. On error the copy is unchanged
    /// and the failure is recorded.
    pub(crate) fn apply(
        &mut self,
        since: Option<u64>,
        answer: &SyncAnswer,
        now_ms: u64,
    ) -> Result<(), FeedError> {
        let cursor = match check(since, answer) {
            Ok(cursor) => cursor,
            Err(error) => {
                self.fail_sync(now_ms);
                return Err(error);
            }
        };
        self.set.apply_all(&answer.entries);
        self.set.prune(now_ms / 1_000);
        self.cursor = Some(match (since, self.cursor) {
            // A concurrent sync may have gone further already.
            (Some(_), Some(current)) => current.max(cursor),
            _ => cursor,
        });
        self.fetched_at_ms = Some(
            self.fetched_at_ms
                .map_or(answer.fetched_at_ms, |at| at.max(answer.fetched_at_ms)),
        );
        self.failed_at_ms = None;
        Ok(())
    }

    /// The revocation step's verdict for verified claims at `now_ms`.
    pub(crate) fn status(
        &self,
        claims: &Claims,
        now_ms: u64,
        max_staleness_secs: u64,
    ) -> RevocationStatus {
        if self.set.is_revoked(claims) {
            return RevocationStatus::Revoked;
        }
        let age_ms = self.fetched_at_ms.map(|at| now_ms.saturating_sub(at));
        match age_ms {
            Some(age) if age <= max_staleness_secs.saturating_mul(1_000) => {
                RevocationStatus::Current
            }
            // Rounded up, so a refused list never reads as exactly at the limit.
            _ => RevocationStatus::Stale {
                age_secs: age_ms.map(|age| age.div_ceil(1_000)),
            },
        }
    }
}

/// The answer's cursor, if the answer is consistent with the request.
fn check(since: Option<u64>, answer: &SyncAnswer) -> Result<u64, FeedError> {
    let cursor = parse_cursor(&answer.cursor)?;
    if since.is_some_and(|since| cursor < since) {
        return Err(FeedError::Backwards);
    }
    check_order(&answer.entries, since.unwrap_or(0), cursor)?;
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::feed::tests::entry;

    const INTERVAL: u64 = 1_000;

    fn claims(jti: &str) -> Claims {
        serde_json::from_value(json!({"iss": "i", "sub": "usr_1", "aud": "a", "exp": 9_999,
                                      "jti": jti}))
        .unwrap()
    }

    fn answer(
        entries: Vec<portcullis_core::revocation::RevocationEntry>,
        cursor: u64,
        at: u64,
    ) -> SyncAnswer {
        SyncAnswer {
            entries,
            cursor: cursor.to_string(),
            fetched_at_ms: at,
        }
    }

    #[test]
    fn needs_sync_cold_until_loaded_then_every_half_interval() {
        let mut copy = IsolateCopy::default();
        assert!(copy.needs_sync(0, INTERVAL));
        copy.start_sync(0);
        assert!(
            copy.needs_sync(1, INTERVAL),
            "cold requests do not wait on another's sync"
        );
        copy.apply(None, &answer(vec![], 0, 0), 10).unwrap();
        assert!(!copy.needs_sync(499, INTERVAL));
        assert!(copy.needs_sync(500, INTERVAL));
    }

    #[test]
    fn needs_sync_backs_off_half_an_interval_after_a_failure() {
        let mut copy = IsolateCopy::default();
        copy.start_sync(0);
        copy.fail_sync(100);
        assert!(!copy.needs_sync(599, INTERVAL));
        assert!(copy.needs_sync(600, INTERVAL));
    }

    #[test]
    fn status_cold_copy_is_stale_without_an_age() {
        let copy = IsolateCopy::default();
        assert_eq!(
            copy.status(&claims("j"), 1_000, 30),
            RevocationStatus::Stale { age_secs: None }
        );
    }

    #[test]
    fn status_age_is_measured_from_the_replica_fetch() {
        let mut copy = IsolateCopy::default();
        copy.apply(None, &answer(vec![], 0, 10_000), 10_500)
            .unwrap();
        assert_eq!(
            copy.status(&claims("j"), 40_000, 30),
            RevocationStatus::Current
        );
        assert_eq!(
            copy.status(&claims("j"), 40_001, 30),
            RevocationStatus::Stale { age_secs: Some(31) }
        );
        assert_eq!(
            copy.status(&claims("j"), 72_000, 30),
            RevocationStatus::Stale { age_secs: Some(62) }
        );
    }

    #[test]
    fn status_revoked_wins_over_staleness() {
        let mut copy = IsolateCopy::default();
        copy.apply(None, &answer(vec![entry(1, "j1", 9_999)], 1, 0), 0)
            .unwrap();
        assert_eq!(
            copy.status(&claims("j1"), 999_999, 30),
            RevocationStatus::Revoked
        );
        assert_eq!(
            copy.status(&claims("j2"), 999_999, 30),
            RevocationStatus::Stale {
                age_secs: Some(1_000)
            }
        );
    }

    #[test]
    fn apply_deltas_accumulate_and_advance_the_cursor() {
        let mut copy = IsolateCopy::default();
        copy.apply(None, &answer(vec![entry(1, "a", 9_999)], 1, 100), 100)
            .unwrap();
        assert_eq!(copy.since(), Some(1));
        copy.apply(Some(1), &answer(vec![entry(2, "b", 9_999)], 2, 200), 200)
            .unwrap();
        assert_eq!(copy.since(), Some(2));
        assert_eq!(
            copy.status(&claims("a"), 200, 30),
            RevocationStatus::Revoked
        );
        assert_eq!(
            copy.status(&claims("b"), 200, 30),
            RevocationStatus::Revoked
        );
    }

    #[test]
    fn apply_delta_behind_the_copy_is_refused_then_a_full_answer_is_merged() {
        let mut copy = IsolateCopy::default();
        copy.apply(None, &answer(vec![entry(5, "a", 9_999)], 5, 100), 100)
            .unwrap();
        let rewound = answer(vec![], 3, 5_000);
        assert_eq!(
            copy.apply(Some(5), &rewound, 5_000),
            Err(FeedError::Backwards)
        );
        assert_eq!(copy.since(), Some(5));
        assert_eq!(
            copy.status(&claims("x"), 40_000, 30),
            RevocationStatus::Stale { age_secs: Some(40) },
            "the refused answer's fetched_at does not refresh the copy"
        );
        let full = answer(vec![entry(2, "b", 9_999)], 3, 5_000);
        copy.apply(None, &full, 5_000).unwrap();
        assert_eq!(
            copy.since(),
            Some(3),
            "the next delta starts at the replica's cursor"
        );
        assert_eq!(
            copy.status(&claims("a"), 5_000, 30),
            RevocationStatus::Revoked
        );
        assert_eq!(
            copy.status(&claims("b"), 5_000, 30),
            RevocationStatus::Revoked
        );
        assert_eq!(
            copy.status(&claims("c"), 5_000, 30),
            RevocationStatus::Current
        );
    }

    #[test]
    fn apply_refuses_entries_outside_the_requested_range() {
        let mut copy = IsolateCopy::default();
        copy.apply(None, &answer(vec![entry(5, "a", 9_999)], 5, 100), 100)
            .unwrap();
        let stale_entry = answer(vec![entry(4, "b", 9_999)], 6, 200);
        assert_eq!(
            copy.apply(Some(5), &stale_entry, 200),
            Err(FeedError::OutOfOrder)
        );
        assert_eq!(
            copy.status(&claims("b"), 200, 30),
            RevocationStatus::Current
        );
    }

    #[test]
    fn apply_prunes_entries_no_token_can_match() {
        let mut copy = IsolateCopy::default();
        let entries = vec![entry(1, "old", 10), entry(2, "new", 9_999)];
        copy.apply(None, &answer(entries, 2, 100_000), 100_000)
            .unwrap();
        assert_eq!(
            copy.status(&claims("old"), 100_000, 30),
            RevocationStatus::Current
        );
        assert_eq!(
            copy.status(&claims("new"), 100_000, 30),
            RevocationStatus::Revoked
        );
    }
}
