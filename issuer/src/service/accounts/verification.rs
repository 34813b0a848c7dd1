//! Email verification: registration mails a one-time link (see `register`); presenting its
//! token marks the address verified, once, and queues the welcome message.

use serde_json::json;
use tracing::{info, instrument, warn};

use super::AccountService;
use super::passwords::invalid_link_token;
use crate::crypto::link_token::LinkToken;
use crate::crypto::secret::SecretString;
use crate::error::ApiError;
use crate::service::audit::{AuditEvent, AuditKind, AuditOutcome, RequestContext};
use crate::service::mail::Notice;
use crate::service::rate_limits::Action;
use crate::store::Tenant;

impl AccountService {
    /// Consumes a verification token and marks the address of its user verified.
    #[instrument(skip_all, name = "account.verify_email", fields(tenant_id = %tenant.id))]
    pub(crate) async fn verify_email(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        token: &SecretString,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        deps.limits
            .check(Action::VerifyEmail, context.ip, None)
            .await?;
        let Some(token) = LinkToken::parse(token.expose()) else {
            return Err(invalid_link_token());
        };
        let now = deps.clock.now();
        let Some(user) = deps
            .one_time_tokens
            .verify_email(tenant.id, &token.hash(), now)
            .await?
        else {
            warn!(target: "security", event = "email_verified", outcome = "invalid_token");
            return Err(invalid_link_token());
        };
        info!(target: "security", event = "email_verified", subject_id = %user);
        deps.audit
            .record(AuditEvent {
                tenant: tenant.id,
                user: Some(user),
                kind: AuditKind::EmailVerified,
                outcome: AuditOutcome::Success,
                context,
                detail: json!({}),
            })
            .await?;
        deps.mailer.notify(tenant.id, user, Notice::Welcome).await;
        Ok(())
    }
}
