//! `spawn_app()`: the inventory on a free port with its own fresh database and NATS
//! namespace, tokens signed by a key of the test's own, and typed ways to send it
//! commands and read what it published.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use shop_auth::Role;
use shop_events::contracts::catalog::{Money, ProductCreated};
use shop_events::contracts::inventory::{Line, ReserveStock};
use shop_events::{Envelope, Event, Namespace, Outbox};
use shop_inventory::Settings;
use shop_testkit::{TestDatabase, TestIssuer};
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a test waits for something asynchronous before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub js: jetstream::Context,
    pub ns: Namespace,
    issuer: TestIssuer,
    stop: Option<oneshot::Sender<()>>,
    _server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    shop_telemetry::init_for_tests();
    let db = shop_testkit::fresh_database().await;
    let mut settings = Settings::default();
    settings.service.nats_url = shop_testkit::nats().await.url().to_owned();
    settings.service.events_prefix = shop_testkit::nats_prefix();
    settings.service.http.port = 0;
    settings.service.database_url = Some(SecretString::from(db.service_url("inventory")));
    settings.service.db_max_connections = 20;
    settings.stock.expire_every_millis = 200;
    configure(&mut settings);
    let ns = Namespace::prefixed(settings.service.events_prefix.clone());

    let issuer = TestIssuer::new();
    let app = shop_inventory::build_with(settings, issuer.verifier())
        .await
        .expect("the app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        js: jetstream::new(shop_testkit::nats().await.client().await),
        ns,
        issuer,
        stop: Some(stop),
        _server: server,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops serving and the background tasks (they end with the test's runtime).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A token with `roles`, expiring `expires_in` seconds from now.
    pub fn token(&self, roles: Vec<Role>, expires_in: i64) -> String {
        self.issuer.token(&roles, expires_in)
    }

    pub fn admin_token(&self) -> String {
        self.token(vec![Role::Customer, Role::Admin], 600)
    }

    pub fn customer_token(&self) -> String {
        self.token(vec![Role::Customer], 600)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_as(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Receives `quantity` units as an admin, asserting it worked.
    pub async fn receive(&self, sku: &str, quantity: i64) -> Value {
        let body = serde_json::json!({"quantity": quantity, "reason": "delivery"});
        let response = self
            .post_as(
                &format!("/api/v1/inventory/{sku}/receive"),
                Some(&self.admin_token()),
                &body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Publishes `data` as an event of this test's namespace; returns its envelope.
    pub async fn publish<T: Event + Clone>(&self, data: T) -> Envelope<T> {
        let envelope = Envelope::new("test", data);
        self.publish_raw(
            T::TYPE,
            &envelope.id.to_string(),
            serde_json::to_vec(&envelope).unwrap(),
        )
        .await;
        envelope
    }

    /// Publishes any bytes on `subject` (for malformed messages).
    pub async fn publish_raw(&self, subject: &str, msg_id: &str, payload: Vec<u8>) {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        self.js
            .publish_with_headers(self.ns.subject(subject), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// A SKU the catalog announced (through the real event), with `on_hand` received.
    pub async fn stocked(&self, sku: &str, on_hand: i64) {
        self.publish(product(sku)).await;
        let path = format!("/api/v1/inventory/{sku}");
        eventually(&format!("stock record of {sku}"), || async {
            self.get(&path).await.status() == StatusCode::OK
        })
        .await;
        if on_hand > 0 {
            self.receive(sku, on_hand).await;
        }
    }

    /// Sends a reserve command for `lines` with a TTL; returns the order id.
    pub async fn reserve(&self, lines: &[(&str, i32)], ttl_secs: u32) -> Uuid {
        let order_id = Uuid::now_v7();
        self.publish(reserve_command(order_id, lines, ttl_secs))
            .await;
        order_id
    }

    /// The stock row as stored: (on_hand, reserved, available).
    pub async fn counts(&self, sku: &str) -> (i64, i64, i64) {
        sqlx::query_as("SELECT on_hand, reserved, available FROM inventory.stock WHERE sku = $1")
            .bind(sku)
            .fetch_one(self.db.admin_pool())
            .await
            .unwrap()
    }

    /// The reservation's status, once it has one.
    pub async fn status(&self, order_id: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM inventory.reservations WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(self.db.admin_pool())
            .await
            .unwrap()
    }

    /// Waits until the reservation of `order_id` is `status`.
    pub async fn wait_status(&self, order_id: Uuid, status: &str) {
        eventually(&format!("order {order_id} {status}"), || async {
            self.status(order_id).await.as_deref() == Some(status)
        })
        .await;
    }

    /// Every event of type `T` the service wrote to its outbox (what it published or
    /// is about to), oldest first.
    pub async fn published<T: Event>(&self) -> Vec<T> {
        let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM inventory.outbox WHERE subject = $1 ORDER BY created_at, id",
        )
        .bind(self.ns.subject(T::TYPE))
        .fetch_all(self.db.admin_pool())
        .await
        .unwrap();
        payloads
            .iter()
            .map(|p| serde_json::from_slice::<Envelope<T>>(p).unwrap().data)
            .collect()
    }

    /// Waits until at least `n` events of type `T` were written, and returns them.
    pub async fn published_at_least<T: Event>(&self, n: usize) -> Vec<T> {
        eventually(&format!("{n} {}", T::TYPE), || async {
            self.published::<T>().await.len() >= n
        })
        .await;
        self.published().await
    }

    /// The reasons of the dead letters in this test's namespace, once there are `n`.
    pub async fn dead_letter_reasons(&self, n: usize) -> Vec<String> {
        shop_testkit::stream_headers(
            &self.js,
            &self.ns.name("DEAD_LETTERS"),
            shop_events::consumer::DEAD_LETTER_REASON,
            n,
            PATIENCE,
        )
        .await
    }

    /// A pool as the service's own role (to call its functions directly).
    pub async fn service_pool(&self, connections: u32) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect(&self.db.service_url("inventory"))
            .await
            .unwrap()
    }

    /// An outbox on the service's table and namespace (its relay is the app's).
    pub fn outbox(&self, pool: sqlx::PgPool) -> Outbox {
        let (outbox, _relay) = shop_events::outbox(
            pool,
            self.js.clone(),
            self.ns.clone(),
            "inventory",
            "inventory",
        );
        outbox
    }
}

pub fn product(sku: &str) -> ProductCreated {
    ProductCreated {
        product_id: format!("prod_{}", Uuid::new_v4().simple()),
        sku: sku.to_owned(),
        name: format!("Product {sku}"),
        category: "tees".to_owned(),
        price: Money {
            amount: 1999,
            currency: "EUR".to_owned(),
        },
        active: true,
    }
}

pub fn reserve_command(order_id: Uuid, lines: &[(&str, i32)], ttl_secs: u32) -> ReserveStock {
    ReserveStock {
        order_id,
        lines: lines
            .iter()
            .map(|(sku, quantity)| Line {
                sku: (*sku).to_owned(),
                quantity: *quantity,
            })
            .collect(),
        ttl_secs,
    }
}

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    shop_testkit::eventually(PATIENCE, what, check).await;
}

pub use shop_testkit::problem;
