//! The admin account seeded at start-up: created when absent, never made out of an
//! account someone else registered.

use reqwest::StatusCode;
use secrecy::SecretString;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, spawn_app, spawn_app_with, start, test_settings};

#[tokio::test]
async fn an_account_registered_with_the_admin_email_before_start_stops_the_service_from_starting() {
    // Someone registers the admin address before the service that seeds it first runs.
    let app = spawn_app_with(|s| s.admin.email = "someone-else@shop.test".to_owned()).await;
    let squatter = app.register(ADMIN_EMAIL, PASSWORD, "Mallory").await;
    assert_eq!(squatter.status(), StatusCode::CREATED);
    let db = app.stop().await;

    let settings = test_settings(&db).await;
    assert_eq!(settings.admin.email, ADMIN_EMAIL);
    let error = match shop_user::build(settings).await {
        Ok(_) => panic!("the service started with a squatted admin e-mail"),
        Err(e) => format!("{e:#}"),
    };

    assert!(error.contains(ADMIN_EMAIL), "{error}");
    assert!(error.contains("not an admin"), "{error}");
    assert!(
        error.contains("SHOP_ADMIN__EMAIL"),
        "says what to do: {error}"
    );
    let roles: Vec<String> = sqlx::query_scalar("SELECT roles FROM users.users WHERE email = $1")
        .bind(ADMIN_EMAIL)
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(roles, ["customer"], "the account was not promoted");
}

#[tokio::test]
async fn a_restart_with_the_admin_present_starts_and_leaves_the_admin_as_it_was() {
    let app = spawn_app().await;
    app.admin().await;
    let db = app.stop().await;

    // The configured password only ever creates the account; it changes nothing later.
    let mut settings = test_settings(&db).await;
    settings.admin.password = Some(SecretString::from("another-admin-password"));
    let app = start(db, settings).await;

    let admin = app.admin().await;
    let users = app
        .get_with_token("/api/v1/users", &admin.access_token)
        .await;
    assert_eq!(users.status(), StatusCode::OK);
    assert_eq!(app.count("users").await, 1, "no second admin");
    assert_eq!(
        app.login(ADMIN_EMAIL, "another-admin-password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
