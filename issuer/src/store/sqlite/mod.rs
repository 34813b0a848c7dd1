//! SQLite: the durable stores of the embedded, single-node default (design note 0003).
//!
//! The stores themselves are written once for every SQL backend (`store::sql`); this module
//! supplies SQLite's connections. Writes go through a pool of exactly one connection and
//! start with `BEGIN IMMEDIATE`, so every write transaction holds the database's write lock
//! from its first statement and they run one after another: that is what the row and
//! advisory locks of PostgreSQL achieve, and why [`WriteLock`] needs no statement here. Reads
//! use a separate pool and, in WAL mode, never wait for the writer.

use std::path::Path;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Row as _, Sqlite, SqliteConnection, Transaction};

use super::sql::{SqlBackend, TextArrays, WriteLock, sqlx_statements};

/// The database file inside the data directory.
pub(crate) const DATABASE_FILE: &str = "portcullis.db";

/// How long a statement waits for a lock held by another process (e.g. `issuer migrate`)
/// before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for the writer or a reader connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers do not block each other; a few connections cover a small deployment.
const READ_CONNECTIONS: u32 = 4;
/// SQLite's result code for a write to a database it may only read (`SQLITE_READONLY`); its
/// extended codes keep it in their low byte.
const SQLITE_READONLY: i32 = 8;

/// The SQLite implementation of every durable store.
#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    /// Exactly one connection: SQLite has one writer, and making it explicit means a write
    /// transaction waits in the pool instead of failing on a lock.
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file in `data_dir`.
    pub(crate) async fn open(data_dir: &Path) -> Result<Self, sqlx::Error> {
        Self::connect(options(data_dir)).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        // The writer connects first: it creates the file and switches it to WAL.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self { writer, reader })
    }

    /// Applies pending migrations through the writer.
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("../migrations/sqlite")
            .run(&self.writer)
            .await
    }

    /// Whether SQLite refuses to write this database: the process may not write the file (or
    /// the directory its journal goes in), or the file says it must only be read. Opening,
    /// already-applied migrations and every start-up read succeed on such a database, so
    /// without this the issuer would report ready and fail its first write.
    ///
    /// A write statement is what finds out: on a database opened read-only, `BEGIN IMMEDIATE`
    /// alone succeeds. The statement is rolled back, so nothing reaches the file.
    pub(crate) async fn is_read_only(&self) -> Result<bool, sqlx::Error> {
        let outcome = async {
            let mut transaction = self.write().await?;
            sqlx::query("CREATE TABLE portcullis_write_probe (x INTEGER)")
                .execute(&mut *transaction)
                .await?;
            transaction.rollback().await
        };
        match outcome.await {
            Ok(()) => Ok(false),
            Err(sqlx::Error::Database(err)) if is_read_only_code(err.code().as_deref()) => Ok(true),
            Err(err) => Err(err),
        }
    }

    /// Whether the database holds signing keys. They are sealed with the master key, so a
    /// newly generated key could never open them; a database that has only been migrated
    /// holds none yet. Only reads, so it can run before the migrations.
    pub(crate) async fn holds_sealed_keys(&self) -> Result<bool, sqlx::Error> {
        let mut conn = self.reader.acquire().await?;
        let migrated: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
             WHERE type = 'table' AND name = 'signing_keys')",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !migrated {
            return Ok(false);
        }
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_keys)")
            .fetch_one(&mut *conn)
            .await
    }
}

/// The connection settings of the database file in `data_dir`.
fn options(data_dir: &Path) -> SqliteConnectOptions {
    // WAL lets reads proceed beside the writer; `synchronous = FULL` syncs the log on every
    // commit, so a committed revocation survives a crash or a power loss.
    SqliteConnectOptions::new()
        .filename(data_dir.join(DATABASE_FILE))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
}

/// Whether an (extended) SQLite result code, as sqlx spells it, is `SQLITE_READONLY`.
fn is_read_only_code(code: Option<&str>) -> bool {
    code.and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_READONLY)
}

impl TextArrays for Sqlite {
    fn bind_texts(
        query: Query<'static, Self, SqliteArguments>,
        values: &[String],
    ) -> Query<'static, Self, SqliteArguments> {
        query.bind(Json(values))
    }

    fn get_texts(row: &SqliteRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
        row.try_get::<Json<Vec<String>>, _>(column)
            .map(|json| json.0)
    }
}

impl SqlBackend for SqliteStore {
    const NAME: &'static str = "sqlite";
    // The writer is alone, so the rows need no locking (SQLite has no `FOR UPDATE`).
    const CLOSE_USER_SESSIONS: &'static str = "UPDATE sessions \
         SET revoked_at = $3, revoked_reason = $4 \
         WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL AND id IS NOT $5 \
         RETURNING id";

    // The single writer claims alone.
    const CLAIM_DUE_MAIL: &'static str = "UPDATE email_outbox \
         SET attempts = attempts + 1, next_attempt_at = $2 \
         WHERE id IN (SELECT id FROM email_outbox \
           WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
           ORDER BY next_attempt_at LIMIT $3) \
         RETURNING id, recipient, sender, subject, body_text, body_html, attempts";

    type Conn = SqliteConnection;
    type Tx = Transaction<'static, Sqlite>;
    type Read = PoolConnection<Sqlite>;
    type Row = SqliteRow;
    type Query = Query<'static, Sqlite, SqliteArguments>;

    async fn read(&self) -> Result<Self::Read, sqlx::Error> {
        self.reader.acquire().await
    }

    async fn write(&self) -> Result<Self::Tx, sqlx::Error> {
        // IMMEDIATE takes the write lock now rather than at the first write, so a transaction
        // that reads before it writes (rotation) can never find its snapshot outdated.
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    async fn lock(_conn: &mut SqliteConnection, _lock: WriteLock<'_>) -> Result<(), sqlx::Error> {
        // Every write transaction already holds the database's write lock (see the module
        // docs), which covers each of the sections PostgreSQL locks one by one.
        Ok(())
    }

    sqlx_statements!();
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::crypto::keys::Wrapped;
    use crate::crypto::signing::SigningAlgorithm;
    use crate::ids::{DEFAULT_TENANT, SessionId, TenantId, UserId};
    use crate::store::tests::{at, rotation};
    use crate::store::{
        Addressee, AttemptStart, LinkPurpose, LockoutChange, LockoutRule, LockoutStore, NewLink,
        NewRevocation, NewSession, NewUser, OneTimeTokenStore, OutboxMessage, OutboxStore,
        RevocationRequest, RevocationStore, RevokedKind, Rotation, RotationOutcome, SessionScope,
        SessionStore, SigningKeyStore, StoredKey, UserStore,
    };

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// A new user of the default tenant, known by `email` (already normalized).
    fn user(email: &str) -> NewUser {
        NewUser {
            id: UserId::from_uuid(Uuid::now_v7()),
            tenant: DEFAULT_TENANT,
            email: email.into(),
            email_normalized: email.into(),
            name: None,
            password_hash: "$argon2id$…".into(),
            created_at: at(0),
        }
    }

    /// A user with one session whose first refresh token hashes to `[1; 32]`.
    async fn session(store: &SqliteStore) -> SessionId {
        let new_user = NewUser {
            email: "Ada@example.com".into(),
            ..user("ada@example.com")
        };
        let user = new_user.id;
        assert!(store.create_user(&new_user).await.unwrap());
        let id = SessionId::from_uuid(Uuid::now_v7());
        store
            .create_session(&NewSession {
                id,
                tenant: DEFAULT_TENANT,
                user,
                amr: vec!["pwd".into()],
                created_at: at(0),
                expires_at: at(86_400),
                refresh_hash: [1; 32],
                refresh_expires_at: at(3_600),
            })
            .await
            .unwrap();
        id
    }

    /// Presents the first token `count` times at once; counts (rotated, replayed, reused).
    async fn race(store: &Arc<SqliteStore>, count: usize, grace: i64) -> (usize, usize, usize) {
        let tasks: Vec<_> = (0..count)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.rotate(&rotation(1, grace)).await.unwrap() })
            })
            .collect();
        let mut counts = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap() {
                RotationOutcome::Rotated(_) => counts.0 += 1,
                RotationOutcome::Replayed(_) => counts.1 += 1,
                RotationOutcome::Reused { .. } => counts.2 += 1,
                RotationOutcome::Rejected => panic!("a known token was rejected"),
            }
        }
        counts
    }

    async fn successors(store: &SqliteStore) -> i64 {
        let mut conn = store.read().await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE token_hash = $1")
            .bind([2_u8; 32].as_slice())
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_parallel_rotations_in_the_grace_window_share_one_successor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store(&dir).await);
        session(&store).await;
        assert_eq!(race(&store, 50, 10).await, (1, 49, 0));
        assert_eq!(successors(&store).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_parallel_rotations_without_grace_revoke_the_family_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store(&dir).await);
        let session = session(&store).await;
        assert_eq!(race(&store, 50, 0).await, (1, 0, 49));
        assert_eq!(successors(&store).await, 1);
        let feed = store.feed_page(0, 100, 0).await.unwrap();
        let closed: Vec<_> = feed.iter().map(|r| r.entry.value.clone()).collect();
        assert_eq!(closed, [session.to_string()], "one session entry, not 49");
        let successor = Rotation {
            parent: [2; 32],
            successor: [3; 32],
            ..rotation(2, 0)
        };
        assert!(matches!(
            store.rotate(&successor).await.unwrap(),
            RotationOutcome::Rejected
        ));
    }

    #[tokio::test]
    async fn feed_cursors_grow_and_revocations_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let session = session(&store).await;
        for jti in ["a", "b"] {
            let request = RevocationRequest {
                tenant: DEFAULT_TENANT,
                now: at(10),
                reason: "revoked",
                sessions: SessionScope::One(session),
                session_entry_expires_at: 2_000_000_000,
                entries: vec![NewRevocation {
                    kind: RevokedKind::Jti,
                    value: jti.into(),
                    issued_before: None,
                    expires_at: 2_000_000_000,
                }],
            };
            store.revoke(&request).await.unwrap();
        }
        drop(store);

        let store = self::store(&dir).await;
        let entries = store.unexpired(1_767_225_600).await.unwrap();
        let cursors: Vec<i64> = entries.iter().map(|r| r.cursor).collect();
        assert_eq!(
            cursors,
            [1, 2, 3],
            "the session is closed once, then two jti entries"
        );
        let values: Vec<&str> = entries.iter().map(|r| r.entry.value.as_str()).collect();
        assert_eq!(values, [session.to_string().as_str(), "a", "b"]);
        assert_eq!(store.feed_page(2, 10, 0).await.unwrap().len(), 1);
        assert!(matches!(
            store.rotate(&rotation(11, 10)).await.unwrap(),
            RotationOutcome::Rejected
        ));
    }

    #[tokio::test]
    async fn is_read_only_is_false_for_a_writable_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(!store.is_read_only().await.unwrap());
        store.migrate().await.unwrap();
        assert!(!store.is_read_only().await.unwrap());
        let mut conn = store.read().await.unwrap();
        let probes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'portcullis_write_probe'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(probes, 0, "the probe's write is rolled back");
        assert!(
            store.create_user(&user("ada@example.com")).await.unwrap(),
            "the probe left the writer usable"
        );
    }

    /// What a process that may not write the file gets (`chmod 444` as another user): SQLite
    /// opens it read-only. Forced here through the open flags, since tests may run as root.
    #[tokio::test]
    async fn is_read_only_reports_a_database_opened_read_only() {
        let dir = tempfile::tempdir().unwrap();
        store(&dir).await;
        let read_only = SqliteStore::connect(options(dir.path()).read_only(true))
            .await
            .unwrap();
        read_only.migrate().await.unwrap();
        assert!(read_only.is_read_only().await.unwrap());
        assert!(
            read_only
                .create_user(&user("ada@example.com"))
                .await
                .is_err(),
            "the probe agrees with a real write"
        );
    }

    #[tokio::test]
    async fn holds_sealed_keys_only_once_a_signing_key_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        assert!(!store.holds_sealed_keys().await.unwrap(), "not migrated");
        store.migrate().await.unwrap();
        assert!(!store.holds_sealed_keys().await.unwrap(), "only migrated");
        let key = StoredKey {
            kid: "k1".into(),
            algorithm: SigningAlgorithm::EdDsa,
            wrapped: Wrapped {
                nonce: vec![0; 12],
                ciphertext: vec![1; 48],
            },
            active: true,
            created_at: at(0),
        };
        store.install_key(&key).await.unwrap();
        assert!(store.holds_sealed_keys().await.unwrap());
    }

    #[test]
    fn is_read_only_code_matches_the_extended_codes_only() {
        for code in ["8", "264", "520", "776", "1032", "1288", "1544"] {
            assert!(is_read_only_code(Some(code)), "{code}");
        }
        for code in ["5", "2067", "readonly"] {
            assert!(!is_read_only_code(Some(code)), "{code}");
        }
        assert!(!is_read_only_code(None));
    }

    const RULE: LockoutRule = LockoutRule {
        max_failures: 10,
        lock: chrono::TimeDelta::seconds(900),
    };

    /// Begins 30 attempts on one account at once and sorts them into the failure counts of
    /// the counted ones and the waits of the refused ones.
    async fn thirty_at_once(
        store: &Arc<SqliteStore>,
        account: [u8; 32],
        rule: LockoutRule,
    ) -> (Vec<LockoutChange>, Vec<DateTime<Utc>>) {
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .begin_attempt(DEFAULT_TENANT, &account, at(0), rule)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let (mut counted, mut refused) = (Vec::new(), Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                AttemptStart::Counted(change) => counted.push(change),
                AttemptStart::Refused(until) => refused.push(until),
            }
        }
        counted.sort_unstable_by_key(|change| change.after.failures);
        (counted, refused)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_attempts_stop_at_the_first_delay_and_lock_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store(&dir).await);

        let (counted, refused) = thirty_at_once(&store, [7; 32], RULE).await;
        let counts: Vec<u32> = counted.iter().map(|c| c.after.failures).collect();
        assert_eq!(counts, [1, 2, 3], "the third reaches the first delay");
        assert_eq!(
            refused,
            vec![at(1); 27],
            "the rest wait out its second, uncounted"
        );

        let locks_at_two = LockoutRule {
            max_failures: 2,
            ..RULE
        };
        let (counted, refused) = thirty_at_once(&store, [8; 32], locks_at_two).await;
        assert_eq!(counted.len(), 2);
        assert_eq!(counted.iter().filter(|c| c.started_lock).count(), 1);
        assert_eq!(refused, vec![at(900); 28]);

        store.reset(DEFAULT_TENANT, &[8; 32]).await.unwrap();
        let after_reset = store
            .begin_attempt(DEFAULT_TENANT, &[8; 32], at(1), locks_at_two)
            .await
            .unwrap();
        let AttemptStart::Counted(change) = after_reset else {
            panic!("a reset ends the lock: {after_reset:?}");
        };
        assert_eq!(change.after.failures, 1);
    }

    #[tokio::test]
    async fn a_tenant_policy_overrides_the_rule_column_by_column() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let mut conn = store.write().await.unwrap();
        sqlx::query("INSERT INTO tenant_lockout_policies (tenant_id, max_failures) VALUES ($1, 1)")
            .bind(DEFAULT_TENANT.as_uuid())
            .execute(&mut *conn)
            .await
            .unwrap();
        SqliteStore::commit(conn).await.unwrap();
        let begun = store
            .begin_attempt(DEFAULT_TENANT, &[8; 32], at(0), RULE)
            .await
            .unwrap();
        let AttemptStart::Counted(change) = begun else {
            panic!("{begun:?}");
        };
        assert!(change.started_lock, "the tenant locks at the first failure");
        assert_eq!(
            change.after.locked_until,
            Some(at(900)),
            "with the configured lock"
        );
        let other = TenantId::from_uuid(Uuid::from_u128(2));
        let mut conn = store.write().await.unwrap();
        sqlx::query("INSERT INTO tenants (id, slug, name) VALUES ($1, 'other', 'Other')")
            .bind(other.as_uuid())
            .execute(&mut *conn)
            .await
            .unwrap();
        SqliteStore::commit(conn).await.unwrap();
        let unaffected = store
            .begin_attempt(other, &[8; 32], at(0), RULE)
            .await
            .unwrap();
        assert!(
            matches!(unaffected, AttemptStart::Counted(change) if !change.started_lock),
            "{unaffected:?}"
        );
    }

    #[tokio::test]
    async fn new_users_get_the_default_role_and_emails_stay_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        session(&store).await;
        let credentials = store
            .credentials(DEFAULT_TENANT, "ada@example.com")
            .await
            .unwrap()
            .unwrap();
        let grants = store
            .grants(DEFAULT_TENANT, credentials.user)
            .await
            .unwrap();
        assert_eq!(grants.roles, ["member"]);
        assert_eq!(grants.permissions, ["profile:read", "profile:write"]);
        let twin = NewUser {
            id: UserId::from_uuid(Uuid::now_v7()),
            tenant: DEFAULT_TENANT,
            email: "ada@example.com".into(),
            email_normalized: "ada@example.com".into(),
            name: Some("Twin".into()),
            password_hash: "x".into(),
            created_at: at(1),
        };
        assert!(!store.create_user(&twin).await.unwrap());
    }

    fn message(template: &'static str) -> OutboxMessage {
        OutboxMessage {
            id: Uuid::now_v7(),
            tenant: DEFAULT_TENANT,
            template,
            sender: "auth@example.com".into(),
            subject: "Subject".into(),
            body_text: "text plk_x".into(),
            body_html: "<p>html</p>".into(),
            created_at: at(0),
        }
    }

    fn reset_link(hash: u8) -> NewLink {
        NewLink {
            hash: [hash; 32],
            purpose: LinkPurpose::ResetPassword,
            expires_at: at(3_600),
            supersede: true,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_reset_link_is_consumed_once_and_retired_by_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store(&dir).await);
        let ada = user("ada@example.com");
        assert!(store.create_user(&ada).await.unwrap());
        let to = Addressee::Email("ada@example.com");
        for hash in [1, 2] {
            let (reset, link) = (message("password_reset"), reset_link(hash));
            assert!(store.enqueue(to, &reset, Some(&link)).await.unwrap());
        }
        let reset = |hash: u8| {
            let store = store.clone();
            async move {
                store
                    .reset_password(DEFAULT_TENANT, &[hash; 32], at(10), "$argon2id$new")
                    .await
                    .unwrap()
            }
        };
        assert_eq!(reset(1).await, None, "the newer request retired it");
        let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(reset(2))).collect();
        let mut winners = 0;
        for task in tasks {
            if let Some(winner) = task.await.unwrap() {
                assert_eq!(winner.user, ada.id);
                assert!(!winner.removed_unproven_mfa);
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "twenty presentations, one reset");
    }

    #[tokio::test]
    async fn unknown_addresses_queue_nothing_and_links_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let nobody = Addressee::Email("nobody@example.com");
        let (reset, link) = (message("password_reset"), reset_link(3));
        assert!(!store.enqueue(nobody, &reset, Some(&link)).await.unwrap());
        let ghost = Addressee::User(UserId::from_uuid(Uuid::now_v7()));
        assert!(
            !store
                .enqueue(ghost, &message("welcome"), None)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_due(at(1), at(301), 10)
                .await
                .unwrap()
                .is_empty()
        );

        let ada = user("ada@example.com");
        assert!(store.create_user(&ada).await.unwrap());
        let verify = NewLink {
            hash: [4; 32],
            purpose: LinkPurpose::VerifyEmail,
            expires_at: at(60),
            supersede: false,
        };
        let to = Addressee::User(ada.id);
        assert!(
            store
                .enqueue(to, &message("verify_email"), Some(&verify))
                .await
                .unwrap()
        );
        let late = store.verify_email(DEFAULT_TENANT, &[4; 32], at(60)).await;
        assert_eq!(late.unwrap(), None, "expired at its expiry");
        let wrong_purpose = store
            .reset_password(DEFAULT_TENANT, &[4; 32], at(1), "$argon2id$x")
            .await;
        assert_eq!(wrong_purpose.unwrap(), None);
        let verified = store.verify_email(DEFAULT_TENANT, &[4; 32], at(59)).await;
        assert_eq!(verified.unwrap(), Some(ada.id));
        let profile = store
            .profile(DEFAULT_TENANT, ada.id)
            .await
            .unwrap()
            .unwrap();
        assert!(profile.email_verified);
    }

    #[tokio::test]
    async fn claimed_mail_is_leased_then_sent_or_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let ada = user("ada@example.com");
        assert!(store.create_user(&ada).await.unwrap());
        let to = Addressee::User(ada.id);
        for _ in 0..3 {
            let welcome = message("welcome");
            assert!(store.enqueue(to, &welcome, None).await.unwrap());
        }
        let first = store.claim_due(at(1), at(301), 2).await.unwrap();
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|due| due.attempts == 1 && due.recipient == ada.email)
        );
        let rest = store.claim_due(at(2), at(302), 10).await.unwrap();
        assert_eq!(rest.len(), 1, "leased messages are not claimed twice");
        store.mark_sent(first[0].id, at(3)).await.unwrap();
        store
            .mark_failed(first[1].id, at(3), Some(at(10)), "421 try later")
            .await
            .unwrap();
        store
            .mark_failed(rest[0].id, at(3), None, "550 no such user")
            .await
            .unwrap();
        assert!(
            store
                .claim_due(at(9), at(309), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retried = store.claim_due(at(10), at(310), 10).await.unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!((retried[0].id, retried[0].attempts), (first[1].id, 2));
        let mut conn = store.read().await.unwrap();
        let bodies: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM email_outbox WHERE body_text <> '' AND \
             (sent_at IS NOT NULL OR failed_at IS NOT NULL)",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(bodies, 0, "sent and given-up messages keep no body");
    }
}
