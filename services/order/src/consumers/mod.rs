//! What moves the saga on: one durable consumer per answer the order service follows,
//! each typed by its contract and delegating to one step of `crate::saga`. The chassis
//! runs each handler in a transaction that also records the event id, so a
//! redelivered event is a no-op.
//!
//! Answers that need no step are not subscribed to at all (`inventory.stock.committed`,
//! `.released`, `.returned`, `payments.payment.captured`, `.voided`,
//! `shipping.shipment.cancelled`): the streams keep them for whoever wants them.
//!
//! Each consumer handles one event per transaction (`batch = 1`): a batch would lock
//! several orders at once in no global order (two batches could deadlock), and a batch
//! rolled back and replayed would count its transitions in the metrics twice.
//! Concurrency comes from several transactions in flight.

use shop_events::ConsumerConfig;

pub mod inventory;
pub mod payments;
pub mod shipping;

/// One event per transaction, four in flight.
pub fn config(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        batch: 1,
        concurrency: 4,
        ..ConsumerConfig::new(name)
    }
}

/// A consumer whose handler is one saga step: `step!(Name, Contract, method)`.
macro_rules! step {
    ($(#[$doc:meta])* $name:ident, $event:ty, $method:ident) => {
        $(#[$doc])*
        pub struct $name(pub crate::saga::Saga);

        impl shop_events::EventHandler for $name {
            type Event = $event;

            async fn handle(
                &self,
                tx: &mut sqlx::PgConnection,
                event: shop_events::Envelope<$event>,
            ) -> Result<(), shop_events::HandlerError> {
                Ok(self.0.$method(tx, &event).await?)
            }
        }
    };
}

pub(crate) use step;
