//! The request tenant as an extractor.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tracing::Span;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::store::Tenant;

/// Names the tenant explicitly when the `Host` is not a mapped domain.
const TENANT_HEADER: &str = "x-tenant-id";

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    /// Resolves once per request; later extractors (the principal) reuse the answer.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(tenant) = parts.extensions.get::<Tenant>() {
            return Ok(tenant.clone());
        }
        // HTTP/2 carries the host in the URI authority rather than a `Host` header.
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(|authority| authority.as_str()));
        // Two headers would leave the tenant to whichever one a proxy or framework reads.
        let mut named = parts.headers.get_all(TENANT_HEADER).iter();
        let requested = named.next();
        if named.next().is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "X-Tenant-ID must be sent at most once",
            ));
        }
        // A header that is not visible ASCII names no tenant (empty is never a slug).
        let requested = requested.map(|value| value.to_str().unwrap_or_default());
        let tenant = state.tenants.resolve(host, requested).await?;
        Span::current().record("tenant_id", tracing::field::display(tenant.id));
        parts.extensions.insert(tenant.clone());
        Ok(tenant)
    }
}
