//! The transactional outbox, producer side: an event is written into the producer's
//! own `outbox` table in the *same transaction* as the state change it describes.
//! Either both commit or neither does, so an event is never lost after a commit and
//! never sent for a change that rolled back. The [`Relay`](crate::Relay) publishes it.
//!
//! The tables (`outbox`, `processed_events`) are created by each service's own
//! migration; `migrations/user/0002_outbox.sql` is the reference copy.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::envelope::{Envelope, Event};
use crate::streams::Namespace;

/// Writes events to one schema's outbox.
#[derive(Debug, Clone)]
pub struct Outbox {
    ns: Namespace,
    channel: String,
}

impl Outbox {
    /// The outbox of `schema` (whose relay listens on `outbox_<schema>`).
    pub fn new(ns: Namespace, schema: &str) -> Self {
        Self {
            ns,
            channel: channel(schema),
        }
    }

    /// Adds the event to the transaction `conn` is in. The current trace context is
    /// stored with it, so the consumer's span continues the producer's trace even
    /// though the relay publishes later, outside the request.
    pub async fn enqueue<T: Event>(
        &self,
        conn: &mut PgConnection,
        envelope: &Envelope<T>,
    ) -> Result<(), sqlx::Error> {
        let payload = serde_json::to_vec(envelope).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
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
        Ok(())
    }
}

/// The NOTIFY channel of a schema's outbox.
pub(crate) fn channel(schema: &str) -> String {
    format!("outbox_{schema}")
}
