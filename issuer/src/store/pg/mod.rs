//! PostgreSQL: the durable stores.
//!
//! Queries are plain `sqlx::query` with bound parameters (never string-built SQL), so the crate
//! builds without a database. Conversions between database and domain types are checked: an
//! unexpected value is [`StoreError::Corrupt`], never a panic.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Probe, StoreError};
use crate::crypto::secret::SecretString;

mod revocations;
mod sessions;
mod signing_keys;
mod tenants;
mod users;

/// Advisory-lock key held while revocations are inserted, so feed cursors become visible in
/// order (design note 0001). The value is arbitrary but fixed: every replica must use it.
const REVOCATION_LOCK: i64 = 0x7072_7476_5f66_6565;
/// Advisory-lock key held while the first signing key is generated.
const SIGNING_KEY_LOCK: i64 = 0x7072_7476_5f6b_6579;

/// How many connections one replica opens at most.
const MAX_CONNECTIONS: u32 = 20;
/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL implementation of every durable store.
#[derive(Clone, Debug)]
pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects; fails fast if the database is unreachable at start.
    pub(crate) async fn connect(url: &SecretString) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url.expose())
            .await?;
        Ok(Self { pool })
    }

    /// Applies pending migrations. sqlx holds PostgreSQL's migration lock meanwhile, so
    /// replicas starting together apply each migration once.
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("../migrations/postgres")
            .run(&self.pool)
            .await
    }
}

#[async_trait]
impl Probe for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Unix seconds as PostgreSQL `bigint`; no time we store is anywhere near the limit.
fn to_db_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// A `bigint` time back to unix seconds; negative values would be corrupt data.
fn from_db_secs(secs: i64) -> Result<u64, StoreError> {
    u64::try_from(secs).map_err(|_| StoreError::Corrupt(format!("negative time {secs}")))
}

/// A stored 32-byte hash.
fn to_hash(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("token hash is not 32 bytes".to_owned()))
}
