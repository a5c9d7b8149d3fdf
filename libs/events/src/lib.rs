//! The event backbone: NATS JetStream with a transactional outbox on the producer side
//! and idempotent consumers on the other, so an acknowledged change's event is never
//! lost and never applied twice.
//!
//! ```text
//! request -> tx { state change + outbox row } -> commit -> NOTIFY
//!   relay -> SELECT .. FOR UPDATE SKIP LOCKED -> publish (Nats-Msg-Id = event id) -> acks -> mark sent
//!   consumer <- durable pull, explicit ack -> tx { processed_events + effect } -> commit -> ack
//!            \-> failure: NAK with backoff ... -> dlq.<consumer> with the reason
//! ```
//!
//! See `docs/events.md` for the subjects, streams and settings.

pub mod connect;
pub mod consumer;
pub mod contracts;
pub mod envelope;
pub mod metrics;
pub mod outbox;
pub mod relay;
pub mod streams;

pub use consumer::{
    Consumer, ConsumerConfig, EventHandler, HandlerError, is_unavailable, purge_processed,
};
pub use envelope::{DecodeError, Envelope, Event};
pub use outbox::{Outbox, outbox};
pub use relay::{Relay, RelayConfig};
pub use streams::{Namespace, RETENTION, context_of, ensure_dead_letter_stream, ensure_stream};
