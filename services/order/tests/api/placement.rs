//! Placing an order: validation, pricing by the catalog (one lookup), what one
//! transaction stores and sends, and what happens when the catalog cannot answer.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use shop_events::contracts::inventory::ReserveStock;
use shop_events::contracts::orders::OrderPlaced;

use crate::helpers::{
    CatalogStub, Mode, field_errors, id_of, order_body, problem, spawn_app, spawn_app_against,
    spawn_app_with,
};

#[tokio::test]
async fn a_placement_is_accepted_pending_at_the_catalog_prices_with_its_first_step_sent() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let mug = app.product(650);
    let token = app.customer();

    let response = app
        .place(
            Some(&token),
            Some("key-1"),
            &order_body(&[(&kettle, 2), (&mug, 3)]),
        )
        .await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: serde_json::Value = response.json().await.unwrap();
    let id = id_of(&order);
    assert_eq!(location, format!("/api/v1/orders/{id}"));
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["cancel_reason"], json!(null));
    assert_eq!(order["lines"][0]["product_id"], kettle.as_str());
    assert_eq!(order["lines"][0]["sku"], app.catalog.sku(&kettle).as_str());
    assert_eq!(
        order["lines"][0]["unit_price"],
        json!({"amount": 4999, "currency": "EUR"})
    );
    assert_eq!(order["lines"][0]["line_total"]["amount"], 9998);
    assert_eq!(
        order["total"],
        json!({"amount": 9998 + 1950, "currency": "EUR"})
    );
    assert_eq!(order["shipping_address"]["country"], "GB");
    assert!(
        order["deadline_at"].is_string(),
        "a pending order has a deadline"
    );
    assert_eq!(order["history"][0]["to"], "PENDING");
    assert_eq!(order["history"][0]["cause"], "placement");
    assert!(
        order.get("card_token").is_none(),
        "the token is never shown"
    );

    assert_eq!(
        app.catalog.lookups(),
        [vec![kettle.clone(), mug.clone()]],
        "one lookup for every line"
    );
    assert_eq!(app.rows("orders").await, 1);
    assert_eq!(app.rows("order_lines").await, 2);
    assert_eq!(
        app.subjects_sent(id).await,
        ["orders.order.placed", "inventory.reservation.reserve"]
    );
    let placed = &app.sent::<OrderPlaced>(id).await[0];
    assert_eq!(placed.total.amount, 9998 + 1950);
    let reserve = &app.sent::<ReserveStock>(id).await[0];
    assert_eq!(reserve.ttl_secs, 60);
    let skus: Vec<_> = reserve
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect();
    assert_eq!(
        skus,
        [(app.catalog.sku(&kettle), 2), (app.catalog.sku(&mug), 3)]
    );
}

#[tokio::test]
async fn an_order_keeps_the_price_it_was_sold_at_when_the_catalog_changes_it() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let token = app.customer();
    let order = app.placed(&token, &[(&kettle, 1)]).await;

    app.catalog.reprice(&kettle, 9999);

    let read = app.order(id_of(&order), &token).await;
    assert_eq!(read["lines"][0]["unit_price"]["amount"], 4999);
    assert_eq!(read["total"]["amount"], 4999);
}

#[tokio::test]
async fn invalid_placements_are_refused_naming_every_field_and_write_nothing() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let token = app.customer();
    let mut long = order_body(&[(&kettle, 1)]);
    long["shipping_address"]["city"] = json!("x".repeat(101));
    let cases = [
        (order_body(&[]), vec![("items", "out_of_range")]),
        (
            order_body(&[(&kettle, 0), ("prod_nope", 1), (&kettle, 101)]),
            vec![
                ("items[0].quantity", "out_of_range"),
                ("items[1].product_id", "invalid_format"),
                ("items[2].product_id", "duplicate"),
                ("items[2].quantity", "out_of_range"),
            ],
        ),
        (long, vec![("shipping_address.city", "too_long")]),
        (
            json!({
                "items": [{"product_id": kettle, "quantity": 1}],
                "shipping_address": {"name": " ", "line1": "", "city": "London",
                                     "postal_code": "N1", "country": "GBR"},
                "payment": {"card_token": "4242424242424242"}
            }),
            vec![
                ("shipping_address.name", "required"),
                ("shipping_address.line1", "required"),
                ("shipping_address.country", "invalid_format"),
                ("payment.card_token", "invalid_format"),
            ],
        ),
        (
            json!({"items": [{"product_id": kettle, "quantity": 1}], "payment": {"card_token": "tok_visa"}}),
            vec![("shipping_address", "required")],
        ),
        (
            json!({"items": [{"product_id": kettle, "quantity": "two"}]}),
            vec![("items[0].quantity", "invalid_type")],
        ),
    ];
    for (body, expected) in cases {
        let refused = problem(
            app.place(Some(&token), Some("k"), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
            .collect();
        assert_eq!(field_errors(&refused), expected, "{body}");
    }

    assert_eq!(
        app.catalog.calls(),
        0,
        "bad input never reaches the catalog"
    );
    app.assert_nothing_written().await;
}

#[tokio::test]
async fn a_placement_without_a_token_or_a_valid_idempotency_key_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let body = order_body(&[(&kettle, 1)]);
    let token = app.customer();

    problem(
        app.place(None, Some("k"), &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let long = "k".repeat(256);
    for (key, code) in [
        (None, "required"),
        (Some(""), "out_of_range"),
        (Some(long.as_str()), "out_of_range"),
        (Some("with space"), "invalid_format"),
    ] {
        let refused = problem(
            app.place(Some(&token), key, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(refused["type"], "urn:shop:problem:idempotency-key");
        assert_eq!(
            field_errors(&refused),
            [("Idempotency-Key".to_owned(), code.to_owned())]
        );
    }

    assert_eq!(app.catalog.calls(), 0);
    app.assert_nothing_written().await;
}

#[tokio::test]
async fn unknown_or_inactive_products_are_refused_naming_their_line_and_write_nothing() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let retired = app.catalog.add(1000, "EUR", false);
    let unknown = format!("prod_{}", "0".repeat(32));
    let token = app.customer();

    let body = order_body(&[(&kettle, 1), (&unknown, 1), (&retired, 1)]);
    let refused = problem(
        app.place(Some(&token), Some("k"), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(
        field_errors(&refused),
        [
            ("items[1].product_id".to_owned(), "unknown".to_owned()),
            ("items[2].product_id".to_owned(), "inactive".to_owned()),
        ]
    );
    app.assert_nothing_written().await;
}

#[tokio::test]
async fn products_priced_in_two_currencies_cannot_be_ordered_together() {
    let app = spawn_app().await;
    let euros = app.product(4999);
    let dollars = app.catalog.add(5999, "USD", true);
    let token = app.customer();

    let body = order_body(&[(&euros, 1), (&dollars, 1)]);
    let refused = problem(
        app.place(Some(&token), Some("k"), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(
        field_errors(&refused),
        [("items".to_owned(), "mixed_currencies".to_owned())]
    );
    app.assert_nothing_written().await;
}

#[tokio::test]
async fn a_failing_catalog_gets_a_503_with_retry_after_after_its_retries_and_nothing_is_stored() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    app.catalog.set_mode(Mode::Fail(500));
    let token = app.customer();

    let response = app
        .place(Some(&token), Some("k"), &order_body(&[(&kettle, 1)]))
        .await;

    assert_eq!(response.headers()["retry-after"], "1");
    let refused = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(refused["type"], "urn:shop:problem:catalog-unavailable");
    assert_eq!(app.catalog.calls(), 2, "the first attempt and one retry");
    app.assert_nothing_written().await;

    // Back up: the same key now places the order (nothing was remembered of the failure).
    app.catalog.set_mode(Mode::Answer);
    let response = app
        .place(Some(&token), Some("k"), &order_body(&[(&kettle, 1)]))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_catalog_that_is_down_gets_a_503_and_nothing_is_stored() {
    // Nothing listens there: every connection is refused.
    let dead_url = CatalogStub::dead_url().await;
    let app = spawn_app_with(move |s| s.upstreams.catalog = dead_url).await;
    let token = app.customer();
    let kettle = format!("prod_{}", "1".repeat(32));

    let response = app
        .place(Some(&token), Some("k"), &order_body(&[(&kettle, 1)]))
        .await;

    let refused = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(refused["type"], "urn:shop:problem:catalog-unavailable");
    app.assert_nothing_written().await;
}

#[tokio::test]
async fn a_catalog_that_hangs_is_given_up_on_after_the_attempt_timeouts() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    app.catalog.set_mode(Mode::Hang);
    let token = app.customer();

    let started = Instant::now();
    let response = app
        .place(Some(&token), Some("k"), &order_body(&[(&kettle, 1)]))
        .await;

    problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "two attempts of 500 ms, not the catalog's hour: {waited:?}"
    );
    assert_eq!(app.catalog.calls(), 2);
    app.assert_nothing_written().await;
}

#[tokio::test]
async fn repeated_catalog_failures_open_the_breaker_and_later_placements_fail_fast_without_calling()
{
    let app = spawn_app_with(|s| {
        s.catalog.max_retries = 0;
        s.catalog.breaker.consecutive_failures = 3;
        s.catalog.breaker.open_ms = 60_000;
    })
    .await;
    let kettle = app.product(4999);
    app.catalog.set_mode(Mode::Fail(503));
    let token = app.customer();
    let body = order_body(&[(&kettle, 1)]);

    for _ in 0..3 {
        problem(
            app.place(Some(&token), Some("k"), &body).await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    }
    assert_eq!(app.catalog.calls(), 3);

    // Open: the catalog is not called at all, and the client is told when to come back.
    app.catalog.set_mode(Mode::Answer);
    let response = app.place(Some(&token), Some("k"), &body).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&retry_after), "{retry_after}");
    problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(app.catalog.calls(), 3, "an open breaker calls nobody");
    app.assert_nothing_written().await;

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let breaker = format!(
        "circuit_breaker_state{{breaker=\"catalog@{}\"}} 2",
        app.catalog.url().trim_start_matches("http://")
    );
    assert!(metrics.contains(&breaker), "{breaker} in\n{metrics}");
}

#[tokio::test]
async fn lookups_alternate_between_two_catalog_instances() {
    let second = CatalogStub::start().await;
    let first = CatalogStub::start().await;
    let kettle_url = second.url();
    let app = spawn_app_against(first, move |s, first| {
        s.upstreams.catalog = format!("{},{kettle_url}", first.url());
    })
    .await;
    // The same product in both instances (they share a database in real life).
    let kettle = app.product(4999);
    second.insert(&kettle, 4999, "EUR", true);
    let token = app.customer();
    for _ in 0..4 {
        let key = uuid::Uuid::new_v4().to_string();
        let response = app
            .place(Some(&token), Some(&key), &order_body(&[(&kettle, 1)]))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    assert_eq!(app.catalog.calls(), 2);
    assert_eq!(second.calls(), 2);
}

#[tokio::test]
async fn a_dead_catalog_instance_is_failed_over_to_the_live_one_and_its_breaker_opens() {
    let dead_url = CatalogStub::dead_url().await;
    let dead = dead_url.clone();
    let app = spawn_app_against(CatalogStub::start().await, move |s, live| {
        s.upstreams.catalog = format!("{dead},{}", live.url());
        s.catalog.breaker.consecutive_failures = 2;
        s.catalog.breaker.open_ms = 60_000;
    })
    .await;
    let kettle = app.product(4999);
    let token = app.customer();

    for _ in 0..6 {
        let key = uuid::Uuid::new_v4().to_string();
        let response = app
            .place(Some(&token), Some(&key), &order_body(&[(&kettle, 1)]))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "every placement goes through"
        );
    }

    assert_eq!(app.rows("orders").await, 6);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open = format!(
        "circuit_breaker_state{{breaker=\"catalog@{}\"}} 2",
        dead_url.trim_start_matches("http://")
    );
    assert!(metrics.contains(&open), "{open} in\n{metrics}");
}
