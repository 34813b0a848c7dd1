//! `GET /v1/revocations`: the revocation feed for edges and SDKs (design note 0001).
//!
//! Public like an X.509 CRL: entries carry only random identifiers and times.

use axum::Json;
use axum::extract::{RawQuery, State};
use portcullis_core::revocation::RevocationEntry;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// Entries per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u16 = 500;
/// The largest page; larger requests are clamped.
const MAX_LIMIT: u16 = 1_000;

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
            Some(text) if is_decimal(text) => text
                .parse()
                .map_err(|_| invalid("`since` is out of range"))?,
            Some(_) => return Err(invalid("`since` must be a cursor (a decimal number)")),
        };
        let limit = match query.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) if is_decimal(text) => {
                let requested = text.parse::<u64>().unwrap_or(u64::MAX);
                u16::try_from(requested.min(u64::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT)
            }
            Some(_) => return Err(invalid("`limit` must be a positive number")),
        };
        if limit == 0 {
            return Err(invalid("`limit` must be at least 1"));
        }
        Ok((since, limit))
    }
}

fn is_decimal(text: &str) -> bool {
    !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit())
}

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
        assert_eq!(FeedQuery::parse(Some("limit=5000")).unwrap(), (0, 1_000));
        assert_eq!(
            FeedQuery::parse(Some("limit=99999999999999999999")).unwrap(),
            (0, 1_000)
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
