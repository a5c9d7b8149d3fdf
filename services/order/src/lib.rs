//! The order service: orders, idempotent placement priced by the catalog, and the
//! checkout saga's coordinator.
//!
//! It owns the `orders` schema and the `ORDERS` stream. A placement
//! (`POST /api/v1/orders`, with an `Idempotency-Key`) asks the catalog for current
//! prices over REST (`crate::catalog`: timeout, retries, a circuit breaker per
//! instance), then stores the order `PENDING` and sends the first command of the saga
//! through the outbox, in one transaction. From there the saga (`crate::saga`) moves
//! each order on as the inventory, the payment and the shipping services answer
//! (`crate::consumers`), with a deadline on every waiting state. See its README for
//! the state machine, the guarantees and the settings.

pub mod app;
pub mod catalog;
pub mod catch_up;
pub mod config;
pub mod consumers;
pub mod error;
pub mod history;
pub mod idempotency;
pub mod metrics;
pub mod orders;
pub mod pricing;
pub mod requests;
pub mod routes;
pub mod saga;
pub mod state;

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
    name: "order",
    title: "the shop: order service",
    version: env!("CARGO_PKG_VERSION"),
    description: "Orders: idempotent placement priced by the catalog, and the checkout saga \
                  (orchestration) that reserves stock, takes payment and follows the shipment.",
};

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags((name = "orders", description = "Placement (idempotent), an order with its saga history, the listing, cancellation."))
)]
struct ApiDoc;

/// Every business route, with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes::orders::router())
}

/// The OpenAPI document alone (for `shop-order openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: serves, or runs a subcommand (`openapi`).
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
