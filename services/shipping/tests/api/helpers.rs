//! `spawn_app()`: the shipping service on a free port with its own fresh database and
//! NATS namespace, tokens signed by a key of the test's own, and typed ways to publish
//! the order service's events and read what the service stored and published.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use shop_auth::Role;
use shop_events::contracts::catalog::Money;
use shop_events::contracts::orders::{Address, OrderCancelled, OrderConfirmed, OrderLine};
use shop_events::{Envelope, Event, Namespace, Outbox};
use shop_shipping::Settings;
use shop_testkit::{TestDatabase, TestIssuer};
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a test waits for something asynchronous before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One running process of the service.
pub struct Instance {
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
    _server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Stops serving and the background tasks (they end with the test's runtime).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub issuer: TestIssuer,
    settings: Settings,
    _instance: Instance,
}

/// A customer: their token and the user id it carries.
pub struct Customer {
    pub token: String,
    pub user_id: Uuid,
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
    settings.service.database_url = Some(SecretString::from(db.service_url("shipping")));
    settings.service.db_max_connections = 20;
    configure(&mut settings);
    let ns = Namespace::prefixed(settings.service.events_prefix.clone());
    let issuer = TestIssuer::new();
    let instance = start(settings.clone(), &issuer).await;
    TestApp {
        address: instance.address.clone(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        js: jetstream::new(shop_testkit::nats().await.client().await),
        ns,
        issuer,
        settings,
        _instance: instance,
    }
}

async fn start(settings: Settings, issuer: &TestIssuer) -> Instance {
    let app = shop_shipping::build_with(settings, issuer.verifier())
        .await
        .expect("the app builds");
    let port = app.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Instance {
        address: format!("http://127.0.0.1:{port}"),
        stop: Some(stop),
        _server: server,
    }
}

impl TestApp {
    /// Another process of the service on the same database and NATS namespace (a
    /// replica), with its own settings changed by `configure`.
    pub async fn another_instance(&self, configure: impl FnOnce(&mut Settings)) -> Instance {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        start(settings, &self.issuer).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn admin_token(&self) -> String {
        self.issuer.token(&[Role::Customer, Role::Admin], 600)
    }

    /// A new customer (a user id of their own).
    pub async fn customer(&self) -> Customer {
        let token = self.issuer.token(&[Role::Customer], 600);
        let claims = self.issuer.verifier().verify(&token).await.unwrap();
        Customer {
            token,
            user_id: claims.sub,
        }
    }

    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn post_as(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Publishes `data` as the order service would (an envelope of its own, in this
    /// test's namespace); returns the envelope and its stream sequence.
    pub async fn publish<T: Event>(&self, data: T) -> (Envelope<T>, u64) {
        let envelope = Envelope::new("order", data);
        let sequence = self
            .publish_raw(
                T::TYPE,
                &envelope.id.to_string(),
                serde_json::to_vec(&envelope).unwrap(),
            )
            .await;
        (envelope, sequence)
    }

    /// Publishes any bytes on `subject` with `msg_id` as `Nats-Msg-Id`; returns the
    /// stream sequence.
    pub async fn publish_raw(&self, subject: &str, msg_id: &str, payload: Vec<u8>) -> u64 {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        let ack = self
            .js
            .publish_with_headers(self.ns.subject(subject), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(!ack.duplicate, "the broker stored it");
        ack.sequence
    }

    /// Publishes a confirmation of a new order of `user_id`; returns the order id.
    pub async fn confirm_order(&self, user_id: Uuid) -> Uuid {
        let order_id = Uuid::now_v7();
        self.publish(confirmed(order_id, user_id)).await;
        order_id
    }

    /// Publishes the order's cancellation; returns its stream sequence.
    pub async fn cancel_order(&self, order_id: Uuid, reason: &str) -> u64 {
        let cancelled = OrderCancelled {
            order_id,
            reason: reason.to_owned(),
        };
        self.publish(cancelled).await.1
    }

    /// Waits until `consumer` has acknowledged every message up to stream sequence
    /// `sequence` (so whatever it did with them has committed).
    pub async fn wait_handled(&self, consumer: &str, sequence: u64) {
        let durable = self.ns.name(consumer);
        eventually(&format!("{consumer} past {sequence}"), || async {
            let Ok(stream) = self.js.get_stream(self.ns.name("ORDERS")).await else {
                return false;
            };
            let Ok(mut consumer) = stream.get_consumer::<pull::Config>(&durable).await else {
                return false;
            };
            let info = consumer.info().await.unwrap();
            info.ack_floor.stream_sequence >= sequence
        })
        .await;
    }

    /// The shipment of the order as an admin reads it, once it exists.
    pub async fn shipment_of(&self, order_id: Uuid) -> Value {
        eventually(&format!("the shipment of order {order_id}"), || async {
            self.status_of(order_id).await.is_some()
        })
        .await;
        let page = self
            .list_as(&format!("?order_id={order_id}"), &self.admin_token())
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        page["items"][0].clone()
    }

    /// A page of `GET /api/v1/shipments{query}`, asserting 200.
    pub async fn list_as(&self, query: &str, token: &str) -> Value {
        let response = self
            .get_as(&format!("/api/v1/shipments{query}"), Some(token))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The status of the order's shipment as stored, if it has one.
    pub async fn status_of(&self, order_id: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM shipping.shipments WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(self.db.admin_pool())
            .await
            .unwrap()
    }

    /// Waits until the order's shipment is `status`.
    pub async fn wait_status(&self, order_id: Uuid, status: &str) {
        eventually(&format!("order {order_id}'s shipment {status}"), || async {
            self.status_of(order_id).await.as_deref() == Some(status)
        })
        .await;
    }

    /// A step as an admin, asserting 200; returns the shipment.
    pub async fn step(&self, shipment_id: &str, step: &str) -> Value {
        let response = self
            .post_as(
                &format!("/api/v1/shipments/{shipment_id}/{step}"),
                Some(&self.admin_token()),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{step}");
        response.json().await.unwrap()
    }

    /// Every event of type `T` the service wrote to its outbox (what it published or
    /// is about to), oldest first.
    pub async fn published<T: Event>(&self) -> Vec<T> {
        let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT payload FROM shipping.outbox WHERE subject = $1 ORDER BY created_at, id",
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

    /// How many rows a table of the schema holds.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM shipping.{table}"
        )))
        .fetch_one(self.db.admin_pool())
        .await
        .unwrap()
    }

    /// A pool as the service's own role (to call its functions directly).
    pub async fn service_pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.db.service_url("shipping"))
            .await
            .unwrap()
    }

    /// An outbox on the service's table and namespace (its relay is the app's).
    pub fn outbox(&self, pool: sqlx::PgPool) -> Outbox {
        let (outbox, _relay) = shop_events::outbox(
            pool,
            self.js.clone(),
            self.ns.clone(),
            "shipping",
            "shipping",
        );
        outbox
    }
}

/// A confirmation as the order service sends it.
pub fn confirmed(order_id: Uuid, user_id: Uuid) -> OrderConfirmed {
    let unit_price = Money {
        amount: 1999,
        currency: "EUR".to_owned(),
    };
    OrderConfirmed {
        order_id,
        user_id,
        lines: vec![OrderLine {
            product_id: format!("prod_{}", Uuid::new_v4().simple()),
            sku: "KIT-KETTLE-01".to_owned(),
            quantity: 2,
            unit_price,
        }],
        total: Money {
            amount: 3998,
            currency: "EUR".to_owned(),
        },
        shipping_address: Address {
            name: "Ada Lovelace".to_owned(),
            line1: "12 St James's Square".to_owned(),
            line2: None,
            city: "London".to_owned(),
            postal_code: "SW1Y 4JH".to_owned(),
            country: "GB".to_owned(),
        },
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
