//! W3C trace context (and baggage) across process boundaries, so one request keeps one
//! trace id through the gateway, every service and the message bus.
//!
//! Callers deal in `tracing::Span`s and header maps only; the OpenTelemetry types stay in here.

use std::collections::HashMap;
use std::sync::Once;

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::{Injector, TextMapCompositePropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, global};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes the global propagator speak W3C `traceparent`/`tracestate` and `baggage`.
///
/// Until then the global one is a no-op and nothing would cross the wire. Done once, so a
/// test helper called many times does not keep replacing it.
pub(crate) fn install_propagator() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
    });
}

/// Makes the trace described by incoming `traceparent`/`tracestate` headers the parent of
/// `span` (server side).
///
/// Call it before the span is first entered: once started, a span's parent is fixed. Without
/// a valid `traceparent` the span keeps its local parent, or starts a new trace.
pub fn set_parent_from_headers(span: &Span, headers: &http::HeaderMap) {
    let cx = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    adopt_parent(span, cx);
}

/// Like [`set_parent_from_headers`], for any carrier (e.g. NATS message headers): `get`
/// returns the value of a header by its (lower-case) name.
pub fn set_parent_with(span: &Span, get: impl Fn(&str) -> Option<String>) {
    // `Extractor` lends out `&str`s, which an owned-value getter cannot do; the propagator
    // names the few headers it reads, so fetch those up front.
    let cx = global::get_text_map_propagator(|p| {
        let carrier: HashMap<String, String> = p
            .fields()
            .filter_map(|name| get(name).map(|value| (name.to_owned(), value)))
            .collect();
        p.extract(&carrier)
    });
    adopt_parent(span, cx);
}

fn adopt_parent(span: &Span, cx: Context) {
    // An empty context as parent would cut the span off from a local parent it already has.
    if !cx.span().span_context().is_valid() && cx.baggage().is_empty() {
        return;
    }
    if let Err(error) = span.set_parent(cx) {
        // Disabled spans are expected (filtered out by RUST_LOG); anything else is a bug in
        // the caller, such as entering the span first.
        tracing::debug!(%error, "could not set the remote parent of a span");
    }
}

/// Writes the current span's context into outgoing request headers (client side).
pub fn inject_current_context(headers: &mut http::HeaderMap) {
    inject_into(&mut HeaderInjector(headers));
}

/// Like [`inject_current_context`], for any carrier: `set` receives each header name and value.
pub fn inject_context_with(set: impl FnMut(&str, String)) {
    inject_into(&mut FnInjector(set));
}

fn inject_into(injector: &mut dyn Injector) {
    let cx = Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, injector));
}

struct FnInjector<F>(F);

impl<F: FnMut(&str, String)> Injector for FnInjector<F> {
    fn set(&mut self, key: &str, value: String) {
        (self.0)(key, value);
    }
}

/// The current span's trace id as 32 lower-case hex digits, e.g. to put in an error response
/// so that a user's report can be matched with the trace.
pub fn current_trace_id() -> Option<String> {
    let cx = Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests;
