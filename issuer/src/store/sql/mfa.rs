//! TOTP secrets, backup codes, MFA challenges and the tenant MFA policy (design note 0005,
//! "TOTP MFA").
//!
//! Each spend is one conditional `UPDATE` whose `WHERE` says "not spent yet": the accepted
//! TOTP step only moves forward (`last_step < $step`), a backup code or a challenge goes from
//! `used_at IS NULL` to a time. Whoever changes the row wins; a concurrent presentation of the
//! same code, on any replica, changes nothing and is refused. A login's second step spends the
//! challenge and the factor in one transaction, so a failure spends neither.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Binds as _, Columns as _, SqlBackend, WriteLock, to_db_secs};
use crate::crypto::keys::Wrapped;
use crate::crypto::refresh::TokenHash;
use crate::ids::{TenantId, UserId};
use crate::store::{
    Challenge, ChallengePurpose, CompletionOutcome, ConfirmOutcome, MfaStore, NewChallenge,
    RegenerationOutcome, SpentFactor, StoreError, StoredTotp, TotpConfirmation,
};

#[async_trait]
impl<B: SqlBackend> MfaStore for B {
    async fn totp(&self, tenant: TenantId, user: UserId) -> Result<Option<StoredTotp>, StoreError> {
        let query = B::query(
            "SELECT secret_nonce, secret_sealed, confirmed_at FROM mfa_totp \
             WHERE tenant_id = $1 AND user_id = $2",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid());
        let mut conn = self.read().await?;
        let Some(row) = B::fetch_optional(query, &mut conn).await? else {
            return Ok(None);
        };
        Ok(Some(StoredTotp {
            sealed: Wrapped {
                nonce: row.bytes("secret_nonce")?,
                ciphertext: row.bytes("secret_sealed")?,
            },
            confirmed: row.opt_time("confirmed_at")?.is_some(),
        }))
    }

    async fn begin_totp(
        &self,
        tenant: TenantId,
        user: UserId,
        sealed: &Wrapped,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let upsert = B::query(
            "INSERT INTO mfa_totp (tenant_id, user_id, secret_nonce, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET \
               secret_nonce = excluded.secret_nonce, secret_sealed = excluded.secret_sealed, \
               created_at = excluded.created_at, last_step = NULL \
             WHERE mfa_totp.confirmed_at IS NULL",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .bytes(&sealed.nonce)
        .bytes(&sealed.ciphertext)
        .time(now);
        let stored = B::execute(upsert, &mut tx).await? == 1;
        B::commit(tx).await?;
        Ok(stored)
    }

    async fn confirm_totp(
        &self,
        confirmation: &TotpConfirmation<'_>,
    ) -> Result<ConfirmOutcome, StoreError> {
        let (tenant, user) = (confirmation.tenant, confirmation.user);
        let mut tx = self.write().await?;
        if let Some(token) = &confirmation.challenge {
            let spent = spend_challenge::<B>(
                &mut tx,
                tenant,
                token,
                user,
                ChallengePurpose::Enroll,
                confirmation.now,
            )
            .await?;
            if !spent {
                return Ok(ConfirmOutcome::ChallengeGone);
            }
        }
        // A pending row has no accepted step yet (`begin_totp` clears it). The nonce names
        // the secret the code was checked against: a concurrent new enrolment replaced it.
        let confirm = B::query(
            "UPDATE mfa_totp SET confirmed_at = $3, last_step = $4 \
             WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NULL \
               AND secret_nonce = $5",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .time(confirmation.now)
        .int(to_db_secs(confirmation.step))
        .bytes(confirmation.secret_nonce);
        if B::execute(confirm, &mut tx).await? != 1 {
            return Ok(ConfirmOutcome::NotPending);
        }
        store_backup_codes::<B>(
            &mut tx,
            tenant,
            user,
            confirmation.backup_codes,
            confirmation.now,
        )
        .await?;
        B::commit(tx).await?;
        Ok(ConfirmOutcome::Confirmed)
    }

    async fn spend_factor(
        &self,
        tenant: TenantId,
        user: UserId,
        factor: SpentFactor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let spent = spend::<B>(&mut tx, tenant, user, factor, now).await?;
        B::commit(tx).await?;
        Ok(spent)
    }

    async fn complete_challenge(
        &self,
        tenant: TenantId,
        token: &TokenHash,
        user: UserId,
        factor: SpentFactor,
        now: DateTime<Utc>,
    ) -> Result<CompletionOutcome, StoreError> {
        let mut tx = self.write().await?;
        // The challenge first: on PostgreSQL its row lock makes a concurrent completion of the
        // same challenge wait for this one, then find it used. Dropping `tx` rolls back.
        let challenge_spent =
            spend_challenge::<B>(&mut tx, tenant, token, user, ChallengePurpose::Verify, now)
                .await?;
        if !challenge_spent {
            return Ok(CompletionOutcome::ChallengeGone);
        }
        if !spend::<B>(&mut tx, tenant, user, factor, now).await? {
            return Ok(CompletionOutcome::FactorRefused);
        }
        B::commit(tx).await?;
        Ok(CompletionOutcome::Completed)
    }

    async fn disable_totp(&self, tenant: TenantId, user: UserId) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let delete = B::query(
            "DELETE FROM mfa_totp \
             WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid());
        if B::execute(delete, &mut tx).await? != 1 {
            return Ok(false);
        }
        let codes = B::query("DELETE FROM mfa_backup_codes WHERE tenant_id = $1 AND user_id = $2")
            .id(tenant.as_uuid())
            .id(user.as_uuid());
        B::execute(codes, &mut tx).await?;
        B::commit(tx).await?;
        Ok(true)
    }

    async fn regenerate_backup_codes(
        &self,
        tenant: TenantId,
        user: UserId,
        factor: SpentFactor,
        codes: &[TokenHash],
        now: DateTime<Utc>,
    ) -> Result<RegenerationOutcome, StoreError> {
        let mut tx = self.write().await?;
        // Under the row lock, the check, the spend and the delete below see a concurrent
        // regeneration's codes once it has committed (READ COMMITTED). Dropping `tx` rolls
        // back.
        B::lock(&mut tx, WriteLock::MfaTotp { tenant, user }).await?;
        let enrolled = B::query(
            "SELECT 1 AS one FROM mfa_totp \
             WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid());
        if B::fetch_optional(enrolled, &mut tx).await?.is_none() {
            return Ok(RegenerationOutcome::NotEnrolled);
        }
        if !spend::<B>(&mut tx, tenant, user, factor, now).await? {
            return Ok(RegenerationOutcome::FactorRefused);
        }
        store_backup_codes::<B>(&mut tx, tenant, user, codes, now).await?;
        B::commit(tx).await?;
        Ok(RegenerationOutcome::Replaced)
    }

    async fn backup_codes_left(&self, tenant: TenantId, user: UserId) -> Result<u32, StoreError> {
        let query = B::query(
            "SELECT CAST(count(*) AS BIGINT) AS left_count FROM mfa_backup_codes \
             WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid());
        let mut conn = self.read().await?;
        let count = B::fetch_one(query, &mut conn).await?.int("left_count")?;
        u32::try_from(count).map_err(|_| StoreError::Corrupt(format!("backup codes {count}")))
    }

    async fn create_challenge(&self, challenge: &NewChallenge) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        // Spent and expired challenges of the user go now: nothing else ever reads them.
        let prune = B::query(
            "DELETE FROM mfa_challenges WHERE tenant_id = $1 AND user_id = $2 \
               AND (used_at IS NOT NULL OR expires_at <= $3)",
        )
        .id(challenge.tenant.as_uuid())
        .id(challenge.user.as_uuid())
        .time(challenge.created_at);
        B::execute(prune, &mut tx).await?;
        let insert = B::query(
            "INSERT INTO mfa_challenges \
               (token_hash, tenant_id, user_id, purpose, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bytes(challenge.token.as_slice())
        .id(challenge.tenant.as_uuid())
        .id(challenge.user.as_uuid())
        .text(challenge.purpose.as_str())
        .time(challenge.created_at)
        .time(challenge.expires_at);
        B::execute(insert, &mut tx).await?;
        B::commit(tx).await?;
        Ok(())
    }

    async fn challenge(
        &self,
        tenant: TenantId,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, StoreError> {
        let query = B::query(
            "SELECT user_id, purpose FROM mfa_challenges \
             WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bytes(token.as_slice())
        .id(tenant.as_uuid())
        .time(now);
        let mut conn = self.read().await?;
        let Some(row) = B::fetch_optional(query, &mut conn).await? else {
            return Ok(None);
        };
        let purpose = row.text("purpose")?;
        Ok(Some(Challenge {
            user: UserId::from_uuid(row.id("user_id")?),
            purpose: ChallengePurpose::from_name(&purpose)
                .ok_or_else(|| StoreError::Corrupt(format!("challenge purpose {purpose:?}")))?,
        }))
    }

    async fn mfa_required(&self, tenant: TenantId) -> Result<bool, StoreError> {
        let query = B::query("SELECT require_mfa FROM tenant_mfa_policies WHERE tenant_id = $1")
            .id(tenant.as_uuid());
        let mut conn = self.read().await?;
        let row = B::fetch_optional(query, &mut conn).await?;
        Ok(row
            .map(|row| row.flag("require_mfa"))
            .transpose()?
            .unwrap_or(false))
    }
}

/// Marks an unused, unexpired challenge of `user` for `purpose` used; `false` if there is none.
async fn spend_challenge<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    token: &TokenHash,
    user: UserId,
    purpose: ChallengePurpose,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = B::query(
        "UPDATE mfa_challenges SET used_at = $5 \
         WHERE token_hash = $1 AND tenant_id = $2 AND user_id = $3 AND purpose = $4 \
           AND used_at IS NULL AND expires_at > $5",
    )
    .bytes(token.as_slice())
    .id(tenant.as_uuid())
    .id(user.as_uuid())
    .text(purpose.as_str())
    .time(now);
    Ok(B::execute(update, conn).await? == 1)
}

/// Spends a checked factor; `false` if it was spent before (or the user has no confirmed TOTP).
async fn spend<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
    factor: SpentFactor,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let update = match factor {
        SpentFactor::TotpStep(step) => B::query(
            "UPDATE mfa_totp SET last_step = $3 \
             WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL \
               AND (last_step IS NULL OR last_step < $3)",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .int(to_db_secs(step)),
        SpentFactor::BackupCode(hash) => B::query(
            "UPDATE mfa_backup_codes SET used_at = $4 \
             WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .bytes(hash.as_slice())
        .time(now),
    };
    Ok(B::execute(update, conn).await? == 1)
}

/// Replaces the user's backup codes with `codes`.
async fn store_backup_codes<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
    codes: &[TokenHash],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let delete = B::query("DELETE FROM mfa_backup_codes WHERE tenant_id = $1 AND user_id = $2")
        .id(tenant.as_uuid())
        .id(user.as_uuid());
    B::execute(delete, &mut *conn).await?;
    for code in codes {
        let insert = B::query(
            "INSERT INTO mfa_backup_codes (tenant_id, user_id, code_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .bytes(code.as_slice())
        .time(now);
        B::execute(insert, &mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::ids::DEFAULT_TENANT;
    use crate::store::UserStore as _;
    use crate::store::sqlite::SqliteStore;
    use crate::store::tests::at;
    use crate::store::{NewUser, StoreError};

    const NONCE: [u8; 12] = [7; 12];

    /// A store with one user whose TOTP was confirmed at step 100, with backup codes
    /// `[1; 32]` and `[2; 32]`.
    async fn enrolled(dir: &tempfile::TempDir) -> Result<(SqliteStore, UserId), StoreError> {
        let store = SqliteStore::open(dir.path()).await?;
        store.migrate().await.map_err(sqlx::Error::from)?;
        let user = UserId::from_uuid(Uuid::now_v7());
        store
            .create_user(&NewUser {
                id: user,
                tenant: DEFAULT_TENANT,
                email: "ada@example.com".into(),
                email_normalized: "ada@example.com".into(),
                name: None,
                password_hash: "$argon2id$…".into(),
                created_at: at(0),
            })
            .await?;
        let sealed = Wrapped {
            nonce: NONCE.to_vec(),
            ciphertext: vec![9; 36],
        };
        assert!(
            store
                .begin_totp(DEFAULT_TENANT, user, &sealed, at(0))
                .await?
        );
        let confirmation = TotpConfirmation {
            tenant: DEFAULT_TENANT,
            user,
            secret_nonce: &NONCE,
            step: 100,
            backup_codes: &[[1; 32], [2; 32]],
            now: at(1),
            challenge: None,
        };
        assert_eq!(
            store.confirm_totp(&confirmation).await?,
            ConfirmOutcome::Confirmed
        );
        assert_eq!(
            store.confirm_totp(&confirmation).await?,
            ConfirmOutcome::NotPending
        );
        assert!(
            !store
                .begin_totp(DEFAULT_TENANT, user, &sealed, at(2))
                .await?
        );
        Ok((store, user))
    }

    #[tokio::test]
    async fn a_step_is_accepted_once_and_only_after_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = enrolled(&dir).await.unwrap();
        let spend =
            |step| store.spend_factor(DEFAULT_TENANT, user, SpentFactor::TotpStep(step), at(3));
        assert!(!spend(100).await.unwrap(), "the confirming step is spent");
        assert!(!spend(99).await.unwrap(), "an earlier step is refused");
        assert!(spend(101).await.unwrap());
        assert!(!spend(101).await.unwrap(), "a replay is refused");
        assert!(spend(103).await.unwrap());
        assert!(
            !spend(102).await.unwrap(),
            "a skipped step is not taken back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn twenty_parallel_spends_of_one_step_or_code_succeed_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = enrolled(&dir).await.unwrap();
        let store = Arc::new(store);
        for factor in [SpentFactor::TotpStep(150), SpentFactor::BackupCode([1; 32])] {
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .spend_factor(DEFAULT_TENANT, user, factor, at(4))
                            .await
                    })
                })
                .collect();
            let mut spent = 0;
            for task in tasks {
                spent += usize::from(task.await.unwrap().unwrap());
            }
            assert_eq!(spent, 1, "{factor:?}");
        }
        assert_eq!(
            store.backup_codes_left(DEFAULT_TENANT, user).await.unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_refused_factor_leaves_the_challenge_and_a_success_spends_both() {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = enrolled(&dir).await.unwrap();
        let token = [5; 32];
        store
            .create_challenge(&NewChallenge {
                tenant: DEFAULT_TENANT,
                user,
                token,
                purpose: ChallengePurpose::Verify,
                created_at: at(10),
                expires_at: at(310),
            })
            .await
            .unwrap();
        let complete =
            |factor| store.complete_challenge(DEFAULT_TENANT, &token, user, factor, at(20));
        let replayed = complete(SpentFactor::TotpStep(100)).await.unwrap();
        assert_eq!(replayed, CompletionOutcome::FactorRefused);
        let unknown = complete(SpentFactor::BackupCode([3; 32])).await.unwrap();
        assert_eq!(unknown, CompletionOutcome::FactorRefused);
        let open = store
            .challenge(DEFAULT_TENANT, &token, at(20))
            .await
            .unwrap();
        assert_eq!(
            open,
            Some(Challenge {
                user,
                purpose: ChallengePurpose::Verify
            })
        );
        let done = complete(SpentFactor::BackupCode([2; 32])).await.unwrap();
        assert_eq!(done, CompletionOutcome::Completed);
        let again = complete(SpentFactor::TotpStep(200)).await.unwrap();
        assert_eq!(again, CompletionOutcome::ChallengeGone);
        assert_eq!(
            store.backup_codes_left(DEFAULT_TENANT, user).await.unwrap(),
            1
        );
        // The failed attempt spent nothing: step 200 is still free.
        let fresh = store.spend_factor(DEFAULT_TENANT, user, SpentFactor::TotpStep(200), at(21));
        assert!(fresh.await.unwrap());
    }

    #[tokio::test]
    async fn challenges_expire_and_removal_takes_the_backup_codes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = enrolled(&dir).await.unwrap();
        let token = [6; 32];
        let challenge = NewChallenge {
            tenant: DEFAULT_TENANT,
            user,
            token,
            purpose: ChallengePurpose::Verify,
            created_at: at(10),
            expires_at: at(310),
        };
        store.create_challenge(&challenge).await.unwrap();
        assert!(
            store
                .challenge(DEFAULT_TENANT, &token, at(309))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .challenge(DEFAULT_TENANT, &token, at(310))
                .await
                .unwrap()
                .is_none()
        );
        let late = store
            .complete_challenge(
                DEFAULT_TENANT,
                &token,
                user,
                SpentFactor::TotpStep(300),
                at(310),
            )
            .await
            .unwrap();
        assert_eq!(late, CompletionOutcome::ChallengeGone);
        // The next challenge of the user prunes the expired one.
        let next = NewChallenge {
            token: [7; 32],
            created_at: at(400),
            expires_at: at(700),
            ..challenge
        };
        store.create_challenge(&next).await.unwrap();
        let mut conn = store.read().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM mfa_challenges")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        assert_eq!(rows, 1);

        assert!(store.disable_totp(DEFAULT_TENANT, user).await.unwrap());
        assert!(store.totp(DEFAULT_TENANT, user).await.unwrap().is_none());
        assert_eq!(
            store.backup_codes_left(DEFAULT_TENANT, user).await.unwrap(),
            0
        );
        assert!(!store.disable_totp(DEFAULT_TENANT, user).await.unwrap());
        let codes = [[8; 32]];
        let regenerated = store
            .regenerate_backup_codes(
                DEFAULT_TENANT,
                user,
                SpentFactor::TotpStep(1),
                &codes,
                at(400),
            )
            .await
            .unwrap();
        assert_eq!(regenerated, RegenerationOutcome::NotEnrolled);
    }
}
