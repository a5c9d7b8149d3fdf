//! Release routing: a canary's share set by weight and raised or rolled back by a
//! reload, and the header that pins a request to one version.

use std::time::Duration;

use crate::helpers::{GatewayFile, TestUpstream, eventually, one_route, spawn_gateway_on};

fn file_with_weight(weight: u8) -> String {
    one_route(
        "stable",
        &format!(
            "canary = {{ upstream = \"canary\", weight = {weight}, header = \"x-shop-canary\" }}"
        ),
        "",
    )
}

#[tokio::test]
async fn a_canary_takes_its_weight_of_traffic_and_a_rollback_takes_it_all_back() {
    let stable = TestUpstream::start("stable").await;
    let canary = TestUpstream::start("canary").await;
    let file = GatewayFile::new(&file_with_weight(0));
    let gateway = spawn_gateway_on(
        &file,
        &[("stable", stable.url()), ("canary", canary.url())],
        |s| s.reload_interval_ms = 50,
    )
    .await;
    let send = |n: usize| {
        let gateway = &gateway;
        async move {
            let mut to_canary = 0;
            for _ in 0..n {
                let response = gateway
                    .client
                    .get(gateway.url("/api/v1/things"))
                    .send()
                    .await
                    .unwrap();
                if response.headers()["x-upstream"] == "canary" {
                    to_canary += 1;
                }
            }
            to_canary
        }
    };

    assert_eq!(
        send(50).await,
        0,
        "weight 0: the canary is deployed but dark"
    );
    // The release dashboard's series, per track.
    let metrics = shop_http::observe::prometheus().render();
    for track in ["stable", "canary"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("gateway_release_requests_total")
                    && l.contains(&format!("track=\"{track}\""))),
            "gateway_release_requests_total for {track}"
        );
    }
    let pinned = gateway
        .client
        .get(gateway.url("/api/v1/things"))
        .header("x-shop-canary", "always")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pinned.headers()["x-upstream"],
        "canary",
        "a tester pins the canary"
    );

    file.write(&file_with_weight(30));
    eventually(Duration::from_secs(5), "weight 30 in force", || async {
        send(10).await > 0
    })
    .await;
    let share = send(400).await;
    assert!(
        (60..=180).contains(&share),
        "30% of 400 went to the canary: {share}"
    );

    file.write(&file_with_weight(100));
    eventually(Duration::from_secs(5), "weight 100 in force", || async {
        send(10).await == 10
    })
    .await;

    // Rollback.
    file.write(&file_with_weight(0));
    eventually(Duration::from_secs(5), "the rollback in force", || async {
        send(10).await == 0
    })
    .await;
    let never = gateway
        .client
        .get(gateway.url("/api/v1/things"))
        .header("x-shop-canary", "never")
        .send()
        .await
        .unwrap();
    assert_eq!(never.headers()["x-upstream"], "stable");
}
