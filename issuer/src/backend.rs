//! Opening the storage that the configuration selects (design note 0003): the durable stores,
//! the revocation blacklist, and, embedded, the data directory and its master key.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::config::{Config, MigrateConfig, Storage};
use crate::crypto::keys::MasterKey;
use crate::crypto::secret::SecretString;
use crate::data_dir::{DataDir, MASTER_KEY_FILE};
use crate::store::memory::{MemoryBlacklist, MemoryRateLimiter};
use crate::store::pg::PgStore;
use crate::store::redis::RedisBlacklist;
use crate::store::sql::SqlBackend;
use crate::store::sqlite::{DATABASE_FILE, SqliteStore};
use crate::store::{
    AuditStore, Blacklist, LockoutStore, MfaStore, OneTimeTokenStore, OutboxStore, Probe,
    RateLimiter, RevocationStore, SessionStore, SigningKeyStore, TenantStore, UserStore,
};

/// The stores services are built on; which implementation each is, only this module knows.
#[derive(Clone, Debug)]
pub(crate) struct Stores {
    pub(crate) tenants: Arc<dyn TenantStore>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) revocations: Arc<dyn RevocationStore>,
    pub(crate) signing_keys: Arc<dyn SigningKeyStore>,
    pub(crate) lockouts: Arc<dyn LockoutStore>,
    pub(crate) audit: Arc<dyn AuditStore>,
    pub(crate) mfa: Arc<dyn MfaStore>,
    pub(crate) outbox: Arc<dyn OutboxStore>,
    pub(crate) one_time_tokens: Arc<dyn OneTimeTokenStore>,
    pub(crate) blacklist: Arc<dyn Blacklist>,
    /// Rate-limit budgets: in Redis when there is one, else in process.
    pub(crate) rate_limiter: Arc<dyn RateLimiter>,
    /// What `/readyz` checks.
    pub(crate) probes: Vec<Arc<dyn Probe>>,
}

impl Stores {
    fn over<B: SqlBackend>(
        durable: B,
        blacklist: Arc<dyn Blacklist>,
        rate_limiter: Arc<dyn RateLimiter>,
    ) -> Self {
        let durable = Arc::new(durable);
        Self {
            tenants: durable.clone(),
            users: durable.clone(),
            sessions: durable.clone(),
            revocations: durable.clone(),
            signing_keys: durable.clone(),
            lockouts: durable.clone(),
            audit: durable.clone(),
            mfa: durable.clone(),
            outbox: durable.clone(),
            one_time_tokens: durable.clone(),
            blacklist,
            rate_limiter,
            probes: vec![durable],
        }
    }
}

/// Which row of design note 0003's table is running.
#[derive(Debug)]
pub(crate) enum Mode {
    PostgresRedis,
    PostgresInProcess,
    Embedded {
        /// Held for the life of the process: the directory's lock.
        data_dir: DataDir,
        /// Whether this start generated the master key.
        generated_master_key: bool,
    },
}

impl Mode {
    /// The start line's `backend:` value.
    pub(crate) const fn name(&self) -> &'static str {
        match self {
            Self::PostgresRedis => "postgres+redis",
            Self::PostgresInProcess => "postgres+in-process",
            Self::Embedded { .. } => "embedded sqlite, single node",
        }
    }
}

/// The opened storage.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) mode: Mode,
    pub(crate) stores: Stores,
    pub(crate) master_key: MasterKey,
}

/// Connects to (or opens) the selected storage and applies its migrations.
///
/// # Errors
///
/// Any step that fails, with context naming it.
pub(crate) async fn open(config: &Config) -> anyhow::Result<Backend> {
    match &config.storage {
        Storage::Embedded { data_dir } => open_embedded(data_dir, config.master_key.clone()).await,
        Storage::Postgres {
            database_url,
            redis_url,
        } => open_postgres(config, database_url, redis_url.as_ref()).await,
    }
}

/// Every service must answer before the first migration runs: a start that fails on a later
/// one (a wrong `redis_url`) then leaves the database as it found it.
async fn open_postgres(
    config: &Config,
    database_url: &SecretString,
    redis_url: Option<&SecretString>,
) -> anyhow::Result<Backend> {
    let master_key = config
        .master_key
        .clone()
        .context("PostgreSQL needs `master_key`")?;
    let pg = connect_postgres(database_url).await?;
    let redis = match redis_url {
        Some(url) => Some(
            RedisBlacklist::connect(url, config.redis_prefix.clone())
                .await
                .context("connecting to Redis (`redis_url`)")?,
        ),
        None => None,
    };
    migrate_postgres(&pg).await?;

    let (mode, stores) = match redis {
        Some(redis) => {
            let limiter = Arc::new(redis.rate_limiter());
            let redis = Arc::new(redis);
            let mut stores = Stores::over(pg, redis.clone(), limiter);
            stores.probes.push(redis);
            (Mode::PostgresRedis, stores)
        }
        None => {
            let blacklist = Arc::new(MemoryBlacklist::following_feed());
            let limiter = Arc::new(MemoryRateLimiter::default());
            (
                Mode::PostgresInProcess,
                Stores::over(pg, blacklist, limiter),
            )
        }
    };
    Ok(Backend {
        mode,
        stores,
        master_key,
    })
}

async fn connect_postgres(database_url: &SecretString) -> anyhow::Result<PgStore> {
    PgStore::connect(database_url)
        .await
        .context("connecting to PostgreSQL (`database_url`)")
}

async fn migrate_postgres(pg: &PgStore) -> anyhow::Result<()> {
    pg.migrate()
        .await
        .context("applying the PostgreSQL migrations")
}

/// Refuses a database SQLite will not write before anything else happens in the directory,
/// and generates a master key only where no earlier one is needed.
async fn open_embedded(
    data_dir: &Path,
    configured_key: Option<MasterKey>,
) -> anyhow::Result<Backend> {
    let data_dir = DataDir::open(data_dir)?;
    let sqlite = open_sqlite(&data_dir).await?;
    check_writable(&data_dir, &sqlite).await?;
    let (master_key, generated_master_key) = match configured_key {
        Some(key) => (key, false),
        None => embedded_master_key(&data_dir, &sqlite).await?,
    };
    migrate_sqlite(&sqlite).await?;
    Ok(Backend {
        mode: Mode::Embedded {
            data_dir,
            generated_master_key,
        },
        stores: Stores::over(
            sqlite,
            Arc::new(MemoryBlacklist::single_node()),
            Arc::new(MemoryRateLimiter::default()),
        ),
        master_key,
    })
}

async fn open_sqlite(data_dir: &DataDir) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(data_dir.path()).await.with_context(|| {
        format!(
            "opening the SQLite database in {}",
            data_dir.path().display()
        )
    })
}

async fn migrate_sqlite(sqlite: &SqliteStore) -> anyhow::Result<()> {
    sqlite
        .migrate()
        .await
        .context("applying the SQLite migrations")
}

/// Without this a read-only database starts, reports ready, and fails every write with a 500.
async fn check_writable(data_dir: &DataDir, sqlite: &SqliteStore) -> anyhow::Result<()> {
    let database = data_dir.path().join(DATABASE_FILE);
    let read_only = sqlite
        .is_read_only()
        .await
        .with_context(|| format!("checking that {} can be written", database.display()))?;
    if read_only {
        bail!(
            "the SQLite database {} is read-only: the issuer must be able to write it and its \
             data directory {} (check their owner and permissions, and that the file system is \
             mounted read-write)",
            database.display(),
            data_dir.path().display()
        );
    }
    Ok(())
}

/// The master key in the data directory, or a new one; `true` if it was generated now.
///
/// A missing key file next to a database that holds signing keys means the key was lost (a
/// restore without it, a deleted file): a new key could never unwrap them, and starting would
/// only fail later, after writing a key that matches nothing. So that case is refused before
/// anything is generated. A database that has only been migrated gets its first key.
async fn embedded_master_key(
    data_dir: &DataDir,
    sqlite: &SqliteStore,
) -> anyhow::Result<(MasterKey, bool)> {
    if let Some(key) = data_dir.stored_master_key()? {
        return Ok((key, false));
    }
    let database = data_dir.path().join(DATABASE_FILE);
    let sealed = sqlite
        .holds_sealed_keys()
        .await
        .with_context(|| format!("reading the signing keys in {}", database.display()))?;
    if sealed {
        bail!(
            "{} exists but {} is missing: restore {MASTER_KEY_FILE} from the backup taken with \
             the database (or set master_key to the key it was created with); a new key cannot \
             read the existing data",
            database.display(),
            data_dir.master_key_path().display()
        );
    }
    Ok((data_dir.generate_master_key()?, true))
}

/// `issuer migrate`: applies the selected backend's migrations; the backend's name.
///
/// # Errors
///
/// If the database cannot be reached or opened, or a migration fails.
pub(crate) async fn migrate(config: &MigrateConfig) -> anyhow::Result<&'static str> {
    match &config.storage {
        Storage::Embedded { data_dir } => {
            let data_dir = DataDir::open(data_dir)?;
            migrate_sqlite(&open_sqlite(&data_dir).await?).await?;
            Ok("sqlite")
        }
        Storage::Postgres { database_url, .. } => {
            migrate_postgres(&connect_postgres(database_url).await?).await?;
            Ok("postgres")
        }
    }
}
