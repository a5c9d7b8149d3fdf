//! A cancelled order stops its shipment if the parcel has not left
//! (`orders.order.cancelled` -> `shipping.shipment.cancelled`). Most cancelled orders
//! never had one (out of stock, declined, timed out): they leave only a tombstone.

use shop_events::contracts::orders::OrderCancelled;
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::lifecycle::{self, Cancelled};

pub const CONSUMER: &str = "shipping-order-cancelled";

/// One cancellation per transaction: each waits for the order's lock and then for its
/// shipment's row, which an admin's step or the carrier may hold; in a batch, those
/// waits would hold every other cancellation of the batch too.
pub fn config() -> ConsumerConfig {
    ConsumerConfig {
        batch: 1,
        ..ConsumerConfig::new(CONSUMER)
    }
}

pub struct OrderCancelledHandler(pub Outbox);

impl EventHandler for OrderCancelledHandler {
    type Event = OrderCancelled;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<OrderCancelled>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let reason = event.data.reason.clone();
        match lifecycle::cancel(tx, &self.0, event.data).await? {
            Cancelled::Cancelled(shipment_id) => {
                tracing::info!(%order_id, %shipment_id, %reason, "shipment cancelled");
            }
            Cancelled::AlreadyCancelled(shipment_id) => {
                tracing::info!(%order_id, %shipment_id, "order cancelled again: its shipment was cancelled before");
            }
            Cancelled::TooLate(shipment_id, status) => {
                // The order service refuses to cancel a shipped order; this is the
                // race where the parcel left while the cancellation was in flight.
                // The order service will hear of the dispatch and must settle it.
                tracing::warn!(%order_id, %shipment_id, %status, %reason, "order cancelled after its shipment left: the shipment goes on");
            }
            Cancelled::NoShipment => {
                tracing::debug!(%order_id, %reason, "order cancelled without a shipment");
            }
        }
        Ok(())
    }
}
