//! The catalog service: products, categories, search and prices, with admin CRUD.
//!
//! Not built out yet (see its README): today it only runs the shared operational
//! surface (`/healthz`, `/readyz` checking NATS and its own `catalog` schema's database
//! role, `/metrics`, `/openapi.json`, `/docs`) so the stack, the launcher and the
//! deployment manifests are complete from the start.

use shop_http::ServiceInfo;
use shop_http::skeleton::Owns;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "catalog",
    title: "the shop: catalog service",
    version: env!("CARGO_PKG_VERSION"),
    description: "products, categories, search and prices, with admin CRUD (not built yet).",
};

/// The service's own schema (see `shop_db::SERVICES`); it also owns the stream of
/// its event context.
pub const SCHEMA: &str = "catalog";

pub async fn main() -> anyhow::Result<()> {
    let owns = Owns {
        schema: Some(SCHEMA),
        context: Some("catalog"),
    };
    shop_http::skeleton::main(INFO, 8082, owns).await
}
