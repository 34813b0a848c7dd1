//! The client's address, for rate limits: the socket peer, unless the peer is a trusted
//! proxy (`http.trusted_proxies`), in which case the right-most `X-Forwarded-For` entry that
//! is not itself a trusted proxy.
//!
//! Only the entries trusted proxies appended can be believed: anything to their left was
//! written by the client and may be forged. So the list is read from the right, past trusted
//! hops, and the first other address is the client. A peer outside the list is the client,
//! whatever headers it sends.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::AppState;
use crate::error::{ApiError, FailureClass};

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address, as rate limits key it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The accept loop did not attach the peer address (a router served without
/// `http::serve`).
#[derive(Debug, thiserror::Error)]
#[error("the request carries no peer address")]
struct NoPeerAddress;

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(ApiError::internal(FailureClass::Fault, NoPeerAddress));
        };
        let forwarded = parts.headers.get_all(FORWARDED_FOR).iter();
        Ok(Self(client_ip(
            peer.ip(),
            forwarded,
            &state.trusted_proxies,
        )))
    }
}

/// The client behind `peer`; see the module documentation.
pub(crate) fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    // Several headers form one list, in order (RFC 9110 section 5.3).
    for header in forwarded.rev() {
        // A header that is not text cannot be read; the hop that sent it is the client.
        let Ok(text) = header.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            let Some(hop) = parse_hop(entry.trim()) else {
                return client;
            };
            client = hop;
            if !is_trusted(&client) {
                return client;
            }
        }
    }
    // Every hop is trusted: the left-most one is where the request came from.
    client
}

/// One `X-Forwarded-For` entry: an address, or an address with a port as some proxies write.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> Vec<IpNet> {
        nets.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn resolve(peer: &str, headers: &[&str], nets: &[&str]) -> String {
        let values: Vec<HeaderValue> = headers
            .iter()
            .map(|value| HeaderValue::from_str(value).unwrap())
            .collect();
        client_ip(peer.parse().unwrap(), values.iter(), &trusted(nets)).to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            resolve("203.0.113.9", &["198.51.100.1"], &[]),
            "203.0.113.9"
        );
        assert_eq!(
            resolve("203.0.113.9", &["198.51.100.1"], &["10.0.0.0/8"]),
            "203.0.113.9"
        );
    }

    #[test]
    fn a_trusted_peer_names_the_right_most_untrusted_hop() {
        let nets = ["10.0.0.0/8", "192.168.1.1/32"];
        assert_eq!(
            resolve("10.0.0.1", &["198.51.100.7"], &nets),
            "198.51.100.7"
        );
        // The client forged the left-most entry; the proxies appended the rest.
        assert_eq!(
            resolve("10.0.0.1", &["1.2.3.4, 198.51.100.7, 192.168.1.1"], &nets),
            "198.51.100.7"
        );
        assert_eq!(
            resolve("10.0.0.1", &["1.2.3.4", "198.51.100.7,10.9.9.9"], &nets),
            "198.51.100.7"
        );
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        assert_eq!(resolve("10.0.0.1", &[], &["10.0.0.0/8"]), "10.0.0.1");
        assert_eq!(
            resolve("10.0.0.1", &["10.0.0.2"], &["10.0.0.0/8"]),
            "10.0.0.2"
        );
    }

    #[test]
    fn garbage_stops_at_the_last_readable_hop() {
        let nets = ["10.0.0.0/8"];
        assert_eq!(resolve("10.0.0.1", &["unknown"], &nets), "10.0.0.1");
        assert_eq!(
            resolve("10.0.0.1", &["1.2.3.4, x, 10.0.0.5"], &nets),
            "10.0.0.5"
        );
        assert_eq!(resolve("10.0.0.1", &[""], &nets), "10.0.0.1");
    }

    #[test]
    fn ports_ipv6_and_mapped_addresses_are_read() {
        let nets = ["10.0.0.0/8", "2001:db8::/32"];
        assert_eq!(
            resolve("10.0.0.1", &["198.51.100.7:4711"], &nets),
            "198.51.100.7"
        );
        assert_eq!(
            resolve("2001:db8::1", &["[2001:db9::5]:443"], &nets),
            "2001:db9::5"
        );
        assert_eq!(
            resolve("::ffff:10.0.0.1", &["::ffff:1.2.3.4"], &nets),
            "1.2.3.4"
        );
        assert_eq!(resolve("::ffff:1.2.3.4", &["9.9.9.9"], &nets), "1.2.3.4");
    }
}
