//! The edge's own policies: rate limits per client, API keys, methods, CORS, security
//! headers and the bound on request heads.

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{GatewayFile, echo_upstream, problem, spawn_gateway_on};

const KEY: &str = "sk_test_key_of_the_partner";

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn edge_file() -> String {
    format!(
        r#"[[routes]]
name = "things"
prefix = "/api/v1/things"
upstream = "svc"
policy = "public"
methods = ["GET", "POST"]
timeout_ms = 2000
rate_limit = "tight"

[[routes]]
name = "partner"
prefix = "/partner/things"
rewrite = "/api/v1/things"
upstream = "svc"
policy = "api_key"
timeout_ms = 2000

[[consumers]]
name = "partner-feed"
key_sha256 = "{}"
rate_limit = "partner"

[rate_limits.tight]
requests = 3
per_seconds = 60

[rate_limits.partner]
requests = 2
per_seconds = 60

[cors]
allow_origins = ["https://shop.example"]
"#,
        sha256_hex(KEY)
    )
}

#[tokio::test]
async fn a_client_over_its_budget_gets_429_with_retry_after_and_others_keep_theirs() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |_| {}).await;
    let url = gateway.url("/api/v1/things");

    for remaining in [2, 1, 0] {
        let response = gateway.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let ratelimit = response.headers()["ratelimit"].to_str().unwrap();
        assert!(ratelimit.contains(&format!("r={remaining}")), "{ratelimit}");
        assert!(response.headers().contains_key("ratelimit-policy"));
    }
    let refused = gateway.client.get(&url).send().await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(refused.headers().contains_key("ratelimit"));
    let body = problem(refused, 429).await;
    assert_eq!(body["type"], "urn:shop:problem:too-many-requests");

    // A signed-in user is counted by account, not by address.
    let token = gateway.customer();
    let response = gateway
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "a public route counts by address");
    // The API-key consumer has a budget of its own.
    let response = gateway
        .client
        .get(gateway.url("/partner/things"))
        .header("apikey", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_api_key_route_takes_only_a_valid_key_and_the_key_never_goes_upstream() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |_| {}).await;
    let url = gateway.url("/partner/things?x=1");

    problem(gateway.client.get(&url).send().await.unwrap(), 401).await;
    problem(
        gateway
            .client
            .get(&url)
            .header("apikey", "sk_guess")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    let token = gateway.customer();
    problem(
        gateway
            .client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;

    let echoed: Value = gateway
        .client
        .get(&url)
        .header("apikey", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        echoed["uri"], "/api/v1/things?x=1",
        "rewritten to the catalog's path"
    );
    assert!(
        echoed["headers"].get("apikey").is_none(),
        "the key stays at the edge"
    );

    // The consumer's own budget (2 a minute), not the route's.
    gateway
        .client
        .get(&url)
        .header("apikey", KEY)
        .send()
        .await
        .unwrap();
    let over = gateway
        .client
        .get(&url)
        .header("apikey", KEY)
        .send()
        .await
        .unwrap();
    problem(over, 429).await;
}

#[tokio::test]
async fn a_method_the_route_does_not_take_is_405_with_allow() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |_| {}).await;

    let response = gateway
        .client
        .delete(gateway.url("/api/v1/things/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, POST");
    problem(response, 405).await;
}

#[tokio::test]
async fn cors_answers_preflights_for_allowed_origins_only_and_every_answer_has_security_headers() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |_| {}).await;
    let url = gateway.url("/api/v1/things");

    let preflight = gateway
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(
        preflight
            .headers()
            .contains_key("access-control-allow-methods")
    );
    assert!(
        preflight
            .headers()
            .contains_key("access-control-allow-headers")
    );
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = gateway
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(refused.status(), 403);

    let answer = gateway
        .client
        .get(&url)
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    for response in [
        answer,
        gateway
            .client
            .get(gateway.url("/nowhere"))
            .send()
            .await
            .unwrap(),
    ] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(headers.contains_key("referrer-policy"));
        assert!(
            headers.get("strict-transport-security").is_none(),
            "plain HTTP: no HSTS"
        );
    }
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_refused_with_431() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |s| {
        s.http.max_header_bytes = 8192
    })
    .await;
    let address = gateway.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "GET /api/v1/things HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    // The gateway may close while the head is still being written.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let normal = gateway
        .client
        .get(gateway.url("/api/v1/things"))
        .send()
        .await
        .unwrap();
    assert_eq!(normal.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_it_names_is_limited_forwarded_and_kept_from_metrics() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    // The test's requests come from 127.0.0.1: here, the Ingress controller.
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |s| {
        s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let url = gateway.url("/api/v1/things");
    // What ingress-nginx sends: the client's own claim ("6.6.6.6") first, then the
    // address it saw; the scheme and host the client used.
    let from = |client: &str| {
        gateway
            .client
            .get(&url)
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "shop.example")
    };

    for _ in 0..3 {
        assert_eq!(from("203.0.113.1").send().await.unwrap().status(), 200);
    }
    assert_eq!(
        from("203.0.113.1").send().await.unwrap().status(),
        429,
        "the client the proxy names spent its budget"
    );
    let response = from("203.0.113.2").send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "another client keeps its own budget"
    );
    assert!(
        response.headers().contains_key("strict-transport-security"),
        "the client is on HTTPS: HSTS"
    );
    let echoed: Value = response.json().await.unwrap();
    let headers = &echoed["headers"];
    assert_eq!(headers["x-forwarded-for"], "203.0.113.2");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "shop.example");
    assert_eq!(
        headers["forwarded"],
        "for=203.0.113.2;proto=https;host=\"shop.example\""
    );

    // /metrics: a public client through the proxy is a public client.
    let metrics = gateway.url("/metrics");
    let relayed = gateway
        .client
        .get(&metrics)
        .header("x-forwarded-for", "203.0.113.2")
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), 404);
    let scraped = gateway.client.get(&metrics).send().await.unwrap();
    assert_eq!(scraped.status(), 200, "Prometheus, next to the gateway");
}

#[tokio::test]
async fn an_untrusted_peer_cannot_pick_its_address_with_forwarding_headers() {
    let upstream = echo_upstream("a").await;
    let file = GatewayFile::new(&edge_file());
    let gateway = spawn_gateway_on(&file, &[("svc", upstream)], |s| {
        s.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let url = gateway.url("/api/v1/things");
    for (i, invented) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .into_iter()
        .enumerate()
    {
        let response = gateway
            .client
            .get(&url)
            .header("x-forwarded-for", invented)
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        assert!(!response.headers().contains_key("strict-transport-security"));
        let echoed: Value = response.json().await.unwrap();
        assert_eq!(echoed["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(echoed["headers"]["x-forwarded-proto"], "http");
    }
    let refused = gateway
        .client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.4")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429, "one budget: the peer's");
}
