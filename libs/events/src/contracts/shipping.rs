//! Events of the shipping context (stream `SHIPPING`, owned by the shipping service).
//! A shipment is created when an order is confirmed (`orders.order.confirmed`) and
//! moves `CREATED -> DISPATCHED -> DELIVERED`; each step is an event the order follows
//! (`SHIPPED` on dispatch, `DELIVERED` on delivery). A shipment not yet dispatched is
//! cancelled when its order is (`orders.order.cancelled`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCreated {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub tracking_number: String,
}

impl Event for ShipmentCreated {
    const TYPE: &'static str = "shipping.shipment.created";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDispatched {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub tracking_number: String,
}

impl Event for ShipmentDispatched {
    const TYPE: &'static str = "shipping.shipment.dispatched";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDelivered {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub tracking_number: String,
}

impl Event for ShipmentDelivered {
    const TYPE: &'static str = "shipping.shipment.delivered";
    const VERSION: u32 = 1;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCancelled {
    pub shipment_id: Uuid,
    pub order_id: Uuid,
    pub reason: String,
}

impl Event for ShipmentCancelled {
    const TYPE: &'static str = "shipping.shipment.cancelled";
    const VERSION: u32 = 1;
}
