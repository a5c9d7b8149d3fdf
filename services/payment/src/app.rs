//! The payment service, assembled on the chassis.

use shop_http::ServiceInfo;
use shop_service::{Application, Service};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "payment",
    title: "the shop: payment service",
    version: env!("CARGO_PKG_VERSION"),
    description: "a simulated card processor: authorize, capture, refund; v1 and v2 API (not built yet).",
};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Service::new(INFO, &settings.service)
        .start()
        .await?
        .api(api())
        .bind()
        .await
}

/// The OpenAPI document alone (for `shop-payment openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// Every business route, with its documentation: none yet.
fn api() -> OpenApiRouter {
    OpenApiRouter::new()
}
