//! Outbound calls with a deadline, and bodies read with a size bound.
//!
//! Every call the edge makes to the issuer (JWKS, revocation feed) and to the replica goes
//! through [`within`], so a peer that accepts the connection and never answers costs a
//! request at most the deadline instead of holding it until the runtime gives up.

use core::pin::pin;
use core::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::{Either, select};
use serde::de::DeserializeOwned;
use worker::{AbortController, ByteStream, Delay, Fetch, Response, Url};

/// Why an outbound call produced nothing usable. Carries no URL, header or body text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The deadline passed first.
    Timeout,
    /// The connection failed, or the body could not be read.
    Unreachable,
    /// An answer other than 200.
    Status(u16),
    /// The body is over its size bound.
    TooLarge,
    /// The body is not the expected JSON.
    Malformed,
}

impl CallError {
    /// Fixed text for logs.
    pub(crate) fn describe(self) -> String {
        match self {
            Self::Timeout => "timed out".to_owned(),
            Self::Unreachable => "unreachable".to_owned(),
            Self::Status(status) => format!("answered {status}"),
            Self::TooLarge => "answer over the size bound".to_owned(),
            Self::Malformed => "answer malformed".to_owned(),
        }
    }
}

/// Why a body could not be read within its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooLarge,
    Unreadable,
}

/// Runs `work` until it finishes or `deadline` passes.
pub(crate) async fn within<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    match select(pin!(work), pin!(Delay::from(deadline))).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(((), _)) => Err(CallError::Timeout),
    }
}

/// `GET url` and its body of at most `limit` bytes from a 200 answer, all within
/// `deadline`. On timeout the request is aborted, so the runtime does not keep the connection
/// open for nothing.
pub(crate) async fn get_bytes(
    url: &str,
    deadline: Duration,
    limit: u64,
) -> Result<Vec<u8>, CallError> {
    let url = Url::parse(url).map_err(|_| CallError::Unreachable)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let work = async {
        let response = Fetch::Url(url)
            .send_with_signal(&signal)
            .await
            .map_err(|_| CallError::Unreachable)?;
        ok_body(response, limit).await
    };
    let outcome = within(deadline, work).await;
    if outcome == Err(CallError::Timeout) {
        controller.abort();
    }
    outcome
}

/// [`get_bytes`], parsed as JSON.
pub(crate) async fn get_json<T: DeserializeOwned>(
    url: &str,
    deadline: Duration,
    limit: u64,
) -> Result<T, CallError> {
    let bytes = get_bytes(url, deadline, limit).await?;
    serde_json::from_slice(&bytes).map_err(|_| CallError::Malformed)
}

/// The body of a 200 answer, read within `limit` bytes.
pub(crate) async fn ok_body(mut response: Response, limit: u64) -> Result<Vec<u8>, CallError> {
    let status = response.status_code();
    if status != 200 {
        return Err(CallError::Status(status));
    }
    let stream = response.stream().map_err(|_| CallError::Unreachable)?;
    read_bounded(stream, limit)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => CallError::TooLarge,
            BodyError::Unreadable => CallError::Unreachable,
        })
}

/// Reads a stream to the end, or stops as soon as it is over `limit` bytes: at most
/// `limit` plus one chunk is ever held, however much the sender sends.
pub(crate) async fn read_bounded(mut stream: ByteStream, limit: u64) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        let total = u64::try_from(bytes.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
