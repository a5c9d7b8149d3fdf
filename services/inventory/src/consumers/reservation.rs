//! The reservation commands (`inventory.reservation.reserve|commit|release|return`), one
//! consumer each, all delegating to `crate::reservations`. Every command about a known
//! order is answered with how its reservation stands; a malformed command, or a commit
//! for an order never reserved, is permanent: it goes to the dead-letter stream with
//! the reason.
//!
//! Each consumer handles one command per transaction (`batch = 1`): a batch would hold
//! the stock locks of many orders at once, taken in no global order, and two batches
//! could deadlock. Concurrency comes from several transactions in flight.

use shop_events::contracts::inventory::{
    CommitReservation, ReleaseReservation, ReserveStock, ReturnStock,
};
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError, Outbox};
use sqlx::PgConnection;

use crate::reservations;

pub const RESERVE: &str = "inventory-reserve";
pub const COMMIT: &str = "inventory-commit";
pub const RELEASE: &str = "inventory-release";
pub const RETURN: &str = "inventory-return";

fn one_per_transaction(name: &str) -> ConsumerConfig {
    ConsumerConfig {
        batch: 1,
        concurrency: 4,
        ..ConsumerConfig::new(name)
    }
}

pub fn reserve_config() -> ConsumerConfig {
    one_per_transaction(RESERVE)
}

pub fn commit_config() -> ConsumerConfig {
    one_per_transaction(COMMIT)
}

pub fn release_config() -> ConsumerConfig {
    one_per_transaction(RELEASE)
}

pub fn return_config() -> ConsumerConfig {
    one_per_transaction(RETURN)
}

pub struct Reserve(pub Outbox);

impl EventHandler for Reserve {
    type Event = ReserveStock;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<ReserveStock>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = reservations::reserve(tx, &self.0, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "reserve");
        Ok(())
    }
}

pub struct Commit(pub Outbox);

impl EventHandler for Commit {
    type Event = CommitReservation;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<CommitReservation>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = reservations::commit(tx, &self.0, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "commit");
        Ok(())
    }
}

pub struct Release(pub Outbox);

impl EventHandler for Release {
    type Event = ReleaseReservation;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<ReleaseReservation>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = reservations::release(tx, &self.0, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "release");
        Ok(())
    }
}

pub struct Return(pub Outbox);

impl EventHandler for Return {
    type Event = ReturnStock;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<ReturnStock>,
    ) -> Result<(), HandlerError> {
        let order_id = event.data.order_id;
        let status = reservations::return_stock(tx, &self.0, event.data).await?;
        tracing::info!(%order_id, status = status.as_str(), "return");
        Ok(())
    }
}
