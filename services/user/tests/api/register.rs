//! `POST /api/v1/auth/register`: an account, its event and its welcome mail; every
//! refusal.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_fields, problem, spawn_app};

#[tokio::test]
async fn registering_with_valid_data_creates_a_customer() {
    let app = spawn_app().await;

    let response = app
        .register("  Ada@Example.COM ", PASSWORD, "Ada Lovelace")
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["roles"], json!(["customer"]));
    assert!(user.get("password_hash").is_none());
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users.users WHERE email = 'ada@example.com'")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "OWASP argon2id parameters: {stored}"
    );
}

#[tokio::test]
async fn registering_an_email_twice_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("ada@example.com", PASSWORD, "Ada")
            .await
            .status(),
        StatusCode::CREATED
    );

    let body = problem(
        app.register("ADA@example.com", PASSWORD, "Other Ada").await,
        StatusCode::CONFLICT,
    )
    .await;

    assert_eq!(body["type"], "urn:shop:problem:conflict");
    assert_eq!(
        app.count("users").await,
        2,
        "the admin and the first Ada only"
    );
}

#[tokio::test]
async fn registering_with_bad_input_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let before = app.count("users").await;
    let cases: Vec<(Value, StatusCode, Vec<&str>)> = vec![
        (
            json!({"email": "not-an-email", "password": PASSWORD, "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["email"],
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["password"],
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["name"],
        ),
        (
            json!({"email": "bad", "password": "x", "name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["email", "password", "name"],
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["name"],
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": "A", "roles": ["admin"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["roles"],
        ),
        (
            json!({"email": 42, "password": PASSWORD, "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["email"],
        ),
        (
            json!("not an object"),
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![""],
        ),
    ];
    for (body, status, fields) in cases {
        let response = app.post_json("/api/v1/auth/register", &body).await;
        let problem = problem(response, status).await;
        assert_eq!(error_fields(&problem), fields, "for {body}");
    }

    let url = app.url("/api/v1/auth/register");
    let valid = r#"{"email": "a@example.com", "password": "correct horse battery", "name": "A"}"#;
    let wrong_type = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body(valid)
        .send()
        .await
        .unwrap();
    problem(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let no_type = app.client.post(&url).body(valid).send().await.unwrap();
    problem(no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let broken = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    problem(broken, StatusCode::BAD_REQUEST).await;
    let huge = json!({"email": "a@example.com", "password": PASSWORD, "name": "x".repeat(100_000)});
    problem(
        app.post_json("/api/v1/auth/register", &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    assert_eq!(
        app.count("users").await,
        before,
        "no refused request wrote a user"
    );
    assert_eq!(app.count("outbox").await, 0, "nor an event");
}

#[tokio::test]
async fn registering_sends_a_welcome_mail_without_waiting_for_it() {
    let app = spawn_app().await;

    let response = app
        .register("ada@example.com", PASSWORD, "Ada Lovelace")
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let event: (String, Vec<u8>) = sqlx::query_as("SELECT subject, payload FROM users.outbox")
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
    assert!(event.0.ends_with("users.user.registered"), "{}", event.0);
    let envelope: Value = serde_json::from_slice(&event.1).unwrap();
    assert_eq!(envelope["data"]["email"], "ada@example.com");
    assert_eq!(envelope["source"], "user");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (to, body): (String, String) = loop {
        let mail = sqlx::query_as("SELECT to_address, body FROM users.mail_sink")
            .fetch_optional(app.db.admin_pool())
            .await
            .unwrap();
        if let Some(mail) = mail {
            break mail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no welcome mail within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(to, "ada@example.com");
    assert!(body.contains("Hi Ada Lovelace"), "{body}");
}
