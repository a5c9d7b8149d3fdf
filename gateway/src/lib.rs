//! The API gateway: the shop's single entry point on port 8080.
//!
//! Every path it does not serve itself (`/healthz`, `/readyz`, `/metrics`) is matched
//! against the route table (`gateway/routes.toml`, see [`routes`]), checked against the
//! route's policy (public, authenticated, admin: tokens verified against the user
//! service's JWKS, cached and served stale while it is down) and forwarded, streamed,
//! to an instance of the route's upstream ([`proxy`]). The `Authorization` header goes
//! upstream unchanged: every service verifies the token again (zero trust).
//!
//! It owns no data and no event context, so it is built on the HTTP kit alone, not the
//! service chassis.

pub mod config;
pub mod proxy;
pub mod routes;
pub mod upstream;

use std::sync::Arc;

use axum::Router;
use shop_auth::Verifier;
use shop_http::{Readiness, ServiceInfo};
use tokio::net::TcpListener;

pub use config::Settings;

use crate::proxy::Gateway;
use crate::routes::RouteTable;

pub const INFO: ServiceInfo = ServiceInfo {
    name: "gateway",
    title: "the shop: API gateway",
    version: env!("CARGO_PKG_VERSION"),
    description: "Single entry point: routing, edge authentication, upstream instances.",
};

/// The gateway's HTTP app over checked settings: refuses a bad route table or upstream
/// list, naming the place.
pub fn app(settings: &Settings, verifier: Verifier) -> anyhow::Result<Router> {
    let routes = RouteTable::load(&settings.routes_file, &settings.upstreams)?;
    let upstreams = upstream::from_settings(&settings.upstreams)?;
    let gateway = Gateway::new(routes, upstreams, verifier, settings.max_body_bytes);
    let proxy = Router::new()
        .fallback(proxy::proxy)
        .with_state(Arc::new(gateway));
    Ok(shop_http::edge_app(Readiness::new(), proxy))
}

/// Binds the listener (port 0 picks a free one) and assembles the app.
pub async fn build(settings: Settings, verifier: Verifier) -> anyhow::Result<Application> {
    let router = app(&settings, verifier)?;
    let listener = shop_http::bind(&settings.http).await?;
    Ok(Application {
        listener,
        router,
        settings,
    })
}

/// A bound, not yet serving gateway.
pub struct Application {
    listener: TcpListener,
    router: Router,
    settings: Settings,
}

impl Application {
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown`, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        shop_http::serve_with(self.listener, self.router, &self.settings.http, shutdown).await?;
        Ok(())
    }
}

/// The process: telemetry, settings (`SHOP_*` over port 8080), serve until stopped.
pub async fn main() -> anyhow::Result<()> {
    let _telemetry = shop_telemetry::init(INFO.name)?;
    let settings = Settings::load()?;
    let verifier = settings.auth.verifier();
    let app = build(settings, verifier).await?;
    tracing::info!(port = app.port(), "gateway listening");
    app.run_until_stopped(shop_http::shutdown_signal()).await
}
