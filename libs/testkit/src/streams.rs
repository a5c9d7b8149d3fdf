//! Reading what landed in a JetStream stream, for assertions.

use std::time::{Duration, Instant};

use async_nats::jetstream;

/// The value of `header` on every message of `stream`, in order, once the stream holds
/// at least `n` (an absent header reads as empty). Fails the test after `patience`.
/// The dead letters' reasons, for one: `stream_headers(js, "<ns>_DEAD_LETTERS",
/// DEAD_LETTER_REASON, n, patience)`.
pub async fn stream_headers(
    js: &jetstream::Context,
    stream: &str,
    header: &str,
    n: usize,
    patience: Duration,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let mut handle = js.get_stream(stream).await.unwrap();
        let stored = handle.info().await.unwrap().state.messages;
        if stored as usize >= n {
            let mut values = Vec::new();
            for seq in 1..=stored {
                let message = handle.get_raw_message(seq).await.unwrap();
                let value = message
                    .headers
                    .get(header)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                values.push(value);
            }
            return values;
        }
        assert!(
            started.elapsed() < patience,
            "{stored} messages in {stream}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
