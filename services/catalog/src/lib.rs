//! The catalog service: products, categories, full-text search and prices, with admin
//! writes under optimistic concurrency.
//!
//! It owns the `catalog` schema and the `CATALOG` stream: every write publishes
//! `catalog.product.created|updated|deactivated` through its outbox. It follows the
//! inventory's `inventory.stock.updated` into an availability projection, so the
//! listing's `in_stock` filter never calls the inventory. Reads are public and
//! cacheable; writes need an admin's access token, verified locally against the user
//! service's JWKS.

pub mod app;
pub mod availability;
pub mod cache;
pub mod categories;
pub mod config;
pub mod consumers;
pub mod cursor;
pub mod demo;
pub mod error;
pub mod events;
pub mod products;
pub mod requests;
pub mod routes;
pub mod search;
pub mod state;

pub use app::{build, build_with};
pub use config::Settings;

use shop_auth::BearerAuth;
use shop_http::ServiceInfo;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// What it says about itself; its schema (`catalog`) and event context (`catalog`)
/// are its entry in `shop_topology::SERVICES`.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "catalog",
    title: "the shop: catalog service",
    version: env!("CARGO_PKG_VERSION"),
    description: "Products and categories: full-text search with filters, sorts and cursor \
                  pagination, cacheable reads (ETag, 304), admin writes with optimistic \
                  concurrency (If-Match or version), a price lookup for other services.",
};

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags(
        (name = "products", description = "Search, read and (admins) write products."),
        (name = "categories", description = "The categories products belong to."),
        (name = "internal", description = "Reads for other services (not routed by the gateway)."),
    )
)]
struct ApiDoc;

/// Every business route, with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::products::router())
        .merge(routes::categories::router())
        .merge(routes::internal::router())
}

/// The OpenAPI document alone (for `shop-catalog openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: `shop-catalog` serves (and loads the demo catalog if
/// `SHOP_DEMO__FILE` is set); `shop-catalog openapi` prints the OpenAPI document.
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
