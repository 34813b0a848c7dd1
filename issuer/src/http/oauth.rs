//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009).
//!
//! Both take form-encoded bodies. Unknown form parameters are ignored, as RFC 6749 section 3.2
//! requires of OAuth endpoints (clients routinely send `client_id`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::Claims;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::crypto::secret::SecretString;
use crate::error::ApiError;
use crate::http::extract::FormBody;
use crate::service::oauth::Introspection;
use crate::service::tokens::Principal;
use crate::store::Tenant;

/// The form of both endpoints: `token`, and a hint this issuer does not need (it tells the
/// two kinds apart by their shape).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    token: SecretString,
    #[serde(default, rename = "token_type_hint")]
    _hint: Option<String>,
}

/// An introspection answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum IntrospectionOut {
    Inactive {
        active: bool,
    },
    Access {
        active: bool,
        token_type: &'static str,
        #[serde(flatten)]
        claims: Box<Claims>,
    },
    Refresh {
        active: bool,
        iss: String,
        sub: String,
        tid: String,
        sid: String,
        iat: i64,
        exp: i64,
    },
}

impl IntoResponse for IntrospectionOut {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn introspection_out(
    state: &AppState,
    caller: &Principal,
    found: Introspection,
) -> IntrospectionOut {
    match found {
        Introspection::Inactive => IntrospectionOut::Inactive { active: false },
        Introspection::Access(claims) => IntrospectionOut::Access {
            active: true,
            token_type: "Bearer",
            claims,
        },
        Introspection::Refresh(status) => IntrospectionOut::Refresh {
            active: true,
            iss: state.tokens.issuer().to_owned(),
            sub: status.session.user.to_string(),
            tid: caller.tenant.id.to_string(),
            sid: status.session.id.to_string(),
            iat: status.created_at.timestamp(),
            exp: status.expires_at.timestamp(),
        },
    }
}

/// `oauth.introspect`
pub(crate) async fn introspect_token(
    State(state): State<AppState>,
    caller: Principal,
    FormBody(form): FormBody<TokenForm>,
) -> Result<IntrospectionOut, ApiError> {
    let found = state.oauth.introspect(&caller, &form.token).await?;
    Ok(introspection_out(&state, &caller, found))
}

/// `oauth.revoke`
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    tenant: Tenant,
    FormBody(form): FormBody<TokenForm>,
) -> Result<StatusCode, ApiError> {
    state.oauth.revoke(&tenant, &form.token).await?;
    Ok(StatusCode::OK)
}
