//! `spawn_app()`: the payment service on a free port with its own fresh database and
//! NATS namespace, a simulated processor the test can inspect, short processor
//! timings, tokens signed by a key of the test's own, and typed ways to send it
//! commands and read what it published.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use reqwest::Response;
use secrecy::SecretString;
use serde_json::Value;
use shop_auth::Role;
use shop_events::contracts::catalog::Money;
use shop_events::contracts::payments::{AuthorizePayment, CapturePayment, VoidPayment};
use shop_events::{Envelope, Event, Namespace};
use shop_payment::Settings;
use shop_payment::processor::Processor;
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
    /// The service's simulated processor (the same one, shared).
    pub processor: Processor,
    issuer: TestIssuer,
    stop: Option<oneshot::Sender<()>>,
    _server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A caller: their token and the user id it carries.
pub struct User {
    pub token: String,
    pub id: Uuid,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Short timings: the service gives up on the processor after 1.5 s, `tok_timeout`
/// hangs 5 s, the authorizer sweeps every 200 ms.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    shop_telemetry::init_for_tests();
    let db = shop_testkit::fresh_database().await;
    let mut settings = Settings::default();
    settings.service.nats_url = shop_testkit::nats().await.url().to_owned();
    settings.service.events_prefix = shop_testkit::nats_prefix();
    settings.service.http.port = 0;
    settings.service.database_url = Some(SecretString::from(db.service_url("payment")));
    settings.service.db_max_connections = 20;
    settings.processor.timeout_ms = 1_500;
    settings.processor.hang_ms = 5_000;
    settings.processor.sweep_every_ms = 200;
    configure(&mut settings);
    settings.check().expect("valid test settings");
    let ns = Namespace::prefixed(settings.service.events_prefix.clone());

    let issuer = TestIssuer::new();
    let processor = Processor::new(settings.processor.clone());
    let app = shop_payment::build_with(settings, issuer.verifier(), processor.clone())
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
        processor,
        issuer,
        stop: Some(stop),
        _server: server,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A payment's row, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub status: String,
    pub decline_reason: Option<String>,
    pub card_token: Option<String>,
    pub attempts: i32,
    pub void_requested: bool,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A customer: a token and its user id.
    pub async fn customer(&self) -> User {
        self.user(&[Role::Customer]).await
    }

    pub async fn admin(&self) -> User {
        self.user(&[Role::Customer, Role::Admin]).await
    }

    async fn user(&self, roles: &[Role]) -> User {
        let token = self.issuer.token(roles, 600);
        let claims = self.issuer.verifier().verify(&token).await.unwrap();
        User {
            token,
            id: claims.user_id(),
        }
    }

    pub async fn get_as(&self, path: &str, user: &User) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Publishes `data` as an event of this test's namespace; returns its envelope.
    pub async fn publish<T: Event + Clone>(&self, data: T) -> Envelope<T> {
        let envelope = Envelope::new("test", data);
        self.publish_envelope(&envelope).await;
        envelope
    }

    /// Publishes this very envelope (again: the same event id).
    pub async fn publish_envelope<T: Event + Clone>(&self, envelope: &Envelope<T>) {
        let mut headers = HeaderMap::new();
        // A test's own id, so the broker's de-duplication never hides a redelivery
        // the test means to make.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            Uuid::now_v7().to_string().as_str(),
        );
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

    /// Sends an authorize command for a new order of `user` (or of a random user);
    /// returns the order id.
    pub async fn authorize(&self, token: &str, user: Option<&User>) -> Uuid {
        let order_id = Uuid::now_v7();
        let user_id = user.map_or_else(Uuid::now_v7, |u| u.id);
        self.publish(authorize_command(order_id, user_id, token))
            .await;
        order_id
    }

    pub async fn capture(&self, order_id: Uuid) {
        self.publish(CapturePayment { order_id }).await;
    }

    pub async fn void(&self, order_id: Uuid) {
        self.publish(VoidPayment {
            order_id,
            reason: "order cancelled: TIMEOUT".to_owned(),
        })
        .await;
    }

    /// The order's payment as stored, if it has one.
    pub async fn stored(&self, order_id: Uuid) -> Option<Stored> {
        sqlx::query_as(
            "SELECT id, user_id, status, decline_reason, card_token, attempts, void_requested
             FROM payments.payments WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(self.db.admin_pool())
        .await
        .unwrap()
    }

    /// Payments stored for the order (one, by the unique key; counted to prove it).
    pub async fn payment_count(&self, order_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM payments.payments WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(self.db.admin_pool())
            .await
            .unwrap()
    }

    /// Waits until the order's payment is `status`, and returns it.
    pub async fn wait_status(&self, order_id: Uuid, status: &str) -> Stored {
        eventually(&format!("payment of {order_id} {status}"), || async {
            self.stored(order_id)
                .await
                .is_some_and(|p| p.status == status)
        })
        .await;
        self.stored(order_id).await.unwrap()
    }

    /// Every answer published about `order_id`, oldest first: (subject without the
    /// test prefix, data).
    pub async fn answers(&self, order_id: Uuid) -> Vec<(String, Value)> {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT subject, payload FROM payments.outbox ORDER BY created_at, id")
                .fetch_all(self.db.admin_pool())
                .await
                .unwrap();
        rows.into_iter()
            .filter_map(|(subject, payload)| {
                let envelope: Value = serde_json::from_slice(&payload).unwrap();
                let data = envelope["data"].clone();
                (data["order_id"] == order_id.to_string()).then(|| {
                    let kind = envelope["type"].as_str().unwrap_or(&subject).to_owned();
                    (kind, data)
                })
            })
            .collect()
    }

    /// Waits until at least `n` answers about `order_id` were written; returns them.
    pub async fn answers_at_least(&self, order_id: Uuid, n: usize) -> Vec<(String, Value)> {
        eventually(&format!("{n} answers about {order_id}"), || async {
            self.answers(order_id).await.len() >= n
        })
        .await;
        self.answers(order_id).await
    }

    /// The answers' subjects only.
    pub async fn subjects(&self, order_id: Uuid) -> Vec<String> {
        self.answers(order_id)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect()
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

    /// Waits until a durable consumer has been handed every message of its subject
    /// and acked each one (handled, answered or parked).
    pub async fn drained(&self, consumer: &str) {
        eventually(&format!("{consumer} drained"), || async {
            let stream = self.js.get_stream(self.ns.name("PAYMENTS")).await.unwrap();
            match stream.consumer_info(self.ns.name(consumer)).await {
                Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
                Err(_) => false,
            }
        })
        .await;
    }

    /// How often JetStream redelivered messages of a durable consumer.
    pub async fn redeliveries(&self, consumer: &str) -> usize {
        let stream = self.js.get_stream(self.ns.name("PAYMENTS")).await.unwrap();
        stream
            .consumer_info(self.ns.name(consumer))
            .await
            .unwrap()
            .num_redelivered
    }
}

pub fn authorize_command(order_id: Uuid, user_id: Uuid, token: &str) -> AuthorizePayment {
    AuthorizePayment {
        order_id,
        user_id,
        amount: Money {
            amount: 1299,
            currency: "EUR".to_owned(),
        },
        card_token: token.to_owned(),
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
