//! Keeps the availability projection (`crate::availability`) in step with the
//! inventory: every `inventory.stock.updated` carries the SKU's whole availability and
//! a revision, so applying the newest one is all there is to do, and an older one
//! arriving late changes nothing.

use shop_events::contracts::inventory::StockUpdated;
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError};
use sqlx::PgConnection;

/// The durable consumer's name.
pub const CONSUMER: &str = "catalog-availability";

pub fn config() -> ConsumerConfig {
    ConsumerConfig::new(CONSUMER)
}

pub struct Availability;

impl EventHandler for Availability {
    type Event = StockUpdated;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<StockUpdated>,
    ) -> Result<(), HandlerError> {
        let stock = event.data;
        let applied =
            crate::availability::record(tx, &stock.sku, stock.available, stock.revision).await?;
        tracing::debug!(sku = %stock.sku, revision = stock.revision, applied, "stock updated");
        Ok(())
    }
}
