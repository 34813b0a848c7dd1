//! The Portcullis issuer: accounts, sessions and tokens, embedded on SQLite by default or on
//! PostgreSQL (and Redis) for many replicas.
//!
//! [`run`] wires the stores, services and router together and serves; [`migrate`] only
//! applies the database migrations. Design notes 0001 (the spine), 0002 (the issuer) and 0003
//! (the embedded backend) fix the contracts implemented here.

use std::io::Write as _;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::TimeDelta;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::backend::{Backend, Mode, Stores};
use crate::clock::Clock;
use crate::config::{Config, MailSettings, MigrateConfig, SmtpSecurity};
use crate::crypto::keys::MasterKey;
use crate::crypto::password::PasswordHasher;
use crate::crypto::refresh::SuccessorKey;
use crate::data_dir::MASTER_KEY_FILE;
use crate::service::accounts::{AccountDeps, AccountService, PasswordPolicy};
use crate::service::audit::AuditLog;
use crate::service::keys::KeyRing;
use crate::service::lockout::Lockout;
use crate::service::mail::Mailer;
use crate::service::mail::delivery::{self, Delivery};
use crate::service::mfa::{MfaDeps, MfaService};
use crate::service::oauth::OAuthService;
use crate::service::rate_limits::RateLimits;
use crate::service::revocation::RevocationService;
use crate::service::sessions::{SessionDeps, SessionService, SessionSettings};
use crate::service::tenants::TenantService;
use crate::service::tokens::{TokenService, TokenSetup};
use crate::store::Probe;

mod backend;
mod clock;
pub mod config;
mod crypto;
mod data_dir;
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
    pub(crate) mfa: Arc<MfaService>,
    pub(crate) sessions: Arc<SessionService>,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) revocations: Arc<RevocationService>,
    pub(crate) oauth: OAuthService,
    pub(crate) audit: Arc<AuditLog>,
    /// Queues mail; `service::mail::Mailer::notify` sends an alert to a user.
    pub(crate) mailer: Arc<Mailer>,
    pub(crate) probes: Vec<Arc<dyn Probe>>,
    pub(crate) request_timeout: Duration,
    pub(crate) body_limit_bytes: usize,
    /// `http.trusted_proxies`, for `http::extract::ClientIp`.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
}

/// `issuer serve`: connects, migrates, loads keys, rebuilds the blacklist, then serves until
/// SIGTERM or Ctrl-C.
///
/// # Errors
///
/// Any start-up step that fails, with context naming it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let backend = backend::open(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let public_url_warning = unreachable_public_url(config.public_url.as_deref(), local);
    if let Some(warning) = &public_url_warning {
        warn!("{warning}");
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let state = build_state(&config, &backend.stores, &backend.master_key, public_url).await?;
    state
        .revocations
        .hydrate()
        .await
        .context("building the revocation blacklist")?;
    let watcher = tokio::spawn(state.revocations.clone().watch());
    let mail = start_delivery(&config.mail, &backend.stores, &state.mailer)?;
    announce(local, &backend, public_url_warning.as_deref())
        .context("writing the start-up lines")?;
    http::serve(
        listener,
        http::router(state),
        &config.http,
        shutdown_signal(),
    )
    .await;
    watcher.abort();
    if let Some(mail) = mail {
        mail.stop().await;
    }
    Ok(())
}

/// How long shutdown waits for the mail worker to finish the batch it is sending.
const MAIL_SHUTDOWN: Duration = Duration::from_secs(30);

/// The running outbox worker.
#[derive(Debug)]
struct MailWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MailWorker {
    /// Lets the worker finish its batch; what it has not sent stays queued for the next start.
    async fn stop(self) {
        self.stop.send_replace(true);
        match tokio::time::timeout(MAIL_SHUTDOWN, self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(error = %err, "the mail worker failed"),
            Err(_) => warn!("the mail worker was still sending at shutdown; the rest stays queued"),
        }
    }
}

/// Starts this replica's outbox worker; without `mail.smtp_url` there is none and mail waits
/// in the outbox (said at start, so an operator is not left wondering).
fn start_delivery(
    settings: &MailSettings,
    stores: &Stores,
    mailer: &Mailer,
) -> anyhow::Result<Option<MailWorker>> {
    let Some(smtp) = &settings.smtp else {
        warn!(
            "mail.smtp_url is not set: verification, reset and alert emails stay queued in the \
             outbox until it is"
        );
        return Ok(None);
    };
    if smtp.security == SmtpSecurity::Plain && !smtp.is_loopback() {
        warn!(
            host = %smtp.host,
            "mail.smtp_url sends mail in clear to another host: use smtps:// or \
             smtp://…?tls=required outside local development"
        );
    }
    let transport = delivery::transport(smtp, settings)
        .context("preparing the SMTP transport (`mail.smtp_url`)")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = Delivery::new(
        stores.outbox.clone(),
        transport,
        settings.clone(),
        mailer.wake(),
        Clock,
    );
    let task = tokio::spawn(worker.run(stopped));
    Ok(Some(MailWorker { stop, task }))
}

/// `issuer migrate`: applies pending migrations and exits.
///
/// # Errors
///
/// If the database is unreachable or a migration fails.
pub async fn migrate(config: MigrateConfig) -> anyhow::Result<()> {
    let name = backend::migrate(&config).await?;
    println!("Portcullis migrations applied (backend: {name})");
    Ok(())
}

async fn build_state(
    config: &Config,
    stores: &Stores,
    master_key: &MasterKey,
    public_url: String,
) -> anyhow::Result<AppState> {
    let revocations = Arc::new(RevocationService::new(
        stores.revocations.clone(),
        stores.blacklist.clone(),
        Clock,
        config.token.access_ttl_secs,
    ));
    let mailer = Arc::new(
        Mailer::new(
            stores.outbox.clone(),
            &config.mail,
            public_url.clone(),
            Clock,
        )
        .context("compiling the built-in mail templates")?,
    );
    let tokens =
        Arc::new(build_tokens(config, stores, master_key, revocations.clone(), public_url).await?);
    let audit = Arc::new(AuditLog::new(stores.audit.clone(), Clock));
    let sessions = Arc::new(build_sessions(
        config,
        stores,
        master_key,
        &tokens,
        &revocations,
        &audit,
    )?);
    // Shared by every entry point that checks a secret (design note 0005, "Lockout").
    let lockout = Arc::new(Lockout::new(
        stores.lockouts.clone(),
        audit.clone(),
        mailer.clone(),
        Clock,
        config.lockout,
    ));
    let hasher = Arc::new(
        PasswordHasher::new(config.password.hashing)
            .await
            .context("computing the dummy password hash")?,
    );
    let mfa = Arc::new(build_mfa(
        config,
        stores,
        master_key,
        SecretChecks {
            hasher: &hasher,
            sessions: &sessions,
            audit: &audit,
            lockout: &lockout,
            mailer: &mailer,
        },
    )?);
    let accounts = build_accounts(
        config,
        stores,
        &mfa,
        SecretChecks {
            hasher: &hasher,
            sessions: &sessions,
            audit: &audit,
            lockout: &lockout,
            mailer: &mailer,
        },
    );
    Ok(AppState(Arc::new(Services {
        tenants: TenantService::new(stores.tenants.clone()),
        accounts,
        mfa,
        oauth: OAuthService::new(tokens.clone(), sessions.clone(), revocations.clone()),
        audit,
        mailer,
        sessions,
        tokens,
        revocations,
        probes: stores.probes.clone(),
        request_timeout: config.http.request_timeout,
        body_limit_bytes: config.http.body_limit_bytes,
        trusted_proxies: config.http.trusted_proxies.clone(),
    })))
}

/// What every service that checks a user's secrets shares.
#[derive(Clone, Copy, Debug)]
struct SecretChecks<'a> {
    hasher: &'a Arc<PasswordHasher>,
    sessions: &'a Arc<SessionService>,
    audit: &'a Arc<AuditLog>,
    lockout: &'a Arc<Lockout>,
    mailer: &'a Arc<Mailer>,
}

fn build_accounts(
    config: &Config,
    stores: &Stores,
    mfa: &Arc<MfaService>,
    checks: SecretChecks<'_>,
) -> AccountService {
    AccountService::new(AccountDeps {
        users: stores.users.clone(),
        hasher: checks.hasher.clone(),
        sessions: checks.sessions.clone(),
        mfa: mfa.clone(),
        limits: RateLimits::new(stores.rate_limiter.clone(), config.rate_limit),
        lockout: checks.lockout.clone(),
        audit: checks.audit.clone(),
        mailer: checks.mailer.clone(),
        one_time_tokens: stores.one_time_tokens.clone(),
        clock: Clock,
        policy: PasswordPolicy {
            min_length: config.password.min_length,
            max_length: config.password.max_length,
        },
    })
}

fn build_mfa(
    config: &Config,
    stores: &Stores,
    master_key: &MasterKey,
    checks: SecretChecks<'_>,
) -> anyhow::Result<MfaService> {
    let seal_key = master_key
        .totp_key()
        .context("deriving the TOTP sealing key")?;
    Ok(MfaService::new(MfaDeps {
        store: stores.mfa.clone(),
        users: stores.users.clone(),
        hasher: checks.hasher.clone(),
        sessions: checks.sessions.clone(),
        limits: RateLimits::new(stores.rate_limiter.clone(), config.rate_limit),
        lockout: checks.lockout.clone(),
        audit: checks.audit.clone(),
        mailer: checks.mailer.clone(),
        seal_key,
        clock: Clock,
        settings: config.mfa.clone(),
    }))
}

fn build_sessions(
    config: &Config,
    stores: &Stores,
    master_key: &MasterKey,
    tokens: &Arc<TokenService>,
    revocations: &Arc<RevocationService>,
    audit: &Arc<AuditLog>,
) -> anyhow::Result<SessionService> {
    let successor_key = SuccessorKey::new(
        master_key
            .refresh_key()
            .context("deriving the refresh-token key")?,
    );
    Ok(SessionService::new(SessionDeps {
        store: stores.sessions.clone(),
        users: stores.users.clone(),
        tokens: tokens.clone(),
        revocations: revocations.clone(),
        audit: audit.clone(),
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
    stores: &Stores,
    master_key: &MasterKey,
    revocations: Arc<RevocationService>,
    issuer: String,
) -> anyhow::Result<TokenService> {
    let ring = KeyRing::load(&config.token, &stores.signing_keys, master_key, Clock).await?;
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

/// Without `public_url` the issuer names itself after the address it is bound to, which for
/// `0.0.0.0` or `::` is no address a client can reach, yet every `iss` claim and published URL
/// would carry it. Serving still works (a port published from a container is a common first
/// try), so this is a warning rather than a refusal; `None` when there is nothing to say.
fn unreachable_public_url(public_url: Option<&str>, local: SocketAddr) -> Option<String> {
    (public_url.is_none() && local.ip().is_unspecified()).then(|| {
        format!(
            "public_url is not set and the issuer listens on the unspecified address {local}, \
             so tokens (`iss`) and published URLs name http://{local}, which clients cannot \
             use: set public_url (PORTCULLIS_PUBLIC_URL) to the URL clients reach the issuer by"
        )
    })
}

/// The start-up line of design note 0002 (tests parse it up to the URL), then what a
/// newcomer needs next: a warning about the configuration if any, where the data is, whether
/// a master key was made, the first request. Never a secret.
fn announce(
    local: SocketAddr,
    backend: &Backend,
    public_url_warning: Option<&str>,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Portcullis issuer listening on http://{local} (backend: {})",
        backend.mode.name()
    )?;
    if let Some(warning) = public_url_warning {
        writeln!(out, "Warning: {warning}")?;
    }
    match &backend.mode {
        Mode::Embedded {
            data_dir,
            generated_master_key,
        } => {
            let dir = data_dir.path().display();
            writeln!(
                out,
                "Data directory: {dir} (single node: one issuer process per directory)"
            )?;
            if *generated_master_key {
                writeln!(
                    out,
                    "Generated a master key in {dir}/{MASTER_KEY_FILE} (back it up with the \
                     database)"
                )?;
            }
        }
        Mode::PostgresInProcess => writeln!(
            out,
            "No Redis configured: each replica polls PostgreSQL for revocations every second"
        )?,
        Mode::PostgresRedis => {}
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_public_url_only_without_public_url_on_an_unspecified_address() {
        let any_v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let any_v6: SocketAddr = "[::]:8080".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for local in [any_v4, any_v6] {
            let warning = unreachable_public_url(None, local).unwrap();
            assert!(
                warning.contains("public_url") && warning.contains(&format!("http://{local}")),
                "{warning}"
            );
            assert!(unreachable_public_url(Some("https://auth.example.com"), local).is_none());
        }
        assert!(unreachable_public_url(None, loopback).is_none());
    }
}
