//! Users, their credentials and their roles.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::{Binds as _, Columns as _, SqlBackend};
use crate::ids::{TenantId, UserId};
use crate::store::{Credentials, Grants, NewUser, StoreError, UserProfile, UserStore};

#[async_trait]
impl<B: SqlBackend> UserStore for B {
    async fn create_user(&self, user: &NewUser) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        // ON CONFLICT keeps a concurrent registration of the same email from surfacing as a
        // unique violation: the loser is told "taken" exactly like a sequential duplicate.
        let insert = B::query(
            "INSERT INTO users \
               (id, tenant_id, email, email_normalized, name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, email_normalized) DO NOTHING",
        )
        .id(user.id.as_uuid())
        .id(user.tenant.as_uuid())
        .text(&user.email)
        .text(&user.email_normalized)
        .opt_text(user.name.as_deref())
        .text(&user.password_hash)
        .time(user.created_at);
        let created = B::execute(insert, &mut tx).await? == 1;
        if created {
            let grant = B::query(
                "INSERT INTO user_roles (tenant_id, user_id, role_id) \
                 SELECT $1, $2, id FROM roles WHERE tenant_id = $1 AND is_default",
            )
            .id(user.tenant.as_uuid())
            .id(user.id.as_uuid());
            B::execute(grant, &mut tx).await?;
        }
        // Both outcomes commit a write (see the account_events migration), so a taken email
        // answers in the same time as a free one.
        let event = B::query(
            "INSERT INTO account_events (tenant_id, user_id, kind, created_at) \
             SELECT tenant_id, id, $3, $4 FROM users \
             WHERE tenant_id = $1 AND email_normalized = $2",
        )
        .id(user.tenant.as_uuid())
        .text(&user.email_normalized)
        .text(if created {
            "registered"
        } else {
            "registration_conflict"
        })
        .time(user.created_at);
        B::execute(event, &mut tx).await?;
        B::commit(tx).await?;
        Ok(created)
    }

    async fn credentials(
        &self,
        tenant: TenantId,
        email_normalized: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let query = B::query(
            "SELECT id, password_hash FROM users WHERE tenant_id = $1 AND email_normalized = $2",
        )
        .id(tenant.as_uuid())
        .text(email_normalized);
        let mut conn = self.read().await?;
        let Some(row) = B::fetch_optional(query, &mut conn).await? else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            user: UserId::from_uuid(row.id("id")?),
            password_hash: row.text("password_hash")?,
        }))
    }

    async fn profile(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<UserProfile>, StoreError> {
        let query = B::query(
            "SELECT id, email_normalized, name, email_verified_at, created_at FROM users \
             WHERE tenant_id = $1 AND id = $2",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid());
        let mut conn = self.read().await?;
        let Some(row) = B::fetch_optional(query, &mut conn).await? else {
            return Ok(None);
        };
        Ok(Some(UserProfile {
            id: UserId::from_uuid(row.id("id")?),
            email: row.text("email_normalized")?,
            name: row.opt_text("name")?,
            email_verified: row.opt_time("email_verified_at")?.is_some(),
            created_at: row.time("created_at")?,
        }))
    }

    async fn grants(&self, tenant: TenantId, user: UserId) -> Result<Grants, StoreError> {
        let query = B::query(
            "SELECT r.name, r.permissions FROM user_roles ur \
             JOIN roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id \
             WHERE ur.tenant_id = $1 AND ur.user_id = $2",
        )
        .id(tenant.as_uuid())
        .id(user.as_uuid());
        let mut conn = self.read().await?;
        let rows = B::fetch_all(query, &mut conn).await?;
        let mut roles = BTreeSet::new();
        let mut permissions = BTreeSet::new();
        for row in rows {
            roles.insert(row.text("name")?);
            permissions.extend(row.texts("permissions")?);
        }
        Ok(Grants {
            roles: roles.into_iter().collect(),
            permissions: permissions.into_iter().collect(),
        })
    }
}
