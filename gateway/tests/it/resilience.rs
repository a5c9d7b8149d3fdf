//! Failures upstream: retries on another instance, the retry budget, the circuit
//! breaker, and an instance killed under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;

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

/// An upstream that holds every request but its health checks until the test opens
/// its gate, and counts the most it held at once.
struct Holding {
    url: String,
    open: tokio::sync::watch::Sender<bool>,
    peak: Arc<AtomicUsize>,
}

impl Holding {
    async fn start() -> Self {
        let (open, gate) = tokio::sync::watch::channel(false);
        let peak = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(AtomicUsize::new(0));
        let counted = peak.clone();
        let app = axum::Router::new()
            .route("/readyz", axum::routing::get(|| async { "ready" }))
            .fallback(move || {
                let (mut gate, held, peak) = (gate.clone(), held.clone(), counted.clone());
                async move {
                    let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    held.fetch_sub(1, Ordering::SeqCst);
                    "done"
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, open, peak }
    }
}

#[tokio::test]
async fn requests_beyond_an_instances_max_connections_wait_at_the_gateway_then_all_succeed() {
    let upstream = Holding::start().await;
    let file = GatewayFile::new(
        "[[routes]]\nname = \"things\"\nprefix = \"/api/v1/things\"\nupstream = \"svc\"\n\
         policy = \"public\"\ntimeout_ms = 30000\n\
         [upstreams.svc]\nhealth_interval_ms = 60000\nmax_connections = 2\n",
    );
    let gateway = spawn_gateway_on(&file, &[("svc", upstream.url.clone())], |_| {}).await;
    let gateway = Arc::new(gateway);
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                let response = gateway
                    .client
                    .get(gateway.url("/api/v1/things"))
                    .send()
                    .await
                    .unwrap();
                response.status()
            })
        })
        .collect();
    // All six are at the gateway (two sent upstream, four waiting for a slot).
    eventually(Duration::from_secs(10), "six requests in flight", || {
        let gateway = gateway.clone();
        async move {
            gateway.handle.snapshot().backends["svc"]
                .upstream
                .statuses()
                .iter()
                .map(|s| s.in_flight)
                .sum::<usize>()
                == 6
        }
    })
    .await;
    assert_eq!(
        upstream.peak.load(Ordering::SeqCst),
        2,
        "only two reached it"
    );
    upstream.open.send_replace(true);
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(upstream.peak.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_request_that_waits_for_a_slot_past_its_routes_timeout_gets_504() {
    let upstream = Holding::start().await;
    // Two routes to one instance with a single slot: a patient request holds it, a
    // hasty one waits for it past its own timeout.
    let file = GatewayFile::new(
        "[[routes]]\nname = \"patient\"\nprefix = \"/api/v1/patient\"\nupstream = \"svc\"\n\
         policy = \"public\"\ntimeout_ms = 30000\n\
         [[routes]]\nname = \"hasty\"\nprefix = \"/api/v1/hasty\"\nupstream = \"svc\"\n\
         policy = \"public\"\ntimeout_ms = 300\n\
         [upstreams.svc]\nhealth_interval_ms = 60000\nmax_connections = 1\n",
    );
    let gateway = Arc::new(spawn_gateway_on(&file, &[("svc", upstream.url.clone())], |_| {}).await);
    let patient = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let response = gateway
                .client
                .get(gateway.url("/api/v1/patient"))
                .send()
                .await
                .unwrap();
            response.status()
        })
    };
    eventually(
        Duration::from_secs(10),
        "the patient request upstream",
        || async { upstream.peak.load(Ordering::SeqCst) == 1 },
    )
    .await;
    let hasty = gateway
        .client
        .get(gateway.url("/api/v1/hasty"))
        .send()
        .await
        .unwrap();
    let body = problem(hasty, 504).await;
    assert_eq!(body["title"], "The service did not answer in time.");
    assert_eq!(
        upstream.peak.load(Ordering::SeqCst),
        1,
        "it never went upstream"
    );
    upstream.open.send_replace(true);
    assert_eq!(patient.await.unwrap(), 200);
}

#[tokio::test]
async fn a_client_that_never_reads_its_body_does_not_hold_the_instances_slot() {
    // One slot; an upstream whose `/api/v1/things/endless` answers at once with a body
    // that never ends, and whose other paths answer normally.
    let app = axum::Router::new()
        .route("/readyz", axum::routing::get(|| async { "ready" }))
        .route(
            "/api/v1/things/endless",
            axum::routing::get(|| async {
                let first = futures::stream::once(async {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"first chunk"))
                });
                axum::body::Body::from_stream(first.chain(futures::stream::pending()))
            }),
        )
        .fallback(|| async { "quick" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let file = GatewayFile::new(
        "[[routes]]\nname = \"things\"\nprefix = \"/api/v1/things\"\nupstream = \"svc\"\n\
         policy = \"public\"\ntimeout_ms = 2000\n\
         [upstreams.svc]\nhealth_interval_ms = 60000\nmax_connections = 1\n",
    );
    let gateway = spawn_gateway_on(&file, &[("svc", url)], |_| {}).await;

    let endless = gateway
        .client
        .get(gateway.url("/api/v1/things/endless"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        endless.status(),
        200,
        "its head arrived; its body never ends"
    );
    // The endless body is held, unread, while another request goes to the instance.
    let quick = gateway
        .client
        .get(gateway.url("/api/v1/things/other"))
        .send()
        .await
        .unwrap();
    assert_eq!(quick.status(), 200);
    assert_eq!(quick.text().await.unwrap(), "quick");
    drop(endless);
}
