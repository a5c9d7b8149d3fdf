//! `payments.payment.capture`: takes the held amount of an authorized payment
//! (`crate::commands::capture`).

use shop_events::contracts::payments::CapturePayment;
use shop_events::{Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::commands;
use crate::processor::Processor;

pub const CONSUMER: &str = "payment-capture";

pub struct Capture {
    pub outbox: Outbox,
    pub processor: Processor,
}

impl EventHandler for Capture {
    type Event = CapturePayment;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<CapturePayment>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = commands::capture(tx, &self.outbox, &self.processor, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "capture");
        Ok(())
    }
}
