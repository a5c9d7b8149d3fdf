//! W3C trace context (and baggage) across process boundaries, so one request keeps one
//! trace id through the gateway, every service and the message bus.
//!
//! Callers deal in `tracing::Span`s and header maps only; the OpenTelemetry types stay in here.
//!
//! What crosses the edge is bounded, because what a request brings in is later written into
//! outgoing calls and, through the outbox, into every event it causes:
//!
//! - HTTP requests contribute their trace context (`traceparent`, `tracestate`) only. Their
//!   `baggage` is ignored: any client can send one, nothing in the shop reads it, and it would
//!   otherwise ride along on every call and event downstream. Message headers
//!   ([`set_parent_with`]) are written by our own outbox and keep theirs.
//! - Everything injected ([`inject_current_context`], [`inject_context_with`]) is printable
//!   ASCII (no control characters, so valid in HTTP and NATS headers alike) and within the W3C
//!   limits: `tracestate` at most 512 bytes (whole list members are dropped from the end, as
//!   the spec says to truncate), `baggage` at most 8192 bytes and 180 well-formed members
//!   (likewise), anything else at most 512 bytes. A value that cannot be made to fit is left
//!   out rather than sent broken.

use std::collections::HashMap;
use std::sync::Once;

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
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

const BAGGAGE: &str = "baggage";
const TRACESTATE: &str = "tracestate";

/// Makes the trace described by incoming `traceparent`/`tracestate` headers the parent of
/// `span` (server side). A `baggage` header is ignored (see the module docs).
///
/// Call it before the span is first entered: once started, a span's parent is fixed. Without
/// a valid `traceparent` the span keeps its local parent, or starts a new trace.
pub fn set_parent_from_headers(span: &Span, headers: &http::HeaderMap) {
    let cx =
        global::get_text_map_propagator(|p| p.extract(&WithoutBaggage(HeaderExtractor(headers))));
    adopt_parent(span, cx);
}

/// Hides the `baggage` header from the propagators.
struct WithoutBaggage<E>(E);

impl<E: Extractor> Extractor for WithoutBaggage<E> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(BAGGAGE) {
            None
        } else {
            self.0.get(key)
        }
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys = self.0.keys();
        keys.retain(|k| !k.eq_ignore_ascii_case(BAGGAGE));
        keys
    }
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
///
/// Every value is printable ASCII and within the W3C limits: `tracestate` at most 512 bytes,
/// `baggage` at most 8192 bytes and 180 members (whole members are dropped from the end to
/// fit), anything else at most 512 bytes; what cannot be made to fit is left out.
pub fn inject_current_context(headers: &mut http::HeaderMap) {
    inject_into(&mut HeaderInjector(headers));
}

/// Like [`inject_current_context`], for any carrier (e.g. the headers of an outbox event):
/// `set` receives each header name and value, bounded and printable as described there.
pub fn inject_context_with(set: impl FnMut(&str, String)) {
    inject_into(&mut FnInjector(set));
}

fn inject_into(injector: &mut dyn Injector) {
    let cx = Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Bounded(injector)));
}

/// Passes on only values that are safe to put in a header (see the module docs).
struct Bounded<'a>(&'a mut dyn Injector);

impl Injector for Bounded<'_> {
    fn set(&mut self, key: &str, value: String) {
        match bounded(key, value) {
            Some(value) => self.0.set(key, value),
            None => tracing::debug!(
                header = key,
                "left out a context header that was too large or malformed"
            ),
        }
    }
}

/// W3C Trace Context: vendors must propagate at least 512 bytes of `tracestate`, and that is
/// as far as we go.
const TRACESTATE_MAX_BYTES: usize = 512;
/// W3C Baggage's limits.
const BAGGAGE_MAX_BYTES: usize = 8192;
const BAGGAGE_MAX_MEMBERS: usize = 180;
/// For any other header a propagator may add (`traceparent` is 55 bytes).
const OTHER_MAX_BYTES: usize = 512;

/// `value` as it may leave the process under header `name`, or `None` to leave it out.
fn bounded(name: &str, value: String) -> Option<String> {
    // Printable ASCII only: what the W3C formats allow, and valid in HTTP and NATS headers.
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return None;
    }
    if name.eq_ignore_ascii_case(TRACESTATE) {
        leading_members(&value, TRACESTATE_MAX_BYTES, usize::MAX, |_| true)
    } else if name.eq_ignore_ascii_case(BAGGAGE) {
        leading_members(
            &value,
            BAGGAGE_MAX_BYTES,
            BAGGAGE_MAX_MEMBERS,
            is_baggage_member,
        )
    } else {
        (value.len() <= OTHER_MAX_BYTES).then_some(value)
    }
}

/// The leading members of a comma-separated list that fit in `max_bytes` and `max_members`,
/// leaving out malformed ones; `None` if no member is left.
fn leading_members(
    list: &str,
    max_bytes: usize,
    max_members: usize,
    well_formed: fn(&str) -> bool,
) -> Option<String> {
    let mut kept = String::new();
    let members = list.split(',').map(str::trim).filter(|m| well_formed(m));
    for member in members.take(max_members) {
        let separator = if kept.is_empty() { "" } else { "," };
        if kept.len() + separator.len() + member.len() > max_bytes {
            break;
        }
        kept.push_str(separator);
        kept.push_str(member);
    }
    (!kept.is_empty()).then_some(kept)
}

/// `key=value` with optional `;properties`: the key an RFC 9110 token, the value W3C
/// `baggage-octet`s (the propagator percent-encodes the rest).
fn is_baggage_member(member: &str) -> bool {
    let pair = member.split(';').next().unwrap_or_default();
    let Some((key, value)) = pair.split_once('=') else {
        return false;
    };
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let is_baggage_octet = |b: u8| (0x21..=0x7e).contains(&b) && !b"\",;\\".contains(&b);
    let (key, value) = (key.trim(), value.trim());
    !key.is_empty() && key.bytes().all(is_tchar) && value.bytes().all(is_baggage_octet)
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
