//! The catalog and the inventory, end to end on real processes: the demo catalog and
//! its stock served after start-up, and a product's life across both services (its
//! stock record from the catalog's event, the availability projection back in the
//! catalog, the low-stock alert in the user service's mail sink).

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shop_stack::Stack;

use crate::{http, post, stack, within};

const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, failing after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(PATIENCE, what, check).await
}

async fn get_json(client: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every product of a listing, following `next_cursor`.
async fn walk(client: &reqwest::Client, catalog: &str, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{catalog}/api/v1/products?limit=100&{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get_json(client, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

async fn admin_token(stack: &Stack, client: &reqwest::Client) -> String {
    let user = stack.base_url("user");
    let credentials = json!({"email": "admin@shop.local", "password": "admin-password-dev"});
    let pair: Value = post(client, format!("{user}/api/v1/auth/login"), &credentials)
        .await
        .json()
        .await
        .unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_demo_catalog_is_served_with_its_stock() {
    let stack = stack().await;
    let (catalog, inventory) = (stack.base_url("catalog"), stack.base_url("inventory"));
    let client = http();
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(stack.config().demo_file.as_ref().unwrap()).unwrap(),
    )
    .unwrap();
    let products = demo["products"].as_array().unwrap();
    assert!(products.len() >= 40);

    let listed = walk(&client, &catalog, "").await;
    assert_eq!(listed.len(), products.len(), "every demo product is listed");
    // Both catalog instances loaded the demo at once: each product was created, and
    // announced, once.
    let db = sqlx::PgPool::connect(&stack.pg_admin_url()).await.unwrap();
    let skus: Vec<&str> = products.iter().filter_map(|p| p["sku"].as_str()).collect();
    let announced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM catalog.outbox
         WHERE subject = 'catalog.product.created'
           AND convert_from(payload, 'UTF8')::jsonb #>> '{data,sku}' = ANY($1)",
    )
    .bind(&skus)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        announced,
        products.len() as i64,
        "one created event per product"
    );
    let found = walk(&client, &catalog, "q=kett").await;
    assert!(
        found.iter().any(|p| p["sku"] == "KIT-KETTLE-01"),
        "a prefix finds the kettle"
    );

    for product in products.iter().take(5) {
        let sku = product["sku"].as_str().unwrap();
        let (status, stock) =
            get_json(&client, &format!("{inventory}/api/v1/inventory/{sku}")).await;
        assert_eq!(status, StatusCode::OK, "{sku}");
        assert_eq!(stock["available"], product["stock"], "{sku}");
    }
    // The catalog learns the stock from the inventory's events, not from a call.
    let stocked = products
        .iter()
        .filter(|p| p["stock"].as_i64() > Some(0))
        .count();
    eventually("the availability projection to hold every demo SKU", || {
        let client = client.clone();
        let catalog = catalog.clone();
        async move {
            let in_stock = walk(&client, &catalog, "in_stock=true").await;
            (in_stock.len() == stocked).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn a_new_product_gets_stock_and_its_low_stock_alert_reaches_purchasing() {
    let stack = stack().await;
    let (catalog, inventory) = (stack.base_url("catalog"), stack.base_url("inventory"));
    let client = http();
    let token = admin_token(&stack, &client).await;
    let sku = format!("E2E-LAMP-{}", std::process::id());

    let created = client
        .post(format!("{catalog}/api/v1/products"))
        .bearer_auth(&token)
        .json(&json!({
            "sku": sku, "name": "E2E desk lamp", "description": "A lamp for the e2e test.",
            "price": {"amount": 2599, "currency": "EUR"}, "category": "home-office"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // The inventory made its record from catalog.product.created.
    let stock_url = format!("{inventory}/api/v1/inventory/{sku}");
    eventually("the stock record", || {
        let (client, url) = (client.clone(), stock_url.clone());
        async move { (get_json(&client, &url).await.0 == StatusCode::OK).then_some(()) }
    })
    .await;

    let receive = client
        .post(format!("{stock_url}/receive"))
        .bearer_auth(&token)
        .json(&json!({"quantity": 10, "reason": "first delivery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(receive.status(), StatusCode::OK);
    let listed_in_stock = |client: reqwest::Client, catalog: String, sku: String| async move {
        walk(&client, &catalog, "in_stock=true&q=lamp")
            .await
            .iter()
            .any(|p| p["sku"] == sku.as_str())
            .then_some(())
    };
    eventually("the catalog to list it in stock", || {
        listed_in_stock(client.clone(), catalog.clone(), sku.clone())
    })
    .await;

    // Down to 2, below the threshold of 5: purchasing is mailed, once.
    let adjust = client
        .post(format!("{stock_url}/adjust"))
        .bearer_auth(&token)
        .json(&json!({"delta": -8, "reason": "damaged in the warehouse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(adjust.status(), StatusCode::OK);
    let db = sqlx::PgPool::connect(&stack.pg_admin_url()).await.unwrap();
    let subject = format!("Low stock: {sku}");
    let mails: i64 = eventually("the low-stock mail", || {
        let (db, subject) = (db.clone(), subject.clone());
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM users.mail_sink WHERE to_address = 'purchasing@shop.local' AND subject = $1",
            )
            .bind(subject)
            .fetch_one(&db)
            .await
            .unwrap();
            (n > 0).then_some(n)
        }
    })
    .await;
    assert_eq!(mails, 1);
}
