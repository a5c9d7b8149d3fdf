//! `POST /api/v1/auth/refresh`: rotation, reuse detection, the family's lifetime, a
//! retry after a lost response, and reuse racing a rotation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, RACE_ROUNDS, error_fields, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn refreshing_spends_the_token_and_returns_a_new_pair() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    let response = app.refresh(&customer.refresh_token).await;

    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.unwrap();
    let next = pair["refresh_token"].as_str().unwrap();
    assert_ne!(next, customer.refresh_token);
    let me = app
        .get_with_token("/api/v1/users/me", pair["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        app.refresh(next).await.status(),
        StatusCode::OK,
        "the new token works once"
    );
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let other_login = app
        .login(&customer.email, PASSWORD)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let first: Value = app
        .refresh(&customer.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let second: Value = app
        .refresh(first["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();

    // An attacker replays the first, already spent token.
    let replay = problem(
        app.refresh(&customer.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert_eq!(replay["type"], "urn:shop:problem:invalid-refresh-token");
    let latest = second["refresh_token"].as_str().unwrap();
    problem(app.refresh(latest).await, StatusCode::UNAUTHORIZED).await;
    // A separate login (another family) is untouched.
    let other = other_login["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(other).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refreshing_with_an_unknown_or_malformed_token_is_refused() {
    let app = spawn_app().await;
    problem(
        app.refresh("rt_not-a-real-token").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let empty = problem(app.refresh("").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&empty), ["refresh_token"]);
    let extra = json!({"refresh_token": "rt_x", "user_id": "someone"});
    let body = problem(
        app.post_json("/api/v1/auth/refresh", &extra).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&body), ["user_id"]);
    assert_eq!(app.count("refresh_tokens").await, 0);
}

#[tokio::test]
async fn a_refresh_retried_after_a_lost_response_is_a_reuse_and_ends_the_login() {
    let app = spawn_app().await;
    let customer = app.customer().await;
    // The server rotated, but the answer never reached the client...
    let lost: Value = app
        .refresh(&customer.refresh_token)
        .await
        .json()
        .await
        .unwrap();

    // ...which retries with the token it still has.
    let retry = problem(
        app.refresh(&customer.refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    assert_eq!(retry["type"], "urn:shop:problem:invalid-refresh-token");
    let issued_in_the_lost_answer = lost["refresh_token"].as_str().unwrap();
    problem(
        app.refresh(issued_in_the_lost_answer).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // The way back is a new login.
    assert_eq!(
        app.login(&customer.email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_refresh_chain_ends_at_its_familys_absolute_lifetime() {
    let app = spawn_app_with(|s| s.jwt.refresh_family_ttl_secs = 3600).await;
    let customer = app.customer().await;
    let pair: Value = app
        .refresh(&customer.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let next = pair["refresh_token"].as_str().unwrap();
    let (within_family, family_ends_in_an_hour): (bool, bool) = sqlx::query_as(
        "SELECT bool_and(t.expires_at <= f.expires_at),
                bool_and(f.expires_at <= now() + interval '1 hour')
         FROM users.refresh_tokens t JOIN users.refresh_families f ON f.id = t.family_id",
    )
    .fetch_one(app.db.admin_pool())
    .await
    .unwrap();
    assert!(within_family, "no token outlives its family");
    assert!(family_ends_in_an_hour);

    // The hour passes (moved, not waited for), while the token itself is still fresh.
    sqlx::query("UPDATE users.refresh_families SET expires_at = now() - interval '1 second'")
        .execute(app.db.admin_pool())
        .await
        .unwrap();
    sqlx::query("UPDATE users.refresh_tokens SET expires_at = now() + interval '1 day'")
        .execute(app.db.admin_pool())
        .await
        .unwrap();

    problem(app.refresh(next).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reuse_racing_a_rotation_leaves_no_token_of_the_family_usable() {
    let app = spawn_app().await;
    let customer = app.customer().await;

    for round in 0..RACE_ROUNDS {
        let spent = app.logged_in(&customer.email, PASSWORD).await.refresh_token;
        let current: Value = app.refresh(&spent).await.json().await.unwrap();
        let current = current["refresh_token"].as_str().unwrap();

        // A thief replays the spent token while the client refreshes the current one.
        let (replay, rotation) = tokio::join!(app.refresh(&spent), app.refresh(current));

        assert_eq!(replay.status(), StatusCode::UNAUTHORIZED, "round {round}");
        if rotation.status() == StatusCode::OK {
            let pair: Value = rotation.json().await.unwrap();
            let issued = pair["refresh_token"].as_str().unwrap();
            assert_eq!(
                app.refresh(issued).await.status(),
                StatusCode::UNAUTHORIZED,
                "round {round}: the token issued during the revocation survived it"
            );
        } else {
            assert_eq!(rotation.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            app.refresh(current).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
