//! Messages of the inventory context (stream `INVENTORY`, owned by the inventory
//! service): the reservation *commands* other services address to it, and the *events*
//! it publishes.
//!
//! Commands (`inventory.reservation.*`) are imperative: the checkout asks the inventory
//! to reserve, commit or release the stock of one order. They are idempotent per
//! `order_id`: the same command twice has one effect, and the second gets the same
//! answer. Results come back as events (`inventory.stock.*`), which the checkout
//! consumes to move its saga on.
//!
//! ```text
//! reserve  --> reserved (all lines, until expires_at) | rejected (the short lines)
//! commit   --> committed (the stock leaves for good)
//! release  --> released (compensation: the stock is available again)
//! return   --> returned (compensation for a commit: the stock is back on the shelf)
//! (TTL)    --> expired   (nobody committed in time: released by the expiry task)
//! any change of availability --> stock.updated; falling below the threshold --> stock.low
//! ```
//!
//! Every command about an order the inventory knows is answered with the event that
//! says how its reservation stands now, even when the command cannot be applied: a
//! commit after the TTL gets `expired`, a release after the commit gets `committed`, a
//! repeated command gets the answer again. Only a malformed command or a commit for an
//! order never reserved goes to the dead-letter stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// One line of an order: how many units of a SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: String,
    pub quantity: i32,
}

/// Command: reserve every line of the order, or none, for `ttl_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveStock {
    pub order_id: Uuid,
    pub lines: Vec<Line>,
    pub ttl_secs: u32,
}

impl Event for ReserveStock {
    const TYPE: &'static str = "inventory.reservation.reserve";
    const VERSION: u32 = 1;
}

/// Command: the order is paid; its reserved stock leaves for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReservation {
    pub order_id: Uuid,
}

impl Event for CommitReservation {
    const TYPE: &'static str = "inventory.reservation.commit";
    const VERSION: u32 = 1;
}

/// Command: the order failed (declined, cancelled); its reserved stock is available
/// again. Compensation in the checkout saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseReservation {
    pub order_id: Uuid,
    pub reason: String,
}

impl Event for ReleaseReservation {
    const TYPE: &'static str = "inventory.reservation.release";
    const VERSION: u32 = 1;
}

/// Command: a confirmed order was cancelled before shipping; its committed stock goes
/// back on the shelf. Compensation for a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnStock {
    pub order_id: Uuid,
    pub reason: String,
}

impl Event for ReturnStock {
    const TYPE: &'static str = "inventory.reservation.return";
    const VERSION: u32 = 1;
}

/// Every line of the order is reserved until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    pub order_id: Uuid,
    pub lines: Vec<Line>,
    pub expires_at: DateTime<Utc>,
}

impl Event for StockReserved {
    const TYPE: &'static str = "inventory.stock.reserved";
    const VERSION: u32 = 1;
}

/// A line that could not be reserved: how many were asked for, how many there were
/// (0 for an unknown SKU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub sku: String,
    pub requested: i32,
    pub available: i64,
}

/// Nothing of the order was reserved, because of these lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRejected {
    pub order_id: Uuid,
    pub short: Vec<Shortage>,
}

impl Event for StockRejected {
    const TYPE: &'static str = "inventory.stock.rejected";
    const VERSION: u32 = 1;
}

/// The order's reserved stock left the warehouse's books for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCommitted {
    pub order_id: Uuid,
    pub lines: Vec<Line>,
}

impl Event for StockCommitted {
    const TYPE: &'static str = "inventory.stock.committed";
    const VERSION: u32 = 1;
}

/// The order's reservation was released on request (compensation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleased {
    pub order_id: Uuid,
    pub lines: Vec<Line>,
    pub reason: String,
}

impl Event for StockReleased {
    const TYPE: &'static str = "inventory.stock.released";
    const VERSION: u32 = 1;
}

/// The order's committed stock is back on the shelf (a return).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReturned {
    pub order_id: Uuid,
    pub lines: Vec<Line>,
    pub reason: String,
}

impl Event for StockReturned {
    const TYPE: &'static str = "inventory.stock.returned";
    const VERSION: u32 = 1;
}

/// The order's reservation passed its TTL uncommitted and was released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockExpired {
    pub order_id: Uuid,
    pub lines: Vec<Line>,
}

impl Event for StockExpired {
    const TYPE: &'static str = "inventory.stock.expired";
    const VERSION: u32 = 1;
}

/// A SKU's availability changed (the seed's `item.stock.updated`): event-carried state,
/// so a reader such as the catalog's `in_stock` filter needs no call to the inventory.
/// `available` = `on_hand` - `reserved`, never negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockUpdated {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// Increases with every change of this SKU, so a reader can drop stale updates.
    pub revision: i64,
}

impl Event for StockUpdated {
    const TYPE: &'static str = "inventory.stock.updated";
    const VERSION: u32 = 1;
}

/// A SKU's availability fell below its low-stock threshold: published once per
/// crossing (the seed's example: purchasing is told).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLow {
    pub sku: String,
    pub available: i64,
    pub threshold: i64,
}

impl Event for StockLow {
    const TYPE: &'static str = "inventory.stock.low";
    const VERSION: u32 = 1;
}
