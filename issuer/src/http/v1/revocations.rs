//! `GET /v1/revocations`: the revocation feed for edges and SDKs (design note 0001).
//!
//! Public like an X.509 CRL: entries carry only random identifiers and times.

use axum::Json;
use axum::extract::{RawQuery, State};
use portcullis_core::revocation::RevocationEntry;
use serde::{Deserialize, Serialize};

use super::decimal;
use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// Entries per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u16 = 500;
/// The largest page. A larger `limit` is refused rather than silently lowered, so a client
/// never mistakes a short page for the end of its request.
const MAX_LIMIT: u16 = 1_000;
/// The one answer to any unusable `since`: clients should only echo `next_cursor`.
const SINCE_INVALID: &str = "`since` must be a cursor returned by this feed";

/// `?since=CURSOR&limit=N`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedQuery {
    since: Option<String>,
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FeedOut {
    entries: Vec<RevocationEntry>,
    next_cursor: String,
    has_more: bool,
}

fn invalid(detail: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, detail)
}

impl FeedQuery {
    fn parse(raw: Option<&str>) -> Result<(i64, u16), ApiError> {
        let query: Self = match raw {
            Some(raw) => serde_urlencoded::from_str(raw)
                .map_err(|_| invalid("the query string is malformed"))?,
            None => Self::default(),
        };
        let since = match query.since.as_deref() {
            None => 0,
            Some(text) => decimal::<i64>(text).ok_or_else(|| invalid(SINCE_INVALID))?,
        };
        let limit = match query.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => decimal::<u16>(text)
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| invalid(LIMIT_INVALID))?,
        };
        Ok((since, limit))
    }
}

/// Keep in step with [`MAX_LIMIT`] (a test checks).
const LIMIT_INVALID: &str = "`limit` must be a whole number from 1 to 1000";

/// `v1.revocation.list`
pub(crate) async fn list_revocations(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<FeedOut>, ApiError> {
    let (since, limit) = FeedQuery::parse(raw.as_deref())?;
    let page = state.revocations.feed(since, limit).await?;
    Ok(Json(FeedOut {
        entries: page.entries,
        next_cursor: page.next_cursor.to_string(),
        has_more: page.has_more,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_defaults_and_limits() {
        assert_eq!(FeedQuery::parse(None).unwrap(), (0, 500));
        assert_eq!(FeedQuery::parse(Some("since=42")).unwrap(), (42, 500));
        assert_eq!(
            FeedQuery::parse(Some("since=42&limit=10")).unwrap(),
            (42, 10)
        );
        assert_eq!(FeedQuery::parse(Some("limit=1")).unwrap(), (0, 1));
        assert_eq!(FeedQuery::parse(Some("limit=1000")).unwrap(), (0, 1_000));
        assert_eq!(FeedQuery::parse(Some("limit=0500")).unwrap(), (0, 500));
        assert!(LIMIT_INVALID.contains(&MAX_LIMIT.to_string()));
    }

    async fn detail(query: &str) -> String {
        let err = FeedQuery::parse(Some(query)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{query}");
        let response = axum::response::IntoResponse::into_response(err);
        assert_eq!(response.status(), 400);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        body["detail"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn limits_outside_1_to_1000_are_refused() {
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=5000",
            "limit=65536",
            "limit=99999999999999999999",
            "limit=+5",
            "limit=-1",
            "limit=",
            "limit=1.5",
        ] {
            assert_eq!(detail(bad).await, LIMIT_INVALID, "{bad}");
        }
    }

    #[tokio::test]
    async fn every_unusable_since_gets_the_same_answer() {
        for bad in [
            "since=abc",
            "since=-1",
            "since=",
            "since=+1",
            "since=99999999999999999999",
            "since=9223372036854775808",
            "since=1e3",
        ] {
            assert_eq!(detail(bad).await, SINCE_INVALID, "{bad}");
        }
        assert_eq!(
            FeedQuery::parse(Some("since=9223372036854775807"))
                .unwrap()
                .0,
            i64::MAX
        );
    }

    #[test]
    fn malformed_queries_are_invalid_requests() {
        for bad in [
            "since=abc",
            "since=-1",
            "since=",
            "limit=0",
            "limit=-5",
            "limit=x",
            "foo=1",
            "since=1&since=2",
            "since=99999999999999999999",
        ] {
            let err = FeedQuery::parse(Some(bad)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRequest, "{bad}");
        }
    }
}
