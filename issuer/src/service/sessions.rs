//! Sessions (refresh families): login, rotation with reuse detection, logout.

use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::json;
use tracing::{info, instrument, warn};

use super::audit::{AuditEvent, AuditKind, AuditLog, AuditOutcome, RequestContext};
use super::revocation::RevocationService;
use super::tokens::{AccessGrant, Principal, TokenService};
use crate::clock::{Clock, unix_secs};
use crate::crypto::refresh::{RefreshToken, SuccessorKey};
use crate::crypto::secret::SecretString;
use crate::error::{ApiError, ErrorCode};
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{
    NewRevocation, NewSession, RefreshStatus, RevocationRequest, RevokedKind, Rotation,
    RotationOutcome, SessionRef, SessionScope, SessionStore, Tenant, UserStore,
};

/// An access token and the refresh token that goes with it (RFC 6749 section 5.1).
#[derive(Debug)]
pub(crate) struct TokenPair {
    /// The user the tokens are for, so the request span can name its subject.
    pub(crate) subject: UserId,
    pub(crate) access_token: SecretString,
    pub(crate) expires_in: u64,
    pub(crate) refresh_token: SecretString,
}

/// Lifetimes of refresh tokens and sessions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionSettings {
    pub(crate) refresh_ttl: TimeDelta,
    pub(crate) session_max: TimeDelta,
    pub(crate) grace: TimeDelta,
}

/// The stores and services sessions work with.
#[derive(Debug)]
pub(crate) struct SessionDeps {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) tokens: Arc<TokenService>,
    pub(crate) revocations: Arc<RevocationService>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) successor_key: SuccessorKey,
    pub(crate) clock: Clock,
    pub(crate) settings: SessionSettings,
}

/// Opens, rotates and closes sessions.
#[derive(Debug)]
pub(crate) struct SessionService {
    deps: SessionDeps,
}

fn invalid_refresh_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRefreshToken,
        "the refresh token is unknown, expired or revoked",
    )
}

impl SessionService {
    pub(crate) fn new(deps: SessionDeps) -> Self {
        Self { deps }
    }

    /// Opens a session for a user who just authenticated with `amr`.
    #[instrument(skip_all, name = "session.start", fields(session_id))]
    pub(crate) async fn start(
        &self,
        tenant: TenantId,
        user: UserId,
        amr: Vec<String>,
    ) -> Result<TokenPair, ApiError> {
        let deps = &self.deps;
        let now = deps.clock.now();
        let id = SessionId::from_uuid(deps.clock.new_uuid_v7());
        tracing::Span::current().record("session_id", tracing::field::display(id));
        let refresh = RefreshToken::generate();
        let expires_at = now + deps.settings.session_max;
        let session = NewSession {
            id,
            tenant,
            user,
            amr: amr.clone(),
            created_at: now,
            expires_at,
            refresh_hash: refresh.hash(),
            refresh_expires_at: (now + deps.settings.refresh_ttl).min(expires_at),
        };
        deps.store.create_session(&session).await?;
        self.issue(tenant, &SessionRef { id, user, amr }, &refresh)
            .await
    }

    /// Presents a refresh token: rotation, grace-window replay, or reuse detection.
    #[instrument(skip_all, name = "session.refresh", fields(session_id))]
    pub(crate) async fn refresh(
        &self,
        tenant: &Tenant,
        presented: &SecretString,
        context: &RequestContext,
    ) -> Result<TokenPair, ApiError> {
        let deps = &self.deps;
        let Some(parent) = RefreshToken::parse(presented.expose()) else {
            return Err(invalid_refresh_token());
        };
        let successor = deps.successor_key.successor(&parent);
        let now = deps.clock.now();
        let rotation = Rotation {
            tenant: tenant.id,
            parent: parent.hash(),
            successor: successor.hash(),
            now,
            refresh_ttl: deps.settings.refresh_ttl,
            grace: deps.settings.grace,
            revocation_expires_at: deps.revocations.entry_expiry(unix_secs(now)),
        };
        let (session, outcome) = match deps.store.rotate(&rotation).await? {
            RotationOutcome::Rotated(session) => (session, "rotated"),
            RotationOutcome::Replayed(session) => (session, "replayed_in_grace"),
            RotationOutcome::Reused {
                session,
                revocations,
            } => {
                deps.revocations.publish(&revocations).await;
                warn!(
                    target: "security",
                    event = "refresh_token_reused",
                    tenant_id = %tenant.id,
                    subject_id = %session.user,
                    session_id = %session.id,
                    "a rotated refresh token was presented again; its session is revoked"
                );
                deps.audit
                    .record(AuditEvent {
                        tenant: tenant.id,
                        user: Some(session.user),
                        kind: AuditKind::RefreshTokenReused,
                        outcome: AuditOutcome::Failure,
                        context,
                        detail: json!({"session_id": session.id.to_string()}),
                    })
                    .await?;
                return Err(ApiError::new(
                    ErrorCode::RefreshTokenReused,
                    "this refresh token was already used; its session has been revoked",
                ));
            }
            RotationOutcome::Rejected => return Err(invalid_refresh_token()),
        };
        tracing::Span::current().record("session_id", tracing::field::display(session.id));
        info!(target: "security", event = "refresh", outcome, subject_id = %session.user);
        self.issue(tenant.id, &session, &successor).await
    }

    /// Mints the access token for a session with the user's current roles.
    async fn issue(
        &self,
        tenant: TenantId,
        session: &SessionRef,
        refresh: &RefreshToken,
    ) -> Result<TokenPair, ApiError> {
        let grants = self.deps.users.grants(tenant, session.user).await?;
        let access = self.deps.tokens.mint(&AccessGrant {
            tenant,
            user: session.user,
            session: session.id,
            grants: &grants,
            amr: &session.amr,
        })?;
        Ok(TokenPair {
            subject: session.user,
            access_token: access.token,
            expires_in: access.expires_in,
            refresh_token: refresh.secret().clone(),
        })
    }

    /// Revokes the caller's access token and session, and the session of `refresh_token`
    /// when it is another session of the same user.
    #[instrument(skip_all, name = "session.logout")]
    pub(crate) async fn logout(
        &self,
        principal: &Principal,
        refresh_token: Option<&SecretString>,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        let jti = NewRevocation {
            kind: RevokedKind::Jti,
            value: principal.jti.clone(),
            issued_before: None,
            expires_at: principal.claims.exp(),
        };
        let request = self.close(
            principal.tenant.id,
            SessionScope::One(principal.session),
            "logout",
            vec![jti],
        );
        deps.revocations.revoke(&request).await?;
        if let Some(other) = self.other_session(principal, refresh_token).await? {
            let request = self.close(
                principal.tenant.id,
                SessionScope::One(other),
                "logout",
                vec![],
            );
            deps.revocations.revoke(&request).await?;
        }
        info!(
            target: "security",
            event = "logout",
            subject_id = %principal.user,
            session_id = %principal.session,
        );
        let detail = json!({"session_id": principal.session.to_string()});
        self.audit(principal, AuditKind::Logout, context, detail)
            .await
    }

    /// The session a refresh token belongs to, if it is another session of the caller.
    async fn other_session(
        &self,
        principal: &Principal,
        refresh_token: Option<&SecretString>,
    ) -> Result<Option<SessionId>, ApiError> {
        let Some(status) = self
            .refresh_status(&principal.tenant, refresh_token)
            .await?
        else {
            return Ok(None);
        };
        let other = status.session.user == principal.user && status.session.id != principal.session;
        Ok(other.then_some(status.session.id))
    }

    /// Revokes every session of the caller and every token issued to them so far.
    #[instrument(skip_all, name = "session.logout_all")]
    pub(crate) async fn logout_all(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let now = unix_secs(self.deps.clock.now());
        let subject = NewRevocation {
            kind: RevokedKind::Subject,
            value: principal.user.to_string(),
            issued_before: Some(now),
            expires_at: self.deps.revocations.entry_expiry(now),
        };
        let scope = SessionScope::AllOf(principal.user);
        let request = self.close(principal.tenant.id, scope, "logout_all", vec![subject]);
        let recorded = self.deps.revocations.revoke(&request).await?;
        let sessions = recorded
            .iter()
            .filter(|r| r.entry.kind == RevokedKind::Session)
            .count();
        info!(target: "security", event = "logout_all", subject_id = %principal.user, sessions);
        let detail = json!({"sessions": sessions});
        self.audit(principal, AuditKind::LogoutAll, context, detail)
            .await
    }

    /// Closes every session of `user` but `keep`, through the revocation feed so that edges
    /// see it. Without `keep` (a password reset) every token issued to the user so far is
    /// revoked too. Returns how many sessions were closed.
    #[instrument(skip_all, name = "session.revoke_user_sessions")]
    pub(crate) async fn revoke_user_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        keep: Option<SessionId>,
        reason: &'static str,
    ) -> Result<usize, ApiError> {
        let now = unix_secs(self.deps.clock.now());
        let (scope, entries) = match keep {
            Some(keep) => (SessionScope::AllOfExcept(user, keep), Vec::new()),
            None => (
                SessionScope::AllOf(user),
                vec![NewRevocation {
                    kind: RevokedKind::Subject,
                    value: user.to_string(),
                    issued_before: Some(now),
                    expires_at: self.deps.revocations.entry_expiry(now),
                }],
            ),
        };
        let request = self.close(tenant, scope, reason, entries);
        let recorded = self.deps.revocations.revoke(&request).await?;
        Ok(recorded
            .iter()
            .filter(|r| r.entry.kind == RevokedKind::Session)
            .count())
    }

    /// Records a successful action of the caller in the audit log.
    async fn audit(
        &self,
        principal: &Principal,
        kind: AuditKind,
        context: &RequestContext,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        self.deps
            .audit
            .record(AuditEvent {
                tenant: principal.tenant.id,
                user: Some(principal.user),
                kind,
                outcome: AuditOutcome::Success,
                context,
                detail,
            })
            .await
    }

    /// Revokes the family of a refresh token, used or not (RFC 7009). `false` when the token
    /// is not one of this tenant's.
    pub(crate) async fn revoke_family(
        &self,
        tenant: &Tenant,
        presented: &SecretString,
    ) -> Result<bool, ApiError> {
        let Some(status) = self.refresh_status(tenant, Some(presented)).await? else {
            return Ok(false);
        };
        let request = self.close(
            tenant.id,
            SessionScope::One(status.session.id),
            "revoked",
            vec![],
        );
        self.deps.revocations.revoke(&request).await?;
        let subject = status.session.user;
        info!(target: "security", event = "refresh_token_revoked", subject_id = %subject);
        Ok(true)
    }

    /// A refresh token's state; `None` for anything that is not a known token of the tenant.
    pub(crate) async fn refresh_status(
        &self,
        tenant: &Tenant,
        presented: Option<&SecretString>,
    ) -> Result<Option<RefreshStatus>, ApiError> {
        let Some(token) = presented.and_then(|token| RefreshToken::parse(token.expose())) else {
            return Ok(None);
        };
        Ok(self
            .deps
            .store
            .refresh_status(tenant.id, token.hash(), self.deps.clock.now())
            .await?)
    }

    fn close(
        &self,
        tenant: TenantId,
        sessions: SessionScope,
        reason: &'static str,
        entries: Vec<NewRevocation>,
    ) -> RevocationRequest {
        let now = self.deps.clock.now();
        RevocationRequest {
            tenant,
            now,
            reason,
            sessions,
            session_entry_expires_at: self.deps.revocations.entry_expiry(unix_secs(now)),
            entries,
        }
    }
}
