//! The revocation replica's data: the issuer's feed entries in cursor order, and the time
//! of the last complete poll (design note 0004, *Revocation replication*).
//!
//! This is the pure half of the `RevocationReplica` Durable Object (`replica.rs`): applying
//! feed pages, answering deltas, pruning. A page that would move the cursor backwards, or
//! whose entries are out of order, is refused whole and the old list is kept: a feed that
//! rewound (a restored database) may have lost revocations, and only a failing staleness
//! check makes that visible.

use portcullis_core::MAX_LEEWAY;
use portcullis_core::revocation::RevocationEntry;
use serde::{Deserialize, Serialize};

/// One page of `GET /v1/revocations` (`issuer/src/http/v1/revocations.rs`).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct FeedPage {
    pub(crate) entries: Vec<RevocationEntry>,
    pub(crate) next_cursor: String,
    pub(crate) has_more: bool,
}

/// The replica's answer to `GET /sync?since=`: the entries after `since`, the newest cursor
/// and when the replica last read the whole feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SyncAnswer {
    pub(crate) entries: Vec<RevocationEntry>,
    pub(crate) cursor: String,
    pub(crate) fetched_at_ms: u64,
}

/// Why a page or an answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FeedError {
    /// The cursor is lower than one already applied.
    Backwards,
    /// A cursor is not a decimal number.
    BadCursor,
    /// Entries are not strictly increasing within `(since, cursor]`.
    OutOfOrder,
    /// `has_more` with no entries: following it would never end.
    Stuck,
}

impl FeedError {
    /// Fixed text for logs.
    pub(crate) const fn reason(self) -> &'static str {
        match self {
            Self::Backwards => "the feed cursor went backwards; keeping the old list",
            Self::BadCursor => "a feed cursor is not a decimal number",
            Self::OutOfOrder => "feed entries are out of cursor order",
            Self::Stuck => "the feed said has_more without entries",
        }
    }
}

/// A decimal cursor; the issuer's are non-negative 64-bit row ids.
pub(crate) fn parse_cursor(text: &str) -> Result<u64, FeedError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FeedError::BadCursor);
    }
    text.parse().map_err(|_| FeedError::BadCursor)
}

/// Checks that `entries` are strictly increasing, after `since` and at most `cursor`.
pub(crate) fn check_order(
    entries: &[RevocationEntry],
    since: u64,
    cursor: u64,
) -> Result<Vec<u64>, FeedError> {
    let mut previous = since;
    let mut cursors = Vec::with_capacity(entries.len());
    for entry in entries {
        let current = parse_cursor(&entry.cursor)?;
        if current <= previous || current > cursor {
            return Err(FeedError::OutOfOrder);
        }
        cursors.push(current);
        previous = current;
    }
    Ok(cursors)
}

/// Whether an entry can still match a token a verifier with leeway accepts (the rule of
/// core's `RevocationSet::prune`).
pub(crate) fn is_alive(entry: &RevocationEntry, now_secs: u64) -> bool {
    entry.expires_at.saturating_add(MAX_LEEWAY) >= now_secs
}

/// The feed as the replica holds it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Replica {
    /// Entries with their parsed cursors, in cursor order.
    entries: Vec<(u64, RevocationEntry)>,
    /// The last `next_cursor` applied: where the next poll resumes.
    cursor: u64,
    /// When a poll last reached the end of the feed (`has_more: false`).
    fetched_at_ms: Option<u64>,
}

impl Replica {
    /// Where the next page starts.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// When the replica last read the whole feed.
    pub(crate) fn fetched_at_ms(&self) -> Option<u64> {
        self.fetched_at_ms
    }

    /// Applies one page; on error nothing changes.
    pub(crate) fn apply_page(&mut self, page: FeedPage) -> Result<(), FeedError> {
        let next = parse_cursor(&page.next_cursor)?;
        if next < self.cursor {
            return Err(FeedError::Backwards);
        }
        if page.has_more && page.entries.is_empty() {
            return Err(FeedError::Stuck);
        }
        let cursors = check_order(&page.entries, self.cursor, next)?;
        self.entries.extend(cursors.into_iter().zip(page.entries));
        self.cursor = next;
        Ok(())
    }

    /// Records that a poll reached the end of the feed at `now_ms`.
    pub(crate) fn mark_fetched(&mut self, now_ms: u64) {
        self.fetched_at_ms = Some(self.fetched_at_ms.map_or(now_ms, |at| at.max(now_ms)));
    }

    /// Drops entries no token can match any more; they can no longer matter to an isolate.
    pub(crate) fn prune(&mut self, now_secs: u64) {
        self.entries.retain(|(_, entry)| is_alive(entry, now_secs));
    }

    /// The answer to a sync from `since` (everything without it); `None` until a poll has
    /// reached the end of the feed, so a cold isolate never mistakes a partial list for a
    /// complete one.
    pub(crate) fn answer(&self, since: Option<u64>) -> Option<SyncAnswer> {
        let fetched_at_ms = self.fetched_at_ms?;
        let start = since.map_or(0, |since| {
            self.entries.partition_point(|(cursor, _)| *cursor <= since)
        });
        let entries = self
            .entries
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(|(_, entry)| entry.clone())
            .collect();
        Some(SyncAnswer {
            entries,
            cursor: self.cursor.to_string(),
            fetched_at_ms,
        })
    }

    /// The number of entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use portcullis_core::revocation::RevocationKind;

    use super::*;

    pub(crate) fn entry(cursor: u64, value: &str, expires_at: u64) -> RevocationEntry {
        RevocationEntry {
            cursor: cursor.to_string(),
            kind: RevocationKind::Jti,
            value: value.to_owned(),
            tenant_id: "tnt_1".to_owned(),
            issued_before: None,
            expires_at,
        }
    }

    fn page(entries: Vec<RevocationEntry>, next: u64, has_more: bool) -> FeedPage {
        FeedPage {
            entries,
            next_cursor: next.to_string(),
            has_more,
        }
    }

    fn values(answer: &SyncAnswer) -> Vec<&str> {
        answer.entries.iter().map(|e| e.value.as_str()).collect()
    }

    #[test]
    fn feed_page_parses_the_issuer_shape() {
        let json = r#"{"entries":[{"cursor":"7","kind":"session","value":"ses_1",
            "tenant_id":"tnt_1","expires_at":100}],"next_cursor":"7","has_more":false}"#;
        let page: FeedPage = serde_json::from_str(json).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.next_cursor, "7");
    }

    #[test]
    fn answer_is_none_until_a_poll_completes() {
        let mut replica = Replica::default();
        assert_eq!(replica.answer(None), None);
        replica
            .apply_page(page(vec![entry(1, "a", 100)], 1, true))
            .unwrap();
        assert_eq!(replica.answer(None), None, "a partial poll is not a list");
        replica
            .apply_page(page(vec![entry(2, "b", 100)], 2, false))
            .unwrap();
        replica.mark_fetched(5_000);
        let answer = replica.answer(None).unwrap();
        assert_eq!(values(&answer), ["a", "b"]);
        assert_eq!(answer.cursor, "2");
        assert_eq!(answer.fetched_at_ms, 5_000);
    }

    #[test]
    fn answer_gives_only_entries_after_since() {
        let mut replica = Replica::default();
        let entries = vec![entry(3, "a", 100), entry(5, "b", 100), entry(9, "c", 100)];
        replica.apply_page(page(entries, 9, false)).unwrap();
        replica.mark_fetched(1);
        assert_eq!(values(&replica.answer(Some(0)).unwrap()), ["a", "b", "c"]);
        assert_eq!(values(&replica.answer(Some(3)).unwrap()), ["b", "c"]);
        assert_eq!(values(&replica.answer(Some(4)).unwrap()), ["b", "c"]);
        assert!(replica.answer(Some(9)).unwrap().entries.is_empty());
        let ahead = replica.answer(Some(50)).unwrap();
        assert!(ahead.entries.is_empty());
        assert_eq!(
            ahead.cursor, "9",
            "an isolate ahead of the replica sees the rewind"
        );
    }

    #[test]
    fn apply_page_refuses_a_backwards_cursor_and_keeps_the_list() {
        let mut replica = Replica::default();
        replica
            .apply_page(page(vec![entry(10, "a", 100)], 10, false))
            .unwrap();
        assert_eq!(
            replica.apply_page(page(vec![], 4, false)),
            Err(FeedError::Backwards)
        );
        assert_eq!(replica.cursor(), 10);
        assert_eq!(replica.len(), 1);
        assert_eq!(replica.apply_page(page(vec![], 10, false)), Ok(()));
    }

    #[test]
    fn apply_page_refuses_inconsistent_pages_whole() {
        let mut replica = Replica::default();
        replica
            .apply_page(page(vec![entry(5, "a", 100)], 5, false))
            .unwrap();
        let bad = [
            (
                page(vec![entry(5, "dup", 100)], 6, false),
                FeedError::OutOfOrder,
            ),
            (
                page(vec![entry(7, "x", 100), entry(6, "y", 100)], 7, false),
                FeedError::OutOfOrder,
            ),
            (
                page(vec![entry(8, "x", 100)], 7, false),
                FeedError::OutOfOrder,
            ),
            (page(vec![], 9, true), FeedError::Stuck),
            (
                FeedPage {
                    entries: vec![],
                    next_cursor: "-1".to_owned(),
                    has_more: false,
                },
                FeedError::BadCursor,
            ),
        ];
        for (page, error) in bad {
            assert_eq!(replica.apply_page(page), Err(error));
        }
        assert_eq!(replica.len(), 1);
        assert_eq!(replica.cursor(), 5);
    }

    #[test]
    fn prune_drops_entries_past_expiry_plus_max_leeway() {
        let mut replica = Replica::default();
        let entries = vec![entry(1, "old", 100), entry(2, "new", 1_000)];
        replica.apply_page(page(entries, 2, false)).unwrap();
        replica.mark_fetched(1);
        replica.prune(100 + MAX_LEEWAY);
        assert_eq!(replica.len(), 2);
        replica.prune(100 + MAX_LEEWAY + 1);
        assert_eq!(values(&replica.answer(None).unwrap()), ["new"]);
        assert_eq!(replica.cursor(), 2, "pruning never moves the cursor");
    }

    #[test]
    fn mark_fetched_never_goes_back_in_time() {
        let mut replica = Replica::default();
        replica.mark_fetched(10);
        replica.mark_fetched(5);
        assert_eq!(replica.fetched_at_ms(), Some(10));
    }
}
