//! Storage, one trait per concern (design note 0002).
//!
//! Services see only these traits. The durable ones are written once over SQL ([`sql`]) and
//! run on PostgreSQL ([`pg`]) or, embedded, on SQLite ([`sqlite`]); the fast-path blacklist is
//! Redis ([`redis`]) or in-process ([`memory`]). Design note 0003 says which goes with which.
//! Times are passed in by the caller, never read here, except by the rate limiters: GCRA
//! needs a monotonic clock, Redis's own (`TIME`, shared by every replica) or the process's.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use portcullis_core::Claims;
use portcullis_core::revocation::{RevocationEntry, RevocationKind, RevocationSet};

use crate::config::Limit;
use crate::crypto::keys::Wrapped;
use crate::crypto::refresh::TokenHash;
use crate::crypto::signing::SigningAlgorithm;
use crate::ids::{SessionId, TenantId, UserId};

pub(crate) mod memory;
pub(crate) mod pg;
pub(crate) mod redis;
pub(crate) mod sql;
pub(crate) mod sqlite;

/// A storage failure. Never shown to clients; always an internal error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("redis")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A tenant as requests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) slug: String,
}

#[async_trait]
pub(crate) trait TenantStore: Send + Sync + Debug {
    /// The tenant serving a Host name (lowercase, without port).
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, StoreError>;
    /// The tenant with this slug.
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, StoreError>;
    /// The tenant with this id.
    async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;
}

/// A user to create. `Debug` leaves out the password hash: it is offline-crackable.
pub(crate) struct NewUser {
    pub(crate) id: UserId,
    pub(crate) tenant: TenantId,
    pub(crate) email: String,
    pub(crate) email_normalized: String,
    pub(crate) name: Option<String>,
    pub(crate) password_hash: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("email_normalized", &self.email_normalized)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What a login needs to check a password. `Debug` leaves out the password hash.
pub(crate) struct Credentials {
    pub(crate) user: UserId,
    pub(crate) password_hash: String,
}

impl Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A user as `GET /v1/auth/me` shows them.
#[derive(Debug)]
pub(crate) struct UserProfile {
    pub(crate) id: UserId,
    /// The normalized form, the one the account is known by.
    pub(crate) email: String,
    pub(crate) name: Option<String>,
    pub(crate) email_verified: bool,
    pub(crate) created_at: DateTime<Utc>,
}

/// A user's role names and the union of their permissions, both sorted and unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Grants {
    pub(crate) roles: Vec<String>,
    pub(crate) permissions: Vec<String>,
}

#[async_trait]
pub(crate) trait UserStore: Send + Sync + Debug {
    /// Inserts the user with the tenant's default roles. `false`: the email is already taken
    /// in that tenant and the account is unchanged. Either way one account event is recorded
    /// and committed, so both outcomes do the same durable work.
    async fn create_user(&self, user: &NewUser) -> Result<bool, StoreError>;
    /// The password hash of the account with this normalized email.
    async fn credentials(
        &self,
        tenant: TenantId,
        email_normalized: &str,
    ) -> Result<Option<Credentials>, StoreError>;
    /// A user's profile.
    async fn profile(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<UserProfile>, StoreError>;
    /// A user's roles and the union of their permissions.
    async fn grants(&self, tenant: TenantId, user: UserId) -> Result<Grants, StoreError>;
}

/// A session to open together with its first refresh token.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) id: SessionId,
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) amr: Vec<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) refresh_hash: TokenHash,
    pub(crate) refresh_expires_at: DateTime<Utc>,
}

/// The session a refresh token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionRef {
    pub(crate) id: SessionId,
    pub(crate) user: UserId,
    pub(crate) amr: Vec<String>,
}

/// One presentation of a refresh token.
#[derive(Debug)]
pub(crate) struct Rotation {
    pub(crate) tenant: TenantId,
    pub(crate) parent: TokenHash,
    /// `SHA-256(HMAC(refresh key, parent))`: the only successor the parent can have.
    pub(crate) successor: TokenHash,
    pub(crate) now: DateTime<Utc>,
    pub(crate) refresh_ttl: TimeDelta,
    pub(crate) grace: TimeDelta,
    /// `expires_at` of the session revocation written when reuse is detected.
    pub(crate) revocation_expires_at: u64,
}

/// What presenting a refresh token did.
#[derive(Debug)]
pub(crate) enum RotationOutcome {
    /// The token was unused: it is now used and its successor stored.
    Rotated(SessionRef),
    /// A duplicate inside the grace window: the successor already stored is the answer.
    Replayed(SessionRef),
    /// A used token outside the grace window: the session is revoked (if it was not yet).
    Reused {
        session: SessionRef,
        revocations: Vec<Revocation>,
    },
    /// Unknown or expired, its session is over, or it is unused in a revoked session.
    Rejected,
}

/// The state of a presented refresh token, read under a row lock.
#[derive(Clone, Debug)]
pub(crate) struct RefreshState {
    pub(crate) session: SessionRef,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) used_at: Option<DateTime<Utc>>,
    pub(crate) successor: Option<TokenHash>,
    /// Whether the successor has itself been presented already.
    pub(crate) successor_used: bool,
    pub(crate) session_revoked: bool,
    pub(crate) session_expires_at: DateTime<Utc>,
}

/// What a store must do with a presented token; every backend follows this one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RotationDecision {
    Claim,
    Replay,
    RevokeFamily,
    Reject,
}

impl RefreshState {
    /// The rotation rule of design note 0001.
    ///
    /// A used token is only answered with its successor while all of these hold: the session
    /// is open, the grace window is open, the stored successor is the one the presented token
    /// derives (same refresh key), and the successor is still unused. Once the legitimate
    /// client has moved on, an old token can only be a copy: it is reported as reused (and its
    /// family revoked, if it is not already) for as long as the family has not expired.
    pub(crate) fn decide(&self, rotation: &Rotation) -> RotationDecision {
        if self.session_expires_at <= rotation.now {
            return RotationDecision::Reject;
        }
        let Some(used_at) = self.used_at else {
            if self.session_revoked || self.expires_at <= rotation.now {
                return RotationDecision::Reject;
            }
            return RotationDecision::Claim;
        };
        let in_grace =
            rotation.grace > TimeDelta::zero() && rotation.now - used_at <= rotation.grace;
        let replayable = !self.session_revoked
            && in_grace
            && self.successor == Some(rotation.successor)
            && !self.successor_used;
        if replayable {
            RotationDecision::Replay
        } else {
            RotationDecision::RevokeFamily
        }
    }
}

/// A refresh token as introspection sees it.
#[derive(Debug)]
pub(crate) struct RefreshStatus {
    pub(crate) session: SessionRef,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
    /// Unused, unexpired, and its session is open.
    pub(crate) active: bool,
}

#[async_trait]
pub(crate) trait SessionStore: Send + Sync + Debug {
    /// Opens a session and stores its first refresh token, atomically.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// Presents a refresh token: claims it, replays it or revokes its family, atomically.
    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError>;
    /// A refresh token's session and state, whether used or not.
    async fn refresh_status(
        &self,
        tenant: TenantId,
        token: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<RefreshStatus>, StoreError>;
}

/// What a revocation entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RevokedKind {
    Jti,
    Session,
    Subject,
}

impl RevokedKind {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Jti => "jti",
            Self::Session => "session",
            Self::Subject => "subject",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "jti" => Some(Self::Jti),
            "session" => Some(Self::Session),
            "subject" => Some(Self::Subject),
            _ => None,
        }
    }

    pub(crate) const fn to_core(self) -> RevocationKind {
        match self {
            Self::Jti => RevocationKind::Jti,
            Self::Session => RevocationKind::Session,
            Self::Subject => RevocationKind::Subject,
        }
    }
}

/// A revocation to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewRevocation {
    pub(crate) kind: RevokedKind,
    /// The jti, `ses_…` or `usr_…` exactly as in tokens.
    pub(crate) value: String,
    /// Subject entries: tokens with `iat` before this (unix seconds) are revoked.
    pub(crate) issued_before: Option<u64>,
    /// Unix seconds after which no token the entry matches is still valid.
    pub(crate) expires_at: u64,
}

/// A recorded revocation, with its feed cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Revocation {
    pub(crate) cursor: i64,
    pub(crate) tenant: TenantId,
    pub(crate) entry: NewRevocation,
}

impl Revocation {
    /// The entry as the feed publishes it and the core applies it.
    pub(crate) fn to_entry(&self) -> RevocationEntry {
        RevocationEntry {
            cursor: self.cursor.to_string(),
            kind: self.entry.kind.to_core(),
            value: self.entry.value.clone(),
            tenant_id: self.tenant.to_string(),
            issued_before: self.entry.issued_before,
            expires_at: self.entry.expires_at,
        }
    }
}

/// Which sessions a revocation closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionScope {
    None,
    One(SessionId),
    AllOf(UserId),
    /// Every session of the user but one (the caller's, after a password change).
    AllOfExcept(UserId, SessionId),
}

/// Sessions to close and entries to record, in one transaction. Every session actually
/// closed also gets a `session` entry expiring at `session_entry_expires_at`.
#[derive(Debug)]
pub(crate) struct RevocationRequest {
    pub(crate) tenant: TenantId,
    pub(crate) now: DateTime<Utc>,
    pub(crate) reason: &'static str,
    pub(crate) sessions: SessionScope,
    pub(crate) session_entry_expires_at: u64,
    pub(crate) entries: Vec<NewRevocation>,
}

/// The identifiers of one token, to look up revocations that match it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RevocationProbe<'a> {
    pub(crate) jti: &'a str,
    pub(crate) session: &'a str,
    pub(crate) subject: &'a str,
}

/// A revocation that matches a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RevocationMatch {
    pub(crate) kind: RevokedKind,
    pub(crate) value: String,
    pub(crate) issued_before: Option<u64>,
}

/// Whether the matches of a token's probe revoke it, decided by a core revocation set so the
/// issuer decides exactly as edges and SDKs do.
pub(crate) fn matches_revoke(matches: &[RevocationMatch], claims: &Claims) -> bool {
    let mut set = RevocationSet::new();
    for found in matches {
        set.apply(&RevocationEntry {
            cursor: String::new(),
            kind: found.kind.to_core(),
            value: found.value.clone(),
            tenant_id: claims.tid().map(String::from).unwrap_or_default(),
            issued_before: found.issued_before,
            expires_at: u64::MAX,
        });
    }
    set.is_revoked(claims)
}

#[async_trait]
pub(crate) trait RevocationStore: Send + Sync + Debug {
    /// Closes sessions and records entries; returns what was recorded, in cursor order.
    async fn revoke(&self, request: &RevocationRequest) -> Result<Vec<Revocation>, StoreError>;
    /// Feed entries after `since` that can still match a valid token at `now`.
    async fn feed_page(
        &self,
        since: i64,
        limit: u16,
        now: u64,
    ) -> Result<Vec<Revocation>, StoreError>;
    /// The largest cursor ever recorded (0 for an empty feed). Entries are never deleted, so
    /// it only grows, and any cursor the feed handed out is at most this.
    async fn latest_cursor(&self) -> Result<i64, StoreError>;
    /// Every entry that can still match a valid token at `now`, to rebuild the blacklist.
    async fn unexpired(&self, now: u64) -> Result<Vec<Revocation>, StoreError>;
    /// Unexpired entries matching one token; the slow path while the blacklist is rebuilt.
    async fn matching(
        &self,
        probe: RevocationProbe<'_>,
        now: u64,
    ) -> Result<Vec<RevocationMatch>, StoreError>;
}

#[async_trait]
pub(crate) trait Blacklist: Send + Sync + Debug {
    /// Copies revocations this process recorded into the fast path, each expiring with its
    /// entry.
    async fn publish(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError>;
    /// Whether the blacklist revokes a verified token (`claims`, whose identifiers `probe`
    /// holds), in one round trip; `None` when the blacklist is not known to be complete and
    /// the durable store must be asked instead.
    async fn revokes(
        &self,
        probe: RevocationProbe<'_>,
        claims: &Claims,
    ) -> Result<Option<bool>, StoreError>;
    /// Whether the completeness marker is present.
    async fn is_hydrated(&self) -> Result<bool, StoreError>;
    /// Writes every given entry and then the marker, atomically.
    async fn hydrate(&self, revocations: &[Revocation], now: u64) -> Result<(), StoreError>;
    /// Removes the marker, sending lookups to the durable store until the next hydration.
    async fn invalidate(&self) -> Result<(), StoreError>;
    /// The feed cursor to poll from, for a blacklist that other processes do not write to
    /// (in-process, beside other replicas); `None`: no polling needed (Redis is shared, and a
    /// single node writes every revocation itself).
    async fn feed_cursor(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
    /// Applies feed entries read after [`feed_cursor`](Self::feed_cursor), moving it.
    async fn follow(&self, _revocations: &[Revocation], _now: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A signing key as stored: material wrapped under the master key.
#[derive(Clone, Debug)]
pub(crate) struct StoredKey {
    pub(crate) kid: String,
    pub(crate) algorithm: SigningAlgorithm,
    pub(crate) wrapped: Wrapped,
    pub(crate) active: bool,
    pub(crate) created_at: DateTime<Utc>,
}

#[async_trait]
pub(crate) trait SigningKeyStore: Send + Sync + Debug {
    /// Every stored key, newest first.
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Stores `candidate` as the one active key, retiring the others, unless an active key of
    /// its algorithm already exists; under a lock every replica takes. Returns the keys that
    /// exist afterwards, so replicas starting together agree on one key.
    async fn install_key(&self, candidate: &StoredKey) -> Result<Vec<StoredKey>, StoreError>;
}

/// Rate-limit budgets (GCRA, design note 0005): Redis shared by every replica, or in process.
#[async_trait]
pub(crate) trait RateLimiter: Send + Sync + Debug {
    /// Spends one request of `key`'s budget under `limit`. `Some(wait)`: refused, spending
    /// nothing, and the budget has room again after `wait`.
    async fn acquire(&self, key: &str, limit: Limit) -> Result<Option<Duration>, StoreError>;
}

/// An account's failure counter as stored (design note 0005, "Lockout").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct LockoutState {
    pub(crate) failures: u32,
    pub(crate) last_failure_at: Option<DateTime<Utc>>,
    /// No secret of the account is checked before this time (a delay or a lock).
    pub(crate) locked_until: Option<DateTime<Utc>>,
}

/// The failure at which graduated delays start.
pub(crate) const DELAY_FROM_FAILURE: u32 = 3;
/// The longest graduated delay.
pub(crate) const MAX_DELAY: TimeDelta = TimeDelta::seconds(30);

/// When failures delay and lock an account: the configuration, or a tenant's override of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LockoutRule {
    /// The failure that locks the account.
    pub(crate) max_failures: u32,
    /// How long a lock lasts; also how long a counter without new failures is remembered.
    pub(crate) lock: TimeDelta,
}

/// What recording one failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LockoutChange {
    pub(crate) after: LockoutState,
    /// This failure is the one that locked the account (once per lock).
    pub(crate) started_lock: bool,
}

impl LockoutRule {
    /// How long the account waits after its `failures`-th consecutive failure: nothing before
    /// the [`DELAY_FROM_FAILURE`]th, then 2^(n−3) s capped at [`MAX_DELAY`], and the lock
    /// from `max_failures` on.
    pub(crate) fn wait_after(&self, failures: u32) -> Option<TimeDelta> {
        if failures >= self.max_failures {
            return Some(self.lock);
        }
        let step = failures.checked_sub(DELAY_FROM_FAILURE)?;
        let secs = 1_i64.checked_shl(step).unwrap_or(i64::MAX);
        Some(TimeDelta::try_seconds(secs).map_or(MAX_DELAY, |delay| delay.min(MAX_DELAY)))
    }

    /// The counter after one more failure at `now`. It starts again from zero once a lock
    /// has ended, or when the last failure is a whole lock period old, so old mistakes do
    /// not lock an account for good. A failure counted while a delay or a lock is in force
    /// leaves it as it is (the store refuses such attempts uncounted; the rule does not rely
    /// on that).
    pub(crate) fn after_failure(
        &self,
        before: Option<LockoutState>,
        now: DateTime<Utc>,
    ) -> LockoutChange {
        let locked = |state: &LockoutState| state.locked_until.is_some_and(|until| until > now);
        let current = before.filter(|state| {
            let lock_over = state.failures >= self.max_failures && !locked(state);
            let stale = state
                .last_failure_at
                .is_none_or(|last| last + self.lock <= now);
            !lock_over && !stale
        });
        let prior = current.unwrap_or_default();
        let failures = prior.failures.saturating_add(1);
        let wait_until = if failures > self.max_failures {
            None
        } else {
            self.wait_after(failures).map(|wait| now + wait)
        };
        let still_locked = current.filter(locked).and_then(|state| state.locked_until);
        LockoutChange {
            after: LockoutState {
                failures,
                last_failure_at: Some(now),
                locked_until: wait_until.max(still_locked),
            },
            started_lock: failures == self.max_failures,
        }
    }
}

/// What beginning one secret check of an account did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttemptStart {
    /// The account waits until then (a delay or a lock): refused, and nothing was counted.
    Refused(DateTime<Utc>),
    /// Counted as a failure before the secret is checked; only a success resets it.
    Counted(LockoutChange),
}

#[async_trait]
pub(crate) trait LockoutStore: Send + Sync + Debug {
    /// Begins one secret check under the tenant's rule (`default` unless the tenant overrides
    /// it): refused while the account waits, otherwise counted as a failure at once, in one
    /// atomic step. Counting before the check, not after it, is what stops guesses sent side
    /// by side from all passing a check that none of them has counted yet.
    async fn begin_attempt(
        &self,
        tenant: TenantId,
        account: &[u8; 32],
        now: DateTime<Utc>,
        default: LockoutRule,
    ) -> Result<AttemptStart, StoreError>;
    /// Forgets the account's failures after a success.
    async fn reset(&self, tenant: TenantId, account: &[u8; 32]) -> Result<(), StoreError>;
}

/// An audit event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewAuditEvent {
    pub(crate) tenant: TenantId,
    pub(crate) user: Option<UserId>,
    pub(crate) kind: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) ip: String,
    pub(crate) user_agent: Option<String>,
    /// A JSON object, already serialized.
    pub(crate) detail: String,
    pub(crate) created_at: DateTime<Utc>,
}

/// A recorded audit event of the tenant it was listed for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuditRecord {
    pub(crate) id: i64,
    pub(crate) user: Option<UserId>,
    pub(crate) kind: String,
    pub(crate) outcome: String,
    pub(crate) ip: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) detail: String,
    pub(crate) created_at: DateTime<Utc>,
}

/// Which events of one tenant to list, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuditFilter {
    pub(crate) tenant: TenantId,
    pub(crate) user: Option<UserId>,
    pub(crate) kind: Option<&'static str>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) until: Option<DateTime<Utc>>,
    /// Only events older than this id (the previous page's last).
    pub(crate) before_id: Option<i64>,
    pub(crate) limit: u16,
}

#[async_trait]
pub(crate) trait AuditStore: Send + Sync + Debug {
    async fn record(&self, event: &NewAuditEvent) -> Result<(), StoreError>;
    /// Events matching `filter`, newest first, at most `filter.limit`.
    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
}

/// What an `mfa_token` may be used for (design note 0005, "TOTP MFA").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChallengePurpose {
    /// The second step of a login of a user with confirmed TOTP (`POST /v1/auth/mfa/verify`).
    Verify,
    /// Enrolment of a user whose tenant requires MFA and who has none yet (enroll, confirm).
    Enroll,
}

impl ChallengePurpose {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Enroll => "enroll",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "verify" => Some(Self::Verify),
            "enroll" => Some(Self::Enroll),
            _ => None,
        }
    }
}

/// An `mfa_token` to store (its hash only).
#[derive(Debug)]
pub(crate) struct NewChallenge {
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) token: TokenHash,
    pub(crate) purpose: ChallengePurpose,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

/// An unused, unexpired `mfa_token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) user: UserId,
    pub(crate) purpose: ChallengePurpose,
}

/// A user's TOTP secret as stored: sealed under the master key.
#[derive(Clone, Debug)]
pub(crate) struct StoredTotp {
    pub(crate) sealed: Wrapped,
    /// Enrolment was confirmed with a code: login asks for the second factor.
    pub(crate) confirmed: bool,
}

/// A second factor that was checked and is now to be spent, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpentFactor {
    /// The RFC 6238 time step a TOTP code matched; spent when it is after the last one.
    TotpStep(u64),
    /// The SHA-256 of a backup code; spent when it is one of the user's unused codes.
    BackupCode(TokenHash),
}

/// A first code for an enrolment, and the backup codes that go with it.
#[derive(Debug)]
pub(crate) struct TotpConfirmation<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    /// The nonce of the sealed secret the code matched: confirms that secret, not one a
    /// concurrent enrolment stored meanwhile.
    pub(crate) secret_nonce: &'a [u8],
    pub(crate) step: u64,
    /// SHA-256 of each new backup code; replaces any earlier set.
    pub(crate) backup_codes: &'a [TokenHash],
    pub(crate) now: DateTime<Utc>,
    /// An enrolment `mfa_token` consumed in the same transaction.
    pub(crate) challenge: Option<TokenHash>,
}

/// What confirming an enrolment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConfirmOutcome {
    Confirmed,
    /// No unconfirmed enrolment of that secret (none at all, confirmed or replaced meanwhile).
    NotPending,
    /// The enrolment `mfa_token` was used or expired meanwhile.
    ChallengeGone,
}

/// What completing a login's second step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompletionOutcome {
    /// The challenge and the factor are both spent.
    Completed,
    /// The `mfa_token` is used, expired or unknown; nothing was spent.
    ChallengeGone,
    /// The factor was already spent (a replayed step or a used backup code); nothing was spent.
    FactorRefused,
}

/// A password reset that took place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PasswordReset {
    pub(crate) user: UserId,
    /// The address had never been verified and TOTP was on (confirmed): it is gone. Whoever
    /// set it up had not proved the address, so it may be someone who registered the address
    /// before its owner and would otherwise keep the owner out after the reset.
    pub(crate) removed_unproven_mfa: bool,
}

/// What a backup-code regeneration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegenerationOutcome {
    /// The factor is spent and the new codes replace the old.
    Replaced,
    /// The user has no confirmed TOTP; nothing changed.
    NotEnrolled,
    /// The factor was already spent, or the backup code is not in the current set; nothing
    /// changed.
    FactorRefused,
}

/// TOTP secrets, backup codes, MFA challenges and the tenant MFA policy (design note 0005).
/// Every spend is one conditional write, so a code, a backup code or an `mfa_token` is used
/// once, also when it is presented concurrently on several replicas.
#[async_trait]
pub(crate) trait MfaStore: Send + Sync + Debug {
    /// The user's TOTP secret, confirmed or not.
    async fn totp(&self, tenant: TenantId, user: UserId) -> Result<Option<StoredTotp>, StoreError>;
    /// Stores a new unconfirmed secret, replacing an unconfirmed one. `false`: the user has a
    /// confirmed secret, which is left as it is.
    async fn begin_totp(
        &self,
        tenant: TenantId,
        user: UserId,
        sealed: &Wrapped,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Confirms an enrolment with the step of its first code and stores its backup codes.
    async fn confirm_totp(
        &self,
        confirmation: &TotpConfirmation<'_>,
    ) -> Result<ConfirmOutcome, StoreError>;
    /// Spends a checked factor of a user with confirmed TOTP; `false` if it was spent before.
    async fn spend_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        factor: SpentFactor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Spends a `verify` challenge of `user` and a factor together, or neither.
    async fn complete_challenge(
        &self,
        tenant: TenantId,
        token: &TokenHash,
        user: UserId,
        factor: SpentFactor,
        now: DateTime<Utc>,
    ) -> Result<CompletionOutcome, StoreError>;
    /// Removes the secret and the backup codes; `false` if there was no confirmed secret.
    async fn disable_totp(&self, tenant: TenantId, user: UserId) -> Result<bool, StoreError>;
    /// Spends `factor` and replaces the backup codes of a user with confirmed TOTP, in one
    /// transaction under the user's TOTP row lock: of two regenerations side by side, the
    /// later one finds the earlier one's set in place, so a backup code from the old set is
    /// refused rather than answered with codes that are replaced at once.
    async fn regenerate_backup_codes(
        &self,
        tenant: TenantId,
        user: UserId,
        factor: SpentFactor,
        codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<RegenerationOutcome, StoreError>;
    /// How many unused backup codes the user has.
    async fn backup_codes_left(&self, tenant: TenantId, user: UserId) -> Result<u32, StoreError>;
    /// Stores a challenge, deleting the user's spent and expired ones.
    async fn create_challenge(&self, challenge: &NewChallenge) -> Result<(), StoreError>;
    /// The unused challenge with this token hash, if it has not expired at `now`.
    async fn challenge(
        &self,
        tenant: TenantId,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, StoreError>;
    /// Whether the tenant requires every user to have a second factor.
    async fn mfa_required(&self, tenant: TenantId) -> Result<bool, StoreError>;
}

/// Whom a message (and the link in it) is for: a known user, or the account, if any, that
/// holds a normalized address. For an address without an account nothing is stored, but the
/// same statements run, so both cases take the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Addressee<'a> {
    User(UserId),
    Email(&'a str),
}

/// What a one-time token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkPurpose {
    VerifyEmail,
    ResetPassword,
}

impl LinkPurpose {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A one-time token to store with the message that carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NewLink {
    /// SHA-256 of the token, the only form stored.
    pub(crate) hash: [u8; 32],
    pub(crate) purpose: LinkPurpose,
    pub(crate) expires_at: DateTime<Utc>,
    /// Marks the addressee's older unused tokens of the same purpose used (a new reset link
    /// retires the previous ones).
    pub(crate) supersede: bool,
}

/// A rendered message to queue. `Debug` leaves out the bodies: they may hold a link token.
pub(crate) struct OutboxMessage {
    pub(crate) id: uuid::Uuid,
    pub(crate) tenant: TenantId,
    pub(crate) template: &'static str,
    pub(crate) sender: String,
    pub(crate) subject: String,
    pub(crate) body_text: String,
    pub(crate) body_html: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// A message the worker claimed for one sending attempt. `Debug` leaves out the bodies.
pub(crate) struct DueMessage {
    pub(crate) id: uuid::Uuid,
    pub(crate) recipient: String,
    pub(crate) sender: String,
    pub(crate) subject: String,
    pub(crate) body_text: String,
    pub(crate) body_html: String,
    /// Attempts so far, this one included.
    pub(crate) attempts: u32,
}

impl Debug for DueMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueMessage")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A tenant's override of one message kind; `None` keeps the built-in default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TemplateOverride {
    pub(crate) sender: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) body_text: Option<String>,
    pub(crate) body_html: Option<String>,
}

/// The durable outbox (design note 0005, "Email").
#[async_trait]
pub(crate) trait OutboxStore: Send + Sync + Debug {
    /// The tenant's override of the message kind `template`.
    async fn template_override(
        &self,
        tenant: TenantId,
        template: &str,
    ) -> Result<Option<TemplateOverride>, StoreError>;
    /// Queues `message` to the addressee's stored address, with `link` when it carries one,
    /// in one transaction. `false`: no such account, and nothing was stored.
    async fn enqueue(
        &self,
        to: Addressee<'_>,
        message: &OutboxMessage,
        link: Option<&NewLink>,
    ) -> Result<bool, StoreError>;
    /// Claims up to `limit` messages due at `now` for one attempt each, leasing them until
    /// `lease_until` so that no other worker sends them meanwhile.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u16,
    ) -> Result<Vec<DueMessage>, StoreError>;
    /// Records the delivery and drops the bodies.
    async fn mark_sent(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records a failed attempt: retried at `retry_at`, or given up (bodies dropped) when
    /// `None`.
    async fn mark_failed(
        &self,
        id: uuid::Uuid,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StoreError>;
}

/// One-time tokens (design note 0005, "One-time tokens"): each change consumes the token with
/// one conditional `UPDATE` in the transaction that makes the change, so a link works once.
#[async_trait]
pub(crate) trait OneTimeTokenStore: Send + Sync + Debug {
    /// Consumes an unexpired verification token and marks the user's email verified; the
    /// user, or `None` for an unknown, used or expired token.
    async fn verify_email(
        &self,
        tenant: TenantId,
        token: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;
    /// Consumes an unexpired reset token, sets the password hash, marks the address verified
    /// and retires the user's other reset tokens; if the address had never been verified, also
    /// removes the second factor. `None` for an unknown, used or expired token.
    async fn reset_password(
        &self,
        tenant: TenantId,
        token: &[u8; 32],
        now: DateTime<Utc>,
        password_hash: &str,
    ) -> Result<Option<PasswordReset>, StoreError>;
    /// Replaces a user's password hash, if it is still `checked_hash` (the one the current
    /// password was checked against), and retires their reset tokens. `false`, changing
    /// nothing: a reset or another change replaced the password after the check, so the
    /// password the caller proved is no longer current.
    async fn change_password(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
        checked_hash: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError>;
}

/// A dependency `/readyz` checks.
#[async_trait]
pub(crate) trait Probe: Send + Sync + Debug {
    /// The dependency's name in `/readyz` answers.
    fn name(&self) -> &'static str;
    /// One cheap round trip.
    async fn ping(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
    }

    pub(crate) fn rotation(now: i64, grace: i64) -> Rotation {
        Rotation {
            tenant: crate::ids::DEFAULT_TENANT,
            parent: [1; 32],
            successor: [2; 32],
            now: at(now),
            refresh_ttl: TimeDelta::seconds(3_600),
            grace: TimeDelta::seconds(grace),
            revocation_expires_at: 0,
        }
    }

    fn unused() -> RefreshState {
        RefreshState {
            session: SessionRef {
                id: SessionId::from_uuid(uuid::Uuid::from_u128(7)),
                user: UserId::from_uuid(uuid::Uuid::from_u128(8)),
                amr: vec!["pwd".into()],
            },
            expires_at: at(1_000),
            used_at: None,
            successor: None,
            successor_used: false,
            session_revoked: false,
            session_expires_at: at(10_000),
        }
    }

    fn used_at(secs: i64) -> RefreshState {
        RefreshState {
            used_at: Some(at(secs)),
            successor: Some([2; 32]),
            ..unused()
        }
    }

    #[test]
    fn an_unused_token_is_claimed_until_it_expires() {
        assert_eq!(unused().decide(&rotation(0, 10)), RotationDecision::Claim);
        assert_eq!(unused().decide(&rotation(999, 10)), RotationDecision::Claim);
        assert_eq!(
            unused().decide(&rotation(1_000, 10)),
            RotationDecision::Reject
        );
    }

    #[test]
    fn a_closed_session_rejects_unused_tokens_and_reports_used_ones() {
        let revoked = RefreshState {
            session_revoked: true,
            ..unused()
        };
        assert_eq!(revoked.decide(&rotation(1, 10)), RotationDecision::Reject);
        let revoked_used = RefreshState {
            session_revoked: true,
            ..used_at(0)
        };
        assert_eq!(
            revoked_used.decide(&rotation(1, 10)),
            RotationDecision::RevokeFamily
        );
        let over = RefreshState {
            session_expires_at: at(5),
            ..used_at(0)
        };
        assert_eq!(over.decide(&rotation(5, 10)), RotationDecision::Reject);
        let over = RefreshState {
            session_expires_at: at(5),
            ..unused()
        };
        assert_eq!(over.decide(&rotation(5, 10)), RotationDecision::Reject);
    }

    #[test]
    fn a_duplicate_inside_the_grace_window_is_replayed() {
        assert_eq!(
            used_at(0).decide(&rotation(0, 10)),
            RotationDecision::Replay
        );
        assert_eq!(
            used_at(0).decide(&rotation(10, 10)),
            RotationDecision::Replay
        );
        assert_eq!(
            used_at(0).decide(&rotation(11, 10)),
            RotationDecision::RevokeFamily
        );
    }

    #[test]
    fn no_grace_window_means_any_reuse_revokes() {
        assert_eq!(
            used_at(0).decide(&rotation(0, 0)),
            RotationDecision::RevokeFamily
        );
    }

    pub(crate) fn claims(iat: u64) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "http://issuer", "sub": "usr_1", "aud": "portcullis", "exp": iat + 900,
            "nbf": iat, "iat": iat, "jti": "jti-1", "tid": "tnt_1", "sid": "ses_1",
        }))
        .expect("well-typed claims")
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
        assert!(!matches_revoke(&[], &claims(100)));
        let jti = [hit(RevokedKind::Jti, "jti-1", None)];
        assert!(matches_revoke(&jti, &claims(100)));
        let session = [hit(RevokedKind::Session, "ses_1", None)];
        assert!(matches_revoke(&session, &claims(100)));
        let subject = [hit(RevokedKind::Subject, "usr_1", Some(100))];
        assert!(matches_revoke(&subject, &claims(99)));
        assert!(!matches_revoke(&subject, &claims(100)));
    }

    const RULE: LockoutRule = LockoutRule {
        max_failures: 10,
        lock: TimeDelta::seconds(900),
    };

    #[test]
    fn delays_double_from_the_third_failure_up_to_thirty_seconds() {
        let waits: Vec<_> = (1..=10)
            .map(|n| RULE.wait_after(n).map(|wait| wait.num_seconds()))
            .collect();
        assert_eq!(
            waits,
            [
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(30),
                Some(30),
                Some(900)
            ]
        );
        let long = LockoutRule {
            max_failures: 100,
            ..RULE
        };
        assert_eq!(long.wait_after(99), Some(MAX_DELAY), "no overflow far out");
        let short = LockoutRule {
            max_failures: 2,
            ..RULE
        };
        assert_eq!(short.wait_after(1), None);
        assert_eq!(short.wait_after(2), Some(TimeDelta::seconds(900)));
    }

    /// Counts `n` failures one second apart, each after the previous wait ended.
    fn fail(
        rule: LockoutRule,
        mut state: Option<LockoutState>,
        n: u32,
        from: i64,
    ) -> LockoutChange {
        let mut now = from;
        let mut change = rule.after_failure(state, at(now));
        for _ in 1..n {
            state = Some(change.after);
            now = change
                .after
                .locked_until
                .map_or(now + 1, |until| (until - at(0)).num_seconds());
            change = rule.after_failure(state, at(now));
        }
        change
    }

    #[test]
    fn the_tenth_failure_locks_once_for_the_lock_period() {
        let ninth = fail(RULE, None, 9, 0);
        assert!(!ninth.started_lock);
        assert_eq!(ninth.after.failures, 9);
        let now = ninth.after.locked_until.unwrap();
        let tenth = RULE.after_failure(Some(ninth.after), now);
        assert!(tenth.started_lock);
        assert_eq!(
            tenth.after.locked_until,
            Some(now + TimeDelta::seconds(900))
        );
        // A guess that raced past the guard while the lock was set neither ends nor
        // restarts the lock, and is not a new lock.
        let straggler = RULE.after_failure(Some(tenth.after), now + TimeDelta::seconds(1));
        assert!(!straggler.started_lock);
        assert_eq!(straggler.after.failures, 11);
        assert_eq!(straggler.after.locked_until, tenth.after.locked_until);
    }

    #[test]
    fn counting_starts_again_after_a_lock_or_a_quiet_period() {
        let locked = fail(RULE, None, 10, 0).after;
        let after_lock = RULE.after_failure(Some(locked), locked.locked_until.unwrap());
        assert_eq!(after_lock.after.failures, 1);
        assert_eq!(after_lock.after.locked_until, None);
        let two = fail(RULE, None, 2, 0).after;
        let later = RULE.after_failure(Some(two), at(1 + 900));
        assert_eq!(
            later.after.failures, 1,
            "a failure a lock period old is forgotten"
        );
        let soon = RULE.after_failure(Some(two), at(1 + 899));
        assert_eq!(soon.after.failures, 3);
        assert_eq!(soon.after.locked_until, Some(at(900 + 1)));
    }

    #[test]
    fn a_delay_in_force_is_never_shortened() {
        let state = LockoutState {
            failures: 4,
            last_failure_at: Some(at(0)),
            locked_until: Some(at(20)),
        };
        // The 5th failure (4 s) arrives concurrently at 1 s: the 20 s already set stays.
        let change = RULE.after_failure(Some(state), at(1));
        assert_eq!(change.after.locked_until, Some(at(20)));
    }

    #[test]
    fn a_replay_needs_the_same_unused_successor() {
        let moved_on = RefreshState {
            successor_used: true,
            ..used_at(0)
        };
        assert_eq!(
            moved_on.decide(&rotation(1, 10)),
            RotationDecision::RevokeFamily
        );
        let other = RefreshState {
            successor: Some([3; 32]),
            ..used_at(0)
        };
        assert_eq!(
            other.decide(&rotation(1, 10)),
            RotationDecision::RevokeFamily
        );
    }
}
