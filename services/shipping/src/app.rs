//! The shipping service, assembled on the chassis.

use shop_http::ServiceInfo;
use shop_service::{Application, Service};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "shipping",
    title: "the shop: shipping service",
    version: env!("CARGO_PKG_VERSION"),
    description: "shipments and their tracking status progression (not built yet).",
};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Service::new(INFO, &settings.service)
        .start()
        .await?
        .api(api())
        .bind()
        .await
}

/// The OpenAPI document alone (for `shop-shipping openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// Every business route, with its documentation: none yet.
fn api() -> OpenApiRouter {
    OpenApiRouter::new()
}
