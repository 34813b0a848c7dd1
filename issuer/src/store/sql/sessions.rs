//! Sessions and refresh-token rotation.
//!
//! Rotation runs in one transaction that first takes the presented token's write lock
//! ([`WriteLock::RefreshToken`]: a row lock in PostgreSQL, the single writer connection in
//! SQLite). Concurrent presentations of the same token therefore run one after another: the
//! first claims the token and inserts its successor; each later one gets the lock only after
//! that commit, then reads the token afresh and sees it used, with the successor in place.
//! Nobody relies on timing, and at most one successor ever exists.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::revocations::revoke_in;
use super::{Binds as _, Columns, SqlBackend, WriteLock, to_hash};
use crate::crypto::refresh::TokenHash;
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{
    NewSession, RefreshState, RefreshStatus, RevocationRequest, Rotation, RotationDecision,
    RotationOutcome, SessionRef, SessionScope, SessionStore, StoreError,
};

/// `revoked_reason` of a family revoked because an old refresh token came back.
const REUSE_REASON: &str = "refresh_token_reused";

/// Inserts one refresh token: hash, tenant, session, created, expires.
const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens \
       (token_hash, tenant_id, session_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5)";

fn session_ref(row: &impl Columns) -> Result<SessionRef, StoreError> {
    Ok(SessionRef {
        id: SessionId::from_uuid(row.id("session_id")?),
        user: UserId::from_uuid(row.id("user_id")?),
        amr: row.texts("amr")?,
    })
}

/// Takes the token's write lock, then reads its state with a new statement, which sees
/// everything committed by the transaction that held the lock before us.
async fn lock_state<B: SqlBackend>(
    conn: &mut B::Conn,
    tenant: TenantId,
    token: &TokenHash,
) -> Result<Option<RefreshState>, StoreError> {
    B::lock(conn, WriteLock::RefreshToken { tenant, token }).await?;
    let query = B::query(
        "SELECT t.expires_at, t.used_at, t.successor_hash, \
                (n.used_at IS NOT NULL) AS successor_used, s.id AS session_id, s.user_id, \
                s.amr, s.expires_at AS session_expires_at, \
                (s.revoked_at IS NOT NULL) AS session_revoked \
         FROM refresh_tokens t \
         JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id \
         LEFT JOIN refresh_tokens n ON n.token_hash = t.successor_hash \
         WHERE t.token_hash = $1 AND t.tenant_id = $2",
    )
    .bytes(token.as_slice())
    .id(tenant.as_uuid());
    let Some(row) = B::fetch_optional(query, conn).await? else {
        return Ok(None);
    };
    Ok(Some(RefreshState {
        session: session_ref(&row)?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
        successor: row.opt_bytes("successor_hash")?.map(to_hash).transpose()?,
        successor_used: row.flag("successor_used")?,
        session_revoked: row.flag("session_revoked")?,
        session_expires_at: row.time("session_expires_at")?,
    }))
}

/// Marks the parent used and stores its successor, which never outlives the session.
async fn claim<B: SqlBackend>(
    conn: &mut B::Conn,
    rotation: &Rotation,
    state: &RefreshState,
) -> Result<(), StoreError> {
    let update = B::query(
        "UPDATE refresh_tokens SET used_at = $3, successor_hash = $4 \
         WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL",
    )
    .bytes(rotation.parent.as_slice())
    .id(rotation.tenant.as_uuid())
    .time(rotation.now)
    .bytes(rotation.successor.as_slice());
    if B::execute(update, conn).await? != 1 {
        // Impossible under the write lock; refuse rather than mint a second successor.
        return Err(StoreError::Corrupt(
            "refresh token changed under its write lock".to_owned(),
        ));
    }
    let expires_at = (rotation.now + rotation.refresh_ttl).min(state.session_expires_at);
    let insert = B::query(INSERT_REFRESH_TOKEN)
        .bytes(rotation.successor.as_slice())
        .id(rotation.tenant.as_uuid())
        .id(state.session.id.as_uuid())
        .time(rotation.now)
        .time(expires_at);
    B::execute(insert, conn).await?;
    Ok(())
}

#[async_trait]
impl<B: SqlBackend> SessionStore for B {
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let insert = B::query(
            "INSERT INTO sessions (id, tenant_id, user_id, amr, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .id(session.id.as_uuid())
        .id(session.tenant.as_uuid())
        .id(session.user.as_uuid())
        .texts(&session.amr)
        .time(session.created_at)
        .time(session.expires_at);
        B::execute(insert, &mut tx).await?;
        let first = B::query(INSERT_REFRESH_TOKEN)
            .bytes(session.refresh_hash.as_slice())
            .id(session.tenant.as_uuid())
            .id(session.id.as_uuid())
            .time(session.created_at)
            .time(session.refresh_expires_at);
        B::execute(first, &mut tx).await?;
        B::commit(tx).await?;
        Ok(())
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        let mut tx = self.write().await?;
        let Some(state) = lock_state::<B>(&mut tx, rotation.tenant, &rotation.parent).await? else {
            return Ok(RotationOutcome::Rejected);
        };
        let outcome = match state.decide(rotation) {
            RotationDecision::Claim => {
                claim::<B>(&mut tx, rotation, &state).await?;
                RotationOutcome::Rotated(state.session)
            }
            RotationDecision::Replay => RotationOutcome::Replayed(state.session),
            RotationDecision::RevokeFamily => {
                let request = RevocationRequest {
                    tenant: rotation.tenant,
                    now: rotation.now,
                    reason: REUSE_REASON,
                    sessions: SessionScope::One(state.session.id),
                    session_entry_expires_at: rotation.revocation_expires_at,
                    entries: Vec::new(),
                };
                let revocations = revoke_in::<B>(&mut tx, &request).await?;
                RotationOutcome::Reused {
                    session: state.session,
                    revocations,
                }
            }
            RotationDecision::Reject => RotationOutcome::Rejected,
        };
        B::commit(tx).await?;
        Ok(outcome)
    }

    async fn refresh_status(
        &self,
        tenant: TenantId,
        token: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<RefreshStatus>, StoreError> {
        let query = B::query(
            "SELECT t.created_at, t.expires_at, t.used_at, s.id AS session_id, s.user_id, s.amr, \
                    s.expires_at AS session_expires_at, s.revoked_at \
             FROM refresh_tokens t \
             JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id \
             WHERE t.token_hash = $1 AND t.tenant_id = $2",
        )
        .bytes(token.as_slice())
        .id(tenant.as_uuid());
        let mut conn = self.read().await?;
        let Some(row) = B::fetch_optional(query, &mut conn).await? else {
            return Ok(None);
        };
        let expires_at = row.time("expires_at")?;
        let session_expires_at = row.time("session_expires_at")?;
        let used = row.opt_time("used_at")?.is_some();
        let revoked = row.opt_time("revoked_at")?.is_some();
        Ok(Some(RefreshStatus {
            session: session_ref(&row)?,
            created_at: row.time("created_at")?,
            expires_at: expires_at.min(session_expires_at),
            active: !used && !revoked && expires_at > now && session_expires_at > now,
        }))
    }
}
