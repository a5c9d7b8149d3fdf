//! The upstream as a whole: discovery through a resolver, state kept across lookups, and
//! the loop's lifetime.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::testing::{
    Counting, ScriptedResolver, TestServer, eventually, fast_policy, lease_on, picks, upstream_of,
};
use super::*;

fn dns(host: &str, port: u16) -> Source {
    Source::Dns {
        host: host.to_owned(),
        port,
    }
}

fn authorities(upstream: &Upstream) -> Vec<String> {
    upstream
        .statuses()
        .iter()
        .map(|s| s.instance.to_string())
        .collect()
}

#[tokio::test]
async fn a_dns_upstream_has_no_instance_until_its_first_lookup() {
    let resolver = Arc::new(ScriptedResolver::default());
    resolver.answer(Some(&["10.0.0.6:8082", "10.0.0.5:8082", "10.0.0.6:8082"]));
    let upstream = Upstream::new("catalog", dns("catalog", 8082), fast_policy(), resolver);
    assert!(upstream.pick().is_none());
    assert!(!upstream.is_ready());

    upstream.refresh().await;
    assert_eq!(authorities(&upstream), ["10.0.0.5:8082", "10.0.0.6:8082"]);
    assert!(upstream.is_ready());
}

#[tokio::test]
async fn a_lookup_keeps_the_state_of_the_addresses_still_there() {
    let resolver = Arc::new(ScriptedResolver::default());
    resolver.answer(Some(&["10.0.0.5:8082"]));
    let upstream = Upstream::new("catalog", dns("c", 8082), fast_policy(), resolver.clone());
    upstream.refresh().await;
    let held = lease_on(&upstream, "10.0.0.5:8082");

    resolver.answer(Some(&["10.0.0.5:8082", "10.0.0.7:8082"]));
    upstream.refresh().await;
    let loads: Vec<usize> = upstream.statuses().iter().map(|s| s.in_flight).collect();
    assert_eq!(
        loads,
        [1, 0],
        "10.0.0.5 is the same instance, its lease counted"
    );

    resolver.answer(Some(&["10.0.0.7:8082"]));
    upstream.refresh().await;
    assert_eq!(authorities(&upstream), ["10.0.0.7:8082"]);
    drop(held);
    assert_eq!(upstream.statuses()[0].in_flight, 0);
}

#[tokio::test]
async fn a_failed_lookup_keeps_the_last_instances_and_an_empty_answer_keeps_none() {
    let resolver = Arc::new(ScriptedResolver::default());
    resolver.answer(Some(&["10.0.0.5:8082", "10.0.0.6:8082"]));
    let upstream = Upstream::new("catalog", dns("c", 8082), fast_policy(), resolver.clone());
    upstream.refresh().await;

    resolver.answer(None);
    upstream.refresh().await;
    assert_eq!(authorities(&upstream), ["10.0.0.5:8082", "10.0.0.6:8082"]);

    resolver.answer(Some(&[]));
    upstream.refresh().await;
    assert!(authorities(&upstream).is_empty());
    assert!(upstream.pick().is_none());
}

#[tokio::test]
async fn a_change_in_the_hosts_file_adds_and_removes_instances_of_a_dns_upstream() {
    let (one, two) = TestServer::pair_on_one_port().await;
    let port = one.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("{} catalog.test\n", one.ip())).unwrap();
    let resolver = Arc::new(Counting {
        inner: HostsFileResolver::new(&hosts),
        lookups: AtomicUsize::new(0),
    });
    let upstream = Upstream::new(
        "catalog",
        dns("catalog.test", port),
        fast_policy(),
        resolver.clone(),
    );
    let _loop = upstream.start();
    eventually("the first lookup", || upstream.is_ready()).await;
    assert_eq!(picks(&upstream, 2), vec![one.authority(); 2]);

    let held = lease_on(&upstream, &one.authority());
    std::fs::write(
        &hosts,
        format!("{} catalog.test\n{} catalog.test\n", one.ip(), two.ip()),
    )
    .unwrap();
    eventually("the new address", || upstream.statuses().len() == 2).await;
    let mut reached = picks(&upstream, 4);
    reached.sort();
    reached.dedup();
    assert_eq!(reached, [one.authority(), two.authority()]);
    assert_eq!(
        upstream.statuses()[0].in_flight,
        1,
        "the known instance kept"
    );
    eventually("the new one checked", || two.checks() > 0).await;
    drop(held);

    // The name's lookup fails (no file): the last instances stay.
    std::fs::remove_file(&hosts).unwrap();
    let before = resolver.lookups.load(Ordering::Relaxed);
    eventually("two failed lookups", || {
        resolver.lookups.load(Ordering::Relaxed) >= before + 2
    })
    .await;
    assert_eq!(upstream.statuses().len(), 2);

    std::fs::write(&hosts, format!("{} catalog.test\n", two.ip())).unwrap();
    eventually("the old address gone", || upstream.statuses().len() == 1).await;
    assert_eq!(picks(&upstream, 3), vec![two.authority(); 3]);
}

#[tokio::test]
async fn the_loop_ends_once_the_upstream_is_dropped() {
    let server = TestServer::start().await;
    let instance = Instance::parse(&format!("http://{}", server.addr)).unwrap();
    let upstream = Upstream::new(
        "catalog",
        Source::Static(vec![instance]),
        fast_policy(),
        Arc::new(SystemResolver),
    );
    let running = upstream.start();
    assert!(
        upstream.start().await.is_ok(),
        "a second start does nothing"
    );
    eventually("checks running", || server.checks() >= 2).await;

    drop(upstream);
    tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the loop ends")
        .unwrap();
}

#[tokio::test]
async fn a_lease_counts_in_flight_until_dropped() {
    let upstream = upstream_of(&["a:1"], fast_policy());
    let lease = upstream.pick().unwrap();
    assert_eq!(lease.upstream(), "test");
    assert_eq!(upstream.statuses()[0].in_flight, 1);
    drop(lease);
    let status = &upstream.statuses()[0];
    assert_eq!(status.in_flight, 0);
    assert!(status.available());
}

#[tokio::test]
async fn every_upstream_of_the_settings_is_built_or_the_bad_one_named() {
    let settings = BTreeMap::from([
        ("catalog".to_owned(), "http://a:1, http://b:2".to_owned()),
        ("order".to_owned(), "dns://order-headless:8084".to_owned()),
    ]);
    let upstreams = from_settings(&settings).unwrap();
    assert_eq!(upstreams["catalog"].statuses().len(), 2);
    assert_eq!(upstreams["order"].source(), &dns("order-headless", 8084));

    let bad = BTreeMap::from([("user".to_owned(), " ".to_owned())]);
    let error = format!("{:#}", from_settings(&bad).unwrap_err());
    assert!(error.starts_with("SHOP_UPSTREAMS__USER"), "{error}");
}
