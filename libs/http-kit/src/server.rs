//! Turns a service's API router into a complete HTTP server: the operational
//! endpoints every service serves, the middleware stack, and graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
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
}

impl HttpSettings {
    pub fn on_port(port: u16) -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port,
            request_timeout_ms: 10_000,
            body_limit_bytes: 64 * 1024,
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

/// Binds the listener (port 0 picks a free one, as tests do).
pub async fn bind(settings: &HttpSettings) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(settings.addr()).await?;
    Ok(listener)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
    serve(listener, router, shutdown_signal()).await?;
    Ok(())
}
