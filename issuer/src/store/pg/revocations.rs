//! The durable revocation log: closing sessions, recording entries, paging the feed.

use async_trait::async_trait;
use portcullis_core::MAX_LEEWAY;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

use super::{PgStore, REVOCATION_LOCK, from_db_secs, to_db_secs};
use crate::ids::{SessionId, TenantId};
use crate::store::{
    NewRevocation, Revocation, RevocationMatch, RevocationProbe, RevocationRequest,
    RevocationStore, RevokedKind, SessionScope, StoreError,
};

/// Closes the requested sessions and records their entries plus `request.entries`, inside
/// the caller's transaction.
pub(super) async fn revoke_in(
    conn: &mut PgConnection,
    request: &RevocationRequest,
) -> Result<Vec<Revocation>, StoreError> {
    let closed = close_sessions(conn, request).await?;
    let mut entries: Vec<NewRevocation> = closed
        .into_iter()
        .map(|session| NewRevocation {
            kind: RevokedKind::Session,
            value: session.to_string(),
            issued_before: None,
            expires_at: request.session_entry_expires_at,
        })
        .collect();
    entries.extend(request.entries.iter().cloned());
    insert_entries(conn, request.tenant, request.now, &entries).await
}

async fn close_sessions(
    conn: &mut PgConnection,
    request: &RevocationRequest,
) -> Result<Vec<SessionId>, StoreError> {
    // Rows are locked in id order so two concurrent "log out everywhere" cannot deadlock.
    let query = match request.sessions {
        SessionScope::None => return Ok(Vec::new()),
        SessionScope::One(session) => sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(request.tenant.as_uuid())
        .bind(session.as_uuid()),
        SessionScope::AllOf(user) => sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE tenant_id = $1 AND id IN (SELECT id FROM sessions \
               WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL \
               ORDER BY id FOR UPDATE) \
             RETURNING id",
        )
        .bind(request.tenant.as_uuid())
        .bind(user.as_uuid()),
    };
    let rows = query
        .bind(request.now)
        .bind(request.reason)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| Ok(SessionId::from_uuid(row.try_get::<Uuid, _>("id")?)))
        .collect()
}

/// Inserts entries under the feed lock. The lock is held until commit, so an entry with a
/// larger cursor can never become visible before one with a smaller cursor.
async fn insert_entries(
    conn: &mut PgConnection,
    tenant: TenantId,
    now: chrono::DateTime<chrono::Utc>,
    entries: &[NewRevocation],
) -> Result<Vec<Revocation>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(REVOCATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let mut recorded = Vec::with_capacity(entries.len());
    for entry in entries {
        let cursor: i64 = sqlx::query_scalar(
            "INSERT INTO revocations \
               (tenant_id, kind, value, issued_before, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(tenant.as_uuid())
        .bind(entry.kind.as_str())
        .bind(&entry.value)
        .bind(entry.issued_before.map(to_db_secs))
        .bind(to_db_secs(entry.expires_at))
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        recorded.push(Revocation {
            cursor,
            tenant,
            entry: entry.clone(),
        });
    }
    Ok(recorded)
}

fn revocation(row: &PgRow) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        cursor: row.try_get("id")?,
        tenant: TenantId::from_uuid(row.try_get::<Uuid, _>("tenant_id")?),
        entry: NewRevocation {
            kind: kind(row)?,
            value: row.try_get("value")?,
            issued_before: row
                .try_get::<Option<i64>, _>("issued_before")?
                .map(from_db_secs)
                .transpose()?,
            expires_at: from_db_secs(row.try_get("expires_at")?)?,
        },
    })
}

fn kind(row: &PgRow) -> Result<RevokedKind, StoreError> {
    let name: String = row.try_get("kind")?;
    RevokedKind::from_name(&name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown revocation kind {name:?}")))
}

/// Entries stay relevant until `expires_at` plus the largest leeway a verifier may apply.
fn relevance_floor(now: u64) -> i64 {
    to_db_secs(now.saturating_sub(MAX_LEEWAY))
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke(&self, request: &RevocationRequest) -> Result<Vec<Revocation>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let recorded = revoke_in(&mut tx, request).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn feed_page(
        &self,
        since: i64,
        limit: u16,
        now: u64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, kind, value, issued_before, expires_at FROM revocations \
             WHERE id > $1 AND expires_at >= $2 ORDER BY id LIMIT $3",
        )
        .bind(since)
        .bind(relevance_floor(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(revocation).collect()
    }

    async fn unexpired(&self, now: u64) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, kind, value, issued_before, expires_at FROM revocations \
             WHERE expires_at >= $1 ORDER BY id",
        )
        .bind(relevance_floor(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(revocation).collect()
    }

    async fn matching(
        &self,
        probe: RevocationProbe<'_>,
        now: u64,
    ) -> Result<Vec<RevocationMatch>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, value, issued_before FROM revocations \
             WHERE expires_at >= $4 AND ((kind = 'jti' AND value = $1) \
               OR (kind = 'session' AND value = $2) OR (kind = 'subject' AND value = $3))",
        )
        .bind(probe.jti)
        .bind(probe.session)
        .bind(probe.subject)
        .bind(relevance_floor(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevocationMatch {
                    kind: kind(row)?,
                    value: row.try_get("value")?,
                    issued_before: row
                        .try_get::<Option<i64>, _>("issued_before")?
                        .map(from_db_secs)
                        .transpose()?,
                })
            })
            .collect()
    }
}
