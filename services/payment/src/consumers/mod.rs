//! What the payment service does when the checkout's commands arrive: one durable
//! consumer per command (`payments.payment.authorize|capture|void`, on its own
//! `PAYMENTS` stream), each delegating to `crate::commands`.
//!
//! Each takes one command per transaction (`batch = 1`): a batch would lock the
//! payment rows of several orders at once, in no global order, and two batches could
//! deadlock. No handler waits for the processor's authorization (the authorizer
//! does, outside any transaction), so every command is acked within milliseconds,
//! far inside the ack wait.

use std::time::Duration;

use shop_events::ConsumerConfig;

pub mod authorize;
pub mod capture;
pub mod void;

/// One command per transaction, several in flight.
pub fn config(name: &str, ack_wait_ms: u64) -> ConsumerConfig {
    ConsumerConfig {
        batch: 1,
        concurrency: 8,
        ack_wait: Duration::from_millis(ack_wait_ms),
        ..ConsumerConfig::new(name)
    }
}
