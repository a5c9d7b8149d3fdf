//! The transactional outbox, producer side: an event is written into the producer's
//! own `outbox` table in the *same transaction* as the state change it describes.
//! Either both commit or neither does, so an event is never lost after a commit and
//! never sent for a change that rolled back. The [`Relay`] publishes it.
//!
//! [`outbox`] gives the two halves together, so the writer and the relay cannot
//! disagree on the table, the notification channel or the namespace.
//!
//! The tables (`outbox`, `processed_events`) are created by each service's own
//! migration; `libs/events/sql/events.sql` is the reference to copy.

use std::collections::BTreeMap;

use async_nats::jetstream;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::envelope::{Envelope, Event};
use crate::relay::{Relay, RelayConfig};
use crate::streams::Namespace;

/// The outbox of `schema`, whose events carry `source` (the producing service's
/// name), and the relay that drains it into JetStream.
pub fn outbox(
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    schema: &str,
    source: &str,
) -> (Outbox, Relay) {
    let outbox = Outbox {
        ns,
        channel: channel(schema),
        source: source.to_owned(),
    };
    let relay = Relay::new(pool, js, RelayConfig::new(schema));
    (outbox, relay)
}

/// Writes events to one schema's outbox. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    ns: Namespace,
    channel: String,
    source: String,
}

impl Outbox {
    /// Adds the event to the transaction `conn` is in and returns its id. The outbox
    /// stamps the envelope (id, time, source); the current trace context is stored
    /// with it, so the consumer's span continues the producer's trace even though the
    /// relay publishes later, outside the request.
    pub async fn enqueue<T: Event>(
        &self,
        conn: &mut PgConnection,
        data: T,
    ) -> Result<Uuid, sqlx::Error> {
        let envelope = Envelope::new(&self.source, data);
        let payload =
            serde_json::to_vec(&envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let mut headers = BTreeMap::new();
        shop_telemetry::inject_context_with(|key, value| {
            headers.insert(key.to_owned(), value);
        });
        sqlx::query("INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4)")
            .bind(envelope.id)
            .bind(self.ns.subject(T::TYPE))
            .bind(payload)
            .bind(sqlx::types::Json(headers))
            .execute(&mut *conn)
            .await?;
        // Delivered at commit, and only if the transaction commits: the relay wakes
        // exactly when there is something to send.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.channel)
            .execute(&mut *conn)
            .await?;
        Ok(envelope.id)
    }
}

/// The NOTIFY channel of a schema's outbox.
pub(crate) fn channel(schema: &str) -> String {
    format!("outbox_{schema}")
}
