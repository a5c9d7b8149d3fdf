//! The server's connection handling: the header-read deadline, the peer address for
//! handlers, and the graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use shop_http::HttpSettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

use crate::helpers::{TestServer, eventually, get as fetch};

/// Far longer than any deadline configured here, so only a server that never closes
/// the connection runs into it.
const PATIENCE: Duration = Duration::from_secs(10);

fn echo_peer() -> Router {
    Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    )
}

fn settings_with_header_timeout(ms: u64) -> HttpSettings {
    HttpSettings {
        header_read_timeout_ms: ms,
        ..HttpSettings::on_port(0)
    }
}

#[tokio::test]
async fn a_client_that_stalls_mid_request_line_is_disconnected_while_others_are_served() {
    let server = TestServer::start(echo_peer(), settings_with_header_timeout(200)).await;

    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(b"GET /peer HT").await.unwrap();

    let response = fetch(server.addr, "/peer").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, stalled.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the stalled connection is still open after {PATIENCE:?}"
    );
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = TestServer::start(echo_peer(), HttpSettings::on_port(0)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with(&local.to_string()), "{response}");
}

#[tokio::test]
async fn shutting_down_stops_accepting_but_lets_a_slow_request_in_flight_finish() {
    let (started_tx, mut started) = mpsc::channel::<()>(1);
    let release = Arc::new(Notify::new());
    let router = {
        let release = release.clone();
        Router::new().route(
            "/slow",
            get(move || {
                let started_tx = started_tx.clone();
                let release = release.clone();
                async move {
                    let _ = started_tx.send(()).await;
                    release.notified().await;
                    "finished"
                }
            }),
        )
    };
    let mut server = TestServer::start(router, HttpSettings::on_port(0)).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(fetch(addr, "/slow"));
    started.recv().await.unwrap();

    server.shut_down();
    eventually(PATIENCE, "the listener to close", || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;

    release.notify_one();
    let response = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the in-flight request is answered")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("finished"), "{response}");
    server.stopped(PATIENCE).await.unwrap();
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_refused_with_431_and_a_normal_one_passes() {
    let settings = HttpSettings {
        max_header_bytes: 8192,
        ..HttpSettings::on_port(0)
    };
    let server = TestServer::start(echo_peer(), settings).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let padding = "a".repeat(16 * 1024);
    let request = format!("GET /peer HTTP/1.1\r\nHost: test\r\nX-Pad: {padding}\r\n\r\n");
    // The server may close while the head is still being written.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");

    let normal = fetch(server.addr, "/peer").await;
    assert!(normal.starts_with("HTTP/1.1 200"), "{normal}");
}
