//! Cacheable reads: ETags, 304s and Cache-Control.

use reqwest::{Method, StatusCode};

use crate::helpers::{product, spawn_app};

#[tokio::test]
async fn a_product_read_again_with_its_etag_is_not_modified() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    let kettle = app
        .create_product(product("KIT-KETTLE-01", "Kettle", "", 4999, "kitchen"))
        .await;
    let path = format!("/api/v1/products/{}", kettle["id"].as_str().unwrap());

    let first = app.get(&path).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["cache-control"], "public, max-age=30");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();

    let again = app
        .get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty(), "a 304 has no body");

    let changed = app
        .admin(Method::PUT, &path)
        .header("if-match", &etag)
        .json(&product("KIT-KETTLE-01", "Kettle", "", 3999, "kitchen"))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let after = app
        .get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the old ETag no longer matches"
    );
    assert_ne!(after.headers()["etag"], etag.as_str());
}

#[tokio::test]
async fn a_listing_has_an_etag_that_changes_with_its_content() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    app.create_product(product("KIT-KETTLE-01", "Kettle", "", 4999, "kitchen"))
        .await;

    let first = app.get("/api/v1/products?q=kettle").send().await.unwrap();
    assert_eq!(first.headers()["cache-control"], "public, max-age=30");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .get("/api/v1/products?q=kettle")
        .header("if-none-match", format!("\"other\", {etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    app.create_product(product(
        "KIT-KETTLE-02",
        "Travel kettle",
        "",
        2999,
        "kitchen",
    ))
    .await;
    let changed = app
        .get("/api/v1/products?q=kettle")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let body: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 2);

    let categories = app.get("/api/v1/categories").send().await.unwrap();
    let tag = categories.headers()["etag"].to_str().unwrap().to_owned();
    let cached = app
        .get("/api/v1/categories")
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
}
