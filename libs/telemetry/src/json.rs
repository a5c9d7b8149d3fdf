//! The JSON log line: one object per event, in the shape the log pipeline indexes on.
//!
//! This is a `Layer` rather than a `FormatEvent` because the trace and span ids live in the
//! OpenTelemetry layer's span data, which can only be reached through the `Dispatch`; a
//! formatter never sees it, and asking for the current dispatch from inside an event yields
//! the no-op one.

use std::fmt;
use std::io::Write as _;
use std::sync::OnceLock;

use chrono::{SecondsFormat, Utc};
use opentelemetry::trace::TraceContextExt as _;
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::dispatcher::{Dispatch, WeakDispatch};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The field that is lifted from spans to the top level of every line inside them.
const REQUEST_ID: &str = "request_id";

/// Writes every event as one JSON line to `make_writer`.
pub(crate) struct JsonLayer<W> {
    service: String,
    make_writer: W,
    dispatch: OnceLock<WeakDispatch>,
}

impl<W> JsonLayer<W> {
    pub(crate) fn new(service: impl Into<String>, make_writer: W) -> Self {
        Self {
            service: service.into(),
            make_writer,
            dispatch: OnceLock::new(),
        }
    }

    fn otel_ids(&self, span: &Id) -> Option<(String, String)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(span, &dispatch)?;
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    }
}

/// The fields a span was created or later recorded with, kept in its extensions.
#[derive(Default)]
struct SpanFields(Map<String, Value>);

#[derive(Serialize)]
struct Line<'a> {
    timestamp: String,
    level: &'a str,
    service: &'a str,
    trace_id: Option<String>,
    span_id: Option<String>,
    request_id: Option<Value>,
    message: String,
    target: &'a str,
    fields: Map<String, Value>,
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut JsonVisitor::new(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor::new(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        let mut request_id = None;
        let span = ctx.event_span(event);
        if let Some(span) = &span {
            // Root first, so that a field set closer to the event wins.
            for ancestor in span.scope().from_root() {
                let extensions = ancestor.extensions();
                let Some(span_fields) = extensions.get::<SpanFields>() else {
                    continue;
                };
                for (key, value) in &span_fields.0 {
                    if key == REQUEST_ID {
                        request_id = Some(value.clone());
                    } else if !key.starts_with("otel.") {
                        // `otel.*` steer the exported span (name, kind, status), not the log.
                        fields.insert(key.clone(), value.clone());
                    }
                }
            }
        }

        let mut visitor = JsonVisitor::new(&mut fields);
        event.record(&mut visitor);
        let message = visitor.message.take().unwrap_or_default();
        let log_target = visitor.log_target.take();
        if let Some(id) = fields.remove(REQUEST_ID) {
            request_id = Some(id);
        }

        let metadata = event.metadata();
        // The SDK's own diagnostics may be emitted while its span data is locked; looking
        // the ids up then would deadlock, and they are not about a request anyway.
        let ids = match &span {
            Some(span) if !metadata.target().starts_with("opentelemetry") => {
                self.otel_ids(&span.id())
            }
            _ => None,
        };
        let (trace_id, span_id) = ids.unzip();

        let line = Line {
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            level: metadata.level().as_str(),
            service: &self.service,
            trace_id,
            span_id,
            request_id,
            message,
            target: log_target.as_deref().unwrap_or(metadata.target()),
            fields,
        };
        let mut buf = Vec::with_capacity(512);
        if serde_json::to_writer(&mut buf, &line).is_ok() {
            buf.push(b'\n');
            // One write per line keeps lines whole when the writer is shared.
            let _ = self.make_writer.make_writer_for(metadata).write_all(&buf);
        }
    }
}

/// Turns tracing field values into JSON values without flattening them all to strings.
struct JsonVisitor<'a> {
    fields: &'a mut Map<String, Value>,
    message: Option<String>,
    log_target: Option<String>,
}

impl<'a> JsonVisitor<'a> {
    fn new(fields: &'a mut Map<String, Value>) -> Self {
        Self {
            fields,
            message: None,
            log_target: None,
        }
    }

    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
            }
            // Records bridged from the `log` crate carry their origin as fields; the real
            // target replaces the generic "log" one and the rest is noise.
            "log.target" => self.log_target = value.as_str().map(str::to_owned),
            "log.module_path" | "log.file" | "log.line" => {}
            name => {
                self.fields.insert(name.to_owned(), value);
            }
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinities; keep them readable rather than drop them.
        let json = serde_json::Number::from_f64(value)
            .map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.put(field, json);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let json = i64::try_from(value).map_or_else(|_| value.to_string().into(), Value::from);
        self.put(field, json);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let json = u64::try_from(value).map_or_else(|_| value.to_string().into(), Value::from);
        self.put(field, json);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The causes are usually what explains the failure, so keep the whole chain.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.put(field, text.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests;
