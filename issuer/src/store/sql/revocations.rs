//! The durable revocation log: closing sessions, recording entries, paging the feed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use portcullis_core::MAX_LEEWAY;

use super::{Binds as _, Columns, SqlBackend, WriteLock, from_db_secs, to_db_secs};
use crate::ids::{SessionId, TenantId};
use crate::store::{
    NewRevocation, Revocation, RevocationMatch, RevocationProbe, RevocationRequest,
    RevocationStore, RevokedKind, SessionScope, StoreError,
};

/// Closes the requested sessions and records their entries plus `request.entries`, inside
/// the caller's transaction.
pub(super) async fn revoke_in<B: SqlBackend>(
    conn: &mut B::Conn,
    request: &RevocationRequest,
) -> Result<Vec<Revocation>, StoreError> {
    let closed = close_sessions::<B>(conn, request).await?;
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
    insert_entries::<B>(conn, request.tenant, request.now, &entries).await
}

async fn close_sessions<B: SqlBackend>(
    conn: &mut B::Conn,
    request: &RevocationRequest,
) -> Result<Vec<SessionId>, StoreError> {
    let tenant = request.tenant.as_uuid();
    // `Some(keep)`: the statement closes a user's sessions, all but `keep` when that is set.
    let (query, keep) = match request.sessions {
        SessionScope::None => return Ok(Vec::new()),
        SessionScope::One(session) => (
            B::query(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING id",
            )
            .id(tenant)
            .id(session.as_uuid()),
            None,
        ),
        SessionScope::AllOf(user) => (
            B::query(B::CLOSE_USER_SESSIONS)
                .id(tenant)
                .id(user.as_uuid()),
            Some(None),
        ),
        SessionScope::AllOfExcept(user, keep) => (
            B::query(B::CLOSE_USER_SESSIONS)
                .id(tenant)
                .id(user.as_uuid()),
            Some(Some(keep.as_uuid())),
        ),
    };
    let mut query = query.time(request.now).text(request.reason);
    if let Some(keep) = keep {
        query = query.opt_id(keep);
    }
    let rows = B::fetch_all(query, conn).await?;
    rows.iter()
        .map(|row| Ok(SessionId::from_uuid(row.id("id")?)))
        .collect()
}

/// Inserts entries under the feed lock. The lock is held until commit, so an entry with a
/// larger cursor can never become visible before one with a smaller cursor.
async fn insert_entries<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    now: DateTime<Utc>,
    entries: &[NewRevocation],
) -> Result<Vec<Revocation>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    B::lock(conn, WriteLock::RevocationFeed).await?;
    let mut recorded = Vec::with_capacity(entries.len());
    for entry in entries {
        let insert = B::query(
            "INSERT INTO revocations \
               (tenant_id, kind, value, issued_before, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .id(tenant.as_uuid())
        .text(entry.kind.as_str())
        .text(&entry.value)
        .opt_int(entry.issued_before.map(to_db_secs))
        .int(to_db_secs(entry.expires_at))
        .time(now);
        let row = B::fetch_one(insert, conn).await?;
        recorded.push(Revocation {
            cursor: row.int("id")?,
            tenant,
            entry: entry.clone(),
        });
    }
    Ok(recorded)
}

fn revocation(row: &impl Columns) -> Result<Revocation, StoreError> {
    let found = matched(row)?;
    Ok(Revocation {
        cursor: row.int("id")?,
        tenant: TenantId::from_uuid(row.id("tenant_id")?),
        entry: NewRevocation {
            kind: found.kind,
            value: found.value,
            issued_before: found.issued_before,
            expires_at: from_db_secs(row.int("expires_at")?)?,
        },
    })
}

fn matched(row: &impl Columns) -> Result<RevocationMatch, StoreError> {
    let name = row.text("kind")?;
    Ok(RevocationMatch {
        kind: RevokedKind::from_name(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown revocation kind {name:?}")))?,
        value: row.text("value")?,
        issued_before: row
            .opt_int("issued_before")?
            .map(from_db_secs)
            .transpose()?,
    })
}

/// Entries stay relevant until `expires_at` plus the largest leeway a verifier may apply.
fn relevance_floor(now: u64) -> i64 {
    to_db_secs(now.saturating_sub(MAX_LEEWAY))
}

async fn entries<B: SqlBackend>(store: &B, query: B::Query) -> Result<Vec<Revocation>, StoreError> {
    let mut conn = store.read().await?;
    let rows = B::fetch_all(query, &mut conn).await?;
    rows.iter().map(revocation).collect()
}

#[async_trait]
impl<B: SqlBackend> RevocationStore for B {
    async fn revoke(&self, request: &RevocationRequest) -> Result<Vec<Revocation>, StoreError> {
        let mut tx = self.write().await?;
        let recorded = revoke_in::<B>(&mut tx, request).await?;
        B::commit(tx).await?;
        Ok(recorded)
    }

    async fn feed_page(
        &self,
        since: i64,
        limit: u16,
        now: u64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let query = B::query(
            "SELECT id, tenant_id, kind, value, issued_before, expires_at FROM revocations \
             WHERE id > $1 AND expires_at >= $2 ORDER BY id LIMIT $3",
        )
        .int(since)
        .int(relevance_floor(now))
        .int(i64::from(limit));
        entries(self, query).await
    }

    async fn latest_cursor(&self) -> Result<i64, StoreError> {
        let query = B::query("SELECT COALESCE(MAX(id), 0) AS id FROM revocations");
        let mut conn = self.read().await?;
        Ok(B::fetch_one(query, &mut conn).await?.int("id")?)
    }

    async fn unexpired(&self, now: u64) -> Result<Vec<Revocation>, StoreError> {
        let query = B::query(
            "SELECT id, tenant_id, kind, value, issued_before, expires_at FROM revocations \
             WHERE expires_at >= $1 ORDER BY id",
        );
        entries(self, query.int(relevance_floor(now))).await
    }

    async fn matching(
        &self,
        probe: RevocationProbe<'_>,
        now: u64,
    ) -> Result<Vec<RevocationMatch>, StoreError> {
        let query = B::query(
            "SELECT kind, value, issued_before FROM revocations \
             WHERE expires_at >= $4 AND ((kind = 'jti' AND value = $1) \
               OR (kind = 'session' AND value = $2) OR (kind = 'subject' AND value = $3))",
        )
        .text(probe.jti)
        .text(probe.session)
        .text(probe.subject)
        .int(relevance_floor(now));
        let mut conn = self.read().await?;
        let rows = B::fetch_all(query, &mut conn).await?;
        rows.iter().map(matched).collect()
    }
}
