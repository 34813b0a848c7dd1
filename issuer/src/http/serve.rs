//! The accept loop: HTTP/1.1, and HTTP/2 by prior knowledge, through hyper, with the limits
//! `axum::serve` does not offer.
//!
//! - **Slow clients.** `axum::serve` sets no timer, so hyper's header timeout never ran and a
//!   client sending a request head one byte at a time held its connection for ever. Here the
//!   head must arrive within `http.header_read_timeout_secs`, which hyper also applies to idle
//!   keep-alive connections. hyper's timer only starts once the connection is known to be
//!   HTTP/1, though: the first bytes (read to tell HTTP/1 from the HTTP/2 preface) and every
//!   HTTP/2 connection are outside it. So any connection with no request in progress for that
//!   long is also closed here, whatever its protocol. `http.request_timeout_secs` covers the
//!   rest (a slow body, a slow handler: 408).
//! - **Many clients.** At most `http.max_connections` are served at once. Further clients wait
//!   in the kernel's listen backlog until one closes, so a flood costs sockets there, not tasks
//!   and buffers here.
//! - **Shutdown.** On the signal the listener closes, idle connections close, and requests in
//!   progress finish (they are bounded by the request timeout). A closing connection that is
//!   still open after `http.request_timeout_secs` is dropped.
//!
//! hyper-util's `GracefulShutdown` only closes connections on the process signal; closing an
//! idle one gracefully as well needs the connection itself, so both go through one `watch`.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;
use tracing::{debug, error, warn};

use crate::config::HttpSettings;

/// What every connection task needs.
#[derive(Debug)]
struct Shared {
    builder: Builder<TokioExecutor>,
    router: Router,
    /// `http.header_read_timeout_secs`: how long a connection may wait for a request.
    idle_limit: Duration,
    /// `http.request_timeout_secs`: how long a closing connection may take to finish.
    close_limit: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then until every connection has
/// closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let shared = Arc::new(Shared {
        builder,
        router,
        idle_limit: settings.header_read_timeout,
        close_limit: settings.request_timeout,
    });
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let (stop, _) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        if let Some((stream, peer, slot)) = accepted {
            // Subscribed before the loop can see the signal, so no connection misses it.
            let stopping = stop.subscribe();
            let connection = Connection { stream, peer, slot };
            tokio::spawn(serve_connection(shared.clone(), connection, stopping));
        }
    }
    drop(listener);
    stop.send_replace(());
    stop.closed().await;
}

/// An accepted connection: the socket, its peer, and the slot it occupies.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
}

/// The next connection, its peer and the slot it occupies; `None` when accepting failed.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = match slots.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            warn!("http.max_connections reached; new connections wait until one closes");
            slots.clone().acquire_owned().await.ok()?
        }
    };
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, slot)),
        // The client gave up before it was accepted.
        Err(err) if is_connection_error(&err) => None,
        Err(err) => {
            // Most likely out of file descriptors: wait for some to be released rather than
            // spin (what hyper 0.14's server and `axum::serve` do too).
            error!(error = %err, "accepting a connection failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, stays idle too long, or the process stops.
///
/// The peer travels in each request's extensions as axum's `ConnectInfo`, which
/// `http::extract::ClientIp` reads.
async fn serve_connection(
    shared: Arc<Shared>,
    connection: Connection,
    mut stopping: watch::Receiver<()>,
) {
    let Connection {
        stream,
        peer,
        slot: _slot,
    } = connection;
    let activity = Arc::new(Activity::default());
    let service = {
        let (activity, router) = (activity.clone(), shared.router.clone());
        service_fn(move |mut request: Request<Incoming>| {
            let busy = activity.begin();
            let router = router.clone();
            request.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                drop(busy);
                response
            }
        })
    };
    let connection = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut connection = pin!(connection);
    let reason = tokio::select! {
        outcome = connection.as_mut() => return finished(outcome),
        _ = stopping.changed() => "shutting down",
        () = activity.idle_for(shared.idle_limit) => "idle",
    };
    debug!(reason, "closing a connection");
    connection.as_mut().graceful_shutdown();
    match tokio::time::timeout(shared.close_limit, connection).await {
        Ok(outcome) => finished(outcome),
        Err(_) => debug!(
            reason,
            "a closing connection did not finish in time; dropped"
        ),
    }
}

/// Connection errors are the client's business (a reset, a header timeout): debug only.
fn finished(outcome: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(err) = outcome {
        debug!(error = %err, "connection ended with an error");
    }
}

/// Requests of one connection: how many have started and how many are in progress.
#[derive(Debug, Default)]
struct Activity {
    started: AtomicU64,
    in_progress: AtomicUsize,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> Busy {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once a whole `limit` has passed with no request started and none in
    /// progress at its end (so between one and two `limit`s after the last request).
    async fn idle_for(&self, limit: Duration) {
        loop {
            let seen = self.started.load(Ordering::Relaxed);
            tokio::time::sleep(limit).await;
            let quiet = self.started.load(Ordering::Relaxed) == seen;
            if quiet && self.in_progress.load(Ordering::Relaxed) == 0 {
                return;
            }
        }
    }
}

/// A request in progress; ends when dropped (also when the request is cancelled).
#[derive(Debug)]
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::body::Bytes;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;

    const IDLE: Duration = Duration::from_millis(300);

    struct Server {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    async fn start(max_connections: usize) -> Server {
        let settings = HttpSettings {
            body_limit_bytes: 1_024,
            request_timeout: Duration::from_millis(600),
            max_connections,
            header_read_timeout: IDLE,
            trusted_proxies: Vec::new(),
        };
        let router = Router::new()
            .route("/", get(|| async { "hello" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    "done"
                }),
            )
            .route("/echo", post(|body: Bytes| async move { body }))
            .layer(axum::middleware::from_fn_with_state(
                settings.request_timeout,
                super::super::middleware::timeout,
            ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let signal = async {
                stopped.await.ok();
            };
            serve(listener, router, &settings, signal).await;
        });
        Server { addr, stop, task }
    }

    /// Reads until the server closes the connection; returns what it sent and how long that
    /// took, or `None` if it stayed open for `within`.
    async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut received = Vec::new();
        let outcome = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
        match outcome {
            Ok(Ok(_)) | Ok(Err(_)) => Some(String::from_utf8_lossy(&received).into_owned()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn partial_headers_silence_and_a_slow_http2_preface_are_cut_off() {
        let server = start(100).await;
        for opening in [
            &b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "[..],
            b"",
            b"PRI * HTTP/2.0\r\n",
        ] {
            let began = Instant::now();
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            stream.write_all(opening).await.unwrap();
            let closed = read_until_closed(&mut stream, IDLE * 5).await;
            assert!(closed.is_some(), "{opening:?} stayed open");
            assert!(began.elapsed() >= IDLE, "{opening:?} closed too early");
        }
    }

    #[tokio::test]
    async fn keep_alive_serves_requests_then_idles_out() {
        let server = start(100).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        for _ in 0..3 {
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buffer = [0_u8; 512];
            let read = stream.read(&mut buffer).await.unwrap();
            let answer = String::from_utf8_lossy(&buffer[..read]).into_owned();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("hello"), "{answer}");
        }
        assert!(read_until_closed(&mut stream, IDLE * 5).await.is_some());
    }

    #[tokio::test]
    async fn a_body_that_arrives_too_slowly_gets_408_and_the_connection_closes() {
        let server = start(100).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            .await
            .unwrap();
        let answer = read_until_closed(&mut stream, Duration::from_secs(3))
            .await
            .expect("the connection stayed open");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }

    #[tokio::test]
    async fn connections_over_the_limit_wait_for_a_free_slot() {
        let server = start(1).await;
        let mut first = TcpStream::connect(server.addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0_u8; 512];
        assert!(first.read(&mut buffer).await.unwrap() > 0);
        // The kernel completes the handshake, but nothing answers while `first` is open.
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        second
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let waited = tokio::time::timeout(IDLE / 3, second.read(&mut buffer)).await;
        assert!(waited.is_err(), "served over the limit");
        drop(first);
        let answer = read_until_closed(&mut second, Duration::from_secs(3))
            .await
            .expect("never served");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_finishes_requests_in_progress_and_closes_idle_connections() {
        let server = start(100).await;
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        let mut busy = TcpStream::connect(server.addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.stop.send(()).unwrap();
        let answer = read_until_closed(&mut busy, Duration::from_secs(3))
            .await
            .expect("the busy connection stayed open");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        assert_eq!(
            read_until_closed(&mut idle, Duration::from_secs(3))
                .await
                .as_deref(),
            Some("")
        );
        tokio::time::timeout(Duration::from_secs(3), server.task)
            .await
            .expect("serve did not return")
            .unwrap();
        assert!(
            TcpStream::connect(server.addr).await.is_err(),
            "still listening"
        );
    }
}
