//! `POST /api/v1/auth/logout`: the end of a login, also when a refresh races it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, RACE_ROUNDS, error_fields, problem, spawn_app};

#[tokio::test]
async fn logging_out_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let body = json!({"refresh_token": customer.refresh_token});

    let response = app.post_json("/api/v1/auth/logout", &body).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    problem(
        app.refresh(&customer.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.post_json("/api/v1/auth/logout", &body).await.status(),
        StatusCode::NO_CONTENT,
        "twice is fine"
    );
    let bad = problem(
        app.post_json("/api/v1/auth/logout", &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&bad), ["refresh_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_racing_a_refresh_leaves_no_token_of_the_login_usable() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for round in 0..RACE_ROUNDS {
        let token = app.logged_in(&customer.email, PASSWORD).await.refresh_token;

        let (refreshed, logged_out) = tokio::join!(app.refresh(&token), app.logout(&token));

        assert_eq!(logged_out.status(), StatusCode::NO_CONTENT);
        if refreshed.status() == StatusCode::OK {
            let pair: Value = refreshed.json().await.unwrap();
            let issued = pair["refresh_token"].as_str().unwrap();
            assert_eq!(
                app.refresh(issued).await.status(),
                StatusCode::UNAUTHORIZED,
                "round {round}: the token issued during the logout survived it"
            );
        } else {
            assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(app.refresh(&token).await.status(), StatusCode::UNAUTHORIZED);
    }
}
