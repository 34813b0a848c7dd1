//! The HTTP surface: routes, middleware and the fallbacks that keep every answer a problem
//! document.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::routing::{delete, get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

mod extract;
mod health;
mod middleware;
mod oauth;
mod serve;
mod v1;
mod well_known;

pub(crate) use serve::serve;

/// Every route, behind the middleware stack described in [`middleware`].
pub(crate) fn router(state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        .layer(axum::middleware::from_fn(middleware::request_id))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::make_span)
                .on_request(())
                .on_response(middleware::on_response)
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn(middleware::log_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.request_timeout,
            middleware::timeout,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.body_limit_bytes,
            middleware::declared_body_limit,
        ))
        .layer(DefaultBodyLimit::max(state.body_limit_bytes));
    Router::new()
        .route("/v1/auth/register", post(v1::auth::register))
        .route("/v1/auth/login", post(v1::auth::login))
        .route("/v1/auth/refresh", post(v1::auth::refresh))
        .route("/v1/auth/logout", post(v1::auth::logout))
        .route("/v1/auth/logout-all", post(v1::auth::logout_all))
        .route("/v1/auth/me", get(v1::auth::get_me))
        .route("/v1/auth/mfa/verify", post(v1::mfa::verify_mfa))
        .route("/v1/auth/mfa/totp/enroll", post(v1::mfa::enroll_totp))
        .route("/v1/auth/mfa/totp/confirm", post(v1::mfa::confirm_totp))
        .route("/v1/auth/mfa/totp", delete(v1::mfa::delete_totp))
        .route(
            "/v1/auth/mfa/backup-codes/regenerate",
            post(v1::mfa::regenerate_backup_codes),
        )
        .route("/v1/auth/email/verify", post(v1::passwords::verify_email))
        .route(
            "/v1/auth/password/forgot",
            post(v1::passwords::forgot_password),
        )
        .route(
            "/v1/auth/password/reset",
            post(v1::passwords::reset_password),
        )
        .route(
            "/v1/auth/password/change",
            post(v1::passwords::change_password),
        )
        .route("/v1/revocations", get(v1::revocations::list_revocations))
        .route("/v1/audit-events", get(v1::audit_events::list_audit_events))
        .route("/.well-known/jwks.json", get(well_known::get_jwks))
        .route(
            "/.well-known/openid-configuration",
            get(well_known::get_openid_configuration),
        )
        .route("/oauth/introspect", post(oauth::introspect_token))
        .route("/oauth/revoke", post(oauth::revoke_token))
        .route("/healthz", get(health::get_health))
        .route("/readyz", get(health::get_readiness))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(layers)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}
