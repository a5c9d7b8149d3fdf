//! `GET /api/v1/users/me` and the admin list.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn me_returns_the_caller() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let response = app
        .get_with_token("/api/v1/users/me", &customer.access_token)
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], customer.email);
    assert_eq!(me["roles"], serde_json::json!(["customer"]));
}

#[tokio::test]
async fn me_without_a_valid_token_is_unauthorized() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let none = app
        .client
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.headers()["www-authenticate"], r#"Bearer realm="shop""#);
    problem(none, StatusCode::UNAUTHORIZED).await;
    problem(
        app.get_with_token("/api/v1/users/me", "garbage").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let mut tampered = customer.access_token.clone();
    tampered.insert_str(tampered.rfind('.').unwrap() + 1, "AAAA");
    problem(
        app.get_with_token("/api/v1/users/me", &tampered).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // A token from another issuer's key (another deployment) is not ours.
    let stranger = spawn_app().await.customer().await;
    problem(
        app.get_with_token("/api/v1/users/me", &stranger.access_token)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    // Tokens that expired two minutes ago (beyond the 30 s clock-skew leeway).
    let app = spawn_app_with(|s| s.jwt.access_ttl_secs = -120).await;
    let customer = app.customer().await;

    let body = problem(
        app.get_with_token("/api/v1/users/me", &customer.access_token)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn the_admin_lists_users_page_by_page() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.customer().await;
    }
    let admin = app.admin().await;

    let first: Value = app
        .get_with_token("/api/v1/users?limit=2", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    let after = first["next_after"].as_str().expect("a next page");
    let second: Value = app
        .get_with_token(
            &format!("/api/v1/users?limit=2&after={after}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        second["items"].as_array().unwrap().len(),
        2,
        "4 users: admin + 3 customers"
    );
    assert!(second.get("next_after").is_none(), "the last page says so");
    assert_eq!(
        first["items"][0]["roles"],
        serde_json::json!(["customer", "admin"])
    );
}

#[tokio::test]
async fn listing_users_needs_the_admin_role_and_valid_parameters() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let admin = app.admin().await;

    problem(
        app.client
            .get(app.url("/api/v1/users"))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let forbidden = problem(
        app.get_with_token("/api/v1/users", &customer.access_token)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(forbidden["type"], "urn:shop:problem:forbidden");
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("after=not-a-uuid", "after"),
        ("sort=email", "sort"),
    ] {
        let body = problem(
            app.get_with_token(&format!("/api/v1/users?{query}"), &admin.access_token)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "for {query}");
    }
}
