//! One span per request with route, status, latency, tenant and subject (0002, "Logs"): the
//! fields an operator filters on to follow one user or one tenant through the log.

use serde_json::Value;

use crate::support::{DEFAULT_TENANT_ID, Issuer, Options};

/// The `request finished` events of a JSON log, as their request spans.
fn finished_requests(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["fields"]["message"] == "request finished")
        .map(|event| event["span"].clone())
        .collect()
}

/// Login and refresh carry no bearer token, yet their spans name the subject they served,
/// as `me` does through its bearer token.
#[tokio::test]
async fn request_spans_name_route_status_latency_tenant_and_subject() {
    let options = Options::new().env("PORTCULLIS_LOG_FORMAT", "json");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let alice = issuer.signup().await;
    let refreshed = issuer.refresh_ok(&alice.tokens.refresh_token).await;
    assert_eq!(issuer.me(&refreshed.access_token).await.status, 200);
    let (_, log) = issuer.stop_and_read_stderr().await;

    let spans = finished_requests(&log);
    for route in ["/v1/auth/login", "/v1/auth/refresh", "/v1/auth/me"] {
        let span = spans
            .iter()
            .find(|span| span["http.route"] == route)
            .unwrap_or_else(|| panic!("no finished request for {route} in:\n{log}"));
        assert_eq!(span["http.status_code"], 200, "{route}: {span}");
        assert!(span["latency_ms"].is_u64(), "{route}: {span}");
        assert_eq!(span["tenant_id"], DEFAULT_TENANT_ID, "{route}: {span}");
        assert_eq!(
            span["subject_id"],
            alice.user_id.as_str(),
            "{route}: {span}"
        );
    }
}
