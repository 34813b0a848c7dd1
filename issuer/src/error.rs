//! The one error type at the HTTP boundary, and every mapping into it.
//!
//! Each failure a client can see is an [`ApiError`] with a stable snake_case [`ErrorCode`],
//! rendered as an RFC 9457 `application/problem+json` document. The codes are public API:
//! [`CODES`] lists them, a test pins the list, and a retired code is never reused
//! (design note 0002).
//!
//! Rendering is pure. An internal failure travels in the response extensions as an
//! [`InternalError`]; the logging middleware inside the trace layer writes it once, at error
//! level, in the request's span. The client sees only a bare 500.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, FailedToBufferBody, FormRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use portcullis_core::TokenError;
use serde::Serialize;

use crate::crypto::password::PasswordError;
use crate::service::mail::MailError;
use crate::service::tokens::AuthError;
use crate::store::StoreError;

/// Every error code the issuer answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: a form or query parameter is missing or malformed.
    InvalidRequest,
    /// 422: JSON of the wrong shape, or a field fails a rule.
    ValidationFailed,
    /// 415: a JSON endpoint without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 401: no bearer token.
    Unauthenticated,
    /// 401: the bearer token fails validation.
    InvalidToken,
    /// 401: the bearer token has expired.
    TokenExpired,
    /// 401: the bearer token, its session or its subject was revoked.
    TokenRevoked,
    /// 401: wrong email or password.
    InvalidCredentials,
    /// 401: unknown, expired or revoked refresh token.
    InvalidRefreshToken,
    /// 401: a rotated refresh token was presented again; its family is revoked.
    RefreshTokenReused,
    /// 403: authenticated but lacking a permission.
    Forbidden,
    /// 404: unknown `X-Tenant-ID`.
    TenantNotFound,
    /// 404: no such route or resource.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 503: the password-hash queue is full.
    ServerBusy,
    /// 503: a dependency is down.
    ServiceUnavailable,
    /// 500: anything else.
    InternalError,
    /// 408: the request (reading its body, or the handler) ran past
    /// `http.request_timeout_secs`.
    RequestTimeout,
    /// 429: a rate limit was reached; `Retry-After` says when to try again.
    RateLimited,
    /// 423: the account is locked, or waiting out a graduated delay, after failed attempts;
    /// `Retry-After` and `locked_until` say when to try again.
    AccountLocked,
    /// 400: an email link's token is unknown, already used, expired or malformed.
    InvalidLinkToken,
    /// 401: a TOTP or backup code that is wrong, outside the time window or already used.
    InvalidMfaCode,
    /// 401: an `mfa_token` that is unknown, expired, already used or for another purpose.
    InvalidMfaToken,
    /// 409: TOTP is already confirmed for this account; remove it before enrolling again.
    MfaAlreadyEnabled,
    /// 409: the account has no TOTP enrolment (or none waiting for confirmation).
    MfaNotEnrolled,
    /// 401: the account must set up MFA before it can log in: enroll and confirm with the
    /// enrolment `mfa_token` of the login answer.
    MfaRequired,
}

/// Every code, in the order of design note 0002. Append only.
pub const CODES: &[ErrorCode] = &[
    ErrorCode::MalformedJson,
    ErrorCode::InvalidRequest,
    ErrorCode::ValidationFailed,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
    ErrorCode::Unauthenticated,
    ErrorCode::InvalidToken,
    ErrorCode::TokenExpired,
    ErrorCode::TokenRevoked,
    ErrorCode::InvalidCredentials,
    ErrorCode::InvalidRefreshToken,
    ErrorCode::RefreshTokenReused,
    ErrorCode::Forbidden,
    ErrorCode::TenantNotFound,
    ErrorCode::NotFound,
    ErrorCode::MethodNotAllowed,
    ErrorCode::ServerBusy,
    ErrorCode::ServiceUnavailable,
    ErrorCode::InternalError,
    ErrorCode::RequestTimeout,
    ErrorCode::RateLimited,
    ErrorCode::AccountLocked,
    ErrorCode::InvalidLinkToken,
    ErrorCode::InvalidMfaCode,
    ErrorCode::InvalidMfaToken,
    ErrorCode::MfaAlreadyEnabled,
    ErrorCode::MfaNotEnrolled,
    ErrorCode::MfaRequired,
];

impl ErrorCode {
    /// The wire code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::InvalidRequest => "invalid_request",
            Self::ValidationFailed => "validation_failed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::Forbidden => "forbidden",
            Self::TenantNotFound => "tenant_not_found",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::ServerBusy => "server_busy",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InternalError => "internal_error",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited => "rate_limited",
            Self::AccountLocked => "account_locked",
            Self::InvalidLinkToken => "invalid_link_token",
            Self::InvalidMfaCode => "invalid_mfa_code",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::MfaAlreadyEnabled => "mfa_already_enabled",
            Self::MfaNotEnrolled => "mfa_not_enrolled",
            Self::MfaRequired => "mfa_required",
        }
    }

    /// The HTTP status that goes with the code.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::InvalidRequest | Self::InvalidLinkToken => {
                StatusCode::BAD_REQUEST
            }
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthenticated
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::TokenRevoked
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::RefreshTokenReused
            | Self::InvalidMfaCode
            | Self::InvalidMfaToken
            | Self::MfaRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TenantNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ServerBusy | Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::AccountLocked => StatusCode::LOCKED,
            Self::MfaAlreadyEnabled | Self::MfaNotEnrolled => StatusCode::CONFLICT,
        }
    }

    /// A short human title, the same for every occurrence of the code.
    pub const fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "Malformed JSON",
            Self::InvalidRequest => "Invalid request",
            Self::ValidationFailed => "Validation failed",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::PayloadTooLarge => "Payload too large",
            Self::Unauthenticated => "Authentication required",
            Self::InvalidToken => "Invalid token",
            Self::TokenExpired => "Token expired",
            Self::TokenRevoked => "Token revoked",
            Self::InvalidCredentials => "Invalid credentials",
            Self::InvalidRefreshToken => "Invalid refresh token",
            Self::RefreshTokenReused => "Refresh token reused",
            Self::Forbidden => "Forbidden",
            Self::TenantNotFound => "Tenant not found",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::ServerBusy => "Server busy",
            Self::ServiceUnavailable => "Service unavailable",
            Self::InternalError => "Internal error",
            Self::RequestTimeout => "Request timeout",
            Self::RateLimited => "Too many requests",
            Self::AccountLocked => "Account locked",
            Self::InvalidLinkToken => "Invalid link token",
            Self::InvalidMfaCode => "Invalid MFA code",
            Self::InvalidMfaToken => "Invalid MFA token",
            Self::MfaAlreadyEnabled => "MFA already enabled",
            Self::MfaNotEnrolled => "MFA not enrolled",
            Self::MfaRequired => "MFA required",
        }
    }

    /// Seconds a client should wait before retrying, for the codes that carry a fixed
    /// `Retry-After` (`rate_limited` carries the limiter's own).
    const fn retry_after(self) -> Option<&'static str> {
        match self {
            Self::ServerBusy => Some("1"),
            Self::ServiceUnavailable => Some("5"),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failing field of a `validation_failed` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path in the request body, e.g. `email`.
    pub field: String,
    /// A stable snake_case reason, e.g. `invalid_email`, `too_short`, `unknown_field`.
    pub code: &'static str,
    /// A human sentence.
    pub message: String,
}

/// Whether an internal failure looks like an unreachable dependency or a fault in our code or
/// data. An unreachable dependency answers 503 `service_unavailable` with `Retry-After` (the
/// same request may work in a moment, and load balancers and clients retry a 503), a fault
/// 500; neither says more, and both are logged with their cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// A dependency could not be reached or answered too late.
    Unavailable,
    /// A bug, corrupt data or a misconfiguration.
    Fault,
}

/// An internal failure, carried to the logging middleware in the response extensions.
#[derive(Clone, Debug)]
pub struct InternalError {
    source: Arc<dyn std::error::Error + Send + Sync>,
    class: FailureClass,
}

impl InternalError {
    /// The class of the failure.
    pub fn class(&self) -> FailureClass {
        self.class
    }
}

impl fmt::Display for InternalError {
    /// The error and its whole source chain on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        let mut next = self.source.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    /// A bearer token was presented (and refused): `WWW-Authenticate` says `invalid_token`.
    token_presented: bool,
    /// `Retry-After` in seconds, when it is known per answer rather than per code.
    retry_after_secs: Option<u64>,
    /// `account_locked`: when the account may be tried again (RFC 3339, UTC).
    locked_until: Option<String>,
    internal: Option<InternalError>,
}

impl ApiError {
    /// An error with a human detail for the client.
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            token_presented: false,
            retry_after_secs: None,
            locked_until: None,
            internal: None,
        }
    }

    /// A 429: a rate limit was reached, with room again after `wait` (rounded up to whole
    /// seconds, at least one).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs(wait)),
            ..Self::new(
                ErrorCode::RateLimited,
                "too many requests; retry after the time in the Retry-After header",
            )
        }
    }

    /// A 423: the account may not be tried before `until` (`now` is the time of the
    /// decision). The wording speaks only of "this account": the same answer comes for an
    /// address that has no account.
    pub fn account_locked(until: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let wait = (until - now).to_std().unwrap_or_default();
        // Whole seconds, rounded up like `Retry-After`, so a client never retries too early.
        let shown = DateTime::from_timestamp(
            until
                .timestamp()
                .saturating_add(i64::from(until.timestamp_subsec_nanos() > 0)),
            0,
        )
        .unwrap_or(until);
        Self {
            retry_after_secs: Some(retry_after_secs(wait)),
            locked_until: Some(shown.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ..Self::new(
                ErrorCode::AccountLocked,
                "this account is temporarily locked after failed attempts; retry after the time \
                 in the Retry-After header",
            )
        }
    }

    /// A 500 (a fault) or a 503 (an unreachable dependency) whose cause is logged and never
    /// shown.
    pub fn internal<E>(class: FailureClass, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut error = match class {
            FailureClass::Fault => Self::new(ErrorCode::InternalError, INTERNAL_DETAIL),
            FailureClass::Unavailable => {
                Self::new(ErrorCode::ServiceUnavailable, UNAVAILABLE_DETAIL)
            }
        };
        error.internal = Some(InternalError {
            source: Arc::new(source),
            class,
        });
        error
    }

    /// A 422 listing the failing fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            _ => "several fields are invalid".to_owned(),
        };
        Self {
            errors,
            ..Self::new(ErrorCode::ValidationFailed, detail)
        }
    }

    /// Marks that a bearer token was presented, for `WWW-Authenticate`.
    #[must_use]
    pub fn with_token_presented(mut self) -> Self {
        self.token_presented = true;
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    fn body(&self) -> ProblemBody<'_> {
        ProblemBody {
            problem_type: format!("urn:portcullis:problem:{}", self.code),
            title: self.code.title(),
            status: self.code.status().as_u16(),
            detail: &self.detail,
            code: self.code.as_str(),
            errors: &self.errors,
            locked_until: self.locked_until.as_deref(),
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least one.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

/// The detail of every 500: the cause is in the log, under the request id the response
/// carries, and never in the response.
const INTERNAL_DETAIL: &str =
    "the server failed to answer; quote the x-request-id response header when reporting it";

/// The detail of a 503 for an unreachable dependency; which one is in the log only.
const UNAVAILABLE_DETAIL: &str =
    "a service this request needs is unreachable; retry after the time in the Retry-After header";

/// The RFC 9457 document.
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    /// An extension member (RFC 9457 section 3.2) of `account_locked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_until: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        // Serializing strings and numbers cannot fail; an empty body is the safe fallback.
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            let challenge = if self.token_presented {
                r#"Bearer error="invalid_token""#
            } else {
                "Bearer"
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        } else if let Some(seconds) = self.code.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response.extensions_mut().insert(self.code);
        if let Some(internal) = self.internal {
            response.extensions_mut().insert(internal);
        }
        response
    }
}

/// Classifies a database error. Every variant is listed so that a new one in an sqlx upgrade is
/// a decision, not a silent default.
pub(crate) fn classify_sqlx(err: &sqlx::Error) -> FailureClass {
    use sqlx::Error as E;
    match err {
        E::Io(_)
        | E::Tls(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::BeginFailed => FailureClass::Unavailable,
        E::Configuration(_)
        | E::InvalidArgument(_)
        | E::Database(_)
        | E::Protocol(_)
        | E::RowNotFound
        | E::TypeNotFound { .. }
        | E::ColumnIndexOutOfBounds { .. }
        | E::ColumnNotFound(_)
        | E::ColumnDecode { .. }
        | E::Encode(_)
        | E::Decode(_)
        | E::AnyDriverError(_)
        | E::Migrate(_)
        | E::InvalidSavePointStatement => FailureClass::Fault,
        // `sqlx::Error` is `#[non_exhaustive]`; variants added later are faults until reviewed.
        _ => FailureClass::Fault,
    }
}

/// Classifies a Redis error, listing every kind for the same reason as [`classify_sqlx`].
pub(crate) fn classify_redis(err: &redis::RedisError) -> FailureClass {
    use redis::ErrorKind as K;
    if err.is_timeout() || err.is_connection_dropped() || err.is_connection_refusal() {
        return FailureClass::Unavailable;
    }
    match err.kind() {
        K::Io | K::ClusterConnectionNotFound | K::MasterNameNotFoundBySentinel => {
            FailureClass::Unavailable
        }
        K::Parse
        | K::AuthenticationFailed
        | K::UnexpectedReturnType
        | K::InvalidClientConfig
        | K::Client
        | K::Extension
        | K::NoValidReplicasFoundBySentinel
        | K::EmptySentinelList
        | K::Server(_)
        | K::RESP3NotSupported => FailureClass::Fault,
        // `redis::ErrorKind` is `#[non_exhaustive]`; new kinds are faults until reviewed.
        _ => FailureClass::Fault,
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        let class = match &err {
            StoreError::Database(err) => classify_sqlx(err),
            StoreError::Redis(err) => classify_redis(err),
            StoreError::Corrupt(_) => FailureClass::Fault,
        };
        Self::internal(class, err)
    }
}

impl From<MailError> for ApiError {
    fn from(err: MailError) -> Self {
        match err {
            MailError::Store(err) => err.into(),
            MailError::Template(_) => Self::internal(FailureClass::Fault, err),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(err: PasswordError) -> Self {
        match err {
            PasswordError::Busy => Self::new(
                ErrorCode::ServerBusy,
                "too many password checks are running; retry shortly",
            ),
            PasswordError::Internal(_) => Self::internal(FailureClass::Fault, err),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        let error = match err {
            TokenError::Expired => {
                Self::new(ErrorCode::TokenExpired, "the access token has expired")
            }
            TokenError::Revoked => {
                Self::new(ErrorCode::TokenRevoked, "the access token was revoked")
            }
            // The detail is the shared core code, which edges and SDKs answer with too.
            other => Self::new(ErrorCode::InvalidToken, other.code()),
        };
        error.with_token_presented()
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Token(err) => err.into(),
            AuthError::Store(err) => err.into(),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                Self::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is over the size limit",
                )
            }
            _ => Self::new(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            ),
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::BytesRejection(rejection) => rejection.into(),
            FormRejection::InvalidFormContentType(_) => Self::new(
                ErrorCode::InvalidRequest,
                "expected Content-Type: application/x-www-form-urlencoded",
            ),
            _ => Self::new(
                ErrorCode::InvalidRequest,
                "the form parameters are malformed",
            ),
        }
    }
}

/// Maps a failed JSON deserialization: broken JSON is 400, JSON of the wrong shape is 422
/// with the offending field.
pub(crate) fn json_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    match err.inner().classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::MalformedJson,
            "the request body is not valid JSON",
        ),
        Category::Data => ApiError::validation(vec![shape_error(err)]),
    }
}

fn shape_error(err: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let full = err.inner().to_string();
    // serde_json appends " at line L column C", which says nothing useful to a client.
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(text, _)| text);
    let code = if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "missing_field"
    } else if message.starts_with("invalid type") {
        "invalid_type"
    } else {
        "invalid_value"
    };
    let path = err.path().to_string();
    // For unknown and missing fields the path is the enclosing object; the name is in quotes.
    let named = message
        .split('`')
        .nth(1)
        .filter(|_| matches!(code, "unknown_field" | "missing_field"));
    // The path ends at the offending field for an unknown field, at its parent for a
    // missing one.
    let field = match (path.as_str(), named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) if path != name && !path.ends_with(&format!(".{name}")) => {
            format!("{path}.{name}")
        }
        (path, _) => path.to_owned(),
    };
    FieldError {
        field,
        code,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use axum::body::to_bytes;
    use serde::Deserialize;

    use super::*;

    /// The public list of design note 0002. Changing it breaks clients: append only.
    #[test]
    fn codes_are_pinned() {
        let wire: Vec<_> = CODES.iter().map(|code| code.as_str()).collect();
        assert_eq!(
            wire,
            [
                "malformed_json",
                "invalid_request",
                "validation_failed",
                "unsupported_media_type",
                "payload_too_large",
                "unauthenticated",
                "invalid_token",
                "token_expired",
                "token_revoked",
                "invalid_credentials",
                "invalid_refresh_token",
                "refresh_token_reused",
                "forbidden",
                "tenant_not_found",
                "not_found",
                "method_not_allowed",
                "server_busy",
                "service_unavailable",
                "internal_error",
                "request_timeout",
                "rate_limited",
                "account_locked",
                "invalid_link_token",
                "invalid_mfa_code",
                "invalid_mfa_token",
                "mfa_already_enabled",
                "mfa_not_enrolled",
                "mfa_required",
            ]
        );
        let statuses: Vec<_> = CODES.iter().map(|code| code.status().as_u16()).collect();
        assert_eq!(
            statuses,
            [
                400, 400, 422, 415, 413, 401, 401, 401, 401, 401, 401, 401, 403, 404, 404, 405,
                503, 503, 500, 408, 429, 423, 400, 401, 401, 409, 409, 401
            ]
        );
        assert_eq!(
            wire.iter().collect::<HashSet<_>>().len(),
            CODES.len(),
            "duplicate code"
        );
    }

    /// Fails to compile when a variant is added without deciding where it goes in [`CODES`].
    #[test]
    fn every_variant_is_listed() {
        for code in CODES {
            match code {
                ErrorCode::MalformedJson
                | ErrorCode::InvalidRequest
                | ErrorCode::ValidationFailed
                | ErrorCode::UnsupportedMediaType
                | ErrorCode::PayloadTooLarge
                | ErrorCode::Unauthenticated
                | ErrorCode::InvalidToken
                | ErrorCode::TokenExpired
                | ErrorCode::TokenRevoked
                | ErrorCode::InvalidCredentials
                | ErrorCode::InvalidRefreshToken
                | ErrorCode::RefreshTokenReused
                | ErrorCode::Forbidden
                | ErrorCode::TenantNotFound
                | ErrorCode::NotFound
                | ErrorCode::MethodNotAllowed
                | ErrorCode::ServerBusy
                | ErrorCode::ServiceUnavailable
                | ErrorCode::InternalError
                | ErrorCode::RequestTimeout
                | ErrorCode::RateLimited
                | ErrorCode::AccountLocked
                | ErrorCode::InvalidLinkToken
                | ErrorCode::InvalidMfaCode
                | ErrorCode::InvalidMfaToken
                | ErrorCode::MfaAlreadyEnabled
                | ErrorCode::MfaNotEnrolled
                | ErrorCode::MfaRequired => {}
            }
        }
        assert_eq!(CODES.len(), 28);
    }

    async fn render(error: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        split(error.into_response()).await
    }

    async fn split(response: Response) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn rate_limited_says_when_to_retry_in_whole_seconds() {
        for (wait, expected) in [(1_500, "2"), (0, "1"), (60_000, "60")] {
            let error = ApiError::rate_limited(std::time::Duration::from_millis(wait));
            let (status, headers, body) = render(error).await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(headers[header::RETRY_AFTER], expected);
            assert_eq!(body["code"], "rate_limited");
        }
    }

    #[tokio::test]
    async fn account_locked_names_the_end_of_the_lock() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let until = DateTime::from_timestamp(1_767_226_500, 200_000_000).unwrap();
        let (status, headers, body) = render(ApiError::account_locked(until, now)).await;
        assert_eq!(status, StatusCode::LOCKED);
        assert_eq!(headers[header::RETRY_AFTER], "901");
        assert_eq!(body["code"], "account_locked");
        assert_eq!(body["locked_until"], "2026-01-01T00:15:01Z");
        assert!(!headers.contains_key(header::WWW_AUTHENTICATE));
    }

    #[tokio::test]
    async fn renders_rfc9457() {
        let (status, headers, body) = render(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong email or password",
        ))
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:portcullis:problem:invalid_credentials",
                "title": "Invalid credentials",
                "status": 401,
                "detail": "wrong email or password",
                "code": "invalid_credentials",
            })
        );
    }

    #[tokio::test]
    async fn presented_tokens_get_an_invalid_token_challenge() {
        let (_, headers, body) = render(TokenError::BadSignature.into()).await;
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(body["code"], "invalid_token");
        assert_eq!(body["detail"], "token_signature_invalid");
        let (_, _, body) = render(TokenError::Expired.into()).await;
        assert_eq!(body["code"], "token_expired");
        let (_, _, body) = render(TokenError::Revoked.into()).await;
        assert_eq!(body["code"], "token_revoked");
    }

    #[tokio::test]
    async fn internal_errors_say_nothing() {
        let cause = std::io::Error::other("row 7 holds a negative count");
        let response = ApiError::internal(FailureClass::Fault, cause).into_response();
        let logged = response
            .extensions()
            .get::<InternalError>()
            .unwrap()
            .to_string();
        assert!(logged.contains("row 7"));
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:portcullis:problem:internal_error",
                "title": "Internal error",
                "status": 500,
                "detail": INTERNAL_DETAIL,
                "code": "internal_error",
            })
        );
    }

    #[tokio::test]
    async fn an_unreachable_dependency_is_a_503_that_names_nothing() {
        let cause = std::io::Error::other("connection to 10.0.0.7 refused");
        let response = ApiError::internal(FailureClass::Unavailable, cause).into_response();
        let internal = response.extensions().get::<InternalError>().unwrap();
        assert_eq!(internal.class(), FailureClass::Unavailable);
        assert!(internal.to_string().contains("10.0.0.7"), "logged in full");
        let (status, headers, body) = split(response).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        assert_eq!(body["code"], "service_unavailable");
        assert_eq!(body["detail"], UNAVAILABLE_DETAIL);
    }

    #[tokio::test]
    async fn busy_and_unavailable_carry_retry_after() {
        let (status, headers, _) = render(PasswordError::Busy.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        let (_, headers, body) = render(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "postgres is down",
        ))
        .await;
        assert!(headers.contains_key(header::RETRY_AFTER));
        assert_eq!(body["code"], "service_unavailable");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Probe {
        email: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Inner {
        n: u8,
    }

    fn decode(json: &str) -> ApiError {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let err = serde_path_to_error::deserialize::<_, Probe>(&mut deserializer).unwrap_err();
        json_error(&err)
    }

    #[tokio::test]
    async fn json_errors_name_the_field() {
        assert_eq!(decode("{\"email\":").code(), ErrorCode::MalformedJson);
        assert_eq!(decode("not json").code(), ErrorCode::MalformedJson);
        let cases = [
            (r#"{"email":"a","extra":1}"#, "extra", "unknown_field"),
            (r#"{}"#, "email", "missing_field"),
            (r#"{"email":"a","inner":{}}"#, "inner.n", "missing_field"),
            (r#"{"email":5}"#, "email", "invalid_type"),
            (
                r#"{"email":"a","inner":{"n":300}}"#,
                "inner.n",
                "invalid_value",
            ),
            (
                r#"{"email":"a","inner":{"m":1}}"#,
                "inner.m",
                "unknown_field",
            ),
            (r#""text""#, "body", "invalid_type"),
        ];
        for (json, field, code) in cases {
            let (status, _, body) = render(decode(json)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
            assert_eq!(body["code"], "validation_failed");
            assert_eq!(body["errors"][0]["field"], field, "{json}");
            assert_eq!(body["errors"][0]["code"], code, "{json}");
            assert!(
                !body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("line"),
                "{json}"
            );
        }
    }
}
