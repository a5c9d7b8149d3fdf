//! The checkout saga, driven the way the other services drive it: the tests publish
//! the inventory's, the payment's and the shipping's answers on NATS (typed by the
//! contracts) and read, in the order service's outbox, the commands and events it
//! sends back.

use chrono::Utc;
use serde_json::Value;
use shop_events::contracts::catalog::Money;
use shop_events::contracts::inventory::{
    CommitReservation, ReleaseReservation, ReserveStock, ReturnStock, Shortage, StockExpired,
    StockRejected, StockReserved,
};
use shop_events::contracts::orders::{OrderCancelled, OrderConfirmed};
use shop_events::contracts::payments::{
    AuthorizePayment, CapturePayment, PaymentAuthorized, PaymentDeclined, VoidPayment,
};
use shop_events::contracts::shipping::{ShipmentCreated, ShipmentDelivered, ShipmentDispatched};
use uuid::Uuid;

use crate::helpers::{TestApp, eventually, id_of, spawn_app, spawn_app_with};

/// The inventory's answer to the order's reserve command: every line reserved.
async fn reserved(app: &TestApp, id: Uuid) -> StockReserved {
    let reserve = app.sent_at_least::<ReserveStock>(id, 1).await.remove(0);
    StockReserved {
        order_id: id,
        lines: reserve.lines,
        expires_at: Utc::now() + chrono::Duration::seconds(60),
    }
}

fn authorized(id: Uuid, amount: i64) -> PaymentAuthorized {
    PaymentAuthorized {
        payment_id: Uuid::now_v7(),
        order_id: id,
        amount: Money {
            amount,
            currency: "EUR".to_owned(),
        },
    }
}

fn shipment<T>(id: Uuid, make: impl FnOnce(Uuid, Uuid, String) -> T) -> T {
    make(Uuid::from_u128(7), id, "TRK-0000007".to_owned())
}

/// An order placed and moved to `AWAITING_PAYMENT`.
async fn awaiting_payment(app: &TestApp, token: &str) -> (Uuid, Value) {
    let kettle = app.product(4999);
    let order = app.placed(token, &[(&kettle, 2)]).await;
    let id = id_of(&order);
    app.publish(reserved(app, id).await).await;
    app.wait_status(id, "AWAITING_PAYMENT").await;
    (id, order)
}

#[tokio::test]
async fn an_order_goes_from_placed_to_delivered_as_the_answers_arrive() {
    let app = spawn_app().await;
    let token = app.customer();
    let kettle = app.product(4999);
    let order = app.placed(&token, &[(&kettle, 2)]).await;
    let id = id_of(&order);
    let user_id: Uuid = order["user_id"].as_str().unwrap().parse().unwrap();

    let stock = app.publish(reserved(&app, id).await).await;
    app.wait_status(id, "AWAITING_PAYMENT").await;
    let authorize = &app.sent::<AuthorizePayment>(id).await[0];
    assert_eq!(authorize.user_id, user_id);
    assert_eq!(authorize.amount.amount, 9998);
    assert_eq!(authorize.card_token, "tok_visa");

    let paid = app.publish(authorized(id, 9998)).await;
    app.wait_status(id, "CONFIRMED").await;
    assert_eq!(app.sent::<CommitReservation>(id).await.len(), 1);
    assert_eq!(app.sent::<CapturePayment>(id).await.len(), 1);
    let confirmed = &app.sent::<OrderConfirmed>(id).await[0];
    assert_eq!(confirmed.shipping_address.city, "London");
    assert_eq!(confirmed.lines[0].quantity, 2);
    assert_eq!(confirmed.total.amount, 9998);

    app.publish(shipment(id, |shipment_id, order_id, tracking_number| {
        ShipmentCreated {
            shipment_id,
            order_id,
            tracking_number,
        }
    }))
    .await;
    eventually("the shipment in the history", || async {
        app.history(id).await.len() == 4
    })
    .await;
    app.publish(shipment(id, |shipment_id, order_id, tracking_number| {
        ShipmentDispatched {
            shipment_id,
            order_id,
            tracking_number,
        }
    }))
    .await;
    app.wait_status(id, "SHIPPED").await;
    app.publish(shipment(id, |shipment_id, order_id, tracking_number| {
        ShipmentDelivered {
            shipment_id,
            order_id,
            tracking_number,
        }
    }))
    .await;
    app.wait_status(id, "DELIVERED").await;

    assert_eq!(
        app.subjects_sent(id).await,
        [
            "orders.order.placed",
            "inventory.reservation.reserve",
            "payments.payment.authorize",
            "inventory.reservation.commit",
            "payments.payment.capture",
            "orders.order.confirmed",
        ]
    );
    let read = app.order(id, &token).await;
    assert_eq!(read["status"], "DELIVERED");
    assert_eq!(
        read["deadline_at"],
        Value::Null,
        "nothing to wait for any more"
    );
    let history: Vec<(Value, Value, Value)> = read["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone(), h["cause"].clone()))
        .collect();
    let expected = [
        (Value::Null, "PENDING", "placement"),
        (
            "PENDING".into(),
            "AWAITING_PAYMENT",
            "inventory.stock.reserved",
        ),
        (
            "AWAITING_PAYMENT".into(),
            "CONFIRMED",
            "payments.payment.authorized",
        ),
        ("CONFIRMED".into(), "CONFIRMED", "shipping.shipment.created"),
        (
            "CONFIRMED".into(),
            "SHIPPED",
            "shipping.shipment.dispatched",
        ),
        ("SHIPPED".into(), "DELIVERED", "shipping.shipment.delivered"),
    ]
    .map(|(from, to, cause)| (from, Value::from(to), Value::from(cause)));
    assert_eq!(history, expected);
    assert_eq!(read["history"][1]["event_id"], stock.id.to_string());
    assert_eq!(read["history"][2]["event_id"], paid.id.to_string());
    assert_eq!(read["history"][3]["detail"], "tracking number TRK-0000007");
}

#[tokio::test]
async fn an_order_whose_stock_is_short_is_cancelled_out_of_stock_with_nothing_to_undo() {
    let app = spawn_app().await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 5)]).await);
    let sku = app.catalog.sku(&kettle);

    app.publish(StockRejected {
        order_id: id,
        short: vec![Shortage {
            sku: sku.clone(),
            requested: 5,
            available: 2,
        }],
    })
    .await;
    app.wait_status(id, "CANCELLED").await;

    assert_eq!(app.status(id).await.1.as_deref(), Some("OUT_OF_STOCK"));
    assert_eq!(
        app.subjects_sent(id).await,
        [
            "orders.order.placed",
            "inventory.reservation.reserve",
            "orders.order.cancelled",
        ]
    );
    assert_eq!(
        app.sent::<OrderCancelled>(id).await[0].reason,
        "OUT_OF_STOCK"
    );
    let read = app.order(id, &token).await;
    assert_eq!(
        read["history"][1]["detail"],
        format!("{sku}: 5 requested, 2 available")
    );
}

#[tokio::test]
async fn a_declined_payment_cancels_the_order_and_releases_its_stock() {
    let app = spawn_app().await;
    let token = app.customer();
    let (id, _) = awaiting_payment(&app, &token).await;

    app.publish(PaymentDeclined {
        payment_id: Uuid::now_v7(),
        order_id: id,
        reason: "card_declined".to_owned(),
    })
    .await;
    app.wait_status(id, "CANCELLED").await;

    assert_eq!(app.status(id).await.1.as_deref(), Some("PAYMENT_DECLINED"));
    let subjects = app.subjects_sent(id).await;
    assert_eq!(
        subjects[3..],
        ["inventory.reservation.release", "orders.order.cancelled"]
    );
    assert!(
        app.sent::<VoidPayment>(id).await.is_empty(),
        "nothing is held"
    );
    assert!(app.sent::<CommitReservation>(id).await.is_empty());
    let history = app.history(id).await;
    assert_eq!(history.last().unwrap().2, "payments.payment.declined");
}

#[tokio::test]
async fn an_order_without_an_answer_from_the_inventory_is_cancelled_at_its_deadline_and_compensated()
 {
    let app = spawn_app_with(|s| s.saga.reserve_timeout_ms = 300).await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 1)]).await);

    app.wait_status(id, "CANCELLED").await;

    assert_eq!(app.status(id).await.1.as_deref(), Some("TIMEOUT"));
    assert_eq!(app.sent::<ReleaseReservation>(id).await.len(), 1);
    assert_eq!(app.sent::<VoidPayment>(id).await.len(), 1);
    assert_eq!(app.sent::<OrderCancelled>(id).await[0].reason, "TIMEOUT");
    let history = app.history(id).await;
    assert_eq!(
        history.last().unwrap(),
        &(
            Some("PENDING".to_owned()),
            "CANCELLED".to_owned(),
            "deadline".to_owned()
        )
    );
    assert!(app.sent::<AuthorizePayment>(id).await.is_empty());
}

#[tokio::test]
async fn an_order_without_an_answer_from_the_payment_is_cancelled_at_its_deadline_and_compensated()
{
    let app = spawn_app_with(|s| s.saga.payment_timeout_ms = 1_000).await;
    let token = app.customer();
    let (id, _) = awaiting_payment(&app, &token).await;

    app.wait_status(id, "CANCELLED").await;

    assert_eq!(app.status(id).await.1.as_deref(), Some("TIMEOUT"));
    let subjects = app.subjects_sent(id).await;
    assert_eq!(
        subjects[3..],
        [
            "inventory.reservation.release",
            "payments.payment.void",
            "orders.order.cancelled",
        ]
    );
}

#[tokio::test]
async fn an_expired_reservation_cancels_the_order_awaiting_payment_with_timeout() {
    let app = spawn_app().await;
    let token = app.customer();
    let (id, _) = awaiting_payment(&app, &token).await;

    app.publish(StockExpired {
        order_id: id,
        lines: vec![],
    })
    .await;
    app.wait_status(id, "CANCELLED").await;

    assert_eq!(app.status(id).await.1.as_deref(), Some("TIMEOUT"));
    assert_eq!(app.sent::<VoidPayment>(id).await.len(), 1);
    assert_eq!(app.sent::<ReleaseReservation>(id).await.len(), 1);
}

#[tokio::test]
async fn answers_that_arrive_after_a_cancellation_are_compensated_again() {
    let app = spawn_app_with(|s| s.saga.reserve_timeout_ms = 300).await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 1)]).await);
    app.wait_status(id, "CANCELLED").await;
    assert_eq!(app.sent::<ReleaseReservation>(id).await.len(), 1);
    assert_eq!(app.sent::<VoidPayment>(id).await.len(), 1);

    // The inventory was slow, not dead: its reservation arrives now.
    app.publish(reserved(&app, id).await).await;
    app.sent_at_least::<ReleaseReservation>(id, 2).await;
    // And a payment that was authorized anyway.
    app.publish(authorized(id, 4999)).await;
    app.sent_at_least::<VoidPayment>(id, 2).await;

    assert_eq!(
        app.status(id).await,
        ("CANCELLED".to_owned(), Some("TIMEOUT".to_owned()))
    );
    assert!(app.sent::<AuthorizePayment>(id).await.is_empty());
    assert!(app.sent::<CapturePayment>(id).await.is_empty());
    let notes: Vec<_> = app
        .history(id)
        .await
        .into_iter()
        .filter(|(from, to, _)| from.as_deref() == Some("CANCELLED") && to == "CANCELLED")
        .map(|(_, _, cause)| cause)
        .collect();
    assert_eq!(
        notes,
        ["inventory.stock.reserved", "payments.payment.authorized"]
    );
}

#[tokio::test]
async fn every_answer_delivered_twice_moves_the_order_once() {
    let app = spawn_app().await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 1)]).await);

    // Each answer twice as the participant would repeat it (a new event id), and once
    // more as a redelivery of the same event that got past the broker's de-duplication.
    let stock = app.publish(reserved(&app, id).await).await;
    app.publish(stock.data.clone()).await;
    app.publish_envelope(&stock, &Uuid::new_v4().to_string())
        .await;
    app.wait_status(id, "AWAITING_PAYMENT").await;
    let paid = app.publish(authorized(id, 4999)).await;
    app.publish(paid.data.clone()).await;
    app.publish_envelope(&paid, &Uuid::new_v4().to_string())
        .await;
    app.wait_status(id, "CONFIRMED").await;
    let dispatched = app
        .publish(shipment(id, |shipment_id, order_id, tracking_number| {
            ShipmentDispatched {
                shipment_id,
                order_id,
                tracking_number,
            }
        }))
        .await;
    app.publish(dispatched.data.clone()).await;
    app.wait_status(id, "SHIPPED").await;
    let delivered = shipment(id, |shipment_id, order_id, tracking_number| {
        ShipmentDelivered {
            shipment_id,
            order_id,
            tracking_number,
        }
    });
    app.publish(delivered.clone()).await;
    app.publish(delivered).await;
    app.wait_status(id, "DELIVERED").await;
    eventually("every duplicate handled", || async {
        let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.processed_events")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
        handled == 8
    })
    .await;

    assert_eq!(app.sent::<AuthorizePayment>(id).await.len(), 1);
    assert_eq!(app.sent::<CommitReservation>(id).await.len(), 1);
    assert_eq!(app.sent::<CapturePayment>(id).await.len(), 1);
    assert_eq!(app.sent::<OrderConfirmed>(id).await.len(), 1);
    let transitions: Vec<_> = app
        .history(id)
        .await
        .into_iter()
        .map(|(_, to, _)| to)
        .collect();
    assert_eq!(
        transitions,
        [
            "PENDING",
            "AWAITING_PAYMENT",
            "CONFIRMED",
            "SHIPPED",
            "DELIVERED"
        ]
    );
}

#[tokio::test]
async fn a_confirmed_order_whose_commit_came_too_late_is_cancelled_and_its_payment_refunded() {
    let app = spawn_app().await;
    let token = app.customer();
    let (id, _) = awaiting_payment(&app, &token).await;
    app.publish(authorized(id, 9998)).await;
    app.wait_status(id, "CONFIRMED").await;

    // The inventory was down past the reservation's TTL: it answers the commit with
    // `expired` (the stock is free again; nothing to return).
    app.publish(StockExpired {
        order_id: id,
        lines: vec![],
    })
    .await;
    app.wait_status(id, "CANCELLED").await;

    assert_eq!(app.status(id).await.1.as_deref(), Some("TIMEOUT"));
    assert_eq!(app.sent::<VoidPayment>(id).await.len(), 1);
    assert!(app.sent::<ReleaseReservation>(id).await.is_empty());
    assert!(app.sent::<ReturnStock>(id).await.is_empty());
    assert_eq!(app.sent::<OrderCancelled>(id).await.len(), 1);
}

#[tokio::test]
async fn an_answer_about_an_unknown_order_is_dead_lettered_with_the_reason() {
    let app = spawn_app().await;
    let stranger = Uuid::now_v7();

    app.publish(StockReserved {
        order_id: stranger,
        lines: vec![],
        expires_at: Utc::now(),
    })
    .await;

    let reasons = app.dead_letter_reasons(1).await;
    assert!(
        reasons[0].contains(&format!("no order {stranger}")),
        "{reasons:?}"
    );
    assert_eq!(app.rows("outbox").await, 0);
}

#[tokio::test]
async fn answers_that_arrived_while_the_service_was_down_are_handled_before_any_deadline() {
    let mut app = spawn_app().await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 1)]).await);
    let answer = reserved(&app, id).await;

    // Down longer than the order's deadline, and the inventory answered meanwhile.
    app.stop().await;
    app.publish(answer).await;
    app.expire_deadline(id).await;
    app.start(|s| s.saga.deadline_check_every_ms = 10).await;

    app.wait_status(id, "AWAITING_PAYMENT").await;
    assert!(app.sent::<ReleaseReservation>(id).await.is_empty());
    // Caught up: deadlines are enforced again.
    let later = id_of(&app.placed(&token, &[(&kettle, 1)]).await);
    app.expire_deadline(later).await;
    app.wait_status(later, "CANCELLED").await;
    assert_eq!(app.status(id).await.0, "AWAITING_PAYMENT");
}
