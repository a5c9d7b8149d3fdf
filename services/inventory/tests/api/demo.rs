//! The demo stock: each demo SKU receives its units once, whichever of the catalog's
//! event and the seed comes first, and a restart never adds them again.

use std::path::PathBuf;

use shop_inventory::demo::{self, DemoStock};

use crate::helpers::{spawn_app, spawn_app_with};

fn demo_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../catalog/demo/products.json")
}

#[tokio::test]
async fn the_demo_file_gives_every_sku_its_stock_once() {
    let app = spawn_app_with(|s| s.demo.file = Some(demo_file())).await;
    let text = std::fs::read_to_string(demo_file()).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let products = file["products"].as_array().unwrap();
    assert!(products.len() >= 40);
    for p in products {
        let sku = p["sku"].as_str().unwrap();
        let stock = p["stock"].as_i64().unwrap();
        assert_eq!(app.counts(sku).await, (stock, 0, stock), "{sku}");
    }

    // A restart (the seed again, on the same database) receives nothing more.
    let pool = app.service_pool(2).await;
    let stocks: Vec<DemoStock> = products
        .iter()
        .map(|p| serde_json::from_value(p.clone()).unwrap())
        .collect();
    let seeded = demo::seed(&pool, &app.outbox(pool.clone()), &stocks, 5)
        .await
        .unwrap();
    assert_eq!(seeded, 0);
    let receipts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inventory.stock_movements WHERE reason = $1")
            .bind(demo::REASON)
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    let stocked = stocks.iter().filter(|s| s.stock > 0).count();
    assert_eq!(
        receipts as usize, stocked,
        "one demo receipt per stocked SKU"
    );
}

#[tokio::test]
async fn a_sku_the_catalog_announced_first_still_gets_its_demo_stock_and_sales_are_kept() {
    let app = spawn_app().await;
    app.stocked("DEMO-FIRST-01", 0).await;
    let pool = app.service_pool(2).await;
    let outbox = app.outbox(pool.clone());
    let stocks = [DemoStock {
        sku: "DEMO-FIRST-01".to_owned(),
        stock: 12,
    }];

    assert_eq!(demo::seed(&pool, &outbox, &stocks, 5).await.unwrap(), 1);
    assert_eq!(app.counts("DEMO-FIRST-01").await, (12, 0, 12));

    // Three sold (an adjustment here), then a restart: the seed does not top it up.
    let body = serde_json::json!({"delta": -3, "reason": "sold at the counter"});
    let response = app
        .post_as(
            "/api/v1/inventory/DEMO-FIRST-01/adjust",
            Some(&app.admin_token()),
            &body,
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(demo::seed(&pool, &outbox, &stocks, 5).await.unwrap(), 0);
    assert_eq!(app.counts("DEMO-FIRST-01").await, (9, 0, 9));
}
