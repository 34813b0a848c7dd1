//! `GET /v1/audit-events?user_id=&type=&since=&until=&cursor=&limit=`: the tenant's security
//! events for holders of `audit:read`, newest first, cursor-paginated (design note 0005).

use axum::Json;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use chrono::{DateTime, Datelike as _, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::decimal;
use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::ids::UserId;
use crate::service::audit::{AUDIT_READ, AuditKind, AuditQuery, DEFAULT_PAGE, MAX_PAGE};
use crate::service::tokens::Principal;
use crate::store::AuditRecord;

/// A caller allowed to read the audit log: the permission is checked before anything else
/// of the request is looked at.
#[derive(Debug)]
pub(crate) struct AuditReader(Principal);

impl FromRequestParts<AppState> for AuditReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if !principal.claims.has_permission(AUDIT_READ) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "listing audit events requires the audit:read permission",
            ));
        }
        Ok(Self(principal))
    }
}

/// The query string, every value as text so each gets its own message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditEventsQuery {
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn invalid(detail: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, detail)
}

impl AuditEventsQuery {
    fn parse(raw: Option<&str>) -> Result<AuditQuery, ApiError> {
        let query: Self = match raw {
            Some(raw) => serde_urlencoded::from_str(raw).map_err(|_| {
                invalid("the query string is malformed or has an unknown parameter")
            })?,
            None => Self::default(),
        };
        let user = query
            .user_id
            .as_deref()
            .map(|text| UserId::parse(text).ok_or_else(|| invalid("`user_id` must be a usr_ id")))
            .transpose()?;
        let kind = query
            .kind
            .as_deref()
            .map(|text| AuditKind::from_name(text).ok_or_else(|| invalid(TYPE_INVALID)))
            .transpose()?;
        let since = time(query.since.as_deref(), SINCE_INVALID)?;
        let until = time(query.until.as_deref(), UNTIL_INVALID)?;
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err(invalid("`since` must not be after `until`"));
        }
        let before_id = query
            .cursor
            .as_deref()
            .map(|text| {
                decimal::<i64>(text)
                    .filter(|id| *id > 0)
                    .ok_or_else(|| invalid("`cursor` must be a next_cursor of this list"))
            })
            .transpose()?;
        let limit = match query.limit.as_deref() {
            None => DEFAULT_PAGE,
            Some(text) => decimal::<u16>(text)
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
                .ok_or_else(|| invalid("`limit` must be a whole number from 1 to 100"))?,
        };
        Ok(AuditQuery {
            user,
            kind,
            since,
            until,
            before_id,
            limit,
        })
    }
}

/// Keep in step with [`AuditKind::ALL`] (a test checks).
const TYPE_INVALID: &str = "`type` must be one of register, login, lockout, mfa_enrolled, \
     mfa_disabled, mfa_verify, backup_codes_regenerated, backup_code_used, password_changed, \
     password_reset, email_verified, refresh_token_reused, logout, logout_all";

const SINCE_INVALID: &str = "`since` must be an RFC 3339 time in the years 0000 to 9999 (UTC)";
const UNTIL_INVALID: &str = "`until` must be an RFC 3339 time in the years 0000 to 9999 (UTC)";

/// An RFC 3339 time whose UTC year has four digits. An offset can push a valid time into
/// year 10000 or -1, and SQLite compares times as text, where `+10000-…` sorts before every
/// stored event: the same query would list nothing (`until`) or everything (`since`) there,
/// and the opposite on PostgreSQL.
fn time(text: Option<&str>, detail: &'static str) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| time.with_timezone(&Utc))
            .filter(|time| (0..=9999).contains(&time.year()))
            .ok_or_else(|| invalid(detail))
    })
    .transpose()
}

#[derive(Debug, Serialize)]
pub(crate) struct AuditEventOut {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    outcome: String,
    user_id: Option<String>,
    ip: String,
    user_agent: Option<String>,
    detail: Value,
    created_at: String,
}

impl From<AuditRecord> for AuditEventOut {
    fn from(record: AuditRecord) -> Self {
        Self {
            id: record.id.to_string(),
            kind: record.kind,
            outcome: record.outcome,
            user_id: record.user.map(|user| user.to_string()),
            ip: record.ip,
            user_agent: record.user_agent,
            // Stored as a JSON object by `AuditLog::record`, checked by the migrations.
            detail: serde_json::from_str(&record.detail).unwrap_or(Value::Null),
            created_at: record
                .created_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct AuditEventsOut {
    events: Vec<AuditEventOut>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

/// `v1.audit_event.list`
pub(crate) async fn list_audit_events(
    State(state): State<AppState>,
    AuditReader(principal): AuditReader,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditEventsOut>, ApiError> {
    let query = AuditEventsQuery::parse(raw.as_deref())?;
    let page = state.audit.list(&principal, query).await?;
    Ok(Json(AuditEventsOut {
        events: page.events.into_iter().map(AuditEventOut::from).collect(),
        next_cursor: page.next_cursor.map(|cursor| cursor.to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<AuditQuery, ErrorCode> {
        AuditEventsQuery::parse(Some(raw)).map_err(|err| err.code())
    }

    #[test]
    fn the_type_message_names_every_kind() {
        for kind in AuditKind::ALL {
            assert!(TYPE_INVALID.contains(kind.as_str()), "{kind:?}");
        }
    }

    #[test]
    fn queries_are_parsed_strictly() {
        let query = parse(
            "user_id=usr_0192f1d2a3b47c8d9e0f1a2b3c4d5e6f&type=login&since=2026-01-01T00:00:00Z\
             &until=2026-01-02T00:00:00%2B01:00&cursor=42&limit=10",
        )
        .unwrap();
        assert_eq!(query.kind, Some(AuditKind::Login));
        assert_eq!(query.before_id, Some(42));
        assert_eq!(query.limit, 10);
        assert_eq!(
            query
                .until
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            "2026-01-01T23:00:00Z"
        );
        assert_eq!(AuditEventsQuery::parse(None).unwrap().limit, DEFAULT_PAGE);
        for bad in [
            "user_id=42",
            "type=Login",
            "since=yesterday",
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since=9999-12-31T23:59:59-01:00",
            "until=9999-12-31T23:59:59-01:00",
            "since=0000-01-01T00:00:00%2B01:00",
            "cursor=-1",
            "cursor=0",
            "cursor=%2B5",
            "limit=0",
            "limit=101",
            "colour=blue",
        ] {
            assert_eq!(parse(bad), Err(ErrorCode::InvalidRequest), "{bad}");
        }
    }
}
