//! Events of the orders context (stream `ORDERS`, owned by the order service, which
//! coordinates the checkout saga).
//!
//! The saga itself talks to the inventory and the payment service with *commands*
//! (`inventory.reservation.*`, `payments.payment.*`) and follows their answers. These
//! events tell everyone else how an order stands: the shipping service creates a
//! shipment on `confirmed` and cancels one not yet dispatched on `cancelled`
//! (choreography at the edge of the saga, where no answer is awaited).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;
use crate::contracts::catalog::Money;

/// One line as sold: the price is the catalog's at placement, kept with the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// `prod_...`
    pub product_id: String,
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Money,
}

/// Where the parcel goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

/// An order was accepted (`PENDING`); the saga starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

impl Event for OrderPlaced {
    const TYPE: &'static str = "orders.order.placed";
    const VERSION: u32 = 1;
}

/// Stock reserved and payment authorized: the order will be fulfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub shipping_address: Address,
}

impl Event for OrderConfirmed {
    const TYPE: &'static str = "orders.order.confirmed";
    const VERSION: u32 = 1;
}

/// The order ended without being fulfilled; `reason` is `OUT_OF_STOCK`,
/// `PAYMENT_DECLINED`, `TIMEOUT` or `CANCELLED_BY_CUSTOMER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub reason: String,
}

impl Event for OrderCancelled {
    const TYPE: &'static str = "orders.order.cancelled";
    const VERSION: u32 = 1;
}
