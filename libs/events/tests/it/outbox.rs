//! Producer side: the outbox and its relay.

use std::time::Duration;

use async_nats::HeaderMap;
use shop_events::Event as _;
use shop_events::contracts::users::UserRegistered;

use crate::harness::{Recorder, harness, harness_on, registered};

const UNSENT: &str = "SELECT count(*) FROM outbox WHERE sent_at IS NULL";
const EFFECTS: &str = "SELECT count(*) FROM effects";

#[tokio::test]
async fn events_committed_while_no_relay_ran_are_published_when_one_starts() {
    // The state after a crash between commit and publish: rows committed, nothing sent.
    let h = harness().await;
    h.commit_events(3).await;
    assert_eq!(h.scalar(UNSENT).await, 3);

    h.spawn_relay();
    h.spawn_consumer(Recorder::Records);

    h.wait_for_count(EFFECTS, 3, Duration::from_secs(15)).await;
    assert_eq!(h.scalar(UNSENT).await, 0, "every row is marked sent");
    assert_eq!(h.stream_messages("USERS").await, 3);
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let h = harness().await;
    let mut tx = h.pool.begin().await.unwrap();
    h.outbox.enqueue(&mut tx, registered()).await.unwrap();
    tx.rollback().await.unwrap();

    let sent = h.relay().drain().await.unwrap();

    assert_eq!(sent, 0);
    assert_eq!(h.stream_messages("USERS").await, 0);
}

#[tokio::test]
async fn a_batch_published_again_after_a_crash_is_dropped_by_the_broker() {
    // The relay published, then died before marking the row sent.
    let h = harness().await;
    let id = h.commit_events(1).await[0];
    let (subject, payload): (String, Vec<u8>) =
        sqlx::query_as("SELECT subject, payload FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&h.pool)
            .await
            .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.to_string().as_str());
    h.js.publish_with_headers(subject, headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();

    let sent = h.relay().drain().await.unwrap();

    assert_eq!(sent, 1, "the relay sends it again");
    assert_eq!(
        h.stream_messages("USERS").await,
        1,
        "the broker kept one copy"
    );
    assert_eq!(h.scalar(UNSENT).await, 0);
}

#[tokio::test]
async fn relays_in_parallel_send_every_row_exactly_once() {
    let h = harness().await;
    h.commit_events(300).await;

    let relays = [h.relay(), h.relay(), h.relay()];
    let sent = futures::future::join_all(relays.iter().map(|r| r.drain())).await;

    let total: usize = sent.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(total, 300, "SKIP LOCKED: no row taken twice");
    assert_eq!(h.stream_messages("USERS").await, 300);
}

#[tokio::test]
async fn nats_down_then_up_delivers_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = shop_servers::free_port().unwrap();
    let start = || {
        let mut options = shop_servers::NatsOptions::new(dir.path().join("js"), port);
        options.remove_after_stop = None;
        shop_servers::NatsServer::start(options)
    };
    let nats = start().await.unwrap();
    let h = harness_on(&nats.url()).await;
    h.spawn_relay();
    h.spawn_consumer(Recorder::Records);
    h.commit_events(5).await;
    h.wait_for_count(EFFECTS, 5, Duration::from_secs(15)).await;

    nats.stop().await;
    h.commit_events(20).await;
    // The relay keeps failing; the rows wait.
    assert!(h.scalar(UNSENT).await > 0);
    let nats = start().await.unwrap();

    h.wait_for_count(EFFECTS, 25, Duration::from_secs(60)).await;
    h.wait_for_count(UNSENT, 0, Duration::from_secs(10)).await;
    assert_eq!(h.stream_messages("USERS").await, 25);
    assert_eq!(
        h.scalar("SELECT count(DISTINCT event_id) FROM effects")
            .await,
        25
    );
    drop(h);
    nats.stop().await;
}

#[test]
fn subjects_are_the_event_types() {
    assert_eq!(UserRegistered::TYPE, "users.user.registered");
}
