//! Register, login, refresh, logout: success and every refusal.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_fields, problem, spawn_app, spawn_app_with};

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

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let app = spawn_app_with(|s| s.throttle.max_failures = 3).await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    for _ in 0..3 {
        problem(
            app.login("ada@example.com", "wrong password!").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let response = app.login("ada@example.com", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After within the lockout: {retry_after}"
    );
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:shop:problem:login-throttled");
    // Other accounts are not affected.
    app.register("bob@example.com", PASSWORD, "Bob").await;
    assert_eq!(
        app.login("bob@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let app = spawn_app_with(|s| s.throttle.max_failures = 3).await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    for _ in 0..2 {
        app.login("ada@example.com", "wrong password!").await;
    }
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        app.login("ada@example.com", "wrong password!").await;
    }

    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

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
