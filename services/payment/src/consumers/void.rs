//! `payments.payment.void`: the checkout's compensation: drops a hold, refunds a
//! capture, or makes sure nothing will be held (`crate::commands::void`).

use shop_events::contracts::payments::VoidPayment;
use shop_events::{Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::commands;
use crate::processor::Processor;

pub const CONSUMER: &str = "payment-void";

pub struct Void {
    pub outbox: Outbox,
    pub processor: Processor,
}

impl EventHandler for Void {
    type Event = VoidPayment;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<VoidPayment>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = commands::void(tx, &self.outbox, &self.processor, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "void");
        Ok(())
    }
}
