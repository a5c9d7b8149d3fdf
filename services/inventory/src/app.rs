//! The inventory service, assembled on the chassis.

use shop_http::ServiceInfo;
use shop_service::{Application, Service};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "inventory",
    title: "the shop: inventory service",
    version: env!("CARGO_PKG_VERSION"),
    description: "stock per SKU, reservations with a TTL, stock events and low-stock alerts (not built yet).",
};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Service::new(INFO, &settings.service)
        .start()
        .await?
        .api(api())
        .bind()
        .await
}

/// The OpenAPI document alone (for `shop-inventory openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// Every business route, with its documentation: none yet.
fn api() -> OpenApiRouter {
    OpenApiRouter::new()
}
