//! The Portcullis issuer: accounts, sessions and tokens over PostgreSQL and Redis.
//!
//! [`run`] wires the stores, services and router together and serves; [`migrate`] only
//! applies the database migrations. Design notes 0001 (the spine) and 0002 (the issuer) fix
//! the contracts implemented here.

use std::io::Write as _;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::TimeDelta;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::config::{Config, MigrateConfig};
use crate::crypto::password::PasswordHasher;
use crate::crypto::refresh::SuccessorKey;
use crate::service::accounts::{AccountDeps, AccountService, PasswordPolicy};
use crate::service::keys::KeyRing;
use crate::service::oauth::OAuthService;
use crate::service::revocation::RevocationService;
use crate::service::sessions::{SessionDeps, SessionService, SessionSettings};
use crate::service::tenants::TenantService;
use crate::service::tokens::{TokenService, TokenSetup};
use crate::store::pg::PgStore;
use crate::store::redis::RedisBlacklist;
use crate::store::{Probe, SigningKeyStore};

mod clock;
pub mod config;
mod crypto;
pub mod error;
mod http;
mod ids;
mod service;
mod store;
pub mod telemetry;

/// Everything a request handler can reach.
#[derive(Clone, Debug)]
pub(crate) struct AppState(Arc<Services>);

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
#[derive(Debug)]
pub(crate) struct Services {
    pub(crate) tenants: TenantService,
    pub(crate) accounts: AccountService,
    pub(crate) sessions: Arc<SessionService>,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) revocations: Arc<RevocationService>,
    pub(crate) oauth: OAuthService,
    pub(crate) probes: Vec<Arc<dyn Probe>>,
    pub(crate) request_timeout: Duration,
    pub(crate) body_limit_bytes: usize,
}

/// `issuer serve`: connects, migrates, loads keys, rebuilds the blacklist, then serves until
/// SIGTERM or Ctrl-C.
///
/// # Errors
///
/// Any start-up step that fails, with context naming it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let pg = PgStore::connect(&config.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    pg.migrate()
        .await
        .context("applying the PostgreSQL migrations")?;
    let redis = RedisBlacklist::connect(&config.redis_url, config.redis_prefix.clone())
        .await
        .context("connecting to Redis")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let state = build_state(&config, Arc::new(pg), Arc::new(redis), public_url).await?;
    state
        .revocations
        .hydrate()
        .await
        .context("building the revocation blacklist")?;
    let watcher = tokio::spawn(state.revocations.clone().watch());
    announce(local).context("writing the start-up line")?;
    let served = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP");
    watcher.abort();
    served
}

/// `issuer migrate`: applies pending migrations and exits.
///
/// # Errors
///
/// If the database is unreachable or a migration fails.
pub async fn migrate(config: MigrateConfig) -> anyhow::Result<()> {
    let pg = PgStore::connect(&config.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    pg.migrate()
        .await
        .context("applying the PostgreSQL migrations")?;
    println!("Portcullis migrations applied (backend: postgres)");
    Ok(())
}

async fn build_state(
    config: &Config,
    pg: Arc<PgStore>,
    redis: Arc<RedisBlacklist>,
    public_url: String,
) -> anyhow::Result<AppState> {
    let revocations = Arc::new(RevocationService::new(
        pg.clone(),
        redis.clone(),
        Clock,
        config.token.access_ttl_secs,
    ));
    let tokens = Arc::new(build_tokens(config, pg.clone(), revocations.clone(), public_url).await?);
    let sessions = Arc::new(build_sessions(config, &pg, &tokens, &revocations)?);
    let hasher = PasswordHasher::new(config.password.hashing)
        .await
        .context("computing the dummy password hash")?;
    let accounts = AccountService::new(AccountDeps {
        users: pg.clone(),
        hasher,
        sessions: sessions.clone(),
        clock: Clock,
        policy: PasswordPolicy {
            min_length: config.password.min_length,
            max_length: config.password.max_length,
        },
    });
    Ok(AppState(Arc::new(Services {
        tenants: TenantService::new(pg.clone()),
        accounts,
        oauth: OAuthService::new(tokens.clone(), sessions.clone(), revocations.clone()),
        sessions,
        tokens,
        revocations,
        probes: vec![pg, redis],
        request_timeout: config.http.request_timeout,
        body_limit_bytes: config.http.body_limit_bytes,
    })))
}

fn build_sessions(
    config: &Config,
    pg: &Arc<PgStore>,
    tokens: &Arc<TokenService>,
    revocations: &Arc<RevocationService>,
) -> anyhow::Result<SessionService> {
    let successor_key = SuccessorKey::new(
        config
            .master_key
            .refresh_key()
            .context("deriving the refresh-token key")?,
    );
    Ok(SessionService::new(SessionDeps {
        store: pg.clone(),
        users: pg.clone(),
        tokens: tokens.clone(),
        revocations: revocations.clone(),
        successor_key,
        clock: Clock,
        settings: SessionSettings {
            refresh_ttl: seconds(config.token.refresh_ttl_secs),
            session_max: seconds(config.token.session_max_secs),
            grace: seconds(config.token.refresh_grace_secs),
        },
    }))
}

/// Loads the key ring and proves, before serving, that what `jsonwebtoken` signs
/// `portcullis-core` accepts.
async fn build_tokens(
    config: &Config,
    pg: Arc<PgStore>,
    revocations: Arc<RevocationService>,
    issuer: String,
) -> anyhow::Result<TokenService> {
    let key_store: Arc<dyn SigningKeyStore> = pg;
    let ring = KeyRing::load(&config.token, &key_store, &config.master_key, Clock).await?;
    let tokens = TokenService::new(TokenSetup {
        ring: &ring,
        issuer,
        audience: config.token.audience.clone(),
        access_ttl_secs: config.token.access_ttl_secs,
        revocations,
        clock: Clock,
    })
    .context("preparing the signing keys")?;
    tokens.self_test().map_err(|err| {
        anyhow!(
            "self-test: portcullis-core refuses a token minted by jsonwebtoken ({})",
            err.code()
        )
    })?;
    Ok(tokens)
}

fn seconds(secs: u64) -> TimeDelta {
    TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX)).unwrap_or(TimeDelta::MAX)
}

/// The start-up line of design note 0002 (tests parse it), then a hint.
fn announce(local: SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Portcullis issuer listening on http://{local} (backend: postgres+redis)"
    )?;
    writeln!(
        out,
        "Register the first user: curl -s http://{local}/v1/auth/register \
         -H 'content-type: application/json' \
         -d '{{\"email\":\"you@example.com\",\"password\":\"a long passphrase\"}}'"
    )?;
    out.flush()
}

/// Resolves on SIGTERM or Ctrl-C; in-flight requests then finish before the process exits.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    info!("shutting down");
}
