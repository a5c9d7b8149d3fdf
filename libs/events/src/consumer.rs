//! Idempotent consumers: a durable JetStream pull consumer with explicit acks, whose
//! handler runs in a Postgres transaction that also records the event id.
//!
//! A consumer is typed by the contract it reacts to: [`EventHandler::Event`] gives the
//! subject it subscribes to, the stream it reads, the type and version it accepts and
//! how its data is decoded, all from the contract, written once.
//!
//! - Already recorded: the message is a redelivery or a duplicate, acked, no effect.
//!   This is checked before anything else, so an event that committed but lost its
//!   ack is never parked, however often it was delivered.
//! - Handler ok: commit, then ack. If the ack is lost the redelivery is a no-op.
//! - The handler failed ([`HandlerError::Transient`]): rollback, NAK with an
//!   exponential delay; after `max_deliveries` the message goes to the dead-letter
//!   subject.
//! - The database is unreachable ([`HandlerError::Unavailable`], also what a lost
//!   connection or a pool timeout becomes): that is not the event's fault and spends
//!   none of its deliveries. The consumer keeps the message, tells the broker it is
//!   still working on it (in-progress acks, so the ack wait never expires), waits with
//!   backoff and tries again until the database is back.
//! - Permanent failure, undecodable data, unknown type or version: straight to the
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
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::envelope::{DecodeError, Envelope, Event};
use crate::metrics;
use crate::streams::{Namespace, context_of, stream_of};

/// Header names on a dead letter.
pub const DEAD_LETTER_REASON: &str = "Shop-Dead-Letter-Reason";
pub const DEAD_LETTER_SUBJECT: &str = "Shop-Original-Subject";
pub const DEAD_LETTER_DELIVERIES: &str = "Shop-Deliveries";
pub const DEAD_LETTER_CONSUMER: &str = "Shop-Consumer";

/// What a handler's failure means for the message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The handler failed, worth retrying (a deadlock, a dependency's hiccup). Spends
    /// one of the event's deliveries.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// The database is unreachable: wait for it; the event is not to blame.
    #[error("database unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Will never succeed (the event contradicts our state): dead-letter it now.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            HandlerError::Unavailable(e.into())
        } else {
            HandlerError::Transient(e.into())
        }
    }
}

impl From<DecodeError> for HandlerError {
    fn from(e: DecodeError) -> Self {
        HandlerError::Permanent(e.to_string())
    }
}

/// Whether the database cannot be reached (see [`shop_db::is_unavailable`]).
pub use shop_db::is_unavailable;

/// Reacts to one event contract, inside the consumer's transaction.
pub trait EventHandler: Send + Sync + 'static {
    /// The contract: its `TYPE` is the subject subscribed to (and names the stream),
    /// its `VERSION` the only version accepted; others are dead-lettered.
    type Event: Event;

    /// Applies the event. Everything written through `tx` commits together with the
    /// record that the event was processed.
    fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<Self::Event>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// A consumer's settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Durable name, unique per purpose (`user-welcome-mail`); also the key in
    /// `processed_events` and the dead-letter subject `dlq.<name>`.
    pub name: String,
    /// Handler failures before a message is dead-lettered.
    pub max_deliveries: i64,
    /// First retry delay; doubles per delivery up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Most events handled in one transaction (one commit for all of them).
    pub batch: usize,
    /// Transactions in flight at once.
    pub concurrency: usize,
    /// How long the broker waits for an ack (or an in-progress ack) before
    /// redelivering.
    pub ack_wait: Duration,
    /// Longest wait between two attempts while the database is unreachable.
    pub max_outage_backoff: Duration,
}

impl ConsumerConfig {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            max_deliveries: 5,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            batch: 64,
            concurrency: 4,
            ack_wait: Duration::from_secs(30),
            max_outage_backoff: Duration::from_secs(5),
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

/// How handling one event ended, once the database answered.
type Outcome = Result<&'static str, HandlerError>;

/// A running consumer. Cheap to clone (a supervisor restarts it from a clone).
pub struct Consumer<H> {
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    config: ConsumerConfig,
    handler: Arc<H>,
}

impl<H> Clone for Consumer<H> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            js: self.js.clone(),
            ns: self.ns.clone(),
            config: self.config.clone(),
            handler: self.handler.clone(),
        }
    }
}

impl<H: EventHandler> Consumer<H> {
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

    /// The durable name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Creates the durable consumer if needed and handles messages until `shutdown`.
    /// In-flight events finish first; one still waiting for the database is handed
    /// back to the broker (NAK) for this or another replica to take up.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        metrics::consumer_started(&self.config.name);
        let kind = H::Event::TYPE;
        let stream_name = stream_of(context_of(kind))
            .ok_or_else(|| anyhow::anyhow!("no stream holds the context of {kind}"))?;
        let stream = self.js.get_stream(self.ns.name(stream_name)).await?;
        let durable = self.ns.name(&self.config.name);
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
                    filter_subject: self.ns.subject(kind),
                    ..Default::default()
                },
            )
            .await?;
        tracing::info!(consumer = %durable, "consumer started");
        let messages = consumer.messages().await?;
        let (stop, stopped) = watch::channel(false);
        let this = &self;
        let work = messages
            .take_until(wait_until(stopped.clone()))
            // Whatever has arrived, up to `batch`, without waiting for more: one event
            // at a time when idle, full batches under load.
            .ready_chunks(self.config.batch)
            .for_each_concurrent(self.config.concurrency, |chunk| {
                this.process_chunk(chunk, stopped.clone())
            });
        // The signal is watched on its own: with every slot busy (say, waiting for the
        // database) the message stream, and anything chained to it, is not polled.
        let signal = async move {
            shutdown.await;
            let _ = stop.send(true);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = work => {}
            () = signal => {}
        }
        tracing::info!(consumer = %durable, "consumer stopped");
        Ok(())
    }

    /// Handles what arrived together, keeping the messages alive with in-progress
    /// acks for as long as that takes, then acks, retries or parks each one.
    async fn process_chunk(
        &self,
        received: Vec<Result<jetstream::Message, MessagesError>>,
        stopped: watch::Receiver<bool>,
    ) {
        let mut ready = Vec::with_capacity(received.len());
        for message in received {
            match message {
                Ok(message) => ready.extend(self.prepare(message).await),
                Err(e) => tracing::warn!(error = %e, "consumer: receiving failed"),
            }
        }
        if ready.is_empty() {
            return;
        }
        let outcomes = tokio::select! {
            outcomes = self.apply_all(&ready, stopped) => outcomes,
            never = self.keep_alive(&ready) => match never {},
        };
        match outcomes {
            Some(outcomes) => {
                for (event, outcome) in ready.into_iter().zip(outcomes) {
                    self.settle(event, outcome).await;
                }
            }
            None => {
                for event in ready {
                    // Shutting down during an outage: give the message back at once.
                    let _ = event.message.ack_with(AckKind::Nak(None)).await;
                }
            }
        }
    }

    /// Tells the broker every third of the ack wait that these messages are still
    /// being worked on, so long work (or a database outage) causes no redelivery.
    async fn keep_alive(&self, events: &[Received]) -> std::convert::Infallible {
        let every = (self.config.ack_wait / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            for event in events {
                if let Err(e) = event.message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "consumer: in-progress ack failed");
                }
            }
        }
    }

    /// The outcome of each event, after waiting out any database outage; `None` if
    /// the consumer was stopped while waiting.
    async fn apply_all(
        &self,
        events: &[Received],
        mut stopped: watch::Receiver<bool>,
    ) -> Option<Vec<Outcome>> {
        let mut outage = Outage::new(self.config.max_outage_backoff);
        if events.len() > 1 {
            loop {
                match self.apply_batch(events).await {
                    Ok(outcomes) => return Some(outcomes.into_iter().map(Ok).collect()),
                    Err(HandlerError::Unavailable(e)) => {
                        if !outage.wait(&e, &mut stopped).await {
                            return None;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "batch failed, handling its events one by one");
                        break;
                    }
                }
            }
        }
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            loop {
                match self
                    .apply(&event.envelope)
                    .instrument(event.span.clone())
                    .await
                {
                    Err(HandlerError::Unavailable(e)) => {
                        if !outage.wait(&e, &mut stopped).await {
                            return None;
                        }
                    }
                    outcome => {
                        outcomes.push(outcome);
                        break;
                    }
                }
            }
        }
        Some(outcomes)
    }

    /// Opens the event's span (continuing the producer's trace) and parks what cannot
    /// be handled: unparseable, or of an unknown type or version.
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
                if envelope.is::<H::Event>() {
                    Ok(envelope)
                } else {
                    let reason =
                        format!("unknown event type {} v{}", envelope.kind, envelope.version);
                    Err(("unknown_type", reason))
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
    async fn settle(&self, event: Received, outcome: Outcome) {
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
                Err(e) if delivered >= self.config.max_deliveries => {
                    let reason = format!("failed {delivered} times, last: {e:#}");
                    self.dead_letter(message, delivered, "exhausted", &reason).await;
                }
                Err(e) => {
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
    async fn apply(&self, envelope: &Envelope) -> Outcome {
        let mut tx = self.pool.begin().await?;
        let outcome = self.apply_in(&mut tx, envelope).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Records the event as processed and runs the handler, unless it was processed
    /// before: then it is a duplicate and changes nothing.
    async fn apply_in(&self, tx: &mut PgConnection, envelope: &Envelope) -> Outcome {
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
        let typed = envelope.typed::<H::Event>()?;
        self.handler.handle(tx, typed).await?;
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
        // The reason may quote the payload; keep it one bounded, printable line.
        let reason: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(1024)
            .collect();
        headers.insert(DEAD_LETTER_REASON, reason.as_str());
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

/// Waiting out a database outage: exponential pauses, logged once per doubling.
struct Outage {
    delay: Duration,
    max: Duration,
}

impl Outage {
    fn new(max: Duration) -> Self {
        Self {
            delay: Duration::from_millis(100),
            max,
        }
    }

    /// Pauses; false if the consumer was stopped meanwhile.
    async fn wait(&mut self, error: &anyhow::Error, stopped: &mut watch::Receiver<bool>) -> bool {
        tracing::warn!(
            error = format!("{error:#}"),
            retry_in_ms = self.delay.as_millis() as u64,
            "consumer: database unavailable; holding the events and waiting"
        );
        metrics::waiting_for_database();
        let pause = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            _ = stopped.wait_for(|s| *s) => false,
        }
    }
}

async fn wait_until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Deletes the records of processed events older than `keep`. Any message older than
/// a stream's retention is gone from the stream, so it cannot be redelivered and its
/// record can no longer prevent anything; services purge with a `keep` a day longer
/// than [`crate::streams::RETENTION`].
pub async fn purge_processed(pool: &PgPool, keep: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM processed_events WHERE processed_at < now() - make_interval(secs => $1)",
    )
    .bind(keep.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_to_a_cap() {
        let config = ConsumerConfig::new("c");
        assert_eq!(config.retry_delay(1), Duration::from_millis(500));
        assert_eq!(config.retry_delay(2), Duration::from_secs(1));
        assert_eq!(config.retry_delay(4), Duration::from_secs(4));
        assert_eq!(config.retry_delay(30), Duration::from_secs(60));
    }

    #[test]
    fn lost_connections_and_pool_timeouts_are_outages_not_handler_failures() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert!(matches!(
            HandlerError::from(sqlx::Error::PoolTimedOut),
            HandlerError::Unavailable(_)
        ));
        assert!(matches!(
            HandlerError::from(sqlx::Error::RowNotFound),
            HandlerError::Transient(_)
        ));
    }
}
