//! Housekeeping: the purges the chassis schedules, called directly. They delete what
//! can no longer matter and nothing that still can.

use std::time::Duration;

use reqwest::StatusCode;
use shop_user::{Settings, refresh, throttle};

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with, throttled};

const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test]
async fn purging_refresh_tokens_deletes_only_what_can_no_longer_be_used() {
    let app = spawn_app().await;
    let live = app.customer().await;
    let logged_out = app.customer().await;
    app.logout(&logged_out.refresh_token).await;
    let ended = app.customer().await;
    // The third login ended two days ago (moved, not waited for).
    sqlx::query(
        "WITH f AS (
             UPDATE users.refresh_families SET expires_at = now() - interval '2 days'
             WHERE user_id = (SELECT id FROM users.users WHERE email = $1) RETURNING id
         )
         UPDATE users.refresh_tokens SET expires_at = now() - interval '2 days'
         WHERE family_id IN (SELECT id FROM f)",
    )
    .bind(&ended.email)
    .execute(app.db.admin_pool())
    .await
    .unwrap();
    // The live login has a spent token now: replaying it must stay detectable.
    let spent = live.refresh_token.clone();
    assert_eq!(app.refresh(&spent).await.status(), StatusCode::OK);
    let pool = app.service_pool().await;

    let deleted = refresh::purge(&pool, DAY).await.unwrap();

    assert_eq!(deleted, 2, "the ended family and its token");
    assert_eq!(app.count("refresh_families").await, 2);
    assert_eq!(
        app.count("refresh_tokens").await,
        3,
        "the live chain (spent + current) and the just revoked token"
    );

    // Without a grace period, the revoked login goes too; the live one stays.
    assert_eq!(refresh::purge(&pool, Duration::ZERO).await.unwrap(), 2);
    assert_eq!(app.count("refresh_families").await, 1);
    let replay = problem(app.refresh(&spent).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(replay["type"], "urn:shop:problem:invalid-refresh-token");
    let revoked: bool =
        sqlx::query_scalar("SELECT revoked_at IS NOT NULL FROM users.refresh_families")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    assert!(
        revoked,
        "the replayed spent token was still recognized as a reuse"
    );
}

#[tokio::test]
async fn purging_the_throttle_deletes_failures_whose_window_and_lockout_are_over() {
    let app = spawn_app_with(|s| s.throttle.max_failures = 2).await;
    app.login("old@example.com", "wrong password!").await;
    for _ in 0..2 {
        app.login("locked@example.com", "wrong password!").await;
    }
    app.login("recent@example.com", "wrong password!").await;
    // An hour on for two of them and for the client's count (windows are 15 min).
    sqlx::query(
        "UPDATE users.login_failures SET window_started_at = now() - interval '1 hour'
         WHERE email IN ('old@example.com', 'locked@example.com')",
    )
    .execute(app.db.admin_pool())
    .await
    .unwrap();
    sqlx::query(
        "UPDATE users.login_client_failures SET window_started_at = now() - interval '1 hour'",
    )
    .execute(app.db.admin_pool())
    .await
    .unwrap();
    let mut settings = Settings::default().throttle;
    settings.max_failures = 2;

    let deleted = throttle::purge(&app.service_pool().await, &settings)
        .await
        .unwrap();

    assert_eq!(deleted, 2, "the old e-mail's failures and the client's");
    let left: Vec<String> =
        sqlx::query_scalar("SELECT email FROM users.login_failures ORDER BY email")
            .fetch_all(app.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(left, ["locked@example.com", "recent@example.com"]);
    throttled(app.login("locked@example.com", PASSWORD).await, 900).await;
}
