//! The authenticated caller as an extractor: a handler that names [`Principal`] in its
//! signature cannot run without a valid, unrevoked bearer token of the request's tenant.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tracing::Span;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::service::tokens::Principal;
use crate::store::Tenant;

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let tenant = Tenant::from_request_parts(parts, state).await?;
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated, "a bearer token is required")
        })?;
        let principal = state.tokens.authenticate(&tenant, token).await?;
        Span::current().record("subject_id", tracing::field::display(principal.user));
        Ok(principal)
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive, RFC 6750).
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(authorization: Option<&str>) -> Parts {
        let mut request = Request::builder();
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_tokens_are_found() {
        assert_eq!(
            bearer_token(&parts(Some("Bearer abc.def.ghi"))),
            Some("abc.def.ghi")
        );
        assert_eq!(bearer_token(&parts(Some("bearer  abc "))), Some("abc"));
        assert_eq!(bearer_token(&parts(Some("Basic dXNlcjpwdw=="))), None);
        assert_eq!(bearer_token(&parts(Some("Bearer "))), None);
        assert_eq!(bearer_token(&parts(Some("Bearer"))), None);
        assert_eq!(bearer_token(&parts(None)), None);
    }
}
