//! `/v1/auth/mfa/*`: TOTP enrolment, confirmation and removal, backup codes, and the second
//! step of login (design note 0005, "TOTP MFA").
//!
//! Handlers only extract, call one service function and shape the answer. Enrolment and
//! confirmation take either a bearer token or, for a user whose tenant requires MFA and who
//! has none yet, the enrolment `mfa_token` of the login answer in the body.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize, Serializer};

use super::auth::{TokenOut, no_store};
use crate::AppState;
use crate::crypto::secret::{SecretString, expose_secret};
use crate::error::{ApiError, ErrorCode};
use crate::http::extract::JsonBody;
use crate::service::audit::RequestContext;
use crate::service::mfa::{Confirmed, Enrollment, MfaCaller, RemovalProof};
use crate::service::tokens::Principal;
use crate::store::Tenant;

/// `POST /v1/auth/mfa/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyIn {
    mfa_token: SecretString,
    /// A TOTP code or a backup code.
    code: SecretString,
}

/// `POST /v1/auth/mfa/totp/enroll` (the body is optional with a bearer token).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollIn {
    #[serde(default)]
    mfa_token: Option<SecretString>,
}

/// `POST /v1/auth/mfa/totp/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmIn {
    code: SecretString,
    #[serde(default)]
    mfa_token: Option<SecretString>,
}

/// `DELETE /v1/auth/mfa/totp`: exactly one of `code` and `password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisableIn {
    #[serde(default)]
    code: Option<SecretString>,
    #[serde(default)]
    password: Option<SecretString>,
}

/// `POST /v1/auth/mfa/backup-codes/regenerate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegenerateIn {
    code: SecretString,
}

/// A new enrolment, shown once.
#[derive(Debug, Serialize)]
pub(crate) struct EnrollOut {
    #[serde(serialize_with = "expose_secret")]
    secret: SecretString,
    #[serde(serialize_with = "expose_secret")]
    otpauth_uri: SecretString,
    #[serde(serialize_with = "expose_secret")]
    qr_svg: SecretString,
}

impl From<Enrollment> for EnrollOut {
    fn from(enrollment: Enrollment) -> Self {
        Self {
            secret: enrollment.secret,
            otpauth_uri: enrollment.otpauth_uri,
            qr_svg: enrollment.qr_svg,
        }
    }
}

/// Backup codes, shown once; after an enrolment `mfa_token`, also the token response.
#[derive(Debug, Serialize)]
pub(crate) struct BackupCodesOut {
    #[serde(serialize_with = "expose_secrets")]
    backup_codes: Vec<SecretString>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    tokens: Option<TokenOut>,
}

impl From<Confirmed> for BackupCodesOut {
    fn from(confirmed: Confirmed) -> Self {
        Self {
            backup_codes: confirmed.backup_codes,
            tokens: confirmed.tokens.map(TokenOut::from),
        }
    }
}

/// Serializes secrets in clear, for an answer that hands them to their owner.
fn expose_secrets<S: Serializer>(
    secrets: &[SecretString],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(secrets.iter().map(SecretString::expose))
}

/// The caller of enrolment and confirmation: a bearer token or an enrolment `mfa_token`,
/// exactly one.
fn caller(
    tenant: Tenant,
    principal: Option<Principal>,
    mfa_token: Option<SecretString>,
) -> Result<MfaCaller, ApiError> {
    match (principal, mfa_token) {
        (Some(principal), None) => Ok(MfaCaller::Session(Box::new(principal))),
        (None, Some(token)) => Ok(MfaCaller::Enrollment { tenant, token }),
        (Some(_), Some(_)) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "send a bearer token or an mfa_token, not both",
        )),
        (None, None) => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "a bearer token (or the enrolment mfa_token of a login) is required",
        )),
    }
}

/// `v1.auth.mfa.verify`
pub(crate) async fn verify_mfa(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<VerifyIn>,
) -> Result<TokenOut, ApiError> {
    Ok(state
        .mfa
        .verify(&tenant, &context, &body.mfa_token, body.code.expose())
        .await?
        .into())
}

/// `v1.auth.mfa.totp.enroll`
pub(crate) async fn enroll_totp(
    State(state): State<AppState>,
    tenant: Tenant,
    principal: Option<Principal>,
    context: RequestContext,
    body: Option<JsonBody<EnrollIn>>,
) -> Result<Response, ApiError> {
    let mfa_token = body.and_then(|JsonBody(body)| body.mfa_token);
    let caller = caller(tenant, principal, mfa_token)?;
    let enrollment = state.mfa.enroll(caller, &context).await?;
    Ok(no_store(Json(EnrollOut::from(enrollment)).into_response()))
}

/// `v1.auth.mfa.totp.confirm`
pub(crate) async fn confirm_totp(
    State(state): State<AppState>,
    tenant: Tenant,
    principal: Option<Principal>,
    context: RequestContext,
    JsonBody(body): JsonBody<ConfirmIn>,
) -> Result<Response, ApiError> {
    let caller = caller(tenant, principal, body.mfa_token)?;
    let confirmed = state
        .mfa
        .confirm(caller, &context, body.code.expose())
        .await?;
    Ok(no_store(
        Json(BackupCodesOut::from(confirmed)).into_response(),
    ))
}

/// `v1.auth.mfa.totp.delete`
pub(crate) async fn delete_totp(
    State(state): State<AppState>,
    principal: Principal,
    context: RequestContext,
    JsonBody(body): JsonBody<DisableIn>,
) -> Result<StatusCode, ApiError> {
    let proof = match (body.code, body.password) {
        (Some(code), None) => RemovalProof::Code(code),
        (None, Some(password)) => RemovalProof::Password(password),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "send exactly one of `code` and `password`",
            ));
        }
    };
    state.mfa.disable(principal, &context, proof).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `v1.auth.mfa.backup_codes.regenerate`
pub(crate) async fn regenerate_backup_codes(
    State(state): State<AppState>,
    principal: Principal,
    context: RequestContext,
    JsonBody(body): JsonBody<RegenerateIn>,
) -> Result<Response, ApiError> {
    let backup_codes = state
        .mfa
        .regenerate_backup_codes(principal, &context, body.code.expose())
        .await?;
    let out = BackupCodesOut {
        backup_codes,
        tokens: None,
    };
    Ok(no_store(Json(out).into_response()))
}
