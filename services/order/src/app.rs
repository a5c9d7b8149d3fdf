//! The order service, assembled on the chassis.

use shop_http::ServiceInfo;
use shop_service::{Application, Service};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "order",
    title: "the shop: order service",
    version: env!("CARGO_PKG_VERSION"),
    description: "orders, the checkout saga coordinator and idempotent placement (not built yet).",
};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Service::new(INFO, &settings.service)
        .start()
        .await?
        .api(api())
        .bind()
        .await
}

/// The OpenAPI document alone (for `shop-order openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// Every business route, with its documentation: none yet.
fn api() -> OpenApiRouter {
    OpenApiRouter::new()
}
