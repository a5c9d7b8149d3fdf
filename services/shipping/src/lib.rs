//! The shipping service: shipments and their tracking status progression.
//!
//! Not built out yet (see its README): it runs on the service chassis with no business
//! routes, so it already connects to its own `shipping` schema and to NATS, owns the
//! stream of its event context, and serves the operational surface (`/healthz`,
//! `/readyz`, `/metrics`, `/openapi.json`, `/docs`). The launcher, the e2e tests and
//! the deployment manifests treat it as the real process it will become.

pub mod app;
pub mod config;

pub use app::{INFO, build, openapi};
pub use config::Settings;

/// The process: serves, or runs a subcommand (`openapi`).
pub async fn main() -> anyhow::Result<()> {
    shop_service::Cli::new(INFO, openapi)
        .run(|| async { build(Settings::load()?).await })
        .await
}
