//! The authenticated caller as an extractor: a handler that names [`Principal`] in its
//! signature cannot run without a valid, unrevoked bearer token of the request's tenant.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
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
        let token = bearer_token(parts)?.ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthenticated, "a bearer token is required")
        })?;
        let principal = state.tokens.authenticate(&tenant, token).await?;
        Span::current().record("subject_id", tracing::field::display(principal.user));
        Ok(principal)
    }
}

/// No `Authorization` header: no principal (for routes that also take another credential).
/// A header that is present must authenticate like a required one.
impl OptionalFromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <Self as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive, RFC 6750).
///
/// Two `Authorization` headers are refused rather than resolved: a proxy, a cache and the
/// issuer could each pick a different one, and a request should not authenticate as one
/// principal on the way in and another here.
fn bearer_token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "exactly one Authorization header is allowed",
        ));
    }
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.trim().split_once(' ')) else {
        return Ok(None);
    };
    let token = token.trim();
    Ok((scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token))
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(authorization: &[&str]) -> Parts {
        let mut request = Request::builder();
        for value in authorization {
            request = request.header(header::AUTHORIZATION, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn token(authorization: &[&str]) -> Option<String> {
        bearer_token(&parts(authorization))
            .unwrap()
            .map(str::to_owned)
    }

    #[test]
    fn bearer_tokens_are_found() {
        assert_eq!(
            token(&["Bearer abc.def.ghi"]).as_deref(),
            Some("abc.def.ghi")
        );
        assert_eq!(token(&["bearer  abc "]).as_deref(), Some("abc"));
        assert_eq!(token(&["Basic dXNlcjpwdw=="]), None);
        assert_eq!(token(&["Bearer "]), None);
        assert_eq!(token(&["Bearer"]), None);
        assert_eq!(token(&[]), None);
    }

    #[test]
    fn two_authorization_headers_are_an_invalid_request() {
        for pair in [
            ["Bearer a.b.c", "Bearer d.e.f"],
            ["Bearer a.b.c", "Bearer a.b.c"],
            ["Basic dXNlcjpwdw==", "Bearer a.b.c"],
        ] {
            let err = bearer_token(&parts(&pair)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{pair:?}");
        }
    }
}
