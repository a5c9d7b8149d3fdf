//! The HTTP API: one record in two versions' shapes, v1's deprecation headers, who
//! may see what, and bad ids.

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, User, problem, spawn_app};

const DEPRECATION: &str = "@1796083200";
const SUNSET: &str = "Tue, 01 Jun 2027 00:00:00 GMT";

/// An authorized payment of `owner`'s: (order id, payment id).
async fn authorized(app: &TestApp, owner: &User) -> (Uuid, Uuid) {
    let order = app.authorize("tok_visa", Some(owner)).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;
    (order, payment.id)
}

fn v2_id(id: Uuid) -> String {
    format!("pay_{}", id.simple())
}

/// How many payments of the order v2 lists for `user`.
async fn listed(app: &TestApp, order: Uuid, user: &User) -> usize {
    let path = format!("/api/v2/payments?order_id={order}");
    let body: Value = app.get_as(&path, user).await.json().await.unwrap();
    body["items"].as_array().unwrap().len()
}

fn links(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn v1_and_v2_return_the_same_payment_each_in_its_own_shape() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let (order, id) = authorized(&app, &owner).await;

    let v1: Value = app
        .get_as(&format!("/api/v1/payments/{id}"), &owner)
        .await
        .json()
        .await
        .unwrap();
    let v2: Value = app
        .get_as(&format!("/api/v2/payments/{}", v2_id(id)), &owner)
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(v1["id"], id.to_string());
    assert_eq!(v1["order_id"], order.to_string());
    assert_eq!(v1["status"], "AUTHORIZED");
    assert_eq!(v1["amount"], 1299);
    assert_eq!(v1["currency"], "EUR");
    assert!(v1.get("state").is_none());

    assert_eq!(v2["id"], v2_id(id));
    assert_eq!(v2["order_id"], order.to_string());
    assert_eq!(v2["state"], "authorized");
    assert_eq!(
        v2["amount"],
        serde_json::json!({"value": 1299, "currency": "EUR"})
    );
    assert!(v2.get("status").is_none() && v2.get("currency").is_none());
    assert!(v2["authorized_at"].is_string());
    assert_eq!(v1["created_at"], v2["created_at"], "one record");
}

#[tokio::test]
async fn each_version_lists_an_orders_payments_in_its_own_shape() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let (order, id) = authorized(&app, &owner).await;

    let v1: Value = app
        .get_as(&format!("/api/v1/payments?order_id={order}"), &owner)
        .await
        .json()
        .await
        .unwrap();
    let v2: Value = app
        .get_as(&format!("/api/v2/payments?order_id={order}"), &owner)
        .await
        .json()
        .await
        .unwrap();

    let v1 = v1.as_array().expect("v1 lists as a bare array");
    assert_eq!(v1.len(), 1);
    assert_eq!(v1[0]["id"], id.to_string());
    let items = v2["items"].as_array().expect("v2 lists as {items}");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], v2_id(id));
}

#[tokio::test]
async fn every_v1_answer_is_marked_deprecated_with_its_sunset_and_the_guide() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let (order, id) = authorized(&app, &owner).await;

    for path in [
        format!("/api/v1/payments/{id}"),
        format!("/api/v1/payments?order_id={order}"),
        format!("/api/v1/payments/{}", Uuid::now_v7()),
        "/api/v1/payments/not-an-id".to_owned(),
    ] {
        let response = app.get_as(&path, &owner).await;
        assert_eq!(response.headers()["deprecation"], DEPRECATION, "{path}");
        assert_eq!(response.headers()["sunset"], SUNSET, "{path}");
        let links = links(&response);
        assert!(
            links
                .iter()
                .any(|l| l.starts_with("</docs/payments-v1-to-v2.md>")
                    && l.contains("rel=\"deprecation\"")),
            "{path}: {links:?}"
        );
    }
    let one = app.get_as(&format!("/api/v1/payments/{id}"), &owner).await;
    let successor = format!(
        "</api/v2/payments/{}>; rel=\"successor-version\"",
        v2_id(id)
    );
    assert!(links(&one).contains(&successor), "{:?}", links(&one));

    let v2 = app
        .get_as(&format!("/api/v2/payments/{}", v2_id(id)), &owner)
        .await;
    assert_eq!(v2.status(), StatusCode::OK);
    assert!(v2.headers().get("deprecation").is_none());
    assert!(v2.headers().get("sunset").is_none());
}

#[tokio::test]
async fn the_owner_and_an_admin_see_a_payment_and_anyone_else_gets_404_and_an_empty_list() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let stranger = app.customer().await;
    let admin = app.admin().await;
    let (order, id) = authorized(&app, &owner).await;
    let one = [
        format!("/api/v1/payments/{id}"),
        format!("/api/v2/payments/{}", v2_id(id)),
    ];

    for path in &one {
        assert_eq!(app.get_as(path, &owner).await.status(), StatusCode::OK);
        assert_eq!(app.get_as(path, &admin).await.status(), StatusCode::OK);
        let refused = problem(app.get_as(path, &stranger).await, StatusCode::NOT_FOUND).await;
        assert_eq!(refused["type"], "urn:shop:problem:not-found");
    }
    assert_eq!(listed(&app, order, &owner).await, 1);
    assert_eq!(listed(&app, order, &admin).await, 1);
    assert_eq!(listed(&app, order, &stranger).await, 0);
    let v1: Value = app
        .get_as(&format!("/api/v1/payments?order_id={order}"), &stranger)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1, serde_json::json!([]));
}

#[tokio::test]
async fn without_a_token_both_versions_answer_401() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    for path in [
        format!("/api/v1/payments/{id}"),
        format!("/api/v2/payments/{}", v2_id(id)),
        format!("/api/v2/payments?order_id={id}"),
    ] {
        problem(app.get(&path).await, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn a_malformed_id_is_422_naming_the_id_and_an_unknown_one_404() {
    let app = spawn_app().await;
    let user = app.customer().await;
    let id = Uuid::now_v7();
    let malformed = [
        format!("/api/v1/payments/{}", v2_id(id)),
        format!("/api/v1/payments/{}", id.simple()),
        "/api/v1/payments/42".to_owned(),
        format!("/api/v2/payments/{id}"),
        format!(
            "/api/v2/payments/pay_{}",
            id.simple().to_string().to_uppercase()
        ),
        "/api/v2/payments/pay_42".to_owned(),
    ];
    for path in &malformed {
        let body = problem(
            app.get_as(path, &user).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "id", "{path}");
        assert_eq!(body["errors"][0]["code"], "invalid_format", "{path}");
    }
    for path in [
        format!("/api/v1/payments/{id}"),
        format!("/api/v2/payments/{}", v2_id(id)),
    ] {
        problem(app.get_as(&path, &user).await, StatusCode::NOT_FOUND).await;
    }
    for path in [
        "/api/v2/payments".to_owned(),
        "/api/v2/payments?order_id=42".to_owned(),
        "/api/v1/payments?order_id=42".to_owned(),
        format!("/api/v2/payments?order_id={id}&user_id={id}"),
    ] {
        let body = problem(
            app.get_as(&path, &user).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["type"], "urn:shop:problem:validation", "{path}");
    }
}

#[tokio::test]
async fn a_void_that_came_first_is_no_payment_the_api_shows_until_its_authorize_arrives() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let admin = app.admin().await;
    let order = Uuid::now_v7();
    app.void(order).await;
    app.wait_status(order, "VOIDED").await;
    let list = format!("/api/v2/payments?order_id={order}");

    let before: Value = app.get_as(&list, &admin).await.json().await.unwrap();
    app.publish(crate::helpers::authorize_command(
        order, owner.id, "tok_visa",
    ))
    .await;
    app.answers_at_least(order, 2).await;
    let after: Value = app.get_as(&list, &owner).await.json().await.unwrap();

    assert_eq!(before["items"], serde_json::json!([]));
    assert_eq!(after["items"][0]["state"], "voided");
    assert_eq!(after["items"][0]["decline_reason"], "voided");
}

#[tokio::test]
async fn the_openapi_document_has_both_versions_and_marks_v1_deprecated() {
    let app = spawn_app().await;

    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    let paths = &doc["paths"];
    for path in ["/api/v1/payments/{id}", "/api/v1/payments"] {
        assert_eq!(paths[path]["get"]["deprecated"], true, "{path}");
    }
    for path in ["/api/v2/payments/{id}", "/api/v2/payments"] {
        assert!(paths[path]["get"].is_object(), "{path}");
        assert_ne!(paths[path]["get"]["deprecated"], true, "{path}");
    }
}
