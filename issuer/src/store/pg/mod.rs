//! PostgreSQL: the durable stores of a deployment with many replicas.
//!
//! The stores themselves are written once for every SQL backend (`store::sql`); this module
//! supplies the pool and PostgreSQL's way of serializing writers: a row lock on the presented
//! refresh token, and transaction-level advisory locks for the feed and the key table, which
//! every replica takes alike.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row as _, Transaction};

use super::sql::{Binds as _, SqlBackend, TextArrays, WriteLock, sqlx_statements};
use crate::crypto::secret::SecretString;

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

impl TextArrays for Postgres {
    fn bind_texts(
        query: Query<'static, Self, PgArguments>,
        values: &[String],
    ) -> Query<'static, Self, PgArguments> {
        query.bind(values)
    }

    fn get_texts(row: &PgRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
        row.try_get(column)
    }
}

impl SqlBackend for PgStore {
    const NAME: &'static str = "postgres";
    // Rows are locked in id order so two concurrent "log out everywhere" cannot deadlock.
    const CLOSE_USER_SESSIONS: &'static str = "UPDATE sessions \
         SET revoked_at = $3, revoked_reason = $4 \
         WHERE tenant_id = $1 AND id IN (SELECT id FROM sessions \
           WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL \
           AND id IS DISTINCT FROM $5 ORDER BY id FOR UPDATE) \
         RETURNING id";

    // Rows another replica is claiming are skipped, not waited for.
    const CLAIM_DUE_MAIL: &'static str = "UPDATE email_outbox \
         SET attempts = attempts + 1, next_attempt_at = $2 \
         WHERE id IN (SELECT id FROM email_outbox \
           WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
           ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, recipient, sender, subject, body_text, body_html, attempts";

    type Conn = PgConnection;
    type Tx = Transaction<'static, Postgres>;
    type Read = PoolConnection<Postgres>;
    type Row = PgRow;
    type Query = Query<'static, Postgres, PgArguments>;

    async fn read(&self) -> Result<Self::Read, sqlx::Error> {
        self.pool.acquire().await
    }

    async fn write(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
    }

    async fn lock(conn: &mut PgConnection, lock: WriteLock<'_>) -> Result<(), sqlx::Error> {
        let query = match lock {
            // READ COMMITTED: the statements after this one see what the previous holder of
            // the row lock committed.
            WriteLock::RefreshToken { tenant, token } => sqlx::query(
                "SELECT 1 FROM refresh_tokens WHERE token_hash = $1 AND tenant_id = $2 \
                 FOR UPDATE",
            )
            .bytes(token.as_slice())
            .id(tenant.as_uuid()),
            WriteLock::RevocationFeed => {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").int(REVOCATION_LOCK)
            }
            WriteLock::SigningKeys => {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").int(SIGNING_KEY_LOCK)
            }
            WriteLock::MfaTotp { tenant, user } => sqlx::query(
                "SELECT 1 FROM mfa_totp WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
            )
            .id(tenant.as_uuid())
            .id(user.as_uuid()),
        };
        query.fetch_optional(conn).await.map(drop)
    }

    sqlx_statements!();
}
