//! The OpenTelemetry tracer provider: always there to give spans W3C ids, exporting over OTLP
//! only when a collector has been configured.

use std::env;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector as _};
use opentelemetry_sdk::runtime;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

/// Long enough for a last batch to reach a healthy collector, short enough that a dead one
/// does not hold up a restart.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Tracing {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) service_name: String,
    pub(crate) exporting: bool,
}

/// Builds the provider from the standard `OTEL_*` variables.
///
/// The SDK itself reads `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*` and the span limits, and
/// the exporter reads `OTEL_EXPORTER_OTLP_*`; what is left to do here is the service name,
/// whether to export at all, and `OTEL_SDK_DISABLED`, which no crate reads.
pub(crate) fn from_env(service: &str) -> anyhow::Result<Tracing> {
    let service_name = service_name(service);
    let mut builder = SdkTracerProvider::builder().with_resource(resource(&service_name));
    let exporting = export_configured() && !sdk_disabled();
    if exporting {
        let exporter = SpanExporter::builder()
            .with_http()
            // Only the protobuf encoding is compiled in, whatever OTEL_EXPORTER_OTLP_PROTOCOL says.
            .with_protocol(Protocol::HttpBinary)
            .build()
            .context("building the OTLP span exporter")?;
        // The exporter's HTTP client is async, and shutdown blocks until the batch task has
        // flushed. Giving that task a one-thread runtime of its own means `init` works outside
        // a runtime and shutdown cannot starve it by blocking the caller's runtime threads.
        let processor = BatchSpanProcessor::builder(exporter, runtime::TokioCurrentThread).build();
        builder = builder.with_span_processor(processor);
    }
    Ok(Tracing {
        provider: builder.build(),
        service_name,
        exporting,
    })
}

/// A provider that only mints ids, for tests and for when export is off.
pub(crate) fn local(service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_resource(resource(service))
        .build()
}

/// `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else the name the
/// service gave itself (the SDK's own fallback, `unknown_service`, helps nobody).
fn service_name(default: &str) -> String {
    if let Some(name) = env::var("OTEL_SERVICE_NAME").ok().filter(|s| !s.is_empty()) {
        return name;
    }
    EnvResourceDetector::new()
        .detect()
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn resource(service_name: &str) -> Resource {
    // `builder()` brings in OTEL_RESOURCE_ATTRIBUTES and the SDK attributes; the explicit
    // name then wins over its `unknown_service` default.
    Resource::builder()
        .with_attribute(KeyValue::new("service.name", service_name.to_owned()))
        .build()
}

fn export_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|var| env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

fn sdk_disabled() -> bool {
    env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Flushes and stops the provider, giving up after a while.
///
/// The batch processor ignores the timeout it is given and waits for its last export, which
/// a collector that accepts connections but never answers could stretch far too long.
pub(crate) fn shutdown(provider: SdkTracerProvider) -> anyhow::Result<()> {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("otel-shutdown".into())
        .spawn(move || {
            let _ = done_tx.send(provider.shutdown());
        })
        .context("spawning the trace shutdown thread")?;
    match done_rx.recv_timeout(SHUTDOWN_TIMEOUT) {
        Ok(result) => result.context("shutting down the tracer provider"),
        Err(_) => {
            anyhow::bail!("the tracer provider did not shut down within {SHUTDOWN_TIMEOUT:?}")
        }
    }
}
