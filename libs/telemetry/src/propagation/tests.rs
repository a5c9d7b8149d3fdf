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

/// The context headers `inject_context_with` hands out inside `span`.
fn injected_within(span: &Span) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    span.in_scope(|| {
        inject_context_with(|name, value| {
            carrier.insert(name.to_owned(), value);
        });
    });
    carrier
}

fn assert_printable_and_bounded(carrier: &HashMap<String, String>) {
    for (name, value) in carrier {
        assert!(
            value.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{name}: {value:?}"
        );
        assert!(value.len() <= 8192, "{name} is {} bytes", value.len());
    }
}

#[test]
fn baggage_sent_by_an_http_client_is_not_passed_on_however_it_looks() {
    let (subscriber, _logs) = json_subscriber("svc");
    let huge = format!("k={}", "v".repeat(20_000));
    let many = (0..500)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let with_newline_property = "k=v;p%0Aq".to_owned();
    tracing::subscriber::with_default(subscriber, || {
        for baggage in ["user=alice".to_owned(), huge, many, with_newline_property] {
            let mut headers = incoming_headers();
            headers.insert("baggage", baggage.parse().unwrap());
            let span = tracing::info_span!(parent: None, "request");
            set_parent_from_headers(&span, &headers);

            let out = injected_within(&span);
            assert!(
                out["traceparent"].starts_with(&format!("00-{INCOMING_TRACE}-")),
                "the trace itself continues: {out:?}"
            );
            assert!(!out.contains_key("baggage"), "{baggage:.40} came out");
        }
    });
}

#[test]
fn injected_context_is_printable_and_within_the_w3c_limits_whatever_came_in() {
    let (subscriber, _logs) = json_subscriber("svc");
    // 32 members of 200 bytes: each valid, ~6.5 KB together.
    let tracestate = (0..32)
        .map(|i| format!("k{i}={}", "x".repeat(200)))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        // A property that decodes to a newline, which the propagator re-sends raw.
        "k=v;p%0Aq".to_owned(),
        // Quotes pass extraction as they are and triple on the way out (`%22`).
        format!("k={}", "\"".repeat(8000)),
    ];
    tracing::subscriber::with_default(subscriber, || {
        for baggage in cases {
            let carrier = HashMap::from([
                (
                    "traceparent".to_owned(),
                    format!("00-{INCOMING_TRACE}-{INCOMING_PARENT}-01"),
                ),
                ("tracestate".to_owned(), tracestate.clone()),
                ("baggage".to_owned(), baggage.clone()),
            ]);
            let span = tracing::info_span!(parent: None, "consume");
            set_parent_with(&span, |name| carrier.get(name).cloned());

            let out = injected_within(&span);
            assert_printable_and_bounded(&out);
            let state = &out["tracestate"];
            assert!(state.len() <= 512, "tracestate is {} bytes", state.len());
            assert!(
                state.starts_with("k0="),
                "the first members are kept: {state}"
            );
            assert!(!out.contains_key("baggage"), "{:?}", out.get("baggage"));
        }
    });
}

#[test]
fn well_formed_baggage_from_our_own_messages_still_travels() {
    let (subscriber, _logs) = json_subscriber("svc");
    tracing::subscriber::with_default(subscriber, || {
        let carrier = HashMap::from([
            (
                "traceparent".to_owned(),
                format!("00-{INCOMING_TRACE}-{INCOMING_PARENT}-01"),
            ),
            ("baggage".to_owned(), "tenant=shop".to_owned()),
        ]);
        let span = tracing::info_span!(parent: None, "consume");
        set_parent_with(&span, |name| carrier.get(name).cloned());
        assert_eq!(injected_within(&span)["baggage"], "tenant=shop");
    });
}

#[test]
fn oversized_lists_keep_their_leading_well_formed_members() {
    let baggage = (0..300)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let kept = bounded("baggage", baggage).unwrap();
    assert_eq!(kept.split(',').count(), 180);
    assert!(kept.starts_with("k0=v,k1=v,"), "{kept:.20}");

    assert_eq!(
        bounded("baggage", "bad key=v,\"q\"=v,k=v\"".into()),
        None,
        "no member is well formed"
    );
    assert_eq!(
        bounded("baggage", "a=1, b=2;p=x".into()).as_deref(),
        Some("a=1,b=2;p=x")
    );
    assert_eq!(bounded("tracestate", "a=1\t".into()), None);
}
