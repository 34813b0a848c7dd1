//! Tenant lookups.

use async_trait::async_trait;

use super::{Binds as _, Columns, SqlBackend};
use crate::ids::TenantId;
use crate::store::{StoreError, Tenant, TenantStore};

fn tenant(row: &impl Columns) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::from_uuid(row.id("id")?),
        slug: row.text("slug")?,
    })
}

async fn one_tenant<B: SqlBackend>(
    store: &B,
    query: B::Query,
) -> Result<Option<Tenant>, StoreError> {
    let mut conn = store.read().await?;
    B::fetch_optional(query, &mut conn)
        .await?
        .as_ref()
        .map(tenant)
        .transpose()
}

#[async_trait]
impl<B: SqlBackend> TenantStore for B {
    async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, StoreError> {
        let query = B::query(
            "SELECT t.id, t.slug FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id \
             WHERE d.domain = $1",
        );
        one_tenant(self, query.text(domain)).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        let query = B::query("SELECT id, slug FROM tenants WHERE slug = $1");
        one_tenant(self, query.text(slug)).await
    }

    async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let query = B::query("SELECT id, slug FROM tenants WHERE id = $1");
        one_tenant(self, query.id(id.as_uuid())).await
    }
}
