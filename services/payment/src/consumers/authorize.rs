//! `payments.payment.authorize`: records the attempt for the authorizer, or answers
//! how the order's payment stands (`crate::commands::authorize`).

use shop_events::contracts::payments::AuthorizePayment;
use shop_events::{Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::commands;

pub const CONSUMER: &str = "payment-authorize";

pub struct Authorize(pub Outbox);

impl EventHandler for Authorize {
    type Event = AuthorizePayment;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<AuthorizePayment>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = commands::authorize(tx, &self.0, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "authorize");
        Ok(())
    }
}
