//! Who is calling, for the per-client login throttle: the TCP peer, unless the peer is
//! a proxy we trust (`throttle.trusted_proxies`), in which case the address that
//! proxy put in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is written by the client as much as by proxies, so only the
//! entries appended by trusted proxies are believed: the list is read from the right
//! (the nearest hop) and the first address that is not a trusted proxy is the client.
//! With no trusted proxies (the default) the header is ignored, so a client cannot
//! escape its limit by inventing addresses.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

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
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(ClientIp(resolve(
            peer.ip(),
            &forwarded,
            &state.settings.throttle.trusted_proxies,
        )))
    }
}

/// The client behind `peer`, given the `X-Forwarded-For` header lines in order.
pub fn resolve(peer: IpAddr, forwarded_for: &[&str], trusted: &[TrustedProxy]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    // Several header lines are one list, in order; the last entry is the nearest hop.
    let entries = forwarded_for.iter().flat_map(|line| line.split(',')).rev();
    for entry in entries {
        // Anything unreadable was not written by a proxy we trust: stop at the last
        // hop we could read rather than guess.
        let Some(ip) = parse_entry(entry.trim()) else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// `203.0.113.7`, `2001:db8::1`, or either with a port (`[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// A proxy whose `X-Forwarded-For` is believed: an address (`10.0.0.5`) or a CIDR
/// range (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{s:?} is neither an IP address nor a CIDR range");
        let (address, prefix) = match s.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s.trim(), None),
        };
        let network = address
            .parse::<IpAddr>()
            .map_err(|_| invalid())?
            .to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl TryFrom<String> for TrustedProxy {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl From<TrustedProxy> for String {
    fn from(proxy: TrustedProxy) -> Self {
        proxy.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let client = resolve(ip("198.51.100.9"), &["203.0.113.1"], &[]);
        assert_eq!(client, ip("198.51.100.9"));
        let trusted = proxies(&["10.0.0.0/8"]);
        let client = resolve(ip("198.51.100.9"), &["203.0.113.1"], &trusted);
        assert_eq!(client, ip("198.51.100.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.7"]);
        // The client wrote "1.1.1.1" itself; the gateway appended the real address.
        let client = resolve(
            ip("10.1.2.3"),
            &["1.1.1.1, 203.0.113.50", "192.0.2.7"],
            &trusted,
        );
        assert_eq!(client, ip("203.0.113.50"));
        // Without the header, the proxy itself is all we know.
        assert_eq!(resolve(ip("10.1.2.3"), &[], &trusted), ip("10.1.2.3"));
        // Garbage next to the proxy stops the walk at the last readable hop.
        assert_eq!(
            resolve(ip("10.1.2.3"), &["203.0.113.50, unknown"], &trusted),
            ip("10.1.2.3")
        );
        assert_eq!(
            resolve(ip("10.1.2.3"), &["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a = ClientIp(ip("2001:db8:1:2:aaaa::1")).throttle_key();
        let b = ClientIp(ip("2001:db8:1:2:bbbb::2")).throttle_key();
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        let mapped = resolve(ip("::ffff:203.0.113.5"), &[], &[]);
        assert_eq!(ClientIp(mapped).throttle_key(), "203.0.113.5");
    }

    #[test]
    fn trusted_proxies_parse_from_the_environment_as_addresses_or_ranges() {
        // What figment makes of SHOP_THROTTLE__TRUSTED_PROXIES.
        let value: figment::value::Value =
            "[10.0.0.5, \"fd00::/8\", 172.16.0.0/12]".parse().unwrap();
        let parsed: Vec<TrustedProxy> = value.deserialize().unwrap();
        assert_eq!(
            parsed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.0.0.5/32", "fd00::/8", "172.16.0.0/12"]
        );
        assert!(parsed[0].contains(ip("10.0.0.5")));
        assert!(!parsed[0].contains(ip("10.0.0.6")));
        assert!(parsed[1].contains(ip("fd12::1")));
        assert!(parsed[2].contains(ip("172.31.255.255")));
        assert!(!parsed[2].contains(ip("172.32.0.0")));
        assert!(proxies(&["0.0.0.0/0"])[0].contains(ip("8.8.8.8")));
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad:?}");
        }
    }
}
