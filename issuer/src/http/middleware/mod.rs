//! Request middleware: request ids, the request span, error logging, timeouts and panics.
//!
//! Order, outermost first (see [`super::router`]): request id → sensitive-header marking →
//! trace span → error logging → timeout → panic catching → handler. Error logging sits inside
//! the span so its events carry the request's fields, and outside the timeout and panic
//! layers so it sees the errors they produce.

use std::any::Any;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Response, Version, header};
use axum::middleware::Next;
use axum::response::IntoResponse as _;
use tracing::field::Empty;
use tracing::{Span, debug, error, warn};

use crate::error::{ApiError, ErrorCode, FailureClass, InternalError};

/// The header a request id is taken from and echoed in.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// Longest client-supplied request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of one request, in the span and in the response.
#[derive(Clone, Debug)]
pub(crate) struct RequestId(String);

/// Takes the client's `x-request-id` if it is short and plain (so it cannot inject anything
/// into logs), or makes one; stores it for the span and echoes it in the response.
pub(crate) async fn request_id(mut request: Request, next: Next) -> Response<Body> {
    let supplied = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_plain_id(id))
        .map(str::to_owned);
    let id = supplied.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let header = HeaderValue::from_str(&id).ok();
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(header) = header {
        response.headers_mut().insert(REQUEST_ID, header);
    }
    response
}

fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The one span per request. `tenant_id`, `subject_id` and `key_id` start empty; the tenant
/// and principal extractors fill them in.
pub(crate) fn make_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map_or("", |id| id.0.as_str());
    tracing::info_span!(
        "request",
        http.method = %request.method(),
        http.route = route,
        http.status_code = Empty,
        latency_ms = Empty,
        request_id,
        tenant_id = Empty,
        subject_id = Empty,
        key_id = Empty,
    )
}

/// Records the outcome on the span and logs one line per request.
pub(crate) fn on_response(response: &Response<Body>, latency: Duration, span: &Span) {
    span.record("http.status_code", response.status().as_u16());
    span.record(
        "latency_ms",
        u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
    );
    tracing::info!("request finished");
}

/// Logs internal errors once, at error level, inside the request span; client errors only
/// at debug, since they are the client's business.
pub(crate) async fn log_errors(request: Request, next: Next) -> Response<Body> {
    let response = next.run(request).await;
    if let Some(internal) = response.extensions().get::<InternalError>() {
        error!(error = %internal, class = ?internal.class(), "request failed");
    } else if let Some(code) = response.extensions().get::<ErrorCode>() {
        debug!(code = %code, "request refused");
    }
    response
}

/// Answers 413 at once when the declared `Content-Length` is over the body limit, rather
/// than reading a body that will be refused anyway: a client announcing a huge body could
/// otherwise hold the connection until the request timeout. The connection is closed, since
/// the unread body would be taken for the next request.
pub(crate) async fn declared_body_limit(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        let mut response = ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is over the size limit",
        )
        .into_response();
        if request.version() <= Version::HTTP_11 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }
    next.run(request).await
}

/// Bounds how long a request may take (`http.request_timeout_secs`), reading its body
/// included: a client that sends its body too slowly gets 408 `request_timeout`, as does a
/// handler that runs too long. Over HTTP/1 the connection is then closed (RFC 9110 §15.5.9),
/// since the rest of a half-read body would otherwise be taken for the next request.
pub(crate) async fn timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let version = request.version();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            warn!("request timed out");
            let mut response =
                ApiError::new(ErrorCode::RequestTimeout, "the request took too long")
                    .into_response();
            if version <= Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

/// A panic becomes a bare 500 whose cause reaches the log through [`log_errors`].
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::internal(FailureClass::Fault, Panicked(message)).into_response()
}

#[derive(Debug, thiserror::Error)]
#[error("handler panicked: {0}")]
struct Panicked(String);

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::to_bytes;
    use axum::routing::post;
    use tower::ServiceExt as _;

    use super::*;

    /// A slow handler answers 408 and ends the connection; a body that arrives too slowly is
    /// covered end to end in `http::serve`.
    #[tokio::test]
    async fn slow_requests_answer_request_timeout() {
        let app = Router::new()
            .route("/slow", post(|| tokio::time::sleep(Duration::from_secs(5))))
            .route("/fast", post(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(50),
                timeout,
            ));
        let request = |path: &str, body: Body| axum::http::Request::post(path).body(body).unwrap();
        let response = app
            .clone()
            .oneshot(request("/slow", Body::empty()))
            .await
            .unwrap();
        assert_eq!(response.status(), 408);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "request_timeout");
        // HTTP/2 has no `Connection` header; the stream alone ends.
        let mut h2 = request("/slow", Body::empty());
        *h2.version_mut() = Version::HTTP_2;
        let response = app.clone().oneshot(h2).await.unwrap();
        assert_eq!(response.status(), 408);
        assert!(!response.headers().contains_key(header::CONNECTION));
        let response = app.oneshot(request("/fast", Body::empty())).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(is_plain_id("3f2a-abc_1.2:3"));
        assert!(!is_plain_id(""));
        assert!(!is_plain_id("a b"));
        assert!(!is_plain_id("line\nbreak"));
        assert!(!is_plain_id(&"a".repeat(129)));
    }
}
