//! The shipping service: shipments and their tracking status progression.
//!
//! Not built out yet (see its README): today it only runs the shared operational
//! surface (`/healthz`, `/readyz` checking its own `shipping` schema's database
//! role, `/metrics`, `/openapi.json`, `/docs`) so the stack, the launcher and the
//! deployment manifests are complete from the start.

use shop_http::ServiceInfo;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "shipping",
    title: "the shop: shipping service",
    version: env!("CARGO_PKG_VERSION"),
    description: "shipments and their tracking status progression (not built yet).",
};

/// The service's own schema (see `shop_db::SERVICES`).
pub const SCHEMA: &str = "shipping";

pub async fn main() -> anyhow::Result<()> {
    shop_http::skeleton::main(INFO, 8086, Some(SCHEMA)).await
}
