//! The inventory service: stock per SKU, reservations with a TTL, stock events and low-stock alerts.
//!
//! Not built out yet (see its README): today it only runs the shared operational
//! surface (`/healthz`, `/readyz` checking NATS and its own `inventory` schema's database
//! role, `/metrics`, `/openapi.json`, `/docs`) so the stack, the launcher and the
//! deployment manifests are complete from the start.

use shop_http::ServiceInfo;
use shop_http::skeleton::Owns;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "inventory",
    title: "the shop: inventory service",
    version: env!("CARGO_PKG_VERSION"),
    description: "stock per SKU, reservations with a TTL, stock events and low-stock alerts (not built yet).",
};

/// The service's own schema (see `shop_db::SERVICES`); it also owns the stream of
/// its event context.
pub const SCHEMA: &str = "inventory";

pub async fn main() -> anyhow::Result<()> {
    let owns = Owns {
        schema: Some(SCHEMA),
        context: Some("inventory"),
    };
    shop_http::skeleton::main(INFO, 8083, owns).await
}
