//! What reaches the upstream, and what comes back.

use serde_json::Value;

use crate::helpers::{GatewayFile, echo_upstream, one_route, spawn_gateway, spawn_gateway_on};

#[tokio::test]
async fn a_public_route_forwards_method_path_query_and_the_streamed_body() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;

    let echoed: Value = gateway
        .client
        .post(gateway.url("/api/v1/auth/login?x=1&y=%20z"))
        .body(vec![b'a'; 1000])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["uri"], "/api/v1/auth/login?x=1&y=%20z");
    assert_eq!(echoed["body_len"], 1000);
}

#[tokio::test]
async fn forwarding_headers_name_the_client_and_what_the_client_claimed_is_dropped() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";

    let response = gateway
        .client
        .get(gateway.url("/api/v1/products"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .header("baggage", "user=admin")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "1")
        .header("x-keep-me", "1")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("x-secret-hop").is_none(),
        "a header the upstream's Connection names does not come back"
    );
    assert_eq!(response.headers()["x-upstream"], "a");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let echoed: Value = response.json().await.unwrap();
    let headers = &echoed["headers"];

    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    let forwarded = headers["forwarded"].as_str().unwrap();
    assert!(
        forwarded.starts_with("for=127.0.0.1;proto=http;host="),
        "{forwarded}"
    );
    assert!(
        headers.get("baggage").is_none(),
        "client baggage is not passed on"
    );
    assert!(
        headers.get("x-drop-me").is_none(),
        "named by Connection: hop-by-hop"
    );
    assert_eq!(headers["x-keep-me"], "1");
    assert_eq!(
        headers["x-request-id"],
        request_id.as_str(),
        "one request id end to end"
    );
    let traceparent = headers["traceparent"].as_str().unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{trace}-")),
        "the client's trace continues upstream: {traceparent}"
    );
    assert!(
        !traceparent.contains("00f067aa0ba902b7"),
        "from the gateway's own span"
    );
}

#[tokio::test]
async fn requests_take_the_instances_of_an_upstream_in_turn_under_round_robin() {
    let a = echo_upstream("a").await;
    let b = echo_upstream("b").await;
    let file = GatewayFile::new(&one_route(
        "svc",
        "",
        "[upstreams.svc]\nbalance = \"round_robin\"\n",
    ));
    let gateway = spawn_gateway_on(&file, &[("svc", format!("{a},{b}"))], |_| {}).await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let response = gateway
            .client
            .get(gateway.url("/api/v1/things"))
            .send()
            .await
            .unwrap();
        seen.push(
            response.headers()["x-upstream"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);
}

#[tokio::test]
async fn upstream_requests_are_counted_by_route_upstream_instance_and_outcome() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    let ok = gateway
        .client
        .get(gateway.url("/api/v1/categories"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let metrics = gateway
        .client
        .get(gateway.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let instance = upstream.trim_start_matches("http://");
    let counted = metrics.lines().any(|line| {
        line.starts_with("gateway_upstream_requests_total{")
            && line.contains("route=\"categories\"")
            && line.contains("upstream=\"catalog\"")
            && line.contains(&format!("instance=\"{instance}\""))
            && line.contains("outcome=\"200\"")
    });
    assert!(counted, "{metrics}");
    assert!(
        metrics.contains("gateway_upstream_duration_seconds"),
        "{metrics}"
    );
}
