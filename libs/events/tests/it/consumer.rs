//! Consumer side: idempotency, retries, dead letters, trace continuity.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::stream::Stream;
use shop_events::consumer::{DEAD_LETTER_DELIVERIES, DEAD_LETTER_REASON};

use crate::harness::{Harness, Recorder, harness, registered, registered_envelope};

const EFFECTS: &str = "SELECT count(*) FROM effects";

async fn publish_raw(h: &Harness, msg_id: &str, payload: Vec<u8>) {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    let subject = h.ns.subject("users.user.registered");
    h.js.publish_with_headers(subject, headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Waits until the consumer has acked everything it was given.
async fn wait_idle(h: &Harness, consumer: &str) {
    let stream: Stream = h.js.get_stream(h.ns.name("USERS")).await.unwrap();
    let started = Instant::now();
    loop {
        if let Ok(mut c) = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&h.ns.name(consumer))
            .await
        {
            let info = c.info().await.unwrap();
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0
            {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the consumer did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The dead letters this test's consumer parked, with their headers.
async fn dead_letters(h: &Harness, expected: usize) -> Vec<HeaderMap> {
    let started = Instant::now();
    loop {
        let mut stream = h.js.get_stream(h.ns.name("DEAD_LETTERS")).await.unwrap();
        let stored = stream.info().await.unwrap().state.messages as usize;
        if stored >= expected {
            let mut out = Vec::new();
            for seq in 1..=stored as u64 {
                let message = stream.get_raw_message(seq).await.unwrap();
                out.push(message.headers);
            }
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{stored} dead letters, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_same_event_delivered_twice_changes_state_once() {
    let h = harness().await;
    let payload = serde_json::to_vec(&registered_envelope()).unwrap();
    // Two different message ids defeat the broker's de-duplication on purpose.
    publish_raw(&h, "copy-1", payload.clone()).await;
    publish_raw(&h, "copy-2", payload).await;

    h.spawn_consumer(Recorder::Records);
    wait_idle(&h, "test-recorder").await;

    assert_eq!(h.scalar(EFFECTS).await, 1);
    assert_eq!(h.scalar("SELECT count(*) FROM processed_events").await, 1);
}

#[tokio::test]
async fn a_handler_that_always_fails_ends_on_the_dead_letter_subject() {
    let h = harness().await;
    h.commit_events(1).await;
    h.spawn_relay();
    h.spawn_consumer(Recorder::AlwaysFails);

    let letters = dead_letters(&h, 1).await;

    let reason = letters[0].get(DEAD_LETTER_REASON).unwrap().as_str();
    assert!(
        reason.contains("failed 3 times") && reason.contains("mail server is down"),
        "{reason}"
    );
    assert_eq!(
        letters[0].get(DEAD_LETTER_DELIVERIES).unwrap().as_str(),
        "3"
    );
    assert_eq!(h.scalar(EFFECTS).await, 0);
    assert_eq!(
        h.scalar("SELECT count(*) FROM processed_events").await,
        0,
        "a failure commits nothing"
    );
}

#[tokio::test]
async fn poison_messages_are_parked_with_their_reason_and_do_not_block_the_rest() {
    let h = harness().await;
    publish_raw(&h, "garbage", b"{not json".to_vec()).await;
    let mut unknown = serde_json::to_value(registered_envelope()).unwrap();
    unknown["version"] = 99.into();
    publish_raw(&h, "future-version", serde_json::to_vec(&unknown).unwrap()).await;
    h.commit_events(1).await;
    h.spawn_relay();
    h.spawn_consumer(Recorder::Records);

    h.wait_for_count(EFFECTS, 1, Duration::from_secs(15)).await;
    let letters = dead_letters(&h, 2).await;

    let reasons: Vec<&str> = letters
        .iter()
        .map(|h| h.get(DEAD_LETTER_REASON).unwrap().as_str())
        .collect();
    assert!(
        reasons[0].starts_with("not an event envelope"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("unknown event type users.user.registered v99"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn the_consumer_span_continues_the_producer_trace() {
    let h = harness().await;
    let producer_trace = async {
        h.commit_events(1).await;
        shop_telemetry::current_trace_id().expect("a trace id inside a span")
    };
    let span = tracing::info_span!("http.request");
    let producer_trace = tracing::Instrument::instrument(producer_trace, span).await;

    h.spawn_relay();
    h.spawn_consumer(Recorder::Records);
    h.wait_for_count(EFFECTS, 1, Duration::from_secs(15)).await;

    let consumer_trace: Option<String> = sqlx::query_scalar("SELECT trace_id FROM effects")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(consumer_trace.as_deref(), Some(producer_trace.as_str()));
}

#[tokio::test]
async fn one_failing_event_in_a_batch_leaves_the_others_handled() {
    let h = harness().await;
    let events = (0..20).map(|i| {
        let mut event = registered();
        event.email = format!("user{i}@example.com");
        event
    });
    h.commit(events).await;
    // Published before the consumer starts: they arrive together, as one batch.
    h.relay().drain().await.unwrap();
    h.spawn_consumer(Recorder::Refuses("user7@example.com"));

    h.wait_for_count(EFFECTS, 19, Duration::from_secs(15)).await;
    let letters = dead_letters(&h, 1).await;

    assert!(
        letters[0]
            .get(DEAD_LETTER_REASON)
            .unwrap()
            .as_str()
            .contains("user7@example.com is banned")
    );
    wait_idle(&h, "test-recorder").await;
    assert_eq!(
        h.scalar(EFFECTS).await,
        19,
        "the refused event changed nothing, the rest once each"
    );
    assert_eq!(h.scalar("SELECT count(*) FROM processed_events").await, 19);
}

#[tokio::test]
async fn processed_records_older_than_the_horizon_are_purged_and_newer_ones_kept() {
    let h = harness().await;
    sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES
           ('c', gen_random_uuid(), now() - interval '9 days'),
           ('c', gen_random_uuid(), now() - interval '1 hour')",
    )
    .execute(&h.pool)
    .await
    .unwrap();

    let purged = shop_events::purge_processed(&h.pool, Duration::from_secs(8 * 24 * 3600))
        .await
        .unwrap();

    assert_eq!(purged, 1);
    assert_eq!(h.scalar("SELECT count(*) FROM processed_events").await, 1);
}
