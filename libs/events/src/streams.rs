//! The JetStream streams: one per context, owned (created or updated at start-up) by
//! the service of that context, plus the dead-letter stream.
//!
//! The contexts and their streams come from the one list of services
//! (`shop_topology::SERVICES`).
//!
//! Retention and de-duplication (see `docs/events.md`): streams keep events for 7 days
//! (a consumer can be down for a week and catch up) up to 1 GiB each, on file storage;
//! the broker drops a message whose `Nats-Msg-Id` it has seen in the last 2 minutes,
//! which covers a relay re-publishing a batch whose acks it lost.
//!
//! A full stream *refuses* new messages (`discard: new`) instead of deleting its
//! oldest ones (NATS's default, `discard: old`): deleting would drop events a durable
//! consumer may not have seen yet. A refused publish fails in the relay, the rows stay
//! in the producer's outbox (the `outbox_backlog` alert fires) and flow again once
//! there is room. Nothing is lost; the price is that producers' outboxes grow.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
pub const MAX_BYTES: i64 = 1024 * 1024 * 1024;
pub const DEAD_LETTER_STREAM: &str = "DEAD_LETTERS";
/// Dead letters are kept longer: someone has to look at them.
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where names live: the empty namespace in production; tests use a unique prefix so
/// parallel tests on one NATS never see each other's streams, subjects or consumers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn prefixed(prefix: impl Into<String>) -> Self {
        Self(prefix.into())
    }

    /// `users.user.registered` -> `<prefix>.users.user.registered`
    pub fn subject(&self, subject: &str) -> String {
        if self.0.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.0)
        }
    }

    /// `USERS` -> `<prefix>_USERS` (stream and consumer names allow no dots)
    pub fn name(&self, name: &str) -> String {
        if self.0.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{name}", self.0)
        }
    }

    /// The subject a consumer parks poison messages on: `dlq.<consumer>`.
    pub fn dead_letter_subject(&self, consumer: &str) -> String {
        self.subject(&format!("dlq.{consumer}"))
    }
}

/// The stream of a context (`users` -> `USERS`).
pub fn stream_of(context: &str) -> Option<&'static str> {
    shop_topology::contexts()
        .find(|e| e.context == context)
        .map(|e| e.stream)
}

/// The context of a subject or event type (`users.user.registered` -> `users`).
pub fn context_of(subject: &str) -> &str {
    subject.split('.').next().unwrap_or(subject)
}

/// Creates the context's stream, or brings its configuration up to date.
pub async fn ensure_stream(
    js: &jetstream::Context,
    ns: &Namespace,
    context: &str,
) -> anyhow::Result<()> {
    let stream = stream_of(context).ok_or_else(|| anyhow::anyhow!("unknown context {context}"))?;
    let config = stream::Config {
        name: ns.name(stream),
        subjects: vec![ns.subject(&format!("{context}.>"))],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: RETENTION,
        max_bytes: MAX_BYTES,
        discard: stream::DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    js.create_or_update_stream(config).await?;
    Ok(())
}

/// Creates the dead-letter stream (`dlq.>`), or brings it up to date.
pub async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    ns: &Namespace,
) -> anyhow::Result<()> {
    let config = stream::Config {
        name: ns.name(DEAD_LETTER_STREAM),
        subjects: vec![ns.subject("dlq.>")],
        storage: stream::StorageType::File,
        max_age: DEAD_LETTER_RETENTION,
        max_bytes: MAX_BYTES,
        // Full: the dead-letter publish fails and the consumer NAKs the message, which
        // stays in its own stream; nothing is dropped.
        discard: stream::DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    js.create_or_update_stream(config).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_separates_names_and_subjects() {
        let ns = Namespace::prefixed("t1");
        assert_eq!(
            ns.subject("users.user.registered"),
            "t1.users.user.registered"
        );
        assert_eq!(ns.name("USERS"), "t1_USERS");
        assert_eq!(
            Namespace::root().dead_letter_subject("welcome-mail"),
            "dlq.welcome-mail"
        );
        assert_eq!(stream_of("orders"), Some("ORDERS"));
        assert_eq!(context_of("payments.payment.authorized"), "payments");
    }
}
