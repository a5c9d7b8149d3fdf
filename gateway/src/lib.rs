//! The API gateway: the shop's single entry point.
//!
//! Not built out yet (see its README): today it runs the shared operational surface
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`) so the stack, the
//! launcher and the deployment manifests are complete from the start. It owns no data
//! and no event context, so it is built on the HTTP kit alone, not the service chassis.

use shop_http::{HttpSettings, Readiness, ServiceInfo};
use utoipa_axum::router::OpenApiRouter;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "gateway",
    title: "the shop: API gateway",
    version: env!("CARGO_PKG_VERSION"),
    description: "Single entry point: routing, auth, rate limits, CORS, aggregation (not built yet).",
};

/// The process: telemetry, settings (`SHOP_*` over port 8080), serve until stopped.
pub async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_telemetry::init(INFO.name)?;
    let settings = shop_http::config::load(HttpSettings::on_port(8080))?;
    let (router, _) = shop_http::app(INFO, OpenApiRouter::new(), Readiness::new(), &settings);
    shop_http::run(router, &settings).await
}
