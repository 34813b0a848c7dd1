//! RFC 7662 introspection and RFC 7009 revocation.

use std::sync::Arc;

use portcullis_core::Claims;
use tracing::info;

use super::revocation::RevocationService;
use super::sessions::SessionService;
use super::tokens::{AuthError, Principal, TokenService};
use crate::crypto::refresh::PREFIX as REFRESH_PREFIX;
use crate::crypto::secret::SecretString;
use crate::error::ApiError;
use crate::store::{RefreshStatus, Tenant};

/// What introspection found.
#[derive(Debug)]
pub(crate) enum Introspection {
    /// Not a token, not active, or not the caller's to look at.
    Inactive,
    /// An active access token of the caller.
    Access(Box<Claims>),
    /// An active refresh token of the caller.
    Refresh(RefreshStatus),
}

/// Introspects and revokes tokens on behalf of their holders.
#[derive(Debug)]
pub(crate) struct OAuthService {
    tokens: Arc<TokenService>,
    sessions: Arc<SessionService>,
    revocations: Arc<RevocationService>,
}

impl OAuthService {
    pub(crate) fn new(
        tokens: Arc<TokenService>,
        sessions: Arc<SessionService>,
        revocations: Arc<RevocationService>,
    ) -> Self {
        Self {
            tokens,
            sessions,
            revocations,
        }
    }

    /// The state of `token` if it belongs to the caller's subject (design note 0002);
    /// anything else is inactive, so introspection reveals nothing about other users' tokens.
    pub(crate) async fn introspect(
        &self,
        caller: &Principal,
        token: &SecretString,
    ) -> Result<Introspection, ApiError> {
        if token.expose().starts_with(REFRESH_PREFIX) {
            let status = self
                .sessions
                .refresh_status(&caller.tenant, Some(token))
                .await?;
            return Ok(match status {
                Some(status) if status.active && status.session.user == caller.user => {
                    Introspection::Refresh(status)
                }
                Some(_) | None => Introspection::Inactive,
            });
        }
        match self
            .tokens
            .authenticate(&caller.tenant, token.expose())
            .await
        {
            Ok(found) if found.user == caller.user => {
                Ok(Introspection::Access(Box::new(found.claims)))
            }
            Ok(_) | Err(AuthError::Token(_)) => Ok(Introspection::Inactive),
            Err(AuthError::Store(err)) => Err(err.into()),
        }
    }

    /// Revokes a refresh token's family, or blacklists an access token whose signature and
    /// claims are valid. Unknown tokens are ignored, as RFC 7009 asks.
    pub(crate) async fn revoke(
        &self,
        tenant: &Tenant,
        token: &SecretString,
    ) -> Result<(), ApiError> {
        if token.expose().starts_with(REFRESH_PREFIX) {
            self.sessions.revoke_family(tenant, token).await?;
            return Ok(());
        }
        let Ok(found) = self.tokens.verify(tenant, token.expose()) else {
            return Ok(());
        };
        self.revocations
            .revoke_access_token(tenant, &found.jti, found.claims.exp())
            .await?;
        info!(target: "security", event = "access_token_revoked", subject_id = %found.user);
        Ok(())
    }
}
