//! `GET /healthz` (the process is up) and `GET /readyz` (its dependencies answer).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// How long one dependency may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub(crate) struct StatusOut {
    status: &'static str,
}

/// `health.live`
pub(crate) async fn get_health() -> Json<StatusOut> {
    Json(StatusOut { status: "ok" })
}

/// `health.ready`: 200 when the database (and Redis, when used) answer, else 503 naming those that
/// did not.
pub(crate) async fn get_readiness(
    State(state): State<AppState>,
) -> Result<Json<StatusOut>, ApiError> {
    let mut down = Vec::new();
    for probe in &state.probes {
        let answered = tokio::time::timeout(PROBE_TIMEOUT, probe.ping()).await;
        if !matches!(answered, Ok(Ok(()))) {
            down.push(probe.name());
        }
    }
    if down.is_empty() {
        return Ok(Json(StatusOut { status: "ready" }));
    }
    let detail = format!("not reachable: {}", down.join(", "));
    Err(ApiError::new(ErrorCode::ServiceUnavailable, detail))
}
