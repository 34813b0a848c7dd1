//! Opening the storage that the configuration selects (design note 0003): the durable stores,
//! the revocation blacklist, and, embedded, the data directory and its master key.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::{Config, MigrateConfig, Storage};
use crate::crypto::keys::MasterKey;
use crate::crypto::secret::SecretString;
use crate::data_dir::DataDir;
use crate::store::memory::MemoryBlacklist;
use crate::store::pg::PgStore;
use crate::store::redis::RedisBlacklist;
use crate::store::sql::SqlBackend;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    Blacklist, Probe, RevocationStore, SessionStore, SigningKeyStore, TenantStore, UserStore,
};

/// The stores services are built on; which implementation each is, only this module knows.
#[derive(Clone, Debug)]
pub(crate) struct Stores {
    pub(crate) tenants: Arc<dyn TenantStore>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) revocations: Arc<dyn RevocationStore>,
    pub(crate) signing_keys: Arc<dyn SigningKeyStore>,
    pub(crate) blacklist: Arc<dyn Blacklist>,
    /// What `/readyz` checks.
    pub(crate) probes: Vec<Arc<dyn Probe>>,
}

impl Stores {
    fn over<B: SqlBackend>(durable: B, blacklist: Arc<dyn Blacklist>) -> Self {
        let durable = Arc::new(durable);
        Self {
            tenants: durable.clone(),
            users: durable.clone(),
            sessions: durable.clone(),
            revocations: durable.clone(),
            signing_keys: durable.clone(),
            blacklist,
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

async fn open_postgres(
    config: &Config,
    database_url: &SecretString,
    redis_url: Option<&SecretString>,
) -> anyhow::Result<Backend> {
    let master_key = config
        .master_key
        .clone()
        .context("PostgreSQL needs `master_key`")?;
    let pg = migrated_postgres(database_url).await?;
    let (mode, stores) = match redis_url {
        Some(url) => {
            let redis = RedisBlacklist::connect(url, config.redis_prefix.clone())
                .await
                .context("connecting to Redis")?;
            let redis = Arc::new(redis);
            let mut stores = Stores::over(pg, redis.clone());
            stores.probes.push(redis);
            (Mode::PostgresRedis, stores)
        }
        None => {
            let blacklist = Arc::new(MemoryBlacklist::following_feed());
            (Mode::PostgresInProcess, Stores::over(pg, blacklist))
        }
    };
    Ok(Backend {
        mode,
        stores,
        master_key,
    })
}

async fn migrated_postgres(database_url: &SecretString) -> anyhow::Result<PgStore> {
    let pg = PgStore::connect(database_url)
        .await
        .context("connecting to PostgreSQL")?;
    pg.migrate()
        .await
        .context("applying the PostgreSQL migrations")?;
    Ok(pg)
}

async fn open_embedded(
    data_dir: &Path,
    configured_key: Option<MasterKey>,
) -> anyhow::Result<Backend> {
    let data_dir = DataDir::open(data_dir)?;
    let (master_key, generated_master_key) = match configured_key {
        Some(key) => (key, false),
        None => data_dir.master_key()?,
    };
    let sqlite = migrated_sqlite(data_dir.path()).await?;
    Ok(Backend {
        mode: Mode::Embedded {
            data_dir,
            generated_master_key,
        },
        stores: Stores::over(sqlite, Arc::new(MemoryBlacklist::single_node())),
        master_key,
    })
}

async fn migrated_sqlite(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    let sqlite = SqliteStore::open(data_dir)
        .await
        .with_context(|| format!("opening the SQLite database in {}", data_dir.display()))?;
    sqlite
        .migrate()
        .await
        .context("applying the SQLite migrations")?;
    Ok(sqlite)
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
            migrated_sqlite(data_dir.path()).await?;
            Ok("sqlite")
        }
        Storage::Postgres { database_url, .. } => {
            migrated_postgres(database_url).await?;
            Ok("postgres")
        }
    }
}
