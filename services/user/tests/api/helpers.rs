//! `spawn_app()`: the service on a free port with its own fresh database, and a typed
//! client for it.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use shop_testkit::TestDatabase;
use shop_user::{Settings, keys};
use tokio::sync::oneshot;

pub const ADMIN_EMAIL: &str = "admin@shop.test";
pub const ADMIN_PASSWORD: &str = "admin-password-test";
pub const PASSWORD: &str = "correct horse battery";
/// How often a race is run per test: the unfixed code lost it within a few rounds.
pub const RACE_ROUNDS: usize = 25;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub signing_key: SecretString,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test instance: port 0, the database's user role, a fresh key.
pub async fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings::default();
    settings.service.nats_url = shop_testkit::nats().await.url().to_owned();
    settings.service.events_prefix = shop_testkit::nats_prefix();
    settings.service.http.port = 0;
    settings.service.database_url = Some(SecretString::from(db.service_url("user")));
    settings.jwt.signing_key_pem = Some(keys::generate_pem().unwrap());
    settings.admin.email = ADMIN_EMAIL.to_owned();
    settings.admin.password = Some(SecretString::from(ADMIN_PASSWORD));
    settings.max_concurrent_hashes = 2;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = shop_testkit::fresh_database().await;
    let mut settings = test_settings(&db).await;
    configure(&mut settings);
    start(db, settings).await
}

/// Starts an instance on an existing database (e.g. a second replica, or a restart).
pub async fn start(db: TestDatabase, settings: Settings) -> TestApp {
    shop_telemetry::init_for_tests();
    let signing_key = settings
        .jwt
        .signing_key_pem
        .clone()
        .expect("tests configure a key");
    let app = shop_user::build(settings).await.expect("the app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client,
        db,
        signing_key,
        stop: Some(stop),
        server: Some(server),
    }
}

/// A registered customer and their tokens.
pub struct LoggedIn {
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops serving and hands the database back (to start another instance on it).
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.db
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        response.json().await.unwrap()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// A login carrying `X-Forwarded-For: <forwarded_for>`.
    pub async fn login_forwarded_for(
        &self,
        email: &str,
        password: &str,
        forwarded_for: &str,
    ) -> Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// `n` logins sent at once, their answers in no particular order.
    pub async fn parallel_logins(&self, n: usize, email: &str, password: &str) -> Vec<Response> {
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..n {
            let request = self
                .client
                .post(self.url("/api/v1/auth/login"))
                .json(&json!({"email": email, "password": password}));
            logins.spawn(async move { request.send().await.unwrap() });
        }
        logins.join_all().await
    }

    /// A pool on the service's schema as the service's own role (to call its
    /// functions directly, as the chassis's scheduled jobs do).
    pub async fn service_pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.db.service_url("user"))
            .await
            .unwrap()
    }

    /// Registers a fresh customer and logs them in.
    pub async fn customer(&self) -> LoggedIn {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let response = self.register(&email, PASSWORD, "Test Customer").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        self.logged_in(&email, PASSWORD).await
    }

    pub async fn admin(&self) -> LoggedIn {
        self.logged_in(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Logs in (a new refresh-token family) and asserts it worked.
    pub async fn logged_in(&self, email: &str, password: &str) -> LoggedIn {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK);
        let pair: Value = response.json().await.unwrap();
        LoggedIn {
            email: email.to_owned(),
            access_token: pair["access_token"].as_str().unwrap().to_owned(),
            refresh_token: pair["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Counts rows of a table in the service's schema, as the admin sees them.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM users.{table}"
        )))
        .fetch_one(self.db.admin_pool())
        .await
        .unwrap()
    }
}

pub use shop_testkit::problem;

/// Asserts a 429 login refusal with a `Retry-After` within `max_secs`; returns it.
pub async fn throttled(response: Response, max_secs: u64) -> u64 {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=max_secs).contains(&retry_after),
        "Retry-After {retry_after} within 1..={max_secs}"
    );
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "urn:shop:problem:login-throttled");
    retry_after
}

/// The `field` of every entry of a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
