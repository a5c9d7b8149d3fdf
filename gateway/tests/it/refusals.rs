//! Every refusal is problem+json and says nothing of the inside.

use std::time::{Duration, Instant};

use shop_gateway::file::Checked;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{dead_upstream, echo_upstream, problem, spawn_gateway};

#[tokio::test]
async fn an_unknown_path_and_an_internal_one_are_not_found() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    for path in [
        "/nowhere",
        "/api/v1/internal/products/lookup",
        "/api/v1/productsx",
    ] {
        let response = gateway.client.get(gateway.url(path)).send().await.unwrap();
        problem(response, 404).await;
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_503_with_retry_after_and_no_internal_detail() {
    let dead = dead_upstream();
    let gateway = spawn_gateway(&dead, |_| {}).await;

    let response = gateway
        .client
        .get(gateway.url("/api/v1/products"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["retry-after"], "1");
    let body = problem(response, 503).await;
    let text = body.to_string();
    assert!(!text.contains("127.0.0.1"), "no address leaks: {text}");
    assert!(
        !text.to_lowercase().contains("connect"),
        "no cause leaks: {text}"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_cut_off_at_the_routes_timeout_with_a_504() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    // The jwks route has the shortest timeout of the shipped file: 2 s.
    let started = Instant::now();

    let response = gateway
        .client
        .get(gateway.url("/.well-known/jwks.json/slow"))
        .send()
        .await
        .unwrap();

    problem(response, 504).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut at the timeout, not after 5 s"
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413_whether_declared_or_streamed() {
    let upstream = echo_upstream("a").await;
    let gateway = spawn_gateway(&upstream, |_| {}).await;
    let url = gateway.url("/api/v1/auth/register");

    let declared = gateway
        .client
        .post(&url)
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    problem(declared, 413).await;

    // No Content-Length, a chunked body: the limit is enforced on the stream itself.
    let address = gateway.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut request = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nhost: {address}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..8 {
        request.extend_from_slice(b"200\r\n");
        request.extend_from_slice(&[b'a'; 512]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[tokio::test]
async fn a_gateway_file_naming_an_undefined_upstream_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("gateway-routes-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        "[[routes]]\nname = \"orders\"\nprefix = \"/api/v1/orders\"\nupstream = \"ordr\"\npolicy = \"authenticated\"\ntimeout_ms = 1000\n",
    )
    .unwrap();
    let upstreams = [("order".to_owned(), "http://127.0.0.1:1".to_owned())].into();

    let error = format!("{:#}", Checked::load(&file, &upstreams).unwrap_err());

    assert!(error.contains("routes[0] (\"orders\")"), "{error}");
    assert!(error.contains("\"ordr\" is not defined"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}
