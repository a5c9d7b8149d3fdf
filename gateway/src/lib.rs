//! The API gateway: the shop's single entry point.
//!
//! Not built out yet (see its README): today it runs the shared operational surface
//! (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`) so the stack, the
//! launcher and the deployment manifests are complete from the start.

use serde::{Deserialize, Serialize};
use shop_http::{HttpSettings, Readiness, ServiceInfo};
use utoipa_axum::router::OpenApiRouter;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "gateway",
    title: "the shop: API gateway",
    version: env!("CARGO_PKG_VERSION"),
    description: "Single entry point: routing, auth, rate limits, CORS, aggregation (not built yet).",
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub http: HttpSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::on_port(8080),
        }
    }
}

pub fn router(settings: &Settings) -> axum::Router {
    let (router, _) = shop_http::app(INFO, OpenApiRouter::new(), Readiness::new(), &settings.http);
    router
}

pub async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_telemetry::init(INFO.name)?;
    let settings: Settings = shop_http::config::load(Settings::default())?;
    shop_http::run(router(&settings), &settings.http).await
}
