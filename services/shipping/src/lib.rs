//! The shipping service: shipments and their tracking status progression.
//!
//! Not built out yet (see its README): today it only runs the shared operational
//! surface (`/healthz`, `/readyz` checking its own `shipping` schema's database
//! role, `/metrics`, `/openapi.json`, `/docs`) so the stack, the launcher and the
//! deployment manifests are complete from the start.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shop_http::{HttpSettings, PostgresCheck, Readiness, ServiceInfo};
use utoipa_axum::router::OpenApiRouter;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "shipping",
    title: "the shop: shipping service",
    version: env!("CARGO_PKG_VERSION"),
    description: "shipments and their tracking status progression (not built yet).",
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub http: HttpSettings,
    /// The service's own role; see `shop_db::SERVICES`.
    #[serde(skip_serializing)]
    pub database_url: Option<SecretString>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::on_port(8086),
            database_url: None,
        }
    }
}

/// The HTTP app: only the operational endpoints for now.
pub fn router(settings: &Settings) -> anyhow::Result<axum::Router> {
    let mut readiness = Readiness::new();
    if let Some(url) = &settings.database_url {
        let pool = shop_db::connect_lazy(url, "shipping", &shop_db::PoolSettings::default())?;
        readiness = readiness.with(PostgresCheck(pool));
    }
    let (router, _) = shop_http::app(INFO, OpenApiRouter::new(), readiness, &settings.http);
    Ok(router)
}

pub async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_telemetry::init(INFO.name)?;
    let settings: Settings = shop_http::config::load(Settings::default())?;
    shop_http::run(router(&settings)?, &settings.http).await
}
