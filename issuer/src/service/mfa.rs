//! TOTP MFA with backup codes (design note 0005, "TOTP MFA"): enrolment, confirmation,
//! removal, backup-code regeneration, and the second step of login.
//!
//! Every code check goes through the account lockout (guard, then failed or succeeded, keyed
//! by the user's normalized email like the password) and is spent in the store with one
//! conditional write, so a TOTP step, a backup code or an `mfa_token` is accepted once even
//! under concurrent use. A password that was right does not reset the lockout of an account
//! with MFA: only the second factor does, or knowing the password would buy unlimited guesses
//! at the code.

use std::sync::Arc;

use chrono::TimeDelta;
use qrcode::QrCode;
use qrcode::render::svg;
use serde_json::json;
use tracing::{info, instrument, warn};

use super::accounts::{nfc, password_changed_meanwhile, password_unchanged, stored_password_hash};
use super::audit::{AuditEvent, AuditKind, AuditLog, AuditOutcome, RequestContext};
use super::lockout::{AccountKey, Lockout};
use super::mail::{Mailer, Notice};
use super::rate_limits::{Account, Action, RateLimits};
use super::sessions::{SessionService, TokenPair};
use super::tokens::Principal;
use crate::clock::{Clock, unix_secs};
use crate::config::MfaSettings;
use crate::crypto::keys::{Wrapped, WrappingKey};
use crate::crypto::otp::{BACKUP_CODE_COUNT, BackupCode, MfaToken, TotpCode, TotpSecret};
use crate::crypto::password::PasswordHasher;
use crate::crypto::refresh::TokenHash;
use crate::crypto::secret::SecretString;
use crate::error::{ApiError, ErrorCode, FailureClass, FieldError};
use crate::ids::{TenantId, UserId};
use crate::store::{
    ChallengePurpose, CompletionOutcome, ConfirmOutcome, MfaStore, NewChallenge,
    RegenerationOutcome, SpentFactor, Tenant, TotpConfirmation, UserStore,
};

/// The `amr` values (RFC 8176) of a login with password and second factor. A backup code is
/// a one-time password too, so both kinds of code give `otp`.
const AMR_PASSWORD_OTP: [&str; 2] = ["pwd", "otp"];
/// Pixels of the smallest side of the enrolment QR code.
const QR_MIN_PIXELS: u32 = 200;

/// The stores and services MFA works with.
#[derive(Debug)]
pub(crate) struct MfaDeps {
    pub(crate) store: Arc<dyn MfaStore>,
    pub(crate) users: Arc<dyn UserStore>,
    pub(crate) hasher: Arc<PasswordHasher>,
    pub(crate) sessions: Arc<SessionService>,
    pub(crate) limits: RateLimits,
    pub(crate) lockout: Arc<Lockout>,
    pub(crate) audit: Arc<AuditLog>,
    /// Alerts the user when MFA is turned on or off and when a login completes.
    pub(crate) mailer: Arc<Mailer>,
    /// Seals TOTP secrets (HKDF of the master key, "portcullis totp seal v1").
    pub(crate) seal_key: WrappingKey,
    pub(crate) clock: Clock,
    pub(crate) settings: MfaSettings,
}

/// Who enrolls or confirms: a signed-in user (bearer), or a user whose tenant requires MFA
/// and who holds the enrolment `mfa_token` of a login.
#[derive(Debug)]
pub(crate) enum MfaCaller {
    Session(Box<Principal>),
    Enrollment { tenant: Tenant, token: SecretString },
}

/// What a login answers after the right password, when a second factor is due.
#[derive(Debug)]
pub(crate) struct PendingLogin {
    pub(crate) mfa_token: SecretString,
    /// The tenant requires MFA and the user has none: enroll and confirm with the token.
    pub(crate) enrollment_required: bool,
    pub(crate) expires_in: u64,
}

/// A new, unconfirmed TOTP enrolment, shown once.
#[derive(Debug)]
pub(crate) struct Enrollment {
    pub(crate) secret: SecretString,
    pub(crate) otpauth_uri: SecretString,
    /// The otpauth URI as a QR code (SVG); it holds the secret like the URI.
    pub(crate) qr_svg: SecretString,
}

/// A confirmed enrolment: the backup codes, shown once, and for an enrolment `mfa_token`
/// the tokens of the login it completes.
#[derive(Debug)]
pub(crate) struct Confirmed {
    pub(crate) backup_codes: Vec<SecretString>,
    pub(crate) tokens: Option<TokenPair>,
}

/// What proves the caller may remove TOTP.
#[derive(Debug)]
pub(crate) enum RemovalProof {
    /// A current TOTP code or a backup code.
    Code(SecretString),
    Password(SecretString),
}

/// The MFA state `GET /v1/auth/me` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MfaStatus {
    pub(crate) totp_enabled: bool,
    pub(crate) backup_codes_left: u32,
}

/// The account a code is checked for.
#[derive(Debug)]
struct Subject {
    tenant: Tenant,
    user: UserId,
    email: String,
    key: AccountKey,
    /// The enrolment `mfa_token` the caller presented, spent by a successful confirmation.
    challenge: Option<TokenHash>,
}

/// A presented second factor, parsed.
#[derive(Debug)]
enum Factor {
    Totp(TotpCode),
    Backup(BackupCode),
}

impl Factor {
    /// A TOTP code (six digits) or a backup code.
    fn parse(code: &str) -> Result<Self, ApiError> {
        if let Some(totp) = TotpCode::parse(code) {
            return Ok(Self::Totp(totp));
        }
        BackupCode::parse(code)
            .map(Self::Backup)
            .ok_or_else(|| code_format_error(true))
    }

    const fn method(&self) -> &'static str {
        match self {
            Self::Totp(_) => "totp",
            Self::Backup(_) => "backup_code",
        }
    }
}

fn code_format_error(backup: bool) -> ApiError {
    let message = if backup {
        "must be a 6-digit code or a backup code"
    } else {
        "must be a 6-digit code"
    };
    ApiError::validation(vec![FieldError {
        field: "code".to_owned(),
        code: "invalid_code",
        message: message.to_owned(),
    }])
}

fn invalid_code() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidMfaCode,
        "the code is wrong, expired or already used",
    )
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidMfaToken,
        "the mfa_token is unknown, expired or already used",
    )
}

fn already_enabled() -> ApiError {
    ApiError::new(
        ErrorCode::MfaAlreadyEnabled,
        "TOTP is already enabled for this account; remove it before enrolling again",
    )
}

fn not_enrolled() -> ApiError {
    ApiError::new(
        ErrorCode::MfaNotEnrolled,
        "this account has no TOTP enrolment to use here",
    )
}

/// Enrols, checks and removes second factors.
#[derive(Debug)]
pub(crate) struct MfaService {
    deps: MfaDeps,
}

impl MfaService {
    pub(crate) fn new(deps: MfaDeps) -> Self {
        Self { deps }
    }

    /// After the right password: `None` when the user may have tokens now, else the
    /// `mfa_token` of the step still due (verify, or enrolment when the tenant requires MFA).
    #[instrument(skip_all, name = "mfa.after_password")]
    pub(crate) async fn after_password(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<PendingLogin>, ApiError> {
        let deps = &self.deps;
        let enrolled = deps
            .store
            .totp(tenant, user)
            .await?
            .is_some_and(|totp| totp.confirmed);
        let purpose = if enrolled {
            ChallengePurpose::Verify
        } else if deps.store.mfa_required(tenant).await? {
            ChallengePurpose::Enroll
        } else {
            return Ok(None);
        };
        let token = MfaToken::generate();
        let now = deps.clock.now();
        let ttl = deps.settings.challenge_ttl_secs;
        let lifetime = TimeDelta::try_seconds(i64::try_from(ttl).unwrap_or(i64::MAX))
            .unwrap_or(TimeDelta::MAX);
        deps.store
            .create_challenge(&NewChallenge {
                tenant,
                user,
                token: token.hash(),
                purpose,
                created_at: now,
                expires_at: now + lifetime,
            })
            .await?;
        info!(target: "security", event = "mfa_challenge", purpose = purpose.as_str(),
            subject_id = %user);
        Ok(Some(PendingLogin {
            mfa_token: token.secret().clone(),
            enrollment_required: purpose == ChallengePurpose::Enroll,
            expires_in: ttl,
        }))
    }

    /// Starts (or restarts) a TOTP enrolment: a new secret, unconfirmed until `confirm`.
    ///
    /// # Errors
    ///
    /// `mfa_already_enabled` when TOTP is confirmed; `invalid_mfa_token`; rate limits.
    #[instrument(skip_all, name = "mfa.enroll")]
    pub(crate) async fn enroll(
        &self,
        caller: MfaCaller,
        context: &RequestContext,
    ) -> Result<Enrollment, ApiError> {
        let deps = &self.deps;
        let subject = self.resolve(caller, context).await?;
        let secret = TotpSecret::generate();
        let sealed = deps
            .seal_key
            .wrap(&seal_context(&subject), secret.bytes().expose())
            .map_err(|err| ApiError::internal(FailureClass::Fault, err))?;
        let now = deps.clock.now();
        let stored = deps
            .store
            .begin_totp(subject.tenant.id, subject.user, &sealed, now)
            .await?;
        if !stored {
            return Err(already_enabled());
        }
        // The Key URI separates issuer and account with `:`; an address holding one (a quoted
        // local part) is named by the user id instead.
        let account = if subject.email.contains(':') {
            subject.user.to_string()
        } else {
            subject.email.clone()
        };
        let otpauth_uri = secret
            .otpauth_uri(&deps.settings.issuer_name, &account)
            .map_err(|err| ApiError::internal(FailureClass::Fault, err))?;
        let qr_svg = qr_svg(&otpauth_uri)?;
        info!(target: "security", event = "mfa_enroll", subject_id = %subject.user);
        Ok(Enrollment {
            secret: secret.base32(),
            otpauth_uri,
            qr_svg,
        })
    }

    /// Confirms an enrolment with a first code and hands out the backup codes; for an
    /// enrolment `mfa_token`, also completes the login.
    ///
    /// # Errors
    ///
    /// `invalid_mfa_code` (counted by the lockout), `mfa_not_enrolled`, `mfa_already_enabled`,
    /// `invalid_mfa_token`, `account_locked`, rate limits.
    #[instrument(skip_all, name = "mfa.confirm")]
    pub(crate) async fn confirm(
        &self,
        caller: MfaCaller,
        context: &RequestContext,
        code: &str,
    ) -> Result<Confirmed, ApiError> {
        let deps = &self.deps;
        let subject = self.resolve(caller, context).await?;
        // Only a TOTP code proves the authenticator holds the new secret.
        let code = TotpCode::parse(code).ok_or_else(|| code_format_error(false))?;
        let stored = deps.store.totp(subject.tenant.id, subject.user).await?;
        let Some(stored) = stored else {
            return Err(not_enrolled());
        };
        if stored.confirmed {
            return Err(already_enabled());
        }
        self.guard(&subject, AuditKind::MfaEnrolled, context)
            .await?;
        let secret = self.unseal(&subject, &stored.sealed)?;
        let now = deps.clock.now();
        let Some(step) = secret.matching_step(&code, unix_secs(now)) else {
            return Err(self
                .factor_failed(&subject, AuditKind::MfaEnrolled, "totp", context)
                .await?);
        };
        let (codes, hashes) = new_backup_codes();
        // Read before the challenge is spent: see `start_session`.
        let checked_hash = self.password_hash(&subject).await?.unwrap_or_default();
        let outcome = deps
            .store
            .confirm_totp(&TotpConfirmation {
                tenant: subject.tenant.id,
                user: subject.user,
                secret_nonce: &stored.sealed.nonce,
                step,
                backup_codes: &hashes,
                now,
                challenge: subject.challenge,
            })
            .await?;
        match outcome {
            ConfirmOutcome::Confirmed => {}
            // Confirmed or replaced by a concurrent request: say which.
            ConfirmOutcome::NotPending => {
                return Err(self
                    .require_enrolled(&subject)
                    .await
                    .err()
                    .unwrap_or_else(already_enabled));
            }
            ConfirmOutcome::ChallengeGone => return Err(invalid_token()),
        }
        deps.lockout.succeeded(&subject.key).await?;
        info!(target: "security", event = "mfa_enrolled", subject_id = %subject.user);
        self.audit(
            &subject,
            AuditKind::MfaEnrolled,
            AuditOutcome::Success,
            context,
            "totp",
        )
        .await?;
        deps.mailer
            .notify(subject.tenant.id, subject.user, Notice::MfaEnabled)
            .await;
        let tokens = match subject.challenge {
            Some(_) => Some(self.start_session(&subject, &checked_hash, context).await?),
            None => None,
        };
        Ok(Confirmed {
            backup_codes: codes.iter().map(BackupCode::display).collect(),
            tokens,
        })
    }

    /// The second step of a login: a TOTP or backup code for the `mfa_token` of the first.
    ///
    /// # Errors
    ///
    /// `invalid_mfa_token`, `mfa_required` (an enrolment token), `invalid_mfa_code` (counted
    /// by the lockout; the token stays usable), `account_locked`, rate limits.
    #[instrument(skip_all, name = "mfa.verify", fields(tenant_id = %tenant.id))]
    pub(crate) async fn verify(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        mfa_token: &SecretString,
        code: &str,
    ) -> Result<TokenPair, ApiError> {
        let (token, subject, factor) = self
            .challenged_subject(tenant, context, mfa_token, code)
            .await?;
        self.guard(&subject, AuditKind::MfaVerify, context).await?;
        let method = factor.method();
        let Some(spent) = self.checked_factor(&subject, factor).await? else {
            return Err(self
                .factor_failed(&subject, AuditKind::MfaVerify, method, context)
                .await?);
        };
        // Read before the challenge is spent: see `start_session`.
        let checked_hash = self.password_hash(&subject).await?.unwrap_or_default();
        let now = self.deps.clock.now();
        let outcome = self
            .deps
            .store
            .complete_challenge(tenant.id, &token, subject.user, spent, now)
            .await?;
        match outcome {
            CompletionOutcome::Completed => {}
            CompletionOutcome::ChallengeGone => return Err(invalid_token()),
            CompletionOutcome::FactorRefused => {
                return Err(self
                    .factor_failed(&subject, AuditKind::MfaVerify, method, context)
                    .await?);
            }
        }
        self.factor_succeeded(&subject, AuditKind::MfaVerify, spent, context)
            .await?;
        self.start_session(&subject, &checked_hash, context).await
    }

    /// Removes TOTP and the backup codes, with a current code or the password.
    ///
    /// # Errors
    ///
    /// `invalid_mfa_code` or `invalid_credentials` (counted by the lockout),
    /// `mfa_not_enrolled`, `account_locked`, rate limits.
    #[instrument(skip_all, name = "mfa.disable")]
    pub(crate) async fn disable(
        &self,
        principal: Principal,
        context: &RequestContext,
        proof: RemovalProof,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        let subject = self
            .resolve(MfaCaller::Session(Box::new(principal)), context)
            .await?;
        let kind = AuditKind::MfaDisabled;
        let method = match proof {
            RemovalProof::Code(code) => {
                let factor = Factor::parse(code.expose())?;
                self.require_enrolled(&subject).await?;
                self.guard(&subject, kind, context).await?;
                self.spend_code(&subject, factor, kind, context).await?
            }
            RemovalProof::Password(password) => {
                let password = nfc(password);
                self.require_enrolled(&subject).await?;
                self.guard(&subject, kind, context).await?;
                self.check_password(&subject, password, context).await?;
                "password"
            }
        };
        if !deps
            .store
            .disable_totp(subject.tenant.id, subject.user)
            .await?
        {
            return Err(not_enrolled());
        }
        deps.lockout.succeeded(&subject.key).await?;
        warn!(target: "security", event = "mfa_disabled", subject_id = %subject.user, method);
        self.audit(&subject, kind, AuditOutcome::Success, context, method)
            .await?;
        deps.mailer
            .notify(subject.tenant.id, subject.user, Notice::MfaDisabled)
            .await;
        Ok(())
    }

    /// Replaces the backup codes, with a current code; the old set stops working.
    ///
    /// # Errors
    ///
    /// `invalid_mfa_code` (counted by the lockout), `mfa_not_enrolled`, `account_locked`,
    /// rate limits.
    #[instrument(skip_all, name = "mfa.regenerate_backup_codes")]
    pub(crate) async fn regenerate_backup_codes(
        &self,
        principal: Principal,
        context: &RequestContext,
        code: &str,
    ) -> Result<Vec<SecretString>, ApiError> {
        let deps = &self.deps;
        let subject = self
            .resolve(MfaCaller::Session(Box::new(principal)), context)
            .await?;
        let kind = AuditKind::BackupCodesRegenerated;
        let factor = Factor::parse(code)?;
        self.require_enrolled(&subject).await?;
        self.guard(&subject, kind, context).await?;
        let method = factor.method();
        let Some(spent) = self.checked_factor(&subject, factor).await? else {
            return Err(self.factor_failed(&subject, kind, method, context).await?);
        };
        let (codes, hashes) = new_backup_codes();
        let now = deps.clock.now();
        let outcome = deps
            .store
            .regenerate_backup_codes(subject.tenant.id, subject.user, spent, &hashes, now)
            .await?;
        match outcome {
            RegenerationOutcome::Replaced => {}
            RegenerationOutcome::NotEnrolled => return Err(not_enrolled()),
            RegenerationOutcome::FactorRefused => {
                return Err(self.factor_failed(&subject, kind, method, context).await?);
            }
        }
        self.audit_backup_code_use(&subject, spent, context).await?;
        deps.lockout.succeeded(&subject.key).await?;
        info!(target: "security", event = "backup_codes_regenerated", subject_id = %subject.user);
        self.audit(&subject, kind, AuditOutcome::Success, context, method)
            .await?;
        Ok(codes.iter().map(BackupCode::display).collect())
    }

    /// Whether the user has confirmed TOTP, and how many backup codes are left.
    pub(crate) async fn status(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<MfaStatus, ApiError> {
        let store = &self.deps.store;
        let totp_enabled = store
            .totp(tenant, user)
            .await?
            .is_some_and(|totp| totp.confirmed);
        Ok(MfaStatus {
            totp_enabled,
            backup_codes_left: store.backup_codes_left(tenant, user).await?,
        })
    }

    /// The account a `verify` challenge belongs to, after the rate limits (per client, and
    /// per account once the token names one), with the parsed code and the token's hash.
    async fn challenged_subject(
        &self,
        tenant: &Tenant,
        context: &RequestContext,
        mfa_token: &SecretString,
        code: &str,
    ) -> Result<(TokenHash, Subject, Factor), ApiError> {
        let deps = &self.deps;
        let hash = MfaToken::parse(mfa_token.expose()).map(|token| token.hash());
        let challenge = match &hash {
            Some(hash) => {
                let now = deps.clock.now();
                deps.store.challenge(tenant.id, hash, now).await?
            }
            None => None,
        };
        let profile = match challenge {
            Some(challenge) => deps.users.profile(tenant.id, challenge.user).await?,
            None => None,
        };
        let account = profile.as_ref().map(|profile| Account {
            tenant: tenant.id,
            email: &profile.email,
        });
        deps.limits
            .check(Action::MfaVerify, context.ip, account)
            .await?;
        let factor = Factor::parse(code)?;
        let (Some(hash), Some(challenge), Some(profile)) = (hash, challenge, profile) else {
            return Err(invalid_token());
        };
        if challenge.purpose == ChallengePurpose::Enroll {
            return Err(ApiError::new(
                ErrorCode::MfaRequired,
                "this account must set up MFA first: enroll and confirm with this mfa_token",
            ));
        }
        let subject = Subject {
            key: AccountKey::new(tenant.id, &profile.email),
            tenant: tenant.clone(),
            user: challenge.user,
            email: profile.email,
            challenge: None,
        };
        Ok((hash, subject, factor))
    }

    /// The account behind a caller, after the MFA management rate limits.
    async fn resolve(
        &self,
        caller: MfaCaller,
        context: &RequestContext,
    ) -> Result<Subject, ApiError> {
        let deps = &self.deps;
        let enrolling = matches!(caller, MfaCaller::Enrollment { .. });
        let (tenant, user, challenge) = match caller {
            MfaCaller::Session(principal) => {
                let Principal { tenant, user, .. } = *principal;
                (tenant, Some(user), None)
            }
            MfaCaller::Enrollment { tenant, token } => {
                let hash = MfaToken::parse(token.expose()).map(|token| token.hash());
                let challenge = match &hash {
                    Some(hash) => {
                        let now = deps.clock.now();
                        deps.store.challenge(tenant.id, hash, now).await?
                    }
                    None => None,
                };
                let enrolling = challenge
                    .filter(|challenge| challenge.purpose == ChallengePurpose::Enroll)
                    .map(|challenge| challenge.user);
                (tenant, enrolling, hash)
            }
        };
        let profile = match user {
            Some(user) => deps.users.profile(tenant.id, user).await?,
            None => None,
        };
        let account = profile.as_ref().map(|profile| Account {
            tenant: tenant.id,
            email: &profile.email,
        });
        deps.limits
            .check(Action::MfaManage, context.ip, account)
            .await?;
        let (Some(user), Some(profile)) = (user, profile) else {
            return Err(if enrolling {
                invalid_token()
            } else {
                // A valid bearer token for a user that no longer exists.
                ApiError::new(ErrorCode::InvalidToken, "the subject no longer exists")
                    .with_token_presented()
            });
        };
        Ok(Subject {
            key: AccountKey::new(tenant.id, &profile.email),
            tenant,
            user,
            email: profile.email,
            challenge,
        })
    }

    /// Begins (counts) the lockout's attempt; a refusal is recorded in the audit log under
    /// `kind`.
    async fn guard(
        &self,
        subject: &Subject,
        kind: AuditKind,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let user = Some(subject.user);
        if let Err(refused) = self.deps.lockout.begin(&subject.key, user, context).await {
            if refused.code() == ErrorCode::AccountLocked {
                self.audit(subject, kind, AuditOutcome::Refused, context, "locked")
                    .await?;
            }
            return Err(refused);
        }
        Ok(())
    }

    async fn require_enrolled(&self, subject: &Subject) -> Result<(), ApiError> {
        let stored = self
            .deps
            .store
            .totp(subject.tenant.id, subject.user)
            .await?;
        if stored.is_some_and(|totp| totp.confirmed) {
            Ok(())
        } else {
            Err(not_enrolled())
        }
    }

    /// The factor to spend if the code is right; `None` for a wrong TOTP code. A backup code
    /// is only known to be right once it is spent (the store holds nothing but its hash).
    async fn checked_factor(
        &self,
        subject: &Subject,
        factor: Factor,
    ) -> Result<Option<SpentFactor>, ApiError> {
        match factor {
            Factor::Backup(code) => Ok(Some(SpentFactor::BackupCode(code.hash()))),
            Factor::Totp(code) => {
                let stored = self
                    .deps
                    .store
                    .totp(subject.tenant.id, subject.user)
                    .await?;
                let Some(stored) = stored.filter(|totp| totp.confirmed) else {
                    return Ok(None);
                };
                let secret = self.unseal(subject, &stored.sealed)?;
                let now = unix_secs(self.deps.clock.now());
                Ok(secret.matching_step(&code, now).map(SpentFactor::TotpStep))
            }
        }
    }

    /// Checks and spends a code outside a login (disable, regenerate); the method's name.
    async fn spend_code(
        &self,
        subject: &Subject,
        factor: Factor,
        kind: AuditKind,
        context: &RequestContext,
    ) -> Result<&'static str, ApiError> {
        let method = factor.method();
        let spent = match self.checked_factor(subject, factor).await? {
            Some(spent) => {
                let now = self.deps.clock.now();
                let store = &self.deps.store;
                store
                    .spend_factor(subject.tenant.id, subject.user, spent, now)
                    .await?
                    .then_some(spent)
            }
            None => None,
        };
        let Some(spent) = spent else {
            return Err(self.factor_failed(subject, kind, method, context).await?);
        };
        self.audit_backup_code_use(subject, spent, context).await?;
        Ok(method)
    }

    /// Records a spent backup code (`backup_code_used`); a TOTP step records nothing here.
    async fn audit_backup_code_use(
        &self,
        subject: &Subject,
        spent: SpentFactor,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        if let SpentFactor::BackupCode(_) = spent {
            self.audit(
                subject,
                AuditKind::BackupCodeUsed,
                AuditOutcome::Success,
                context,
                "backup_code",
            )
            .await?;
        }
        Ok(())
    }

    /// The user's password hash as stored now.
    async fn password_hash(&self, subject: &Subject) -> Result<Option<String>, ApiError> {
        let users = self.deps.users.as_ref();
        stored_password_hash(users, subject.tenant.id, &subject.email, subject.user).await
    }

    async fn check_password(
        &self,
        subject: &Subject,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        let deps = &self.deps;
        let stored = self.password_hash(subject).await?;
        if deps.hasher.verify(password, stored).await? {
            return Ok(());
        }
        warn!(target: "security", event = "mfa_disabled", outcome = "failure",
            subject_id = %subject.user, method = "password");
        self.audit(
            subject,
            AuditKind::MfaDisabled,
            AuditOutcome::Failure,
            context,
            "password",
        )
        .await?;
        Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong password",
        ))
    }

    /// Records a wrong or spent code (the lockout counted it when the attempt began); the
    /// answer for the client.
    async fn factor_failed(
        &self,
        subject: &Subject,
        kind: AuditKind,
        method: &'static str,
        context: &RequestContext,
    ) -> Result<ApiError, ApiError> {
        warn!(target: "security", event = kind.as_str(), outcome = "failure",
            subject_id = %subject.user, method);
        self.audit(subject, kind, AuditOutcome::Failure, context, method)
            .await?;
        Ok(invalid_code())
    }

    async fn factor_succeeded(
        &self,
        subject: &Subject,
        kind: AuditKind,
        spent: SpentFactor,
        context: &RequestContext,
    ) -> Result<(), ApiError> {
        self.deps.lockout.succeeded(&subject.key).await?;
        let method = match spent {
            SpentFactor::TotpStep(_) => "totp",
            SpentFactor::BackupCode(_) => {
                self.audit(
                    subject,
                    AuditKind::BackupCodeUsed,
                    AuditOutcome::Success,
                    context,
                    "backup_code",
                )
                .await?;
                "backup_code"
            }
        };
        info!(target: "security", event = kind.as_str(), outcome = "success",
            subject_id = %subject.user, method);
        self.audit(subject, kind, AuditOutcome::Success, context, method)
            .await
    }

    /// Opens the session of a login completed with a second factor.
    ///
    /// `checked_hash` is the password hash read before the login's challenge was spent. A
    /// reset or change spends pending challenges, so if it committed before that spend the
    /// login already failed; if it committed after, the hash differs now and the session is
    /// not handed out (see `accounts::password_unchanged`).
    async fn start_session(
        &self,
        subject: &Subject,
        checked_hash: &str,
        context: &RequestContext,
    ) -> Result<TokenPair, ApiError> {
        let amr = AMR_PASSWORD_OTP.iter().map(|&amr| amr.to_owned()).collect();
        let tokens = self
            .deps
            .sessions
            .start(subject.tenant.id, subject.user, amr)
            .await?;
        let users = self.deps.users.as_ref();
        let (tenant, email, user) = (subject.tenant.id, &subject.email, subject.user);
        if !password_unchanged(users, tenant, email, user, checked_hash).await? {
            warn!(target: "security", event = "mfa_verify", outcome = "password_changed",
                subject_id = %subject.user);
            return Err(password_changed_meanwhile());
        }
        self.deps
            .audit
            .record(AuditEvent {
                tenant: subject.tenant.id,
                user: Some(subject.user),
                kind: AuditKind::Login,
                outcome: AuditOutcome::Success,
                context,
                detail: json!({"amr": AMR_PASSWORD_OTP}),
            })
            .await?;
        let notice = Notice::NewSignIn {
            ip: context.ip,
            user_agent: context.user_agent.clone(),
        };
        self.deps
            .mailer
            .notify(subject.tenant.id, subject.user, notice)
            .await;
        Ok(tokens)
    }

    fn unseal(&self, subject: &Subject, sealed: &Wrapped) -> Result<TotpSecret, ApiError> {
        self.deps
            .seal_key
            .unwrap(&seal_context(subject), sealed)
            .map(TotpSecret::from_bytes)
            .map_err(|err| ApiError::internal(FailureClass::Fault, err))
    }

    async fn audit(
        &self,
        subject: &Subject,
        kind: AuditKind,
        outcome: AuditOutcome,
        context: &RequestContext,
        method: &'static str,
    ) -> Result<(), ApiError> {
        self.deps
            .audit
            .record(AuditEvent {
                tenant: subject.tenant.id,
                user: Some(subject.user),
                kind,
                outcome,
                context,
                detail: json!({"method": method}),
            })
            .await
    }
}

/// A fresh set of backup codes and the hashes the store keeps of them.
fn new_backup_codes() -> (Vec<BackupCode>, Vec<TokenHash>) {
    let codes: Vec<BackupCode> = (0..BACKUP_CODE_COUNT)
        .map(|_| BackupCode::generate())
        .collect();
    let hashes = codes.iter().map(BackupCode::hash).collect();
    (codes, hashes)
}

/// The associated data a TOTP secret is sealed with: a row copied to another user or tenant
/// does not open.
fn seal_context(subject: &Subject) -> Vec<u8> {
    format!("mfa_totp/{}/{}", subject.tenant.id, subject.user).into_bytes()
}

/// The otpauth URI as an SVG QR code.
fn qr_svg(uri: &SecretString) -> Result<SecretString, ApiError> {
    let code = QrCode::new(uri.expose().as_bytes())
        .map_err(|err| ApiError::internal(FailureClass::Fault, err))?;
    Ok(SecretString::new(
        code.render::<svg::Color<'_>>()
            .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
            .build(),
    ))
}
