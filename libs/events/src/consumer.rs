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
//!
//! Under load, the events that arrived together (up to `batch`) share one transaction
//! and one commit; if any of them fails, the batch is rolled back and each event is
//! handled again in a transaction of its own, so a failure stays with its event.
//! Handlers therefore must write only through the transaction they are given.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{self, MessagesError};
use async_nats::jetstream::{self, AckKind};
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
    /// Most events handled in one transaction (one commit for all of them).
    pub batch: usize,
    /// Transactions in flight at once.
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
            batch: 64,
            concurrency: 4,
            ack_wait: Duration::from_secs(30),
        }
    }

    fn retry_delay(&self, delivered: i64) -> Duration {
        let exp = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        self.backoff.saturating_mul(1 << exp).min(self.max_backoff)
    }
}

/// A message that passed the checks and awaits its handler.
struct Received {
    message: jetstream::Message,
    envelope: Envelope,
    delivered: i64,
    span: tracing::Span,
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
                    max_ack_pending: (self.config.concurrency * self.config.batch * 2) as i64,
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
            // Whatever has arrived, up to `batch`, without waiting for more: one event
            // at a time when idle, full batches under load.
            .ready_chunks(self.config.batch)
            .for_each_concurrent(self.config.concurrency, |chunk| this.process_chunk(chunk))
            .await;
        tracing::info!(consumer = %durable, "consumer stopped");
        Ok(())
    }

    /// Handles what arrived together in one transaction (one commit, one fsync, for
    /// up to `batch` events), falling back to one transaction per event if any of them
    /// fails, so a failure is attributed to its own event and nothing else.
    async fn process_chunk(&self, received: Vec<Result<jetstream::Message, MessagesError>>) {
        let mut ready = Vec::with_capacity(received.len());
        for message in received {
            match message {
                Ok(message) => ready.extend(self.prepare(message).await),
                Err(e) => tracing::warn!(error = %e, "consumer: receiving failed"),
            }
        }
        if ready.len() > 1 {
            match self.apply_batch(&ready).await {
                Ok(outcomes) => {
                    for (event, outcome) in ready.into_iter().zip(outcomes) {
                        self.settle(event, Ok(outcome)).await;
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "batch failed, handling its events one by one")
                }
            }
        }
        for event in ready {
            let outcome = self
                .apply(&event.envelope)
                .instrument(event.span.clone())
                .await;
            self.settle(event, outcome).await;
        }
    }

    /// Opens the event's span (continuing the producer's trace) and parks what cannot
    /// be handled: unparseable, of an unknown type or version, or already given up on.
    async fn prepare(&self, message: jetstream::Message) -> Option<Received> {
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
        let refusal = match Envelope::parse(&message.payload) {
            Err(e) => Err(("unparseable", e.to_string())),
            Ok(envelope) => {
                span.record("event_id", tracing::field::display(envelope.id));
                if !self.handler.accepts(&envelope.kind, envelope.version) {
                    let reason =
                        format!("unknown event type {} v{}", envelope.kind, envelope.version);
                    Err(("unknown_type", reason))
                } else if delivered > self.config.max_deliveries {
                    // Delivered again after we already gave up (e.g. we crashed mid-handling).
                    Err((
                        "exhausted",
                        format!("still failing after {} deliveries", delivered - 1),
                    ))
                } else {
                    Ok(envelope)
                }
            }
        };
        match refusal {
            Ok(envelope) => Some(Received {
                message,
                envelope,
                delivered,
                span,
            }),
            Err((kind, reason)) => {
                self.dead_letter(message, delivered, kind, &reason)
                    .instrument(span)
                    .await;
                None
            }
        }
    }

    /// Acks, retries or parks an event according to how handling it went.
    async fn settle(&self, event: Received, outcome: Result<&'static str, HandlerError>) {
        let Received {
            message,
            envelope,
            delivered,
            span,
        } = event;
        async move {
            match outcome {
                Ok(outcome) => {
                    let lag = (chrono::Utc::now() - envelope.occurred_at).as_seconds_f64();
                    if let Err(e) = message.ack().await {
                        // Committed already: the redelivery will be recognised as done.
                        tracing::warn!(error = %e, "consumer: ack failed after commit");
                    }
                    metrics::consumed(&self.config.name, &envelope.kind, outcome, lag);
                }
                Err(HandlerError::Permanent(reason)) => {
                    self.dead_letter(message, delivered, "rejected", &reason).await;
                }
                Err(HandlerError::Transient(e)) if delivered >= self.config.max_deliveries => {
                    let reason = format!("failed {delivered} times, last: {e:#}");
                    self.dead_letter(message, delivered, "exhausted", &reason).await;
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
        .instrument(span)
        .await;
    }

    /// Several events, their handlers and processed-event records, in one transaction.
    async fn apply_batch(&self, events: &[Received]) -> Result<Vec<&'static str>, HandlerError> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let outcome = self
                .apply_in(&mut tx, &event.envelope)
                .instrument(event.span.clone())
                .await?;
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The handler and the processed-event record, in one transaction.
    async fn apply(&self, envelope: &Envelope) -> Result<&'static str, HandlerError> {
        let mut tx = self.pool.begin().await?;
        let outcome = self.apply_in(&mut tx, envelope).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records the event as processed and runs the handler, unless it was processed
    /// before: then it is a duplicate and changes nothing.
    async fn apply_in(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
    ) -> Result<&'static str, HandlerError> {
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
        self.handler.handle(tx, envelope).await?;
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
