//! Failures upstream: retries on another instance, the retry budget, the circuit
//! breaker, and an instance killed under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::helpers::{
    GatewayFile, Mode, TestUpstream, eventually, one_route, problem, spawn_gateway_on,
};

/// Health checks and passive ejection slowed right down, so a test sees the retry or
/// the breaker alone.
const NO_EJECTION: &str = "[upstreams.svc]\nhealth_interval_ms = 60000\neject_after = 100000\n";

#[tokio::test]
async fn a_get_that_fails_on_one_instance_is_retried_on_the_other_and_the_client_sees_200() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    a.set(Mode::Failing);
    let file = GatewayFile::new(&one_route(
        "svc",
        "retries = 1",
        // Half the requests need a retry here, past the default budget's 20%.
        &format!("[retry_budget]\nratio = 1.0\n{NO_EJECTION}balance = \"round_robin\"\n"),
    ));
    let gateway = spawn_gateway_on(
        &file,
        &[("svc", format!("{},{}", a.url(), b.url()))],
        |_| {},
    )
    .await;

    for _ in 0..20 {
        let response = gateway
            .client
            .get(gateway.url("/api/v1/things"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-upstream"], "b");
    }
    assert!(a.hits() >= 5, "round-robin sent a share to a: {}", a.hits());
    assert_eq!(b.hits(), 20, "each request answered once by b");
}

#[tokio::test]
async fn a_post_is_never_sent_twice_even_when_its_instance_fails() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    a.set(Mode::Failing);
    let file = GatewayFile::new(&one_route(
        "svc",
        "retries = 3",
        &format!(
            "{NO_EJECTION}balance = \"round_robin\"\n[upstreams.svc.breaker]\nmin_requests = 1000\nconsecutive_failures = 1000\n"
        ),
    ));
    let gateway = spawn_gateway_on(
        &file,
        &[("svc", format!("{},{}", a.url(), b.url()))],
        |_| {},
    )
    .await;

    let mut refused = 0;
    for _ in 0..20 {
        let response = gateway
            .client
            .post(gateway.url("/api/v1/things"))
            .body("{}")
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            refused += 1;
        }
    }
    assert!(refused > 0, "some POSTs went to the failing instance");
    assert_eq!(a.hits(), refused, "each 503 is the one attempt a POST got");
    assert_eq!(a.hits() + b.hits(), 20, "no POST reached an upstream twice");
}

#[tokio::test]
async fn the_retry_budget_keeps_a_retry_storm_to_a_fraction_of_the_traffic() {
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    a.set(Mode::Failing);
    b.set(Mode::Failing);
    let file = GatewayFile::new(&one_route(
        "svc",
        "retries = 3",
        &format!(
            "[retry_budget]\nratio = 0.1\nmin_per_second = 1\n[retry_backoff]\nbase_ms = 1\nmax_ms = 2\n{NO_EJECTION}[upstreams.svc.breaker]\nmin_requests = 100000\nconsecutive_failures = 100000\n"
        ),
    ));
    let gateway = spawn_gateway_on(
        &file,
        &[("svc", format!("{},{}", a.url(), b.url()))],
        |_| {},
    )
    .await;

    let requests = 200;
    for _ in 0..requests {
        let response = gateway
            .client
            .get(gateway.url("/api/v1/things"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
    }
    let attempts = a.hits() + b.hits();
    // Without the budget every request would make 4 attempts (800); with it, retries
    // add at most 10% of the requests plus one a second.
    let allowed_retries = requests / 10 + 1 + 10;
    assert!(
        attempts <= requests + allowed_retries,
        "{attempts} attempts for {requests} requests"
    );
    assert!(attempts > requests, "some retries were allowed");
}

#[tokio::test]
async fn the_breaker_opens_on_a_failing_upstream_fails_fast_and_closes_once_it_recovers() {
    let a = TestUpstream::start("a").await;
    a.set(Mode::Failing);
    let file = GatewayFile::new(&one_route(
        "svc",
        "retries = 0",
        &format!(
            "{NO_EJECTION}[upstreams.svc.breaker]\nmin_requests = 5\nfailure_ratio = 0.5\nopen_ms = 300\nhalf_open_probes = 1\n"
        ),
    ));
    let gateway = spawn_gateway_on(&file, &[("svc", a.url())], |_| {}).await;
    let get = || gateway.client.get(gateway.url("/api/v1/things")).send();

    for _ in 0..5 {
        assert_eq!(get().await.unwrap().status(), 503);
    }
    let body = problem(get().await.unwrap(), 503).await;
    assert_eq!(body["type"], "urn:shop:problem:circuit-open");
    let reached = a.hits();
    for _ in 0..20 {
        let response = get().await.unwrap();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
    }
    assert_eq!(a.hits(), reached, "nothing reaches the upstream while open");

    a.set(Mode::Healthy);
    eventually(Duration::from_secs(5), "the breaker to close", || async {
        get().await.unwrap().status() == 200
    })
    .await;
    for _ in 0..10 {
        assert_eq!(get().await.unwrap().status(), 200, "closed again");
    }
}

#[tokio::test]
async fn an_instance_killed_under_load_costs_no_failed_get_and_gets_traffic_again_when_it_returns()
{
    let mut a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let file = GatewayFile::new(&one_route(
        "svc",
        "retries = 2",
        // Every request that met the dead instance is retried: this test is about the
        // failover, the budget's limit is the storm test's.
        "[retry_budget]\nratio = 1.0\nmin_per_second = 1000\n[upstreams.svc]\nhealth_interval_ms = 100\nhealth_timeout_ms = 100\nunhealthy_after = 1\nhealthy_after = 1\n",
    ));
    let gateway = Arc::new(
        spawn_gateway_on(
            &file,
            &[("svc", format!("{},{}", a.url(), b.url()))],
            |_| {},
        )
        .await,
    );

    // Four clients keep requesting while the instance dies and comes back.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (gateway, stop, ok, failed) =
                (gateway.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let response = gateway
                        .client
                        .get(gateway.url("/api/v1/things"))
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();

    eventually(Duration::from_secs(5), "a to serve", || async {
        a.hits() > 20
    })
    .await;
    a.stop();
    let served_by_b = b.hits();
    eventually(Duration::from_secs(5), "b to take the load", || async {
        b.hits() > served_by_b + 200
    })
    .await;

    a.restart().await;
    let served_by_a = a.hits();
    eventually(Duration::from_secs(5), "a to get traffic again", || async {
        a.hits() > served_by_a + 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "every GET was answered ({} ok): a dead instance's requests were retried elsewhere",
        ok.load(Ordering::SeqCst)
    );
}
