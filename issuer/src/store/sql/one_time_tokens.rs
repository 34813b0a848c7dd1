//! One-time tokens (design note 0005): consumed by one conditional `UPDATE … WHERE used_at IS
//! NULL AND expires_at > now`, in the transaction that makes the change the token allows, so
//! two concurrent presentations change the account at most once. A new password also ends the
//! user's half-done MFA logins.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Binds as _, Columns as _, SqlBackend};
use crate::ids::{TenantId, UserId};
use crate::store::{LinkPurpose, OneTimeTokenStore, PasswordReset, StoreError};

/// Consumes `token` for `purpose` inside the caller's transaction; the user it belongs to.
async fn consume<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    token: &[u8; 32],
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<Option<UserId>, StoreError> {
    let query = B::query(
        "UPDATE one_time_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND tenant_id = $2 AND purpose = $4 \
         AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
    )
    .bytes(token.as_slice())
    .id(tenant.as_uuid())
    .time(now)
    .text(purpose.as_str());
    let Some(row) = B::fetch_optional(query, conn).await? else {
        return Ok(None);
    };
    Ok(Some(UserId::from_uuid(row.id("user_id")?)))
}

/// Retires the user's other unused tokens of `purpose`.
async fn retire<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let query = B::query(
        "UPDATE one_time_tokens SET used_at = $3 \
         WHERE tenant_id = $1 AND user_id = $2 AND purpose = $4 AND used_at IS NULL",
    )
    .id(tenant.as_uuid())
    .id(user.as_uuid())
    .time(now)
    .text(purpose.as_str());
    B::execute(query, conn).await?;
    Ok(())
}

/// Spends the user's pending MFA challenges: an `mfa_token` won with the old password must not
/// finish a login once the password has been reset or changed.
async fn end_pending_logins<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let query = B::query(
        "UPDATE mfa_challenges SET used_at = $3 \
         WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL",
    )
    .id(tenant.as_uuid())
    .id(user.as_uuid())
    .time(now);
    B::execute(query, conn).await?;
    Ok(())
}

/// Sets the password hash; receiving a reset link also proves the address.
async fn set_password<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
    password_hash: &str,
) -> Result<(), StoreError> {
    let query = B::query("UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .text(password_hash);
    B::execute(query, conn).await?;
    Ok(())
}

/// Removes the TOTP secret (confirmed or not) and backup codes of a user whose address has
/// never been verified; whether MFA was on (a confirmed secret). Call it before the address
/// is marked verified.
async fn remove_unproven_mfa<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
) -> Result<bool, StoreError> {
    let unverified = B::query(
        "SELECT 1 AS one FROM users \
         WHERE tenant_id = $1 AND id = $2 AND email_verified_at IS NULL",
    )
    .id(tenant.as_uuid())
    .id(user.as_uuid());
    if B::fetch_optional(unverified, &mut *conn).await?.is_none() {
        return Ok(false);
    }
    let confirmed = B::query(
        "SELECT 1 AS one FROM mfa_totp \
         WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL",
    )
    .id(tenant.as_uuid())
    .id(user.as_uuid());
    let mfa_was_on = B::fetch_optional(confirmed, &mut *conn).await?.is_some();
    for delete in [
        "DELETE FROM mfa_backup_codes WHERE tenant_id = $1 AND user_id = $2",
        "DELETE FROM mfa_totp WHERE tenant_id = $1 AND user_id = $2",
    ] {
        let query = B::query(delete).id(tenant.as_uuid()).id(user.as_uuid());
        B::execute(query, &mut *conn).await?;
    }
    Ok(mfa_was_on)
}

async fn mark_verified<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let query = B::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $3) \
         WHERE tenant_id = $1 AND id = $2",
    )
    .id(tenant.as_uuid())
    .id(user.as_uuid())
    .time(now);
    B::execute(query, conn).await?;
    Ok(())
}

#[async_trait]
impl<B: SqlBackend> OneTimeTokenStore for B {
    async fn verify_email(
        &self,
        tenant: TenantId,
        token: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let mut tx = self.write().await?;
        let purpose = LinkPurpose::VerifyEmail;
        let Some(user) = consume::<B>(&mut tx, tenant, token, purpose, now).await? else {
            return Ok(None);
        };
        mark_verified::<B>(&mut tx, tenant, user, now).await?;
        retire::<B>(&mut tx, tenant, user, purpose, now).await?;
        B::commit(tx).await?;
        Ok(Some(user))
    }

    async fn reset_password(
        &self,
        tenant: TenantId,
        token: &[u8; 32],
        now: DateTime<Utc>,
        password_hash: &str,
    ) -> Result<Option<PasswordReset>, StoreError> {
        let mut tx = self.write().await?;
        let purpose = LinkPurpose::ResetPassword;
        let Some(user) = consume::<B>(&mut tx, tenant, token, purpose, now).await? else {
            return Ok(None);
        };
        set_password::<B>(&mut tx, tenant, user, password_hash).await?;
        let removed_unproven_mfa = remove_unproven_mfa::<B>(&mut tx, tenant, user).await?;
        mark_verified::<B>(&mut tx, tenant, user, now).await?;
        retire::<B>(&mut tx, tenant, user, purpose, now).await?;
        end_pending_logins::<B>(&mut tx, tenant, user, now).await?;
        B::commit(tx).await?;
        Ok(Some(PasswordReset {
            user,
            removed_unproven_mfa,
        }))
    }

    async fn change_password(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
        checked_hash: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let query = B::query(
            "UPDATE users SET password_hash = $4 \
             WHERE tenant_id = $1 AND id = $2 AND password_hash = $3",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid())
        .text(checked_hash)
        .text(password_hash);
        if B::execute(query, &mut tx).await? == 0 {
            return Ok(false);
        }
        retire::<B>(&mut tx, tenant, user, LinkPurpose::ResetPassword, now).await?;
        end_pending_logins::<B>(&mut tx, tenant, user, now).await?;
        B::commit(tx).await?;
        Ok(true)
    }
}
