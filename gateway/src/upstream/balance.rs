//! The three ways to choose among the available instances. Each takes the upstream's
//! instances and a filter (available, and not already tried by this request) and reads
//! only atomics, without allocating: this runs for every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Balance;
use super::health::Member;

/// The instance for the next request among those `eligible` accepts, if any.
pub(crate) fn choose<'a>(
    balance: Balance,
    members: &'a [Arc<Member>],
    turn: &AtomicUsize,
    eligible: impl Fn(&Member) -> bool,
) -> Option<&'a Arc<Member>> {
    match balance {
        Balance::RoundRobin => round_robin(members, turn, eligible),
        Balance::LeastConnections => least_connections(members, turn, eligible),
        Balance::PowerOfTwo => power_of_two(members, eligible),
    }
}

/// The instances in turn, from the shared position, skipping the ineligible.
fn in_turn<'a>(
    members: &'a [Arc<Member>],
    turn: &AtomicUsize,
) -> impl Iterator<Item = &'a Arc<Member>> {
    let start = turn.fetch_add(1, Ordering::Relaxed);
    let n = members.len();
    (0..n).map(move |i| &members[start.wrapping_add(i) % n])
}

fn round_robin<'a>(
    members: &'a [Arc<Member>],
    turn: &AtomicUsize,
    eligible: impl Fn(&Member) -> bool,
) -> Option<&'a Arc<Member>> {
    in_turn(members, turn).find(|m| eligible(m))
}

/// Fewest in flight; ties go to the first in turn, so an idle upstream is still
/// spread over every instance rather than sent to the first one.
fn least_connections<'a>(
    members: &'a [Arc<Member>],
    turn: &AtomicUsize,
    eligible: impl Fn(&Member) -> bool,
) -> Option<&'a Arc<Member>> {
    let mut best: Option<(&Arc<Member>, usize)> = None;
    for member in in_turn(members, turn).filter(|m| eligible(m)) {
        let load = member.in_flight();
        if best.is_none_or(|(_, least)| load < least) {
            best = Some((member, load));
        }
    }
    best.map(|(member, _)| member)
}

/// Two distinct eligible instances at random, the less loaded of them. Counting the
/// eligible first and then walking to the two drawn ranks keeps it allocation-free.
fn power_of_two(
    members: &[Arc<Member>],
    eligible: impl Fn(&Member) -> bool,
) -> Option<&Arc<Member>> {
    let count = members.iter().filter(|m| eligible(m)).count();
    let nth = |rank: usize| members.iter().filter(|m| eligible(m)).nth(rank);
    match count {
        0 => None,
        1 => nth(0),
        _ => {
            let a = fastrand::usize(..count);
            let mut b = fastrand::usize(..count - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (nth(a)?, nth(b)?);
            Some(if b.in_flight() < a.in_flight() { b } else { a })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::testing::{lease_on, upstream_of};
    use super::super::{Instance, Lease, UpstreamPolicy};
    use super::*;

    fn policy(balance: Balance) -> UpstreamPolicy {
        UpstreamPolicy {
            balance,
            ..UpstreamPolicy::default()
        }
    }

    fn picked(lease: &Lease) -> String {
        lease.instance().to_string()
    }

    #[tokio::test]
    async fn round_robin_takes_each_instance_in_turn() {
        let upstream = upstream_of(&["a:1", "b:2"], policy(Balance::RoundRobin));
        let picks: Vec<String> = (0..4).map(|_| picked(&upstream.pick().unwrap())).collect();
        assert_eq!(picks, ["a:1", "b:2", "a:1", "b:2"]);
    }

    #[tokio::test]
    async fn least_connections_sends_the_next_request_to_the_instance_with_fewer_in_flight() {
        let upstream = upstream_of(&["a:1", "b:2", "c:3"], policy(Balance::LeastConnections));
        let _a1 = lease_on(&upstream, "a:1");
        let _a2 = lease_on(&upstream, "a:1");
        let _b = lease_on(&upstream, "b:2");
        // a has 2 in flight, b 1, c 0: c, then b or c, never a.
        let first = upstream.pick().unwrap();
        assert_eq!(picked(&first), "c:3");
        for _ in 0..10 {
            let next = upstream.pick().unwrap();
            assert_ne!(picked(&next), "a:1");
        }
        // b and c both have 1: one each, then all have 2.
        let (second, third) = (upstream.pick().unwrap(), upstream.pick().unwrap());
        let mut took = [picked(&second), picked(&third)];
        took.sort();
        assert_eq!(took, ["b:2", "c:3"]);
        let loads: Vec<usize> = upstream.statuses().iter().map(|s| s.in_flight).collect();
        assert_eq!(loads, [2, 2, 2]);
        drop(first);
    }

    #[tokio::test]
    async fn least_connections_spreads_requests_over_idle_instances() {
        let upstream = upstream_of(&["a:1", "b:2"], policy(Balance::LeastConnections));
        let picks: Vec<String> = (0..4).map(|_| picked(&upstream.pick().unwrap())).collect();
        assert_eq!(picks, ["a:1", "b:2", "a:1", "b:2"]);
    }

    #[tokio::test]
    async fn power_of_two_never_picks_the_busier_of_two_instances() {
        let upstream = upstream_of(&["a:1", "b:2"], policy(Balance::PowerOfTwo));
        let _busy = lease_on(&upstream, "a:1");
        for _ in 0..100 {
            assert_eq!(picked(&upstream.pick().unwrap()), "b:2");
        }
    }

    #[tokio::test]
    async fn power_of_two_sends_clearly_fewer_requests_to_a_busy_instance() {
        let upstream = upstream_of(&["a:1", "b:2", "c:3"], policy(Balance::PowerOfTwo));
        let _busy: Vec<Lease> = (0..5).map(|_| lease_on(&upstream, "a:1")).collect();
        // Requests that finish at once: a (5 in flight) loses every draw against an idle
        // instance, and each draw holds at least one idle instance.
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..300 {
            *counts.entry(picked(&upstream.pick().unwrap())).or_default() += 1;
        }
        assert_eq!(counts.get("a:1"), None, "{counts:?}");
        assert!(counts["b:2"] > 50 && counts["c:3"] > 50, "{counts:?}");

        // Requests that stay open: the load evens out, so a, which started with 5,
        // gets clearly fewer of the new ones than either idle instance.
        let held: Vec<Lease> = (0..30).map(|_| upstream.pick().unwrap()).collect();
        let on = |name: &str| held.iter().filter(|l| picked(l) == name).count();
        let (a, b, c) = (on("a:1"), on("b:2"), on("c:3"));
        assert!(a < 10 && a < b && a < c, "a {a}, b {b}, c {c}");
    }

    #[tokio::test]
    async fn every_algorithm_skips_an_instance_already_tried_when_another_is_available() {
        for balance in [
            Balance::RoundRobin,
            Balance::LeastConnections,
            Balance::PowerOfTwo,
        ] {
            let upstream = upstream_of(&["a:1", "b:2"], policy(balance));
            let tried = [Instance::parse("http://a:1").unwrap()];
            for _ in 0..20 {
                let lease = upstream.pick_except(&tried).unwrap();
                assert_eq!(picked(&lease), "b:2", "{balance:?}");
            }
            let both = [tried[0].clone(), Instance::parse("http://b:2").unwrap()];
            assert!(
                upstream.pick_except(&both).is_some(),
                "{balance:?}: falls back"
            );
        }
    }
}
