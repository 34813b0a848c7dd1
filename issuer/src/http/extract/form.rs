//! Form-encoded bodies (RFC 7662 and RFC 7009 endpoints) with the issuer's error mapping:
//! anything malformed is 400 `invalid_request`, an oversized body 413.

use axum::Form;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

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
        let Form(value) = Form::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}
