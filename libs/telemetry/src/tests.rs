use tracing_subscriber::EnvFilter;

use crate::testing::Captured;
use crate::{LogFormat, otel, subscriber};

#[test]
fn the_production_stack_writes_filtered_json_lines_with_trace_ids() {
    let captured = Captured::default();
    let provider = otel::local("order");
    let stack = subscriber(
        EnvFilter::new("info"),
        &provider,
        "order",
        LogFormat::Json,
        captured.clone(),
    );
    tracing::subscriber::with_default(stack, || {
        let span = tracing::info_span!("request", request_id = "req-1");
        let _entered = span.enter();
        tracing::debug!("filtered out by the level");
        tracing::info!(order_id = 7, "order placed");
    });

    let lines = captured.json_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["service"], "order");
    assert_eq!(lines[0]["request_id"], "req-1");
    assert_eq!(lines[0]["fields"]["order_id"], 7);
    assert_eq!(lines[0]["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(lines[0]["span_id"].as_str().map(str::len), Some(16));
}

#[test]
fn the_pretty_format_is_plain_text() {
    let captured = Captured::default();
    let stack = subscriber(
        EnvFilter::new("info"),
        &otel::local("order"),
        "order",
        LogFormat::Pretty { ansi: false },
        captured.clone(),
    );
    tracing::subscriber::with_default(stack, || tracing::info!(order_id = 7, "order placed"));

    let text = captured.text();
    assert!(
        text.contains("order placed") && text.contains("order_id=7"),
        "{text}"
    );
    assert!(!text.starts_with('{'), "{text}");
}
