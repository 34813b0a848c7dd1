//! The audit log.

use async_trait::async_trait;

use super::{Binds as _, Columns, SqlBackend};
use crate::ids::UserId;
use crate::store::{AuditFilter, AuditRecord, AuditStore, NewAuditEvent, StoreError};

fn record(row: &impl Columns) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.int("id")?,
        user: row.opt_id("user_id")?.map(UserId::from_uuid),
        kind: row.text("kind")?,
        outcome: row.text("outcome")?,
        ip: row.text("ip")?,
        user_agent: row.opt_text("user_agent")?,
        detail: row.text("detail")?,
        created_at: row.time("created_at")?,
    })
}

#[async_trait]
impl<B: SqlBackend> AuditStore for B {
    async fn record(&self, event: &NewAuditEvent) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let insert = B::query(
            "INSERT INTO audit_events \
               (tenant_id, user_id, kind, outcome, ip, user_agent, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .id(event.tenant.as_uuid())
        .opt_id(event.user.map(|user| user.as_uuid()))
        .text(event.kind)
        .text(event.outcome)
        .text(&event.ip)
        .opt_text(event.user_agent.as_deref())
        .text(&event.detail)
        .time(event.created_at);
        B::execute(insert, &mut tx).await?;
        B::commit(tx).await?;
        Ok(())
    }

    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        // Times compare correctly on both backends: `timestamptz` in PostgreSQL, and in
        // SQLite the RFC 3339 UTC text sqlx writes, whose order as text is time order.
        let query = B::query(
            "SELECT id, user_id, kind, outcome, ip, user_agent, detail, created_at \
             FROM audit_events \
             WHERE tenant_id = $1 \
               AND ($2 IS NULL OR user_id = $2) \
               AND ($3 IS NULL OR kind = $3) \
               AND ($4 IS NULL OR created_at >= $4) \
               AND ($5 IS NULL OR created_at < $5) \
               AND ($6 IS NULL OR id < $6) \
             ORDER BY id DESC LIMIT $7",
        )
        .id(filter.tenant.as_uuid())
        .opt_id(filter.user.map(|user| user.as_uuid()))
        .opt_text(filter.kind)
        .opt_time(filter.since)
        .opt_time(filter.until)
        .opt_int(filter.before_id)
        .int(i64::from(filter.limit));
        let mut conn = self.read().await?;
        B::fetch_all(query, &mut conn)
            .await?
            .iter()
            .map(record)
            .collect()
    }
}
