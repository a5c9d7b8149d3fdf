//! The inventory's low-stock alert reaches purchasing through the local mail sink.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use shop_events::contracts::inventory::StockLow;
use shop_events::{Envelope, Event as _, Namespace};
use shop_user::consumers::low_stock_alert::{CONSUMER, PURCHASING};

use crate::helpers::spawn_app_with;

async fn publish(
    js: &jetstream::Context,
    ns: &Namespace,
    msg_id: &str,
    event: &Envelope<StockLow>,
) {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
    js.publish_with_headers(
        ns.subject(StockLow::TYPE),
        headers,
        serde_json::to_vec(event).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Waits until the consumer has acked `delivered` messages and holds none.
async fn wait_handled(js: &jetstream::Context, ns: &Namespace, delivered: u64) {
    let started = Instant::now();
    loop {
        let stream = js.get_stream(ns.name("INVENTORY")).await.unwrap();
        if let Ok(mut consumer) = stream
            .get_consumer::<pull::Config>(&ns.name(CONSUMER))
            .await
        {
            let info = consumer.info().await.unwrap();
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence >= delivered
            {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the low-stock consumer did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_low_stock_event_writes_one_mail_to_purchasing_even_when_delivered_twice() {
    let prefix = shop_testkit::nats_prefix();
    let app = spawn_app_with(|s| s.service.events_prefix = prefix.clone()).await;
    let js = jetstream::new(shop_testkit::nats().await.client().await);
    let ns = Namespace::prefixed(prefix);
    // No inventory runs: the user service created the inventory's stream itself, as
    // the chassis does for every stream a consumer reads.
    js.get_stream(ns.name("INVENTORY"))
        .await
        .expect("the consumed stream exists once the service is up");

    let event = Envelope::new(
        "inventory",
        StockLow {
            sku: "TEE-BLK-M".to_owned(),
            available: 3,
            threshold: 5,
        },
    );
    publish(&js, &ns, "first", &event).await;
    // The same event again under another message id: the broker cannot drop it, the
    // consumer must.
    publish(&js, &ns, "second", &event).await;
    wait_handled(&js, &ns, 2).await;

    let mails: Vec<(String, String, String)> =
        sqlx::query_as("SELECT to_address, subject, body FROM users.mail_sink WHERE event_id = $1")
            .bind(event.id)
            .fetch_all(app.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(mails.len(), 1, "one mail for one event");
    let (to, subject, body) = &mails[0];
    assert_eq!(to, PURCHASING);
    assert!(subject.contains("TEE-BLK-M"), "{subject}");
    assert!(body.contains("3 available"), "{body}");
    assert!(body.contains("threshold of 5"), "{body}");
}
