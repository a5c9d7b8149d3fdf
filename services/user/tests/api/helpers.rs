//! `spawn_app()`: the service on a free port with its own fresh database, and a typed
//! client for it.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use shop_testkit::TestDatabase;
use shop_user::{Application, Settings, keys};
use tokio::sync::oneshot;

pub const ADMIN_EMAIL: &str = "admin@shop.test";
pub const ADMIN_PASSWORD: &str = "admin-password-test";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub signing_key: SecretString,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for a test instance: port 0, the database's user role, a fresh key.
pub async fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings {
        nats_url: shop_testkit::nats().await.url().to_owned(),
        events_prefix: shop_testkit::nats_prefix(),
        ..Settings::default()
    };
    settings.http.port = 0;
    settings.database_url = SecretString::from(db.service_url("user"));
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
    let app = Application::build(settings).await.expect("the app builds");
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

    async fn logged_in(&self, email: &str, password: &str) -> LoggedIn {
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

/// Asserts a problem+json answer and returns its body.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "a refusal is problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string());
    body
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
