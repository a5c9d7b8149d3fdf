//! Idempotent consumers: a durable JetStream pull consumer with explicit acks, whose
//! handler runs in a Postgres transaction that also records the event id.
//!
//! - Already recorded: the message is a redelivery or a duplicate, acked, no effect.
//! - Handler ok: commit, then ack. If the ack is lost the redelivery is a no-op.
//! - Transient failure: rollback, NAK with an exponential delay; after
//!   `max_deliveries` the message goes to the dead-letter subject.
//! - Permanent failure, unparseable message, unknown type or version: straight to the
//!   dead-letter subject with the reason. The consumer moves on either way.
//!
//! A message is terminated only after the dead-letter stream acknowledged its copy,
//! so even a poison message is never lost.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt as _;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument as _;

use crate::envelope::{DecodeError, Envelope};
use crate::metrics;
use crate::streams::{Namespace, stream_of};

/// Header names on a dead letter.
pub const DEAD_LETTER_REASON: &str = "Shop-Dead-Letter-Reason";
pub const DEAD_LETTER_SUBJECT: &str = "Shop-Original-Subject";
pub const DEAD_LETTER_DELIVERIES: &str = "Shop-Deliveries";
pub const DEAD_LETTER_CONSUMER: &str = "Shop-Consumer";

/// What a handler's failure means for the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (a database hiccup, a dependency down).
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed (the event contradicts our state): dead-letter it now.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Transient(e.into())
    }
}

impl From<DecodeError> for HandlerError {
    fn from(e: DecodeError) -> Self {
        HandlerError::Permanent(e.to_string())
    }
}

/// Reacts to events, inside the consumer's transaction.
pub trait Handler: Send + Sync + 'static {
    /// Whether this handler understands the type and version; others are dead-lettered.
    fn accepts(&self, kind: &str, version: u32) -> bool;

    /// Applies the event. Everything written through `tx` commits together with the
    /// record that the event was processed.
    fn handle(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// A consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Durable name, unique per purpose (`user-welcome-mail`); also the key in
    /// `processed_events` and the dead-letter subject `dlq.<name>`.
    pub name: String,
    /// The context whose stream it reads (`users`).
    pub context: String,
    /// Subjects (event types) it subscribes to, without namespace.
    pub subjects: Vec<String>,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliveries: i64,
    /// First retry delay; doubles per delivery up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Messages handled at once.
    pub concurrency: usize,
    /// How long the broker waits for an ack before redelivering.
    pub ack_wait: Duration,
}

impl ConsumerConfig {
    pub fn new(name: &str, context: &str, subjects: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            context: context.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            max_deliveries: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            concurrency: 32,
            ack_wait: Duration::from_secs(30),
        }
    }

    fn retry_delay(&self, delivered: i64) -> Duration {
        let exp = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        self.backoff.saturating_mul(1 << exp).min(self.max_backoff)
    }
}

/// A running consumer.
pub struct Consumer<H> {
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    config: ConsumerConfig,
    handler: Arc<H>,
}

impl<H: Handler> Consumer<H> {
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        ns: Namespace,
        config: ConsumerConfig,
        handler: H,
    ) -> Self {
        Self {
            pool,
            js,
            ns,
            config,
            handler: Arc::new(handler),
        }
    }

    /// Creates the durable consumer if needed and handles messages until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let stream_name = stream_of(&self.config.context)
            .ok_or_else(|| anyhow::anyhow!("unknown context {}", self.config.context))?;
        let stream = self.js.get_stream(self.ns.name(stream_name)).await?;
        let durable = self.ns.name(&self.config.name);
        let subjects: Vec<String> = self
            .config
            .subjects
            .iter()
            .map(|s| self.ns.subject(s))
            .collect();
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                pull::Config {
                    durable_name: Some(durable.clone()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    // We count deliveries ourselves and dead-letter; the broker must
                    // never silently give up on a message.
                    max_deliver: -1,
                    max_ack_pending: (self.config.concurrency * 4) as i64,
                    filter_subject: if subjects.len() == 1 {
                        subjects[0].clone()
                    } else {
                        String::new()
                    },
                    filter_subjects: if subjects.len() > 1 {
                        subjects
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                },
            )
            .await?;
        tracing::info!(consumer = %durable, "consumer started");
        let messages = consumer.messages().await?;
        let this = &self;
        messages
            .take_until(shutdown)
            .for_each_concurrent(self.config.concurrency, |message| async move {
                match message {
                    Ok(message) => this.process(message).await,
                    Err(e) => tracing::warn!(error = %e, "consumer: receiving failed"),
                }
            })
            .await;
        tracing::info!(consumer = %durable, "consumer stopped");
        Ok(())
    }

    async fn process(&self, message: jetstream::Message) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let span = tracing::info_span!(
            "event.handle",
            otel.kind = "consumer",
            consumer = %self.config.name,
            subject = %message.subject,
            delivered,
            event_id = tracing::field::Empty,
        );
        let headers = message.headers.clone();
        shop_telemetry::set_parent_with(&span, |key| {
            headers
                .as_ref()
                .and_then(|h| h.get(key))
                .map(|v| v.as_str().to_owned())
        });
        self.process_in_span(message, delivered)
            .instrument(span)
            .await;
    }

    async fn process_in_span(&self, message: jetstream::Message, delivered: i64) {
        let envelope = match Envelope::parse(&message.payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                return self
                    .dead_letter(message, delivered, "unparseable", &e.to_string())
                    .await;
            }
        };
        tracing::Span::current().record("event_id", tracing::field::display(envelope.id));
        if !self.handler.accepts(&envelope.kind, envelope.version) {
            let reason = format!("unknown event type {} v{}", envelope.kind, envelope.version);
            return self
                .dead_letter(message, delivered, "unknown_type", &reason)
                .await;
        }
        if delivered > self.config.max_deliveries {
            // Delivered again after we already gave up (e.g. we crashed mid-handling).
            let reason = format!("still failing after {} deliveries", delivered - 1);
            return self
                .dead_letter(message, delivered, "exhausted", &reason)
                .await;
        }
        match self.apply(&envelope).await {
            Ok(outcome) => {
                let lag = (chrono::Utc::now() - envelope.occurred_at).as_seconds_f64();
                if let Err(e) = message.ack().await {
                    // Committed already: the redelivery will be recognised as done.
                    tracing::warn!(error = %e, "consumer: ack failed after commit");
                }
                metrics::consumed(&self.config.name, &envelope.kind, outcome, lag);
            }
            Err(HandlerError::Permanent(reason)) => {
                self.dead_letter(message, delivered, "rejected", &reason)
                    .await;
            }
            Err(HandlerError::Transient(e)) if delivered >= self.config.max_deliveries => {
                let reason = format!("failed {delivered} times, last: {e:#}");
                self.dead_letter(message, delivered, "exhausted", &reason)
                    .await;
            }
            Err(HandlerError::Transient(e)) => {
                let delay = self.config.retry_delay(delivered);
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "event handling failed, will retry"
                );
                metrics::retried(&self.config.name);
                if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "consumer: nak failed; the ack wait will redeliver");
                }
            }
        }
    }

    /// The handler and the processed-event record, in one transaction.
    async fn apply(&self, envelope: &Envelope) -> Result<&'static str, HandlerError> {
        let mut tx = self.pool.begin().await?;
        let first_time = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&self.config.name)
        .bind(envelope.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first_time {
            return Ok("duplicate");
        }
        self.handler.handle(&mut tx, envelope).await?;
        tx.commit().await?;
        Ok("handled")
    }

    /// Parks the message on `dlq.<consumer>` with the reason, then terminates it. If
    /// the dead-letter publish fails, the message is NAKed to come back later instead.
    async fn dead_letter(
        &self,
        message: jetstream::Message,
        delivered: i64,
        kind: &'static str,
        reason: &str,
    ) {
        let mut headers = message.headers.clone().unwrap_or_default();
        let sequence = message
            .info()
            .map(|i| i.stream_sequence)
            .unwrap_or_default();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}:{sequence}", self.config.name).as_str(),
        );
        headers.insert(DEAD_LETTER_REASON, reason);
        headers.insert(DEAD_LETTER_SUBJECT, message.subject.as_str());
        headers.insert(DEAD_LETTER_DELIVERIES, delivered.to_string().as_str());
        headers.insert(DEAD_LETTER_CONSUMER, self.config.name.as_str());
        let subject = self.ns.dead_letter_subject(&self.config.name);
        let parked = async {
            self.js
                .publish_with_headers(subject, headers, message.payload.clone())
                .await?
                .await?;
            anyhow::Ok(())
        }
        .await;
        match parked {
            Ok(()) => {
                tracing::error!(reason, delivered, "event dead-lettered");
                metrics::dead_lettered(&self.config.name, kind);
                if let Err(e) = message.ack_with(AckKind::Term).await {
                    tracing::warn!(error = %e, "consumer: term failed; it will come back and be parked again");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not park the message on the dead-letter subject; retrying later");
                let _ = message
                    .ack_with(AckKind::Nak(Some(self.config.max_backoff)))
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_to_a_cap() {
        let config = ConsumerConfig::new("c", "users", &["users.user.registered"]);
        assert_eq!(config.retry_delay(1), Duration::from_millis(500));
        assert_eq!(config.retry_delay(2), Duration::from_secs(1));
        assert_eq!(config.retry_delay(4), Duration::from_secs(4));
        assert_eq!(config.retry_delay(30), Duration::from_secs(60));
    }
}
