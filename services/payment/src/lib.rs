//! The payment service: a **simulated** card processor (no network, no real card)
//! behind the checkout's payment commands, and the seed's API-versioning example.
//!
//! It owns the `payments` schema and the `PAYMENTS` stream. The order service's
//! saga sends it `payments.payment.authorize` when stock is reserved,
//! `.capture` when the order is confirmed and `.void` when it is cancelled; it
//! answers each with `payments.payment.{authorized, declined, captured, voided}`,
//! idempotently per order id (`commands`). The processor's authorization, which can
//! hang (`tok_timeout`), is called by the `authorizer` outside any transaction; a
//! void that arrives meanwhile makes the payment end voided, never leaving money
//! held. Payments are read over HTTP in two versions (`routes::v1`, deprecated, and
//! `routes::v2`). See its README for the model, the tokens and the settings.

pub mod app;
pub mod authorizer;
pub mod commands;
pub mod config;
pub mod consumers;
pub mod error;
pub mod id;
pub mod payments;
pub mod processor;
pub mod routes;
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
    name: "payment",
    title: "the shop: payment service",
    version: env!("CARGO_PKG_VERSION"),
    description: "A simulated card processor (no network, no real card) behind the checkout's \
                  payment commands: authorize, capture, void, refund. Payments are read in two \
                  API versions: v1 (UUID ids, deprecated, sunset 2027-06-01) and v2 (`pay_...` \
                  ids); docs/payments-v1-to-v2.md is the migration guide.",
};

#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&BearerAuth),
    tags(
        (name = "payments", description = "API v2: a payment and an order's payments (owner or admin)."),
        (name = "payments v1 (deprecated)", description = "API v1, deprecated since 2026-12-01, sunset 2027-06-01: see docs/payments-v1-to-v2.md."),
    )
)]
struct ApiDoc;

/// Every business route, with its documentation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::v1::router())
        .merge(routes::v2::router())
}

/// The OpenAPI document alone (for `shop-payment openapi` and the gateway's docs).
pub fn openapi() -> utoipa::openapi::OpenApi {
    shop_service::openapi(INFO, api())
}

/// The process: serves, or runs a subcommand (`openapi`).
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
