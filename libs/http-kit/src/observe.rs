//! Per-request observability: a span per request (continuing the caller's W3C trace),
//! one log line when it finishes, and RED metrics labelled by route *pattern* so that
//! `/users/123` and `/users/456` count as one series.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::SharedString;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument as _;

/// The route a response answered, for apps whose routes are not axum's (the gateway
/// matches its own table): put in the response's extensions, it labels the span, the
/// log line and the metrics instead of the unmatched path.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub std::sync::Arc<str>);

/// Request-id header, set by the kit when the client did not send one.
pub const REQUEST_ID: &str = "x-request-id";

const DURATION: &str = "http_server_request_duration_seconds";
/// How often the histograms' pending samples are folded in when nobody scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
const REQUESTS: &str = "http_server_requests_total";

/// The process-wide Prometheus recorder; installed on first use so that several apps
/// in one test process share it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        // What takes seconds to minutes: a saga (a payment deadline is 15 s, delivery
        // comes after a minute) and an event's lag (a consumer catching up).
        let long = [
            0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("saga_duration_seconds".to_owned()), &long)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("events_handle_lag_seconds".to_owned()),
                    &long,
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by a test); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        // Histograms keep their samples until drained: a scrape drains them, and so does
        // this, so a process nobody scrapes does not grow by every request it serves.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

pub(crate) async fn metrics_endpoint() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prometheus().render(),
    )
}

/// Wraps every request: span, log line, metrics.
///
/// The span's fields, the trace context and the trace-id header are only worked out
/// when the span is enabled (`RUST_LOG` at `info` for it): below that a request costs
/// its metrics alone, whose labels are static or shared strings for the common cases.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!(
        "http.request",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        http.request.method = %method,
        http.route = tracing::field::Empty,
        request_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    let traced = !span.is_disabled();
    if traced {
        let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
        span.record("otel.name", format!("{method} {route}"));
        if matched.is_some() {
            span.record("http.route", route);
        }
        if let Some(id) = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
        shop_telemetry::set_parent_from_headers(&span, request.headers());
    }

    let mut response = next.run(request).instrument(span.clone()).await;
    let label = response.extensions().get::<RouteLabel>().cloned();
    let route = match (&label, &matched) {
        (Some(RouteLabel(label)), _) => label,
        (None, Some(matched)) => matched.as_str(),
        (None, None) => "unmatched",
    };
    let status = response.status();
    let elapsed = started.elapsed();
    if traced {
        if label.is_some() {
            span.record("otel.name", format!("{method} {route}"));
            span.record("http.route", route);
        }
        span.record("http.response.status_code", status.as_u16());
        if let Some(value) = span
            .in_scope(shop_telemetry::current_trace_id)
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            response.headers_mut().insert("x-trace-id", value);
        }
    }
    let is_probe = route == "/healthz" || route == "/readyz" || route == "/metrics";
    span.in_scope(|| {
        let status = status.as_u16();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::error!(status, latency_ms, "request failed");
        } else if !is_probe {
            tracing::info!(status, latency_ms, "request finished");
        } else {
            tracing::debug!(status, latency_ms, "probe answered");
        }
    });

    let route = match label {
        Some(RouteLabel(label)) => SharedString::from(label),
        None => SharedString::from(route.to_owned()),
    };
    let labels = [
        ("method", method_label(&method)),
        ("route", route),
        ("status", status_label(status)),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(DURATION, &labels).record(elapsed.as_secs_f64());
    response
}

/// A method as a metric label: the standard ones without allocating.
fn method_label(method: &Method) -> SharedString {
    const STANDARD: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ];
    match STANDARD.iter().find(|(standard, _)| standard == method) {
        Some((_, name)) => SharedString::const_str(name),
        None => SharedString::from(method.as_str().to_owned()),
    }
}

/// A status as a metric label: the common ones without allocating. Also the
/// gateway's label of an upstream's answer.
pub fn status_label(status: StatusCode) -> SharedString {
    const COMMON: [&str; 20] = [
        "200", "201", "202", "204", "301", "302", "304", "400", "401", "403", "404", "405", "409",
        "413", "422", "429", "500", "502", "503", "504",
    ];
    let code = status.as_str();
    match COMMON.iter().find(|common| **common == code) {
        Some(common) => SharedString::const_str(common),
        None => SharedString::from(code.to_owned()),
    }
}
