//! The stock events: `inventory.stock.updated` with every change, `inventory.stock.low`
//! once per crossing of the threshold, both on NATS.

use std::time::{Duration, Instant};

use shop_events::Envelope;
use shop_events::contracts::inventory::{StockLow, StockUpdated};

use crate::helpers::{PATIENCE, spawn_app};

#[tokio::test]
async fn every_change_publishes_stock_updated_with_a_growing_revision() {
    let app = spawn_app().await;
    app.stocked("A-1", 10).await;
    let order = app.reserve(&[("A-1", 3)], 600).await;
    app.wait_status(order, "reserved").await;

    let updates = app.published_at_least::<StockUpdated>(3).await;
    let revisions: Vec<i64> = updates.iter().map(|u| u.revision).collect();
    assert_eq!(revisions, [1, 2, 3]);
    let last = updates.last().unwrap();
    assert_eq!(
        (last.on_hand, last.reserved, last.available),
        (10, 3, 7),
        "the update carries the state"
    );
}

#[tokio::test]
async fn stock_low_is_published_once_per_crossing_and_rearmed_when_restocked() {
    let app = spawn_app().await;
    // Threshold 5: a new SKU starts low without an alert; 10 on hand re-arms it.
    app.stocked("A-1", 10).await;
    for _ in 0..4 {
        let order = app.reserve(&[("A-1", 2)], 600).await;
        app.wait_status(order, "reserved").await;
    }
    // available went 8, 6, 4 (crossing: an alert), 2 (still low: none).
    let alerts = app.published::<StockLow>().await;
    assert_eq!(
        alerts,
        [StockLow {
            sku: "A-1".to_owned(),
            available: 4,
            threshold: 5
        }]
    );

    app.receive("A-1", 10).await; // available 12: re-armed
    let order = app.reserve(&[("A-1", 8)], 600).await; // available 4: a second crossing
    app.wait_status(order, "reserved").await;
    assert_eq!(app.published::<StockLow>().await.len(), 2);
}

#[tokio::test]
async fn stock_events_reach_the_inventory_stream() {
    let app = spawn_app().await;
    app.stocked("A-1", 3).await; // 3 < 5: low after the receipt? no: it started low

    let started = Instant::now();
    let subject = app.ns.subject("inventory.stock.updated");
    loop {
        let mut stream = app.js.get_stream(app.ns.name("INVENTORY")).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut updates = Vec::new();
        for seq in 1..=last {
            if let Ok(message) = stream.get_raw_message(seq).await
                && message.subject.as_str() == subject
            {
                let envelope: Envelope<StockUpdated> =
                    serde_json::from_slice(&message.payload).unwrap();
                updates.push(envelope.data.revision);
            }
        }
        if updates.len() >= 2 {
            assert_eq!(updates, [1, 2], "relayed in order, once each");
            return;
        }
        assert!(started.elapsed() < PATIENCE, "the relay did not publish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
