//! Turns a service's API router into a complete HTTP server: the operational
//! endpoints every service serves, the middleware stack, and graceful shutdown.
//!
//! Connections are served by hyper directly rather than through `axum::serve`, for
//! one setting it does not expose: a deadline for the request head. Without it a
//! client that sends half a request line and stalls holds a connection (and a file
//! descriptor) for as long as it likes, and enough of them starve the process.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::{Layer as _, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::health::{self, Readiness};
use crate::observe::{self, REQUEST_ID};
use crate::problem::Problem;

/// Where and how a service listens. Part of every service's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// A request taking longer is answered with 503 and its work is dropped.
    pub request_timeout_ms: u64,
    /// Bodies above this are refused with 413 before they are parsed.
    pub body_limit_bytes: usize,
    /// A connection that has not sent a whole request head (request line and headers)
    /// this long after it opened, or after its previous response, is closed. This is
    /// also how long an idle keep-alive connection stays open.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// The largest request head (request line and headers) read: a larger one is
    /// answered 431 and the connection closed, so a client cannot make the server
    /// buffer headers without end. At least 8 KiB.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_max_header_bytes() -> usize {
    64 * 1024
}

impl HttpSettings {
    pub fn on_port(port: u16) -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port,
            request_timeout_ms: 10_000,
            body_limit_bytes: 64 * 1024,
            header_read_timeout_ms: default_header_read_timeout_ms(),
            max_header_bytes: default_max_header_bytes(),
        }
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// What a service says about itself in its OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    pub name: &'static str,
    pub title: &'static str,
    pub version: &'static str,
    pub description: &'static str,
}

/// Builds the whole HTTP app of a service: its API plus `/healthz`, `/readyz`,
/// `/metrics`, `/openapi.json` and Swagger UI at `/docs`, behind the standard stack
/// (panic guard, request ids, tracing and metrics, timeout, body limit, problem+json
/// for unknown routes and methods). Returns the router and the OpenAPI document.
pub fn app(
    info: ServiceInfo,
    api: OpenApiRouter,
    readiness: Readiness,
    settings: &HttpSettings,
) -> (Router, OpenApi) {
    // Install the recorder before the first request is counted.
    crate::observe::prometheus();
    let (api, mut openapi) = api.split_for_parts();
    openapi.info.title = info.title.to_owned();
    openapi.info.version = info.version.to_owned();
    openapi.info.description = Some(info.description.to_owned());

    let ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(readiness)
        .route("/metrics", get(observe::metrics_endpoint));

    let request_id = HeaderName::from_static(REQUEST_ID);
    let timeout = Duration::from_millis(settings.request_timeout_ms);
    let router = api
        .merge(ops)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi.clone()))
        .fallback(|| async { Problem::not_found("no route matches this path") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed.",
            )
        })
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("handler panicked");
                    Problem::internal().into_response()
                }))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn(observe::observe))
                .layer(middleware::from_fn_with_state(timeout, enforce_timeout))
                .layer(DefaultBodyLimit::max(settings.body_limit_bytes)),
        );
    (router, openapi)
}

async fn enforce_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_ms = limit.as_millis() as u64, "request timed out");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The request took too long.",
            )
            .with_detail(format!("no answer within {} ms", limit.as_millis()))
            .into_response()
        }
    }
}

/// The HTTP app of an edge proxy (the gateway): `/healthz`, `/readyz` and `/metrics`,
/// then `proxy` for every other path, behind the panic guard, request ids, tracing and
/// metrics. No overall timeout and no body limit here: a proxy sets both per route and
/// enforces the limit on the streamed body, which the standard stack of [`app`] cannot.
pub fn edge_app(readiness: Readiness, proxy: Router) -> Router {
    crate::observe::prometheus();
    let request_id = HeaderName::from_static(REQUEST_ID);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(readiness)
        .route("/metrics", get(observe::metrics_endpoint))
        .merge(proxy)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(|_| {
                    tracing::error!("handler panicked");
                    Problem::internal().into_response()
                }))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(middleware::from_fn(observe::observe)),
        )
}

/// Binds the listener (port 0 picks a free one, as tests do).
pub async fn bind(settings: &HttpSettings) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(settings.addr()).await?;
    Ok(listener)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
/// finish; with the default header-read timeout. Prefer [`serve_with`], which takes it
/// from the service's settings.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, router, &HttpSettings::on_port(0), shutdown).await
}

/// Where a server's connections come from: a [`TcpListener`], or connections that an
/// acceptor on another thread hands over (the gateway's thread-per-core serving).
pub trait Accept: Send {
    /// The next connection and its peer's address.
    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send;
    /// The address clients connect to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Accept for TcpListener {
    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Answers go out as soon as they are written: without this, a response written
        // in two parts (a head, then a body that was not ready yet) waits for the
        // client's delayed ACK of the first (Nagle's algorithm), up to 40 ms on Linux.
        // Set here, once per connection, whoever serves it afterwards.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

/// The next connection from `listener`, or `None` once `shutdown` has resolved: the
/// accept loop of every server here (`serve_with`, the gateway's TLS server and its
/// thread-per-core acceptor). An accept error that is the client's doing (it gave up
/// before we got to it) is skipped; any other, most likely out of file descriptors
/// (EMFILE), is logged and waited out with a doubling pause, since retrying at once
/// would spin on the same error.
pub async fn next_connection<S: Future<Output = ()>>(
    listener: &mut impl Accept,
    shutdown: &mut Pin<&mut S>,
) -> Option<(TcpStream, SocketAddr)> {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            () = shutdown.as_mut() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(connection) => return Some(connection),
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                let pause = backoff.next_pause();
                tracing::error!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = shutdown.as_mut() => return None,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Serves HTTP/1.1 until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish and closes idle connections. Handlers can extract
/// `ConnectInfo<SocketAddr>`. Of `settings`, only the connection options are read
/// (`header_read_timeout_ms`); the address is the listener's.
pub async fn serve_with(
    mut listener: impl Accept,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_read_timeout_ms))
        // hyper refuses a buffer under 8 KiB (it panics), so smaller settings round up.
        .max_buf_size(settings.max_header_bytes.max(8192));

    // Every connection holds a receiver; the sender sees them all gone once drained.
    let (drain, draining) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    while let Some((stream, remote)) = next_connection(&mut listener, &mut shutdown).await {
        let service =
            TowerToHyperService::new(Extension(ConnectInfo(remote)).layer(router.clone()));
        let connection = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut draining = draining.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = draining.wait_for(|drain| *drain) => {}
            }
            // Finishes the request in progress, if any, then closes.
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
            drop(draining);
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; draining in-flight requests");
    let _ = drain.send(true);
    drop(draining);
    drain.closed().await;
    Ok(())
}

/// An accept error that is the client's doing (it gave up before we got to it), not
/// ours: [`next_connection`] goes on at once.
pub fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The pause after each failed accept: doubling from 10 ms up to one second, back to
/// the start after a success ([`next_connection`] starts each wait afresh).
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const CAP: Duration = Duration::from_secs(1);

    pub fn next_pause(&mut self) -> Duration {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::CAP);
        self.failures = self.failures.saturating_add(1);
        pause
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes and `make up` send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}

/// Binds, serves until Ctrl-C or SIGTERM, and drains: the tail of every service's
/// `main`.
pub async fn run(router: Router, settings: &HttpSettings) -> anyhow::Result<()> {
    let listener = bind(settings).await?;
    serve_with(listener, router, settings, shutdown_signal()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_back_off_doubling_up_to_a_cap_and_start_over_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<_> = (0..10).map(|_| backoff.next_pause().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        for _ in 0..100 {
            backoff.next_pause();
        }
        assert_eq!(backoff.next_pause(), AcceptBackoff::CAP);
        backoff.reset();
        assert_eq!(backoff.next_pause(), AcceptBackoff::FIRST);
    }
}
