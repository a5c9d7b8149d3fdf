//! The proxy path: find the route, apply its policy, forward to an instance of its
//! upstream and stream the answer back. Bodies are streamed both ways, never buffered.
//!
//! What the upstream sees: the client's request with the hop-by-hop headers removed,
//! the original `Authorization` (each service verifies the token again: zero trust),
//! the request id, the W3C trace context of the gateway's span (the client's, continued),
//! and `X-Forwarded-For`/`-Proto`/`-Host` plus `Forwarded` naming the client as the
//! gateway saw it. Whatever a client sent in those forwarding headers is dropped: the
//! gateway is the edge, so nobody before it is trusted to have set them.

use std::collections::HashMap;
use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts as _, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use shop_auth::{Authenticated, Role, Verifier};
use shop_http::Problem;

use crate::routes::{Policy, RouteTable};
use crate::upstream::Upstream;

type UpstreamBody = http_body_util::combinators::UnsyncBoxBody<
    axum::body::Bytes,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// Everything the proxy needs, shared by every request.
pub struct Gateway {
    pub routes: RouteTable,
    pub upstreams: HashMap<String, Upstream>,
    pub verifier: Verifier,
    pub max_body_bytes: u64,
    client: Client<HttpConnector, UpstreamBody>,
}

impl Gateway {
    pub fn new(
        routes: RouteTable,
        upstreams: HashMap<String, Upstream>,
        verifier: Verifier,
        max_body_bytes: u64,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(2)));
        // Pooled keep-alive connections to every instance: a request reuses an idle
        // connection instead of paying a TCP handshake.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        Self {
            routes,
            upstreams,
            verifier,
            max_body_bytes,
            client,
        }
    }
}

/// Headers that describe one connection, not the message: never forwarded (RFC 9110
/// 7.6.1), nor any header the `Connection` header names.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Set by the gateway only; a client's own values are dropped.
const FORWARDING: [&str; 7] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "traceparent",
    "tracestate",
    "baggage",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The proxy handler: every path the gateway does not serve itself.
pub async fn proxy(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    match forward(&gateway, request).await {
        Ok(response) => response,
        Err(refusal) => refusal,
    }
}

async fn forward(gateway: &Gateway, request: Request) -> Result<Response, Response> {
    let path = request.uri().path().to_owned();
    let route = gateway
        .routes
        .find(&path)
        .ok_or_else(|| Problem::not_found("no route matches this path").into_response())?;
    let (mut parts, body) = request.into_parts();

    match route.policy_for(&parts.method) {
        Policy::Public => {}
        policy => {
            let Authenticated(claims) =
                Authenticated::from_request_parts(&mut parts, &gateway.verifier)
                    .await
                    .map_err(IntoResponse::into_response)?;
            if policy == Policy::Admin && !claims.has_role(Role::Admin) {
                return Err(shop_auth::AuthError::Forbidden(Role::Admin.as_str()).into_response());
            }
        }
    }

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gateway.max_body_bytes) {
        return Err(too_large(gateway.max_body_bytes));
    }

    let upstream = &gateway.upstreams[&route.upstream];
    let instance = upstream.pick();
    let target = route.upstream_path(&path, parts.uri.query());
    let uri = instance
        .uri(&target)
        .map_err(|_| Problem::bad_request("the path cannot be forwarded").into_response())?;

    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let host = parts.headers.get(header::HOST).cloned();
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    for name in FORWARDING {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    set_forwarding(&mut headers, peer, host.as_ref());
    shop_telemetry::inject_current_context(&mut headers);

    let limited = Limited::new(body, gateway.max_body_bytes as usize)
        .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e })
        .boxed_unsync();
    let mut upstream_request = http::Request::new(limited);
    *upstream_request.method_mut() = parts.method.clone();
    *upstream_request.uri_mut() = uri;
    *upstream_request.headers_mut() = headers;

    let exchange = gateway.client.request(upstream_request);
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(route.timeout, exchange).await;
    let status = match &outcome {
        Ok(Ok(answer)) => answer.status().as_str().to_owned(),
        Ok(Err(e)) if e.is_connect() => "unreachable".to_owned(),
        Ok(Err(_)) => "broken".to_owned(),
        Err(_) => "timeout".to_owned(),
    };
    record(
        &route.name,
        &upstream.name,
        instance.authority.as_str(),
        status,
        started,
    );
    let answer = match outcome {
        Err(_) => {
            tracing::warn!(route = %route.name, upstream = %upstream.name, instance = %instance.authority, "upstream timed out");
            return Err(Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "The service did not answer in time.",
            )
            .with_detail(format!("no answer within {} ms", route.timeout.as_millis()))
            .into_response());
        }
        Ok(Err(e)) => return Err(upstream_failed(&e, gateway, &route.name, &upstream.name)),
        Ok(Ok(answer)) => answer,
    };

    let (mut parts, body) = answer.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Upstream requests by route, upstream, instance and outcome (the HTTP status, or
/// `unreachable`, `timeout`, `broken`), and their latency up to the response headers.
fn record(
    route: &str,
    upstream: &str,
    instance: &str,
    outcome: String,
    started: std::time::Instant,
) {
    let elapsed = started.elapsed();
    tracing::debug!(route, upstream, instance, outcome = %outcome, upstream_ms = elapsed.as_secs_f64() * 1000.0, "proxied");
    let labels = [
        ("route", route.to_owned()),
        ("upstream", upstream.to_owned()),
        ("instance", instance.to_owned()),
        ("outcome", outcome),
    ];
    metrics::counter!("gateway_upstream_requests_total", &labels).increment(1);
    metrics::histogram!("gateway_upstream_duration_seconds", &labels[..3])
        .record(elapsed.as_secs_f64());
}

/// `X-Forwarded-For`, `-Proto`, `-Host` and `Forwarded` (RFC 7239) for this hop.
fn set_forwarding(
    headers: &mut HeaderMap,
    peer: Option<std::net::IpAddr>,
    host: Option<&HeaderValue>,
) {
    let Some(ip) = peer else {
        return;
    };
    let ip = ip.to_string();
    let node = if ip.contains(':') {
        format!("\"[{ip}]\"")
    } else {
        ip.clone()
    };
    let mut forwarded = format!("for={node};proto=http");
    if let Ok(value) = HeaderValue::from_str(&ip) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host.clone());
        if let Ok(h) = host.to_str()
            && h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        {
            forwarded.push_str(&format!(";host=\"{h}\""));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert("forwarded", value);
    }
}

fn too_large(limit: u64) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "The request body is too large.",
    )
    .with_detail(format!("at most {limit} bytes"))
    .into_response()
}

/// A failed exchange: the client's body was too large (413), the instance could not
/// be reached (503, try again), or it broke off (502). The cause goes to the log only.
fn upstream_failed(
    e: &hyper_util::client::legacy::Error,
    gateway: &Gateway,
    route: &str,
    upstream: &str,
) -> Response {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<LengthLimitError>().is_some() {
            return too_large(gateway.max_body_bytes);
        }
        source = cause.source();
    }
    if e.is_connect() {
        tracing::warn!(route, upstream, error = %e, "upstream unreachable");
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream-unavailable",
            "The service is unavailable.",
        )
        .with_detail("Try again shortly.")
        .with_retry_after(1)
        .into_response();
    }
    tracing::warn!(route, upstream, error = %e, "upstream exchange failed");
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "bad-gateway",
        "The service's answer was broken off.",
    )
    .into_response()
}
