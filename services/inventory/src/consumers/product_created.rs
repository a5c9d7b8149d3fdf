//! A product created in the catalog gets its stock record here, with nothing on hand.
//! Idempotent twice over: the consumer records the event id, and the insert does
//! nothing if the SKU already has a record.

use shop_events::contracts::catalog::ProductCreated;
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::error::Error;
use crate::sku::Sku;
use crate::stock;

pub const CONSUMER: &str = "inventory-product-created";

pub fn config() -> ConsumerConfig {
    ConsumerConfig::new(CONSUMER)
}

pub struct ProductCreatedHandler {
    pub outbox: Outbox,
    /// The low-stock threshold a new SKU gets.
    pub threshold: i64,
}

impl EventHandler for ProductCreatedHandler {
    type Event = ProductCreated;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<ProductCreated>,
    ) -> Result<(), HandlerError> {
        let product = event.data;
        let sku = Sku::parse(&product.sku)
            .map_err(|e| HandlerError::Permanent(format!("SKU {:?}: {e}", product.sku)))?;
        let created = stock::create(tx, &self.outbox, &sku, self.threshold)
            .await
            .map_err(|e| match e {
                Error::Database(e) => HandlerError::from(e),
                other => HandlerError::Transient(other.into()),
            })?;
        tracing::info!(%sku, product_id = %product.product_id, created, "stock record for a new product");
        Ok(())
    }
}
