//! The API gateway: the shop's single entry point on port 8080.
//!
//! Every path it does not serve itself (`/healthz`, `/readyz`, `/metrics`, the docs
//! portal at `/docs` and `/openapi/{service}.json`) is matched against the routes of
//! the gateway file (`gateway/gateway.toml`, see [`file`] and [`routes`]), checked
//! against the route's policy (tokens verified against the user service's JWKS, cached
//! and served stale while it is down; API keys of machine clients), rate-limited per
//! client, and forwarded, streamed, to a healthy instance of the route's upstream
//! ([`proxy`], [`upstream`]), with retries and a circuit breaker
//! (`shop-resilience`). The `Authorization` header goes upstream unchanged: every
//! service verifies the token again (zero trust). Every answer carries the security
//! headers and, for allowed origins, CORS ([`edge`]).
//!
//! It owns no data and no event context, so it is built on the HTTP kit alone, not the
//! service chassis.

pub mod aggregate;
pub mod config;
pub mod cores;
pub mod docs;
pub mod edge;
pub mod file;
pub mod proxy;
pub mod release;
pub mod reload;
pub mod routes;
pub mod state;
pub mod tls;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use shop_auth::Verifier;
use shop_http::{Problem, Readiness, ServiceInfo};
use tokio::net::TcpListener;

pub use config::Settings;
pub use state::Gateway;

use crate::upstream::{HostsFileResolver, Resolve, SystemResolver};

pub const INFO: ServiceInfo = ServiceInfo {
    name: "gateway",
    title: "the shop: API gateway",
    version: env!("CARGO_PKG_VERSION"),
    description: "Single entry point: routing, edge security, discovery, load balancing, resilience, release routing, docs.",
};

/// The gateway's HTTP app: the docs portal, the proxy for everything else, the edge
/// policies (CORS, security headers) around all of it.
pub fn app(gateway: Arc<Gateway>) -> Router {
    let services = documented_services(&gateway);
    let routes = Router::new()
        .route("/openapi.json", get(own_openapi))
        .route("/openapi/{file}", get(openapi))
        .route("/api/v1/orders/{id}/details", get(aggregate::order_details))
        .fallback(proxy::proxy)
        .with_state(gateway.clone())
        .merge(docs::guides())
        .merge(docs::swagger_ui(&services));
    shop_http::edge_app(Readiness::new(), routes)
        .layer(middleware::from_fn_with_state(gateway, edge_policies))
}

/// The services whose specs the portal lists: every upstream a route sends to.
fn documented_services(gateway: &Gateway) -> Vec<String> {
    let snapshot = gateway.snapshot();
    let mut services: Vec<String> = snapshot
        .routes
        .routes()
        .iter()
        .map(|r| r.upstream.clone())
        .collect();
    services.sort();
    services.dedup();
    services
}

/// The gateway's own endpoints (the services' routes are in their own specs, at
/// `/openapi/{service}.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "the shop: API gateway",
        description = "The gateway's own endpoints. Every service's routes, as the gateway serves them, are in /openapi/{service}.json and in the Swagger UI at /docs."
    ),
    paths(openapi, aggregate::order_details)
)]
struct GatewayApi;

async fn own_openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    let mut doc = <GatewayApi as utoipa::OpenApi>::openapi();
    doc.info.version = INFO.version.to_owned();
    axum::Json(doc)
}

/// `GET /openapi/{service}.json`: the service's spec, rewritten to gateway paths.
#[utoipa::path(
    get,
    path = "/openapi/{file}",
    tag = "docs",
    params(("file" = String, Path, description = "`<service>.json`, e.g. `catalog.json`")),
    responses(
        (status = 200, description = "The service's OpenAPI document, its paths as the gateway routes them"),
        (status = 404, description = "No service of this name has public routes"),
        (status = 503, description = "The service has not handed its document over yet"),
    )
)]
async fn openapi(State(gateway): State<Arc<Gateway>>, Path(file): Path<String>) -> Response {
    let Some(service) = docs::service_of(&file) else {
        return Problem::not_found("no such API description").into_response();
    };
    let snapshot = gateway.snapshot();
    let mapping = snapshot.routes.mapping(service);
    let base = snapshot
        .backends
        .get(service)
        .and_then(|b| b.upstream.pick())
        .and_then(|lease| lease.instance().uri("/").ok());
    match gateway.portal.spec(service, base, &mapping).await {
        Ok(doc) => ([(header::CACHE_CONTROL, "no-cache")], axum::Json(doc)).into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// CORS (preflights answered here, allowed origins named on every answer) and the
/// security headers, from the configuration in force. `/metrics` names routes,
/// upstreams and instance addresses: it answers only clients on loopback or private
/// networks (where Prometheus runs), unless `SHOP_PUBLIC_METRICS` says otherwise; a
/// public client behind a trusted proxy is a public client.
async fn edge_policies(
    State(gateway): State<Arc<Gateway>>,
    mut request: Request,
    next: Next,
) -> Response {
    // Who is asking, worked out once: through a trusted proxy (the Ingress), the client
    // it names. The proxy reads it from the request's extensions.
    let hop = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| gateway.hop(addr.ip(), request.headers()));
    if request.uri().path() == "/metrics"
        && !gateway.settings.public_metrics
        && !hop.as_ref().is_some_and(|hop| is_internal(hop.client))
    {
        return Problem::not_found("no route matches this path").into_response();
    }
    let snapshot = gateway.snapshot();
    // HSTS over HTTPS, also when a trusted proxy terminated it.
    let tls = request.extensions().get::<tls::Tls>().is_some()
        || hop.as_ref().is_some_and(|hop| hop.https);
    if let Some(hop) = hop {
        request.extensions_mut().insert(hop);
    }
    let path = request.uri().path().to_owned();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = match snapshot.cors.preflight(request.headers(), request.method()) {
        Some(preflight) => preflight,
        None => next.run(request).await,
    };
    snapshot
        .cors
        .decorate(origin.as_ref(), response.headers_mut());
    snapshot.security.apply(&path, tls, response.headers_mut());
    response
}

/// Loopback, private (RFC 1918, RFC 4193) and link-local addresses.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Checks the settings, reads the gateway file, binds the listener (port 0 picks a free
/// one) and starts the background work (discovery, health checks, reloads).
pub async fn build(settings: Settings, verifier: Verifier) -> anyhow::Result<Application> {
    settings.tls.check()?;
    cores::check(settings.cores)?;
    let tls = tls::server_config(&settings.tls)?;
    let resolver: Arc<dyn Resolve> = match &settings.hosts_file {
        Some(file) => Arc::new(HostsFileResolver::new(file.clone())),
        None => Arc::new(SystemResolver),
    };
    let reload_every = (settings.reload_interval_ms > 0)
        .then(|| Duration::from_millis(settings.reload_interval_ms));
    let gateway = Arc::new(Gateway::new(settings, verifier, resolver)?);
    // A `dns://` upstream has no instance before its first lookup: look up now, so the
    // first requests are not refused (a slow resolver does not hold the start for long).
    for backend in gateway.snapshot().backends.values() {
        let _ = tokio::time::timeout(Duration::from_secs(2), backend.upstream.refresh()).await;
    }
    let listener = shop_http::bind(&gateway.settings.http).await?;
    tokio::spawn(reload::watch(Arc::downgrade(&gateway), reload_every));
    Ok(Application {
        listener,
        router: app(gateway.clone()),
        gateway,
        tls,
    })
}

/// A bound, not yet serving gateway.
pub struct Application {
    listener: TcpListener,
    router: Router,
    gateway: Arc<Gateway>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Application {
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The running gateway: its configuration, upstreams and a `reload()`.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.clone()
    }

    /// Serves on `SHOP_CORES` cores (the caller's runtime and a thread per further
    /// core, see [`cores`]) until `shutdown`, then drains.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let count = cores::count(self.gateway.settings.cores);
        let core = cores::Core {
            router: self.router,
            tls: self.tls,
            gateway: self.gateway,
        };
        cores::run(self.listener, count, core, shutdown).await
    }
}

/// The process: `shop-gateway` serves (telemetry, settings from `SHOP_*` over port
/// 8080, until stopped); `shop-gateway apikey` prints a new API key and the hash to put
/// in the gateway file; `shop-gateway healthcheck` asks the running gateway's
/// `/healthz` (the container's health check).
pub async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("apikey") => {
            let (key, hash) = edge::apikeys::generate()?;
            println!("key (give it to the consumer, once): {key}");
            println!("key_sha256 (put it in [[consumers]]):  {hash}");
            return Ok(());
        }
        Some("healthcheck") => {
            let port = shop_http::probe::probe_port(Settings::default().http.port)?;
            return shop_http::probe::healthcheck(port);
        }
        Some(other) => {
            anyhow::bail!(
                "unknown command `{other}`; shop-gateway alone serves, or: apikey, healthcheck"
            )
        }
    }
    let _telemetry = shop_telemetry::init(INFO.name)?;
    // Before anything records: the upstreams' and breakers' gauges are set while the
    // gateway starts, and would otherwise be lost until they change.
    shop_http::observe::prometheus();
    let settings = Settings::load()?;
    let verifier = settings.auth.verifier();
    let app = build(settings, verifier).await?;
    tracing::info!(port = app.port(), "gateway listening");
    app.run_until_stopped(shop_http::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_private_and_link_local_peers_count_as_internal() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "169.254.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }
}
