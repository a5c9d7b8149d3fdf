//! The listing: a customer's own orders, newest first, page by page; an admin's view of
//! everyone's with filters.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, field_errors, id_of, problem, spawn_app};

async fn page(app: &TestApp, query: &str, token: &str) -> Value {
    let response = app.get_as(&format!("/api/v1/orders{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<Value> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect()
}

#[tokio::test]
async fn my_orders_are_listed_newest_first_page_by_page_and_nobody_elses() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let (ada, bob) = (app.customer(), app.customer());
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(app.placed(&ada, &[(&kettle, 1)]).await["id"].clone());
    }
    app.placed(&bob, &[(&kettle, 1)]).await;

    let first = page(&app, "?limit=2", &ada).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = page(&app, &format!("?limit=2&cursor={cursor}"), &ada).await;

    mine.reverse();
    assert_eq!(ids(&first), mine[..2]);
    assert_eq!(ids(&second), mine[2..]);
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(first["items"][0]["line_count"], 1);
    assert_eq!(first["items"][0]["total"]["amount"], 4999);
    assert_eq!(first["items"][0]["status"], "PENDING");
}

#[tokio::test]
async fn an_admin_lists_everyone_and_filters_by_user_and_status() {
    let app = spawn_app().await;
    let kettle = app.product(4999);
    let (ada, bob, admin) = (app.customer(), app.customer(), app.admin());
    let by_ada = app.placed(&ada, &[(&kettle, 1)]).await;
    let by_bob = app.placed(&bob, &[(&kettle, 1)]).await;
    let cancelled = app
        .post_as(&format!("/api/v1/orders/{}/cancel", id_of(&by_bob)), &bob)
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let bob_id = by_bob["user_id"].as_str().unwrap();

    assert_eq!(ids(&page(&app, "", &admin).await).len(), 2);
    assert_eq!(
        ids(&page(&app, &format!("?user_id={bob_id}"), &admin).await),
        [by_bob["id"].clone()]
    );
    assert_eq!(
        ids(&page(&app, "?status=PENDING", &admin).await),
        [by_ada["id"].clone()]
    );
    assert_eq!(ids(&page(&app, "?status=CANCELLED", &bob).await).len(), 1);
    assert!(ids(&page(&app, "?status=CANCELLED", &ada).await).is_empty());

    let refused = app
        .get_as(&format!("/api/v1/orders?user_id={bob_id}"), &ada)
        .await;
    problem(refused, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn bad_listing_parameters_are_refused_with_the_parameter_named() {
    let app = spawn_app().await;
    let token = app.customer();
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?cursor=not-a-cursor", "cursor"),
        ("?status=LOST", "status"),
        ("?colour=red", "colour"),
    ] {
        let refused = problem(
            app.get_as(&format!("/api/v1/orders{query}"), &token).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(field_errors(&refused)[0].0, field, "{query}");
    }
    let anonymous = app
        .client
        .get(app.url("/api/v1/orders"))
        .send()
        .await
        .unwrap();
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
}
