//! `init` touches process-wide state, so it gets a test binary of its own.

#[test]
fn init_installs_once_and_a_second_call_is_an_error_not_a_panic() {
    let guard = shop_telemetry::init("telemetry-test").expect("first init succeeds");

    let second = shop_telemetry::init("telemetry-test");
    assert!(second.is_err());

    // Already installed: the test helper must quietly leave the real subscriber in place.
    shop_telemetry::init_for_tests();

    let trace_id = tracing::info_span!("request").in_scope(shop_telemetry::current_trace_id);
    assert_eq!(trace_id.map(|id| id.len()), Some(32));

    let mut headers = http::HeaderMap::new();
    tracing::info_span!("client").in_scope(|| shop_telemetry::inject_current_context(&mut headers));
    assert!(
        headers.contains_key("traceparent"),
        "the W3C propagator is installed"
    );

    drop(guard);
}
