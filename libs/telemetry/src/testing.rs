//! What the unit tests share: a scoped subscriber shaped like the production one, whose log
//! lines land in a buffer instead of stdout.

use std::io;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use serde_json::Value;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// The log lines written so far; clones share the buffer.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("log output is UTF-8")
    }

    /// Every line parsed as JSON, failing the test on anything that is not.
    pub(crate) fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Registry + OpenTelemetry layer + JSON layer, for use with `with_default`.
pub(crate) fn json_subscriber(
    service: &str,
) -> (impl Subscriber + Send + Sync + 'static, Captured) {
    crate::propagation::install_propagator();
    let captured = Captured::default();
    let provider = crate::otel::local(service);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(crate::json::JsonLayer::new(service, captured.clone()));
    (subscriber, captured)
}
