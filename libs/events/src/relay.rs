//! The outbox relay: publishes committed outbox rows to JetStream and marks them sent.
//!
//! - Wakes on `LISTEN outbox_<schema>` (NOTIFY at commit), with a slow fallback poll in
//!   case a notification is missed (e.g. while the listener reconnects). Under load
//!   many commits notify while one drain runs: the notifications already received are
//!   taken together, *before* the next drain (which sees every row committed before
//!   it starts), so a burst of commits costs one drain, not one each. The backlog
//!   gauges are read at most once a second.
//! - Takes up to `batch` rows with `FOR UPDATE SKIP LOCKED`, so several relay replicas
//!   share the work without sending a row twice at once; publishes them all, then
//!   awaits every JetStream ack; marks them sent in the same transaction.
//! - Each message carries `Nats-Msg-Id` = event id: if the relay dies after the broker
//!   stored a batch but before the commit, the re-publish is dropped as a duplicate.
//! - NATS down or the stream full: the publish fails, the rows wait and the relay
//!   retries with exponential backoff. Nothing is lost.
//! - A row the broker refuses for good (larger than the server's `max_payload`, a
//!   subject no stream captures, a header NATS cannot carry) is *parked*: marked with
//!   its reason, counted (`outbox_parked_total`, `outbox_parked`), logged, and left for
//!   an operator (docs/runbook.md). The rows behind it keep flowing.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use std::str::FromStr as _;

use async_nats::jetstream;
use async_nats::jetstream::context::{GetStreamByNameErrorKind, PublishError, PublishErrorKind};
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::metrics;
use crate::outbox::channel;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The schema whose outbox this relay drains (set by [`crate::outbox`]).
    pub(crate) schema: String,
    /// Rows per transaction: bigger batches amortize the commit under load.
    pub batch: i64,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// Sent rows are deleted after this long (kept meanwhile for inspection).
    pub keep_sent: Duration,
}

impl RelayConfig {
    pub(crate) fn new(schema: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            batch: 500,
            poll_interval: Duration::from_secs(5),
            keep_sent: Duration::from_secs(3600),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    subject: String,
    payload: Vec<u8>,
    headers: sqlx::types::Json<BTreeMap<String, String>>,
}

/// The backlog gauges are read at most this often (three counts per read).
const BACKLOG_EVERY: Duration = Duration::from_secs(1);

/// Publishes one schema's outbox. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
}

impl Relay {
    pub(crate) fn new(pool: PgPool, js: jetstream::Context, config: RelayConfig) -> Self {
        Self { pool, js, config }
    }

    /// Tunes the relay (batch size, poll interval, how long sent rows are kept).
    pub fn configure(mut self, change: impl FnOnce(&mut RelayConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        metrics::relay_started(&self.config.schema);
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&channel(&self.config.schema)).await?;
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        let mut last_purge = std::time::Instant::now();
        let mut last_backlog: Option<std::time::Instant> = None;
        loop {
            let wait = match self.drain().await {
                Ok(_) => {
                    failures = 0;
                    None
                }
                Err(e) => {
                    failures += 1;
                    let delay = backoff(failures);
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "outbox relay: publish failed, rows stay queued");
                    Some(delay)
                }
            };
            if last_backlog.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                self.record_backlog().await;
                last_backlog = Some(std::time::Instant::now());
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                self.purge().await;
                last_purge = std::time::Instant::now();
            }
            match wait {
                Some(delay) => tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                },
                None => tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    notification = listener.recv() => {
                        if let Err(e) = notification {
                            tracing::warn!(error = %e, "outbox relay: listener lost, reconnecting");
                        }
                        // The next drain covers every commit these announced.
                        while listener.next_buffered().is_some() {}
                    }
                    () = tokio::time::sleep(self.config.poll_interval) => {
                        // The poll also keeps the backlog gauges current when idle.
                        last_backlog = None;
                    }
                },
            }
        }
    }

    /// Publishes batches until the outbox is empty; returns how many were sent.
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let sent = self.publish_batch().await?;
            total += sent;
            if (sent as i64) < self.config.batch {
                return Ok(total);
            }
        }
    }

    /// One transaction: lock a batch, publish it, await the acks, mark what the
    /// broker stored as sent and park what it refused for good. Rows that failed for
    /// a passing reason (NATS down, a full stream) stay queued and the call fails, so
    /// the caller backs off.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, subject, payload, headers FROM outbox
             WHERE sent_at IS NULL AND parked_at IS NULL
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Send every row first, then wait for the broker to confirm each one is stored.
        let mut sends = Vec::with_capacity(rows.len());
        for row in &rows {
            sends.push(self.send(row).await);
        }
        let outcomes = futures::future::join_all(sends.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => match ack.await {
                    Ok(ack) if ack.duplicate => Outcome::Duplicate,
                    Ok(_) => Outcome::Stored,
                    Err(e) => Outcome::from_publish_error(&e),
                },
                Err(outcome) => outcome,
            }
        }))
        .await;

        let mut sent = Vec::new();
        let mut duplicates = 0usize;
        let mut parked = 0usize;
        let mut failure = None;
        for (row, outcome) in rows.iter().zip(outcomes) {
            match outcome {
                Outcome::Stored => sent.push(row.id),
                Outcome::Duplicate => {
                    duplicates += 1;
                    sent.push(row.id);
                }
                Outcome::Refused(reason) => {
                    self.park(&mut tx, row, &reason).await?;
                    parked += 1;
                }
                Outcome::NoResponders(e) => {
                    if self.no_stream_holds(&row.subject).await {
                        self.park(&mut tx, row, &e).await?;
                        parked += 1;
                    } else {
                        failure = Some(format!("{e}, though a stream holds the subject"));
                    }
                }
                Outcome::Failed(e) => failure = Some(e),
            }
        }
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
            .bind(&sent)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::published(sent.len(), duplicates);
        metrics::parked(&self.config.schema, parked);
        match failure {
            Some(e) => Err(anyhow::anyhow!(
                "{} of {} rows not published: {e}",
                rows.len() - sent.len() - parked,
                rows.len()
            )),
            None => Ok(rows.len()),
        }
    }

    /// Publishes one row; its ack is awaited later. A row whose headers NATS cannot
    /// carry is refused here, before anything is sent.
    async fn send(&self, row: &Row) -> Result<jetstream::context::PublishAckFuture, Outcome> {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            row.id.to_string().as_str(),
        );
        for (key, value) in row.headers.iter() {
            let name = HeaderName::from_str(key)
                .map_err(|_| Outcome::Refused(format!("invalid header name {key:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Outcome::Refused(format!("invalid value of header {key}")))?;
            headers.insert(name, value);
        }
        self.js
            .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
            .await
            .map_err(|e| Outcome::from_publish_error(&e))
    }

    /// Whether JetStream says, when asked, that no stream captures `subject`. A
    /// publish with no responders can also mean the stream exists but has no leader
    /// yet (a restarting cluster): that is worth waiting for, and must not park.
    async fn no_stream_holds(&self, subject: &str) -> bool {
        match self.js.stream_by_subject(subject).await {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                GetStreamByNameErrorKind::NotFound | GetStreamByNameErrorKind::InvalidSubject
            ),
        }
    }

    async fn park(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &Row,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        tracing::error!(
            event_id = %row.id,
            subject = %row.subject,
            reason,
            "outbox relay: the broker refuses this event for good; parked (see the runbook)"
        );
        sqlx::query("UPDATE outbox SET parked_at = now(), park_reason = $2 WHERE id = $1")
            .bind(row.id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    async fn record_backlog(&self) {
        // Each count reads only its own partial index: pending and parked rows are few,
        // while sent rows (kept an hour) are many, and this runs after every drain.
        let backlog: Result<(i64, f64, i64), _> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL),
                    (SELECT coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
                     FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL),
                    (SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok((rows, oldest, parked)) = backlog {
            metrics::outbox_backlog(&self.config.schema, rows, oldest, parked);
        }
    }

    async fn purge(&self) {
        let purged =
            sqlx::query("DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)")
                .bind(self.config.keep_sent.as_secs_f64())
                .execute(&self.pool)
                .await;
        if let Err(e) = purged {
            tracing::warn!(error = %e, "outbox relay: purging sent rows failed");
        }
    }
}

/// What became of one row.
enum Outcome {
    Stored,
    /// Stored before (a re-publish after a lost ack): the broker dropped the copy.
    Duplicate,
    /// Refused for good: retrying cannot help, the row is parked.
    Refused(String),
    /// Nobody took the message: no stream captures the subject (park), or its stream
    /// is between leaders (retry). Decided by asking JetStream.
    NoResponders(String),
    /// Failed for now (NATS unreachable, an ack timed out, the stream is full).
    Failed(String),
}

impl Outcome {
    fn from_publish_error(e: &PublishError) -> Self {
        match e.kind() {
            // Too large for the server: the same row will fail the same way forever.
            PublishErrorKind::MaxPayloadExceeded => Outcome::Refused(e.to_string()),
            PublishErrorKind::StreamNotFound => Outcome::NoResponders(e.to_string()),
            _ => Outcome::Failed(e.to_string()),
        }
    }
}

/// 100 ms, 200 ms, 400 ms ... capped at 10 s.
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(7);
    Duration::from_millis(100 * (1 << exp)).min(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(50), Duration::from_secs(10));
    }
}
