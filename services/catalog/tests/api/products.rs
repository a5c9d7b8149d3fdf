//! Creating and reading products, bad input, and the lookup for other services.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_fields, problem, product, spawn_app};

#[tokio::test]
async fn a_created_product_is_readable_at_its_location() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;

    let response = app
        .post_product(&product(
            "KIT-KETTLE-01",
            "Kettle",
            "Boils water.",
            4999,
            "kitchen",
        ))
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("prod_") && id.len() == 37, "{id}");
    assert_eq!(location, format!("/api/v1/products/{id}"));
    assert_eq!(created["version"], 1);
    assert_eq!(created["active"], true);
    assert_eq!(created["price"], json!({"amount": 4999, "currency": "EUR"}));

    let read = app.get_json(&location).await;
    assert_eq!(read, created);
}

#[tokio::test]
async fn an_unknown_product_is_not_found_and_a_malformed_id_is_invalid() {
    let app = spawn_app().await;

    let unknown = app
        .get("/api/v1/products/prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa")
        .send()
        .await
        .unwrap();
    problem(unknown, StatusCode::NOT_FOUND).await;

    for bad in ["nope", "prod_XYZ", "prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaa"] {
        let response = app
            .get(&format!("/api/v1/products/{bad}"))
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&body), ["id"]);
    }
}

#[tokio::test]
async fn bad_products_are_refused_with_the_field_and_change_nothing() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    let valid = product("KIT-OK-01", "Kettle", "Boils water.", 4999, "kitchen");
    let with = |pointer: &str, value: Value| {
        let mut body = valid.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (with("/price/amount", json!(0)), "price.amount"),
        (with("/price/amount", json!(-5)), "price.amount"),
        (with("/price/amount", json!(1_000_000_001)), "price.amount"),
        (with("/price/amount", json!(1e30)), "price.amount"),
        (with("/price/amount", json!(49.99)), "price.amount"),
        (with("/price", json!({"amount": 100})), "price.currency"),
        (with("/price/currency", json!("eur")), "price.currency"),
        (with("/price/currency", json!("EURO")), "price.currency"),
        (with("/name", json!("  ")), "name"),
        (with("/name", json!("n".repeat(201))), "name"),
        (with("/sku", json!("")), "sku"),
        (with("/sku", json!("lower-case")), "sku"),
        (with("/sku", json!("A".repeat(41))), "sku"),
        (with("/category", json!("Not A Slug")), "category"),
        (with("/category", json!("garden")), "category"),
        (
            json!({"sku": "KIT-OK-01", "name": "Kettle", "price": {"amount": 1, "currency": "EUR"}, "category": "kitchen", "admin": true}),
            "admin",
        ),
    ];

    for (body, field) in cases {
        let response = app.post_product(&body).await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }

    assert!(
        app.walk("limit=100").await.is_empty(),
        "nothing was created"
    );
    assert!(app.outbox().await.is_empty(), "nothing was published");
}

#[tokio::test]
async fn the_lookup_returns_current_prices_and_the_ids_it_does_not_know() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    let kettle = app
        .create_product(product("KIT-KETTLE-01", "Kettle", "", 4999, "kitchen"))
        .await;
    let pan = app
        .create_product(product("KIT-PAN-01", "Pan", "", 3999, "kitchen"))
        .await;
    let deactivated = app
        .admin(
            reqwest::Method::POST,
            &format!(
                "/api/v1/products/{}/deactivate",
                pan["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deactivated.status(), StatusCode::OK);
    let unknown = "prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa";

    let response = app
        .client
        .post(app.url("/api/v1/internal/products/lookup"))
        .json(&json!({"ids": [kettle["id"], pan["id"], unknown, kettle["id"]]}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    let find = |id: &Value| items.iter().find(|i| i["id"] == *id).unwrap().clone();
    assert_eq!(
        find(&kettle["id"])["price"],
        json!({"amount": 4999, "currency": "EUR"})
    );
    assert_eq!(find(&kettle["id"])["active"], true);
    assert_eq!(find(&kettle["id"])["sku"], "KIT-KETTLE-01");
    assert_eq!(find(&pan["id"])["active"], false);
    assert_eq!(body["not_found"], json!([unknown]));
}

#[tokio::test]
async fn a_lookup_of_no_ids_too_many_or_malformed_ones_is_refused() {
    let app = spawn_app().await;
    let lookup = |ids: Value| {
        app.client
            .post(app.url("/api/v1/internal/products/lookup"))
            .json(&json!({"ids": ids}))
            .send()
    };
    let many: Vec<String> = (0..101)
        .map(|i| format!("prod_0193aaaaaaaa7aaa8aaaaaaaaaaa{i:04}"))
        .collect();

    let body = problem(
        lookup(json!([])).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), ["ids"]);
    let body = problem(
        lookup(json!(many)).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), ["ids"]);
    let body = problem(
        lookup(json!(["prod_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa", "x"]))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), ["ids[1]"]);
}

#[tokio::test]
async fn categories_are_listed_by_slug() {
    let app = spawn_app().await;
    app.create_category("outdoor").await;
    app.create_category("kitchen").await;

    let body = app.get_json("/api/v1/categories").await;

    assert_eq!(
        body["items"],
        json!([{"slug": "kitchen", "name": "KITCHEN"}, {"slug": "outdoor", "name": "OUTDOOR"}])
    );
}
