//! A TCP relay to a real service that a test can cut, as a network partition between one
//! issuer and Redis would: every relayed connection is closed and new ones are refused, while
//! the service itself stays up for everyone else.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Relays `127.0.0.1:{port}` to a target address until [`Relay::cut`] or drop.
#[derive(Debug)]
pub(crate) struct Relay {
    address: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts relaying a fresh loopback port to `target`.
    pub(crate) async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let address = listener.local_addr().expect("the relay's address");
        let accept = tokio::spawn(async move {
            // Owned here, so aborting this task closes every relayed connection too.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    drop(tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await);
                });
            }
        });
        Relay { address, accept }
    }

    /// Where clients connect.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Closes every relayed connection and stops listening.
    pub(crate) fn cut(&self) {
        self.accept.abort();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
