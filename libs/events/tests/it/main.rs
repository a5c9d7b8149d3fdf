//! The event backbone against a real Postgres and a real NATS JetStream.

mod consumer;
mod failures;
mod harness;
mod outbox;
mod tls;
