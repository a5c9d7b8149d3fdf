//! Who is calling, for the per-client login throttle: the TCP peer, unless the peer is
//! a proxy we trust (`throttle.trusted_proxies`: the gateway), in which case the
//! address that proxy put in `X-Forwarded-For` (`shop_http::client_ip`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
pub use shop_http::client_ip::TrustedProxy;
use shop_http::client_ip::resolve_headers;

use crate::error::Error;
use crate::state::AppState;

/// The caller's address, as far as we can trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The key the throttle counts under: an IPv4 address, or the /64 of an IPv6
    /// address (one subscriber usually holds a whole /64 and can rotate through it).
    pub fn throttle_key(&self) -> String {
        match self.0 {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => {
                let network = u128::from(ip) & (u128::MAX << 64);
                format!("{}/64", Ipv6Addr::from(network))
            }
        }
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(Error::Internal(anyhow::anyhow!(
                "no peer address: the server must be run with connect info"
            )));
        };
        Ok(ClientIp(resolve_headers(
            peer.ip(),
            &parts.headers,
            &state.settings.throttle.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_one_by_one() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = ClientIp(ip("2001:db8:1:2:aaaa::1")).throttle_key();
        let b = ClientIp(ip("2001:db8:1:2:bbbb::2")).throttle_key();
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_eq!(ClientIp(ip("203.0.113.5")).throttle_key(), "203.0.113.5");
    }
}
