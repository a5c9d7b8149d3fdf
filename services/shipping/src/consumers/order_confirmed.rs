//! A confirmed order gets its shipment (`orders.order.confirmed` ->
//! `shipping.shipment.created`), once per order however often the confirmation comes.

use shop_events::contracts::orders::OrderConfirmed;
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::lifecycle::{self, Opened};
use crate::tracking::TrackingNumber;

pub const CONSUMER: &str = "shipping-order-confirmed";

/// The defaults: confirmations arrive in bursts under load and share a commit per
/// batch. Each takes the lock of one order only, which no other batch of this consumer
/// takes unless the same order was confirmed twice.
pub fn config() -> ConsumerConfig {
    ConsumerConfig::new(CONSUMER)
}

pub struct OrderConfirmedHandler(pub Outbox);

impl EventHandler for OrderConfirmedHandler {
    type Event = OrderConfirmed;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<OrderConfirmed>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        match lifecycle::open(tx, &self.0, event.data, TrackingNumber::generate).await? {
            Opened::Created(shipment_id, tracking_number) => {
                tracing::info!(%order_id, %shipment_id, %tracking_number, "shipment created");
            }
            Opened::AlreadyOpen => {
                tracing::info!(%order_id, "order confirmed again: it has its shipment");
            }
            Opened::OrderCancelled(reason) => {
                tracing::info!(%order_id, %reason, "order confirmed after its cancellation was handled: no shipment");
            }
        }
        Ok(())
    }
}
