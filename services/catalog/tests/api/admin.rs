//! Admin writes: who may write, optimistic concurrency, and one outbox event per write
//! in the write's own transaction.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shop_auth::Role;

use crate::helpers::{TestApp, problem, product, spawn_app};

async fn app_with_kettle() -> (TestApp, Value) {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    app.create_category("outdoor").await;
    let kettle = app
        .create_product(product(
            "KIT-KETTLE-01",
            "Kettle",
            "Boils water.",
            4999,
            "kitchen",
        ))
        .await;
    (app, kettle)
}

fn path(product: &Value) -> String {
    format!("/api/v1/products/{}", product["id"].as_str().unwrap())
}

fn update(version: Option<i64>) -> Value {
    let mut body = product(
        "KIT-KETTLE-01",
        "Kettle deluxe",
        "Boils water faster.",
        5999,
        "kitchen",
    );
    if let Some(version) = version {
        body["version"] = json!(version);
    }
    body
}

#[tokio::test]
async fn writes_need_an_admin_token() {
    let app = spawn_app().await;
    let body = json!({"slug": "kitchen", "name": "Kitchen"});

    let none = app
        .client
        .post(app.url("/api/v1/categories"))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(none, StatusCode::UNAUTHORIZED).await;
    let garbage = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth("garbage")
        .json(&product("KIT-A-01", "A", "", 1, "kitchen"))
        .send()
        .await
        .unwrap();
    problem(garbage, StatusCode::UNAUTHORIZED).await;
    let expired = app
        .client
        .post(app.url("/api/v1/categories"))
        .bearer_auth(app.token(&[Role::Admin], -120))
        .json(&body)
        .send()
        .await
        .unwrap();
    let expired = problem(expired, StatusCode::UNAUTHORIZED).await;
    assert!(expired["detail"].as_str().unwrap().contains("expired"));
    let customer = app
        .client
        .post(app.url("/api/v1/categories"))
        .bearer_auth(app.customer_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(customer, StatusCode::FORBIDDEN).await;

    assert!(
        app.get_json("/api/v1/categories").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_customer_cannot_create_update_or_deactivate_a_product() {
    let (app, kettle) = app_with_kettle().await;
    let customer = app.customer_token();

    let create = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&customer)
        .json(&product("KIT-PAN-01", "Pan", "", 100, "kitchen"))
        .send()
        .await
        .unwrap();
    problem(create, StatusCode::FORBIDDEN).await;
    let put = app
        .client
        .put(app.url(&path(&kettle)))
        .bearer_auth(&customer)
        .json(&update(Some(1)))
        .send()
        .await
        .unwrap();
    problem(put, StatusCode::FORBIDDEN).await;
    let deactivate = app
        .client
        .post(app.url(&format!("{}/deactivate", path(&kettle))))
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    problem(deactivate, StatusCode::FORBIDDEN).await;

    assert_eq!(app.get_json(&path(&kettle)).await, kettle, "unchanged");
    assert_eq!(
        app.outbox().await.len(),
        1,
        "only the creation was published"
    );
}

#[tokio::test]
async fn each_write_publishes_exactly_one_event_of_its_kind() {
    let (app, kettle) = app_with_kettle().await;
    let events = app.outbox().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "catalog.product.created");
    assert_eq!(events[0].1["product_id"], kettle["id"]);
    assert_eq!(
        events[0].1["price"],
        json!({"amount": 4999, "currency": "EUR"})
    );

    let updated = app
        .admin(Method::PUT, &path(&kettle))
        .json(&update(Some(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let events = app.outbox().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].0, "catalog.product.updated");
    assert_eq!(events[1].1["version"], 2);
    assert_eq!(events[1].1["price"]["amount"], 5999);

    let deactivated = app
        .admin(Method::POST, &format!("{}/deactivate", path(&kettle)))
        .send()
        .await
        .unwrap();
    assert_eq!(deactivated.status(), StatusCode::OK);
    let body: Value = deactivated.json().await.unwrap();
    assert_eq!(
        (body["active"].clone(), body["version"].clone()),
        (json!(false), json!(3))
    );
    let again = app
        .admin(Method::POST, &format!("{}/deactivate", path(&kettle)))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);

    let kinds: Vec<String> = app
        .outbox()
        .await
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "catalog.product.created",
            "catalog.product.updated",
            "catalog.product.deactivated"
        ],
        "deactivating twice publishes once"
    );
    assert!(
        app.skus("").await.is_empty(),
        "a deactivated product is not listed"
    );
    assert_eq!(
        app.get_json(&path(&kettle)).await["active"],
        false,
        "but still readable"
    );
}

#[tokio::test]
async fn a_duplicate_sku_is_a_conflict_and_publishes_nothing() {
    let (app, _) = app_with_kettle().await;

    let response = app
        .post_product(&product(
            "KIT-KETTLE-01",
            "Another kettle",
            "",
            100,
            "kitchen",
        ))
        .await;

    problem(response, StatusCode::CONFLICT).await;
    assert_eq!(app.outbox().await.len(), 1, "only the first creation");
    assert_eq!(app.skus("").await, ["KIT-KETTLE-01"]);
}

#[tokio::test]
async fn an_update_cannot_change_the_sku_and_changes_nothing() {
    let (app, kettle) = app_with_kettle().await;
    app.create_product(product("KIT-PAN-01", "Pan", "", 100, "kitchen"))
        .await;
    for other in ["KIT-PAN-01", "KIT-KETTLE-02"] {
        let mut body = update(Some(1));
        body["sku"] = json!(other);

        let response = app
            .admin(Method::PUT, &path(&kettle))
            .json(&body)
            .send()
            .await
            .unwrap();

        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"][0]["field"], "sku", "{other}");
        assert_eq!(body["errors"][0]["code"], "immutable", "{other}");
    }
    assert_eq!(app.get_json(&path(&kettle)).await, kettle);
    assert_eq!(app.outbox().await.len(), 2, "two creations, no update");
}

#[tokio::test]
async fn an_unknown_category_is_invalid() {
    let (app, kettle) = app_with_kettle().await;
    let mut body = update(Some(1));
    body["category"] = json!("garden");

    let response = app
        .admin(Method::PUT, &path(&kettle))
        .json(&body)
        .send()
        .await
        .unwrap();

    let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "category");
    assert_eq!(app.get_json(&path(&kettle)).await, kettle);
}

#[tokio::test]
async fn an_update_with_the_current_etag_succeeds_and_a_stale_one_is_refused() {
    let (app, kettle) = app_with_kettle().await;
    let read = app.get(&path(&kettle)).send().await.unwrap();
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}-v1\"", kettle["id"].as_str().unwrap()));

    let first = app
        .admin(Method::PUT, &path(&kettle))
        .header("if-match", &etag)
        .json(&update(None))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let new_etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(new_etag.ends_with("-v2\""), "{new_etag}");
    let after_first = app.get_json(&path(&kettle)).await;

    let mut second_body = update(None);
    second_body["name"] = json!("Lost update");
    let second = app
        .admin(Method::PUT, &path(&kettle))
        .header("if-match", &etag)
        .json(&second_body)
        .send()
        .await
        .unwrap();

    problem(second, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(app.get_json(&path(&kettle)).await, after_first, "unchanged");
    assert_eq!(
        app.outbox().await.len(),
        2,
        "no event for the refused update"
    );
}

#[tokio::test]
async fn an_update_with_a_stale_version_is_a_conflict() {
    let (app, kettle) = app_with_kettle().await;
    let ok = app
        .admin(Method::PUT, &path(&kettle))
        .json(&update(Some(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let current = app.get_json(&path(&kettle)).await;

    let stale = app
        .admin(Method::PUT, &path(&kettle))
        .json(&update(Some(1)))
        .send()
        .await
        .unwrap();

    let body = problem(stale, StatusCode::CONFLICT).await;
    assert!(
        body["detail"].as_str().unwrap().contains("version 2"),
        "{body}"
    );
    assert_eq!(app.get_json(&path(&kettle)).await, current);
}

#[tokio::test]
async fn an_update_without_if_match_or_version_is_refused_as_unconditional() {
    let (app, kettle) = app_with_kettle().await;

    let response = app
        .admin(Method::PUT, &path(&kettle))
        .json(&update(None))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::PRECONDITION_REQUIRED).await;
    let star = app
        .admin(Method::PUT, &path(&kettle))
        .header("if-match", "*")
        .json(&update(None))
        .send()
        .await
        .unwrap();
    problem(star, StatusCode::PRECONDITION_REQUIRED).await;

    assert_eq!(app.get_json(&path(&kettle)).await, kettle);
}

#[tokio::test]
async fn updating_or_deactivating_an_unknown_product_is_not_found() {
    let (app, _) = app_with_kettle().await;
    let unknown = "/api/v1/products/prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa";

    let put = app
        .admin(Method::PUT, unknown)
        .json(&update(Some(1)))
        .send()
        .await
        .unwrap();
    problem(put, StatusCode::NOT_FOUND).await;
    let deactivate = app
        .admin(Method::POST, &format!("{unknown}/deactivate"))
        .send()
        .await
        .unwrap();
    problem(deactivate, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_duplicate_category_is_a_conflict() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;

    let again = app
        .admin(Method::POST, "/api/v1/categories")
        .json(&json!({"slug": "kitchen", "name": "Kitchen"}))
        .send()
        .await
        .unwrap();

    problem(again, StatusCode::CONFLICT).await;
}
