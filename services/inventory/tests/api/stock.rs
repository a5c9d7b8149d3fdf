//! Stock records, availability, receipts, adjustments and the ledger over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_events::contracts::inventory::StockUpdated;

use crate::helpers::{eventually, problem, product, spawn_app};

#[tokio::test]
async fn a_product_created_in_the_catalog_gets_an_empty_stock_record_once() {
    let app = spawn_app().await;
    let created = product("TEE-BLK-M");
    app.publish(created.clone()).await;
    // The catalog announcing the same SKU again (a new event) changes nothing.
    app.publish(created).await;
    eventually("both announcements handled", || async {
        let handled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inventory.processed_events WHERE consumer = 'inventory-product-created'",
        )
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
        handled == 2
    })
    .await;

    let body: Value = app
        .get("/api/v1/inventory/TEE-BLK-M")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"sku": "TEE-BLK-M", "available": 0, "in_stock": false, "low_stock": true})
    );
    let updates = app.published::<StockUpdated>().await;
    assert_eq!(updates.len(), 1, "one record, one update");
    assert_eq!(updates[0].revision, 1);
    assert_eq!(updates[0].available, 0);
    let revision: i64 =
        sqlx::query_scalar("SELECT revision FROM inventory.stock WHERE sku = 'TEE-BLK-M'")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(revision, 1, "the repeated announcement changed nothing");
}

#[tokio::test]
async fn availability_of_an_unknown_sku_is_404_and_of_a_malformed_one_422() {
    let app = spawn_app().await;
    let unknown = problem(
        app.get("/api/v1/inventory/NOPE-1").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("NOPE-1"));

    let long = "X".repeat(65);
    for bad in ["-LEADING-DASH", "with%20space", long.as_str()] {
        let body = problem(
            app.get(&format!("/api/v1/inventory/{bad}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "sku", "{bad}");
    }
}

#[tokio::test]
async fn an_admin_receives_stock_and_the_ledger_records_it() {
    let app = spawn_app().await;
    app.stocked("MUG-01", 0).await;

    let stock = app.receive("MUG-01", 20).await;
    assert_eq!(stock["on_hand"], 20);
    assert_eq!(stock["available"], 20);
    assert_eq!(stock["low_stock"], false);
    assert_eq!(stock["revision"], 2);

    let body: Value = app
        .get("/api/v1/inventory/MUG-01")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"sku": "MUG-01", "available": 20, "in_stock": true, "low_stock": false})
    );
    let page: Value = app
        .get_as("/api/v1/inventory/MUG-01/movements", &app.admin_token())
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "receive");
    assert_eq!(items[0]["delta_on_hand"], 20);
    assert_eq!(items[0]["reason"], "delivery");
}

#[tokio::test]
async fn an_adjustment_may_lower_stock_but_never_below_what_is_reserved() {
    let app = spawn_app().await;
    app.stocked("CAP-01", 10).await;
    let order = app.reserve(&[("CAP-01", 4)], 600).await;
    app.wait_status(order, "reserved").await;
    let admin = app.admin_token();

    let down = app
        .post_as(
            "/api/v1/inventory/CAP-01/adjust",
            Some(&admin),
            &json!({"delta": -6, "reason": "six broken"}),
        )
        .await;
    assert_eq!(down.status(), StatusCode::OK);
    assert_eq!(app.counts("CAP-01").await, (4, 4, 0));

    let too_far = app
        .post_as(
            "/api/v1/inventory/CAP-01/adjust",
            Some(&admin),
            &json!({"delta": -1, "reason": "one more broken"}),
        )
        .await;
    let body = problem(too_far, StatusCode::CONFLICT).await;
    assert!(
        body["detail"].as_str().unwrap().contains("reserved"),
        "{body}"
    );
    assert_eq!(app.counts("CAP-01").await, (4, 4, 0), "nothing changed");
}

#[tokio::test]
async fn zero_negative_or_absurd_quantities_are_refused_with_422_and_change_nothing() {
    let app = spawn_app().await;
    app.stocked("SOCK-01", 5).await;
    let admin = app.admin_token();
    let bad_bodies = [
        (
            "receive",
            json!({"quantity": 0, "reason": "nothing"}),
            "quantity",
        ),
        (
            "receive",
            json!({"quantity": -3, "reason": "minus"}),
            "quantity",
        ),
        (
            "receive",
            json!({"quantity": 1_000_001, "reason": "a lot"}),
            "quantity",
        ),
        ("receive", json!({"quantity": 3, "reason": "  "}), "reason"),
        (
            "adjust",
            json!({"delta": 0, "reason": "no change"}),
            "delta",
        ),
        (
            "adjust",
            json!({"delta": -1_000_001, "reason": "a lot"}),
            "delta",
        ),
    ];
    for (route, body, field) in bad_bodies {
        let response = app
            .post_as(
                &format!("/api/v1/inventory/SOCK-01/{route}"),
                Some(&admin),
                &body,
            )
            .await;
        let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let unknown = app
        .post_as(
            "/api/v1/inventory/NOPE-1/receive",
            Some(&admin),
            &json!({"quantity": 1, "reason": "delivery"}),
        )
        .await;
    problem(unknown, StatusCode::NOT_FOUND).await;
    assert_eq!(app.counts("SOCK-01").await, (5, 0, 5), "nothing changed");
}

#[tokio::test]
async fn stock_changes_need_an_admin_token_that_is_valid() {
    let app = spawn_app().await;
    app.stocked("HAT-01", 5).await;
    let body = json!({"quantity": 1, "reason": "delivery"});
    let path = "/api/v1/inventory/HAT-01/receive";

    problem(
        app.post_as(path, None, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let expired = app.token(vec![shop_auth::Role::Admin], -3600);
    problem(
        app.post_as(path, Some(&expired), &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        app.post_as(path, Some("not-a-jwt"), &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let customer = app.customer_token();
    problem(
        app.post_as(path, Some(&customer), &body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get_as("/api/v1/inventory/HAT-01/movements", &customer)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(app.counts("HAT-01").await, (5, 0, 5), "nothing changed");
}

#[tokio::test]
async fn the_ledger_is_paged_by_key_oldest_first() {
    let app = spawn_app().await;
    app.stocked("PEN-01", 0).await;
    for quantity in 1..=5 {
        app.receive("PEN-01", quantity).await;
    }
    let admin = app.admin_token();

    let first: Value = app
        .get_as("/api/v1/inventory/PEN-01/movements?limit=3", &admin)
        .await
        .json()
        .await
        .unwrap();
    let deltas = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["delta_on_hand"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(deltas(&first), [1, 2, 3]);
    let after = first["next_after"].as_i64().expect("a next page");
    let second: Value = app
        .get_as(
            &format!("/api/v1/inventory/PEN-01/movements?limit=3&after={after}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deltas(&second), [4, 5]);
    assert!(second.get("next_after").is_none(), "the last page");

    let bad = app
        .get_as("/api/v1/inventory/PEN-01/movements?limit=0", &admin)
        .await;
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
}
