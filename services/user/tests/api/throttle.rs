//! The login throttle: per account and per client, and not to be outrun by
//! concurrency or escaped with a made-up `X-Forwarded-For`.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, problem, spawn_app, spawn_app_with, throttled};

const WRONG: &str = "wrong password!";

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let app = spawn_app_with(|s| s.throttle.max_failures = 3).await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    for _ in 0..3 {
        problem(
            app.login("ada@example.com", WRONG).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    throttled(app.login("ada@example.com", PASSWORD).await, 900).await;

    // Other accounts are not affected.
    app.register("bob@example.com", PASSWORD, "Bob").await;
    assert_eq!(
        app.login("bob@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_account_may_try_again_once_its_lockout_is_over() {
    let app = spawn_app_with(|s| s.throttle.max_failures = 2).await;
    app.register("ada@example.com", PASSWORD, "Ada").await;
    for _ in 0..2 {
        app.login("ada@example.com", WRONG).await;
    }
    throttled(app.login("ada@example.com", PASSWORD).await, 900).await;

    // The 15 minutes pass (moved, not waited for).
    sqlx::query(
        "UPDATE users.login_failures SET locked_until = now() - interval '1 second',
                window_started_at = now() - interval '16 minutes'",
    )
    .execute(app.db.admin_pool())
    .await
    .unwrap();

    // A fresh count: one more failure is not a lockout, and the right password works.
    problem(
        app.login("ada@example.com", WRONG).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let app = spawn_app_with(|s| s.throttle.max_failures = 3).await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    for _ in 0..2 {
        app.login("ada@example.com", WRONG).await;
    }
    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        app.login("ada@example.com", WRONG).await;
    }

    assert_eq!(
        app.login("ada@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_parallel_guesses_gets_no_more_than_five_passwords_evaluated() {
    // The defaults: 5 failures per account, 30 per client.
    let app = spawn_app().await;
    app.register("ada@example.com", PASSWORD, "Ada").await;

    let responses = app.parallel_logins(30, "ada@example.com", WRONG).await;

    let mut evaluated = 0;
    let mut refused = 0;
    for response in responses {
        match response.status() {
            StatusCode::UNAUTHORIZED => evaluated += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled(response, 900).await;
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (evaluated, refused),
        (5, 25),
        "only the budget's 5 guesses reach argon2"
    );
    // Inside the lockout even the right password is not evaluated.
    throttled(app.login("ada@example.com", PASSWORD).await, 900).await;
}

#[tokio::test]
async fn one_client_failing_across_many_accounts_is_refused_before_it_locks_them_all() {
    let app = spawn_app_with(|s| s.throttle.client_max_failures = 3).await;
    app.register("victim@example.com", PASSWORD, "Victim").await;

    for i in 0..3 {
        problem(
            app.login(&format!("guess{i}@example.com"), WRONG).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    throttled(app.login("victim@example.com", WRONG).await, 900).await;

    // The refused attempt was not held against the account it named.
    let counted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users.login_failures WHERE email = $1")
            .bind("victim@example.com")
            .fetch_one(app.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(counted, 0);
    // This client is refused until its window ends, the right password included.
    throttled(app.login("victim@example.com", PASSWORD).await, 900).await;
}

#[tokio::test]
async fn a_forwarded_for_from_an_untrusted_peer_does_not_escape_the_client_limit() {
    // No trusted proxies (the default): the header is the client's own invention.
    let app = spawn_app_with(|s| s.throttle.client_max_failures = 3).await;

    for i in 0..3 {
        let response = app
            .login_forwarded_for(
                &format!("guess{i}@example.com"),
                WRONG,
                &format!("198.51.100.{i}"),
            )
            .await;
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
    let response = app
        .login_forwarded_for("guess3@example.com", WRONG, "203.0.113.99")
        .await;

    throttled(response, 900).await;
    let clients: Vec<String> = sqlx::query_scalar("SELECT client FROM users.login_client_failures")
        .fetch_all(app.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(clients, ["127.0.0.1"], "counted under the TCP peer");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let app = spawn_app_with(|s| {
        s.throttle.client_max_failures = 2;
        s.throttle.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;

    for i in 0..2 {
        let response = app
            .login_forwarded_for(&format!("a{i}@example.com"), WRONG, "198.51.100.1")
            .await;
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
    // The client put a made-up address first; the proxy appended the real one.
    let first = app
        .login_forwarded_for("a2@example.com", WRONG, "203.0.113.7, 198.51.100.1")
        .await;
    throttled(first, 900).await;

    let other = app
        .login_forwarded_for("b@example.com", WRONG, "198.51.100.2")
        .await;
    problem(other, StatusCode::UNAUTHORIZED).await;
}
