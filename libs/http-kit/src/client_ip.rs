//! Who is calling: the TCP peer, unless the peer is a proxy we trust, in which case the
//! address that proxy put in `X-Forwarded-For`. The gateway uses it for its per-client
//! rate limits behind an Ingress (`SHOP_TRUSTED_PROXIES`), the user service for its
//! login throttle behind the gateway (`SHOP_THROTTLE__TRUSTED_PROXIES`).
//!
//! `X-Forwarded-For` is written by the client as much as by proxies, so only the
//! entries appended by trusted proxies are believed: the list is read from the right
//! (the nearest hop) and the first address that is not a trusted proxy is the client.
//! With no trusted proxies (the default) the header is ignored, so a client cannot
//! escape its limit by inventing addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// The client behind `peer`, from the request's `X-Forwarded-For` header lines.
pub fn resolve_headers(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy]) -> IpAddr {
    if trusted.is_empty() {
        return peer.to_canonical();
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    resolve(peer, &forwarded, trusted)
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
    fn a_mapped_ipv4_peer_is_its_ipv4_address() {
        assert_eq!(
            resolve(ip("::ffff:203.0.113.5"), &[], &[]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn header_lines_are_read_only_from_a_trusted_peer() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "1.1.1.1, 203.0.113.50".parse().unwrap());
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            resolve_headers(ip("10.0.0.9"), &headers, &trusted),
            ip("203.0.113.50")
        );
        assert_eq!(
            resolve_headers(ip("10.0.0.9"), &headers, &[]),
            ip("10.0.0.9")
        );
        assert_eq!(
            resolve_headers(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
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
