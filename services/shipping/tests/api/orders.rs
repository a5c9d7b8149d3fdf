//! What the order service's announcements do: a confirmation creates one shipment, a
//! cancellation stops one that has not left, in whatever order the two arrive.

use futures::future::join_all;
use shop_events::contracts::shipping::{ShipmentCancelled, ShipmentCreated};
use shop_shipping::consumers::{order_cancelled, order_confirmed};
use shop_shipping::lifecycle::{self, Opened};
use shop_shipping::tracking::TrackingNumber;
use uuid::Uuid;

use crate::helpers::{confirmed, spawn_app};

#[tokio::test]
async fn a_confirmed_order_gets_exactly_one_shipment_even_when_confirmed_twice() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order_id = Uuid::now_v7();
    let confirmation = confirmed(order_id, customer.user_id);

    // The same event delivered again (past the broker's de-duplication: another
    // message id), and the same order confirmed again in a new event.
    let (envelope, _) = app.publish(confirmation.clone()).await;
    let bytes = serde_json::to_vec(&envelope).unwrap();
    app.publish_raw("orders.order.confirmed", "redelivery", bytes)
        .await;
    let (_, last) = app.publish(confirmation).await;
    app.wait_handled(order_confirmed::CONSUMER, last).await;

    assert_eq!(app.count("shipments").await, 1);
    let shipment = app.shipment_of(order_id).await;
    assert_eq!(shipment["status"], "CREATED");
    assert_eq!(shipment["address"]["city"], "London");
    let created = app.published::<ShipmentCreated>().await;
    assert_eq!(created.len(), 1, "one created event");
    assert_eq!(created[0].order_id, order_id);
    assert_eq!(created[0].shipment_id.to_string(), shipment["id"]);
    assert_eq!(created[0].tracking_number, shipment["tracking_number"]);
    assert!(TrackingNumber::parse(&created[0].tracking_number).is_some());
    let stored_user: Uuid = sqlx::query_scalar("SELECT user_id FROM shipping.shipments")
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(stored_user, customer.user_id);
}

#[tokio::test]
async fn every_shipment_gets_its_own_tracking_number() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(app.confirm_order(customer.user_id).await);
    }
    for order in &orders {
        app.wait_status(*order, "CREATED").await;
    }

    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT tracking_number) FROM shipping.shipments")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(distinct, 20);
}

#[tokio::test]
async fn a_tracking_number_already_taken_is_drawn_again() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let first = app.confirm_order(customer.user_id).await;
    let taken = app.shipment_of(first).await["tracking_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = app.service_pool().await;
    let outbox = app.outbox(pool.clone());

    // The first draw collides with the existing shipment's number.
    let mut draws = vec![
        TrackingNumber::parse("SHP0000000001").unwrap(),
        TrackingNumber::parse(&taken).unwrap(),
    ];
    let second = Uuid::now_v7();
    let mut tx = pool.begin().await.unwrap();
    let opened = lifecycle::open(
        &mut tx,
        &outbox,
        confirmed(second, customer.user_id),
        || Ok(draws.pop().unwrap()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let fresh = TrackingNumber::parse("SHP0000000001").unwrap();
    assert!(
        matches!(opened, Opened::Created(_, ref number) if *number == fresh),
        "{opened:?}"
    );
    assert!(draws.is_empty(), "drew twice");
    assert_eq!(
        app.shipment_of(second).await["tracking_number"],
        "SHP0000000001"
    );
    assert_eq!(app.published::<ShipmentCreated>().await.len(), 2);
}

#[tokio::test]
async fn a_shipment_not_yet_dispatched_is_cancelled_with_its_order() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order_id = app.confirm_order(customer.user_id).await;
    let shipment = app.shipment_of(order_id).await;

    app.cancel_order(order_id, "CANCELLED_BY_CUSTOMER").await;
    app.wait_status(order_id, "CANCELLED").await;

    let cancelled = app.published::<ShipmentCancelled>().await;
    assert_eq!(
        cancelled,
        [ShipmentCancelled {
            shipment_id: shipment["id"].as_str().unwrap().parse().unwrap(),
            order_id,
            reason: "CANCELLED_BY_CUSTOMER".to_owned(),
        }]
    );
    let shipment = app.shipment_of(order_id).await;
    assert!(shipment["cancelled_at"].is_string());
    let history = shipment["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["status"], "CANCELLED");
    assert_eq!(
        history[1]["cause"],
        "order cancelled (CANCELLED_BY_CUSTOMER)"
    );

    // Cancelled again: nothing more.
    let again = app.cancel_order(order_id, "CANCELLED_BY_CUSTOMER").await;
    app.wait_handled(order_cancelled::CONSUMER, again).await;
    assert_eq!(app.published::<ShipmentCancelled>().await.len(), 1);
}

#[tokio::test]
async fn a_dispatched_shipment_goes_on_when_its_order_is_cancelled() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order_id = app.confirm_order(customer.user_id).await;
    let id = app.shipment_of(order_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.step(&id, "dispatch").await;

    let sequence = app.cancel_order(order_id, "CANCELLED_BY_CUSTOMER").await;
    app.wait_handled(order_cancelled::CONSUMER, sequence).await;

    assert_eq!(app.status_of(order_id).await.as_deref(), Some("DISPATCHED"));
    assert!(app.published::<ShipmentCancelled>().await.is_empty());
    assert_eq!(
        app.count("cancelled_orders").await,
        0,
        "no tombstone either"
    );
}

#[tokio::test]
async fn a_cancelled_order_that_never_had_a_shipment_publishes_nothing() {
    let app = spawn_app().await;

    let sequence = app.cancel_order(Uuid::now_v7(), "OUT_OF_STOCK").await;
    app.wait_handled(order_cancelled::CONSUMER, sequence).await;

    assert_eq!(app.count("shipments").await, 0);
    assert!(app.published::<ShipmentCancelled>().await.is_empty());
    assert_eq!(app.count("outbox").await, 0);
}

#[tokio::test]
async fn a_confirmation_handled_after_its_orders_cancellation_ships_nothing() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order_id = Uuid::now_v7();

    // The two consumers keep no order between them: the cancellation went first.
    let cancelled = app.cancel_order(order_id, "CANCELLED_BY_CUSTOMER").await;
    app.wait_handled(order_cancelled::CONSUMER, cancelled).await;
    let (_, confirmed_at) = app.publish(confirmed(order_id, customer.user_id)).await;
    app.wait_handled(order_confirmed::CONSUMER, confirmed_at)
        .await;

    assert_eq!(app.status_of(order_id).await, None, "no shipment");
    assert!(app.published::<ShipmentCreated>().await.is_empty());
}

#[tokio::test]
async fn orders_confirmed_and_cancelled_at_the_same_moment_never_keep_a_live_shipment() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let orders: Vec<Uuid> = (0..30).map(|_| Uuid::now_v7()).collect();

    // Both events of every order at once: the two consumers race for each order.
    let publishes = orders.iter().map(|&order_id| {
        let app = &app;
        let user_id = customer.user_id;
        async move {
            let (confirmation, cancellation) = tokio::join!(
                app.publish(confirmed(order_id, user_id)),
                app.cancel_order(order_id, "CANCELLED_BY_CUSTOMER"),
            );
            (confirmation.1, cancellation)
        }
    });
    let sequences = join_all(publishes).await;
    let last_confirmed = sequences.iter().map(|s| s.0).max().unwrap();
    let last_cancelled = sequences.iter().map(|s| s.1).max().unwrap();
    app.wait_handled(order_confirmed::CONSUMER, last_confirmed)
        .await;
    app.wait_handled(order_cancelled::CONSUMER, last_cancelled)
        .await;

    for order_id in &orders {
        let status = app.status_of(*order_id).await;
        assert!(
            matches!(status.as_deref(), None | Some("CANCELLED")),
            "order {order_id}: {status:?}"
        );
    }
    let created = app.published::<ShipmentCreated>().await.len();
    let cancelled = app.published::<ShipmentCancelled>().await.len();
    assert_eq!(created, cancelled, "every shipment created was cancelled");
}
