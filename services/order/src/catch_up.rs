//! Deadlines after a restart: a deadline says "no answer came in time", but while the
//! order service was down, answers kept arriving in the streams unhandled. Enforcing
//! the deadlines before they are handled would cancel orders whose stock was reserved,
//! or whose payment was authorized, in time.
//!
//! So after start-up the deadline job waits until the consumers of the answers it races
//! (`stock.reserved`, `.rejected`, `.expired`, `payment.authorized`, `.declined`) have
//! nothing pending, once; from then on it runs on schedule. If they never drain (a
//! broker that cannot be asked), it stops waiting after `patience`: a deadline enforced
//! late is better than none. The patience outlasts the consumers' ack wait: an answer
//! published just as the service stopped may have been handed to the dead process's
//! last pull request, and counts as unacknowledged until the ack wait redelivers it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use shop_events::{Namespace, context_of};
use tokio::time::Instant;

/// Whether the answers that waited while the service was down are handled.
#[derive(Debug, Clone)]
pub struct CatchUp {
    js: jetstream::Context,
    /// (stream, durable consumer), both namespaced.
    consumers: Arc<[(String, String)]>,
    done: Arc<AtomicBool>,
    started: Instant,
    patience: Duration,
}

impl CatchUp {
    /// Watches the consumers named in `consumers`: (the event type it reads, its name).
    pub fn new(
        js: jetstream::Context,
        ns: &Namespace,
        consumers: &[(&str, &str)],
        patience: Duration,
    ) -> Self {
        let consumers = consumers
            .iter()
            .filter_map(|(kind, name)| {
                let stream = shop_events::streams::stream_of(context_of(kind))?;
                Some((ns.name(stream), ns.name(name)))
            })
            .collect();
        Self {
            js,
            consumers,
            done: Arc::new(AtomicBool::new(false)),
            started: Instant::now(),
            patience,
        }
    }

    /// True once every watched consumer has been seen with nothing pending (or
    /// `patience` has passed since start-up); stays true.
    pub async fn caught_up(&self) -> bool {
        if self.done.load(Ordering::Relaxed) {
            return true;
        }
        if self.started.elapsed() >= self.patience {
            tracing::warn!(
                patience_ms = self.patience.as_millis() as u64,
                "answer consumers did not drain in time; enforcing deadlines anyway"
            );
            self.done.store(true, Ordering::Relaxed);
            return true;
        }
        for (stream, consumer) in self.consumers.iter() {
            if !self.drained(stream, consumer).await {
                tracing::debug!(%consumer, "deadlines wait: answers still pending");
                return false;
            }
        }
        tracing::info!("answers that waited during start-up are handled; deadlines enforced");
        self.done.store(true, Ordering::Relaxed);
        true
    }

    /// Whether the consumer exists and has nothing undelivered or unacknowledged.
    async fn drained(&self, stream: &str, consumer: &str) -> bool {
        let Ok(stream) = self.js.get_stream_no_info(stream).await else {
            return false;
        };
        match stream.consumer_info(consumer).await {
            Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
            // Not created yet: its consumer task has not started.
            Err(_) => false,
        }
    }
}
