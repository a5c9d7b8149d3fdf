//! Cancel requests: before shipping, with the compensation each state needs; too late
//! after it; idempotent; only by the owner or an admin.

use reqwest::StatusCode;
use serde_json::Value;
use shop_events::contracts::catalog::Money;
use shop_events::contracts::inventory::{
    ReleaseReservation, ReserveStock, ReturnStock, StockReserved,
};
use shop_events::contracts::orders::OrderCancelled;
use shop_events::contracts::payments::{PaymentAuthorized, VoidPayment};
use shop_events::contracts::shipping::ShipmentDispatched;
use uuid::Uuid;

use crate::helpers::{TestApp, id_of, problem, spawn_app};

async fn cancel(app: &TestApp, id: Uuid, token: &str) -> reqwest::Response {
    app.post_as(&format!("/api/v1/orders/{id}/cancel"), token)
        .await
}

/// An order placed by `token` and moved on to `CONFIRMED`.
async fn confirmed(app: &TestApp, token: &str) -> Uuid {
    let kettle = app.product(4999);
    let id = id_of(&app.placed(token, &[(&kettle, 1)]).await);
    let reserve = app.sent_at_least::<ReserveStock>(id, 1).await.remove(0);
    app.publish(StockReserved {
        order_id: id,
        lines: reserve.lines,
        expires_at: chrono::Utc::now() + chrono::Duration::seconds(60),
    })
    .await;
    app.wait_status(id, "AWAITING_PAYMENT").await;
    app.publish(PaymentAuthorized {
        payment_id: Uuid::now_v7(),
        order_id: id,
        amount: Money {
            amount: 4999,
            currency: "EUR".to_owned(),
        },
    })
    .await;
    app.wait_status(id, "CONFIRMED").await;
    id
}

#[tokio::test]
async fn a_customer_cancels_a_pending_order_and_its_stock_and_payment_are_released() {
    let app = spawn_app().await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 1)]).await);

    let response = cancel(&app, id, &token).await;

    assert_eq!(response.status(), StatusCode::OK);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancel_reason"], "CANCELLED_BY_CUSTOMER");
    assert_eq!(order["history"][1]["cause"], "cancel-request");
    assert_eq!(order["history"][1]["detail"], "cancelled by the customer");
    assert_eq!(
        app.subjects_sent(id).await[2..],
        [
            "inventory.reservation.release",
            "payments.payment.void",
            "orders.order.cancelled",
        ]
    );
    assert_eq!(
        app.sent::<OrderCancelled>(id).await[0].reason,
        "CANCELLED_BY_CUSTOMER"
    );
}

#[tokio::test]
async fn cancelling_a_confirmed_order_returns_its_committed_stock_and_refunds_the_payment() {
    let app = spawn_app().await;
    let token = app.customer();
    let id = confirmed(&app, &token).await;

    let response = cancel(&app, id, &token).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.status(id).await.1.as_deref(),
        Some("CANCELLED_BY_CUSTOMER")
    );
    assert_eq!(app.sent::<ReturnStock>(id).await.len(), 1);
    assert_eq!(app.sent::<VoidPayment>(id).await.len(), 1);
    assert!(
        app.sent::<ReleaseReservation>(id).await.is_empty(),
        "committed stock is returned, not released"
    );
    assert_eq!(app.sent::<OrderCancelled>(id).await.len(), 1);
}

#[tokio::test]
async fn cancelling_a_cancelled_order_again_answers_the_same_and_sends_nothing_more() {
    let app = spawn_app().await;
    let token = app.customer();
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&token, &[(&kettle, 1)]).await);
    assert_eq!(cancel(&app, id, &token).await.status(), StatusCode::OK);
    let sent = app.rows("outbox").await;
    let history = app.rows("order_history").await;

    let again = cancel(&app, id, &token).await;

    assert_eq!(again.status(), StatusCode::OK);
    let order: Value = again.json().await.unwrap();
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(app.rows("outbox").await, sent);
    assert_eq!(app.rows("order_history").await, history);
}

#[tokio::test]
async fn a_shipped_order_can_no_longer_be_cancelled() {
    let app = spawn_app().await;
    let token = app.customer();
    let id = confirmed(&app, &token).await;
    app.publish(ShipmentDispatched {
        shipment_id: Uuid::now_v7(),
        order_id: id,
        tracking_number: "TRK-1".to_owned(),
    })
    .await;
    app.wait_status(id, "SHIPPED").await;
    let sent = app.rows("outbox").await;

    let refused = problem(cancel(&app, id, &token).await, StatusCode::CONFLICT).await;

    assert!(
        refused["detail"].as_str().unwrap().contains("SHIPPED"),
        "{refused}"
    );
    assert_eq!(app.status(id).await.0, "SHIPPED");
    assert_eq!(app.rows("outbox").await, sent);
}

#[tokio::test]
async fn someone_elses_order_is_not_found_but_an_admin_sees_and_cancels_any() {
    let app = spawn_app().await;
    let (owner, stranger, admin) = (app.customer(), app.customer(), app.admin());
    let kettle = app.product(4999);
    let id = id_of(&app.placed(&owner, &[(&kettle, 1)]).await);
    let unknown = Uuid::now_v7();

    let hidden = problem(
        app.get_as(&format!("/api/v1/orders/{id}"), &stranger).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let missing = problem(
        app.get_as(&format!("/api/v1/orders/{unknown}"), &stranger)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        hidden["detail"], missing["detail"],
        "the same answer: existence is not revealed"
    );
    problem(cancel(&app, id, &stranger).await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.status(id).await.0, "PENDING");
    problem(
        app.get_as("/api/v1/orders/not-a-uuid", &owner).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.client
            .get(app.url(&format!("/api/v1/orders/{id}")))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert_eq!(app.order(id, &admin).await["status"], "PENDING");
    let response = cancel(&app, id, &admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["cancel_reason"], "CANCELLED_BY_CUSTOMER");
    assert!(
        order["history"][1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("cancelled by admin "),
        "{order}"
    );
}
