//! Reads: a shipment by id and the listing, for its owner and admins; nobody else
//! learns it exists. Bad parameters are 422 problems naming the field.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn a_shipment_reads_as_its_documented_shape() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order_id = app.confirm_order(customer.user_id).await;
    let id = app.shipment_of(order_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = app
        .get_as(&format!("/api/v1/shipments/{id}"), Some(&customer.token))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let shipment: Value = response.json().await.unwrap();
    let keys: HashSet<&str> = shipment
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "id",
        "order_id",
        "tracking_number",
        "status",
        "address",
        "created_at",
        "dispatched_at",
        "delivered_at",
        "cancelled_at",
        "history",
    ]
    .into();
    assert_eq!(keys, expected, "no user id, nothing internal");
    assert_eq!(shipment["order_id"], order_id.to_string());
    assert_eq!(shipment["status"], "CREATED");
    assert_eq!(
        shipment["address"],
        serde_json::json!({
            "name": "Ada Lovelace", "line1": "12 St James's Square", "line2": null,
            "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"
        })
    );
    assert_eq!(shipment["history"][0]["status"], "CREATED");
    assert_eq!(shipment["history"][0]["at"], shipment["created_at"]);
}

#[tokio::test]
async fn the_owner_and_an_admin_read_a_shipment_and_another_customer_finds_nothing() {
    let app = spawn_app().await;
    let owner = app.customer().await;
    let stranger = app.customer().await;
    let order_id = app.confirm_order(owner.user_id).await;
    let id = app.shipment_of(order_id).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_id = format!("/api/v1/shipments/{id}");
    let by_order = format!("?order_id={order_id}");

    for token in [&owner.token, &app.admin_token()] {
        let response = app.get_as(&by_id, Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = app.list_as(&by_order, token).await;
        assert_eq!(page["items"][0]["id"], id.as_str());
        assert!(page["next_cursor"].is_null());
    }

    let hidden = problem(
        app.get_as(&by_id, Some(&stranger.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let unknown_path = format!("/api/v1/shipments/{}", Uuid::now_v7());
    let unknown = problem(
        app.get_as(&unknown_path, Some(&stranger.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        hidden["detail"], unknown["detail"],
        "someone else's reads as no one's"
    );
    let page = app.list_as(&by_order, &stranger.token).await;
    assert_eq!(page["items"], serde_json::json!([]));
    assert!(
        app.list_as("", &stranger.token).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_customer_lists_only_their_own_shipments_and_an_admin_lists_everyones() {
    let app = spawn_app().await;
    let ada = app.customer().await;
    let bob = app.customer().await;
    let adas = [
        app.confirm_order(ada.user_id).await,
        app.confirm_order(ada.user_id).await,
    ];
    let bobs = app.confirm_order(bob.user_id).await;
    for order in adas.iter().chain([&bobs]) {
        app.wait_status(*order, "CREATED").await;
    }

    let orders = |page: Value| -> HashSet<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected: HashSet<String> = adas.iter().map(Uuid::to_string).collect();
    assert_eq!(orders(app.list_as("", &ada.token).await), expected);
    assert_eq!(
        orders(app.list_as("", &bob.token).await),
        [bobs.to_string()].into()
    );
    assert_eq!(orders(app.list_as("", &app.admin_token()).await).len(), 3);
}

#[tokio::test]
async fn the_listing_pages_through_a_customers_shipments_newest_first_each_once() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        let order = app.confirm_order(customer.user_id).await;
        app.wait_status(order, "CREATED").await;
        orders.push(order);
    }

    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = app.list_as(&query, &customer.token).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["created_at"]
                    .as_str()
                    .unwrap()
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap(),
                item["id"].as_str().unwrap().to_owned(),
                item["order_id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    let distinct: HashSet<_> = seen.iter().map(|s| s.2.clone()).collect();
    assert_eq!(
        distinct,
        orders.iter().map(Uuid::to_string).collect(),
        "each once"
    );
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    assert_eq!(seen, sorted, "newest first, ties by id");
}

#[tokio::test]
async fn bad_parameters_and_ids_are_422_problems_naming_the_field() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for (query, field, code) in [
        ("?order_id=ord_123", "order_id", "invalid_format"),
        ("?limit=0", "limit", "out_of_range"),
        ("?limit=101", "limit", "out_of_range"),
        ("?limit=ten", "limit", "invalid_type"),
        ("?cursor=not-a-cursor", "cursor", "invalid"),
        ("?status=CREATED", "status", "unknown_field"),
    ] {
        let response = app
            .get_as(&format!("/api/v1/shipments{query}"), Some(&customer.token))
            .await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["type"], "urn:shop:problem:validation", "{query}");
        assert_eq!(body["errors"][0]["field"], field, "{query}");
        assert_eq!(body["errors"][0]["code"], code, "{query}");
    }
    let response = app
        .get_as("/api/v1/shipments/42", Some(&customer.token))
        .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "id");
}

#[tokio::test]
async fn reads_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();

    for path in [
        "/api/v1/shipments".to_owned(),
        format!("/api/v1/shipments/{id}"),
    ] {
        problem(app.get_as(&path, None).await, StatusCode::UNAUTHORIZED).await;
        let expired = app.issuer.token(&[shop_auth::Role::Customer], -60);
        problem(
            app.get_as(&path, Some(&expired)).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
}
