//! Release routing: which version of a service takes a request, when a route has a
//! canary (see `CanarySpec` in `crate::routes`).
//!
//! This is how the seeds' deployment strategies run here with two instances of one
//! service (docs/runbook.md walks through each):
//! - canary: the new version as `canary.upstream` with a small `weight`, raised step by
//!   step to 100 by reloading the file, then made the route's `upstream`; rollback is
//!   the weight back to 0;
//! - blue/green: both colours running, `weight` 0 or 100 switching all traffic at once;
//! - A/B or a tester's preview: the `canary.header`, which pins a request to one side
//!   whatever the weight.
//!
//! The weight is applied per request, at random: the canary sees the mix of traffic the
//! stable version sees. A client who must stay on one version sends the header.

use http::HeaderMap;

use crate::routes::Route;

/// The side of a release a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Stable,
    Canary,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Canary => "canary",
        }
    }
}

/// The track and upstream of a request on `route`; `roll` is a number in 0..100 (a
/// random one in the proxy, given in tests).
pub fn choose<'r>(route: &'r Route, headers: &HeaderMap, roll: u8) -> (Track, &'r str) {
    let Some(canary) = &route.canary else {
        return (Track::Stable, &route.upstream);
    };
    let pinned = canary
        .header
        .as_ref()
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| match value.trim().to_ascii_lowercase().as_str() {
            "always" | "1" | "true" => Some(Track::Canary),
            "never" | "0" | "false" => Some(Track::Stable),
            _ => None,
        });
    let track = pinned.unwrap_or(if roll < canary.weight {
        Track::Canary
    } else {
        Track::Stable
    });
    match track {
        Track::Stable => (track, &route.upstream),
        Track::Canary => (track, &canary.upstream),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use http::HeaderValue;

    use super::*;
    use crate::routes::{CanarySpec, Policy, RouteSpec, RouteTable};

    fn route(weight: u8) -> Route {
        let spec = RouteSpec {
            name: "products".to_owned(),
            prefix: "/api/v1/products".to_owned(),
            upstream: "catalog".to_owned(),
            policy: Policy::Public,
            write_policy: None,
            methods: None,
            timeout_ms: 1000,
            retries: 1,
            rate_limit: None,
            rewrite: None,
            canary: Some(CanarySpec {
                upstream: "catalog_v2".to_owned(),
                weight,
                header: Some("x-shop-canary".to_owned()),
            }),
        };
        let upstreams = BTreeMap::from([
            ("catalog".to_owned(), "http://a".to_owned()),
            ("catalog_v2".to_owned(), "http://b".to_owned()),
        ]);
        RouteTable::check(vec![spec], &upstreams, &BTreeSet::new())
            .unwrap()
            .routes()[0]
            .clone()
    }

    #[test]
    fn the_weight_is_the_share_of_rolls_that_go_to_the_canary() {
        for weight in [0, 1, 10, 50, 100] {
            let route = route(weight);
            let canary = (0..100)
                .filter(|roll| choose(&route, &HeaderMap::new(), *roll).0 == Track::Canary)
                .count();
            assert_eq!(canary, usize::from(weight), "weight {weight}");
        }
        assert_eq!(choose(&route(100), &HeaderMap::new(), 0).1, "catalog_v2");
        assert_eq!(choose(&route(0), &HeaderMap::new(), 0).1, "catalog");
    }

    #[test]
    fn the_header_pins_a_request_to_one_side_whatever_the_weight() {
        let mut headers = HeaderMap::new();
        headers.insert("x-shop-canary", HeaderValue::from_static("always"));
        assert_eq!(choose(&route(0), &headers, 99).0, Track::Canary);
        headers.insert("x-shop-canary", HeaderValue::from_static("never"));
        assert_eq!(choose(&route(100), &headers, 0).0, Track::Stable);
        headers.insert("x-shop-canary", HeaderValue::from_static("maybe"));
        assert_eq!(choose(&route(100), &headers, 0).0, Track::Canary, "ignored");
    }
}
