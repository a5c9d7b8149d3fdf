//! The admin's steps: `CREATED -> DISPATCHED -> DELIVERED`, each once, in order, with
//! its event and its time.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use reqwest::StatusCode;
use shop_events::contracts::shipping::{ShipmentDelivered, ShipmentDispatched};
use uuid::Uuid;

use crate::helpers::{TestApp, problem, spawn_app};

fn time(value: &serde_json::Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// A new shipment's id (its order confirmed by a new customer).
async fn new_shipment(app: &TestApp) -> (Uuid, String) {
    let customer = app.customer().await;
    let order_id = app.confirm_order(customer.user_id).await;
    let id = app.shipment_of(order_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (order_id, id)
}

#[tokio::test]
async fn an_admin_dispatches_then_delivers_a_shipment_each_step_with_its_event_and_time() {
    let app = spawn_app().await;
    let (order_id, id) = new_shipment(&app).await;

    let dispatched = app.step(&id, "dispatch").await;
    assert_eq!(dispatched["status"], "DISPATCHED");
    assert!(dispatched["dispatched_at"].is_string());
    assert!(dispatched["delivered_at"].is_null());
    let delivered = app.step(&id, "deliver").await;

    assert_eq!(delivered["status"], "DELIVERED");
    assert_eq!(delivered["dispatched_at"], dispatched["dispatched_at"]);
    assert!(time(&delivered["delivered_at"]) >= time(&delivered["dispatched_at"]));
    assert!(time(&delivered["dispatched_at"]) >= time(&delivered["created_at"]));
    let history = delivered["history"].as_array().unwrap();
    let statuses: Vec<_> = history
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CREATED", "DISPATCHED", "DELIVERED"]);
    assert_eq!(history[0]["cause"], "order confirmed");
    assert!(history[1]["cause"].as_str().unwrap().starts_with("admin "));
    let tracking_number = delivered["tracking_number"].as_str().unwrap().to_owned();
    let expected = (id.parse().unwrap(), order_id, tracking_number);
    let dispatched_events = app.published::<ShipmentDispatched>().await;
    assert_eq!(dispatched_events.len(), 1);
    let d = &dispatched_events[0];
    assert_eq!(
        (d.shipment_id, d.order_id, d.tracking_number.clone()),
        expected
    );
    let delivered_events = app.published::<ShipmentDelivered>().await;
    assert_eq!(delivered_events.len(), 1);
    let d = &delivered_events[0];
    assert_eq!(
        (d.shipment_id, d.order_id, d.tracking_number.clone()),
        expected
    );
}

#[tokio::test]
async fn a_step_out_of_order_is_a_409_problem_and_changes_nothing() {
    let app = spawn_app().await;
    let (order_id, id) = new_shipment(&app).await;
    let admin = app.admin_token();
    let outbox_before = app.count("outbox").await;

    // Delivered before it was dispatched.
    let response = app
        .post_as(&format!("/api/v1/shipments/{id}/deliver"), Some(&admin))
        .await;
    let body = problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "urn:shop:problem:invalid-transition");
    assert_eq!(
        body["detail"],
        "the shipment is CREATED: it cannot be delivered now"
    );
    assert_eq!(app.status_of(order_id).await.as_deref(), Some("CREATED"));

    // Dispatched once delivered, or once cancelled.
    app.step(&id, "dispatch").await;
    app.step(&id, "deliver").await;
    let response = app
        .post_as(&format!("/api/v1/shipments/{id}/dispatch"), Some(&admin))
        .await;
    problem(response, StatusCode::CONFLICT).await;
    let (cancelled_order, cancelled) = new_shipment(&app).await;
    app.cancel_order(cancelled_order, "CANCELLED_BY_CUSTOMER")
        .await;
    app.wait_status(cancelled_order, "CANCELLED").await;
    for step in ["dispatch", "deliver"] {
        let path = format!("/api/v1/shipments/{cancelled}/{step}");
        problem(app.post_as(&path, Some(&admin)).await, StatusCode::CONFLICT).await;
    }

    assert_eq!(app.published::<ShipmentDispatched>().await.len(), 1);
    assert_eq!(app.published::<ShipmentDelivered>().await.len(), 1);
    // The second's created event, the two steps, one cancellation: nothing else.
    assert_eq!(app.count("outbox").await, outbox_before + 4);
    assert_eq!(app.count("shipment_history").await, 3 + 2);
}

#[tokio::test]
async fn repeating_a_step_answers_200_and_publishes_nothing_more() {
    let app = spawn_app().await;
    let (_, id) = new_shipment(&app).await;

    let first = app.step(&id, "dispatch").await;
    let again = app.step(&id, "dispatch").await;
    app.step(&id, "deliver").await;
    let delivered_again = app.step(&id, "deliver").await;

    assert_eq!(again, first, "the same shipment, unchanged");
    assert_eq!(delivered_again["status"], "DELIVERED");
    assert_eq!(app.published::<ShipmentDispatched>().await.len(), 1);
    assert_eq!(app.published::<ShipmentDelivered>().await.len(), 1);
    assert_eq!(delivered_again["history"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn five_identical_dispatches_at_once_dispatch_the_shipment_once() {
    let app = spawn_app().await;
    let (_, id) = new_shipment(&app).await;
    let admin = app.admin_token();
    let path = format!("/api/v1/shipments/{id}/dispatch");

    let responses = join_all((0..5).map(|_| app.post_as(&path, Some(&admin)))).await;

    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(app.published::<ShipmentDispatched>().await.len(), 1);
    assert_eq!(app.count("shipment_history").await, 2);
}

#[tokio::test]
async fn only_an_admin_may_step_a_shipment() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order_id = app.confirm_order(customer.user_id).await;
    let id = app.shipment_of(order_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for step in ["dispatch", "deliver"] {
        let path = format!("/api/v1/shipments/{id}/{step}");
        // Not even the owner.
        let body = problem(
            app.post_as(&path, Some(&customer.token)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(body["type"], "urn:shop:problem:forbidden");
        problem(app.post_as(&path, None).await, StatusCode::UNAUTHORIZED).await;
    }

    assert_eq!(app.status_of(order_id).await.as_deref(), Some("CREATED"));
    assert!(app.published::<ShipmentDispatched>().await.is_empty());
}

#[tokio::test]
async fn a_step_of_an_unknown_or_malformed_shipment_is_404_or_422() {
    let app = spawn_app().await;
    let admin = app.admin_token();

    let unknown = format!("/api/v1/shipments/{}/dispatch", Uuid::now_v7());
    problem(
        app.post_as(&unknown, Some(&admin)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let malformed = app
        .post_as("/api/v1/shipments/SHP123/deliver", Some(&admin))
        .await;
    let body = problem(malformed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "id");
    assert_eq!(body["errors"][0]["code"], "invalid_format");

    assert_eq!(app.count("outbox").await, 0);
    assert_eq!(app.count("shipment_history").await, 0);
}
