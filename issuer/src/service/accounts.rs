//! Accounts: registration, password login and the caller's profile; email verification
//! ([`verification`]) and password recovery and change ([`passwords`]).
//!
//! Registration and login answer the same way, after the same password-hashing work, whether
//! or not the account exists, so neither can be used to find out who has an account. Login
//! is guarded by the lockout, keyed by the address, which holds for unknown addresses too.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, instrument, warn};
use unicode_normalization::UnicodeNormalization as _;

use super::audit::{AuditEvent, AuditKind, AuditLog, AuditOutcome, RequestContext};
use super::lockout::{AccountKey, Lockout};
use super::mail::{Mailer, Notice};
use super::mfa::{MfaService, MfaStatus, PendingLogin};
use super::rate_limits::{Account, Action, RateLimits};
use super::sessions::{SessionService, TokenPair};
use super::tokens::Principal;
use super::{email, text};
use crate::clock::Clock;
use crate::crypto::password::PasswordHasher;
use crate::crypto::secret::SecretString;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{
    Addressee, Grants, LinkPurpose, NewUser, OneTimeTokenStore, Tenant, UserProfile, UserStore,
};

mod passwords;
mod verification;

pub(crate) use self::passwords::PasswordChange;

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
    pub(crate) mfa: MfaStatus,
}

/// What the password step of a login answers.
#[derive(Debug)]
pub(crate) enum LoginOutcome {
    /// No second factor is due: the session is open.
    Tokens(TokenPair),
    /// A second factor (or its enrolment) is due first; no session yet.
    MfaRequired(PendingLogin),
}

/// The stores and services accounts work with.
#[derive(Debug)]
pub(crate) struct AccountDeps {
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) hasher: Arc<PasswordHasher>,
    pub(crate) sessions: Arc<SessionService>,
    /// The second step of login when the user has MFA (or the tenant requires it).
    pub(crate) mfa: Arc<MfaService>,
    pub(crate) limits: RateLimits,
    pub(crate) lockout: Arc<Lockout>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) mailer: Arc<Mailer>,
    pub(crate) one_time_tokens: Arc<dyn OneTimeTokenStore>,
    pub(crate) clock: Clock,
    pub(crate) policy: PasswordPolicy,
}

/// Registers users and logs them in.
#[derive(Debug)]
pub(crate) struct AccountService {
    deps: AccountDeps,
    /// Reset links that `forgot` accepted, queued after its answer (see `passwords`).
    reset_links: mpsc::UnboundedSender<passwords::ResetLink>,
}

impl AccountService {
    /// Must be called within the runtime: it starts the task that queues reset links.
    pub(crate) fn new(deps: AccountDeps) -> Self {
        let (reset_links, accepted) = mpsc::unbounded_channel();
        tokio::spawn(passwords::queue_reset_links(deps.mailer.clone(), accepted));
        Self { deps, reset_links }
    }

    /// Creates an account. For an email that is already registered nothing is stored, but the
    /// answer (a fresh user id) and the work done are the same as for a new one.
    #[instrument(skip_all, name = "account.register", fields(tenant_id = %tenant.id))]
    pub(crate) async fn register(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        registration: Registration,
    ) -> Result<UserId, ApiError> {
        let deps = &self.deps;
        let normalized = email::normalize(&registration.email);
        // Per address too: every registration mails the address a verification link.
        let account = normalized.as_deref().ok().map(|email| Account {
            tenant: tenant.id,
            email,
        });
        deps.limits
            .check(Action::Register, context.ip, account)
            .await?;
        let password = nfc(registration.password);
        let name = registration
            .name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty());
        let mut errors = Vec::new();
        errors.extend(normalized.as_ref().err().copied().map(email_error));
        errors.extend(password_error(deps.policy, &password, true));
        errors.extend(name.and_then(name_error));
        let (Ok(normalized), true) = (normalized, errors.is_empty()) else {
            return Err(ApiError::validation(errors));
        };
        let password_hash = deps.hasher.hash(password).await?;
        let user = NewUser {
            id: UserId::from_uuid(deps.clock.new_uuid_v7()),
            tenant: tenant.id,
            email: registration.email.trim().to_owned(),
            email_normalized: normalized,
            name: name.map(str::to_owned),
            password_hash,
            created_at: deps.clock.now(),
        };
        let created = deps.users.create_user(&user).await?;
        // A taken address gets an audit row too, so both answers cost the same work.
        let (outcome, subject, detail) = if created {
            info!(target: "security", event = "register", subject_id = %user.id);
            (AuditOutcome::Success, Some(user.id), json!({}))
        } else {
            info!(target: "security", event = "register", outcome = "email_taken");
            (
                AuditOutcome::Failure,
                None,
                json!({"reason": "email_taken"}),
            )
        };
        deps.audit
            .record(AuditEvent {
                tenant: tenant.id,
                user: subject,
                kind: AuditKind::Register,
                outcome,
                context,
                detail,
            })
            .await?;
        // For a taken address `user.id` names no account: the same work, nothing queued.
        deps.mailer
            .send_link(
                tenant.id,
                Addressee::User(user.id),
                LinkPurpose::VerifyEmail,
            )
            .await?;
        Ok(user.id)
    }

    /// Checks a password and opens a session, or asks for the second factor: rate limits,
    /// then the lockout guard, then the password (with the same Argon2 work for an unknown
    /// address), then the lockout count.
    #[instrument(skip_all, name = "account.login", fields(tenant_id = %tenant.id))]
    pub(crate) async fn login(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        email_address: &str,
        password: SecretString,
    ) -> Result<LoginOutcome, ApiError> {
        let deps = &self.deps;
        let normalized = email::normalize(email_address);
        let account = normalized.as_deref().ok().map(|email| Account {
            tenant: tenant.id,
            email,
        });
        deps.limits
            .check(Action::Login, context.ip, account)
            .await?;
        let password = nfc(password);
        let errors: Vec<_> = normalized
            .as_ref()
            .err()
            .copied()
            .map(email_error)
            .into_iter()
            .chain(password_error(deps.policy, &password, false))
            .collect();
        let (Ok(normalized), true) = (normalized, errors.is_empty()) else {
            return Err(ApiError::validation(errors));
        };
        let key = AccountKey::new(tenant.id, &normalized);
        // Known or not, the account is looked up the same way, also when it is locked.
        let credentials = deps.users.credentials(tenant.id, &normalized).await?;
        let user = credentials.as_ref().map(|found| found.user);
        if let Err(refused) = deps.lockout.begin(&key, user, context).await {
            if refused.code() == ErrorCode::AccountLocked {
                self.audit_login(tenant, user, context, AuditOutcome::Refused, json!({}))
                    .await?;
            }
            return Err(refused);
        }
        let stored = credentials.map(|found| found.password_hash);
        let checked = stored.clone().unwrap_or_default();
        let verified = deps.hasher.verify(password, stored).await?;
        match (verified, user) {
            (true, Some(user)) => {
                let login = self.login_succeeded(tenant, &key, user, context).await?;
                let users = deps.users.as_ref();
                if password_unchanged(users, tenant.id, &normalized, user, &checked).await? {
                    Ok(login)
                } else {
                    warn!(target: "security", event = "login", outcome = "password_changed",
                        subject_id = %user);
                    Err(password_changed_meanwhile())
                }
            }
            _ => Err(self.login_failed(tenant, user, context).await?),
        }
    }

    /// Asks for the second factor when one is due; otherwise resets the lockout count and
    /// opens the session. With MFA the attempt stays counted: only the second factor resets
    /// the count, or the right password would buy unlimited guesses at the code.
    async fn login_succeeded(
        &self,
        tenant: &Tenant,
        key: &AccountKey,
        user: UserId,
        context: &RequestContext,
    ) -> Result<LoginOutcome, ApiError> {
        let deps = &self.deps;
        if let Some(pending) = deps.mfa.after_password(tenant.id, user).await? {
            info!(target: "security", event = "login", outcome = "mfa_required",
                subject_id = %user);
            let detail = json!({"mfa_required": true});
            self.audit_login(tenant, Some(user), context, AuditOutcome::Success, detail)
                .await?;
            return Ok(LoginOutcome::MfaRequired(pending));
        }
        info!(target: "security", event = "login", outcome = "success", subject_id = %user);
        deps.lockout.succeeded(key).await?;
        let tokens = deps
            .sessions
            .start(tenant.id, user, vec![AMR_PASSWORD.to_owned()])
            .await?;
        self.audit_login(
            tenant,
            Some(user),
            context,
            AuditOutcome::Success,
            json!({}),
        )
        .await?;
        let notice = Notice::NewSignIn {
            ip: context.ip,
            user_agent: context.user_agent.clone(),
        };
        deps.mailer.notify(tenant.id, user, notice).await;
        Ok(LoginOutcome::Tokens(tokens))
    }

    /// Records the failure (the lockout counted it when the attempt began); the answer is the
    /// same whether or not `user` exists.
    async fn login_failed(
        &self,
        tenant: &Tenant,
        user: Option<UserId>,
        context: &RequestContext,
    ) -> Result<ApiError, ApiError> {
        warn!(
            target: "security",
            event = "login",
            outcome = "failure",
            account_exists = user.is_some(),
            subject_id = user.map(tracing::field::display),
        );
        self.audit_login(tenant, user, context, AuditOutcome::Failure, json!({}))
            .await?;
        Ok(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong email or password",
        ))
    }

    async fn audit_login(
        &self,
        tenant: &Tenant,
        user: Option<UserId>,
        context: &RequestContext,
        outcome: AuditOutcome,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        self.deps
            .audit
            .record(AuditEvent {
                tenant: tenant.id,
                user,
                kind: AuditKind::Login,
                outcome,
                context,
                detail,
            })
            .await
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
        let mfa = self.deps.mfa.status(tenant, principal.user).await?;
        Ok(Me {
            tenant,
            profile,
            grants,
            session: principal.session,
            mfa,
        })
    }
}

/// The password hash stored now for `email` in `tenant`, if that account is `user`'s.
pub(crate) async fn stored_password_hash(
    users: &dyn UserStore,
    tenant: TenantId,
    email: &str,
    user: UserId,
) -> Result<Option<String>, ApiError> {
    let found = users.credentials(tenant, email).await?;
    Ok(found
        .filter(|found| found.user == user)
        .map(|found| found.password_hash))
}

/// Whether `email`'s account in `tenant` is still `user` with the password hash `checked`.
///
/// A login checks the password against the hash it read, then opens a session or an MFA
/// challenge. A reset or change that commits in between sweeps away the sessions and
/// challenges that exist when it runs, which misses one opened after the sweep. So an entry
/// point asks this after it has opened its session or challenge and hands nothing out if the
/// hash has changed: a change that commits before this read is seen here, and one that
/// commits after it finds the session or challenge already there and ends it.
pub(crate) async fn password_unchanged(
    users: &dyn UserStore,
    tenant: TenantId,
    email: &str,
    user: UserId,
    checked: &str,
) -> Result<bool, ApiError> {
    let current = stored_password_hash(users, tenant, email, user).await?;
    Ok(current.as_deref() == Some(checked))
}

/// The answer when the password changed while a login was checking it.
pub(crate) fn password_changed_meanwhile() -> ApiError {
    ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password")
}

/// NIST SP 800-63B §5.1.1.2: a password is normalized (NFC) before it is checked and hashed,
/// so the composed and the decomposed spelling of `é` (which keyboards and platforms produce
/// differently) are the same password. The unnormalized copy is wiped when dropped.
pub(crate) fn nfc(password: SecretString) -> SecretString {
    if unicode_normalization::is_nfc(password.expose()) {
        return password;
    }
    SecretString::new(password.expose().nfc().collect())
}

/// Length rules, counted in characters of the NFC form, and no control characters. At
/// login only the maximum applies (an old password may predate a stricter rule), and it
/// bounds the hashing work either way.
fn password_error(
    policy: PasswordPolicy,
    password: &SecretString,
    registering: bool,
) -> Option<FieldError> {
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
    } else if registering && password.expose().chars().any(|c| c.is_ascii_control()) {
        // Control characters are invisible, and a terminal or form may drop or alter them,
        // so a password holding one could not be typed again. Anything printable stays
        // allowed, spaces and every script included.
        (
            "invalid_character",
            "must not contain control characters".to_owned(),
        )
    } else {
        return None;
    };
    Some(FieldError {
        field: "password".to_owned(),
        code,
        message,
    })
}

fn email_error(reason: &str) -> FieldError {
    FieldError {
        field: "email".to_owned(),
        code: "invalid_email",
        message: reason.to_owned(),
    }
}

/// A display name is shown to other people (invitations, admin lists), so it must not hide
/// characters that make it look like someone else's; see [`text`].
fn name_error(name: &str) -> Option<FieldError> {
    let message = if name.chars().count() > MAX_NAME_LEN {
        format!("must be at most {MAX_NAME_LEN} characters")
    } else if text::has_hidden(name) {
        "must not contain invisible, formatting or control characters".to_owned()
    } else {
        return None;
    };
    Some(FieldError {
        field: "name".to_owned(),
        code: "invalid_name",
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy {
        min_length: 8,
        max_length: 17,
    };

    fn secret(text: &str) -> SecretString {
        SecretString::new(text.to_owned())
    }

    fn password_code(text: &str, registering: bool) -> Option<&'static str> {
        password_error(POLICY, &nfc(secret(text)), registering).map(|error| error.code)
    }

    #[test]
    fn passwords_are_compared_in_nfc() {
        let composed = nfc(secret("caf\u{e9} cr\u{e8}me"));
        let decomposed = nfc(secret("cafe\u{301} cre\u{300}me"));
        assert_eq!(composed.expose(), decomposed.expose());
        assert_eq!(decomposed.expose(), "caf\u{e9} cr\u{e8}me");
        // Length is counted after composing: 17 characters, not 20.
        let dessert = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e";
        assert_eq!(password_code(dessert, true), None);
        assert_eq!(
            password_code(&format!("{dessert}!"), true),
            Some("too_long")
        );
        // NFC keeps compatibility characters apart (unlike NFKC for emails).
        assert_ne!(nfc(secret("\u{fb01}")).expose(), "fi");
    }

    #[test]
    fn passwords_with_control_characters_are_refused_at_registration() {
        for bad in [
            "pass\u{0}word",
            "password\n",
            "pass\tword",
            "pass\u{7f}word",
        ] {
            assert_eq!(
                password_code(bad, true),
                Some("invalid_character"),
                "{bad:?}"
            );
        }
        // At login an old password is only checked against its hash.
        assert_eq!(password_code("pass\tword", false), None);
        for good in [
            "correct horse",
            "pässwörd",
            "пароль-пароль",
            "密码密码密码密码",
            "🔑🔑🔑🔑🔑🔑🔑🔑",
        ] {
            assert_eq!(password_code(good, true), None, "{good:?}");
        }
        assert_eq!(password_code("short", true), Some("too_short"));
        assert_eq!(password_code("", false), Some("required"));
    }

    #[test]
    fn names_with_hidden_characters_are_refused() {
        assert!(name_error("Ada Lovelace").is_none());
        assert!(name_error("Élodie 王").is_none());
        assert!(name_error(&"a".repeat(MAX_NAME_LEN)).is_none());
        let too_long = name_error(&"é".repeat(MAX_NAME_LEN + 1)).unwrap();
        assert_eq!(
            (too_long.field.as_str(), too_long.code),
            ("name", "invalid_name")
        );
        for bad in [
            "Ad\u{200b}a",
            "\u{202e}adA",
            "Ada\u{ad}",
            "\u{feff}Ada",
            "A\u{2060}da",
            "A\nda",
        ] {
            let error = name_error(bad).unwrap();
            assert_eq!(
                (error.field.as_str(), error.code),
                ("name", "invalid_name"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn email_errors_name_the_email_field() {
        let reason = email::normalize("ad\u{200b}a@example.com").unwrap_err();
        let error = email_error(reason);
        assert_eq!(
            (error.field.as_str(), error.code),
            ("email", "invalid_email")
        );
    }
}
