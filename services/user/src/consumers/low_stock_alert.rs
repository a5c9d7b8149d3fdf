//! The low-stock alert: the seed's purchasing example. When the inventory reports a
//! SKU falling below its threshold (`inventory.stock.low`, once per crossing), a mail
//! goes to purchasing. The user service owns the local mail sink
//! (`users.mail_sink`), so the mail is written here, the way the welcome mail is;
//! `mail_sink.event_id` is unique, so a redelivered alert writes no second mail.

use shop_events::contracts::inventory::StockLow;
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError};
use sqlx::PgConnection;
use uuid::Uuid;

/// The durable consumer's name.
pub const CONSUMER: &str = "user-low-stock-alert";

/// Who is told.
pub const PURCHASING: &str = "purchasing@shop.local";

pub fn config() -> ConsumerConfig {
    ConsumerConfig::new(CONSUMER)
}

pub struct LowStockAlert;

impl EventHandler for LowStockAlert {
    type Event = StockLow;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<StockLow>,
    ) -> Result<(), HandlerError> {
        let low = event.data;
        let subject = format!("Low stock: {}", low.sku);
        let body = format!(
            "Hello purchasing,\n\nSKU {} is running low: {} available, below the threshold \
             of {}.\nPlease reorder.\n\nThe shop",
            low.sku, low.available, low.threshold
        );
        sqlx::query(
            "INSERT INTO mail_sink (id, event_id, to_address, subject, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(event.id)
        .bind(PURCHASING)
        .bind(subject)
        .bind(body)
        .execute(tx)
        .await?;
        tracing::info!(sku = %low.sku, available = low.available, "low-stock alert written to the mail sink");
        Ok(())
    }
}
