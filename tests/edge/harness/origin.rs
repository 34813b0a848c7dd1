//! The origin behind the edge: answers every request with JSON of what it received and keeps a
//! log of every request whose head arrived, so a test can assert both what an allowed request
//! looked like after the edge (identity headers, stripping, path, body) and that a refused one
//! never arrived at all, not even partly. A path ending in `/redirect` is answered with a
//! 302 to a closed port instead, so a test can see whether the edge follows it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the origin saw it. Header names are lowercase (HTTP/1 names are
/// case-insensitive and the runtime lowercases them anyway).
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    /// `None` while the body is still arriving, or when it never completed.
    pub(crate) body_len: Option<usize>,
}

impl Seen {
    /// The values of header `name` (lowercase), in order.
    pub(crate) fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The single value of header `name`; panics when it appears more than once.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let values = self.header_values(name);
        assert!(values.len() <= 1, "{name} more than once: {self:?}");
        values.first().copied()
    }

    /// Every header whose name starts with `x-portcullis-`.
    pub(crate) fn identity_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(name, _)| name.starts_with("x-portcullis-"))
            .cloned()
            .collect()
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Where the origin's redirects point: a port nothing listens on, so following it fails.
pub(crate) const REDIRECT_TARGET: &str = "http://127.0.0.1:9/followed";

/// A running origin on 127.0.0.1 (port chosen by the system); stops when dropped.
#[derive(Debug)]
pub(crate) struct Origin {
    address: SocketAddr,
    log: Log,
    server: tokio::task::JoinHandle<()>,
}

impl Origin {
    pub(crate) async fn start() -> Origin {
        let log: Log = Arc::default();
        let app = Router::new().fallback(echo).with_state(Arc::clone(&log));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the origin");
        let address = listener.local_addr().expect("the origin's address");
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("edge test origin stopped: {error}");
            }
        });
        Origin {
            address,
            log,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`, the edge's `PORTCULLIS_ORIGIN_URL`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request that reached the origin so far, oldest first.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.log.lock().expect("origin log").clone()
    }

    /// How many requests reached the origin so far.
    pub(crate) fn count(&self) -> usize {
        self.log.lock().expect("origin log").len()
    }

    /// One line per request so far (method, path, query, identity headers), for failure
    /// messages that stay readable (and carry no tokens).
    pub(crate) fn summary(&self) -> String {
        let seen = self.seen();
        let lines: Vec<String> = seen
            .iter()
            .map(|seen| {
                let query = seen
                    .query
                    .as_deref()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                format!(
                    "{} {}{query} {:?}",
                    seen.method,
                    seen.path,
                    seen.identity_headers()
                )
            })
            .collect();
        format!(
            "{} request(s) reached the origin:\n  {}",
            seen.len(),
            lines.join("\n  ")
        )
    }

    /// The last request that reached the origin; panics when none did.
    pub(crate) fn last(&self) -> Seen {
        self.seen()
            .pop()
            .unwrap_or_else(|| panic!("no request reached the origin"))
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Logs the head at once (so a refused request that leaked even partly shows up), then reads
/// the body, and answers with everything it saw.
async fn echo(State(log): State<Log>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let seen = Seen {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body_len: None,
    };
    let index = {
        let mut log = log.lock().expect("origin log");
        log.push(seen.clone());
        log.len() - 1
    };

    let body_len = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .ok()
        .map(|bytes| bytes.len());
    if let Some(entry) = log.lock().expect("origin log").get_mut(index) {
        entry.body_len = body_len;
    }

    if seen.path.ends_with("/redirect") {
        return (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, REDIRECT_TARGET)],
        )
            .into_response();
    }

    let headers: Vec<Value> = seen
        .headers
        .iter()
        .map(|(name, value)| json!([name, value]))
        .collect();
    axum::Json(json!({
        "method": seen.method,
        "path": seen.path,
        "query": seen.query,
        "headers": headers,
        "body_len": body_len,
    }))
    .into_response()
}
