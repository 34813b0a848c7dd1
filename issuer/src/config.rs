//! Settings, layered: built-in defaults, then the TOML file named by `PORTCULLIS_CONFIG`, then
//! `PORTCULLIS_*` environment variables (nested keys joined with `__`). Unknown keys are refused
//! and every value is checked once, at start, with a message that names the setting
//! (design note 0002).
//!
//! [`FileConfig`] is the shape operators write; [`Config`] is what the rest of the issuer
//! receives: parsed, range-checked and with secrets decoded into their key types.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use figment::Figment;
use figment::providers::{Env, Format as _, Toml};
use ipnet::IpNet;
use serde::Deserialize;

use crate::crypto::keys::MasterKey;
use crate::crypto::password::HashSettings;
use crate::crypto::secret::{SecretBytes, SecretString};
use crate::crypto::signing::{KeyMaterial, SigningAlgorithm};

mod mail;

use self::mail::MailFile;
pub(crate) use self::mail::{MailSettings, SmtpSecurity, SmtpTarget};

/// Prefix of every environment variable the issuer reads.
const ENV_PREFIX: &str = "PORTCULLIS_";
/// Names the config file; read here, not as a setting.
const CONFIG_PATH_VAR: &str = "PORTCULLIS_CONFIG";
/// `PORTCULLIS_*` variables that belong to other tools (the config path itself, and the test
/// runner's switch), so they are not mistaken for unknown settings.
const NOT_SETTINGS: &[&str] = &["config", "require_services"];

/// A setting that is missing, malformed or out of range.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers could not be read or merged, or a value has the wrong type or an unknown key.
    #[error("{}", describe_load_error(.0))]
    Load(Box<figment::Error>),
    /// `PORTCULLIS_CONFIG` names a file that does not exist.
    #[error("{CONFIG_PATH_VAR} names `{0}`, which is not a readable file")]
    MissingFile(PathBuf),
    /// A required setting is absent.
    #[error("`{setting}` is required: {hint}")]
    Missing {
        /// The setting's key.
        setting: &'static str,
        /// How to provide it.
        hint: String,
    },
    /// A setting has a value the issuer refuses.
    #[error("`{setting}` {reason}")]
    Invalid {
        /// The setting's key.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Renders every error of a failed load as `` `name` (source): problem ``, where `name` is the
/// variable or key as the operator wrote it. Values are never repeated: a secret of the wrong
/// type (a numeric master key, say) would otherwise end up in the message and in logs.
fn describe_load_error(error: &figment::Error) -> String {
    let lines: Vec<String> = error
        .clone()
        .into_iter()
        .map(|one| {
            let from_env = one
                .metadata
                .as_ref()
                .is_some_and(|metadata| metadata.name.contains("environment"));
            let name = if from_env {
                format!("{ENV_PREFIX}{}", one.path.join("__").to_ascii_uppercase())
            } else {
                one.path.join(".")
            };
            let origin = match one.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(source) if !from_env => format!(" in {source}"),
                _ => String::new(),
            };
            let problem = match &one.kind {
                figment::error::Kind::InvalidType(_, expected) => {
                    format!("has the wrong type: expected {expected}")
                }
                figment::error::Kind::InvalidValue(_, expected) => {
                    format!("has an invalid value: expected {expected}")
                }
                figment::error::Kind::ISizeOutOfRange(_)
                | figment::error::Kind::USizeOutOfRange(_) => "is out of range".to_owned(),
                figment::error::Kind::Unsupported(_) | figment::error::Kind::UnsupportedKey(..) => {
                    "has an unsupported type".to_owned()
                }
                other => other.to_string(),
            };
            if name.is_empty() {
                format!("configuration{origin}: {problem}")
            } else {
                format!("`{name}`{origin}: {problem}")
            }
        })
        .collect();
    lines.join("; ")
}

fn invalid(setting: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        reason: reason.into(),
    }
}

/// How logs are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// The file-facing settings, exactly as operators write them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    listen: SocketAddr,
    public_url: Option<String>,
    database_url: Option<SecretString>,
    redis_url: Option<SecretString>,
    redis_prefix: String,
    data_dir: PathBuf,
    master_key: Option<SecretString>,
    log_format: LogFormat,
    token: TokenFile,
    password: PasswordFile,
    http: HttpFile,
    rate_limit: RateLimitFile,
    lockout: LockoutFile,
    mfa: MfaFile,
    mail: MailFile,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            database_url: None,
            redis_url: None,
            redis_prefix: "portcullis".to_owned(),
            data_dir: PathBuf::from("./data"),
            master_key: None,
            log_format: LogFormat::Text,
            token: TokenFile::default(),
            password: PasswordFile::default(),
            http: HttpFile::default(),
            rate_limit: RateLimitFile::default(),
            lockout: LockoutFile::default(),
            mfa: MfaFile::default(),
            mail: MailFile::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TokenFile {
    audience: String,
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
    session_max_secs: u64,
    refresh_grace_secs: u64,
    algorithm: SigningAlgorithm,
    keys: Vec<KeyFile>,
}

impl Default for TokenFile {
    fn default() -> Self {
        Self {
            audience: "portcullis".to_owned(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 2_592_000,
            session_max_secs: 7_776_000,
            refresh_grace_secs: 10,
            algorithm: SigningAlgorithm::Hs256,
            keys: Vec::new(),
        }
    }
}

/// One `[[token.keys]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    kid: String,
    alg: SigningAlgorithm,
    secret: Option<SecretString>,
    private_key: Option<SecretString>,
    #[serde(default)]
    active: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PasswordFile {
    min_length: usize,
    max_length: usize,
    argon2_memory_kib: u32,
    argon2_iterations: u32,
    argon2_parallelism: u32,
    max_concurrent_hashes: usize,
    queue_timeout_ms: u64,
}

impl Default for PasswordFile {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
            argon2_memory_kib: ARGON2_MIN_MEMORY_KIB,
            argon2_iterations: ARGON2_MIN_ITERATIONS,
            argon2_parallelism: 1,
            max_concurrent_hashes: num_cpus::get(),
            queue_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HttpFile {
    body_limit_bytes: usize,
    request_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog (see `http::serve`).
    max_connections: usize,
    /// How long a client may take to send a request head, or keep a connection idle.
    header_read_timeout_secs: u64,
    /// Peers whose `X-Forwarded-For` is believed (see `http::extract::client_ip`).
    trusted_proxies: Vec<IpNet>,
}

impl Default for HttpFile {
    fn default() -> Self {
        Self {
            body_limit_bytes: 65_536,
            request_timeout_secs: 30,
            max_connections: 10_000,
            header_read_timeout_secs: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[rate_limit]`: one budget per route and key kind (design note 0005).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitFile {
    login_per_ip: Limit,
    login_per_account: Limit,
    register_per_ip: Limit,
    register_per_account: Limit,
    mfa_verify_per_ip: Limit,
    mfa_verify_per_account: Limit,
    mfa_manage_per_ip: Limit,
    mfa_manage_per_account: Limit,
    forgot_password_per_ip: Limit,
    forgot_password_per_account: Limit,
    verify_email_per_ip: Limit,
    reset_password_per_ip: Limit,
    change_password_per_ip: Limit,
    change_password_per_account: Limit,
}

impl Default for RateLimitFile {
    fn default() -> Self {
        Self {
            login_per_ip: Limit::new(10, 10),
            login_per_account: Limit::new(5, 5),
            register_per_ip: Limit::new(5, 5),
            register_per_account: Limit::new(3, 3),
            mfa_verify_per_ip: Limit::new(10, 10),
            mfa_verify_per_account: Limit::new(5, 5),
            mfa_manage_per_ip: Limit::new(10, 10),
            mfa_manage_per_account: Limit::new(10, 10),
            forgot_password_per_ip: Limit::new(5, 5),
            forgot_password_per_account: Limit::new(3, 3),
            verify_email_per_ip: Limit::new(10, 10),
            reset_password_per_ip: Limit::new(10, 10),
            change_password_per_ip: Limit::new(10, 10),
            change_password_per_account: Limit::new(5, 5),
        }
    }
}

/// `[mfa]` (design note 0005, "TOTP MFA").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MfaFile {
    /// Default `Portcullis`: the issuer an authenticator app shows next to the account
    /// (the otpauth URI's label and `issuer`).
    issuer_name: String,
    /// Default 300 (5 min): how long the `mfa_token` of a half-done login stays usable.
    challenge_ttl_secs: u64,
}

impl Default for MfaFile {
    fn default() -> Self {
        Self {
            issuer_name: "Portcullis".to_owned(),
            challenge_ttl_secs: 300,
        }
    }
}

impl MfaFile {
    fn check(&self) -> Result<(), ConfigError> {
        // The Key URI format separates issuer and account with `:`, so neither may hold one.
        let name = &self.issuer_name;
        if name.trim().is_empty()
            || name.chars().count() > 64
            || name.contains(':')
            || name.chars().any(char::is_control)
        {
            return Err(invalid(
                "mfa.issuer_name",
                "must be 1 to 64 printable characters without `:`",
            ));
        }
        check_range("mfa.challenge_ttl_secs", self.challenge_ttl_secs, 30, 1_800)
    }
}

impl RateLimitFile {
    fn settings(&self) -> RateLimitSettings {
        RateLimitSettings {
            login_per_ip: self.login_per_ip,
            login_per_account: self.login_per_account,
            register_per_ip: self.register_per_ip,
            register_per_account: self.register_per_account,
            forgot_password_per_ip: self.forgot_password_per_ip,
            forgot_password_per_account: self.forgot_password_per_account,
            verify_email_per_ip: self.verify_email_per_ip,
            reset_password_per_ip: self.reset_password_per_ip,
            change_password_per_ip: self.change_password_per_ip,
            change_password_per_account: self.change_password_per_account,
            mfa_verify_per_ip: self.mfa_verify_per_ip,
            mfa_verify_per_account: self.mfa_verify_per_account,
            mfa_manage_per_ip: self.mfa_manage_per_ip,
            mfa_manage_per_account: self.mfa_manage_per_account,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let budgets = [
            ("login_per_ip", self.login_per_ip),
            ("login_per_account", self.login_per_account),
            ("register_per_ip", self.register_per_ip),
            ("register_per_account", self.register_per_account),
            ("forgot_password_per_ip", self.forgot_password_per_ip),
            (
                "forgot_password_per_account",
                self.forgot_password_per_account,
            ),
            ("verify_email_per_ip", self.verify_email_per_ip),
            ("reset_password_per_ip", self.reset_password_per_ip),
            ("change_password_per_ip", self.change_password_per_ip),
            (
                "change_password_per_account",
                self.change_password_per_account,
            ),
            ("mfa_verify_per_ip", self.mfa_verify_per_ip),
            ("mfa_verify_per_account", self.mfa_verify_per_account),
            ("mfa_manage_per_ip", self.mfa_manage_per_ip),
            ("mfa_manage_per_account", self.mfa_manage_per_account),
        ];
        budgets
            .into_iter()
            .try_for_each(|(setting, limit)| limit.check(setting))
    }
}

/// `[lockout]` (design note 0005, "Lockout"): on by default. Each tenant may override
/// `max_failures` and `lock_secs` (table `tenant_lockout_policies`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LockoutFile {
    /// Default `true`. Turning it off leaves password guessing limited by rate limits alone.
    enabled: bool,
    /// Default 10: the consecutive failure that locks the account. Graduated delays of
    /// 2^(n−3) s, at most 30 s, come before it, from the 3rd failure.
    max_failures: u32,
    /// Default 900 (15 min): how long a lock lasts.
    lock_secs: u64,
}

impl Default for LockoutFile {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failures: 10,
            lock_secs: 900,
        }
    }
}

/// A GCRA budget: `per_minute` requests a minute on average, at most `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Limit {
    pub(crate) per_minute: u32,
    pub(crate) burst: u32,
}

impl Limit {
    pub(crate) const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }

    /// The time one request's share of the budget takes to come back.
    pub(crate) fn interval(self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }

    fn check(self, setting: &str) -> Result<(), ConfigError> {
        check_range(
            &format!("rate_limit.{setting}.per_minute"),
            self.per_minute,
            1,
            RATE_LIMIT_MAX,
        )?;
        check_range(
            &format!("rate_limit.{setting}.burst"),
            self.burst,
            1,
            RATE_LIMIT_MAX,
        )
    }
}

/// A ceiling well above any sane budget, which keeps GCRA arithmetic far from overflow.
const RATE_LIMIT_MAX: u32 = 1_000_000;

/// OWASP's minimum for Argon2id: 19 MiB, two passes, one lane.
const ARGON2_MIN_MEMORY_KIB: u32 = 19_456;
const ARGON2_MIN_ITERATIONS: u32 = 2;
/// NIST SP 800-63B: memorized secrets are at least 8 characters.
const PASSWORD_MIN_FLOOR: usize = 8;

/// Where durable data and the revocation blacklist live: the table of design note 0003.
#[derive(Debug)]
pub(crate) enum Storage {
    /// `database_url` and `redis_url` unset: SQLite in `data_dir`, an in-process blacklist,
    /// one node.
    Embedded { data_dir: PathBuf },
    /// `database_url` set: PostgreSQL, shared by many replicas; with `redis_url` the blacklist
    /// is in Redis, without it in each process, polled from the PostgreSQL feed.
    Postgres {
        database_url: SecretString,
        redis_url: Option<SecretString>,
    },
}

/// The validated settings of `issuer serve`.
#[derive(Debug)]
pub struct Config {
    pub(crate) listen: SocketAddr,
    pub(crate) public_url: Option<String>,
    pub(crate) storage: Storage,
    pub(crate) redis_prefix: String,
    /// `None` only with [`Storage::Embedded`], which keeps a generated key in its data
    /// directory.
    pub(crate) master_key: Option<MasterKey>,
    pub(crate) log_format: LogFormat,
    pub(crate) token: TokenSettings,
    pub(crate) password: PasswordSettings,
    pub(crate) http: HttpSettings,
    pub(crate) rate_limit: RateLimitSettings,
    pub(crate) lockout: LockoutSettings,
    pub(crate) mfa: MfaSettings,
    pub(crate) mail: MailSettings,
}

impl Config {
    /// How logs should be written, needed before anything else starts.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

/// The validated settings of `issuer migrate`: only the database is needed.
#[derive(Debug)]
pub struct MigrateConfig {
    pub(crate) storage: Storage,
    pub(crate) log_format: LogFormat,
}

impl MigrateConfig {
    /// How logs should be written.
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

/// Access- and refresh-token settings.
#[derive(Debug)]
pub(crate) struct TokenSettings {
    pub(crate) audience: String,
    pub(crate) access_ttl_secs: u64,
    pub(crate) refresh_ttl_secs: u64,
    pub(crate) session_max_secs: u64,
    pub(crate) refresh_grace_secs: u64,
    pub(crate) algorithm: SigningAlgorithm,
    /// Configured keys, the active (signing) one first; empty: generate and store one.
    pub(crate) keys: Vec<KeyMaterial>,
}

/// Password policy and hashing cost.
#[derive(Debug)]
pub(crate) struct PasswordSettings {
    pub(crate) min_length: usize,
    pub(crate) max_length: usize,
    pub(crate) hashing: HashSettings,
}

/// HTTP server limits.
#[derive(Debug)]
pub(crate) struct HttpSettings {
    pub(crate) body_limit_bytes: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) trusted_proxies: Vec<IpNet>,
}

/// Rate-limit budgets, checked before any password work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateLimitSettings {
    pub(crate) login_per_ip: Limit,
    pub(crate) login_per_account: Limit,
    pub(crate) register_per_ip: Limit,
    pub(crate) register_per_account: Limit,
    pub(crate) mfa_verify_per_ip: Limit,
    pub(crate) mfa_verify_per_account: Limit,
    pub(crate) mfa_manage_per_ip: Limit,
    pub(crate) mfa_manage_per_account: Limit,
    pub(crate) forgot_password_per_ip: Limit,
    pub(crate) forgot_password_per_account: Limit,
    pub(crate) verify_email_per_ip: Limit,
    pub(crate) reset_password_per_ip: Limit,
    pub(crate) change_password_per_ip: Limit,
    pub(crate) change_password_per_account: Limit,
}

/// Account lockout; see `[lockout]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LockoutSettings {
    pub(crate) enabled: bool,
    pub(crate) max_failures: u32,
    pub(crate) lock_secs: u64,
}

/// TOTP enrolment and the MFA step of login; see `[mfa]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MfaSettings {
    pub(crate) issuer_name: String,
    pub(crate) challenge_ttl_secs: u64,
}

/// Loads and validates the settings of `issuer serve`.
///
/// # Errors
///
/// A [`ConfigError`] naming the first setting that is missing or wrong.
pub fn load() -> Result<Config, ConfigError> {
    extract(layers()?)?.into_config()
}

/// Loads and validates the settings of `issuer migrate`.
///
/// # Errors
///
/// A [`ConfigError`] naming the first setting that is missing or wrong.
pub fn load_for_migrate() -> Result<MigrateConfig, ConfigError> {
    let file = extract(layers()?)?;
    file.check_common()?;
    Ok(MigrateConfig {
        storage: file.storage()?,
        log_format: file.log_format,
    })
}

fn layers() -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = Env::var(CONFIG_PATH_VAR) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(ConfigError::MissingFile(path));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let env = Env::prefixed(ENV_PREFIX).ignore(NOT_SETTINGS).split("__");
    Ok(figment.merge(env))
}

fn extract(figment: Figment) -> Result<FileConfig, ConfigError> {
    figment
        .extract()
        .map_err(|err| ConfigError::Load(Box::new(err)))
}

impl FileConfig {
    fn into_config(self) -> Result<Config, ConfigError> {
        self.check_common()?;
        let storage = self.storage()?;
        let master_key = match (&storage, &self.master_key) {
            (_, Some(encoded)) => Some(parse_master_key(encoded)?),
            (Storage::Embedded { .. }, None) => None,
            (Storage::Postgres { .. }, None) => return Err(missing_master_key()),
        };
        Ok(Config {
            listen: self.listen,
            public_url: self.public_url,
            storage,
            redis_prefix: self.redis_prefix,
            master_key,
            log_format: self.log_format,
            token: self.token.into_settings()?,
            password: self.password.settings(),
            http: HttpSettings {
                body_limit_bytes: self.http.body_limit_bytes,
                request_timeout: Duration::from_secs(self.http.request_timeout_secs),
                max_connections: self.http.max_connections,
                header_read_timeout: Duration::from_secs(self.http.header_read_timeout_secs),
                trusted_proxies: self.http.trusted_proxies,
            },
            rate_limit: self.rate_limit.settings(),
            lockout: LockoutSettings {
                enabled: self.lockout.enabled,
                max_failures: self.lockout.max_failures,
                lock_secs: self.lockout.lock_secs,
            },
            mfa: MfaSettings {
                issuer_name: self.mfa.issuer_name.trim().to_owned(),
                challenge_ttl_secs: self.mfa.challenge_ttl_secs,
            },
            mail: self.mail.into_settings()?,
        })
    }

    /// Checks every setting that has a value, whatever the command.
    fn check_common(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_url {
            check_public_url(url)?;
        }
        check_redis_prefix(&self.redis_prefix)?;
        check_data_dir(&self.data_dir)?;
        self.token.check()?;
        self.password.check()?;
        check_range(
            "http.body_limit_bytes",
            self.http.body_limit_bytes,
            1_024,
            16 << 20,
        )?;
        check_range(
            "http.request_timeout_secs",
            self.http.request_timeout_secs,
            1,
            600,
        )?;
        // The ceiling keeps the value within what a Tokio semaphore can count.
        check_range(
            "http.max_connections",
            self.http.max_connections,
            1,
            1_000_000,
        )?;
        check_range(
            "http.header_read_timeout_secs",
            self.http.header_read_timeout_secs,
            1,
            600,
        )?;
        self.rate_limit.check()?;
        self.mail.check()?;
        self.mfa.check()?;
        // The same ranges as the per-tenant overrides in `tenant_lockout_policies`.
        check_range("lockout.max_failures", self.lockout.max_failures, 1, 1_000)?;
        check_range("lockout.lock_secs", self.lockout.lock_secs, 1, 86_400)
    }

    /// The backend the URLs select (design note 0003); nothing is refused silently.
    fn storage(&self) -> Result<Storage, ConfigError> {
        let Some(database_url) = self.database_url.clone() else {
            if self.redis_url.is_some() {
                return Err(invalid(
                    "redis_url",
                    "is set but `database_url` is not: without `database_url` the issuer runs \
                     the embedded SQLite backend, which is single-node, and a shared Redis would \
                     suggest otherwise; set `database_url` (PostgreSQL) too, or unset `redis_url`",
                ));
            }
            return Ok(Storage::Embedded {
                data_dir: self.data_dir.clone(),
            });
        };
        check_url_scheme(
            "database_url",
            &database_url,
            &["postgres://", "postgresql://"],
        )?;
        if let Some(redis_url) = &self.redis_url {
            check_url_scheme(
                "redis_url",
                redis_url,
                &["redis://", "rediss://", "redis+unix://"],
            )?;
        }
        Ok(Storage::Postgres {
            database_url,
            redis_url: self.redis_url.clone(),
        })
    }
}

impl TokenFile {
    fn check(&self) -> Result<(), ConfigError> {
        if self.audience.is_empty()
            || self.audience.len() > 256
            || self.audience.chars().any(char::is_control)
        {
            return Err(invalid(
                "token.audience",
                "must be 1 to 256 printable characters",
            ));
        }
        check_range("token.access_ttl_secs", self.access_ttl_secs, 60, 86_400)?;
        check_range(
            "token.refresh_ttl_secs",
            self.refresh_ttl_secs,
            1,
            31_536_000,
        )?;
        check_range(
            "token.session_max_secs",
            self.session_max_secs,
            1,
            63_072_000,
        )?;
        // A session shorter than one access token would outlive itself through that token.
        // Refresh tokens need no such rule: the session's end caps them.
        if self.session_max_secs < self.access_ttl_secs {
            return Err(invalid(
                "token.session_max_secs",
                format!(
                    "is {}; it must be at least `token.access_ttl_secs` ({})",
                    self.session_max_secs, self.access_ttl_secs
                ),
            ));
        }
        check_range("token.refresh_grace_secs", self.refresh_grace_secs, 0, 60)?;
        self.configured_keys().map(drop)
    }

    fn into_settings(self) -> Result<TokenSettings, ConfigError> {
        let keys = self.configured_keys()?;
        Ok(TokenSettings {
            audience: self.audience,
            access_ttl_secs: self.access_ttl_secs,
            refresh_ttl_secs: self.refresh_ttl_secs,
            session_max_secs: self.session_max_secs,
            refresh_grace_secs: self.refresh_grace_secs,
            algorithm: self.algorithm,
            keys,
        })
    }

    /// The configured keys with the active one first.
    fn configured_keys(&self) -> Result<Vec<KeyMaterial>, ConfigError> {
        let mut keys = Vec::with_capacity(self.keys.len());
        let mut active = None;
        for (index, key) in self.keys.iter().enumerate() {
            let material = key.material(index)?;
            if keys
                .iter()
                .any(|seen: &KeyMaterial| seen.kid() == material.kid())
            {
                return Err(invalid(format!("token.keys[{index}].kid"), "is used twice"));
            }
            if key.active {
                if active.is_some() {
                    return Err(invalid(
                        "token.keys",
                        "may mark only one key `active = true`",
                    ));
                }
                active = Some(index);
            }
            keys.push(material);
        }
        if let Some(index) = active {
            keys.swap(0, index);
        }
        Ok(keys)
    }
}

impl KeyFile {
    fn material(&self, index: usize) -> Result<KeyMaterial, ConfigError> {
        let setting = |field: &str| format!("token.keys[{index}].{field}");
        let kid_ok = !self.kid.is_empty()
            && self.kid.len() <= 64
            && self
                .kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !kid_ok {
            return Err(invalid(
                setting("kid"),
                "must be 1 to 64 of A-Z a-z 0-9 . _ -",
            ));
        }
        let (field, encoded) = match (self.alg, &self.secret, &self.private_key) {
            (SigningAlgorithm::Hs256, Some(secret), None) => ("secret", secret),
            (SigningAlgorithm::EdDsa, None, Some(private_key)) => ("private_key", private_key),
            (SigningAlgorithm::Hs256, _, _) => {
                return Err(invalid(setting("secret"), "is required for HS256, alone"));
            }
            (SigningAlgorithm::EdDsa, _, _) => {
                return Err(invalid(
                    setting("private_key"),
                    "is required for EdDSA, alone",
                ));
            }
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.expose().trim())
            .map_err(|_| invalid(setting(field), "must be base64url without padding"))?;
        KeyMaterial::new(self.kid.clone(), self.alg, SecretBytes::new(bytes))
            .map_err(|err| invalid(setting(field), err.to_string()))
    }
}

impl PasswordFile {
    fn check(&self) -> Result<(), ConfigError> {
        check_range(
            "password.min_length",
            self.min_length,
            PASSWORD_MIN_FLOOR,
            1_024,
        )?;
        if self.min_length > self.max_length {
            return Err(invalid(
                "password.min_length",
                format!(
                    "is {}; it must not exceed `password.max_length` ({})",
                    self.min_length, self.max_length
                ),
            ));
        }
        check_range(
            "password.max_length",
            self.max_length,
            PASSWORD_MIN_FLOOR,
            4_096,
        )?;
        check_range(
            "password.argon2_memory_kib",
            self.argon2_memory_kib,
            ARGON2_MIN_MEMORY_KIB,
            4 << 20,
        )?;
        check_range(
            "password.argon2_iterations",
            self.argon2_iterations,
            ARGON2_MIN_ITERATIONS,
            100,
        )?;
        check_range(
            "password.argon2_parallelism",
            self.argon2_parallelism,
            1,
            64,
        )?;
        check_range(
            "password.max_concurrent_hashes",
            self.max_concurrent_hashes,
            1,
            1_024,
        )?;
        check_range(
            "password.queue_timeout_ms",
            self.queue_timeout_ms,
            1,
            60_000,
        )?;
        self.settings()
            .hashing
            .params()
            .map(drop)
            .map_err(|err| invalid("password.argon2_*", format!("are refused by Argon2: {err}")))
    }

    fn settings(&self) -> PasswordSettings {
        PasswordSettings {
            min_length: self.min_length,
            max_length: self.max_length,
            hashing: HashSettings {
                memory_kib: self.argon2_memory_kib,
                iterations: self.argon2_iterations,
                parallelism: self.argon2_parallelism,
                max_concurrent: self.max_concurrent_hashes,
                queue_timeout: Duration::from_millis(self.queue_timeout_ms),
            },
        }
    }
}

fn check_range<T>(setting: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if value < min || value > max {
        return Err(invalid(
            setting,
            format!("is {value}; it must be between {min} and {max}"),
        ));
    }
    Ok(())
}

fn missing_master_key() -> ConfigError {
    ConfigError::Missing {
        setting: "master_key",
        hint: "with PostgreSQL the master key wraps the stored signing keys and every replica \
               needs the same one; set PORTCULLIS_MASTER_KEY to 32 random bytes in base64url \
               without padding (e.g. `openssl rand 32 | basenc --base64url | tr -d =`)"
            .to_owned(),
    }
}

fn parse_master_key(encoded: &SecretString) -> Result<MasterKey, ConfigError> {
    MasterKey::from_base64url(encoded.expose())
        .map_err(|err| invalid("master_key", err.to_string()))
}

fn check_url_scheme(
    setting: &'static str,
    url: &SecretString,
    schemes: &[&str],
) -> Result<(), ConfigError> {
    if schemes
        .iter()
        .any(|scheme| url.expose().starts_with(scheme))
    {
        return Ok(());
    }
    // The URL may hold a password, so the message names only the accepted schemes.
    Err(invalid(
        setting,
        format!("must start with one of {}", schemes.join(", ")),
    ))
}

/// `public_url` becomes the `iss` claim, which verifiers compare byte for byte, so only one
/// spelling is accepted: scheme and host, optional port and path, no trailing slash.
fn check_public_url(url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let problem = match rest {
        None => Some("must start with http:// or https://"),
        Some("") => Some("has no host"),
        Some(_) if url.ends_with('/') => Some("must not end with a slash"),
        Some(rest) if rest.starts_with('/') => Some("has no host"),
        Some(rest) if rest.contains(['?', '#', '@']) => {
            Some("must not contain a query, a fragment or credentials")
        }
        Some(_) if url.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Some("must not contain whitespace")
        }
        Some(_) => None,
    };
    problem.map_or(Ok(()), |reason| Err(invalid("public_url", reason)))
}

fn check_data_dir(path: &Path) -> Result<(), ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(invalid("data_dir", "must not be empty"));
    }
    Ok(())
}

fn check_redis_prefix(prefix: &str) -> Result<(), ConfigError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(invalid(
        "redis_prefix",
        "must be 1 to 64 of A-Z a-z 0-9 . _ : -",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "B3Ut2iiVvW0RNdqNAx1H8byE5b1uYUOaMKTiTKsxvKE";

    fn parse(toml: &str) -> Result<FileConfig, ConfigError> {
        extract(Figment::from(Toml::string(toml)))
    }

    fn serve(extra: &str) -> Result<Config, ConfigError> {
        let base = format!(
            "database_url = \"postgres://localhost/db\"\nredis_url = \"redis://localhost\"\n\
             master_key = \"{MASTER}\"\n"
        );
        parse(&format!("{base}{extra}"))?.into_config()
    }

    fn message(result: Result<Config, ConfigError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = serve("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.redis_prefix, "portcullis");
        assert_eq!(config.token.audience, "portcullis");
        assert_eq!(config.token.access_ttl_secs, 900);
        assert_eq!(config.token.refresh_grace_secs, 10);
        assert_eq!(config.token.algorithm, SigningAlgorithm::Hs256);
        assert!(config.token.keys.is_empty());
        assert_eq!(config.password.hashing.memory_kib, 19_456);
        assert_eq!(
            (config.password.min_length, config.password.max_length),
            (8, 256)
        );
        assert_eq!(config.http.body_limit_bytes, 65_536);
        assert_eq!(parse("").unwrap().data_dir, Path::new("./data"));
        assert!(message(serve("data_dir = \"\"")).contains("data_dir"));
    }

    fn storage(toml: &str) -> Result<Storage, ConfigError> {
        parse(toml)?.into_config().map(|config| config.storage)
    }

    fn embedded_dir(config: &Config) -> Option<&Path> {
        match &config.storage {
            Storage::Embedded { data_dir } => Some(data_dir),
            Storage::Postgres { .. } => None,
        }
    }

    #[test]
    fn no_urls_select_the_embedded_backend_with_a_generated_key() {
        let config = parse("").unwrap().into_config().unwrap();
        assert_eq!(embedded_dir(&config), Some(Path::new("./data")));
        assert!(config.master_key.is_none());
        let config = parse(&format!("data_dir = \"/srv/p\"\nmaster_key = \"{MASTER}\""))
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(embedded_dir(&config), Some(Path::new("/srv/p")));
        assert!(config.master_key.is_some(), "a configured key is used");
    }

    #[test]
    fn database_url_alone_selects_postgres_with_an_in_process_blacklist() {
        let toml = format!("database_url = \"postgres://x\"\nmaster_key = \"{MASTER}\"");
        assert!(matches!(
            storage(&toml).unwrap(),
            Storage::Postgres {
                redis_url: None,
                ..
            }
        ));
        assert!(matches!(
            serve("").unwrap().storage,
            Storage::Postgres {
                redis_url: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn redis_without_database_is_refused() {
        let err = storage("redis_url = \"redis://x\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("redis_url") && err.contains("single-node"),
            "{err}"
        );
        let migrate = parse("redis_url = \"redis://x\"").unwrap().storage();
        assert!(migrate.is_err(), "`issuer migrate` applies the same rule");
    }

    #[test]
    fn postgres_requires_the_master_key() {
        for toml in [
            "database_url = \"postgres://x\"",
            "database_url = \"postgres://x\"\nredis_url = \"redis://x\"",
        ] {
            let err = storage(toml).unwrap_err().to_string();
            assert!(
                err.contains("master_key") && err.contains("PORTCULLIS_MASTER_KEY"),
                "{err}"
            );
        }
    }

    #[test]
    fn migrate_needs_only_the_database() {
        let file = parse("database_url = \"postgres://x\"").unwrap();
        assert!(file.check_common().is_ok());
        assert!(matches!(file.storage(), Ok(Storage::Postgres { .. })));
        assert!(matches!(
            parse("").unwrap().storage(),
            Ok(Storage::Embedded { .. })
        ));
    }

    #[test]
    fn master_key_must_decode_to_32_bytes() {
        let toml = "database_url = \"postgres://x\"\nredis_url = \"redis://x\"\n\
                    master_key = \"c2hvcnQ\"";
        let err = parse(toml).unwrap().into_config().unwrap_err().to_string();
        assert!(
            err.contains("master_key") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(
            !err.contains("c2hvcnQ"),
            "the message must not echo the secret: {err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(parse("colour = \"blue\"").is_err());
        let err = parse("[token]\naccess_tll_secs = 60")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("access_tll_secs"), "{err}");
    }

    #[test]
    fn load_errors_name_the_setting_and_never_repeat_its_value() {
        let err = parse("master_key = 123456789").err().unwrap().to_string();
        assert!(err.contains("`master_key`"), "{err}");
        assert!(!err.contains("123456789"), "{err}");
        let err = parse("[[token.keys]]\nkid = \"k\"\nalg = \"HS256\"\nsecret = 987654321")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("secret"), "{err}");
        assert!(!err.contains("987654321"), "{err}");
    }

    #[test]
    fn argon2_floors_are_enforced() {
        let err = message(serve("[password]\nargon2_memory_kib = 4096"));
        assert!(err.contains("password.argon2_memory_kib"), "{err}");
        assert!(message(serve("[password]\nargon2_iterations = 1")).contains("iterations"));
        assert!(message(serve("[password]\nargon2_parallelism = 0")).contains("parallelism"));
        assert!(message(serve("[password]\nmin_length = 4")).contains("min_length"));
        let err = message(serve("[password]\nmin_length = 20\nmax_length = 10"));
        assert!(
            err.starts_with("`password.min_length` is 20")
                && err.contains("`password.max_length` (10)"),
            "{err}"
        );
        assert!(serve("[password]\nmin_length = 10\nmax_length = 10").is_ok());
    }

    #[test]
    fn sessions_last_at_least_one_access_token() {
        let err = message(serve(
            "[token]\naccess_ttl_secs = 900\nsession_max_secs = 899",
        ));
        assert!(
            err.starts_with("`token.session_max_secs` is 899")
                && err.contains("`token.access_ttl_secs` (900)"),
            "{err}"
        );
        assert!(serve("[token]\naccess_ttl_secs = 900\nsession_max_secs = 900").is_ok());
        // A refresh token may be set to outlive the session; the session's end caps it.
        assert!(serve("[token]\nrefresh_ttl_secs = 7776000\nsession_max_secs = 3600").is_ok());
    }

    #[test]
    fn http_connection_limits_have_defaults_and_ranges() {
        let config = serve("").unwrap();
        assert_eq!(config.http.max_connections, 10_000);
        assert_eq!(config.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.http.request_timeout, Duration::from_secs(30));
        let config = serve("[http]\nmax_connections = 1\nheader_read_timeout_secs = 3").unwrap();
        assert_eq!(config.http.max_connections, 1);
        assert_eq!(config.http.header_read_timeout, Duration::from_secs(3));
        let err = message(serve("[http]\nmax_connections = 0"));
        assert!(err.contains("`http.max_connections` is 0"), "{err}");
        let err = message(serve("[http]\nheader_read_timeout_secs = 0"));
        assert!(err.contains("`http.header_read_timeout_secs`"), "{err}");
    }

    #[test]
    fn mfa_settings_have_defaults_and_are_checked() {
        let config = serve("").unwrap();
        assert_eq!(config.mfa.issuer_name, "Portcullis");
        assert_eq!(config.mfa.challenge_ttl_secs, 300);
        assert_eq!(config.rate_limit.mfa_verify_per_account, Limit::new(5, 5));
        let config = serve("[mfa]\nissuer_name = \"Acme Login\"\nchallenge_ttl_secs = 60").unwrap();
        assert_eq!(config.mfa.issuer_name, "Acme Login");
        assert_eq!(config.mfa.challenge_ttl_secs, 60);
        for bad in ["\"Acme:Login\"", "\"\"", "\"  \""] {
            let err = message(serve(&format!("[mfa]\nissuer_name = {bad}")));
            assert!(err.starts_with("`mfa.issuer_name`"), "{err}");
        }
        let err = message(serve("[mfa]\nchallenge_ttl_secs = 5"));
        assert!(err.starts_with("`mfa.challenge_ttl_secs` is 5"), "{err}");
        let err = message(serve(
            "[rate_limit]\nmfa_verify_per_ip = { per_minute = 0, burst = 1 }",
        ));
        assert!(
            err.contains("`rate_limit.mfa_verify_per_ip.per_minute`"),
            "{err}"
        );
    }

    #[test]
    fn rate_limits_are_on_by_default_and_checked() {
        let config = serve("").unwrap();
        assert_eq!(config.rate_limit.login_per_ip, Limit::new(10, 10));
        assert_eq!(config.rate_limit.login_per_account, Limit::new(5, 5));
        assert_eq!(config.rate_limit.register_per_ip, Limit::new(5, 5));
        assert!(config.http.trusted_proxies.is_empty());
        let config = serve(
            "[rate_limit]\nlogin_per_ip = { per_minute = 60, burst = 3 }\n\
             [http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]",
        )
        .unwrap();
        assert_eq!(
            config.rate_limit.login_per_ip.interval(),
            Duration::from_secs(1)
        );
        assert_eq!(config.http.trusted_proxies.len(), 2);
        let err = message(serve(
            "[rate_limit]\nregister_per_ip = { per_minute = 0, burst = 1 }",
        ));
        assert!(
            err.contains("`rate_limit.register_per_ip.per_minute` is 0"),
            "{err}"
        );
        assert!(parse("[http]\ntrusted_proxies = [\"10.0.0.0/33\"]").is_err());
        assert!(parse("[rate_limit]\nlogin_per_ip = { per_minute = 1 }").is_err());
    }

    #[test]
    fn lockout_is_on_by_default_and_checked() {
        let config = serve("").unwrap();
        assert_eq!(
            config.lockout,
            LockoutSettings {
                enabled: true,
                max_failures: 10,
                lock_secs: 900
            }
        );
        let config = serve("[lockout]\nenabled = false\nmax_failures = 3\nlock_secs = 2").unwrap();
        assert!(!config.lockout.enabled);
        assert_eq!(
            (config.lockout.max_failures, config.lockout.lock_secs),
            (3, 2)
        );
        let err = message(serve("[lockout]\nmax_failures = 0"));
        assert!(err.contains("`lockout.max_failures` is 0"), "{err}");
        let err = message(serve("[lockout]\nlock_secs = 86401"));
        assert!(err.contains("`lockout.lock_secs` is 86401"), "{err}");
        assert!(parse("[lockout]\nlock_minutes = 1").is_err());
    }

    #[test]
    fn token_ranges_are_enforced() {
        let err = message(serve("[token]\nrefresh_grace_secs = 61"));
        assert!(
            err.contains("token.refresh_grace_secs") && err.contains("61"),
            "{err}"
        );
        assert!(serve("[token]\nrefresh_grace_secs = 0").is_ok());
        assert!(message(serve("[token]\naccess_ttl_secs = 59")).contains("access_ttl_secs"));
        assert!(message(serve("[token]\naccess_ttl_secs = 86401")).contains("access_ttl"));
        assert!(message(serve("[token]\naudience = \"\"")).contains("token.audience"));
    }

    #[test]
    fn configured_keys_are_checked() {
        let short = URL_SAFE_NO_PAD.encode([1_u8; 31]);
        let err = message(serve(&format!(
            "[[token.keys]]\nkid = \"a\"\nalg = \"HS256\"\nsecret = \"{short}\""
        )));
        assert!(
            err.contains("token.keys[0].secret") && err.contains("32 bytes"),
            "{err}"
        );
        assert!(
            !err.contains(&short),
            "the message must not echo the secret: {err}"
        );
        let seed = URL_SAFE_NO_PAD.encode([2_u8; 32]);
        let err = message(serve(&format!(
            "[[token.keys]]\nkid = \"a\"\nalg = \"EdDSA\"\nsecret = \"{seed}\""
        )));
        assert!(err.contains("private_key"), "{err}");
        let err = message(serve(&format!(
            "[[token.keys]]\nkid = \"a\"\nalg = \"EdDSA\"\nprivate_key = \"{seed}\"\n\
             [[token.keys]]\nkid = \"a\"\nalg = \"EdDSA\"\nprivate_key = \"{seed}\""
        )));
        assert!(err.contains("used twice"), "{err}");
        assert!(serve("[token]\nalgorithm = \"RS256\"").is_err());
    }

    #[test]
    fn the_active_key_signs() {
        let secret = URL_SAFE_NO_PAD.encode([1_u8; 32]);
        let seed = URL_SAFE_NO_PAD.encode([2_u8; 32]);
        let config = serve(&format!(
            "[[token.keys]]\nkid = \"old\"\nalg = \"HS256\"\nsecret = \"{secret}\"\n\
             [[token.keys]]\nkid = \"new\"\nalg = \"EdDSA\"\nprivate_key = \"{seed}\"\n\
             active = true"
        ))
        .unwrap();
        let kids: Vec<_> = config.token.keys.iter().map(KeyMaterial::kid).collect();
        assert_eq!(kids, ["new", "old"]);
        let two_active = format!(
            "[[token.keys]]\nkid = \"a\"\nalg = \"HS256\"\nsecret = \"{secret}\"\nactive = true\n\
             [[token.keys]]\nkid = \"b\"\nalg = \"HS256\"\nsecret = \"{secret}\"\nactive = true"
        );
        assert!(message(serve(&two_active)).contains("only one key"));
    }

    #[test]
    fn public_url_has_one_spelling() {
        for good in [
            "https://auth.example.com",
            "http://127.0.0.1:8080",
            "https://x.io/auth",
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in [
            "auth.example.com",
            "https://",
            "https://auth.example.com/",
            "https://auth.example.com?x=1",
            "https://user:pw@auth.example.com",
            "ftp://auth.example.com",
            "https://auth example.com",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_prefix_are_checked() {
        let err = parse("database_url = \"mysql://u:hunter2@x\"")
            .unwrap()
            .into_config();
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("database_url") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(message(serve("redis_prefix = \"has space\"")).contains("redis_prefix"));
        assert!(serve("redis_prefix = \"e2e-1234:abc\"").is_ok());
    }

    #[test]
    fn mail_has_defaults_and_is_checked() {
        let config = serve("").unwrap();
        assert!(config.mail.smtp.is_none());
        assert_eq!(config.mail.verify_ttl_secs, 86_400);
        assert_eq!(config.mail.reset_ttl_secs, 3_600);
        assert_eq!(config.mail.max_attempts, 10);
        let config = serve(
            "[mail]\nsmtp_url = \"smtp://u:s3cret-pw@127.0.0.1:2525?tls=required\"\n\
             from = \"Acme <auth@acme.test>\"\nreset_ttl_secs = 600",
        )
        .unwrap();
        let smtp = config.mail.smtp.as_ref().unwrap();
        assert_eq!(smtp.security, SmtpSecurity::StartTls);
        assert_eq!(config.mail.reset_ttl_secs, 600);
        assert!(!format!("{config:?}").contains("s3cret-pw"));
        assert!(message(serve("[mail]\nfrom = \"not an address\"")).contains("mail.from"));
        let err = message(serve(
            "[mail]\nretry_initial_secs = 60\nretry_max_secs = 30",
        ));
        assert!(err.contains("mail.retry_max_secs"), "{err}");
        let err = message(serve("[mail]\ntls_root_cert = \"/nonexistent/ca.pem\""));
        assert!(err.contains("mail.tls_root_cert"), "{err}");
        assert!(parse("[mail]\nsmtp_host = \"x\"").is_err());
        let rate = serve("").unwrap().rate_limit;
        assert_eq!(rate.forgot_password_per_account, Limit::new(3, 3));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = serve("").unwrap();
        let debug = format!("{config:?}");
        assert!(
            !debug.contains(MASTER) && !debug.contains("postgres://"),
            "{debug}"
        );
    }
}
