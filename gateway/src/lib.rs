//! The API gateway: the shop's single entry point.
//!
//! Not built out yet (see its README): today it runs the shared operational surface
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`) so the stack, the
//! launcher and the deployment manifests are complete from the start.

use shop_http::ServiceInfo;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "gateway",
    title: "the shop: API gateway",
    version: env!("CARGO_PKG_VERSION"),
    description: "Single entry point: routing, auth, rate limits, CORS, aggregation (not built yet).",
};

pub async fn main() -> anyhow::Result<()> {
    shop_http::skeleton::main(INFO, 8080, shop_http::skeleton::Owns::default()).await
}
