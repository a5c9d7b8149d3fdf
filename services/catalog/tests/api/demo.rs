//! The demo catalog: loaded at start-up from `SHOP_DEMO__FILE`, idempotently.

use std::path::PathBuf;

use crate::helpers::{spawn_app, spawn_app_with};

fn demo_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/products.json")
}

#[tokio::test]
async fn the_demo_catalog_is_loaded_once_with_one_created_event_per_product() {
    let app = spawn_app_with(|s| s.demo.file = Some(demo_file())).await;
    let catalog = shop_catalog::demo::bundled().unwrap();

    let listed = app.walk("limit=100").await;
    assert_eq!(listed.len(), catalog.products.len());
    let categories = app.get_json("/api/v1/categories").await;
    assert_eq!(
        categories["items"].as_array().unwrap().len(),
        catalog.categories.len()
    );
    let events = app.outbox().await;
    assert_eq!(events.len(), catalog.products.len());
    assert!(
        events
            .iter()
            .all(|(kind, _)| kind == "catalog.product.created")
    );

    // A second start on the same database (a restart) seeds nothing again.
    let pool = sqlx::PgPool::connect(&app.db.service_url("catalog"))
        .await
        .unwrap();
    let outbox = app_outbox(&app).await;
    let seeded = shop_catalog::demo::seed(&pool, &outbox, &catalog)
        .await
        .unwrap();
    assert_eq!((seeded.categories, seeded.products), (0, 0));
    assert_eq!(app.outbox().await.len(), catalog.products.len());
    assert!(
        !app.skus("q=kettle").await.is_empty(),
        "the demo is searchable"
    );
}

#[tokio::test]
async fn two_instances_loading_the_demo_at_once_both_start_and_create_each_product_once() {
    let app = spawn_app().await;
    let catalog = shop_catalog::demo::bundled().unwrap();
    let url = app.db.service_url("catalog");
    let (first, second) = (
        sqlx::PgPool::connect(&url).await.unwrap(),
        sqlx::PgPool::connect(&url).await.unwrap(),
    );
    let (first_outbox, second_outbox) = (app_outbox(&app).await, app_outbox(&app).await);

    // As two catalog processes starting together do: one transaction each, at once.
    let (a, b) = tokio::join!(
        shop_catalog::demo::seed(&first, &first_outbox, &catalog),
        shop_catalog::demo::seed(&second, &second_outbox, &catalog),
    );

    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.products + b.products, catalog.products.len());
    assert_eq!(a.categories + b.categories, catalog.categories.len());
    assert_eq!(app.outbox().await.len(), catalog.products.len());
    assert_eq!(app.walk("limit=100").await.len(), catalog.products.len());
}

/// An outbox on the test's database and namespace, as the service has.
async fn app_outbox(app: &crate::helpers::TestApp) -> shop_events::Outbox {
    let pool = sqlx::PgPool::connect(&app.db.service_url("catalog"))
        .await
        .unwrap();
    let (outbox, _relay) = shop_events::outbox(
        pool,
        app.js.clone(),
        shop_events::Namespace::prefixed(app.prefix.clone()),
        "catalog",
        "catalog",
    );
    outbox
}
