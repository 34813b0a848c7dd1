//! Sessions and refresh-token rotation.
//!
//! Rotation runs in one transaction that first locks the presented token's row. Concurrent
//! presentations of the same token therefore run one after another: the first claims the
//! token and inserts its successor; each later one acquires the lock only after that commit,
//! then reads the token afresh and sees it used, with the successor in place. Nobody relies on
//! timing, and at most one successor ever exists.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row as _};
use uuid::Uuid;

use super::revocations::revoke_in;
use super::{PgStore, to_hash};
use crate::crypto::refresh::TokenHash;
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{
    NewSession, RefreshState, RefreshStatus, RevocationRequest, Rotation, RotationDecision,
    RotationOutcome, SessionRef, SessionScope, SessionStore, StoreError,
};

/// `revoked_reason` of a family revoked because an old refresh token came back.
const REUSE_REASON: &str = "refresh_token_reused";

fn session_ref(row: &sqlx::postgres::PgRow) -> Result<SessionRef, StoreError> {
    Ok(SessionRef {
        id: SessionId::from_uuid(row.try_get::<Uuid, _>("session_id")?),
        user: UserId::from_uuid(row.try_get::<Uuid, _>("user_id")?),
        amr: row.try_get("amr")?,
    })
}

/// Locks the token row, then reads its state with a new statement, which (READ COMMITTED)
/// sees everything committed by the transaction that held the lock before us.
async fn lock_state(
    conn: &mut PgConnection,
    tenant: TenantId,
    token: &TokenHash,
) -> Result<Option<RefreshState>, StoreError> {
    let locked = sqlx::query(
        "SELECT 1 FROM refresh_tokens WHERE token_hash = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(token.as_slice())
    .bind(tenant.as_uuid())
    .fetch_optional(&mut *conn)
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT t.expires_at, t.used_at, t.successor_hash, \
                (n.used_at IS NOT NULL) AS successor_used, s.id AS session_id, s.user_id, \
                s.amr, s.expires_at AS session_expires_at, \
                (s.revoked_at IS NOT NULL) AS session_revoked \
         FROM refresh_tokens t \
         JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id \
         LEFT JOIN refresh_tokens n ON n.token_hash = t.successor_hash \
         WHERE t.token_hash = $1 AND t.tenant_id = $2",
    )
    .bind(token.as_slice())
    .bind(tenant.as_uuid())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(RefreshState {
        session: session_ref(&row)?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        successor: row
            .try_get::<Option<Vec<u8>>, _>("successor_hash")?
            .map(to_hash)
            .transpose()?,
        successor_used: row.try_get("successor_used")?,
        session_revoked: row.try_get("session_revoked")?,
        session_expires_at: row.try_get("session_expires_at")?,
    }))
}

/// Marks the parent used and stores its successor, which never outlives the session.
async fn claim(
    conn: &mut PgConnection,
    rotation: &Rotation,
    state: &RefreshState,
) -> Result<(), StoreError> {
    let claimed = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $3, successor_hash = $4 \
         WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL",
    )
    .bind(rotation.parent.as_slice())
    .bind(rotation.tenant.as_uuid())
    .bind(rotation.now)
    .bind(rotation.successor.as_slice())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed != 1 {
        // Impossible under the row lock; refuse rather than mint a second successor.
        return Err(StoreError::Corrupt(
            "refresh token changed under its row lock".to_owned(),
        ));
    }
    let expires_at = (rotation.now + rotation.refresh_ttl).min(state.session_expires_at);
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(rotation.successor.as_slice())
    .bind(rotation.tenant.as_uuid())
    .bind(state.session.id.as_uuid())
    .bind(rotation.now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, amr, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.id.as_uuid())
        .bind(session.tenant.as_uuid())
        .bind(session.user.as_uuid())
        .bind(&session.amr)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens \
               (token_hash, tenant_id, session_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session.refresh_hash.as_slice())
        .bind(session.tenant.as_uuid())
        .bind(session.id.as_uuid())
        .bind(session.created_at)
        .bind(session.refresh_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate(&self, rotation: &Rotation) -> Result<RotationOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(state) = lock_state(&mut tx, rotation.tenant, &rotation.parent).await? else {
            return Ok(RotationOutcome::Rejected);
        };
        let outcome = match state.decide(rotation) {
            RotationDecision::Claim => {
                claim(&mut tx, rotation, &state).await?;
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
                let revocations = revoke_in(&mut tx, &request).await?;
                RotationOutcome::Reused {
                    session: state.session,
                    revocations,
                }
            }
            RotationDecision::Reject => RotationOutcome::Rejected,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn refresh_status(
        &self,
        tenant: TenantId,
        token: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<RefreshStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT t.created_at, t.expires_at, t.used_at, s.id AS session_id, s.user_id, s.amr, \
                    s.expires_at AS session_expires_at, s.revoked_at \
             FROM refresh_tokens t \
             JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id \
             WHERE t.token_hash = $1 AND t.tenant_id = $2",
        )
        .bind(token.as_slice())
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
        let session_expires_at: DateTime<Utc> = row.try_get("session_expires_at")?;
        let used = row
            .try_get::<Option<DateTime<Utc>>, _>("used_at")?
            .is_some();
        let revoked = row
            .try_get::<Option<DateTime<Utc>>, _>("revoked_at")?
            .is_some();
        Ok(Some(RefreshStatus {
            session: session_ref(&row)?,
            created_at: row.try_get("created_at")?,
            expires_at: expires_at.min(session_expires_at),
            active: !used && !revoked && expires_at > now && session_expires_at > now,
        }))
    }
}
