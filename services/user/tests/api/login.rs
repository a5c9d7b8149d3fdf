//! `POST /api/v1/auth/login`: a token pair, and the refusals that reveal nothing. The
//! throttle has its own file (`throttle.rs`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_fields, problem, spawn_app};

#[tokio::test]
async fn logging_in_returns_a_bearer_pair() {
    let app = spawn_app().await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    let response = app.login("ADA@example.com", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["access_token"].as_str().unwrap().split('.').count(), 3);
    assert!(pair["refresh_token"].as_str().unwrap().starts_with("rt_"));
    let stored_as_hash: i64 = sqlx::query_scalar("SELECT count(*) FROM users.refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))")
        .bind(pair["refresh_token"].as_str().unwrap())
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(
        stored_as_hash, 1,
        "the refresh token is stored as its SHA-256 only"
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_account_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    let wrong = problem(
        app.login("ada@example.com", "wrong password!").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = problem(
        app.login("nobody@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert_eq!(wrong["type"], "urn:shop:problem:invalid-credentials");
    assert_eq!(wrong["detail"], unknown["detail"]);
    assert_eq!(app.count("refresh_tokens").await, 0);
}

#[tokio::test]
async fn logging_in_with_bad_input_is_refused() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"email": "nope", "password": PASSWORD}),
            vec!["email"],
        ),
        (
            json!({"email": "a@example.com", "password": ""}),
            vec!["password"],
        ),
        (json!({"email": "a@example.com"}), vec!["password"]),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "remember": true}),
            vec!["remember"],
        ),
    ];
    for (body, fields) in cases {
        let body = problem(
            app.post_json("/api/v1/auth/login", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&body), fields);
    }
    assert_eq!(
        app.count("login_failures").await,
        0,
        "refused input counts no failure"
    );
}
