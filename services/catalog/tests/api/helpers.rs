//! `spawn_app()`: the service on a free port with its own fresh database and NATS
//! prefix, tokens signed by a key of the test's own (the user service is not started:
//! the catalog verifies against a fixed key set), and a typed client.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use shop_auth::Role;
use shop_catalog::Settings;
use shop_events::Envelope;
use shop_events::contracts::inventory::StockUpdated;
use shop_testkit::{TestDatabase, TestIssuer};
use tokio::sync::oneshot;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub prefix: String,
    pub js: jetstream::Context,
    issuer: TestIssuer,
    _stop: oneshot::Sender<()>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    shop_telemetry::init_for_tests();
    let db = shop_testkit::fresh_database().await;
    let nats = shop_testkit::nats().await;
    let prefix = shop_testkit::nats_prefix();
    let mut settings = Settings::default();
    settings.service.nats_url = nats.url().to_owned();
    settings.service.events_prefix = prefix.clone();
    settings.service.http.port = 0;
    settings.service.database_url = Some(db.service_url("catalog").into());
    configure(&mut settings);

    let issuer = TestIssuer::new();
    let app = shop_catalog::build_with(settings, issuer.verifier())
        .await
        .expect("the app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        prefix,
        js: jetstream::new(nats.client().await),
        issuer,
        _stop: stop,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// An access token with `roles`, expiring `expires_in` seconds from now.
    pub fn token(&self, roles: &[Role], expires_in: i64) -> String {
        self.issuer.token(roles, expires_in)
    }

    pub fn admin_token(&self) -> String {
        self.token(&[Role::Customer, Role::Admin], 600)
    }

    pub fn customer_token(&self) -> String {
        self.token(&[Role::Customer], 600)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    /// A request as the admin.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(self.admin_token())
    }

    pub async fn create_category(&self, slug: &str) {
        let response = self
            .admin(reqwest::Method::POST, "/api/v1/categories")
            .json(&json!({"slug": slug, "name": slug.to_uppercase()}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    pub async fn post_product(&self, body: &Value) -> Response {
        self.admin(reqwest::Method::POST, "/api/v1/products")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a product (asserting 201) and returns it.
    pub async fn create_product(&self, body: Value) -> Value {
        let response = self.post_product(&body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "creating {body}");
        response.json().await.unwrap()
    }

    /// Every active product, walking the pages of `query` (which must not hold a cursor).
    pub async fn walk(&self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/products?{query}&cursor={c}"),
                None => format!("/api/v1/products?{query}"),
            };
            let page = self.get_json(&path).await;
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
        panic!("the listing never ended");
    }

    /// The `sku`s of a listing's first page.
    pub async fn skus(&self, query: &str) -> Vec<String> {
        let page = self.get_json(&format!("/api/v1/products?{query}")).await;
        skus_of(page["items"].as_array().unwrap())
    }

    /// The types of the events in the catalog's outbox, oldest first.
    pub async fn outbox(&self) -> Vec<(String, Value)> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT subject, payload FROM catalog.outbox ORDER BY id")
                .fetch_all(self.db.admin_pool())
                .await
                .unwrap();
        rows.into_iter()
            .map(|(subject, payload)| {
                let envelope: Value = serde_json::from_slice(&payload).unwrap();
                assert_eq!(
                    subject,
                    format!("{}.{}", self.prefix, envelope["type"].as_str().unwrap())
                );
                (
                    envelope["type"].as_str().unwrap().to_owned(),
                    envelope["data"].clone(),
                )
            })
            .collect()
    }

    /// Publishes the inventory's `stock.updated` for `sku`, as the inventory would.
    pub async fn publish_stock(&self, sku: &str, available: i64, revision: i64) {
        let event = Envelope::new(
            "inventory",
            StockUpdated {
                sku: sku.to_owned(),
                on_hand: available,
                reserved: 0,
                available,
                revision,
            },
        );
        let subject = format!("{}.inventory.stock.updated", self.prefix);
        self.js
            .publish(subject, serde_json::to_vec(&event).unwrap().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// The projected availability of `sku`: (available, revision).
    pub async fn availability(&self, sku: &str) -> Option<(i64, i64)> {
        sqlx::query_as("SELECT available, revision FROM catalog.availability WHERE sku = $1")
            .bind(sku)
            .fetch_optional(self.db.admin_pool())
            .await
            .unwrap()
    }

    /// Polls `availability(sku)` until it is `expected`, for up to ten seconds.
    pub async fn wait_for_availability(&self, sku: &str, expected: (i64, i64)) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.availability(sku).await;
            if seen == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sku}: expected {expected:?}, still {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A valid product body; callers change what they test.
pub fn product(sku: &str, name: &str, description: &str, amount: i64, category: &str) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "description": description,
        "price": {"amount": amount, "currency": "EUR"},
        "category": category,
    })
}

pub fn skus_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|p| p["sku"].as_str().unwrap().to_owned())
        .collect()
}

pub use shop_testkit::problem;

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
