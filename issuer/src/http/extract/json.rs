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

/// An optional JSON body: a request without `Content-Type` and without a body has none.
impl<T, S> OptionalFromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            if !is_json(request.headers()) {
                return Err(unsupported());
            }
            return parse(request, state).await.map(|value| Some(Self(value)));
        }
        let bytes = Bytes::from_request(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            Err(unsupported())
        }
    }
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
