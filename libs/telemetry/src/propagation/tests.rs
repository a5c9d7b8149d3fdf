use std::collections::HashMap;

use http::HeaderMap;

use super::*;
use crate::testing::json_subscriber;

const INCOMING_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INCOMING_PARENT: &str = "00f067aa0ba902b7";

fn incoming_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let traceparent = format!("00-{INCOMING_TRACE}-{INCOMING_PARENT}-01");
    headers.insert("traceparent", traceparent.parse().unwrap());
    headers.insert("tracestate", "shop=1".parse().unwrap());
    headers
}

#[test]
fn an_injected_context_extracts_to_the_same_trace() {
    let (subscriber, _logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let mut headers = HeaderMap::new();
        let client_trace = tracing::info_span!("client").in_scope(|| {
            inject_current_context(&mut headers);
            current_trace_id().unwrap()
        });
        let traceparent = headers["traceparent"].to_str().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{client_trace}-")),
            "{traceparent}"
        );

        // A root span, as a server's request span would be.
        let server = tracing::info_span!(parent: None, "server");
        set_parent_from_headers(&server, &headers);
        assert_eq!(server.in_scope(current_trace_id), Some(client_trace));
    });
}

#[test]
fn a_span_given_incoming_headers_continues_their_trace() {
    let (subscriber, logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("request");
        set_parent_from_headers(&span, &incoming_headers());
        let _entered = span.enter();
        tracing::info!("handling");

        // And it passes the trace on, as a child of itself.
        let mut outgoing = HeaderMap::new();
        inject_current_context(&mut outgoing);
        let traceparent = outgoing["traceparent"].to_str().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{INCOMING_TRACE}-")),
            "{traceparent}"
        );
        assert!(!traceparent.contains(INCOMING_PARENT), "{traceparent}");
        assert_eq!(outgoing["tracestate"], "shop=1");
    });

    let line = &logs.json_lines()[0];
    assert_eq!(line["trace_id"], INCOMING_TRACE);
    assert_ne!(line["span_id"], INCOMING_PARENT);
}

#[test]
fn without_a_traceparent_a_span_keeps_its_local_parent() {
    let (subscriber, _logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("outer");
        let _outer = outer.enter();
        let local_trace = current_trace_id().unwrap();
        let inner = tracing::info_span!("inner");
        set_parent_from_headers(&inner, &HeaderMap::new());
        assert_eq!(inner.in_scope(current_trace_id), Some(local_trace));
    });
}

#[test]
fn any_carrier_works_through_the_setter_and_getter_variants() {
    let (subscriber, _logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let mut carrier = HashMap::new();
        let sent = tracing::info_span!("publish").in_scope(|| {
            inject_context_with(|name, value| {
                carrier.insert(name.to_owned(), value);
            });
            current_trace_id().unwrap()
        });
        assert!(carrier.contains_key("traceparent"), "{carrier:?}");

        let consumer = tracing::info_span!(parent: None, "consume");
        set_parent_with(&consumer, |name| carrier.get(name).cloned());
        assert_eq!(consumer.in_scope(current_trace_id), Some(sent));
    });
}

#[test]
fn there_is_no_trace_id_outside_a_span() {
    let (subscriber, _logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(current_trace_id(), None);
        let mut headers = HeaderMap::new();
        inject_current_context(&mut headers);
        assert!(headers.get("traceparent").is_none());
    });
}
