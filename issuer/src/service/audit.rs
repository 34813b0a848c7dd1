//! The audit log (design note 0005, "Audit log"): one row per security event, with tenant,
//! user, client address, user agent, time and outcome, listed to holders of `audit:read`.
//!
//! Events are written right after the change they record, in their own statement; a write
//! that fails fails the request, so an event the client saw succeed is never missing from
//! the log. `detail` is a small JSON object and must never hold a secret: no password, code,
//! token or hash of one.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{instrument, warn};

use super::tokens::Principal;
use crate::clock::Clock;
use crate::error::{ApiError, ErrorCode};
use crate::ids::{TenantId, UserId};
use crate::store::{AuditFilter, AuditRecord, AuditStore, NewAuditEvent};

/// The permission `GET /v1/audit-events` requires.
pub(crate) const AUDIT_READ: &str = "audit:read";
/// Longest stored `detail`, in bytes of JSON (the migrations enforce it too).
const MAX_DETAIL_BYTES: usize = 2_048;

/// What happened. The wire names (`type` in the API) are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuditKind {
    Register,
    Login,
    Lockout,
    MfaEnrolled,
    MfaDisabled,
    MfaVerify,
    BackupCodesRegenerated,
    BackupCodeUsed,
    PasswordChanged,
    PasswordReset,
    EmailVerified,
    RefreshTokenReused,
    Logout,
    LogoutAll,
}

impl AuditKind {
    /// Every kind, in the order of design note 0005.
    pub(crate) const ALL: [Self; 14] = [
        Self::Register,
        Self::Login,
        Self::Lockout,
        Self::MfaEnrolled,
        Self::MfaDisabled,
        Self::MfaVerify,
        Self::BackupCodesRegenerated,
        Self::BackupCodeUsed,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::RefreshTokenReused,
        Self::Logout,
        Self::LogoutAll,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::Lockout => "lockout",
            Self::MfaEnrolled => "mfa_enrolled",
            Self::MfaDisabled => "mfa_disabled",
            Self::MfaVerify => "mfa_verify",
            Self::BackupCodesRegenerated => "backup_codes_regenerated",
            Self::BackupCodeUsed => "backup_code_used",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailVerified => "email_verified",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// How it ended: `refused` is an attempt turned away before any secret was checked (a
/// locked account).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuditOutcome {
    Success,
    Failure,
    Refused,
}

impl AuditOutcome {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Refused => "refused",
        }
    }
}

/// Where a request came from, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RequestContext {
    /// The client address (`http::extract::ClientIp`).
    pub(crate) ip: IpAddr,
    /// The `User-Agent`, printable and bounded (`http::extract::RequestContext`).
    pub(crate) user_agent: Option<String>,
}

/// One event to record.
#[derive(Debug)]
pub(crate) struct AuditEvent<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) user: Option<UserId>,
    pub(crate) kind: AuditKind,
    pub(crate) outcome: AuditOutcome,
    pub(crate) context: &'a RequestContext,
    /// A JSON object (or `Value::Null` for none); never a secret.
    pub(crate) detail: Value,
}

/// One page of `GET /v1/audit-events`.
#[derive(Debug)]
pub(crate) struct AuditPage {
    pub(crate) events: Vec<AuditRecord>,
    /// The cursor of the next (older) page, if there is one.
    pub(crate) next_cursor: Option<i64>,
}

/// Records and lists audit events.
#[derive(Debug)]
pub(crate) struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: Clock,
}

impl AuditLog {
    pub(crate) fn new(store: Arc<dyn AuditStore>, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Records `event` now.
    ///
    /// # Errors
    ///
    /// An internal error when the store fails: the request fails with it.
    #[instrument(skip_all, name = "audit.record", fields(kind = event.kind.as_str()))]
    pub(crate) async fn record(&self, event: AuditEvent<'_>) -> Result<(), ApiError> {
        let record = NewAuditEvent {
            tenant: event.tenant,
            user: event.user,
            kind: event.kind.as_str(),
            outcome: event.outcome.as_str(),
            ip: event.context.ip.to_string(),
            user_agent: event.context.user_agent.clone(),
            detail: detail_json(event.kind, event.detail),
            created_at: self.clock.now(),
        };
        Ok(self.store.record(&record).await?)
    }

    /// A page of the caller's tenant's events, newest first.
    ///
    /// # Errors
    ///
    /// `forbidden` without `audit:read`; an internal error when the store fails.
    #[instrument(skip_all, name = "audit.list")]
    pub(crate) async fn list(
        &self,
        principal: &Principal,
        query: AuditQuery,
    ) -> Result<AuditPage, ApiError> {
        if !principal.claims.has_permission(AUDIT_READ) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "listing audit events requires the audit:read permission",
            ));
        }
        let filter = AuditFilter {
            tenant: principal.tenant.id,
            user: query.user,
            kind: query.kind.map(AuditKind::as_str),
            since: query.since,
            until: query.until,
            before_id: query.before_id,
            // One more than asked for tells whether another page follows.
            limit: query.limit.saturating_add(1),
        };
        let mut events = self.store.list(&filter).await?;
        let more = events.len() > usize::from(query.limit);
        events.truncate(usize::from(query.limit));
        let next_cursor = more.then(|| events.last().map(|event| event.id)).flatten();
        Ok(AuditPage {
            events,
            next_cursor,
        })
    }
}

/// A validated `GET /v1/audit-events` query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AuditQuery {
    pub(crate) user: Option<UserId>,
    pub(crate) kind: Option<AuditKind>,
    /// Events at or after this time.
    pub(crate) since: Option<DateTime<Utc>>,
    /// Events before this time.
    pub(crate) until: Option<DateTime<Utc>>,
    /// The cursor: events older than this one.
    pub(crate) before_id: Option<i64>,
    /// 1 to [`MAX_PAGE`].
    pub(crate) limit: u16,
}

/// The largest page.
pub(crate) const MAX_PAGE: u16 = 100;
/// The page size without `limit`.
pub(crate) const DEFAULT_PAGE: u16 = 50;

/// The stored form of `detail`: a JSON object of at most [`MAX_DETAIL_BYTES`]. Anything else
/// is a bug in the caller, logged and replaced, since losing a detail beats losing the event.
fn detail_json(kind: AuditKind, detail: Value) -> String {
    let detail = match detail {
        Value::Null => return "{}".to_owned(),
        Value::Object(map) => Value::Object(map),
        _ => {
            warn!(
                kind = kind.as_str(),
                "audit detail is not a JSON object; dropped"
            );
            return "{}".to_owned();
        }
    };
    let text = detail.to_string();
    if text.len() > MAX_DETAIL_BYTES {
        warn!(
            kind = kind.as_str(),
            bytes = text.len(),
            "audit detail too large; dropped"
        );
        return r#"{"truncated":true}"#.to_owned();
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_have_stable_unique_names() {
        let names: Vec<_> = AuditKind::ALL.iter().map(|kind| kind.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::from_name("Login"), None);
    }

    #[test]
    fn details_are_small_objects() {
        assert_eq!(detail_json(AuditKind::Login, Value::Null), "{}");
        assert_eq!(detail_json(AuditKind::Login, json!(["x"])), "{}");
        assert_eq!(
            detail_json(AuditKind::Lockout, json!({"failures": 10})),
            r#"{"failures":10}"#
        );
        let huge = json!({"x": "y".repeat(MAX_DETAIL_BYTES)});
        assert_eq!(detail_json(AuditKind::Login, huge), r#"{"truncated":true}"#);
    }
}
