//! Password recovery and change (design note 0005, "One-time tokens").
//!
//! - `forgot` answers 202 whether or not the address has an account, as soon as the address
//!   is validated: the link is then generated, rendered and queued by one background task, in
//!   the order of the requests (the same statements run, storing nothing for an unknown
//!   address), so the answer's time does not depend on the account. Nothing about the account
//!   is logged.
//! - `reset` consumes the mailed token in the transaction that sets the password, retires the
//!   user's other reset links, revokes every session and token of the user through the
//!   revocation feed, so edges drop them too, and clears the account's lockout. If the address
//!   had never been verified, it also removes a second factor (see `PasswordReset`).
//! - `change` checks the current password under the lockout (the same account key as login),
//!   then sets the new one, retires reset links and revokes every other session.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tracing::{Instrument as _, Span, error, info, instrument, warn};

use super::{AccountService, email_error, nfc, password_error, stored_password_hash};
use crate::crypto::link_token::LinkToken;
use crate::crypto::secret::SecretString;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::{TenantId, UserId};
use crate::service::audit::{AuditEvent, AuditKind, AuditOutcome, RequestContext};
use crate::service::email;
use crate::service::lockout::AccountKey;
use crate::service::mail::{Mailer, Notice};
use crate::service::rate_limits::{Account, Action};
use crate::service::tokens::Principal;
use crate::store::{Addressee, LinkPurpose, Tenant};

/// A reset link `forgot` accepted and has yet to queue.
#[derive(Debug)]
pub(super) struct ResetLink {
    tenant: TenantId,
    email: String,
    /// The request's span, so what the queuing logs is tied to the request.
    span: Span,
}

/// Queues accepted reset links one at a time, in the order `forgot` accepted them: a newer
/// request retires the links before it, so two requests queued concurrently could leave the
/// later mail carrying the retired link. A failure is logged; the link is not sent.
pub(super) async fn queue_reset_links(
    mailer: Arc<Mailer>,
    mut accepted: mpsc::UnboundedReceiver<ResetLink>,
) {
    while let Some(ResetLink {
        tenant,
        email,
        span,
    }) = accepted.recv().await
    {
        let to = Addressee::Email(&email);
        let queued = mailer.send_link(tenant, to, LinkPurpose::ResetPassword);
        if let Err(err) = queued.instrument(span).await {
            error!(target: "mail", error = %err, "queueing a reset link failed; it is not sent");
        }
    }
}

/// A password change as submitted.
#[derive(Debug)]
pub(crate) struct PasswordChange {
    pub(crate) current_password: SecretString,
    pub(crate) new_password: SecretString,
}

/// The answer to a link token that cannot be used, whatever the reason.
pub(super) fn invalid_link_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidLinkToken,
        "the link is invalid, expired or already used; request a new one",
    )
}

impl AccountService {
    /// Mails a reset link if the address has an account; the same answer and work if not.
    #[instrument(skip_all, name = "account.forgot_password", fields(tenant_id = %tenant.id))]
    pub(crate) async fn forgot_password(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        email_address: &str,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        let normalized = email::normalize(email_address);
        let account = normalized.as_deref().ok().map(|email| Account {
            tenant: tenant.id,
            email,
        });
        deps.limits
            .check(Action::ForgotPassword, context.ip, account)
            .await?;
        let normalized =
            normalized.map_err(|reason| ApiError::validation(vec![email_error(reason)]))?;
        // Queuing writes rows only for a real account, which takes measurably longer than the
        // same statements storing nothing; the answer must not wait for it, or its time would
        // tell whether the address has an account.
        let link = ResetLink {
            tenant: tenant.id,
            email: normalized,
            span: Span::current(),
        };
        if self.reset_links.send(link).is_err() {
            error!(target: "mail", "the reset-link queue has stopped; the link is not sent");
        }
        info!(target: "security", event = "password_forgot");
        Ok(())
    }

    /// Sets a new password with a mailed reset token and ends every session of the user.
    #[instrument(skip_all, name = "account.reset_password", fields(tenant_id = %tenant.id))]
    pub(crate) async fn reset_password(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        token: &SecretString,
        new_password: SecretString,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        deps.limits
            .check(Action::ResetPassword, context.ip, None)
            .await?;
        let Some(token) = LinkToken::parse(token.expose()) else {
            return Err(invalid_link_token());
        };
        let password = nfc(new_password);
        if let Some(error) = password_error(deps.policy, &password, true) {
            return Err(ApiError::validation(vec![renamed(error, "new_password")]));
        }
        let password_hash = deps.hasher.hash(password).await?;
        let now = deps.clock.now();
        let Some(reset) = deps
            .one_time_tokens
            .reset_password(tenant.id, &token.hash(), now, &password_hash)
            .await?
        else {
            warn!(target: "security", event = "password_reset", outcome = "invalid_token");
            return Err(invalid_link_token());
        };
        let user = reset.user;
        if reset.removed_unproven_mfa {
            self.unproven_mfa_removed(tenant, user, context).await?;
        }
        let sessions = deps
            .sessions
            .revoke_user_sessions(tenant.id, user, None, "password_reset")
            .await?;
        // The mailed link proved the address: a lock that guesses put on it ends here, so
        // whoever locked the account cannot keep its owner out after a reset.
        if let Some(profile) = deps.users.profile(tenant.id, user).await? {
            let key = AccountKey::new(tenant.id, &profile.email);
            deps.lockout.succeeded(&key).await?;
        }
        info!(target: "security", event = "password_reset", subject_id = %user, sessions);
        deps.audit
            .record(AuditEvent {
                tenant: tenant.id,
                user: Some(user),
                kind: AuditKind::PasswordReset,
                outcome: AuditOutcome::Success,
                context,
                detail: json!({"sessions_revoked": sessions}),
            })
            .await?;
        deps.mailer
            .notify(tenant.id, user, Notice::PasswordChanged)
            .await;
        Ok(())
    }

    /// Records and mails the removal of a second factor set up before the address was ever
    /// verified, which a reset does: whoever set it up may not own the address.
    async fn unproven_mfa_removed(
        &self,
        tenant: &Tenant,
        user: UserId,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        warn!(target: "security", event = "mfa_disabled", subject_id = %user,
            method = "password_reset", "second factor set up before verification removed");
        deps.audit
            .record(AuditEvent {
                tenant: tenant.id,
                user: Some(user),
                kind: AuditKind::MfaDisabled,
                outcome: AuditOutcome::Success,
                context,
                detail: json!({"method": "password_reset", "email_was_unverified": true}),
            })
            .await?;
        deps.mailer
            .notify(tenant.id, user, Notice::MfaDisabled)
            .await;
        Ok(())
    }

    /// Changes the caller's password after checking the current one under the lockout; every
    /// other session of the caller ends.
    #[instrument(skip_all, name = "account.change_password",
        fields(tenant_id = %principal.tenant.id))]
    pub(crate) async fn change_password(
        &self,
        principal: &Principal,
        context: &RequestContext,
        change: PasswordChange,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        let tenant = principal.tenant.id;
        let profile = self.me(principal).await?.profile;
        let account = Account {
            tenant,
            email: &profile.email,
        };
        deps.limits
            .check(Action::ChangePassword, context.ip, Some(account))
            .await?;
        let current = nfc(change.current_password);
        let new = nfc(change.new_password);
        let errors: Vec<_> = password_error(deps.policy, &current, false)
            .map(|error| renamed(error, "current_password"))
            .into_iter()
            .chain(password_error(deps.policy, &new, true).map(|e| renamed(e, "new_password")))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let key = AccountKey::new(tenant, &profile.email);
        let user = Some(principal.user);
        deps.lockout.begin(&key, user, context).await?;
        let users = deps.users.as_ref();
        let stored = stored_password_hash(users, tenant, &profile.email, principal.user).await?;
        if !deps.hasher.verify(current, stored.clone()).await? {
            warn!(target: "security", event = "password_change", outcome = "failure",
                subject_id = %principal.user);
            self.audit_password_change(principal, context, AuditOutcome::Failure)
                .await?;
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "the current password is wrong",
            ));
        }
        deps.lockout.succeeded(&key).await?;
        // A verified password always had a stored hash; the new one replaces exactly it, so a
        // reset that lands while the new password is hashed is not silently undone.
        let checked_hash = stored.unwrap_or_default();
        let password_hash = deps.hasher.hash(new).await?;
        let changed = deps
            .one_time_tokens
            .change_password(
                tenant,
                principal.user,
                deps.clock.now(),
                &checked_hash,
                &password_hash,
            )
            .await?;
        if !changed {
            warn!(target: "security", event = "password_change", outcome = "superseded",
                subject_id = %principal.user);
            self.audit_password_change(principal, context, AuditOutcome::Failure)
                .await?;
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "the password was changed or reset meanwhile; the current password is wrong",
            ));
        }
        let sessions = deps
            .sessions
            .revoke_user_sessions(
                tenant,
                principal.user,
                Some(principal.session),
                "password_changed",
            )
            .await?;
        info!(target: "security", event = "password_change", outcome = "success",
            subject_id = %principal.user, sessions);
        self.audit_password_change(principal, context, AuditOutcome::Success)
            .await?;
        deps.mailer
            .notify(tenant, principal.user, Notice::PasswordChanged)
            .await;
        Ok(())
    }

    async fn audit_password_change(
        &self,
        principal: &Principal,
        context: &RequestContext,
        outcome: AuditOutcome,
    ) -> Result<(), ApiError> {
        self.deps
            .audit
            .record(AuditEvent {
                tenant: principal.tenant.id,
                user: Some(principal.user),
                kind: AuditKind::PasswordChanged,
                outcome,
                context,
                detail: json!({}),
            })
            .await
    }
}

/// A password rule's error under the request's own field name.
fn renamed(mut error: FieldError, field: &str) -> FieldError {
    field.clone_into(&mut error.field);
    error
}
