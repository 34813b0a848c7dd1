//! Stored signing keys.

use async_trait::async_trait;

use super::{Binds as _, Columns, SqlBackend, WriteLock};
use crate::crypto::keys::Wrapped;
use crate::crypto::signing::SigningAlgorithm;
use crate::ids::DEFAULT_TENANT;
use crate::store::{SigningKeyStore, StoreError, StoredKey};

fn stored_key(row: &impl Columns) -> Result<StoredKey, StoreError> {
    let algorithm = row.text("algorithm")?;
    Ok(StoredKey {
        kid: row.text("kid")?,
        algorithm: SigningAlgorithm::from_name(&algorithm)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown key algorithm {algorithm:?}")))?,
        wrapped: Wrapped {
            nonce: row.bytes("nonce")?,
            ciphertext: row.bytes("wrapped_secret")?,
        },
        active: row.flag("active")?,
        created_at: row.time("created_at")?,
    })
}

async fn all_keys<B: SqlBackend>(conn: &mut B::Conn) -> Result<Vec<StoredKey>, StoreError> {
    let query = B::query(
        "SELECT kid, algorithm, nonce, wrapped_secret, active, created_at FROM signing_keys \
         WHERE tenant_id = $1 ORDER BY created_at DESC, kid",
    )
    .id(DEFAULT_TENANT.as_uuid());
    let rows = B::fetch_all(query, conn).await?;
    rows.iter().map(stored_key).collect()
}

#[async_trait]
impl<B: SqlBackend> SigningKeyStore for B {
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let mut conn = self.read().await?;
        all_keys::<B>(&mut conn).await
    }

    async fn install_key(&self, candidate: &StoredKey) -> Result<Vec<StoredKey>, StoreError> {
        let mut tx = self.write().await?;
        B::lock(&mut tx, WriteLock::SigningKeys).await?;
        let existing = all_keys::<B>(&mut tx).await?;
        if existing
            .iter()
            .any(|key| key.active && key.algorithm == candidate.algorithm)
        {
            return Ok(existing);
        }
        // Retired keys stay: they verify the tokens they signed until those expire.
        let retire = B::query("UPDATE signing_keys SET active = $2 WHERE tenant_id = $1")
            .id(DEFAULT_TENANT.as_uuid())
            .flag(false);
        B::execute(retire, &mut tx).await?;
        let insert = B::query(
            "INSERT INTO signing_keys \
               (kid, tenant_id, algorithm, nonce, wrapped_secret, active, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .text(&candidate.kid)
        .id(DEFAULT_TENANT.as_uuid())
        .text(candidate.algorithm.as_str())
        .bytes(&candidate.wrapped.nonce)
        .bytes(&candidate.wrapped.ciphertext)
        .flag(candidate.active)
        .time(candidate.created_at);
        B::execute(insert, &mut tx).await?;
        let keys = all_keys::<B>(&mut tx).await?;
        B::commit(tx).await?;
        Ok(keys)
    }
}
