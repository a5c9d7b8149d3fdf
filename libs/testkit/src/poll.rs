//! Waiting for something asynchronous in a test: poll with a deadline, never sleep
//! for a guessed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 25 ms until it holds, failing the test after `patience`.
pub async fn eventually<F, Fut>(patience: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < patience, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
