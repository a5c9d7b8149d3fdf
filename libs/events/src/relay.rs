//! The outbox relay: publishes committed outbox rows to JetStream and marks them sent.
//!
//! - Wakes on `LISTEN outbox_<schema>` (NOTIFY at commit), with a slow fallback poll in
//!   case a notification is missed (e.g. while the listener reconnects).
//! - Takes up to `batch` rows with `FOR UPDATE SKIP LOCKED`, so several relay replicas
//!   share the work without sending a row twice at once; publishes them all, then
//!   awaits every JetStream ack; marks them sent in the same transaction.
//! - Each message carries `Nats-Msg-Id` = event id: if the relay dies after the broker
//!   stored a batch but before the commit, the re-publish is dropped as a duplicate.
//! - NATS down: the publish fails, the transaction rolls back, the rows wait and the
//!   relay retries with exponential backoff. Nothing is lost.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::metrics;
use crate::outbox::channel;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The schema whose outbox this relay drains.
    pub schema: String,
    /// Rows per transaction: bigger batches amortize the commit under load.
    pub batch: i64,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// Sent rows are deleted after this long (kept meanwhile for inspection).
    pub keep_sent: Duration,
}

impl RelayConfig {
    pub fn new(schema: &str) -> Self {
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

/// Publishes one schema's outbox.
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
}

impl Relay {
    pub fn new(pool: PgPool, js: jetstream::Context, config: RelayConfig) -> Self {
        Self { pool, js, config }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&channel(&self.config.schema)).await?;
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        let mut last_purge = std::time::Instant::now();
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
            self.record_backlog().await;
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
                    }
                    () = tokio::time::sleep(self.config.poll_interval) => {}
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

    /// One transaction: lock a batch, publish it, await the acks, mark it sent.
    pub async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, subject, payload, headers FROM outbox
             WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                row.id.to_string().as_str(),
            );
            for (key, value) in row.headers.iter() {
                headers.insert(key.as_str(), value.as_str());
            }
            let ack = self
                .js
                .publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
                .await?;
            pending.push(ack);
        }
        // All sent; now wait for the broker to confirm each one is stored.
        let acks =
            futures::future::join_all(pending.into_iter().map(|ack| ack.into_future())).await;
        let mut duplicates = 0usize;
        for ack in acks {
            if ack?.duplicate {
                duplicates += 1;
            }
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::published(rows.len(), duplicates);
        Ok(rows.len())
    }

    async fn record_backlog(&self) {
        let backlog: Result<(i64, f64), _> = sqlx::query_as(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
             FROM outbox WHERE sent_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await;
        if let Ok((rows, oldest)) = backlog {
            metrics::outbox_backlog(&self.config.schema, rows, oldest);
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
