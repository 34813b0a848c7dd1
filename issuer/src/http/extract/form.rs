//! Form-encoded bodies (RFC 7662 and RFC 7009 endpoints) with the issuer's error mapping: a
//! body of another media type is 415, as on the JSON endpoints; anything malformed is 400
//! `invalid_request`, an oversized body 413.

use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// `application/x-www-form-urlencoded`, with optional parameters.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// An `application/x-www-form-urlencoded` body.
#[derive(Debug)]
pub(crate) struct FormBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for FormBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(request.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/x-www-form-urlencoded",
            ));
        }
        let Form(value) = Form::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}
