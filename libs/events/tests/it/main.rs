//! The event backbone against a real Postgres and a real NATS JetStream.

mod consumer;
mod harness;
mod outbox;
