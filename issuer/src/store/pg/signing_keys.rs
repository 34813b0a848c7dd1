//! Stored signing keys.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row as _};

use super::{PgStore, SIGNING_KEY_LOCK};
use crate::crypto::keys::Wrapped;
use crate::crypto::signing::SigningAlgorithm;
use crate::ids::DEFAULT_TENANT;
use crate::store::{SigningKeyStore, StoreError, StoredKey};

fn stored_key(row: &PgRow) -> Result<StoredKey, StoreError> {
    let algorithm: String = row.try_get("algorithm")?;
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        algorithm: SigningAlgorithm::from_name(&algorithm)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown key algorithm {algorithm:?}")))?,
        wrapped: Wrapped {
            nonce: row.try_get("nonce")?,
            ciphertext: row.try_get("wrapped_secret")?,
        },
        active: row.try_get("active")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn all_keys(conn: &mut PgConnection) -> Result<Vec<StoredKey>, StoreError> {
    let rows = sqlx::query(
        "SELECT kid, algorithm, nonce, wrapped_secret, active, created_at FROM signing_keys \
         WHERE tenant_id = $1 ORDER BY created_at DESC, kid",
    )
    .bind(DEFAULT_TENANT.as_uuid())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(stored_key).collect()
}

#[async_trait]
impl SigningKeyStore for PgStore {
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        all_keys(&mut conn).await
    }

    async fn insert_first_key(&self, candidate: &StoredKey) -> Result<Vec<StoredKey>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNING_KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let existing = all_keys(&mut tx).await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        sqlx::query(
            "INSERT INTO signing_keys \
               (kid, tenant_id, algorithm, nonce, wrapped_secret, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&candidate.kid)
        .bind(DEFAULT_TENANT.as_uuid())
        .bind(candidate.algorithm.as_str())
        .bind(&candidate.wrapped.nonce)
        .bind(&candidate.wrapped.ciphertext)
        .bind(candidate.active)
        .bind(candidate.created_at)
        .execute(&mut *tx)
        .await?;
        let keys = all_keys(&mut tx).await?;
        tx.commit().await?;
        Ok(keys)
    }
}
