//! Thread per core (`SHOP_CORES`): connections spread over the cores, each core with
//! its own upstream connections, and a stop that drains every core.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use serde_json::Value;
use shop_gateway::Settings;
use shop_testkit::TestIssuer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::helpers::{GatewayFile, echo_upstream, eventually, one_route, spawn_gateway_on};

/// A client of its own, so each one is a connection of its own to the gateway.
fn own_connection() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_core_keeps_its_own_pooled_connections_to_the_upstream() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&one_route("things", "", ""));
    let gateway = spawn_gateway_on(&file, &[("things", upstream)], |s| s.cores = 3).await;

    // Three client connections, handed to the three cores in turn; two requests
    // each, one after the other. The echo says which connection of the gateway's
    // brought the request (its address on the upstream's side).
    let mut per_client = Vec::new();
    for _ in 0..3 {
        let client = own_connection();
        let mut peers = BTreeSet::new();
        for _ in 0..2 {
            let echoed: Value = client
                .get(gateway.url("/api/v1/things"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            peers.insert(echoed["peer"].as_str().unwrap().to_owned());
        }
        per_client.push(peers);
    }

    for peers in &per_client {
        assert_eq!(
            peers.len(),
            1,
            "a core reuses its pooled upstream connection: {per_client:?}"
        );
    }
    let all: BTreeSet<_> = per_client.iter().flatten().collect();
    // One shared pool would have sent all six requests, one at a time, over a single
    // upstream connection.
    assert_eq!(
        all.len(),
        3,
        "every core opened its own upstream connection: {per_client:?}"
    );
}

/// An upstream whose answers take `delay`; counts the requests it has received.
async fn slow_upstream(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = Router::new().fallback(any(move |request: Request| {
        let counter = counter.clone();
        async move {
            if request.uri().path() != "/readyz" {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
            }
            "done"
        }
    }));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}"), received)
}

#[tokio::test]
async fn a_stop_lets_the_requests_in_flight_on_every_core_finish_then_closes() {
    shop_telemetry::init_for_tests();
    let (upstream, received) = slow_upstream(Duration::from_millis(600)).await;
    let file = GatewayFile::new(&one_route("things", "", ""));
    let mut settings = Settings::default();
    settings.http.port = 0;
    settings.cores = 2;
    settings.gateway_file = PathBuf::from(&file.path);
    settings.upstreams = [("things".to_owned(), upstream)].into_iter().collect();
    let issuer = TestIssuer::new();
    let app = shop_gateway::build(settings, issuer.verifier())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}/api/v1/things", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // Two connections: one on each core.
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let client = own_connection();
            let url = url.clone();
            tokio::spawn(async move { client.get(url).send().await })
        })
        .collect();
    eventually(Duration::from_secs(5), "both requests upstream", || {
        let received = received.clone();
        async move { received.load(Ordering::SeqCst) == 2 }
    })
    .await;
    stop.send(()).unwrap();

    for request in in_flight {
        let response = request.await.unwrap().expect("answered, not cut off");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "done");
    }
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("every core drained and stopped")
        .unwrap()
        .expect("the gateway stopped cleanly");
    assert!(
        own_connection().get(&url).send().await.is_err(),
        "a stopped gateway takes no new connection"
    );
}
