//! `/v1/auth/email/verify` and `/v1/auth/password/*`: the one-time links mailed by the issuer,
//! and the password change of a signed-in user.
//!
//! Handlers only extract, call one service function and shape the answer.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::AppState;
use crate::crypto::secret::SecretString;
use crate::error::ApiError;
use crate::http::extract::JsonBody;
use crate::service::accounts::PasswordChange;
use crate::service::audit::RequestContext;
use crate::service::tokens::Principal;
use crate::store::Tenant;

/// `POST /v1/auth/email/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyEmailIn {
    token: SecretString,
}

/// `POST /v1/auth/password/forgot`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForgotPasswordIn {
    email: String,
}

/// `POST /v1/auth/password/reset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetPasswordIn {
    token: SecretString,
    new_password: SecretString,
}

/// `POST /v1/auth/password/change`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordIn {
    current_password: SecretString,
    new_password: SecretString,
}

/// `v1.auth.email.verify`
pub(crate) async fn verify_email(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<VerifyEmailIn>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .verify_email(&tenant, &context, &body.token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `v1.auth.password.forgot`: 202 whether or not the address has an account.
pub(crate) async fn forgot_password(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<ForgotPasswordIn>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .forgot_password(&tenant, &context, &body.email)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// `v1.auth.password.reset`
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<ResetPasswordIn>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .reset_password(&tenant, &context, &body.token, body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `v1.auth.password.change`
pub(crate) async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    context: RequestContext,
    JsonBody(body): JsonBody<ChangePasswordIn>,
) -> Result<StatusCode, ApiError> {
    let change = PasswordChange {
        current_password: body.current_password,
        new_password: body.new_password,
    };
    state
        .accounts
        .change_password(&principal, &context, change)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
