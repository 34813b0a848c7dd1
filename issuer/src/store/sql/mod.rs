//! The durable stores, written once for every SQL backend (PostgreSQL and SQLite).
//!
//! A backend ([`SqlBackend`]) supplies connections, transactions and the few things its
//! dialect does differently: how a writer serializes with concurrent writers ([`WriteLock`]),
//! how a text array is stored, and the SQL of one statement. Everything else, the SQL, the
//! bound values, the row decoding and the rotation and revocation steps, lives here, so both
//! backends give the same answers by construction.
//!
//! Queries are plain `sqlx::query` with bound parameters (never string-built SQL), so the crate
//! builds without a database. Conversions between database and domain types are checked: an
//! unexpected value is [`StoreError::Corrupt`], never a panic.

use std::fmt::Debug;
use std::ops::DerefMut;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use uuid::Uuid;

use super::{Probe, StoreError};
use crate::crypto::refresh::TokenHash;
use crate::ids::{TenantId, UserId};

mod audit_events;
mod lockouts;
mod mfa;
mod one_time_tokens;
mod outbox;
mod revocations;
mod sessions;
mod signing_keys;
mod tenants;
mod users;

/// A section of writes that must not interleave with the same section in another transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WriteLock<'a> {
    /// One refresh token, held while it is claimed, replayed or reported as reused.
    RefreshToken {
        tenant: TenantId,
        token: &'a TokenHash,
    },
    /// The revocation feed: held until commit so feed cursors become visible in order.
    RevocationFeed,
    /// The signing-key table, while the first key is generated.
    SigningKeys,
    /// One user's TOTP row, while their backup codes are replaced: two regenerations at once
    /// would otherwise each delete only the codes they saw and leave both new sets valid.
    MfaTotp { tenant: TenantId, user: UserId },
}

/// The [`SqlBackend`] items that are the same for every sqlx database but for their types:
/// building a statement, committing, and the four ways of running a statement. Expanded inside
/// each backend's `impl`, where `Self::Conn` and `Self::Row` are concrete, so sqlx's executor
/// bounds are checked for one database at a time.
macro_rules! sqlx_statements {
    () => {
        fn query(sql: &'static str) -> Self::Query {
            sqlx::query(sql)
        }

        async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
            tx.commit().await
        }

        async fn fetch_optional(
            query: Self::Query,
            conn: &mut Self::Conn,
        ) -> Result<Option<Self::Row>, sqlx::Error> {
            query.fetch_optional(conn).await
        }

        async fn fetch_one(
            query: Self::Query,
            conn: &mut Self::Conn,
        ) -> Result<Self::Row, sqlx::Error> {
            query.fetch_one(conn).await
        }

        async fn fetch_all(
            query: Self::Query,
            conn: &mut Self::Conn,
        ) -> Result<Vec<Self::Row>, sqlx::Error> {
            query.fetch_all(conn).await
        }

        async fn execute(query: Self::Query, conn: &mut Self::Conn) -> Result<u64, sqlx::Error> {
            Ok(query.execute(conn).await?.rows_affected())
        }
    };
}
pub(crate) use sqlx_statements;

/// A SQL database the durable stores run on.
///
/// Every method is a thin wrapper over sqlx for one concrete database, so the shared code never
/// needs sqlx's generic executor bounds.
pub(crate) trait SqlBackend: Send + Sync + Debug + 'static {
    /// The dependency's name in `/readyz` answers.
    const NAME: &'static str;
    /// `UPDATE … RETURNING id` closing every open session of user `$2` in tenant `$1` except
    /// session `$5` (NULL: none is kept), with `revoked_at = $3` and `revoked_reason = $4`.
    const CLOSE_USER_SESSIONS: &'static str;
    /// `UPDATE … RETURNING` claiming at most `$3` unsent, not given up `email_outbox` rows with
    /// `next_attempt_at <= $1`, oldest first: `attempts + 1` and `next_attempt_at = $2` (the
    /// lease); returns id, recipient, sender, subject, body_text, body_html and attempts.
    const CLAIM_DUE_MAIL: &'static str;

    /// A connection, on which statements run.
    type Conn: Send;
    /// A write transaction: rolled back if dropped before [`commit`](Self::commit).
    type Tx: DerefMut<Target = Self::Conn> + Send;
    /// A pooled connection for reads.
    type Read: DerefMut<Target = Self::Conn> + Send;
    type Row: Columns + Send + Sync;
    type Query: Binds + Send;

    fn query(sql: &'static str) -> Self::Query;
    /// A connection for reads outside any write transaction.
    fn read(&self) -> impl Future<Output = Result<Self::Read, sqlx::Error>> + Send;
    /// A write transaction.
    fn write(&self) -> impl Future<Output = Result<Self::Tx, sqlx::Error>> + Send;
    fn commit(tx: Self::Tx) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Takes `lock` until the end of the transaction `conn` is in.
    fn lock(
        conn: &mut Self::Conn,
        lock: WriteLock<'_>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn fetch_optional(
        query: Self::Query,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send;
    fn fetch_one(
        query: Self::Query,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<Self::Row, sqlx::Error>> + Send;
    fn fetch_all(
        query: Self::Query,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
    /// Runs a statement; the number of rows it changed.
    fn execute(
        query: Self::Query,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

#[async_trait]
impl<B: SqlBackend> Probe for B {
    fn name(&self) -> &'static str {
        B::NAME
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.read().await?;
        B::fetch_optional(B::query("SELECT 1"), &mut conn).await?;
        Ok(())
    }
}

/// How a database stores a list of strings (roles' permissions, a session's `amr`).
pub(crate) trait TextArrays: Database {
    fn bind_texts(
        query: Query<'static, Self, Self::Arguments>,
        values: &[String],
    ) -> Query<'static, Self, Self::Arguments>;
    fn get_texts(row: &Self::Row, column: &str) -> Result<Vec<String>, sqlx::Error>;
}

/// Binding the values the stores write, whatever the database.
pub(crate) trait Binds: Sized {
    fn id(self, value: Uuid) -> Self;
    fn opt_id(self, value: Option<Uuid>) -> Self;
    fn text(self, value: &str) -> Self;
    fn opt_text(self, value: Option<&str>) -> Self;
    fn bytes(self, value: &[u8]) -> Self;
    fn time(self, value: DateTime<Utc>) -> Self;
    fn opt_time(self, value: Option<DateTime<Utc>>) -> Self;
    fn int(self, value: i64) -> Self;
    fn opt_int(self, value: Option<i64>) -> Self;
    fn flag(self, value: bool) -> Self;
    fn texts(self, values: &[String]) -> Self;
}

impl<DB> Binds for Query<'static, DB, <DB as Database>::Arguments>
where
    DB: TextArrays,
    Uuid: for<'q> Encode<'q, DB> + Type<DB>,
    Option<Uuid>: for<'q> Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: for<'q> Encode<'q, DB> + Type<DB>,
    Option<DateTime<Utc>>: for<'q> Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
    Option<i64>: for<'q> Encode<'q, DB> + Type<DB>,
    bool: for<'q> Encode<'q, DB> + Type<DB>,
{
    fn id(self, value: Uuid) -> Self {
        self.bind(value)
    }

    fn opt_id(self, value: Option<Uuid>) -> Self {
        self.bind(value)
    }

    fn text(self, value: &str) -> Self {
        self.bind(value)
    }

    fn opt_text(self, value: Option<&str>) -> Self {
        self.bind(value)
    }

    fn bytes(self, value: &[u8]) -> Self {
        self.bind(value)
    }

    fn time(self, value: DateTime<Utc>) -> Self {
        self.bind(value)
    }

    fn opt_time(self, value: Option<DateTime<Utc>>) -> Self {
        self.bind(value)
    }

    fn int(self, value: i64) -> Self {
        self.bind(value)
    }

    fn opt_int(self, value: Option<i64>) -> Self {
        self.bind(value)
    }

    fn flag(self, value: bool) -> Self {
        self.bind(value)
    }

    fn texts(self, values: &[String]) -> Self {
        DB::bind_texts(self, values)
    }
}

/// Reading the values the stores wrote, whatever the database.
pub(crate) trait Columns {
    fn id(&self, column: &str) -> Result<Uuid, sqlx::Error>;
    fn opt_id(&self, column: &str) -> Result<Option<Uuid>, sqlx::Error>;
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
    fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
    fn texts(&self, column: &str) -> Result<Vec<String>, sqlx::Error>;
}

impl<R> Columns for R
where
    R: Row,
    R::Database: TextArrays<Row = R>,
    for<'c> &'c str: ColumnIndex<R>,
    Uuid: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    bool: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    fn id(&self, column: &str) -> Result<Uuid, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_id(&self, column: &str) -> Result<Option<Uuid>, sqlx::Error> {
        self.try_get(column)
    }

    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }

    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.try_get(column)
    }

    fn time(&self, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_time(&self, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.try_get(column)
    }

    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }

    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.try_get(column)
    }

    fn texts(&self, column: &str) -> Result<Vec<String>, sqlx::Error> {
        R::Database::get_texts(self, column)
    }
}

/// Unix seconds as a SQL `bigint`; no time we store is anywhere near the limit.
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
