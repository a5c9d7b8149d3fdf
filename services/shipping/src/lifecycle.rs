//! How a shipment comes to be and moves on, each change in the caller's transaction
//! together with the event that announces it:
//!
//! ```text
//! orders.order.confirmed --> CREATED      shipping.shipment.created    (open)
//! CREATED    --dispatch----> DISPATCHED   shipping.shipment.dispatched (step: admin or carrier)
//! DISPATCHED --deliver-----> DELIVERED    shipping.shipment.delivered  (step: admin or carrier)
//! orders.order.cancelled --> CANCELLED    shipping.shipment.cancelled  (cancel, from CREATED only)
//! ```
//!
//! - **One shipment per order.** `shipments.order_id` is unique; a confirmation for an
//!   order that has a shipment changes nothing (the consumer's processed-event record
//!   already stops the same event twice; this stops the same order confirmed twice).
//! - **The two order events never interleave.** [`open`] and [`cancel`] first take a
//!   transaction-scoped advisory lock on the order id, so for one order they run one
//!   after the other, whichever consumer gets there first. Without it, a confirmation
//!   and a cancellation handled at the same moment would each see nothing of the
//!   other's uncommitted row, and the order would end cancelled with a live shipment.
//! - **A cancellation can overtake the confirmation** (see `crate::cancelled_orders`):
//!   an order cancelled with no shipment leaves a tombstone, and its confirmation then
//!   ships nothing.
//! - **Steps are idempotent, and only forwards.** A step to the status the shipment is
//!   already in changes nothing and publishes nothing ([`Stepped::Already`]); any
//!   other step out of order is refused ([`Error::OutOfOrder`]). Every status change
//!   happens under the shipment's row lock, so two steps (an admin's and the
//!   carrier's, two admins', two carrier replicas') never both apply.

use shop_events::Outbox;
use shop_events::contracts::orders::{OrderCancelled, OrderConfirmed};
use shop_events::contracts::shipping::{
    ShipmentCancelled, ShipmentCreated, ShipmentDelivered, ShipmentDispatched,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::cancelled_orders;
use crate::error::{Error, Result};
use crate::shipments::{self, Address, NewShipment, Shipment, ShipmentId, Status};
use crate::tracking::TrackingNumber;

/// How many tracking numbers [`open`] draws before giving up: with 36^10 numbers,
/// even one collision is a rarity; five in a row means something else is wrong.
const MAX_DRAWS: usize = 5;

/// The first key of the order-scoped advisory locks ("SHIP"): the two-key form keeps
/// them apart from the single-key locks other code takes on the same database.
const ORDER_LOCK_CLASS: i32 = 0x5348_4950;

/// What a confirmation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A new shipment.
    Created(ShipmentId, TrackingNumber),
    /// The order already had one.
    AlreadyOpen,
    /// The order was cancelled before its confirmation was handled: no shipment.
    OrderCancelled(String),
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The shipment had not left: cancelled.
    Cancelled(ShipmentId),
    /// It was cancelled before.
    AlreadyCancelled(ShipmentId),
    /// It had left (`DISPATCHED` or `DELIVERED`): nothing to stop.
    TooLate(ShipmentId, Status),
    /// The order had no shipment: remembered, so a late confirmation ships nothing.
    NoShipment,
}

/// A forward step of a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Dispatch,
    Deliver,
}

impl Step {
    /// The status it leaves from.
    pub fn from(self) -> Status {
        match self {
            Step::Dispatch => Status::Created,
            Step::Deliver => Status::Dispatched,
        }
    }

    /// The status it arrives at.
    pub fn to(self) -> Status {
        match self {
            Step::Dispatch => Status::Dispatched,
            Step::Deliver => Status::Delivered,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Dispatch => "dispatched",
            Step::Deliver => "delivered",
        }
    }
}

/// What a step did.
#[derive(Debug, Clone)]
pub enum Stepped {
    /// The shipment moved on; its event is in the outbox.
    Moved(Shipment),
    /// It was already there: nothing changed, nothing published.
    Already(Shipment),
}

impl Stepped {
    pub fn shipment(self) -> Shipment {
        match self {
            Stepped::Moved(s) | Stepped::Already(s) => s,
        }
    }
}

/// Creates the shipment of a confirmed order, `CREATED` with a fresh tracking number
/// drawn by `draw`, and publishes `shipping.shipment.created`.
pub async fn open(
    conn: &mut PgConnection,
    outbox: &Outbox,
    confirmed: OrderConfirmed,
    mut draw: impl FnMut() -> anyhow::Result<TrackingNumber>,
) -> Result<Opened> {
    let order_id = confirmed.order_id;
    lock_order(conn, order_id).await?;
    if shipments::order_has_shipment(conn, order_id).await? {
        return Ok(Opened::AlreadyOpen);
    }
    if let Some(reason) = cancelled_orders::find(conn, order_id).await? {
        return Ok(Opened::OrderCancelled(reason));
    }
    let id = ShipmentId::generate();
    let address = Address::from(confirmed.shipping_address);
    for _ in 0..MAX_DRAWS {
        let tracking_number = draw()?;
        let new = NewShipment {
            id,
            order_id,
            user_id: confirmed.user_id,
            tracking_number: &tracking_number,
            address: &address,
        };
        if shipments::insert(conn, &new).await? {
            shipments::record_history(conn, id, Status::Created, "order confirmed").await?;
            let created = ShipmentCreated {
                shipment_id: id.0,
                order_id,
                tracking_number: tracking_number.to_string(),
            };
            outbox.enqueue(conn, created).await?;
            return Ok(Opened::Created(id, tracking_number));
        }
        // Under the order's lock nobody else can have shipped it: the number was taken.
        tracing::warn!(%order_id, %tracking_number, "tracking number taken; drawing another");
    }
    Err(anyhow::anyhow!("{MAX_DRAWS} tracking numbers in a row were taken").into())
}

/// Cancels the order's shipment if it has not left, and publishes
/// `shipping.shipment.cancelled`. See [`Cancelled`] for the other outcomes.
pub async fn cancel(
    conn: &mut PgConnection,
    outbox: &Outbox,
    cancelled: OrderCancelled,
) -> Result<Cancelled> {
    let OrderCancelled { order_id, reason } = cancelled;
    lock_order(conn, order_id).await?;
    let Some(shipment) = shipments::lock_by_order(conn, order_id).await? else {
        cancelled_orders::record(conn, order_id, &reason).await?;
        return Ok(Cancelled::NoShipment);
    };
    let id = shipment.id;
    match shipment.status {
        Status::Created => {
            let cause = format!("order cancelled ({reason})");
            shipments::set_status(conn, id, Status::Cancelled, &cause, Some(&reason)).await?;
            let event = ShipmentCancelled {
                shipment_id: id.0,
                order_id,
                reason,
            };
            outbox.enqueue(conn, event).await?;
            Ok(Cancelled::Cancelled(id))
        }
        Status::Cancelled => Ok(Cancelled::AlreadyCancelled(id)),
        left @ (Status::Dispatched | Status::Delivered) => Ok(Cancelled::TooLate(id, left)),
    }
}

/// Moves the shipment one step on, publishing the step's event; `cause` goes into its
/// history (`admin <id>`, `carrier`).
pub async fn step(
    conn: &mut PgConnection,
    outbox: &Outbox,
    id: ShipmentId,
    step: Step,
    cause: &str,
) -> Result<Stepped> {
    let shipment = shipments::lock(conn, id)
        .await?
        .ok_or(Error::ShipmentNotFound)?;
    if shipment.status == step.to() {
        return Ok(Stepped::Already(shipment));
    }
    if shipment.status != step.from() {
        return Err(Error::OutOfOrder {
            status: shipment.status,
            step,
        });
    }
    shipments::set_status(conn, id, step.to(), cause, None).await?;
    let (shipment_id, order_id) = (id.0, shipment.order_id);
    let tracking_number = shipment.tracking_number.to_string();
    match step {
        Step::Dispatch => {
            let event = ShipmentDispatched {
                shipment_id,
                order_id,
                tracking_number,
            };
            outbox.enqueue(conn, event).await?
        }
        Step::Deliver => {
            let event = ShipmentDelivered {
                shipment_id,
                order_id,
                tracking_number,
            };
            outbox.enqueue(conn, event).await?
        }
    };
    let moved = shipments::find(conn, id)
        .await?
        .ok_or(Error::ShipmentNotFound)?;
    Ok(Stepped::Moved(moved))
}

/// Serializes everything about one order until the transaction ends.
async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(ORDER_LOCK_CLASS)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}
