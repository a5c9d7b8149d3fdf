//! The backbone under failure: a database outage, rows the broker refuses for good, a
//! full stream, an event whose ack was lost after its commit.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures::StreamExt as _;
use shop_events::Event as _;
use shop_events::contracts::users::UserRegistered;
use uuid::Uuid;

use crate::harness::{Recorder, harness, harness_with, registered_envelope};

const EFFECTS: &str = "SELECT count(*) FROM effects";
const UNSENT: &str = "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL";
const PARKED: &str = "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL";

#[tokio::test]
async fn a_database_outage_longer_than_the_ack_wait_parks_nothing_and_handles_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = shop_servers::free_port().unwrap();
    let start_pg = || {
        let mut options = shop_servers::PgOptions::new(dir.path().join("pg"), port);
        options.durable = false;
        shop_servers::PgServer::start(options)
    };
    let pg = start_pg().await.unwrap();
    let admin = sqlx::PgPool::connect(&pg.admin_url()).await.unwrap();
    shop_db::bootstrap(&admin, |svc| shop_db::local_password(svc.role))
        .await
        .unwrap();
    admin.close().await;
    let url = pg.url("user_svc", Some("user_svc-local-password"), "postgres");
    let nats = shop_testkit::nats().await;
    let h = harness_with(None, &url, nats.url()).await;
    let mut config = h.consumer_config();
    config.ack_wait = Duration::from_secs(1);
    config.max_deliveries = 2;
    config.max_outage_backoff = Duration::from_millis(200);
    h.spawn_consumer_with(config, Recorder::Records);
    h.commit_events(5).await;
    h.relay().drain().await.unwrap();
    h.wait_for_count(EFFECTS, 5, Duration::from_secs(15)).await;

    // The database goes away while 20 more events reach the consumer.
    pg.stop().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let envelope = registered_envelope();
        ids.push(envelope.id);
        publish(
            &h,
            &envelope.id.to_string(),
            serde_json::to_vec(&envelope).unwrap(),
        )
        .await;
    }
    // The outage itself: four ack waits long, during which every delivery fails.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pg = start_pg().await.unwrap();

    h.wait_for_count(EFFECTS, 25, Duration::from_secs(60)).await;
    assert_eq!(
        h.scalar("SELECT count(DISTINCT event_id) FROM effects")
            .await,
        25,
        "each event had its effect once"
    );
    assert_eq!(
        h.stream_messages("DEAD_LETTERS").await,
        0,
        "an outage spends none of an event's deliveries"
    );
    drop(h);
    pg.stop().await;
}

#[tokio::test]
async fn rows_the_broker_refuses_for_good_are_parked_and_the_rows_behind_them_flow() {
    let h = harness().await;
    let first = h.commit_events(1).await;
    // Three rows no retry can ever publish, between good ones.
    let nowhere = h.ns.subject("nowhere.thing.happened");
    let good_subject = h.ns.subject(UserRegistered::TYPE);
    let payload = serde_json::to_vec(&registered_envelope()).unwrap();
    let oversized = vec![b'x'; 2 * 1024 * 1024];
    let bad_header = serde_json::json!({ "traceparent": "00-\r\nInjected: yes" });
    for (subject, payload, headers) in [
        (&nowhere, &payload, serde_json::json!({})),
        (&good_subject, &oversized, serde_json::json!({})),
        (&good_subject, &payload, bad_header),
    ] {
        sqlx::query("INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4)")
            .bind(Uuid::now_v7())
            .bind(subject)
            .bind(payload)
            .bind(headers)
            .execute(&h.pool)
            .await
            .unwrap();
    }
    let last = h.commit_events(2).await;

    let sent = h.relay().drain().await.unwrap();

    assert_eq!(sent, 6, "every row was dealt with");
    assert_eq!(h.scalar(UNSENT).await, 0);
    assert_eq!(h.scalar(PARKED).await, 3);
    assert_eq!(
        h.stream_messages("USERS").await,
        3,
        "the good ones were published"
    );
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT park_reason FROM outbox WHERE parked_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert!(reasons[0].contains("no stream"), "{reasons:?}");
    assert!(reasons[1].contains("payload"), "{reasons:?}");
    assert!(reasons[2].contains("header"), "{reasons:?}");
    let sent_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM outbox WHERE sent_at IS NOT NULL ORDER BY id")
            .fetch_all(&h.pool)
            .await
            .unwrap();
    assert_eq!(sent_ids, [first, last].concat());
}

#[tokio::test]
async fn a_full_stream_refuses_new_events_and_keeps_the_ones_not_yet_consumed() {
    let h = harness().await;
    // The stream as ensured, shrunk to three messages to fill it quickly.
    let mut stream = h.js.get_stream(h.ns.name("USERS")).await.unwrap();
    let mut config = stream.info().await.unwrap().config.clone();
    config.max_messages = 3;
    h.js.update_stream(config).await.unwrap();
    h.commit_events(5).await;

    let drained = h.relay().drain().await;

    assert!(drained.is_err(), "the relay is told the stream refused");
    assert_eq!(h.stream_messages("USERS").await, 3);
    let first = stream.get_raw_message(1).await;
    assert!(first.is_ok(), "the oldest, unconsumed event is still there");
    assert_eq!(
        h.scalar(UNSENT).await,
        2,
        "the refused events wait in the outbox; full is not parked"
    );
    assert_eq!(h.scalar(PARKED).await, 0);
}

#[tokio::test]
async fn an_event_that_committed_but_lost_its_ack_is_acked_not_dead_lettered() {
    let h = harness().await;
    let envelope = registered_envelope();
    publish(&h, "lost-ack", serde_json::to_vec(&envelope).unwrap()).await;
    // A first delivery that "committed" and never acked: the record exists, the ack
    // wait runs out and the broker delivers again, past the consumer's cap of one.
    let stream = h.js.get_stream(h.ns.name("USERS")).await.unwrap();
    let durable = h.ns.name("test-recorder");
    let raw = stream
        .get_or_create_consumer::<pull::Config>(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(1),
                max_deliver: -1,
                filter_subject: h.ns.subject(UserRegistered::TYPE),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .unwrap();
    let first: Vec<_> = raw.take(1).collect().await;
    assert!(first[0].is_ok());
    sqlx::query("INSERT INTO processed_events (consumer, event_id) VALUES ('test-recorder', $1)")
        .bind(envelope.id)
        .execute(&h.pool)
        .await
        .unwrap();

    let mut config = h.consumer_config();
    config.max_deliveries = 1;
    h.spawn_consumer_with(config, Recorder::Records);

    let started = Instant::now();
    loop {
        let mut consumer = stream.get_consumer::<pull::Config>(&durable).await.unwrap();
        let info = consumer.info().await.unwrap();
        if info.num_ack_pending == 0
            && info.num_pending == 0
            && info.delivered.consumer_sequence >= 2
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never redelivered and acked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.stream_messages("DEAD_LETTERS").await, 0);
    assert_eq!(
        h.scalar(EFFECTS).await,
        0,
        "the effect is not applied twice"
    );
}

async fn publish(h: &crate::harness::Harness, msg_id: &str, payload: Vec<u8>) {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    h.js.publish_with_headers(h.ns.subject(UserRegistered::TYPE), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
}
