//! The simulated carrier: shipments move on by themselves when configured, and
//! replicas sharing the database never step a shipment twice.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use shop_events::contracts::shipping::{ShipmentDelivered, ShipmentDispatched};
use shop_shipping::consumers::order_confirmed;
use uuid::Uuid;

use crate::helpers::{confirmed, eventually, spawn_app, spawn_app_with};

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_carrier_dispatches_and_delivers_a_shipment_after_its_delays() {
    let app = spawn_app_with(|s| {
        s.carrier.dispatch_after_ms = Some(300);
        s.carrier.deliver_after_ms = Some(300);
        s.carrier.every_ms = 20;
    })
    .await;
    let customer = app.customer().await;
    let order_id = app.confirm_order(customer.user_id).await;

    app.wait_status(order_id, "DELIVERED").await;

    let shipment = app.shipment_of(order_id).await;
    let created = time(&shipment["created_at"]);
    let dispatched = time(&shipment["dispatched_at"]);
    let delivered = time(&shipment["delivered_at"]);
    assert!(dispatched - created >= chrono::Duration::milliseconds(300));
    assert!(delivered - dispatched >= chrono::Duration::milliseconds(300));
    let causes: Vec<_> = shipment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["cause"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(causes, ["order confirmed", "carrier", "carrier"]);
    assert_eq!(app.published::<ShipmentDispatched>().await.len(), 1);
    assert_eq!(app.published::<ShipmentDelivered>().await.len(), 1);
}

#[tokio::test]
async fn with_only_a_delivery_delay_the_carrier_waits_for_an_admin_to_dispatch() {
    let app = spawn_app_with(|s| {
        s.carrier.deliver_after_ms = Some(0);
        s.carrier.every_ms = 20;
    })
    .await;
    let customer = app.customer().await;
    let waiting = app.confirm_order(customer.user_id).await;
    let dispatched = app.confirm_order(customer.user_id).await;
    let id = app.shipment_of(dispatched).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.step(&id, "dispatch").await;
    app.wait_status(dispatched, "DELIVERED").await;

    // The carrier has run since the admin's dispatch (it delivered that one), and
    // left the other alone.
    assert_eq!(app.status_of(waiting).await.as_deref(), Some("CREATED"));
}

#[tokio::test]
async fn two_instances_on_one_database_never_step_a_shipment_twice() {
    // Shipments first, with no carrier running ...
    let app = spawn_app().await;
    let customer = app.customer().await;
    let orders: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    let sequences = join_all(
        orders
            .iter()
            .map(|&order_id| app.publish(confirmed(order_id, customer.user_id))),
    )
    .await;
    let last = sequences.iter().map(|(_, s)| *s).max().unwrap();
    app.wait_handled(order_confirmed::CONSUMER, last).await;
    assert_eq!(app.count("shipments").await, 60);

    // ... then two carriers at once, on the same rows, as eager as they can be.
    let eager = |s: &mut shop_shipping::Settings| {
        s.carrier.dispatch_after_ms = Some(0);
        s.carrier.deliver_after_ms = Some(0);
        s.carrier.every_ms = 10;
    };
    let (_one, _two) = tokio::join!(app.another_instance(eager), app.another_instance(eager));
    eventually("every shipment delivered", || async {
        let delivered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM shipping.shipments WHERE status = 'DELIVERED'",
        )
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
        delivered == 60
    })
    .await;

    assert_eq!(app.published::<ShipmentDispatched>().await.len(), 60);
    assert_eq!(app.published::<ShipmentDelivered>().await.len(), 60);
    let most_steps: i64 = sqlx::query_scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM shipping.shipment_history GROUP BY shipment_id, status) per_status",
    )
    .fetch_one(app.db.admin_pool())
    .await
    .unwrap();
    assert_eq!(most_steps, 1, "every status once per shipment");
    assert_eq!(app.count("shipment_history").await, 3 * 60);
}
