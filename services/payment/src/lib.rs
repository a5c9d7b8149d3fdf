//! The payment service: a simulated card processor: authorize, capture, refund; v1 and v2 API.
//!
//! Not built out yet (see its README): today it only runs the shared operational
//! surface (`/healthz`, `/readyz` checking NATS and its own `payments` schema's database
//! role, `/metrics`, `/openapi.json`, `/docs`) so the stack, the launcher and the
//! deployment manifests are complete from the start.

use shop_http::ServiceInfo;
use shop_http::skeleton::Owns;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "payment",
    title: "the shop: payment service",
    version: env!("CARGO_PKG_VERSION"),
    description: "a simulated card processor: authorize, capture, refund; v1 and v2 API (not built yet).",
};

/// The service's own schema (see `shop_db::SERVICES`); it also owns the stream of
/// its event context.
pub const SCHEMA: &str = "payments";

pub async fn main() -> anyhow::Result<()> {
    let owns = Owns {
        schema: Some(SCHEMA),
        context: Some("payments"),
    };
    shop_http::skeleton::main(INFO, 8085, owns).await
}
