//! One request through the edge: the runtime's side of the decision in `gate`, and the
//! forwarding of admitted requests to the origin.
//!
//! [`WorkerEffects`] is where the decision meets the runtime: the JS clock (`Date::now()`,
//! passed into the core as `now`), the body stream, the key cache with its JWKS fetches, the
//! revocation replica and the rate-limiting binding.

use std::time::Duration;

use portcullis_core::{Claims, TokenError};
use wasm_bindgen::JsValue;
use worker::{
    AbortController, ByteStream, Date, Env, Fetch, ObjectNamespace, Request, Response, Result, Url,
    console_log, console_warn, js_sys, web_sys,
};

use crate::config::Config;
use crate::error::{Problem, Refusal};
use crate::feed::{FeedError, SyncAnswer};
use crate::forward::is_forwarded;
use crate::gate::{self, Admitted, Effects, RevocationStatus};
use crate::http::{self, BodyError, CallError};
use crate::isolate::{self, Isolate};
use crate::rate_limit::Limiter;
use crate::replica;
use crate::request_rules::{Head, head_size};

/// The deadline for a JWKS fetch.
const JWKS_DEADLINE: Duration = Duration::from_secs(2);
/// The largest JWKS document accepted.
const JWKS_BYTES: u64 = 64 * 1024;
/// The deadline for a sync with the replica, which may poll the issuer before answering.
const SYNC_DEADLINE: Duration = Duration::from_secs(5);
/// The largest sync answer accepted (a full list of about 80,000 entries).
const SYNC_BYTES: u64 = 16 * 1024 * 1024;

/// The JS clock, in milliseconds since the epoch.
fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// Answers one request: the origin's response, or a problem document.
///
/// # Errors
///
/// Only if the runtime cannot build a response at all.
pub(crate) async fn handle(mut request: Request, env: &Env) -> Result<Response> {
    match respond(&mut request, env).await {
        Ok(response) => Ok(response),
        Err(refusal) => {
            let problem = refusal.problem();
            console_log!(
                "edge refused: status={} code={}",
                problem.status,
                problem.code
            );
            problem_response(&problem)
        }
    }
}

async fn respond(request: &mut Request, env: &Env) -> core::result::Result<Response, Refusal> {
    let isolate = isolate::get(env).map_err(|error| Refusal::Misconfigured(error.variable))?;
    let limiter = Limiter::from_env(env)?;
    let replica = env
        .durable_object(replica::BINDING)
        .map_err(|_| Refusal::Misconfigured(replica::BINDING))?;

    let url = request.url().map_err(|_| Refusal::Internal)?;
    let method = request.inner().method();
    let headers: Vec<(String, String)> = request.headers().entries().collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    let target = target(&url);
    let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let decision_input = gate::Request {
        head: Head {
            method: &method,
            path: url.path(),
            head_bytes: head_size(&method, &target, pairs),
            content_length: header("content-length"),
        },
        authorization: header("authorization"),
        client_ip: header("cf-connecting-ip"),
    };

    let mut effects = WorkerEffects {
        request,
        isolate: &isolate,
        limiter: &limiter,
        replica: &replica,
    };
    let admitted = gate::decide(&isolate.config, &decision_input, &mut effects).await?;
    let connection = header("connection");
    forward(
        &isolate.config,
        &method,
        &target,
        &headers,
        connection,
        admitted,
    )
    .await
}

/// The path and query of the request URL, as the rules saw them.
fn target(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Step 7: the same method, path, query and body to the origin, with the incoming
/// `X-Portcullis-*` and hop-by-hop headers removed and the identity headers set. Redirects
/// are returned to the client, never followed by the edge.
async fn forward(
    config: &Config,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    connection: Option<&str>,
    admitted: Admitted,
) -> core::result::Result<Response, Refusal> {
    let outgoing = web_sys::Headers::new().map_err(|_| Refusal::Internal)?;
    for (name, value) in headers {
        if is_forwarded(name, connection) {
            outgoing
                .append(name, value)
                .map_err(|_| Refusal::Internal)?;
        }
    }
    if let Some(identity) = &admitted.identity {
        for (name, value) in identity.headers() {
            outgoing.set(name, value).map_err(|_| Refusal::Internal)?;
        }
    }

    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(&JsValue::from(outgoing));
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let bodiless = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    if let Some(body) = admitted.body.filter(|_| !bodiless) {
        init.set_body(&js_sys::Uint8Array::from(body.as_slice()).into());
    }
    let url = format!("{}{target}", config.origin);
    let outgoing =
        web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| Refusal::Internal)?;

    let deadline = Duration::from_secs(config.origin_timeout_secs);
    let controller = AbortController::default();
    let signal = controller.signal();
    let sent = http::within(deadline, async {
        Fetch::Request(Request::from(outgoing))
            .send_with_signal(&signal)
            .await
            .map_err(|_| CallError::Unreachable)
    })
    .await;
    match sent {
        Ok(response) => Ok(response),
        Err(CallError::Timeout) => {
            // Abort, so the runtime does not keep waiting on the origin for nobody.
            controller.abort();
            console_warn!("edge: the origin did not answer in time");
            Err(Refusal::OriginTimeout {
                secs: config.origin_timeout_secs,
            })
        }
        Err(_) => {
            console_warn!("edge: the origin could not be reached");
            Err(Refusal::OriginUnavailable)
        }
    }
}

/// A problem document as a response, with the headers the contract requires.
///
/// # Errors
///
/// Only if the runtime refuses to build the response.
pub(crate) fn problem_response(problem: &Problem) -> Result<Response> {
    let mut response = Response::ok(problem.body())?.with_status(problem.status);
    let headers = response.headers_mut();
    headers.set("content-type", "application/problem+json")?;
    headers.set("cache-control", "no-store")?;
    if let Some(challenge) = problem.www_authenticate {
        headers.set("www-authenticate", challenge)?;
    }
    if let Some(seconds) = problem.retry_after_secs {
        headers.set("retry-after", &seconds.to_string())?;
    }
    Ok(response)
}

/// The runtime's implementation of the decision's effects, for one request.
struct WorkerEffects<'a> {
    request: &'a mut Request,
    isolate: &'a Isolate,
    limiter: &'a Limiter,
    replica: &'a ObjectNamespace,
}

impl Effects for WorkerEffects<'_> {
    async fn read_body(&mut self, limit: u64) -> core::result::Result<Option<Vec<u8>>, Refusal> {
        let Some(stream) = self.request.inner().body() else {
            return Ok(None);
        };
        match http::read_bounded(ByteStream::from(stream), limit).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(BodyError::TooLarge) => Err(Refusal::PayloadTooLarge),
            Err(BodyError::Unreadable) => Err(Refusal::InvalidRequest(
                "the request body could not be read",
            )),
        }
    }

    async fn verify(&mut self, token: &str) -> core::result::Result<Claims, Refusal> {
        let config = &self.isolate.config;
        let due = self
            .isolate
            .keys
            .borrow()
            .refresh_due(now_ms(), config.jwks_max_age_ms);
        if due {
            self.fetch_jwks().await;
        }
        let verifier = self.isolate.keys.borrow().verifier();
        let mut verified = verifier.verify(token, now_ms() / 1_000);
        if matches!(verified, Err(TokenError::UnknownKey))
            && self.isolate.keys.borrow().refetch_allowed(now_ms())
        {
            self.fetch_jwks().await;
            let verifier = self.isolate.keys.borrow().verifier();
            verified = verifier.verify(token, now_ms() / 1_000);
        }
        match verified {
            Ok(claims) => Ok(claims),
            Err(TokenError::UnknownKey) if !self.isolate.keys.borrow().jwks_loaded() => {
                Err(Refusal::KeysUnavailable)
            }
            Err(error) => Err(Refusal::Token(error)),
        }
    }

    async fn revocation_status(&mut self, claims: &Claims) -> RevocationStatus {
        let config = &self.isolate.config;
        let due = self
            .isolate
            .revocations
            .borrow()
            .needs_sync(now_ms(), config.revocation_interval_ms);
        if due {
            self.sync_revocations().await;
        }
        self.isolate
            .revocations
            .borrow()
            .status(claims, now_ms(), config.max_staleness_secs)
    }

    async fn within_rate_limit(&mut self, client: &str) -> bool {
        self.limiter.allow(client).await
    }

    fn warn(&mut self, message: &str) {
        console_warn!("edge: {message}");
    }
}

impl WorkerEffects<'_> {
    /// Fetches the JWKS and installs it; on any failure the cached keys stay.
    async fn fetch_jwks(&self) {
        let Some(url) = self.isolate.config.jwks_url.as_deref() else {
            return;
        };
        self.isolate.keys.borrow_mut().start_fetch(now_ms());
        let fetched = http::get_bytes(url, JWKS_DEADLINE, JWKS_BYTES).await;
        let installed = match fetched {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(document) => self
                    .isolate
                    .keys
                    .borrow_mut()
                    .install(&document, now_ms())
                    .map(drop)
                    .map_err(|error| format!("refused ({error})")),
                Err(_) => Err(String::from("is not UTF-8")),
            },
            Err(error) => Err(format!("fetch {}", error.describe())),
        };
        if let Err(reason) = installed {
            console_warn!("edge: JWKS {reason}; keeping cached keys");
        }
    }

    /// Asks the replica for the entries after this copy's cursor and applies them; if the
    /// replica is behind the copy (it restarted), asks for the whole list instead. On any
    /// failure the copy stays as it is and its age keeps growing.
    async fn sync_revocations(&self) {
        let since = {
            let mut copy = self.isolate.revocations.borrow_mut();
            copy.start_sync(now_ms());
            copy.since()
        };
        let mut outcome = self.sync_once(since).await;
        if outcome == Err(SyncFailure::Feed(FeedError::Backwards)) {
            console_warn!("edge: the revocation replica is behind this isolate; reloading it");
            outcome = self.sync_once(None).await;
        }
        match outcome {
            Ok(()) => {}
            Err(SyncFailure::Feed(error)) => {
                console_warn!("edge: revocation sync refused: {}", error.reason());
            }
            Err(SyncFailure::Call(error)) => {
                self.isolate.revocations.borrow_mut().fail_sync(now_ms());
                console_warn!("edge: revocation replica {}", error.describe());
            }
        }
    }

    /// One `GET /sync` to the replica, applied to the copy.
    async fn sync_once(&self, since: Option<u64>) -> core::result::Result<(), SyncFailure> {
        let url = match since {
            Some(cursor) => format!("https://replica/sync?since={cursor}"),
            None => String::from("https://replica/sync"),
        };
        let answer = http::within(SYNC_DEADLINE, async {
            let stub = self
                .replica
                .id_from_name(replica::INSTANCE)
                .and_then(|id| id.get_stub())
                .map_err(|_| CallError::Unreachable)?;
            let response = stub
                .fetch_with_str(&url)
                .await
                .map_err(|_| CallError::Unreachable)?;
            let bytes = http::ok_body(response, SYNC_BYTES).await?;
            serde_json::from_slice::<SyncAnswer>(&bytes).map_err(|_| CallError::Malformed)
        })
        .await
        .map_err(SyncFailure::Call)?;
        self.isolate
            .revocations
            .borrow_mut()
            .apply(since, &answer, now_ms())
            .map_err(SyncFailure::Feed)
    }
}

/// Why a sync with the replica did not update the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncFailure {
    /// The replica could not be asked, or its answer not read.
    Call(CallError),
    /// The answer was inconsistent with the copy.
    Feed(FeedError),
}
