//! The catalog service, assembled on the chassis.

use shop_http::ServiceInfo;
use shop_service::{Application, Service};
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "catalog",
    title: "the shop: catalog service",
    version: env!("CARGO_PKG_VERSION"),
    description: "products, categories, search and prices, with admin CRUD (not built yet).",
};

pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    Service::new(INFO, &settings.service)
        .start()
        .await?
        .api(api())
        .bind()
        .await
}

/// The OpenAPI document alone (for `shop-catalog openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// Every business route, with its documentation: none yet.
fn api() -> OpenApiRouter {
    OpenApiRouter::new()
}
