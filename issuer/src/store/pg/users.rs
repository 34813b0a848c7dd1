//! Users, their credentials and their roles.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use uuid::Uuid;

use super::PgStore;
use crate::ids::{TenantId, UserId};
use crate::store::{Credentials, Grants, NewUser, StoreError, UserProfile, UserStore};

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, user: &NewUser) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // ON CONFLICT keeps a concurrent registration of the same email from surfacing as a
        // unique violation: the loser is told "taken" exactly like a sequential duplicate.
        let inserted = sqlx::query(
            "INSERT INTO users \
               (id, tenant_id, email, email_normalized, name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, email_normalized) DO NOTHING",
        )
        .bind(user.id.as_uuid())
        .bind(user.tenant.as_uuid())
        .bind(&user.email)
        .bind(&user.email_normalized)
        .bind(user.name.as_deref())
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO user_roles (tenant_id, user_id, role_id) \
             SELECT $1, $2, id FROM roles WHERE tenant_id = $1 AND is_default",
        )
        .bind(user.tenant.as_uuid())
        .bind(user.id.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn credentials(
        &self,
        tenant: TenantId,
        email_normalized: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(
            "SELECT id, password_hash FROM users WHERE tenant_id = $1 AND email_normalized = $2",
        )
        .bind(tenant.as_uuid())
        .bind(email_normalized)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Credentials {
            user: UserId::from_uuid(row.try_get::<Uuid, _>("id")?),
            password_hash: row.try_get("password_hash")?,
        }))
    }

    async fn profile(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<UserProfile>, StoreError> {
        let row = sqlx::query(
            "SELECT id, email_normalized, name, email_verified_at, created_at FROM users \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(UserProfile {
            id: UserId::from_uuid(row.try_get::<Uuid, _>("id")?),
            email: row.try_get("email_normalized")?,
            name: row.try_get("name")?,
            email_verified: row
                .try_get::<Option<DateTime<Utc>>, _>("email_verified_at")?
                .is_some(),
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn grants(&self, tenant: TenantId, user: UserId) -> Result<Grants, StoreError> {
        let rows = sqlx::query(
            "SELECT r.name, r.permissions FROM user_roles ur \
             JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id \
             WHERE ur.tenant_id = $1 AND ur.user_id = $2",
        )
        .bind(tenant.as_uuid())
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        let mut roles = BTreeSet::new();
        let mut permissions = BTreeSet::new();
        for row in rows {
            roles.insert(row.try_get::<String, _>("name")?);
            permissions.extend(row.try_get::<Vec<String>, _>("permissions")?);
        }
        Ok(Grants {
            roles: roles.into_iter().collect(),
            permissions: permissions.into_iter().collect(),
        })
    }
}
