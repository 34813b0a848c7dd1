//! `/v1/auth/*`: registration, login, refresh, logout and the caller's profile (the MFA
//! routes are in `mfa`).
//!
//! Handlers only extract, call one service function and shape the answer.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::Span;

use crate::AppState;
use crate::crypto::secret::{SecretString, expose_secret};
use crate::error::ApiError;
use crate::http::extract::JsonBody;
use crate::service::accounts::{LoginOutcome, Me, Registration};
use crate::service::audit::RequestContext;
use crate::service::mfa::PendingLogin;
use crate::service::sessions::TokenPair;
use crate::service::tokens::Principal;
use crate::store::Tenant;

/// `POST /v1/auth/register`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterIn {
    email: String,
    password: SecretString,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RegisterOut {
    user_id: String,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginIn {
    email: String,
    password: SecretString,
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshIn {
    refresh_token: SecretString,
}

/// `POST /v1/auth/logout` (the body is optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogoutIn {
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

/// The answer of a password step after which a second factor is due.
#[derive(Debug, Serialize)]
pub(crate) struct MfaRequiredOut {
    mfa_required: bool,
    #[serde(serialize_with = "expose_secret")]
    mfa_token: SecretString,
    /// Seconds the `mfa_token` stays usable.
    expires_in: u64,
    /// Only when the tenant requires MFA and the user has none: enroll and confirm first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    mfa_enrollment_required: bool,
}

impl From<PendingLogin> for MfaRequiredOut {
    fn from(pending: PendingLogin) -> Self {
        Self {
            mfa_required: true,
            mfa_token: pending.mfa_token,
            expires_in: pending.expires_in,
            mfa_enrollment_required: pending.enrollment_required,
        }
    }
}

/// Answers that hand out a secret must never be cached between the issuer and the client.
pub(super) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A token response (RFC 6749 section 5.1).
#[derive(Debug, Serialize)]
pub(crate) struct TokenOut {
    #[serde(serialize_with = "expose_secret")]
    access_token: SecretString,
    token_type: &'static str,
    expires_in: u64,
    #[serde(serialize_with = "expose_secret")]
    refresh_token: SecretString,
}

impl IntoResponse for TokenOut {
    /// Tokens must never be cached by anything between the issuer and the client.
    fn into_response(self) -> Response {
        no_store(Json(self).into_response())
    }
}

impl From<TokenPair> for TokenOut {
    /// Also names the subject in the request span: login and refresh carry no bearer token,
    /// so the principal extractor cannot.
    fn from(pair: TokenPair) -> Self {
        Span::current().record("subject_id", tracing::field::display(pair.subject));
        Self {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: pair.refresh_token,
        }
    }
}

/// `GET /v1/auth/me`.
#[derive(Debug, Serialize)]
pub(crate) struct MeOut {
    user_id: String,
    tenant_id: String,
    email: String,
    name: Option<String>,
    email_verified: bool,
    roles: Vec<String>,
    permissions: Vec<String>,
    mfa: MfaOut,
    session_id: String,
    created_at: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct MfaOut {
    totp_enabled: bool,
    backup_codes_left: u32,
}

impl From<Me> for MeOut {
    fn from(me: Me) -> Self {
        Self {
            user_id: me.profile.id.to_string(),
            tenant_id: me.tenant.to_string(),
            email: me.profile.email,
            name: me.profile.name,
            email_verified: me.profile.email_verified,
            roles: me.grants.roles,
            permissions: me.grants.permissions,
            mfa: MfaOut {
                totp_enabled: me.mfa.totp_enabled,
                backup_codes_left: me.mfa.backup_codes_left,
            },
            session_id: me.session.to_string(),
            created_at: me
                .profile
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// `v1.auth.register`
pub(crate) async fn register(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<RegisterIn>,
) -> Result<(StatusCode, Json<RegisterOut>), ApiError> {
    let registration = Registration {
        email: body.email,
        password: body.password,
        name: body.name,
    };
    let user = state
        .accounts
        .register(&tenant, &context, registration)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterOut {
            user_id: user.to_string(),
        }),
    ))
}

/// `v1.auth.login`: a token response, or `{mfa_required, mfa_token}` when a second factor
/// is due.
pub(crate) async fn login(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<LoginIn>,
) -> Result<Response, ApiError> {
    let outcome = state
        .accounts
        .login(&tenant, &context, &body.email, body.password)
        .await?;
    Ok(match outcome {
        LoginOutcome::Tokens(pair) => TokenOut::from(pair).into_response(),
        LoginOutcome::MfaRequired(pending) => {
            no_store(Json(MfaRequiredOut::from(pending)).into_response())
        }
    })
}

/// `v1.auth.refresh`
pub(crate) async fn refresh(
    State(state): State<AppState>,
    tenant: Tenant,
    context: RequestContext,
    JsonBody(body): JsonBody<RefreshIn>,
) -> Result<TokenOut, ApiError> {
    Ok(state
        .sessions
        .refresh(&tenant, &body.refresh_token, &context)
        .await?
        .into())
}

/// `v1.auth.logout`
pub(crate) async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    context: RequestContext,
    body: Option<JsonBody<LogoutIn>>,
) -> Result<StatusCode, ApiError> {
    let refresh_token = body.and_then(|JsonBody(body)| body.refresh_token);
    state
        .sessions
        .logout(&principal, refresh_token.as_ref(), &context)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `v1.auth.logout_all`
pub(crate) async fn logout_all(
    State(state): State<AppState>,
    principal: Principal,
    context: RequestContext,
) -> Result<StatusCode, ApiError> {
    state.sessions.logout_all(&principal, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `v1.auth.me`
pub(crate) async fn get_me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<MeOut>, ApiError> {
    Ok(Json(state.accounts.me(&principal).await?.into()))
}
