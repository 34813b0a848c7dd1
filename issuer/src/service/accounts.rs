//! Accounts: registration, password login and the caller's profile.
//!
//! Registration and login answer the same way, after the same password-hashing work, whether
//! or not the account exists, so neither can be used to find out who has an account.

use std::sync::Arc;

use tracing::{info, instrument, warn};

use super::email;
use super::sessions::{SessionService, TokenPair};
use super::tokens::Principal;
use crate::clock::Clock;
use crate::crypto::password::PasswordHasher;
use crate::crypto::secret::SecretString;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{Grants, NewUser, Tenant, UserProfile, UserStore};

/// Longest accepted display name, in characters.
const MAX_NAME_LEN: usize = 200;
/// The `amr` of a password login (RFC 8176).
const AMR_PASSWORD: &str = "pwd";

/// Password length limits, in characters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PasswordPolicy {
    pub(crate) min_length: usize,
    pub(crate) max_length: usize,
}

/// A registration as submitted.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) email: String,
    pub(crate) password: SecretString,
    pub(crate) name: Option<String>,
}

/// The caller, as `GET /v1/auth/me` shows them.
#[derive(Debug)]
pub(crate) struct Me {
    pub(crate) tenant: TenantId,
    pub(crate) profile: UserProfile,
    pub(crate) grants: Grants,
    pub(crate) session: SessionId,
}

/// The stores and services accounts work with.
#[derive(Debug)]
pub(crate) struct AccountDeps {
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) sessions: Arc<SessionService>,
    pub(crate) clock: Clock,
    pub(crate) policy: PasswordPolicy,
}

/// Registers users and logs them in.
#[derive(Debug)]
pub(crate) struct AccountService {
    deps: AccountDeps,
}

impl AccountService {
    pub(crate) fn new(deps: AccountDeps) -> Self {
        Self { deps }
    }

    /// Creates an account. For an email that is already registered nothing is stored, but the
    /// answer (a fresh user id) and the work done are the same as for a new one.
    #[instrument(skip_all, name = "account.register", fields(tenant_id = %tenant.id))]
    pub(crate) async fn register(
        &self,
        tenant: &Tenant,
        registration: Registration,
    ) -> Result<UserId, ApiError> {
        let deps = &self.deps;
        let normalized = email::normalize(&registration.email);
        let name = registration
            .name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty());
        let mut errors = Vec::new();
        errors.extend(email_error(&normalized));
        errors.extend(self.password_error(&registration.password, true));
        errors.extend(name.and_then(name_error));
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let password_hash = deps.hasher.hash(registration.password).await?;
        let user = NewUser {
            id: UserId::from_uuid(deps.clock.new_uuid_v7()),
            tenant: tenant.id,
            email: registration.email.trim().to_owned(),
            email_normalized: normalized,
            name: name.map(str::to_owned),
            password_hash,
            created_at: deps.clock.now(),
        };
        if deps.users.create_user(&user).await? {
            info!(target: "security", event = "register", subject_id = %user.id);
        } else {
            info!(target: "security", event = "register", outcome = "email_taken");
        }
        Ok(user.id)
    }

    /// Checks a password and opens a session.
    #[instrument(skip_all, name = "account.login", fields(tenant_id = %tenant.id))]
    pub(crate) async fn login(
        &self,
        tenant: &Tenant,
        email_address: &str,
        password: SecretString,
    ) -> Result<TokenPair, ApiError> {
        let deps = &self.deps;
        let normalized = email::normalize(email_address);
        let errors: Vec<_> = email_error(&normalized)
            .into_iter()
            .chain(self.password_error(&password, false))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let credentials = deps.users.credentials(tenant.id, &normalized).await?;
        let user = credentials.as_ref().map(|found| found.user);
        let stored = credentials.map(|found| found.password_hash);
        let verified = deps.hasher.verify(password, stored).await?;
        match (verified, user) {
            (true, Some(user)) => {
                info!(target: "security", event = "login", outcome = "success", subject_id = %user);
                deps.sessions
                    .start(tenant.id, user, vec![AMR_PASSWORD.to_owned()])
                    .await
            }
            _ => {
                warn!(
                    target: "security",
                    event = "login",
                    outcome = "failure",
                    account_exists = user.is_some(),
                    subject_id = user.map(tracing::field::display),
                );
                Err(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "wrong email or password",
                ))
            }
        }
    }

    /// The caller's profile, roles and session.
    pub(crate) async fn me(&self, principal: &Principal) -> Result<Me, ApiError> {
        let tenant = principal.tenant.id;
        let Some(profile) = self.deps.users.profile(tenant, principal.user).await? else {
            // A valid token for a user that no longer exists.
            return Err(
                ApiError::new(ErrorCode::InvalidToken, "the subject no longer exists")
                    .with_token_presented(),
            );
        };
        let grants = self.deps.users.grants(tenant, principal.user).await?;
        Ok(Me {
            tenant,
            profile,
            grants,
            session: principal.session,
        })
    }

    /// Length rules, counted in characters. At login only the maximum applies (an old
    /// password may predate a stricter minimum), and it bounds the hashing work either way.
    fn password_error(&self, password: &SecretString, registering: bool) -> Option<FieldError> {
        let policy = self.deps.policy;
        // Counting stops just past the maximum, so an enormous password costs no more.
        let length = password
            .expose()
            .chars()
            .take(policy.max_length.saturating_add(1))
            .count();
        let (code, message) = if length > policy.max_length {
            (
                "too_long",
                format!("must be at most {} characters", policy.max_length),
            )
        } else if registering && length < policy.min_length {
            (
                "too_short",
                format!("must be at least {} characters", policy.min_length),
            )
        } else if length == 0 {
            ("required", "must not be empty".to_owned())
        } else {
            return None;
        };
        Some(FieldError {
            field: "password".to_owned(),
            code,
            message,
        })
    }
}

fn email_error(normalized: &str) -> Option<FieldError> {
    email::check(normalized).err().map(|reason| FieldError {
        field: "email".to_owned(),
        code: "invalid_email",
        message: reason.to_owned(),
    })
}

fn name_error(name: &str) -> Option<FieldError> {
    let message = if name.chars().count() > MAX_NAME_LEN {
        format!("must be at most {MAX_NAME_LEN} characters")
    } else if name.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        return None;
    };
    Some(FieldError {
        field: "name".to_owned(),
        code: "invalid_name",
        message,
    })
}
