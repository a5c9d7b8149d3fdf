use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::current_trace_id;
use crate::testing::json_subscriber;

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn a_line_inside_a_request_span_has_the_seed_shape_and_keeps_json_types() {
    let (subscriber, logs) = json_subscriber("user-service");
    let trace_id = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(
            "request",
            request_id = "req-789",
            http.method = "POST",
            http.route = "/users/{id}",
        );
        let _entered = span.enter();
        tracing::info!(
            user_id = 123,
            ratio = 0.25,
            admin = false,
            username = "john.doe",
            "User login successful"
        );
        current_trace_id()
    });

    let lines = logs.json_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = lines[0].as_object().unwrap();
    let keys: BTreeSet<&str> = line.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "timestamp",
        "level",
        "service",
        "trace_id",
        "span_id",
        "request_id",
        "message",
        "target",
        "fields",
    ]
    .into();
    assert_eq!(keys, expected);

    assert_eq!(line["level"], "INFO");
    assert_eq!(line["service"], "user-service");
    assert_eq!(line["request_id"], "req-789");
    assert_eq!(line["message"], "User login successful");
    assert_eq!(line["target"], module_path!());

    let trace = line["trace_id"].as_str().unwrap();
    assert!(is_lower_hex(trace, 32), "{trace}");
    assert_eq!(Some(trace.to_owned()), trace_id);
    let span = line["span_id"].as_str().unwrap();
    assert!(is_lower_hex(span, 16), "{span}");

    let timestamp = line["timestamp"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).unwrap();
    assert_eq!(parsed.offset().local_minus_utc(), 0);
    assert!(timestamp.ends_with('Z'), "{timestamp}");
    assert_eq!(
        timestamp.len(),
        "2024-10-27T10:00:00.123Z".len(),
        "{timestamp}"
    );

    assert_eq!(
        line["fields"],
        json!({
            "user_id": 123,
            "ratio": 0.25,
            "admin": false,
            "username": "john.doe",
            "http.method": "POST",
            "http.route": "/users/{id}",
        })
    );
}

#[test]
fn a_line_outside_any_span_has_null_ids() {
    let (subscriber, logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || tracing::warn!(attempt = 2, "no span here"));

    let line = &logs.json_lines()[0];
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["trace_id"], Value::Null);
    assert_eq!(line["span_id"], Value::Null);
    assert_eq!(line["request_id"], Value::Null);
    assert_eq!(line["fields"], json!({ "attempt": 2 }));
}

#[test]
fn the_nearest_request_id_wins_and_inner_spans_share_the_trace() {
    let (subscriber, logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("request", request_id = tracing::field::Empty, step = 1);
        let _outer = outer.enter();
        // Recorded after creation, as a request-id middleware does.
        outer.record("request_id", "req-outer");
        tracing::info!("in outer");
        let inner = tracing::info_span!("handler", step = 2, request_id = "req-inner");
        let _inner = inner.enter();
        tracing::info!("in inner");
    });

    let lines = logs.json_lines();
    assert_eq!(lines[0]["request_id"], "req-outer");
    assert_eq!(lines[0]["fields"], json!({ "step": 1 }));
    assert_eq!(lines[1]["request_id"], "req-inner");
    assert_eq!(lines[1]["fields"], json!({ "step": 2 }));
    assert_eq!(lines[0]["trace_id"], lines[1]["trace_id"]);
    assert_ne!(lines[0]["span_id"], lines[1]["span_id"]);
}

#[test]
fn an_event_with_an_explicit_parent_gets_that_spans_ids_without_entering_it() {
    let (subscriber, logs) = json_subscriber("svc");
    let expected = tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("background", request_id = "req-1");
        tracing::info!(parent: &span, "from outside");
        span.in_scope(current_trace_id)
    });

    let line = &logs.json_lines()[0];
    assert_eq!(line["request_id"], "req-1");
    assert_eq!(line["trace_id"].as_str().map(str::to_owned), expected);
}

#[derive(Debug)]
struct SavingFailed(std::fmt::Error);

impl std::fmt::Display for SavingFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("saving the order")
    }
}

impl std::error::Error for SavingFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn errors_keep_their_causes_and_odd_numbers_stay_readable() {
    let (subscriber, logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let error = SavingFailed(std::fmt::Error);
        let error: &(dyn std::error::Error + 'static) = &error;
        tracing::error!(error, nan = f64::NAN, big = u128::MAX, "failed");
    });

    let line = &logs.json_lines()[0];
    assert_eq!(line["level"], "ERROR");
    assert_eq!(
        line["fields"]["error"],
        "saving the order: an error occurred when formatting an argument"
    );
    assert_eq!(line["fields"]["nan"], "NaN");
    assert_eq!(line["fields"]["big"], u128::MAX.to_string());
}
