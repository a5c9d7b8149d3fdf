//! The inventory service: stock per SKU, reservations with a TTL, stock events and
//! low-stock alerts.
//!
//! It owns the `inventory` schema and the `INVENTORY` stream. A product created in the
//! catalog gets a stock record here (`catalog.product.created`); admins receive and
//! adjust stock over HTTP; the checkout reserves, commits and releases stock with
//! commands on the inventory's stream (`inventory.reservation.*`), answered with events
//! (`inventory.stock.*`). Every change of availability publishes
//! `inventory.stock.updated`; falling below a SKU's threshold, `inventory.stock.low`.
//! See its README for the model and the guarantees (never oversell, idempotency).

pub mod app;
pub mod config;
pub mod consumers;
pub mod demo;
pub mod error;
pub mod requests;
pub mod reservations;
pub mod routes;
pub mod sku;
pub mod state;
pub mod stock;

pub use app::{build, build_with};
pub use config::Settings;

use shop_auth::BearerAuth;
use shop_http::ServiceInfo;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// What it says about itself; its schema and event context are its entry in
/// `shop_topology::SERVICES`.
pub const INFO: ServiceInfo = ServiceInfo {
    name: "inventory",
    title: "the shop: inventory service",
    version: env!("CARGO_PKG_VERSION"),
    description: "Stock per SKU, reservations with a TTL (commands on the INVENTORY stream), \
                  stock events and low-stock alerts.",
};

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags((name = "inventory", description = "Availability per SKU; receipts, adjustments and the ledger (admin)."))
)]
struct ApiDoc;

/// Every business route, with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes::stock::router())
}

/// The OpenAPI document alone (for `shop-inventory openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: serves, or runs a subcommand (`openapi`).
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
