//! The shipping service: shipments and their tracking status progression.
//!
//! Not built out yet (see its README): today it only runs the shared operational
//! surface (`/healthz`, `/readyz` checking NATS and its own `shipping` schema's database
//! role, `/metrics`, `/openapi.json`, `/docs`) so the stack, the launcher and the
//! deployment manifests are complete from the start.

use shop_http::ServiceInfo;
use shop_http::skeleton::Owns;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "shipping",
    title: "the shop: shipping service",
    version: env!("CARGO_PKG_VERSION"),
    description: "shipments and their tracking status progression (not built yet).",
};

/// The service's own schema (see `shop_db::SERVICES`); it also owns the stream of
/// its event context.
pub const SCHEMA: &str = "shipping";

pub async fn main() -> anyhow::Result<()> {
    let owns = Owns {
        schema: Some(SCHEMA),
        context: Some("shipping"),
    };
    shop_http::skeleton::main(INFO, 8086, owns).await
}
