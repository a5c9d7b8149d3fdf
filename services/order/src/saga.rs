//! The checkout saga's coordinator (orchestration): the one place that knows the whole
//! flow. It sends commands to the inventory and the payment service through the
//! outbox, follows their answers, and tells everyone else how an order stands
//! (`orders.order.*`, which the shipping service follows).
//!
//! ```text
//! placement                        -> PENDING          [placed, reservation.reserve]
//! stock.reserved   (PENDING)          -> AWAITING_PAYMENT [payment.authorize]
//! stock.rejected   (PENDING)          -> CANCELLED OUT_OF_STOCK [order.cancelled]
//! payment.authorized (AWAITING_PAYMENT) -> CONFIRMED   [reservation.commit, payment.capture, order.confirmed]
//! payment.declined (AWAITING_PAYMENT) -> CANCELLED PAYMENT_DECLINED [reservation.release, order.cancelled]
//! shipment.dispatched (CONFIRMED)     -> SHIPPED
//! shipment.delivered (SHIPPED, CONFIRMED) -> DELIVERED
//! deadline (PENDING, AWAITING_PAYMENT) -> CANCELLED TIMEOUT [release, payment.void, order.cancelled]
//! stock.expired    (PENDING, AWAITING_PAYMENT) -> CANCELLED TIMEOUT (the same)
//! stock.expired    (CONFIRMED: the commit came too late) -> CANCELLED TIMEOUT [payment.void, order.cancelled]
//! cancel request   (PENDING, AWAITING_PAYMENT) -> CANCELLED CANCELLED_BY_CUSTOMER [release, void, order.cancelled]
//! cancel request   (CONFIRMED)        -> CANCELLED CANCELLED_BY_CUSTOMER [reservation.return, void, order.cancelled]
//! late answer      (CANCELLED): stock.reserved -> release again; payment.authorized -> void again
//! ```
//!
//! Every step is one transaction: lock the order (`FOR UPDATE`), check the state the
//! step expects, move it on, write the history row (time, from, to, cause), and enqueue
//! what comes next in the outbox. A consumer's step also records the event id in the
//! same transaction (the chassis), so a redelivered event changes nothing. An answer
//! that finds the order in another state is a duplicate (the inventory and the payment
//! service answer a repeated command again) or late: it is ignored, or, for an order
//! already cancelled, compensated again. The commands are idempotent per order, so
//! compensating twice is harmless.
//!
//! Every waiting state has a deadline (`orders.deadline_at`); the deadline job cancels
//! what is overdue with `TIMEOUT` and compensates.

use std::time::Duration;

use shop_events::contracts::inventory::{
    CommitReservation, ReleaseReservation, ReserveStock, ReturnStock, StockExpired, StockRejected,
    StockReserved,
};
use shop_events::contracts::orders::{OrderCancelled, OrderConfirmed, OrderPlaced};
use shop_events::contracts::payments::{
    AuthorizePayment, CapturePayment, PaymentAuthorized, PaymentDeclined, VoidPayment,
};
use shop_events::contracts::shipping::{ShipmentCreated, ShipmentDelivered, ShipmentDispatched};
use shop_events::{Envelope, Event, HandlerError, Outbox};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::catch_up::CatchUp;
use crate::config::SagaSettings;
use crate::history::{self, Cause};
use crate::metrics;
use crate::orders::{self, CancelReason, Locked, NewOrder, Order, Status};

/// Why a step could not run.
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// An answer about an order this service does not have: nothing to move, so the
    /// consumer parks it on the dead-letter stream for someone to look at.
    #[error("no order {0}")]
    UnknownOrder(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<SagaError> for HandlerError {
    fn from(e: SagaError) -> Self {
        match e {
            SagaError::UnknownOrder(_) => HandlerError::Permanent(e.to_string()),
            SagaError::Database(e) => e.into(),
        }
    }
}

type Result<T, E = SagaError> = std::result::Result<T, E>;

/// What a customer's cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The order is now cancelled, compensation sent.
    Cancelled,
    /// It was cancelled already: nothing changed.
    AlreadyCancelled,
    /// It has shipped (or arrived): too late.
    TooLate(Status),
}

/// The coordinator: the outbox its commands go through and its clocks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Saga {
    outbox: Outbox,
    reserve_timeout: Duration,
    payment_timeout: Duration,
    reservation_ttl_secs: u32,
}

impl Saga {
    pub fn new(outbox: Outbox, settings: &SagaSettings) -> Self {
        Self {
            outbox,
            reserve_timeout: Duration::from_millis(settings.reserve_timeout_ms),
            payment_timeout: Duration::from_millis(settings.payment_timeout_ms),
            reservation_ttl_secs: settings.reservation_ttl_secs,
        }
    }

    /// The first step, in the placement's transaction: the order `PENDING` with its
    /// lines and deadline, its history, `orders.order.placed` and the reserve command.
    /// Returns the order as stored (the placement answers with it, without reading it
    /// back).
    pub async fn start(&self, conn: &mut PgConnection, order: NewOrder) -> sqlx::Result<Order> {
        let (created_at, deadline_at) = orders::insert(conn, &order, self.reserve_timeout).await?;
        let cause = Cause::local("placement", None);
        let placement = history::record(conn, order.id, None, Status::Pending, &cause).await?;
        let placed = OrderPlaced {
            order_id: order.id,
            user_id: order.user_id,
            lines: order.lines.iter().map(Into::into).collect(),
            total: order.total.clone().into(),
        };
        self.outbox.enqueue(conn, placed).await?;
        let reserve = ReserveStock {
            order_id: order.id,
            lines: order.lines.iter().map(Into::into).collect(),
            ttl_secs: self.reservation_ttl_secs,
        };
        self.outbox.enqueue(conn, reserve).await?;
        Ok(Order {
            id: order.id,
            user_id: order.user_id,
            status: Status::Pending,
            cancel_reason: None,
            lines: order.lines,
            total: order.total,
            shipping_address: order.shipping_address,
            deadline_at: Some(deadline_at),
            created_at,
            updated_at: created_at,
            history: vec![placement],
        })
    }

    /// `inventory.stock.reserved`: ask for the payment.
    pub async fn stock_reserved(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<StockReserved>,
    ) -> Result<()> {
        let cause = Cause::event(StockReserved::TYPE, event.id, None);
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::Pending => {
                self.advance(conn, &order, Status::AwaitingPayment, &cause)
                    .await?;
                let authorize = AuthorizePayment {
                    order_id: order.id,
                    user_id: order.user_id,
                    amount: order.total.clone().into(),
                    card_token: order.card_token.clone(),
                };
                self.outbox.enqueue(conn, authorize).await?;
            }
            // The reservation came after the order gave up: give the stock back.
            Status::Cancelled => {
                let release = self.release(&order, "late reservation of a cancelled order");
                self.outbox.enqueue(conn, release).await?;
                note(
                    conn,
                    &order,
                    cause,
                    "late answer: reservation released again",
                )
                .await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// `inventory.stock.rejected`: nothing was reserved; the order ends.
    pub async fn stock_rejected(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<StockRejected>,
    ) -> Result<()> {
        let short: Vec<String> = event
            .data
            .short
            .iter()
            .map(|s| {
                format!(
                    "{}: {} requested, {} available",
                    s.sku, s.requested, s.available
                )
            })
            .collect();
        let cause = Cause::event(StockRejected::TYPE, event.id, Some(short.join("; ")));
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::Pending => {
                self.cancel(conn, &order, CancelReason::OutOfStock, &cause)
                    .await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// `inventory.stock.expired`: the reservation lapsed before the order was paid (or
    /// the commit came too late): the order ends with `TIMEOUT`.
    pub async fn stock_expired(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<StockExpired>,
    ) -> Result<()> {
        let detail = "the stock reservation expired".to_owned();
        let cause = Cause::event(StockExpired::TYPE, event.id, Some(detail));
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::Pending | Status::AwaitingPayment | Status::Confirmed => {
                self.cancel(conn, &order, CancelReason::Timeout, &cause)
                    .await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// `payments.payment.authorized`: the order is confirmed; commit the stock, take
    /// the money, and tell the shipping service.
    pub async fn payment_authorized(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<PaymentAuthorized>,
    ) -> Result<()> {
        let cause = Cause::event(PaymentAuthorized::TYPE, event.id, None);
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::AwaitingPayment => {
                self.advance(conn, &order, Status::Confirmed, &cause)
                    .await?;
                let commit = CommitReservation { order_id: order.id };
                self.outbox.enqueue(conn, commit).await?;
                let capture = CapturePayment { order_id: order.id };
                self.outbox.enqueue(conn, capture).await?;
                let lines = orders::lines(conn, order.id).await?;
                let confirmed = OrderConfirmed {
                    order_id: order.id,
                    user_id: order.user_id,
                    lines: lines.iter().map(Into::into).collect(),
                    total: order.total.clone().into(),
                    shipping_address: order.shipping_address.clone().into(),
                };
                self.outbox.enqueue(conn, confirmed).await?;
            }
            // Money held for an order that gave up: drop the hold.
            Status::Cancelled => {
                let void = VoidPayment {
                    order_id: order.id,
                    reason: "late authorization of a cancelled order".to_owned(),
                };
                self.outbox.enqueue(conn, void).await?;
                note(conn, &order, cause, "late answer: payment voided again").await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// `payments.payment.declined`: the order ends; its stock goes back.
    pub async fn payment_declined(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<PaymentDeclined>,
    ) -> Result<()> {
        let cause = Cause::event(
            PaymentDeclined::TYPE,
            event.id,
            Some(event.data.reason.clone()),
        );
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::AwaitingPayment => {
                self.cancel(conn, &order, CancelReason::PaymentDeclined, &cause)
                    .await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// `shipping.shipment.created`: recorded in the history, whatever the state (the
    /// shipping service cancels the shipment of a cancelled order itself).
    pub async fn shipment_created(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ShipmentCreated>,
    ) -> Result<()> {
        let detail = format!("tracking number {}", event.data.tracking_number);
        let cause = Cause::event(ShipmentCreated::TYPE, event.id, None);
        let order = lock(conn, event.data.order_id).await?;
        // The shipping service answers a repeated confirmation with the same shipment
        // again: one history row is enough.
        let recorded: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM order_history
                            WHERE order_id = $1 AND cause = $2 AND detail = $3)",
        )
        .bind(order.id)
        .bind(ShipmentCreated::TYPE)
        .bind(&detail)
        .fetch_one(&mut *conn)
        .await?;
        if !recorded {
            note(conn, &order, cause, &detail).await?;
        }
        Ok(())
    }

    /// `shipping.shipment.dispatched`: on its way.
    pub async fn shipment_dispatched(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ShipmentDispatched>,
    ) -> Result<()> {
        let detail = format!("tracking number {}", event.data.tracking_number);
        let cause = Cause::event(ShipmentDispatched::TYPE, event.id, Some(detail));
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::Confirmed => {
                self.advance(conn, &order, Status::Shipped, &cause).await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// `shipping.shipment.delivered`: arrived (the dispatch may not have been seen yet:
    /// events of different subjects are not ordered).
    pub async fn shipment_delivered(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ShipmentDelivered>,
    ) -> Result<()> {
        let detail = format!("tracking number {}", event.data.tracking_number);
        let cause = Cause::event(ShipmentDelivered::TYPE, event.id, Some(detail));
        let order = lock(conn, event.data.order_id).await?;
        match order.status {
            Status::Confirmed | Status::Shipped => {
                self.advance(conn, &order, Status::Delivered, &cause)
                    .await?;
            }
            _ => ignored(&order, &cause),
        }
        Ok(())
    }

    /// A cancel request by the owner or an admin, on an order the caller has locked.
    pub async fn cancel_requested(
        &self,
        conn: &mut PgConnection,
        order: &Locked,
        by: &str,
    ) -> sqlx::Result<CancelOutcome> {
        match order.status {
            Status::Cancelled => Ok(CancelOutcome::AlreadyCancelled),
            Status::Shipped | Status::Delivered => Ok(CancelOutcome::TooLate(order.status)),
            Status::Pending | Status::AwaitingPayment | Status::Confirmed => {
                let cause = Cause::local("cancel-request", Some(format!("cancelled by {by}")));
                self.cancel(conn, order, CancelReason::CancelledByCustomer, &cause)
                    .await?;
                Ok(CancelOutcome::Cancelled)
            }
        }
    }

    /// Cancels up to `limit` orders past their deadline with `TIMEOUT`, in one
    /// transaction; returns how many. Replicas share the work (`SKIP LOCKED`).
    pub async fn expire_overdue(&self, db: &PgPool, limit: i64) -> sqlx::Result<usize> {
        let mut tx = db.begin().await?;
        let overdue = orders::lock_overdue(&mut tx, limit).await?;
        for order in &overdue {
            let detail = format!("no answer while {}", order.status.as_str());
            let cause = Cause::local("deadline", Some(detail));
            self.cancel(&mut tx, order, CancelReason::Timeout, &cause)
                .await?;
        }
        tx.commit().await?;
        Ok(overdue.len())
    }

    /// The deadline job: every overdue order, a batch per transaction; after a
    /// start-up, only once the answers that waited meanwhile are handled.
    pub async fn deadline_job(self, db: PgPool, catch_up: CatchUp) -> anyhow::Result<()> {
        const BATCH: i64 = 100;
        if !catch_up.caught_up().await {
            return Ok(());
        }
        loop {
            let expired = self.expire_overdue(&db, BATCH).await?;
            if expired > 0 {
                tracing::info!(expired, "orders past their deadline cancelled");
            }
            if (expired as i64) < BATCH {
                return Ok(());
            }
        }
    }

    /// Moves the order on, with the deadline of the state it enters.
    async fn advance(
        &self,
        conn: &mut PgConnection,
        order: &Locked,
        to: Status,
        cause: &Cause,
    ) -> sqlx::Result<()> {
        let deadline = match to {
            Status::Pending => Some(self.reserve_timeout),
            Status::AwaitingPayment => Some(self.payment_timeout),
            _ => None,
        };
        let age = orders::set_status(conn, order.id, to, None, deadline).await?;
        history::record(conn, order.id, Some(order.status), to, cause).await?;
        metrics::transition(order.status, to, age);
        tracing::info!(order_id = %order.id, from = order.status.as_str(), to = to.as_str(), cause = %cause.kind, "order moved");
        Ok(())
    }

    /// Ends the order with `reason`, and sends what undoes the steps it took so far.
    async fn cancel(
        &self,
        conn: &mut PgConnection,
        order: &Locked,
        reason: CancelReason,
        cause: &Cause,
    ) -> sqlx::Result<()> {
        let age = orders::set_status(conn, order.id, Status::Cancelled, Some(reason), None).await?;
        history::record(conn, order.id, Some(order.status), Status::Cancelled, cause).await?;
        let undo = compensation(order.status, reason);
        let why = format!("order cancelled: {}", reason.as_str());
        if undo.release {
            self.outbox.enqueue(conn, self.release(order, &why)).await?;
        }
        if undo.give_back {
            let give_back = ReturnStock {
                order_id: order.id,
                reason: why.clone(),
            };
            self.outbox.enqueue(conn, give_back).await?;
        }
        if undo.void {
            let void = VoidPayment {
                order_id: order.id,
                reason: why,
            };
            self.outbox.enqueue(conn, void).await?;
        }
        let cancelled = OrderCancelled {
            order_id: order.id,
            reason: reason.as_str().to_owned(),
        };
        self.outbox.enqueue(conn, cancelled).await?;
        metrics::transition(order.status, Status::Cancelled, age);
        metrics::cancelled(reason);
        tracing::info!(order_id = %order.id, from = order.status.as_str(), reason = reason.as_str(), cause = %cause.kind, "order cancelled");
        Ok(())
    }

    fn release(&self, order: &Locked, reason: &str) -> ReleaseReservation {
        ReleaseReservation {
            order_id: order.id,
            reason: reason.to_owned(),
        }
    }
}

/// What a cancellation must undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Compensation {
    /// Release the reservation (`inventory.reservation.release`).
    pub release: bool,
    /// Return committed stock (`inventory.reservation.return`).
    pub give_back: bool,
    /// Void the payment, or refund its capture (`payments.payment.void`).
    pub void: bool,
}

/// What cancelling an order in state `from` for `reason` must undo. A command may be
/// sent for a step that has not happened (a release before the reservation, a void
/// before the authorization): the participants remember it, so the late step then
/// holds nothing. That is what makes a timeout safe whichever answer is missing.
pub fn compensation(from: Status, reason: CancelReason) -> Compensation {
    let none = Compensation::default();
    match (from, reason) {
        // Nothing was reserved, and no payment was asked for.
        (_, CancelReason::OutOfStock) => none,
        // Nothing is held on the card.
        (_, CancelReason::PaymentDeclined) => Compensation {
            release: true,
            ..none
        },
        // Committed stock goes back on the shelf; the capture is refunded.
        (Status::Confirmed, CancelReason::CancelledByCustomer) => Compensation {
            give_back: true,
            void: true,
            ..none
        },
        // The commit came after the reservation lapsed: the stock is free already.
        (Status::Confirmed, CancelReason::Timeout) => Compensation { void: true, ..none },
        // Waiting for an answer: whichever step happened (or is about to), undo it.
        (_, CancelReason::Timeout | CancelReason::CancelledByCustomer) => Compensation {
            release: true,
            void: true,
            ..none
        },
    }
}

/// Locks the order an answer is about.
async fn lock(conn: &mut PgConnection, order_id: Uuid) -> Result<Locked> {
    orders::lock(conn, order_id)
        .await?
        .ok_or(SagaError::UnknownOrder(order_id))
}

/// Records an event that moved nothing.
async fn note(
    conn: &mut PgConnection,
    order: &Locked,
    mut cause: Cause,
    detail: &str,
) -> sqlx::Result<()> {
    cause.detail = Some(detail.to_owned());
    history::record(conn, order.id, Some(order.status), order.status, &cause).await?;
    Ok(())
}

/// An answer that finds the order in another state: a duplicate or late; nothing to do.
fn ignored(order: &Locked, cause: &Cause) {
    tracing::info!(
        order_id = %order.id,
        status = order.status.as_str(),
        cause = %cause.kind,
        "answer ignored: the order is past that step"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undo(release: bool, give_back: bool, void: bool) -> Compensation {
        Compensation {
            release,
            give_back,
            void,
        }
    }

    #[test]
    fn each_cancellation_undoes_exactly_the_steps_taken() {
        use CancelReason::*;
        use Status::*;
        assert_eq!(compensation(Pending, OutOfStock), undo(false, false, false));
        assert_eq!(
            compensation(AwaitingPayment, PaymentDeclined),
            undo(true, false, false)
        );
        assert_eq!(compensation(Pending, Timeout), undo(true, false, true));
        assert_eq!(
            compensation(AwaitingPayment, Timeout),
            undo(true, false, true)
        );
        assert_eq!(compensation(Confirmed, Timeout), undo(false, false, true));
        assert_eq!(
            compensation(Pending, CancelledByCustomer),
            undo(true, false, true)
        );
        assert_eq!(
            compensation(AwaitingPayment, CancelledByCustomer),
            undo(true, false, true)
        );
        assert_eq!(
            compensation(Confirmed, CancelledByCustomer),
            undo(false, true, true)
        );
    }
}
