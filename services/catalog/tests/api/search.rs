//! The listing: full-text search, filters, sorts and cursor pagination.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, error_fields, problem, product, skus_of, spawn_app};

/// Three kitchen products and two outdoor ones, created in this order.
async fn stocked_app() -> TestApp {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    app.create_category("outdoor").await;
    for body in [
        product(
            "KIT-KETTLE-01",
            "Stainless steel kettle",
            "Boils a litre in three minutes.",
            4999,
            "kitchen",
        ),
        product(
            "KIT-STOVE-01",
            "Gas hob",
            "Pairs well with any kettle.",
            12900,
            "kitchen",
        ),
        product(
            "KIT-PAN-01",
            "Cast iron pan",
            "Sears and bakes.",
            3999,
            "kitchen",
        ),
        product(
            "OUT-TENT-01",
            "Dome tent",
            "Two people, three seasons.",
            14900,
            "outdoor",
        ),
        product(
            "OUT-BOTTLE-01",
            "Steel bottle",
            "Keeps drinks cold.",
            2499,
            "outdoor",
        ),
    ] {
        app.create_product(body).await;
    }
    app
}

#[tokio::test]
async fn a_name_match_ranks_above_a_description_match() {
    let app = stocked_app().await;

    let skus = app.skus("q=kettle").await;

    assert_eq!(skus, ["KIT-KETTLE-01", "KIT-STOVE-01"]);
}

#[tokio::test]
async fn a_word_prefix_finds_the_whole_word() {
    let app = stocked_app().await;

    assert_eq!(app.skus("q=kett").await, ["KIT-KETTLE-01", "KIT-STOVE-01"]);
    assert_eq!(app.skus("q=STAINL%20ket").await, ["KIT-KETTLE-01"]);
    assert!(app.skus("q=teapot").await.is_empty());
}

#[tokio::test]
async fn tsquery_syntax_in_the_search_is_taken_as_plain_words() {
    let app = stocked_app().await;

    for q in [
        "kettle%20%7C%20tent",
        "kett%3A*%20%26%20!",
        "(kettle",
        "kettle'",
    ] {
        let response = app
            .get(&format!("/api/v1/products?q={q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "q={q}");
    }
    // `|` is not "or": both words must match, and none does both.
    assert!(app.skus("q=kettle%20%7C%20tent").await.is_empty());
    let body = problem(
        app.get("/api/v1/products?q=%26%7C!").send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), ["q"]);
}

#[tokio::test]
async fn filters_narrow_the_listing() {
    let app = stocked_app().await;

    let mut kitchen = app.skus("category=kitchen").await;
    kitchen.sort();
    assert_eq!(kitchen, ["KIT-KETTLE-01", "KIT-PAN-01", "KIT-STOVE-01"]);
    assert_eq!(
        app.skus("min_price=3000&max_price=5000&sort=price_asc")
            .await,
        ["KIT-PAN-01", "KIT-KETTLE-01"]
    );
    assert_eq!(
        app.skus("q=steel&category=outdoor").await,
        ["OUT-BOTTLE-01"]
    );
    assert!(app.skus("category=garden").await.is_empty());
}

#[tokio::test]
async fn sorts_order_by_price_or_newest_first() {
    let app = stocked_app().await;

    assert_eq!(
        app.skus("sort=price_asc").await,
        [
            "OUT-BOTTLE-01",
            "KIT-PAN-01",
            "KIT-KETTLE-01",
            "KIT-STOVE-01",
            "OUT-TENT-01"
        ]
    );
    assert_eq!(
        app.skus("sort=price_desc").await,
        [
            "OUT-TENT-01",
            "KIT-STOVE-01",
            "KIT-KETTLE-01",
            "KIT-PAN-01",
            "OUT-BOTTLE-01"
        ]
    );
    let newest = [
        "OUT-BOTTLE-01",
        "OUT-TENT-01",
        "KIT-PAN-01",
        "KIT-STOVE-01",
        "KIT-KETTLE-01",
    ];
    assert_eq!(app.skus("sort=newest").await, newest);
    assert_eq!(
        app.skus("").await,
        newest,
        "newest is the default without q"
    );
}

#[tokio::test]
async fn pagination_visits_every_product_exactly_once_even_when_prices_tie() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    // 23 products over three prices: most pages end inside a run of equal prices.
    for i in 0..23 {
        let amount = [1000, 2000, 3000][i % 3];
        app.create_product(product(
            &format!("SKU-{i:02}"),
            &format!("Mug {i}"),
            "A mug.",
            amount,
            "kitchen",
        ))
        .await;
    }

    for query in [
        "limit=4&sort=price_asc",
        "limit=4&sort=price_desc",
        "limit=5&sort=newest",
        "limit=3&q=mug",
    ] {
        let items = app.walk(query).await;
        let skus = skus_of(&items);
        let unique: HashSet<&String> = skus.iter().collect();
        assert_eq!(skus.len(), 23, "{query}: {skus:?}");
        assert_eq!(unique.len(), 23, "{query}: a product was listed twice");
        if query.contains("price_asc") {
            let prices: Vec<i64> = items
                .iter()
                .map(|p| p["price"]["amount"].as_i64().unwrap())
                .collect();
            assert!(prices.is_sorted(), "{query}: {prices:?}");
        }
    }
}

#[tokio::test]
async fn a_cursor_from_another_sort_or_a_forged_one_is_refused() {
    let app = stocked_app().await;
    let page = app
        .get_json("/api/v1/products?sort=price_asc&limit=2")
        .await;
    let cursor = page["next_cursor"].as_str().unwrap();

    for path in [
        format!("/api/v1/products?sort=newest&limit=2&cursor={cursor}"),
        "/api/v1/products?cursor=bm90IGEgY3Vyc29y".to_owned(),
        "/api/v1/products?cursor=%25%25%25".to_owned(),
    ] {
        let body = problem(
            app.get(&path).send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&body), ["cursor"], "{path}");
    }
}

#[tokio::test]
async fn bad_listing_parameters_are_refused_by_name() {
    let app = spawn_app().await;

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("sort=cheapest", "sort"),
        ("sort=relevance", "sort"),
        ("min_price=-1", "min_price"),
        ("min_price=500&max_price=100", "max_price"),
        ("in_stock=maybe", "in_stock"),
        ("colour=red", "colour"),
    ] {
        let response = app
            .get(&format!("/api/v1/products?{query}"))
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&body), [field], "{query}");
    }
}

#[tokio::test]
async fn the_default_page_holds_twenty_and_says_where_the_next_begins() {
    let app = spawn_app().await;
    app.create_category("kitchen").await;
    for i in 0..21 {
        app.create_product(product(&format!("SKU-{i:02}"), "Mug", "", 1000, "kitchen"))
            .await;
    }

    let page: Value = app.get_json("/api/v1/products").await;

    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get_json(&format!("/api/v1/products?cursor={next}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
}
