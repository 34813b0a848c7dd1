//! Requests written byte for byte over a bare TCP connection, for what an HTTP client refuses
//! to send or quietly rewrites: paths with `..`, `//` or percent-encoded separators (a URL
//! library normalises them), header names in mixed case, oversized heads, and bodies the edge
//! answers before they are complete.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::Response;

/// How long a raw exchange may take; a liveness bound, not a check.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `request` (a complete HTTP/1.1 request, which should say `Connection: close`) to
/// `address` (`host:port`) and reads the answer until the edge closes. The request is written
/// from a separate task, so an answer that comes before the whole body was accepted is still
/// read (an HTTP client drops it with "broken pipe", RFC 9112 §9.6).
pub(crate) async fn exchange(address: &str, request: Vec<u8>) -> Response {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|error| panic!("connect to {address}: {error}"));
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        // A write error is expected once the edge has answered and closed.
        drop(writer.write_all(&request).await);
        // Keep the write side open: closing it could read as the end of a body.
        std::future::pending::<()>().await;
    });

    let mut raw = Vec::new();
    let mut chunk = [0_u8; 16 * 1024];
    let deadline = Instant::now() + EXCHANGE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no complete answer from {address}: {raw:?}"
        );
        match tokio::time::timeout(left, reader.read(&mut chunk)).await {
            Err(_) => continue,
            Ok(Ok(0)) => break,
            Ok(Ok(count)) => raw.extend_from_slice(&chunk[..count]),
            // A reset after a complete answer (the edge closed with unread request bytes).
            Ok(Err(_)) if parse(&raw, true).is_some() => break,
            Ok(Err(error)) => panic!("reading from {address}: {error} after {raw:?}"),
        }
        if let Some(response) = parse(&raw, false) {
            write.abort();
            return response;
        }
    }
    write.abort();
    parse(&raw, true).unwrap_or_else(|| {
        panic!(
            "no complete HTTP answer from {address}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// `GET <target>` with `headers` (`name: value` lines, written as given).
pub(crate) fn get(target: &str, host: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

/// A complete answer in `raw`: a head, then a body framed by `Content-Length` or chunked
/// encoding; `None` while incomplete. An answer with neither ends at the close, so it is
/// complete only once the reader saw the end of the stream (`closed`).
fn parse(raw: &[u8], closed: bool) -> Option<Response> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(value.trim().as_bytes()).ok()?;
        headers.append(name, value);
    }
    let rest = &raw[split + 4..];
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length.to_str().ok()?.parse().ok()?;
        rest.get(..length)?.to_vec()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Response {
        status,
        headers,
        body,
        text,
    })
}

/// The payload of a complete chunked body; `None` while the last chunk has not arrived.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|window| window == b"\r\n")?;
        let size_field = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_field.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
