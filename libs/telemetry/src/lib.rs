//! Telemetry set-up shared by every service of the shop.
//!
//! One call to [`init`] at the top of `main` gives a service the same observability as all
//! the others: JSON log lines (one object per line, with the trace, span and request ids that
//! tie them to a request), spans with W3C trace ids that cross HTTP and NATS via the
//! functions in this crate, and OTLP export of those spans when a collector is configured
//! through the standard `OTEL_*` variables. Keeping it in one place is what makes a request
//! followable across services.
//!
//! Untrusted context stops at the edge: incoming HTTP requests contribute their trace context
//! only, never their W3C `baggage` (which would otherwise travel on into every downstream call
//! and, through the outbox, into events), and every header this crate injects is printable
//! ASCII within the W3C size limits. The details are in the docs of [`set_parent_from_headers`]
//! and [`inject_context_with`].
//!
//! Environment:
//! - `RUST_LOG`: the filter (default [`DEFAULT_FILTER`]).
//! - `LOG_FORMAT=pretty`: human-readable lines instead of JSON, for a terminal.
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: export spans over
//!   OTLP http/protobuf; unset, spans still get ids but go nowhere.
//! - `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`,
//!   `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_{HEADERS,TIMEOUT,COMPRESSION}`, `OTEL_SDK_DISABLED`
//!   (which stops export only: ids are still needed in the logs).

mod json;
mod otel;
mod propagation;

use std::io::IsTerminal as _;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

pub use propagation::{
    current_trace_id, inject_context_with, inject_current_context, set_parent_from_headers,
    set_parent_with,
};

/// Used when `RUST_LOG` is unset: our own crates at `info`, and the chattiest dependencies
/// only when something goes wrong.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,hyper=warn,hyper_util=warn,h2=warn,tower=warn,\
     reqwest=warn,async_nats=warn,rustls=warn,opentelemetry=warn,opentelemetry_sdk=warn,\
     opentelemetry_otlp=warn";

/// The name the spans' instrumentation scope carries.
const TRACER_NAME: &str = env!("CARGO_PKG_NAME");

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Keeps telemetry running; dropping it flushes pending spans and log lines.
///
/// Hold it in `main` until the service has stopped, so the last lines are not lost.
#[must_use = "dropping the guard stops exporting traces and writing logs"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    exporting: bool,
    // Declared last so it drops last: the trace shutdown may still want to log.
    _log_writer: WorkerGuard,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.exporting)
            .finish_non_exhaustive()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        let result = if self.exporting {
            otel::shutdown(provider)
        } else {
            // Nothing is queued, so there is nothing to wait for.
            provider.shutdown().map_err(Into::into)
        };
        if let Err(error) = result {
            tracing::warn!(
                error = format!("{error:#}"),
                "traces may have been lost at shutdown"
            );
        }
    }
}

/// Installs the global subscriber for `service`: logs to stdout, spans with W3C ids, OTLP
/// export if configured (see the crate docs for the environment it reads).
///
/// Needs no async runtime of the caller's. Fails, rather than panicking, if a global
/// subscriber is already installed or `RUST_LOG` does not parse.
pub fn init(service: &str) -> anyhow::Result<TelemetryGuard> {
    if INSTALLED.load(Ordering::SeqCst) {
        anyhow::bail!("telemetry is already initialised");
    }
    let filter = env_filter()?;
    let tracing = otel::from_env(service)?;
    // Lossy: a slow log consumer should cost us log lines, never request latency.
    let (writer, log_guard) = NonBlockingBuilder::default()
        .thread_name("shop-log-writer")
        .finish(std::io::stdout());
    let installed = subscriber(
        filter,
        &tracing.provider,
        &tracing.service_name,
        LogFormat::from_env(),
        writer,
    )
    .try_init();
    if let Err(error) = installed {
        let _ = otel::shutdown(tracing.provider);
        return Err(error).context("a global tracing subscriber is already installed");
    }
    INSTALLED.store(true, Ordering::SeqCst);

    propagation::install_propagator();
    opentelemetry::global::set_tracer_provider(tracing.provider.clone());
    tracing::info!(otlp_export = tracing.exporting, "telemetry initialised");
    Ok(TelemetryGuard {
        provider: Some(tracing.provider),
        exporting: tracing.exporting,
        _log_writer: log_guard,
    })
}

/// For tests: installs a plain subscriber that writes through the test harness's capture,
/// with trace ids and propagation working, unless a global subscriber is already set.
///
/// Safe to call from every test; only the first call does anything, and failure to install
/// (another subscriber won) is ignored.
pub fn init_for_tests() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        propagation::install_propagator();
        let filter = env_filter().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let provider = otel::local("test");
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer(TRACER_NAME)))
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .try_init();
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Json,
    Pretty { ansi: bool },
}

impl LogFormat {
    fn from_env() -> Self {
        if std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("pretty")) {
            let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            LogFormat::Pretty { ansi }
        } else {
            LogFormat::Json
        }
    }
}

/// The production stack, apart from where it writes, so tests can check the real thing.
fn subscriber<W>(
    filter: EnvFilter,
    provider: &SdkTracerProvider,
    service: &str,
    format: LogFormat,
    writer: W,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(TRACER_NAME))
        // Those would repeat what the log lines already say on every span.
        .with_threads(false)
        .with_location(false);
    // Boxed, not `Option`al: `Option<Layer>` does not pass on `on_register_dispatch`, which
    // the JSON layer needs to reach the span ids.
    let logs = match format {
        LogFormat::Json => json::JsonLayer::new(service, writer).boxed(),
        LogFormat::Pretty { ansi } => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(logs)
}

fn env_filter() -> anyhow::Result<EnvFilter> {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("invalid RUST_LOG {directives:?}")),
        _ => Ok(EnvFilter::new(DEFAULT_FILTER)),
    }
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests;
