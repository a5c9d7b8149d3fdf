//! `spawn_app()`: the order service on a free port with its own fresh database and
//! NATS namespace, tokens signed by a key of the test's own, and a stand-in catalog of
//! the test's own (an axum server answering the internal price lookup the way the
//! real catalog does), plus typed ways to play the inventory, the payment and the
//! shipping service on NATS and to read what the order service sent.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use reqwest::header::HeaderValue;
use secrecy::SecretString;
use serde_json::{Value, json};
use shop_events::{Envelope, Event, Namespace};
use shop_order::Settings;
use shop_testkit::{TestDatabase, TestIssuer};
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a test waits for something asynchronous before it fails: past a
/// consumer's ack wait (30 s) and the deadlines' catch-up after a restart (45 s), since
/// an event handed to a stopped app's last pull request is redelivered only then.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub catalog: CatalogStub,
    issuer: TestIssuer,
    settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The app against one stand-in catalog, with `configure` applied last.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let catalog = CatalogStub::start().await;
    spawn_app_against(catalog, |settings, _| configure(settings)).await
}

/// The app against `catalog`; `configure` may point it at other instances too.
pub async fn spawn_app_against(
    catalog: CatalogStub,
    configure: impl FnOnce(&mut Settings, &CatalogStub),
) -> TestApp {
    shop_telemetry::init_for_tests();
    let db = shop_testkit::fresh_database().await;
    let mut settings = Settings::default();
    settings.service.nats_url = shop_testkit::nats().await.url().to_owned();
    settings.service.events_prefix = shop_testkit::nats_prefix();
    settings.service.http.port = 0;
    settings.service.database_url = Some(SecretString::from(db.service_url("order")));
    settings.service.db_max_connections = 20;
    settings.upstreams.catalog = catalog.url();
    // A stand-in that answers at once: failures show quickly.
    settings.catalog.timeout_ms = 500;
    settings.catalog.backoff.base_ms = 5;
    settings.catalog.backoff.max_ms = 20;
    settings.saga.deadline_check_every_ms = 100;
    configure(&mut settings, &catalog);
    let ns = Namespace::prefixed(settings.service.events_prefix.clone());

    let mut app = TestApp {
        address: String::new(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        js: jetstream::new(shop_testkit::nats().await.client().await),
        ns,
        catalog,
        issuer: TestIssuer::new(),
        settings,
        stop: None,
        server: None,
    };
    app.start(|_| {}).await;
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// Starts the service (again: on the same database and namespace, a new port),
    /// with `configure` applied to its settings.
    pub async fn start(&mut self, configure: impl FnOnce(&mut Settings)) {
        configure(&mut self.settings);
        let app = shop_order::build_with(self.settings.clone(), self.issuer.verifier())
            .await
            .expect("the app builds");
        self.address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        self.server = Some(tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    /// Stops the service and waits until it has (its consumers, relay and jobs too).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new customer's token (a fresh user id each time).
    pub fn customer(&self) -> String {
        self.issuer.customer()
    }

    pub fn admin(&self) -> String {
        self.issuer.admin()
    }

    /// `POST /api/v1/orders` as `token` with `key` (no key header if `None`).
    pub async fn place(
        &self,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/api/v1/orders")).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    /// Places a valid order for `lines` as `token`, asserts 202, returns the body.
    pub async fn placed(&self, token: &str, lines: &[(&str, i32)]) -> Value {
        let key = Uuid::new_v4().to_string();
        let response = self
            .place(Some(token), Some(&key), &order_body(lines))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{:?}",
            response.text().await
        );
        response.json().await.unwrap()
    }

    /// Places `body` as `token` with `key`, asserts 202, returns the body.
    pub async fn placed_with_key(&self, token: &str, key: &str, body: &Value) -> Value {
        let response = self.place(Some(token), Some(key), body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json().await.unwrap()
    }

    /// A priced product in the stand-in catalog; returns its id.
    pub fn product(&self, amount: i64) -> String {
        self.catalog.add(amount, "EUR", true)
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/v1/orders/{id}` as `token`, asserting 200.
    pub async fn order(&self, id: Uuid, token: &str) -> Value {
        let response = self.get_as(&format!("/api/v1/orders/{id}"), token).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The order's status and cancel reason, as stored.
    pub async fn status(&self, id: Uuid) -> (String, Option<String>) {
        sqlx::query_as("SELECT status, cancel_reason FROM orders.orders WHERE id = $1")
            .bind(id)
            .fetch_one(self.db.admin_pool())
            .await
            .unwrap()
    }

    /// Waits until the order is `status`.
    pub async fn wait_status(&self, id: Uuid, status: &str) {
        eventually(&format!("order {id} {status}"), || async {
            self.status(id).await.0 == status
        })
        .await;
    }

    /// How many rows `table` of the order schema holds.
    pub async fn rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM orders.{table}"
        )))
        .fetch_one(self.db.admin_pool())
        .await
        .unwrap()
    }

    /// Nothing of a refused request was written: no order, line, history, key or
    /// outbox row.
    pub async fn assert_nothing_written(&self) {
        for table in [
            "orders",
            "order_lines",
            "order_history",
            "idempotency_keys",
            "outbox",
        ] {
            assert_eq!(self.rows(table).await, 0, "{table} must stay empty");
        }
    }

    /// Publishes `data` as the event another service would; returns its envelope.
    pub async fn publish<T: Event + Clone>(&self, data: T) -> Envelope<T> {
        let envelope = Envelope::new("test", data);
        self.publish_envelope(&envelope, &envelope.id.to_string())
            .await;
        envelope
    }

    /// Publishes an envelope with a given broker message id (the same id twice is a
    /// redelivery the broker would drop; another id gets it to the consumer).
    pub async fn publish_envelope<T: Event>(&self, envelope: &Envelope<T>, msg_id: &str) {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        self.js
            .publish_with_headers(
                self.ns.subject(T::TYPE),
                headers,
                serde_json::to_vec(envelope).unwrap().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Every message of type `T` the order service wrote to its outbox about
    /// `order_id`, oldest first.
    pub async fn sent<T: Event>(&self, order_id: Uuid) -> Vec<T> {
        let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM orders.outbox WHERE subject = $1 ORDER BY created_at, id",
        )
        .bind(self.ns.subject(T::TYPE))
        .fetch_all(self.db.admin_pool())
        .await
        .unwrap();
        payloads
            .iter()
            .map(|p| serde_json::from_slice::<Envelope<Value>>(p).unwrap())
            .filter(|e| e.data["order_id"] == json!(order_id))
            .map(|e| serde_json::from_value(e.data).unwrap())
            .collect()
    }

    /// Waits until at least `n` messages of type `T` about `order_id` were sent.
    pub async fn sent_at_least<T: Event>(&self, order_id: Uuid, n: usize) -> Vec<T> {
        eventually(&format!("{n} {} for {order_id}", T::TYPE), || async {
            self.sent::<T>(order_id).await.len() >= n
        })
        .await;
        self.sent(order_id).await
    }

    /// Every subject the order service sent about `order_id`, in order, without the
    /// test's prefix.
    pub async fn subjects_sent(&self, order_id: Uuid) -> Vec<String> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT subject, payload FROM orders.outbox ORDER BY created_at, id")
                .fetch_all(self.db.admin_pool())
                .await
                .unwrap();
        let prefix = self.ns.subject("");
        rows.into_iter()
            .filter(|(_, p)| {
                serde_json::from_slice::<Envelope<Value>>(p).unwrap().data["order_id"]
                    == json!(order_id)
            })
            .map(|(s, _)| s.trim_start_matches(&prefix).to_owned())
            .collect()
    }

    /// The history's `(from, to, cause)` triples.
    pub async fn history(&self, id: Uuid) -> Vec<(Option<String>, String, String)> {
        sqlx::query_as(
            "SELECT from_status, to_status, cause FROM orders.order_history
             WHERE order_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.db.admin_pool())
        .await
        .unwrap()
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

    /// Makes the order's deadline pass now, as if the time had gone by.
    pub async fn expire_deadline(&self, id: Uuid) {
        sqlx::query(
            "UPDATE orders.orders SET deadline_at = now() - interval '1 second' WHERE id = $1",
        )
        .bind(id)
        .execute(self.db.admin_pool())
        .await
        .unwrap();
    }
}

/// A valid placement body for `(product_id, quantity)` lines.
pub fn order_body(lines: &[(&str, i32)]) -> Value {
    json!({
        "items": lines.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect::<Vec<_>>(),
        "shipping_address": {
            "name": "Ada Lovelace", "line1": "12 St James's Square",
            "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"
        },
        "payment": {"card_token": "tok_visa"}
    })
}

/// The id in an order's JSON.
pub fn id_of(order: &Value) -> Uuid {
    order["id"].as_str().unwrap().parse().unwrap()
}

/// How the stand-in catalog answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As the real catalog does.
    Answer,
    /// Every lookup fails with this status.
    Fail(u16),
    /// Every lookup hangs (longer than any client waits).
    Hang,
}

#[derive(Default)]
struct StubState {
    /// id -> (sku, name, amount, currency, active)
    products: HashMap<String, (String, String, i64, String, bool)>,
    mode: Option<Mode>,
    /// The ids of each lookup received.
    lookups: Vec<Vec<String>>,
}

/// A stand-in for the catalog's internal lookup, answering its documented shape
/// (`{items: [{id, sku, name, price, active, version}], not_found}`), on a free port.
#[derive(Clone)]
pub struct CatalogStub {
    addr: SocketAddr,
    state: Arc<Mutex<StubState>>,
    calls: Arc<AtomicUsize>,
}

impl CatalogStub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(StubState::default()));
        let calls = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new()
            .route(shop_order::catalog::LOOKUP_PATH, post(lookup))
            .with_state((state.clone(), calls.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, state, calls }
    }

    /// An address where nothing listens (a catalog instance that is down).
    pub async fn dead_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A product with a fresh id; returns the id.
    pub fn add(&self, amount: i64, currency: &str, active: bool) -> String {
        let id = format!("prod_{}", Uuid::now_v7().simple());
        self.insert(&id, amount, currency, active);
        id
    }

    /// A product with the given id (its SKU made from the id).
    pub fn insert(&self, id: &str, amount: i64, currency: &str, active: bool) {
        let sku = format!("SKU-{}", &id[id.len() - 8..]).to_uppercase();
        self.state.lock().unwrap().products.insert(
            id.to_owned(),
            (
                sku,
                format!("Product {id}"),
                amount,
                currency.to_owned(),
                active,
            ),
        );
    }

    /// Changes a product's price.
    pub fn reprice(&self, id: &str, amount: i64) {
        if let Some(product) = self.state.lock().unwrap().products.get_mut(id) {
            product.2 = amount;
        }
    }

    /// The SKU of a product.
    pub fn sku(&self, id: &str) -> String {
        self.state.lock().unwrap().products[id].0.clone()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// How many lookups reached it.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The ids of every lookup it answered or failed.
    pub fn lookups(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().lookups.clone()
    }
}

type StubShared = (Arc<Mutex<StubState>>, Arc<AtomicUsize>);

async fn lookup(State((state, calls)): State<StubShared>, body: axum::Json<Value>) -> Response {
    calls.fetch_add(1, Ordering::SeqCst);
    let ids: Vec<String> = body.0["ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let (mode, answer) = {
        let mut state = state.lock().unwrap();
        state.lookups.push(ids.clone());
        let mut items = Vec::new();
        let mut not_found = Vec::new();
        for id in &ids {
            match state.products.get(id) {
                Some((sku, name, amount, currency, active)) => items.push(json!({
                    "id": id, "sku": sku, "name": name,
                    "price": {"amount": amount, "currency": currency},
                    "active": active, "version": 1
                })),
                None => not_found.push(id.clone()),
            }
        }
        (
            state.mode.unwrap_or(Mode::Answer),
            json!({"items": items, "not_found": not_found}),
        )
    };
    match mode {
        Mode::Answer => {
            let mut response = axum::Json(answer).into_response();
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-store"));
            response
        }
        Mode::Fail(status) => (
            StatusCode::from_u16(status).unwrap(),
            "the stand-in catalog fails on purpose",
        )
            .into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
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

/// The `(field, code)` pairs of a validation problem.
pub fn field_errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
