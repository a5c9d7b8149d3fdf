//! The shipping service: a shipment per confirmed order, with a tracking number, and
//! its status progression `CREATED -> DISPATCHED -> DELIVERED`.
//!
//! It owns the `shipping` schema and the `SHIPPING` stream. It follows the order
//! service's announcements: `orders.order.confirmed` creates the order's shipment
//! (`shipping.shipment.created`), `orders.order.cancelled` cancels one that has not
//! left (`shipping.shipment.cancelled`). Admins move shipments on over HTTP, and so,
//! when configured, does a simulated carrier; each step publishes
//! `shipping.shipment.dispatched` or `.delivered`, which the order service follows to
//! `SHIPPED` and `DELIVERED`. Owners and admins read shipments with their history.
//! See its README for the model and the guarantees.

pub mod app;
pub mod cancelled_orders;
pub mod carrier;
pub mod config;
pub mod consumers;
pub mod cursor;
pub mod error;
pub mod lifecycle;
pub mod routes;
pub mod shipments;
pub mod state;
pub mod tracking;

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
    name: "shipping",
    title: "the shop: shipping service",
    version: env!("CARGO_PKG_VERSION"),
    description: "A shipment per confirmed order, with a tracking number; CREATED -> DISPATCHED -> \
                  DELIVERED by admins or a simulated carrier, each step an event on the SHIPPING stream.",
};

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags((name = "shipments", description = "Shipments of confirmed orders: reads for their owners and admins; the admin's steps."))
)]
struct ApiDoc;

/// Every business route, with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(routes::shipments::router())
}

/// The OpenAPI document alone (for `shop-shipping openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: serves, or runs a subcommand (`openapi`).
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
