//! Account lockout (design note 0005, "Lockout"): on by default, counted per account on every
//! entry point that checks a secret.
//!
//! An entry point calls [`Lockout::begin`] before it checks the secret: while the account
//! waits out a delay or a lock the attempt is refused (no Argon2 work and no code comparison,
//! and a right secret is refused too); otherwise the attempt is counted as a failure at once.
//! After the check, a success resets the counter ([`Lockout::succeeded`]); anything else
//! leaves the attempt counted. Counting before the check means that guesses sent side by side
//! cannot all pass a guard that none of them has been counted by: the attempt that reaches a
//! delay or the lock turns away every later one, on any replica.
//!
//! The attempt that starts a lock records it (audit, log, alert mail) in `begin`, before its
//! secret is checked: a client that drops the connection during the check cancels the rest
//! of the request, and a lock must not start without a trace. If that attempt's secret turns
//! out right, the success ends the lock at once; the owner has still learned that the
//! account reached the lock.
//!
//! Counters are keyed by [`AccountKey`], a hash of tenant and normalized email, so an address
//! without an account is delayed and locked exactly like a real one and the answers never
//! tell them apart.
//!
//! Graduated delays are not slept through while holding the request: a failure records "no
//! attempt before T", and an attempt before T is refused with the same 423 `account_locked`
//! as a lock, with `Retry-After` and `locked_until`. One code keeps clients simple (wait until
//! the time given) and does not tell a guesser how close the account is to a lock.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tracing::{instrument, warn};

use super::audit::{AuditEvent, AuditKind, AuditLog, AuditOutcome, RequestContext};
use super::mail::{Mailer, Notice};
use crate::clock::Clock;
use crate::config::LockoutSettings;
use crate::error::ApiError;
use crate::ids::{TenantId, UserId};
use crate::store::{AttemptStart, LockoutRule, LockoutStore};

/// The account a secret is presented for: SHA-256 of tenant and normalized email. Stable
/// across replicas, the same for an address with or without an account, and no address in
/// the database or the log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccountKey {
    tenant: TenantId,
    hash: [u8; 32],
}

impl AccountKey {
    /// The key of `email_normalized` (as `service::email::normalize` gives it, or a user's
    /// stored `email_normalized`) in `tenant`.
    pub(crate) fn new(tenant: TenantId, email_normalized: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(tenant.to_string().as_bytes());
        hash.update([0]);
        hash.update(email_normalized.as_bytes());
        Self {
            tenant,
            hash: hash.finalize().into(),
        }
    }

    /// The first 16 bytes in hex: the rate limiter's Redis key, stable across replicas and
    /// holding no address.
    pub(crate) fn short_hex(&self) -> String {
        self.hash
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl fmt::Debug for AccountKey {
    /// A short fingerprint: enough to tell keys apart in a log, not to look an address up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, ..] = self.hash;
        write!(
            f,
            "AccountKey({}, {a:02x}{b:02x}{c:02x}{d:02x}…)",
            self.tenant
        )
    }
}

/// Guards, counts and resets failures.
#[derive(Debug)]
pub(crate) struct Lockout {
    store: Arc<dyn LockoutStore>,
    audit: Arc<AuditLog>,
    /// Sends the one alert of each lock of a real account.
    mailer: Arc<Mailer>,
    clock: Clock,
    enabled: bool,
    rule: LockoutRule,
}

impl Lockout {
    pub(crate) fn new(
        store: Arc<dyn LockoutStore>,
        audit: Arc<AuditLog>,
        mailer: Arc<Mailer>,
        clock: Clock,
        settings: LockoutSettings,
    ) -> Self {
        let lock_secs = i64::try_from(settings.lock_secs).unwrap_or(i64::MAX);
        Self {
            store,
            audit,
            mailer,
            clock,
            enabled: settings.enabled,
            rule: LockoutRule {
                max_failures: settings.max_failures,
                lock: TimeDelta::try_seconds(lock_secs).unwrap_or(TimeDelta::MAX),
            },
        }
    }

    /// Begins a secret check of the account: refused while it waits out a delay or a lock,
    /// otherwise counted as a failure until [`Lockout::succeeded`] resets the counter. Call it
    /// before the secret is checked. If this attempt locks the account, the lock is recorded
    /// in the audit log, logged at warn and, for a real account (`user`), mailed to its owner:
    /// once per lock, whatever the entry point.
    ///
    /// # Errors
    ///
    /// 423 `account_locked` with `Retry-After` and `locked_until`; an internal error when the
    /// store or the audit log fails (closed: a lock must not vanish with the database).
    #[instrument(skip_all, name = "lockout.begin")]
    pub(crate) async fn begin(
        &self,
        key: &AccountKey,
        user: Option<UserId>,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let now = self.clock.now();
        let change = match self
            .store
            .begin_attempt(key.tenant, &key.hash, now, self.rule)
            .await?
        {
            AttemptStart::Refused(until) => return Err(ApiError::account_locked(until, now)),
            AttemptStart::Counted(change) => change,
        };
        if let (true, Some(until)) = (change.started_lock, change.after.locked_until) {
            self.record_lock(key, user, context, change.after.failures, until)
                .await?;
            if let Some(user) = user {
                let notice = Notice::AccountLocked { until };
                self.mailer.notify(key.tenant, user, notice).await;
            }
        }
        Ok(())
    }

    /// Forgets the account's failures after a successful secret check.
    ///
    /// # Errors
    ///
    /// An internal error when the store fails.
    #[instrument(skip_all, name = "lockout.succeeded")]
    pub(crate) async fn succeeded(&self, key: &AccountKey) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        Ok(self.store.reset(key.tenant, &key.hash).await?)
    }

    async fn record_lock(
        &self,
        key: &AccountKey,
        user: Option<UserId>,
        context: &RequestContext,
        failures: u32,
        until: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        warn!(
            target: "security",
            event = "lockout",
            outcome = "locked",
            tenant_id = %key.tenant,
            subject_id = user.map(tracing::field::display),
            account = ?key,
            client_ip = %context.ip,
            failures,
            locked_until = %until,
        );
        self.audit
            .record(AuditEvent {
                tenant: key.tenant,
                user,
                kind: AuditKind::Lockout,
                outcome: AuditOutcome::Failure,
                context,
                detail: json!({"failures": failures, "locked_until": until}),
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::DEFAULT_TENANT;

    #[test]
    fn account_keys_hide_the_email_and_separate_tenants() {
        let one = AccountKey::new(DEFAULT_TENANT, "alice@example.com");
        assert_eq!(one, AccountKey::new(DEFAULT_TENANT, "alice@example.com"));
        let other = TenantId::from_uuid(uuid::Uuid::from_u128(99));
        assert_ne!(one, AccountKey::new(other, "alice@example.com"));
        assert_ne!(one, AccountKey::new(DEFAULT_TENANT, "bob@example.com"));
        let debug = format!("{one:?}");
        assert!(!debug.contains("alice"), "{debug}");
        assert_eq!(one.short_hex().len(), 32);
        assert!(debug.contains(&one.short_hex()[..8]), "{debug}");
    }
}
