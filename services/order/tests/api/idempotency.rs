//! Idempotent placement: a key names one order of one user; the same request again
//! gets that order, another request with the key is refused, and a burst of identical
//! requests creates one order.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_events::contracts::inventory::ReserveStock;

use crate::helpers::{eventually, id_of, order_body, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_same_key_and_request_return_the_same_order_without_asking_the_catalog_again() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let token = app.customer();
    let body = order_body(&[(&kettle, 2)]);

    let first = app.place(Some(&token), Some("retry-me"), &body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The same request, spelled differently: other spacing, the country in lower case.
    let mut again = body.clone();
    again["shipping_address"]["country"] = json!("gb");
    again["shipping_address"]["name"] = json!("  Ada Lovelace ");
    let second = app.place(Some(&token), Some("retry-me"), &again).await;

    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        second.headers()["location"].to_str().unwrap(),
        format!("/api/v1/orders/{}", id_of(&first))
    );
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["total"], first["total"]);
    assert_eq!(app.rows("orders").await, 1);
    assert_eq!(
        app.catalog.calls(),
        1,
        "a replay is answered without the catalog"
    );
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let token = app.customer();
    let first = app
        .placed_with_key(&token, "k-1", &order_body(&[(&kettle, 1)]))
        .await;
    let outbox_before = app.rows("outbox").await;

    let refused = problem(
        app.place(Some(&token), Some("k-1"), &order_body(&[(&kettle, 2)]))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(refused["type"], "urn:shop:problem:idempotency-key-reused");
    assert_eq!(app.rows("orders").await, 1);
    assert_eq!(app.rows("outbox").await, outbox_before);
    let order = app.order(id_of(&first), &token).await;
    assert_eq!(
        order["lines"][0]["quantity"], 1,
        "the first request's order stands"
    );
}

#[tokio::test]
async fn five_identical_placements_at_once_create_one_order_and_one_reserve_command() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let token = app.customer();
    let body = order_body(&[(&kettle, 1)]);

    let responses =
        futures::future::join_all((0..5).map(|_| app.place(Some(&token), Some("burst"), &body)))
            .await;

    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let order: Value = response.json().await.unwrap();
        ids.push(order["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same order: {ids:?}");
    assert_eq!(app.rows("orders").await, 1);
    assert_eq!(app.rows("idempotency_keys").await, 1);
    let id = ids[0].as_str().unwrap().parse().unwrap();
    assert_eq!(app.sent::<ReserveStock>(id).await.len(), 1);
}

#[tokio::test]
async fn keys_belong_to_their_user() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let (ada, bob) = (app.customer(), app.customer());
    let body = order_body(&[(&kettle, 1)]);

    let for_ada = app.placed_with_key(&ada, "my-key", &body).await;
    let for_bob = app.placed_with_key(&bob, "my-key", &body).await;

    assert_ne!(for_ada["id"], for_bob["id"]);
    assert_ne!(for_ada["user_id"], for_bob["user_id"]);
    assert_eq!(app.rows("orders").await, 2);
}

#[tokio::test]
async fn an_expired_key_is_purged_and_may_then_name_a_new_order() {
    let app = spawn_app_with(|s| {
        s.idempotency.key_ttl_secs = 1;
        s.idempotency.purge_every_secs = 1;
    })
    .await;
    let kettle = app.product(4999);
    let token = app.customer();
    let body = order_body(&[(&kettle, 1)]);
    let first = app.placed_with_key(&token, "short-lived", &body).await;

    eventually("the expired key purged", || async {
        app.rows("idempotency_keys").await == 0
    })
    .await;
    let second = app.placed_with_key(&token, "short-lived", &body).await;

    assert_ne!(second["id"], first["id"]);
    assert_eq!(app.rows("orders").await, 2);
}
