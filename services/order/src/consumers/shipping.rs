//! The shipping service's events about an order's shipment: the order follows them to
//! `SHIPPED` and `DELIVERED`.

use shop_events::contracts::shipping::{ShipmentCreated, ShipmentDelivered, ShipmentDispatched};

use super::step;

pub const CREATED: &str = "order-shipment-created";
pub const DISPATCHED: &str = "order-shipment-dispatched";
pub const DELIVERED: &str = "order-shipment-delivered";

step!(
    /// `shipping.shipment.created`: recorded in the order's history.
    Created,
    ShipmentCreated,
    shipment_created
);

step!(
    /// `shipping.shipment.dispatched`: `CONFIRMED -> SHIPPED`.
    Dispatched,
    ShipmentDispatched,
    shipment_dispatched
);

step!(
    /// `shipping.shipment.delivered`: `SHIPPED (or CONFIRMED) -> DELIVERED`.
    Delivered,
    ShipmentDelivered,
    shipment_delivered
);
