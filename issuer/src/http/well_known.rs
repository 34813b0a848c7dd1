//! `/.well-known/jwks.json` and `/.well-known/openid-configuration`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;
use crate::crypto::signing::PublicJwk;

/// Verifiers may cache the key set this long; a new key is announced before it signs.
const JWKS_CACHE: &str = "public, max-age=300";

#[derive(Debug, Serialize)]
pub(crate) struct JwksOut<'a> {
    keys: &'a [PublicJwk],
}

/// Authorization-server metadata in the style of RFC 8414.
#[derive(Debug, Serialize)]
pub(crate) struct MetadataOut {
    issuer: String,
    jwks_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: [&'static str; 1],
    /// Portcullis extension: the cursor-paged revocation feed (design note 0001).
    revocation_feed_endpoint: String,
}

/// `well_known.jwks`
pub(crate) async fn get_jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(JwksOut {
        keys: state.tokens.jwks(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_CACHE));
    response
}

/// `well_known.openid_configuration`
pub(crate) async fn get_openid_configuration(State(state): State<AppState>) -> Json<MetadataOut> {
    let issuer = state.tokens.issuer();
    Json(MetadataOut {
        issuer: issuer.to_owned(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        revocation_endpoint_auth_methods_supported: ["none"],
        revocation_feed_endpoint: format!("{issuer}/v1/revocations"),
    })
}
