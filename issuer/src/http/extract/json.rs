//! JSON request bodies with the issuer's error mapping.
//!
//! Like `axum::Json`, but every failure is an [`ApiError`]: no `Content-Type` → 415, over the
//! body limit → 413, broken JSON → 400 `malformed_json`, JSON of the wrong shape → 422
//! `validation_failed` naming the field. Request structs use `deny_unknown_fields`, so a typo
//! in a field name is an error rather than a silently ignored value.

use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{ApiError, ErrorCode, FieldError, json_error};

/// A JSON body, required.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// `application/json`, or any `application/*+json`, with optional parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn unsupported() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "expected Content-Type: application/json",
    )
}

async fn parse<T, S>(request: Request, state: &S) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    let bytes = Bytes::from_request(request, state).await?;
    decode(&bytes)
}

/// Deserializes a JSON object.
///
/// Syntax is checked over the whole body first, so a body that is not JSON is always 400
/// `malformed_json`, even when a field early on also has the wrong type. serde would also fill
/// a struct from an array, by position; request bodies are objects, so anything else is the
/// wrong shape.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if serde_json::from_slice::<IgnoredAny>(bytes).is_err() {
        return Err(ApiError::new(
            ErrorCode::MalformedJson,
            "the request body is not valid JSON",
        ));
    }
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation(vec![FieldError {
            field: "body".to_owned(),
            code: "invalid_type",
            message: "must be a JSON object".to_owned(),
        }]));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| json_error(&err))
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(unsupported());
        }
        parse(request, state).await.map(Self)
    }
}

/// An optional JSON body. An empty body (or only whitespace) is none, whatever the
/// `Content-Type`: many HTTP clients send `Content-Type: application/json` on every request,
/// body or not. A body that is present is held to the rules of [`JsonBody`].
impl<T, S> OptionalFromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let json = is_json(request.headers());
        let bytes = Bytes::from_request(request, state).await?;
        optional(json, &bytes)
    }
}

fn optional<T: DeserializeOwned>(
    json: bool,
    bytes: &[u8],
) -> Result<Option<JsonBody<T>>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !json {
        return Err(unsupported());
    }
    decode(bytes).map(|value| Some(JsonBody(value)))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Pair {
        a: String,
        b: String,
    }

    #[test]
    fn only_objects_are_accepted() {
        assert!(decode::<Pair>(br#" {"a":"x","b":"y"} "#).is_ok());
        let err = decode::<Pair>(br#"["x","y"]"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed);
        assert_eq!(
            decode::<Pair>(br#"{"a":"x","b":"y"} {}"#)
                .unwrap_err()
                .code(),
            ErrorCode::MalformedJson
        );
        assert_eq!(
            decode::<Pair>(b"").unwrap_err().code(),
            ErrorCode::MalformedJson
        );
        // Broken JSON is malformed even where a field also has the wrong type.
        assert_eq!(
            decode::<Pair>(br#"{"a":1,"#).unwrap_err().code(),
            ErrorCode::MalformedJson
        );
        assert_eq!(
            decode::<Pair>(br#"{"c":1}}"#).unwrap_err().code(),
            ErrorCode::MalformedJson
        );
        assert_eq!(
            decode::<Pair>(br#"{"c":1}"#).unwrap_err().code(),
            ErrorCode::ValidationFailed
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "only deserialized")]
    struct Maybe {
        #[serde(default)]
        a: Option<String>,
    }

    async fn extract(content_type: Option<&str>, body: &str) -> Result<Option<Maybe>, ErrorCode> {
        let mut request = Request::builder().method("POST").uri("/");
        if let Some(value) = content_type {
            request = request.header(header::CONTENT_TYPE, value);
        }
        let request = request
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        <JsonBody<Maybe> as OptionalFromRequest<()>>::from_request(request, &())
            .await
            .map(|body| body.map(|JsonBody(value)| value))
            .map_err(|err| err.code())
    }

    /// `POST /v1/auth/logout` takes an optional body.
    #[tokio::test]
    async fn an_empty_optional_body_is_none_whatever_its_content_type() {
        for content_type in [None, Some("application/json"), Some("text/plain")] {
            for body in ["", " \r\n"] {
                assert!(
                    extract(content_type, body).await.unwrap().is_none(),
                    "{content_type:?} {body:?}"
                );
            }
        }
        let some = extract(Some("application/json"), r#"{"a":"x"}"#).await;
        assert_eq!(some.unwrap().unwrap().a.as_deref(), Some("x"));
        assert!(
            extract(Some("application/json"), "{}")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_present_optional_body_must_be_a_json_object() {
        let cases = [
            (None, r#"{"a":"x"}"#, ErrorCode::UnsupportedMediaType),
            (
                Some("text/plain"),
                r#"{"a":"x"}"#,
                ErrorCode::UnsupportedMediaType,
            ),
            (Some("application/json"), "{", ErrorCode::MalformedJson),
            (
                Some("application/json"),
                r#"{"b":1}"#,
                ErrorCode::ValidationFailed,
            ),
            (Some("application/json"), "[]", ErrorCode::ValidationFailed),
            (
                Some("application/json"),
                "null",
                ErrorCode::ValidationFailed,
            ),
        ];
        for (content_type, body, code) in cases {
            assert_eq!(
                extract(content_type, body).await.unwrap_err(),
                code,
                "{body}"
            );
        }
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&headers("application/x-www-form-urlencoded")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
