//! Revocations: the entries of the issuer's revocation feed and an in-memory set to check
//! verified tokens against.
//!
//! Lookups are hash-based, so checking a token costs the same with ten entries or a million.
//! Entries match on their `value` alone, not on `tenant_id`: identifiers are globally unique
//! UUIDv7s, and matching on the tenant too would let a token with a missing or odd `tid` slip
//! past a revocation. Over-matching cannot happen; under-matching would be a hole.

use alloc::string::String;

use core::cmp::Ordering;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use crate::error::TokenError;
use crate::jwt::claims::Claims;
use crate::jwt::validate::MAX_LEEWAY;

/// What a revocation entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RevocationKind {
    /// The one token whose `jti` equals the value.
    Jti,
    /// Every token whose `sid` equals the value.
    Session,
    /// Every token whose `sub` equals the value and whose `iat` is before `issued_before`.
    Subject,
}

/// One entry of the revocation feed (`GET /v1/revocations`), as in design note 0001.
///
/// ```
/// use portcullis_core::revocation::{RevocationEntry, RevocationKind};
/// let entry: RevocationEntry = serde_json::from_str(
///     r#"{"cursor":"43","kind":"subject","value":"usr_1","tenant_id":"tnt_1",
///         "issued_before":1767225600,"expires_at":1767226500}"#,
/// )?;
/// assert_eq!(entry.kind, RevocationKind::Subject);
/// assert_eq!(entry.issued_before, Some(1767225600));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEntry {
    /// The feed position, a decimal string; later entries have larger cursors.
    pub cursor: String,
    /// What the entry matches.
    pub kind: RevocationKind,
    /// The revoked `jti`, `sid` or `sub`.
    pub value: String,
    /// The tenant the revoked identifier belongs to (informational; see the module docs).
    pub tenant_id: String,
    /// For [`RevocationKind::Subject`]: tokens issued (`iat`) before this time are revoked.
    /// A subject entry without it revokes every token of the subject (fail closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<u64>,
    /// After this time no token the entry can match is still valid.
    pub expires_at: u64,
}

/// A subject revocation: tokens issued before `issued_before` are revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SubjectRevocation {
    issued_before: u64,
    expires_at: u64,
}

/// The revocations a verifier knows about.
///
/// Applying entries is idempotent and order-independent: applying the same feed twice, or its
/// pages out of order, gives the same set. For a subject the latest `issued_before` wins; for
/// every entry the latest `expires_at` is kept.
///
/// ```
/// use portcullis_core::revocation::{RevocationEntry, RevocationKind, RevocationSet};
/// let mut set = RevocationSet::new();
/// set.apply(&RevocationEntry {
///     cursor: "41".into(),
///     kind: RevocationKind::Jti,
///     value: "0193-jti".into(),
///     tenant_id: "tnt_1".into(),
///     issued_before: None,
///     expires_at: 1_767_225_600,
/// });
/// assert_eq!(set.cursor(), Some("41"));
/// assert_eq!(set.len(), 1);
/// set.prune(1_767_225_600 + 61);
/// assert!(set.is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct RevocationSet {
    tokens: HashMap<String, u64>,
    sessions: HashMap<String, u64>,
    subjects: HashMap<String, SubjectRevocation>,
    cursor: Option<String>,
}

impl RevocationSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one entry. Applying an entry already present changes nothing.
    ///
    /// The cursor advances to the entry's cursor if that is a larger decimal number; an entry
    /// whose cursor is not a decimal string is still applied but never moves the cursor.
    pub fn apply(&mut self, entry: &RevocationEntry) {
        match entry.kind {
            RevocationKind::Jti => keep_latest(&mut self.tokens, &entry.value, entry.expires_at),
            RevocationKind::Session => {
                keep_latest(&mut self.sessions, &entry.value, entry.expires_at);
            }
            RevocationKind::Subject => {
                let issued_before = entry.issued_before.unwrap_or(u64::MAX);
                let incoming = SubjectRevocation {
                    issued_before,
                    expires_at: entry.expires_at,
                };
                match self.subjects.get_mut(entry.value.as_str()) {
                    Some(current) => {
                        current.issued_before = current.issued_before.max(issued_before);
                        current.expires_at = current.expires_at.max(entry.expires_at);
                    }
                    None => {
                        self.subjects.insert(entry.value.clone(), incoming);
                    }
                }
            }
        }
        if is_later_cursor(&entry.cursor, self.cursor.as_deref()) {
            self.cursor = Some(entry.cursor.clone());
        }
    }

    /// Adds every entry, as [`apply`](Self::apply) does one by one.
    pub fn apply_all<'a, I>(&mut self, entries: I)
    where
        I: IntoIterator<Item = &'a RevocationEntry>,
    {
        for entry in entries {
            self.apply(entry);
        }
    }

    /// Drops entries that can no longer match a valid token at `now`.
    ///
    /// An entry is kept until `expires_at` plus [`MAX_LEEWAY`]: a verifier with leeway still
    /// accepts a token up to that long after its `exp`, so dropping the entry at `expires_at`
    /// would briefly resurrect the revoked token.
    pub fn prune(&mut self, now: u64) {
        let alive = |expires_at: u64| expires_at.saturating_add(MAX_LEEWAY) >= now;
        self.tokens.retain(|_, expires_at| alive(*expires_at));
        self.sessions.retain(|_, expires_at| alive(*expires_at));
        self.subjects.retain(|_, subject| alive(subject.expires_at));
    }

    /// The largest cursor applied so far, to resume the feed with `?since=`.
    #[must_use]
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The number of distinct revoked identifiers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.subjects.len()
    }

    /// Whether the set holds no revocation.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the set revokes a token with these claims.
    ///
    /// A subject revocation applies to a token without `iat`: its age cannot be told, so it
    /// is treated as old (fail closed).
    #[must_use]
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let token = claims
            .jti()
            .is_some_and(|jti| self.tokens.contains_key(jti));
        let session = claims
            .sid()
            .is_some_and(|sid| self.sessions.contains_key(sid));
        let subject = self
            .subjects
            .get(claims.sub())
            .is_some_and(|subject| claims.iat().is_none_or(|iat| iat < subject.issued_before));
        token || session || subject
    }

    /// [`is_revoked`](Self::is_revoked) as a `Result`.
    ///
    /// # Errors
    ///
    /// [`TokenError::Revoked`] if the set revokes the token.
    pub fn check(&self, claims: &Claims) -> Result<(), TokenError> {
        if self.is_revoked(claims) {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }
}

fn keep_latest(map: &mut HashMap<String, u64>, value: &str, expires_at: u64) {
    match map.get_mut(value) {
        Some(current) => *current = (*current).max(expires_at),
        None => {
            map.insert(String::from(value), expires_at);
        }
    }
}

/// Whether `candidate` is a decimal cursor larger than `current` (or `current` is unset).
fn is_later_cursor(candidate: &str, current: Option<&str>) -> bool {
    let Some(candidate) = decimal(candidate) else {
        return false;
    };
    match current.and_then(decimal) {
        None => true,
        Some(current) => compare_decimal(candidate, current) == Ordering::Greater,
    }
}

/// The digits of a decimal string without leading zeros, or `None` if it is not decimal.
fn decimal(text: &str) -> Option<&str> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let trimmed = text.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed })
}

/// Orders two decimal strings without leading zeros numerically, at any length.
fn compare_decimal(left: &str, right: &str) -> Ordering {
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    fn entry(cursor: &str, kind: RevocationKind, value: &str) -> RevocationEntry {
        RevocationEntry {
            cursor: cursor.into(),
            kind,
            value: value.into(),
            tenant_id: "tnt_1".into(),
            issued_before: None,
            expires_at: 1_000,
        }
    }

    fn subject(cursor: &str, issued_before: u64, expires_at: u64) -> RevocationEntry {
        RevocationEntry {
            issued_before: Some(issued_before),
            expires_at,
            ..entry(cursor, RevocationKind::Subject, "usr_1")
        }
    }

    /// Claims of a token of `sub` issued at `iat`, with `jti` and `sid`.
    fn token(sub: &str, iat: Option<u64>, jti: &str, sid: &str) -> Claims {
        let mut claims = serde_json::json!({
            "iss": "iss", "sub": sub, "aud": "api", "exp": 900,
            "jti": jti, "tid": "tnt_2", "sid": sid,
        });
        if let Some(iat) = iat {
            claims["iat"] = iat.into();
        }
        serde_json::from_value(claims).unwrap()
    }

    fn claims() -> Claims {
        token("usr_1", Some(100), "jti_1", "ses_1")
    }

    #[test]
    fn entry_feed_json_round_trips() {
        let json = r#"{"cursor":"41","kind":"jti","value":"0193","tenant_id":"tnt_1","expires_at":1767225600}"#;
        let parsed: RevocationEntry = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.kind, RevocationKind::Jti);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
        let bad = json.replace("\"jti\"", "\"user\"");
        assert!(serde_json::from_str::<RevocationEntry>(&bad).is_err());
    }

    #[test]
    fn is_revoked_matches_each_kind_regardless_of_tenant() {
        assert!(!RevocationSet::new().is_revoked(&claims()));
        for (kind, value) in [
            (RevocationKind::Jti, "jti_1"),
            (RevocationKind::Session, "ses_1"),
        ] {
            let mut set = RevocationSet::new();
            set.apply(&entry("1", kind, value));
            assert!(set.is_revoked(&claims()), "{kind:?}");
            assert_eq!(set.check(&claims()), Err(TokenError::Revoked));
            let other = token("usr_1", Some(100), "jti_2", "ses_2");
            assert!(!set.is_revoked(&other));
        }
    }

    #[test]
    fn is_revoked_subject_uses_iat_strictly_before() {
        let mut set = RevocationSet::new();
        set.apply(&subject("1", 100, 1_000));
        assert!(set.is_revoked(&token("usr_1", Some(99), "jti_1", "ses_1")));
        assert!(!set.is_revoked(&token("usr_1", Some(100), "jti_1", "ses_1")));
        assert!(
            set.is_revoked(&token("usr_1", None, "jti_1", "ses_1")),
            "a token without iat must fail closed"
        );
        assert!(!set.is_revoked(&token("usr_2", None, "jti_1", "ses_1")));
    }

    #[test]
    fn apply_subject_without_issued_before_revokes_all() {
        let mut set = RevocationSet::new();
        set.apply(&entry("1", RevocationKind::Subject, "usr_1"));
        let newest = token("usr_1", Some(crate::jwt::claims::MAX_TIME), "j", "s");
        assert!(set.is_revoked(&newest));
    }

    #[test]
    fn apply_any_order_twice_is_idempotent() {
        let entries = vec![
            subject("3", 200, 2_000),
            entry("1", RevocationKind::Jti, "jti_1"),
            subject("2", 100, 3_000),
            entry("10", RevocationKind::Session, "ses_1"),
        ];
        let mut forward = RevocationSet::new();
        forward.apply_all(&entries);
        forward.apply_all(&entries);
        let mut backward = RevocationSet::new();
        backward.apply_all(entries.iter().rev());
        for set in [&forward, &backward] {
            assert_eq!(set.len(), 3);
            assert_eq!(set.cursor(), Some("10"));
            assert_eq!(
                set.subjects.get("usr_1"),
                Some(&SubjectRevocation {
                    issued_before: 200,
                    expires_at: 3_000
                })
            );
        }
    }

    #[test]
    fn cursor_compares_numerically_and_ignores_non_decimal() {
        let mut set = RevocationSet::new();
        assert_eq!(set.cursor(), None);
        let cursors: Vec<&str> = vec!["9", "10", "0011", "x", "", "-5", "2"];
        for cursor in &cursors {
            set.apply(&entry(cursor, RevocationKind::Jti, "j"));
        }
        assert_eq!(set.cursor(), Some("0011"));
        set.apply(&entry("99999999999999999999999", RevocationKind::Jti, "j"));
        assert_eq!(set.cursor(), Some("99999999999999999999999"));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn prune_keeps_entries_through_max_leeway() {
        let mut set = RevocationSet::new();
        set.apply(&entry("1", RevocationKind::Jti, "jti_1"));
        set.apply(&subject("2", 100, 5_000));
        set.prune(1_000 + MAX_LEEWAY);
        assert_eq!(set.len(), 2);
        set.prune(1_000 + MAX_LEEWAY + 1);
        assert_eq!(set.len(), 1);
        set.prune(u64::MAX);
        assert!(set.is_empty());
        set.apply(&RevocationEntry {
            expires_at: u64::MAX,
            ..entry("3", RevocationKind::Jti, "j")
        });
        set.prune(u64::MAX);
        assert_eq!(set.len(), 1);
    }
}
