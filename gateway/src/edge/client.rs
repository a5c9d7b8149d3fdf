//! Who is asking, as far as rate limiting is concerned: the subject of a verified
//! token, else the consumer of a valid API key, else the address the connection came
//! from.
//!
//! The address is the TCP peer's, never `X-Forwarded-For`: the gateway is the edge, so
//! whatever that header says was written by the client and would let it pick a fresh
//! budget per request. IPv6 addresses count by their /64: one subscriber is usually
//! handed a whole /64 and could otherwise rotate through 2^64 budgets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use uuid::Uuid;

use crate::edge::apikeys::Consumer;

/// The key a client's rate-limit budget is kept under. Built only through the
/// constructors, so an address is always normalized (no two keys for one client).
///
/// 24 bytes, hashable, and cheap to clone (a consumer's name is shared, not copied).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(Kind);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Kind {
    User(Uuid),
    Consumer(Arc<str>),
    Ipv4(Ipv4Addr),
    /// The network part of an IPv6 address.
    Ipv6Net(u64),
}

impl ClientKey {
    /// A verified access token's subject.
    pub fn user(sub: Uuid) -> Self {
        Self(Kind::User(sub))
    }

    /// The consumer a valid API key belongs to.
    pub fn consumer(consumer: &Consumer) -> Self {
        Self(Kind::Consumer(consumer.shared_name()))
    }

    /// The connection's peer address: an IPv4 address as it is (an IPv4-mapped IPv6
    /// address, as a dual-stack listener reports it, counts as the IPv4 address), an
    /// IPv6 address by its /64.
    pub fn ip(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V4(v4) => Self(Kind::Ipv4(v4)),
            IpAddr::V6(v6) => Self(Kind::Ipv6Net((u128::from(v6) >> 64) as u64)),
        }
    }
}

/// `user:<uuid>`, `consumer:<name>`, `ip:<v4>` or `ip:<v6 network>/64`: for logs.
impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::User(sub) => write!(f, "user:{sub}"),
            Kind::Consumer(name) => write!(f, "consumer:{name}"),
            Kind::Ipv4(ip) => write!(f, "ip:{ip}"),
            Kind::Ipv6Net(net) => write!(f, "ip:{}/64", Ipv6Addr::from(u128::from(*net) << 64)),
        }
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> ClientKey {
        ClientKey::ip(s.parse().unwrap())
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key_and_other_networks_do_not() {
        assert_eq!(
            ip("2001:db8:1:2::1"),
            ip("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("2001:db8:1:2::1").to_string(), "ip:2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_addresses_count_one_by_one_and_a_mapped_address_counts_as_its_ipv4() {
        assert_ne!(ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
        assert_eq!(ip("192.0.2.1").to_string(), "ip:192.0.2.1");
    }

    #[test]
    fn a_user_a_consumer_and_an_address_are_different_clients() {
        let sub = Uuid::from_u128(0xc0a8_0001);
        let user = ClientKey::user(sub);
        let consumer = ClientKey(Kind::Consumer(Arc::from("partner-feed")));
        assert_ne!(user, ip("192.168.0.1"));
        assert_ne!(user, consumer);
        assert_eq!(user, ClientKey::user(sub));
        assert_eq!(consumer.to_string(), "consumer:partner-feed");
    }

    #[test]
    fn a_key_stays_small() {
        assert!(std::mem::size_of::<ClientKey>() <= 24);
    }
}
