//! The harness: one real `issuer` process per test, with its own private store, so tests run in
//! parallel without seeing each other's data. What that store is depends on the backend the test
//! target runs the suite against (`crate::BACKEND`, see [`Backend`]):
//!
//! - [`Backend::Postgres`]: a fresh PostgreSQL database and Redis key prefix per test;
//! - [`Backend::Embedded`]: a fresh, not yet existing data directory and nothing else, so the
//!   issuer runs on SQLite and its in-process blacklist (design note 0003).
//!
//! Settings of the suite itself (never passed on to the issuer):
//! - `PORTCULLIS_TEST_DATABASE_URL`: an admin connection used to create and drop the per-test
//!   databases (default `postgres://postgres@127.0.0.1:5432/test`);
//! - `PORTCULLIS_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`);
//! - `PORTCULLIS_REQUIRE_SERVICES=1`: a missing service fails a postgres-backend test instead of
//!   skipping it. Embedded-backend tests need no service and never skip.

pub(crate) mod database;
pub(crate) mod jwt;
pub(crate) mod otp;
#[allow(
    dead_code,
    reason = "only the postgres target's own tests cut an issuer off from Redis"
)]
pub(crate) mod relay;
pub(crate) mod smtp;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sqlx::{Connection as _, PgConnection};

use self::database::Database;

/// The id of the tenant every fresh database has (0001, "Identifiers and secrets").
pub(crate) const DEFAULT_TENANT_ID: &str = "tnt_00000000000000000000000000000001";

/// A password every rule accepts.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// An address no other test uses: `what`, a random suffix, `@example.com`.
pub(crate) fn fresh_email(what: &str) -> String {
    format!("{what}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The stdout line the issuer prints once it listens (0002, "Start-up").
const START_LINE: &str = "Portcullis issuer listening on ";

/// What the start line says of each backend (0002 "Start-up", 0003 "Selection").
pub(crate) const EMBEDDED_BACKEND_TEXT: &str = "backend: embedded sqlite, single node";
pub(crate) const POSTGRES_REDIS_BACKEND_TEXT: &str = "backend: postgres+redis";

/// The file names of the embedded backend inside the data directory (0003).
pub(crate) const SQLITE_FILE: &str = "portcullis.db";
#[allow(dead_code, reason = "only the embedded target's own tests use it")]
pub(crate) const MASTER_KEY_FILE: &str = "master.key";

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long the issuer may take to print its start line, and then to report ready. Generous: the
/// machine may be busy building or running other tests; these bound loops, they are not checks.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
#[allow(dead_code, reason = "only the embedded target's own tests use it")]
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// Environment and time
// ---------------------------------------------------------------------------------------------

/// Reads a setting of the test suite itself.
#[allow(clippy::disallowed_methods)] // the suite's own settings, not issuer configuration
fn suite_setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The wall clock as Unix seconds, to compare with the issuer's `exp`/`iat`.
#[allow(clippy::disallowed_methods)] // the suite observes the same wall clock the issuer reads
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Runs async clean-up from `Drop`, which may run inside or outside a runtime.
fn block_on_side_thread<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(future),
            Err(error) => eprintln!("e2e clean-up: no runtime: {error}"),
        }
    });
    if handle.join().is_err() {
        eprintln!("e2e clean-up: clean-up thread panicked");
    }
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

/// Where PostgreSQL and Redis are, once both answered.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    admin_url: String,
    redis_url: String,
}

impl Services {
    /// Checks that PostgreSQL and Redis answer. `None` (after printing `skipped: <why>`) when one
    /// does not; panics instead when `PORTCULLIS_REQUIRE_SERVICES=1`.
    pub(crate) async fn available() -> Option<Services> {
        let admin_url =
            suite_setting("PORTCULLIS_TEST_DATABASE_URL").unwrap_or(DEFAULT_ADMIN_URL.to_owned());
        let redis_url =
            suite_setting("PORTCULLIS_TEST_REDIS_URL").unwrap_or(DEFAULT_REDIS_URL.to_owned());
        let services = Services {
            admin_url,
            redis_url,
        };

        let problem = match services.check().await {
            Ok(()) => return Some(services),
            Err(problem) => problem,
        };
        if suite_setting("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Some("1") {
            panic!("PORTCULLIS_REQUIRE_SERVICES=1 but {problem}");
        }
        println!("skipped: {problem}");
        None
    }

    /// Where Redis listens, for a relay in front of it.
    #[allow(
        dead_code,
        reason = "only the postgres target's own tests cut an issuer off from Redis"
    )]
    pub(crate) async fn redis_address(&self) -> std::net::SocketAddr {
        let url = reqwest::Url::parse(&self.redis_url).expect("a Redis URL");
        let host = url.host_str().expect("a Redis host").to_owned();
        let port = url.port().unwrap_or(6379);
        tokio::net::lookup_host((host, port))
            .await
            .expect("resolve the Redis host")
            .next()
            .expect("an address for the Redis host")
    }

    async fn check(&self) -> Result<(), String> {
        let timeout = Duration::from_secs(5);
        let postgres = tokio::time::timeout(timeout, PgConnection::connect(&self.admin_url)).await;
        match postgres {
            Ok(Ok(connection)) => drop(connection.close().await),
            Ok(Err(error)) => {
                return Err(format!(
                    "PostgreSQL at {} unreachable: {error}",
                    self.admin_url
                ));
            }
            Err(_) => return Err(format!("PostgreSQL at {} did not answer", self.admin_url)),
        }

        let redis = tokio::time::timeout(timeout, async {
            let client = redis::Client::open(self.redis_url.as_str())?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await;
        match redis {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("Redis at {} unreachable: {error}", self.redis_url)),
            Err(_) => Err(format!("Redis at {} did not answer", self.redis_url)),
        }
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let authority_start = without_query.find("://").map_or(0, |index| index + 3);
    let base = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Backends and options
// ---------------------------------------------------------------------------------------------

/// The storage backend a test target runs the whole suite against (0003, "Selection"). Each root
/// of the suite sets `crate::BACKEND`: `main.rs` (target `e2e`) the PostgreSQL one, `embedded.rs`
/// (target `e2e_embedded`) the embedded one; the shared test modules never look at it, only the
/// harness does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code, reason = "each test target constructs only its own variant")]
pub(crate) enum Backend {
    /// PostgreSQL + Redis: per test a fresh database and Redis key prefix, and a master key.
    Postgres,
    /// SQLite + in-process structures: per test a fresh data directory, no URL, no master key.
    Embedded,
}

/// Extra settings for one issuer run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    env: Vec<(String, String)>,
    removed_env: Vec<String>,
    config_toml: Option<String>,
    clear_env: bool,
}

impl Options {
    pub(crate) fn new() -> Options {
        Options::default()
    }

    /// Sets an environment variable for the issuer (wins over the harness's own).
    pub(crate) fn env(mut self, name: &str, value: &str) -> Options {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Does not pass a variable the harness would otherwise set (e.g. the master key).
    pub(crate) fn without_env(mut self, name: &str) -> Options {
        self.removed_env.push(name.to_owned());
        self
    }

    /// Starts the issuer with an empty environment (no `PATH`, `HOME`, `RUST_LOG`…) apart from
    /// the `PORTCULLIS_*` variables the harness and these options set.
    #[allow(dead_code, reason = "only the embedded target's own tests use it")]
    pub(crate) fn clear_env(mut self) -> Options {
        self.clear_env = true;
        self
    }

    /// Raises every rate-limit budget far above what one test sends, for tests that register
    /// or log in more often than the defaults allow one client (`rate_limit.rs` checks the
    /// defaults themselves).
    pub(crate) fn rate_limits_raised(self) -> Options {
        [
            "LOGIN_PER_IP",
            "LOGIN_PER_ACCOUNT",
            "REGISTER_PER_IP",
            "REGISTER_PER_ACCOUNT",
            "MFA_VERIFY_PER_IP",
            "MFA_VERIFY_PER_ACCOUNT",
            "MFA_MANAGE_PER_IP",
            "MFA_MANAGE_PER_ACCOUNT",
            "FORGOT_PASSWORD_PER_IP",
            "FORGOT_PASSWORD_PER_ACCOUNT",
            "VERIFY_EMAIL_PER_IP",
            "RESET_PASSWORD_PER_IP",
            "CHANGE_PASSWORD_PER_IP",
            "CHANGE_PASSWORD_PER_ACCOUNT",
        ]
        .iter()
        .fold(self, |options, budget| {
            let prefix = format!("PORTCULLIS_RATE_LIMIT__{budget}");
            options
                .env(&format!("{prefix}__PER_MINUTE"), "100000")
                .env(&format!("{prefix}__BURST"), "100000")
        })
    }

    /// Turns the account lockout off, for tests that fail logins on purpose more often than
    /// it allows (a 3rd failure delays the account); `lockout.rs` checks the lockout itself.
    pub(crate) fn lockout_off(self) -> Options {
        self.env("PORTCULLIS_LOCKOUT__ENABLED", "false")
    }

    /// Writes `toml` to a file and points `PORTCULLIS_CONFIG` at it.
    pub(crate) fn config(mut self, toml: &str) -> Options {
        self.config_toml = Some(toml.to_owned());
        self
    }
}

/// What a finished issuer command left behind.
#[derive(Debug)]
pub(crate) struct RunOutput {
    /// `None` when the process had to be killed after the timeout.
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

// ---------------------------------------------------------------------------------------------
// Sandbox: the per-test store (database and Redis prefix, or data directory)
// ---------------------------------------------------------------------------------------------

/// The PostgreSQL + Redis part of a sandbox.
#[derive(Debug)]
struct PostgresSandbox {
    services: Services,
    database: String,
    database_url: String,
    redis_prefix: String,
    master_key: String,
}

/// One test's private resources, shared by every issuer the test starts on them (a restart after
/// a crash, a second replica). Dropping it drops the database and deletes the Redis keys (postgres
/// backend) and removes the scratch directory, data directory included (unless the test failed).
#[derive(Debug)]
pub(crate) struct Sandbox {
    /// `Some` exactly with [`Backend::Postgres`].
    postgres: Option<PostgresSandbox>,
    /// The scratch directory: the issuers' working directory, logs and config files.
    dir: PathBuf,
    /// `{dir}/data`, passed as `PORTCULLIS_DATA_DIR`; not created by the harness.
    data_dir: PathBuf,
    runs: AtomicU32,
}

impl Sandbox {
    /// A fresh sandbox for `crate::BACKEND`. With PostgreSQL: a fresh database `pc_e2e_<uuid>`
    /// and the Redis prefix `pc_e2e_<uuid>`, `None` when the services are missing (see
    /// [`Services::available`]). Embedded: only the scratch directory; never `None`.
    pub(crate) async fn new() -> Option<Sandbox> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let postgres = match crate::BACKEND {
            Backend::Postgres => Some(PostgresSandbox::create(&id).await?),
            Backend::Embedded => None,
        };
        let dir = std::env::temp_dir().join(format!("pc_e2e_{id}"));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Some(Sandbox {
            postgres,
            data_dir: dir.join("data"),
            dir,
            runs: AtomicU32::new(0),
        })
    }

    /// The scratch directory (the issuers' working directory).
    #[allow(dead_code, reason = "only the embedded target's own tests use it")]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory passed as `PORTCULLIS_DATA_DIR`: `{dir}/data`, so also the issuer's
    /// default `./data`.
    #[allow(dead_code, reason = "only the embedded target's own tests use it")]
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A connection to this test's own store: its PostgreSQL database, or the SQLite file in the
    /// data directory (which the issuer must have created).
    pub(crate) async fn database(&self) -> Database {
        match &self.postgres {
            Some(postgres) => Database::postgres(&postgres.database_url).await,
            None => Database::sqlite(&self.data_dir.join(SQLITE_FILE)).await,
        }
    }

    /// Refuses (`false`) or allows again (`true`) new connections to this test's PostgreSQL
    /// database; refusing also ends the open ones, as when the database becomes unreachable.
    #[allow(dead_code, reason = "only the postgres target's own tests use it")]
    pub(crate) async fn allow_database_connections(&self, allow: bool) {
        let postgres = self.postgres.as_ref().expect("a PostgreSQL sandbox");
        let database = &postgres.database;
        let mut admin = PgConnection::connect(&postgres.services.admin_url)
            .await
            .expect("connect to the admin database");
        let alter = format!("ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS {allow}");
        sqlx::query(sqlx::AssertSqlSafe(alter))
            .execute(&mut admin)
            .await
            .expect("change ALLOW_CONNECTIONS");
        if !allow {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(database)
            .execute(&mut admin)
            .await
            .expect("end the database's connections");
        }
        drop(admin.close().await);
    }

    /// Deletes every Redis key of this test (`SCAN MATCH <prefix>*`, then `DEL`), never anything
    /// else: other tests share the Redis server. Returns how many keys were deleted.
    #[allow(
        dead_code,
        reason = "only the postgres target's own tests use Redis directly"
    )]
    pub(crate) async fn delete_redis_keys(&self) -> usize {
        let postgres = self.postgres.as_ref().expect("Redis only with postgres");
        delete_redis_keys(&postgres.services.redis_url, &postgres.redis_prefix)
            .await
            .expect("delete this test's Redis keys")
    }

    /// The environment the harness gives every issuer of this sandbox before `options`.
    fn default_env(&self) -> Vec<(&'static str, String)> {
        let data_dir = self.data_dir.to_str().expect("UTF-8 temp dir").to_owned();
        let mut env = vec![
            ("PORTCULLIS_LISTEN", "127.0.0.1:0".to_owned()),
            ("PORTCULLIS_DATA_DIR", data_dir),
        ];
        if let Some(postgres) = &self.postgres {
            env.extend([
                ("PORTCULLIS_DATABASE_URL", postgres.database_url.clone()),
                ("PORTCULLIS_REDIS_URL", postgres.services.redis_url.clone()),
                ("PORTCULLIS_REDIS_PREFIX", postgres.redis_prefix.clone()),
                ("PORTCULLIS_MASTER_KEY", postgres.master_key.clone()),
            ]);
        }
        env
    }

    /// Every `PORTCULLIS_*` variable the issuer will see with `options` (the config file aside).
    fn environment(&self, options: &Options) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = self
            .default_env()
            .into_iter()
            .filter(|(name, _)| !options.removed_env.iter().any(|removed| removed == name))
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        env.extend(options.env.iter().cloned());
        env
    }

    /// The `issuer` command with this sandbox's settings. Inherited `PORTCULLIS_*` variables are
    /// removed, so neither the suite's own settings nor a developer's leak into the issuer.
    fn command(&self, args: &[&str], options: &Options) -> (Command, PathBuf, PathBuf) {
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let stdout_path = self.dir.join(format!("run{run}.stdout.log"));
        let stderr_path = self.dir.join(format!("run{run}.stderr.log"));

        let mut command = Command::new(env!("CARGO_BIN_EXE_issuer"));
        command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        if options.clear_env {
            command.env_clear();
        }
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PORTCULLIS_") {
                command.env_remove(name);
            }
        }
        for (name, value) in self.environment(options) {
            command.env(name, value);
        }
        if let Some(toml) = &options.config_toml {
            let path = self.dir.join(format!("run{run}.config.toml"));
            std::fs::write(&path, toml).expect("write the config file");
            command.env("PORTCULLIS_CONFIG", &path);
        }

        let stdout = std::fs::File::create(&stdout_path).expect("create the stdout log");
        let stderr = std::fs::File::create(&stderr_path).expect("create the stderr log");
        command.stdout(stdout).stderr(stderr);
        (command, stdout_path, stderr_path)
    }

    /// What the start line of an issuer run with `options` must say of its backend, when the
    /// design fixes it (0002 "Start-up", 0003 "Selection"); `None` when a config file may pick
    /// the backend or the combination has no fixed wording (PostgreSQL without Redis).
    fn expected_backend_text(&self, options: &Options) -> Option<&'static str> {
        if options
            .config_toml
            .as_deref()
            .is_some_and(|toml| toml.contains("_url"))
        {
            return None;
        }
        let env = self.environment(options);
        match (
            env.contains_key("PORTCULLIS_DATABASE_URL"),
            env.contains_key("PORTCULLIS_REDIS_URL"),
        ) {
            (false, false) => Some(EMBEDDED_BACKEND_TEXT),
            (true, true) => Some(POSTGRES_REDIS_BACKEND_TEXT),
            _ => None,
        }
    }

    /// Runs `issuer <args>` to completion, killing it after `timeout` (then `status` is `None`).
    pub(crate) async fn run(
        &self,
        args: &[&str],
        options: &Options,
        timeout: Duration,
    ) -> RunOutput {
        let (mut command, stdout_path, stderr_path) = self.command(args, options);
        let mut child = command.spawn().expect("spawn the issuer");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the issuer") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                drop(child.kill());
                drop(child.wait());
                break None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        RunOutput {
            status,
            stdout: read_lossy(&stdout_path),
            stderr: read_lossy(&stderr_path),
        }
    }
}

impl PostgresSandbox {
    async fn create(id: &str) -> Option<PostgresSandbox> {
        let services = Services::available().await?;
        let database = format!("pc_e2e_{id}");
        let database_url = with_database(&services.admin_url, &database);

        let mut admin = PgConnection::connect(&services.admin_url)
            .await
            .expect("connect to the admin database");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .execute(&mut admin)
        .await
        .expect("create the test database");
        drop(admin.close().await);

        Some(PostgresSandbox {
            redis_prefix: format!("pc_e2e_{id}"),
            master_key: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
            services,
            database,
            database_url,
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(postgres) = &self.postgres {
            let admin_url = postgres.services.admin_url.clone();
            let database = postgres.database.clone();
            let redis_url = postgres.services.redis_url.clone();
            let prefix = postgres.redis_prefix.clone();
            block_on_side_thread(async move {
                if let Err(error) = drop_database(&admin_url, &database).await {
                    eprintln!("e2e clean-up: could not drop {database}: {error}");
                }
                if let Err(error) = delete_redis_keys(&redis_url, &prefix).await {
                    eprintln!("e2e clean-up: could not delete Redis keys {prefix}*: {error}");
                }
            });
        }
        if std::thread::panicking() {
            eprintln!(
                "e2e: logs (and data directory) of the failed test kept in {}",
                self.dir.display()
            );
        } else if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            eprintln!(
                "e2e clean-up: could not remove {}: {error}",
                self.dir.display()
            );
        }
    }
}

async fn drop_database(admin_url: &str, database: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut admin)
        .await?;
    admin.close().await
}

async fn delete_redis_keys(redis_url: &str, prefix: &str) -> redis::RedisResult<usize> {
    let client = redis::Client::open(redis_url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            deleted += keys.len();
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<()>(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Issuer
// ---------------------------------------------------------------------------------------------

/// A running issuer. Dropping it kills the process (SIGKILL); the sandbox goes with the last
/// issuer (or test) holding it.
#[derive(Debug)]
pub(crate) struct Issuer {
    child: Child,
    base_url: String,
    start_line: String,
    http: reqwest::Client,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    // Declared last so the process is gone (see `Drop`) before its database is dropped.
    sandbox: Arc<Sandbox>,
}

impl Issuer {
    /// Starts an issuer with default settings; `None` when the services are missing.
    pub(crate) async fn start() -> Option<Issuer> {
        Issuer::start_with(Options::new()).await
    }

    /// Starts an issuer with extra settings in a fresh sandbox; `None` when the services are
    /// missing.
    pub(crate) async fn start_with(options: Options) -> Option<Issuer> {
        let sandbox = Arc::new(Sandbox::new().await?);
        Some(Issuer::start_in(&sandbox, options).await)
    }

    /// Starts one more issuer on an existing sandbox: the same database, Redis prefix, master key
    /// and data directory. A restart once the previous process is gone, or a second replica
    /// while it runs. Each issuer listens on its own port, so tokens verify across them only
    /// with a fixed `PORTCULLIS_PUBLIC_URL` (the `iss` claim).
    pub(crate) async fn start_in(sandbox: &Arc<Sandbox>, options: Options) -> Issuer {
        let (mut command, stdout_path, stderr_path) = sandbox.command(&["serve"], &options);
        let child = command.spawn().expect("spawn the issuer");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build the HTTP client");
        let mut issuer = Issuer {
            child,
            base_url: String::new(),
            start_line: String::new(),
            http,
            stdout_path,
            stderr_path,
            sandbox: Arc::clone(sandbox),
        };
        issuer.wait_for_start_line().await;
        if let Some(backend) = sandbox.expected_backend_text(&options) {
            assert!(
                issuer.start_line.contains(backend),
                "the start line must say {backend:?}: {:?}",
                issuer.start_line
            );
        }
        issuer.wait_until_ready().await;
        issuer
    }

    async fn wait_for_start_line(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let stdout = read_lossy(&self.stdout_path);
            if let Some(line) = stdout.lines().find(|line| line.starts_with(START_LINE)) {
                let rest = &line[START_LINE.len()..];
                let url = rest.split_whitespace().next().unwrap_or_default();
                assert!(
                    url.starts_with("http://") && rest.contains("(backend: "),
                    "start line not as in 0002: {line:?}"
                );
                self.base_url = url.trim_end_matches('/').to_owned();
                self.start_line = line.to_owned();
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the issuer") {
                panic!(
                    "the issuer exited with {status} before listening\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no start line within {START_TIMEOUT:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = self.http.get(self.url("/readyz")).send().await;
            if matches!(&ready, Ok(response) if response.status() == 200) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll the issuer") {
                panic!(
                    "the issuer exited with {status} before ready\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "/readyz not 200 within {READY_TIMEOUT:?} (last: {ready:?})\n{}",
                self.logs()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Kills the process with SIGKILL and reaps it: no shutdown hook runs and nothing is
    /// flushed, a crash as far as the issuer can tell. Returns the exit status.
    pub(crate) fn crash(mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL the issuer");
        self.child.wait().expect("reap the issuer")
    }

    /// Asks for a graceful shutdown (SIGTERM, 0002 "Start-up") and waits for the exit; panics
    /// if the process is still there after 30 s.
    #[allow(dead_code, reason = "only the embedded target's own tests use it")]
    pub(crate) async fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(kill.success(), "kill -TERM {pid}: {kill}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the issuer") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {STOP_TIMEOUT:?} after SIGTERM\n{}",
                self.logs()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops the issuer as [`Issuer::stop`] does and returns its exit status with everything it
    /// logged to stderr. Read after the exit, the log is complete, shutdown included, and no
    /// event of a request can still be on its way to the file.
    pub(crate) async fn stop_and_read_stderr(self) -> (ExitStatus, String) {
        let stderr_path = self.stderr_path.clone();
        // Holds the scratch directory, and so the log, past the end of `self`.
        let sandbox = self.shared_sandbox();
        let status = self.stop().await;
        let stderr = read_lossy(&stderr_path);
        drop(sandbox);
        (status, stderr)
    }

    /// The stdout and the tail of the stderr log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        format!(
            "--- issuer stdout ---\n{}\n--- issuer stderr (tail) ---\n{}",
            read_lossy(&self.stdout_path),
            tail(&read_lossy(&self.stderr_path), 200)
        )
    }

    /// Everything the issuer printed to stdout so far.
    pub(crate) fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything the issuer logged (stderr) so far.
    pub(crate) fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// The line starting `Portcullis issuer listening on `.
    pub(crate) fn start_line(&self) -> &str {
        &self.start_line
    }

    /// The base URL from the start line, without trailing slash.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The sandbox, to start more issuers on it with [`Issuer::start_in`].
    pub(crate) fn shared_sandbox(&self) -> Arc<Sandbox> {
        Arc::clone(&self.sandbox)
    }

    // ---- raw requests ----------------------------------------------------------------------

    /// A request to `path` on this issuer, to be finished and passed to [`Issuer::send`].
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub(crate) async fn send(&self, request: RequestBuilder) -> Response {
        send(request).await
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.send(self.request(Method::GET, path)).await
    }

    pub(crate) async fn get_with_bearer(&self, path: &str, bearer: &str) -> Response {
        self.send(self.request(Method::GET, path).bearer_auth(bearer))
            .await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// A POST with exactly these bytes and this `Content-Type` (none when `None`).
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self.request(Method::POST, path).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        self.send(request).await
    }

    /// A form-encoded POST, with `Authorization: Bearer` when `bearer` is given.
    pub(crate) async fn post_form(
        &self,
        path: &str,
        bearer: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Response {
        let mut request = self.request(Method::POST, path).form(fields);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        self.send(request).await
    }

    /// A POST over a bare TCP connection that reads the answer while the body is still being
    /// written, for bodies the issuer refuses before reading them: an HTTP client such as
    /// reqwest fails with "broken pipe" when the server answers early and closes, and drops
    /// the answer it already received (RFC 9112 §9.6).
    pub(crate) async fn post_raw_early_answer(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        self.post_declaring_length(path, content_type, body.len(), body)
            .await
    }

    /// [`post_raw_early_answer`](Self::post_raw_early_answer) with a `Content-Length` of the
    /// caller's choosing, true or not.
    pub(crate) async fn post_declaring_length(
        &self,
        path: &str,
        content_type: &str,
        content_length: usize,
        body: Vec<u8>,
    ) -> Response {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let address = self.base_url.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
        );
        let write = tokio::spawn(async move {
            // A write error is expected once the issuer has answered and closed.
            if writer.write_all(head.as_bytes()).await.is_ok() {
                drop(writer.write_all(&body).await);
            }
            // Keep the connection open for the rest of a body that never comes.
            std::future::pending::<()>().await;
        });

        let mut raw = Vec::new();
        let mut chunk = [0_u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let read = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut chunk)).await;
            match read {
                Err(_) => continue,
                Ok(Ok(0)) => break,
                Ok(Ok(count)) => raw.extend_from_slice(&chunk[..count]),
                Ok(Err(error)) if raw.is_empty() => panic!("no answer before {error}"),
                Ok(Err(_)) => break,
            }
            if let Some(response) = parse_http_response(&raw) {
                write.abort();
                return response;
            }
        }
        write.abort();
        panic!(
            "no complete HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        );
    }

    // ---- the token lifecycle ---------------------------------------------------------------

    pub(crate) async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/v1/auth/register",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers and returns the `user_id`, asserting 201.
    pub(crate) async fn register_ok(&self, email: &str, password: &str) -> String {
        let response = self.register(email, password).await;
        assert_eq!(response.status, 201, "register {email}: {response:?}");
        response.str_field("user_id").to_owned()
    }

    pub(crate) async fn login_raw(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Logs in, asserting a token response.
    pub(crate) async fn login(&self, email: &str, password: &str) -> Tokens {
        Tokens::from_response(self.login_raw(email, password).await)
    }

    /// Registers a fresh user and logs in once.
    pub(crate) async fn signup(&self) -> Account {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let user_id = self.register_ok(&email, PASSWORD).await;
        let tokens = self.login(&email, PASSWORD).await;
        Account {
            email,
            user_id,
            tokens,
        }
    }

    pub(crate) async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Refreshes, asserting a token response.
    pub(crate) async fn refresh_ok(&self, refresh_token: &str) -> Tokens {
        Tokens::from_response(self.refresh(refresh_token).await)
    }

    pub(crate) async fn logout(&self, access_token: &str, refresh_token: Option<&str>) -> Response {
        let body = match refresh_token {
            Some(refresh_token) => json!({"refresh_token": refresh_token}),
            None => json!({}),
        };
        let request = self
            .request(Method::POST, "/v1/auth/logout")
            .bearer_auth(access_token)
            .json(&body);
        self.send(request).await
    }

    pub(crate) async fn logout_all(&self, access_token: &str) -> Response {
        let request = self
            .request(Method::POST, "/v1/auth/logout-all")
            .bearer_auth(access_token)
            .json(&json!({}));
        self.send(request).await
    }

    pub(crate) async fn me(&self, access_token: &str) -> Response {
        self.get_with_bearer("/v1/auth/me", access_token).await
    }

    /// RFC 7662 introspection of `token` by the holder of `bearer`.
    pub(crate) async fn introspect(&self, bearer: &str, token: &str) -> Response {
        self.post_form("/oauth/introspect", Some(bearer), &[("token", token)])
            .await
    }

    /// RFC 7009 revocation of `token`, with an optional `token_type_hint`.
    pub(crate) async fn revoke(&self, token: &str, hint: Option<&str>) -> Response {
        match hint {
            Some(hint) => {
                self.post_form(
                    "/oauth/revoke",
                    None,
                    &[("token", token), ("token_type_hint", hint)],
                )
                .await
            }
            None => {
                self.post_form("/oauth/revoke", None, &[("token", token)])
                    .await
            }
        }
    }

    /// The revocation feed page after `since` (from the beginning when `None`).
    pub(crate) async fn revocations(&self, since: Option<&str>) -> Response {
        match since {
            Some(since) => self.get(&format!("/v1/revocations?since={since}")).await,
            None => self.get("/v1/revocations").await,
        }
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        // Already reaped by `crash` or `stop`: nothing to kill (and the pid may be reused).
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Err(error) = self.child.kill() {
                eprintln!("e2e clean-up: could not kill the issuer: {error}");
            }
            drop(self.child.wait());
        }
        if std::thread::panicking() {
            eprintln!(
                "e2e: the test failed; issuer at {:?}\n{}",
                self.base_url,
                self.logs()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses and assertions
// ---------------------------------------------------------------------------------------------

/// Sends a request built by [`Issuer::request`]; usable from spawned tasks.
pub(crate) async fn send(request: RequestBuilder) -> Response {
    let response = request.send().await.expect("the issuer answers");
    Response::read(response).await
}

/// Parses a complete HTTP/1.1 answer with a `Content-Length`; `None` while incomplete.
fn parse_http_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = reqwest::header::HeaderValue::from_str(value.trim()).ok()?;
        headers.append(name, value);
    }
    let length: usize = headers.get("content-length")?.to_str().ok()?.parse().ok()?;
    let body = raw.get(split + 4..split + 4 + length)?;
    let text = String::from_utf8_lossy(body).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Response {
        status,
        headers,
        body: json,
        text,
    })
}

/// One HTTP answer: status, headers and the body (as JSON when it parses, else `Null`).
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Response {
    async fn read(response: reqwest::Response) -> Response {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// A string member of the JSON body; panics with the response when it is not one.
    pub(crate) fn str_field(&self, name: &str) -> &str {
        self.body[name]
            .as_str()
            .unwrap_or_else(|| panic!("no string member {name:?} in {self:?}"))
    }

    pub(crate) fn is_problem_json(&self) -> bool {
        self.header("content-type").is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("application/problem+json")
        })
    }
}

/// Asserts an RFC 9457 problem document with this status and stable `code` (0002, "Errors").
pub(crate) fn assert_problem(response: &Response, status: u16, code: &str) {
    assert_eq!(
        response.status, status,
        "want {status} {code}, got {response:?}"
    );
    assert_problem_shape(response);
    assert_eq!(
        response.body["code"], code,
        "want code {code}, got {response:?}"
    );
}

/// Asserts a well-formed problem document with a 4xx status; returns its `code`.
pub(crate) fn assert_client_problem(response: &Response) -> String {
    assert!(
        (400..500).contains(&response.status),
        "want a 4xx, got {response:?}"
    );
    assert_problem_shape(response);
    response.str_field("code").to_owned()
}

fn assert_problem_shape(response: &Response) {
    assert!(
        response.is_problem_json(),
        "want application/problem+json, got {response:?}"
    );
    let body = &response.body;
    assert_eq!(
        body["status"], response.status,
        "problem `status` != HTTP status: {response:?}"
    );
    let code = body["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no `code`: {response:?}"));
    assert_eq!(
        body["type"],
        format!("urn:portcullis:problem:{code}"),
        "`type`: {response:?}"
    );
    let title = body["title"]
        .as_str()
        .unwrap_or_else(|| panic!("no `title`: {response:?}"));
    assert!(!title.is_empty(), "empty `title`: {response:?}");
    assert!(body["detail"].is_string(), "no `detail`: {response:?}");
}

/// Asserts a 401 carries `WWW-Authenticate: Bearer…` (0002, "Errors").
pub(crate) fn assert_bearer_challenge(response: &Response) {
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer"),
        "want WWW-Authenticate: Bearer, got {response:?}"
    );
}

/// Asserts the `errors` of a `validation_failed` problem name `field`.
pub(crate) fn assert_field_error(response: &Response, field: &str) {
    let errors = response.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no `errors` array: {response:?}"));
    assert!(
        errors.iter().any(|error| error["field"] == field),
        "want an error for {field:?}, got {response:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tokens and accounts
// ---------------------------------------------------------------------------------------------

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) token_type: String,
    pub(crate) expires_in: u64,
    pub(crate) response: Response,
}

impl Tokens {
    /// Parses a token response, asserting 200 and every RFC 6749 §5.1 member.
    pub(crate) fn from_response(response: Response) -> Tokens {
        assert_eq!(
            response.status, 200,
            "want a token response, got {response:?}"
        );
        Tokens {
            access_token: response.str_field("access_token").to_owned(),
            refresh_token: response.str_field("refresh_token").to_owned(),
            token_type: response.str_field("token_type").to_owned(),
            expires_in: response.body["expires_in"]
                .as_u64()
                .unwrap_or_else(|| panic!("no integer expires_in: {response:?}")),
            response,
        }
    }

    /// The access token's claims, decoded without verification.
    pub(crate) fn claims(&self) -> Value {
        jwt::payload(&self.access_token)
    }
}

/// A registered user with one session.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) email: String,
    pub(crate) user_id: String,
    pub(crate) tokens: Tokens,
}

/// Asserts `<prefix>` + a UUIDv7 in lowercase hex without dashes (0001, "Identifiers").
pub(crate) fn assert_prefixed_id(id: &str, prefix: &str) {
    let hex = id
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{id:?} lacks {prefix:?}"));
    assert!(
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id:?}: want {prefix} + 32 lowercase hex digits"
    );
    assert_eq!(hex.as_bytes()[12], b'7', "{id:?}: not a UUIDv7");
}

/// Asserts a refresh token is `prt_` + 43 base64url characters (0001, "Identifiers").
pub(crate) fn assert_refresh_token_format(token: &str) {
    let secret = token
        .strip_prefix("prt_")
        .unwrap_or_else(|| panic!("{token:?} lacks prt_"));
    assert!(
        secret.len() == 43
            && secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{token:?}: want prt_ + 43 base64url characters"
    );
}

#[cfg(test)]
mod tests {
    use super::with_database;

    /// The `mod` lines of a suite root, without the backend-specific module.
    fn shared_modules(root: &str) -> Vec<&str> {
        root.lines()
            .filter(|line| line.starts_with("mod ") && !line.contains("_only;"))
            .collect()
    }

    /// Both targets run the same tests: a module added to one root only would silently run
    /// against one backend.
    #[test]
    fn both_backends_declare_the_same_shared_modules() {
        let postgres = shared_modules(include_str!("../main.rs"));
        let embedded = shared_modules(include_str!("../embedded.rs"));
        assert!(postgres.len() > 5, "{postgres:?}");
        assert_eq!(postgres, embedded, "main.rs and embedded.rs differ");
    }

    #[test]
    fn with_database_url_variants_replace_only_the_name() {
        let cases = [
            ("postgres://u@h:5432/test", "postgres://u@h:5432/x"),
            ("postgres://u@h:5432", "postgres://u@h:5432/x"),
            (
                "postgres://u:p@h/test?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(with_database(input, "x"), want);
        }
    }
}
