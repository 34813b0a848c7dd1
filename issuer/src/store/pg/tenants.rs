//! Tenant lookups.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PgStore;
use crate::ids::TenantId;
use crate::store::{StoreError, Tenant, TenantStore};

fn tenant(row: &PgRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::from_uuid(row.try_get::<Uuid, _>("id")?),
        slug: row.try_get("slug")?,
    })
}

#[async_trait]
impl TenantStore for PgStore {
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, StoreError> {
        sqlx::query(
            "SELECT t.id, t.slug FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id \
             WHERE d.domain = $1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(tenant)
        .transpose()
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, slug FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant)
            .transpose()
    }

    async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        sqlx::query("SELECT id, slug FROM tenants WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant)
            .transpose()
    }
}
