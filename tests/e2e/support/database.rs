//! Direct access to a test's own store, for what the HTTP API does not offer yet (creating a
//! second tenant, mapping a domain) and for checks on the schema. The one place where the suite
//! speaks SQL, once per backend: PostgreSQL (`uuid`, `text[]`, `timestamptz`) and SQLite (ids as
//! 16-byte BLOBs, times as RFC 3339 text, arrays as JSON text; 0003, "Embedded storage").

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection, SqliteConnection};

/// A connection to one test's database, whichever the backend.
#[derive(Debug)]
pub(crate) enum Database {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

impl Database {
    pub(super) async fn postgres(url: &str) -> Database {
        let connection = PgConnection::connect(url)
            .await
            .expect("connect to the test database");
        Database::Postgres(connection)
    }

    /// Opens the issuer's SQLite file, which must exist; waits for the issuer's writer as the
    /// issuer itself does (busy timeout 5 s).
    pub(super) async fn sqlite(path: &Path) -> Database {
        let connection = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .connect()
            .await
            .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
        Database::Sqlite(connection)
    }

    /// How many tables the migrations created (the migration bookkeeping table included).
    pub(crate) async fn table_count(&mut self) -> i64 {
        match self {
            Database::Postgres(connection) => sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_one(connection)
            .await
            .expect("count tables"),
            Database::Sqlite(connection) => sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_schema \
                 WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_one(connection)
            .await
            .expect("count tables"),
        }
    }

    /// How many account events of `kind` the store holds, across tenants.
    pub(crate) async fn account_event_count(&mut self, kind: &str) -> i64 {
        let sql = "SELECT count(*) FROM account_events WHERE kind = $1";
        match self {
            Database::Postgres(connection) => sqlx::query_scalar(sql)
                .bind(kind)
                .fetch_one(connection)
                .await
                .expect("count account events"),
            Database::Sqlite(connection) => sqlx::query_scalar(sql)
                .bind(kind)
                .fetch_one(connection)
                .await
                .expect("count account events"),
        }
    }

    /// The failures counted across all lockout counters, and how many lockouts the audit log
    /// holds.
    pub(crate) async fn lockout_counts(&mut self) -> (i64, i64) {
        let failures = self
            .count("SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT) FROM account_lockouts")
            .await;
        let lockouts = self
            .count("SELECT count(*) FROM audit_events WHERE kind = 'lockout'")
            .await;
        (failures, lockouts)
    }

    /// The one integer a query without parameters answers.
    async fn count(&mut self, sql: &'static str) -> i64 {
        match self {
            Database::Postgres(connection) => sqlx::query_scalar(sql).fetch_one(connection).await,
            Database::Sqlite(connection) => sqlx::query_scalar(sql).fetch_one(connection).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Creates a tenant with `slug` and the roles every tenant starts with, as the migrations
    /// do for the default tenant. Returns its `tnt_` id.
    pub(crate) async fn create_tenant(&mut self, slug: &str) -> String {
        let id = uuid::Uuid::now_v7();
        match self {
            Database::Postgres(connection) => {
                sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)")
                    .bind(id)
                    .bind(slug)
                    .execute(&mut *connection)
                    .await
                    .expect("insert a tenant");
                sqlx::query("SELECT portcullis_seed_tenant_roles($1)")
                    .bind(id)
                    .execute(&mut *connection)
                    .await
                    .expect("seed its roles");
            }
            Database::Sqlite(connection) => {
                // As the SQLite migration seeds the default tenant: defaults for ids and times.
                let mut transaction = connection.begin().await.expect("begin");
                sqlx::query("INSERT INTO tenants (id, slug, name) VALUES (?, ?, ?)")
                    .bind(id.as_bytes().as_slice())
                    .bind(slug)
                    .bind(slug)
                    .execute(&mut *transaction)
                    .await
                    .expect("insert a tenant");
                sqlx::query(
                    "INSERT INTO roles (tenant_id, name, permissions, is_default) VALUES \
                     (?1, 'admin', '[\"*\"]', 0), \
                     (?1, 'member', '[\"profile:read\",\"profile:write\"]', 1)",
                )
                .bind(id.as_bytes().as_slice())
                .execute(&mut *transaction)
                .await
                .expect("seed its roles");
                transaction.commit().await.expect("commit the tenant");
            }
        }
        format!("tnt_{}", id.simple())
    }

    /// Overrides the `[lockout]` settings for the tenant `tenant_id` (`tnt_…`); `None` keeps
    /// the configured value.
    pub(crate) async fn set_lockout_policy(
        &mut self,
        tenant_id: &str,
        max_failures: Option<i64>,
        lock_secs: Option<i64>,
    ) {
        let tenant = uuid_of(tenant_id, "tnt_");
        let sql = "INSERT INTO tenant_lockout_policies (tenant_id, max_failures, lock_secs) \
                   VALUES ($1, $2, $3)";
        match self {
            Database::Postgres(connection) => sqlx::query(sql)
                .bind(tenant)
                .bind(max_failures)
                .bind(lock_secs)
                .execute(connection)
                .await
                .map(drop),
            Database::Sqlite(connection) => sqlx::query(sql)
                .bind(tenant.as_bytes().as_slice())
                .bind(max_failures)
                .bind(lock_secs)
                .execute(connection)
                .await
                .map(drop),
        }
        .expect("set a tenant lockout policy");
    }

    /// Makes the tenant `tenant_id` (`tnt_…`) require MFA of every user (0005, "TOTP MFA").
    pub(crate) async fn require_mfa(&mut self, tenant_id: &str) {
        let tenant = uuid_of(tenant_id, "tnt_");
        let sql = "INSERT INTO tenant_mfa_policies (tenant_id, require_mfa) VALUES ($1, $2)";
        match self {
            Database::Postgres(connection) => sqlx::query(sql)
                .bind(tenant)
                .bind(true)
                .execute(connection)
                .await
                .map(drop),
            Database::Sqlite(connection) => sqlx::query(sql)
                .bind(tenant.as_bytes().as_slice())
                .bind(true)
                .execute(connection)
                .await
                .map(drop),
        }
        .expect("require MFA of a tenant");
    }

    /// Moves the end of every `mfa_token` to the year 2000, as if their lifetime had passed.
    pub(crate) async fn expire_mfa_challenges(&mut self) {
        let past = chrono::DateTime::from_timestamp(946_684_800, 0).expect("a valid time");
        let sql = "UPDATE mfa_challenges SET expires_at = $1";
        let expired = match self {
            Database::Postgres(connection) => sqlx::query(sql)
                .bind(past)
                .execute(connection)
                .await
                .map(|done| done.rows_affected()),
            Database::Sqlite(connection) => sqlx::query(sql)
                .bind(past)
                .execute(connection)
                .await
                .map(|done| done.rows_affected()),
        }
        .expect("expire the MFA challenges");
        assert!(expired > 0, "no MFA challenge to expire");
    }

    /// Every stored TOTP secret as the database holds it: nonce and sealed bytes.
    pub(crate) async fn stored_totp_secrets(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let sql = "SELECT secret_nonce, secret_sealed FROM mfa_totp";
        match self {
            Database::Postgres(connection) => sqlx::query_as(sql).fetch_all(connection).await,
            Database::Sqlite(connection) => sqlx::query_as(sql).fetch_all(connection).await,
        }
        .expect("read the stored TOTP secrets")
    }

    /// Overrides the sender and subject of the message kind `template` (e.g. `verify_email`)
    /// for the tenant `tenant_id` (`tnt_…`); the bodies keep their defaults.
    pub(crate) async fn set_mail_template(
        &mut self,
        tenant_id: &str,
        template: &str,
        sender: &str,
        subject: &str,
    ) {
        let tenant = uuid_of(tenant_id, "tnt_");
        let sql = "INSERT INTO tenant_mail_templates (tenant_id, template, sender, subject) \
                   VALUES ($1, $2, $3, $4)";
        match self {
            Database::Postgres(connection) => sqlx::query(sql)
                .bind(tenant)
                .bind(template)
                .bind(sender)
                .bind(subject)
                .execute(connection)
                .await
                .map(drop),
            Database::Sqlite(connection) => sqlx::query(sql)
                .bind(tenant.as_bytes().as_slice())
                .bind(template)
                .bind(sender)
                .bind(subject)
                .execute(connection)
                .await
                .map(drop),
        }
        .expect("set a tenant mail template");
    }

    /// Every outbox row, oldest first.
    pub(crate) async fn outbox(&mut self) -> Vec<OutboxRow> {
        let sql = "SELECT CAST(CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END AS BIGINT), \
                   CAST(length(body_text) + length(body_html) AS BIGINT), last_error \
                   FROM email_outbox ORDER BY created_at";
        let rows: Vec<(i64, i64, Option<String>)> = match self {
            Database::Postgres(connection) => sqlx::query_as(sql).fetch_all(connection).await,
            Database::Sqlite(connection) => sqlx::query_as(sql).fetch_all(connection).await,
        }
        .expect("read the outbox");
        rows.into_iter()
            .map(|(sent, body_chars, last_error)| OutboxRow {
                sent: sent == 1,
                body_chars,
                last_error,
            })
            .collect()
    }

    /// Grants the user `user_id` (`usr_…`) the role `role` of its tenant.
    pub(crate) async fn grant_role(&mut self, user_id: &str, role: &str) {
        let user = uuid_of(user_id, "usr_");
        let sql = "INSERT INTO user_roles (tenant_id, user_id, role_id) \
                   SELECT u.tenant_id, u.id, r.id FROM users u \
                   JOIN roles r ON r.tenant_id = u.tenant_id AND r.name = $2 WHERE u.id = $1";
        let granted = match self {
            Database::Postgres(connection) => sqlx::query(sql)
                .bind(user)
                .bind(role)
                .execute(connection)
                .await
                .map(|done| done.rows_affected()),
            Database::Sqlite(connection) => sqlx::query(sql)
                .bind(user.as_bytes().as_slice())
                .bind(role)
                .execute(connection)
                .await
                .map(|done| done.rows_affected()),
        }
        .expect("grant a role");
        assert_eq!(granted, 1, "no user {user_id} or role {role}");
    }

    /// Serves `domain` (lowercase, no port) on behalf of the tenant `tenant_id` (`tnt_…`).
    pub(crate) async fn map_domain(&mut self, domain: &str, tenant_id: &str) {
        let tenant = tenant_id.strip_prefix("tnt_").expect("a tnt_ id");
        let tenant = uuid::Uuid::parse_str(tenant).expect("a tnt_ id");
        match self {
            Database::Postgres(connection) => {
                sqlx::query("INSERT INTO tenant_domains (domain, tenant_id) VALUES ($1, $2)")
                    .bind(domain)
                    .bind(tenant)
                    .execute(connection)
                    .await
                    .expect("map a domain");
            }
            Database::Sqlite(connection) => {
                sqlx::query("INSERT INTO tenant_domains (domain, tenant_id) VALUES (?, ?)")
                    .bind(domain)
                    .bind(tenant.as_bytes().as_slice())
                    .execute(connection)
                    .await
                    .expect("map a domain");
            }
        }
    }
}

/// One `email_outbox` row, as the mail tests check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboxRow {
    pub(crate) sent: bool,
    /// Characters left in the text and HTML bodies.
    pub(crate) body_chars: i64,
    pub(crate) last_error: Option<String>,
}

/// The UUID of a prefixed wire id (`tnt_…`, `usr_…`).
fn uuid_of(id: &str, prefix: &str) -> uuid::Uuid {
    let hex = id
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{id:?} lacks {prefix:?}"));
    uuid::Uuid::parse_str(hex).unwrap_or_else(|error| panic!("{id:?}: {error}"))
}
