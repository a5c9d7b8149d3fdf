//! The catalog service: products, categories, search and prices, with admin CRUD.
//!
//! Not built out yet (see its README): it runs on the service chassis with no business
//! routes, so it already connects to its own `catalog` schema and to NATS, owns the
//! stream of its event context, and serves the operational surface (`/healthz`,
//! `/readyz`, `/metrics`, `/openapi.json`, `/docs`). The launcher, the e2e tests and
//! the deployment manifests treat it as the real process it will become.

pub mod app;
pub mod config;

pub use app::build;
pub use config::Settings;

use shop_http::ServiceInfo;
use utoipa_axum::router::OpenApiRouter;

/// What it says about itself; its schema and event context are its entry in
/// `shop_topology::SERVICES`.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "catalog",
    title: "the shop: catalog service",
    version: env!("CARGO_PKG_VERSION"),
    description: "products, categories, search and prices, with admin CRUD (not built yet).",
};

/// Every business route, with its documentation: none yet (they will live in
/// `routes/<resource>.rs`).
pub fn api() -> OpenApiRouter {
    OpenApiRouter::new()
}

/// The OpenAPI document alone (for `shop-catalog openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: serves, or runs a subcommand (`openapi`).
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
