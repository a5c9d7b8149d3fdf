//! The availability projection, fed by the inventory's `stock.updated` events on NATS,
//! and the listing's `in_stock` filter it drives.

use crate::helpers::{product, spawn_app};

#[tokio::test]
async fn stock_updates_drive_the_in_stock_filter() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    app.create_product(product("KIT-KETTLE-01", "Kettle", "", 4999, "kitchen"))
        .await;
    app.create_product(product("KIT-PAN-01", "Pan", "", 3999, "kitchen"))
        .await;
    assert!(
        app.skus("in_stock=true").await.is_empty(),
        "nothing stocked yet"
    );

    app.publish_stock("KIT-KETTLE-01", 5, 1).await;
    app.wait_for_availability("KIT-KETTLE-01", (5, 1)).await;

    assert_eq!(app.skus("in_stock=true").await, ["KIT-KETTLE-01"]);
    assert_eq!(app.skus("in_stock=false").await, ["KIT-PAN-01"]);

    app.publish_stock("KIT-KETTLE-01", 0, 2).await;
    app.wait_for_availability("KIT-KETTLE-01", (0, 2)).await;
    assert!(app.skus("in_stock=true").await.is_empty(), "sold out");
}

#[tokio::test]
async fn an_older_stock_revision_arriving_late_is_ignored() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    app.create_product(product("KIT-KETTLE-01", "Kettle", "", 4999, "kitchen"))
        .await;

    app.publish_stock("KIT-KETTLE-01", 0, 7).await;
    app.wait_for_availability("KIT-KETTLE-01", (0, 7)).await;
    app.publish_stock("KIT-KETTLE-01", 9, 6).await;
    // A later, newer event proves the stale one was consumed before it.
    app.publish_stock("OTHER-SKU", 1, 1).await;
    app.wait_for_availability("OTHER-SKU", (1, 1)).await;

    assert_eq!(app.availability("KIT-KETTLE-01").await, Some((0, 7)));
    assert!(app.skus("in_stock=true").await.is_empty());
}
