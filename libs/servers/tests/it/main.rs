//! Integration tests of shop-servers: real Postgres and nats-server processes start,
//! answer, stop (also when found only through their pid files), and never outlive us.

mod nats;
mod postgres;
mod process;

use std::path::PathBuf;
use std::time::Duration;

use shop_servers::LogSink;
use tokio::sync::mpsc;

/// A temporary folder the server (which runs as `postgres` when we are root) can use,
/// kept for the server to delete (`remove_after_stop`) or for a post-mortem.
fn scratch(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .unwrap()
        .keep();
    if let Some(owner) = shop_servers::postgres::postgres_owner().unwrap() {
        owner.chown(&dir).unwrap();
    }
    dir
}

/// A sink that hands every output line to the returned receiver.
fn lines() -> (LogSink, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = LogSink::Lines(std::sync::Arc::new(move |line: &str| {
        let _ = tx.send(line.to_owned());
    }));
    (sink, rx)
}

/// Waits (up to 10 s) for a line of output equal to `wanted`.
async fn wait_for_line(output: &mut mpsc::UnboundedReceiver<String>, wanted: &str) {
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = output.recv().await {
            if line == wanted {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "no line {wanted:?} within 10 s");
}

/// Polls `condition` every 20 ms until it holds; panics after 10 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
