//! A fresh database with the outbox tables in the `users` schema, a JetStream context
//! with this test's own namespace, and a recording handler.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use shop_events::contracts::users::UserRegistered;
use shop_events::{
    Consumer, ConsumerConfig, Envelope, EventHandler, HandlerError, Namespace, Outbox, Relay,
};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

pub struct Harness {
    pub _db: Option<shop_testkit::TestDatabase>,
    pub pool: PgPool,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub outbox: Outbox,
    relay: Relay,
    stop: watch::Sender<bool>,
}

pub async fn harness() -> Harness {
    let nats = shop_testkit::nats().await;
    harness_on(nats.url()).await
}

/// The same, on a NATS of the test's own (one it can stop and start).
pub async fn harness_on(nats_url: &str) -> Harness {
    let db = shop_testkit::fresh_database().await;
    let url = db.service_url("user");
    harness_with(Some(db), &url, nats_url).await
}

/// The same, on a database of the test's own (`database_url` is the user role's),
/// which it can stop and start. The pool gives up on a connection after a second,
/// so an outage shows quickly.
pub async fn harness_with(
    db: Option<shop_testkit::TestDatabase>,
    database_url: &str,
    nats_url: &str,
) -> Harness {
    shop_telemetry::init_for_tests();
    let url = secrecy::SecretString::from(database_url.to_owned());
    let settings = shop_db::PoolSettings {
        acquire_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let pool = shop_db::connect_lazy(&url, "users", &settings).unwrap();
    sqlx::raw_sql(include_str!("../../sql/events.sql"))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE effects (event_id uuid NOT NULL, trace_id text)")
        .execute(&pool)
        .await
        .unwrap();
    let (_client, js) = shop_events::connect::connect(
        nats_url,
        "test",
        Duration::from_secs(10),
        &Default::default(),
    )
    .await
    .unwrap();
    let ns = Namespace::prefixed(shop_testkit::nats_prefix());
    shop_events::ensure_stream(&js, &ns, "users").await.unwrap();
    shop_events::ensure_dead_letter_stream(&js, &ns)
        .await
        .unwrap();
    let (outbox, relay) =
        shop_events::outbox(pool.clone(), js.clone(), ns.clone(), "users", "user");
    let (stop, _) = watch::channel(false);
    Harness {
        _db: db,
        pool,
        js,
        ns,
        outbox,
        relay,
        stop,
    }
}

impl Harness {
    /// Commits `n` new `users.user.registered` events; returns their ids.
    pub async fn commit_events(&self, n: usize) -> Vec<Uuid> {
        self.commit(std::iter::repeat_with(registered).take(n))
            .await
    }

    /// Commits the given events in one transaction; returns their ids.
    pub async fn commit(&self, events: impl Iterator<Item = UserRegistered>) -> Vec<Uuid> {
        let mut tx = self.pool.begin().await.unwrap();
        let mut ids = Vec::new();
        for event in events {
            ids.push(self.outbox.enqueue(&mut tx, event).await.unwrap());
        }
        tx.commit().await.unwrap();
        ids
    }

    pub fn relay(&self) -> Relay {
        self.relay
            .clone()
            .configure(|c| c.poll_interval = Duration::from_millis(200))
    }

    pub fn consumer_config(&self) -> ConsumerConfig {
        let mut config = ConsumerConfig::new("test-recorder");
        config.backoff = Duration::from_millis(10);
        config.max_backoff = Duration::from_millis(100);
        config.max_deliveries = 3;
        config
    }

    /// Runs `task` in the background until the harness stops it.
    pub fn spawn<F>(&self, task: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stopped = self.stop.subscribe();
        tokio::spawn(task(stopped));
    }

    pub fn spawn_relay(&self) {
        let relay = self.relay();
        self.spawn(|stop| relay.run(stopped(stop)));
    }

    pub fn spawn_consumer(&self, handler: Recorder) {
        self.spawn_consumer_with(self.consumer_config(), handler);
    }

    pub fn spawn_consumer_with(&self, config: ConsumerConfig, handler: Recorder) {
        let consumer = Consumer::new(
            self.pool.clone(),
            self.js.clone(),
            self.ns.clone(),
            config,
            handler,
        );
        self.spawn(|stop| consumer.run(stopped(stop)));
    }

    pub async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Polls `sql` (a count) until it equals `expected`, or fails after `deadline`.
    pub async fn wait_for_count(&self, sql: &'static str, expected: i64, deadline: Duration) {
        let started = Instant::now();
        loop {
            let got = self.scalar(sql).await;
            if got == expected {
                return;
            }
            assert!(
                started.elapsed() < deadline,
                "{sql}: {got}, expected {expected} within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages currently stored in one of this test's streams.
    pub async fn stream_messages(&self, stream: &str) -> u64 {
        let mut stream = self.js.get_stream(self.ns.name(stream)).await.unwrap();
        stream.info().await.unwrap().state.messages
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

pub fn registered() -> UserRegistered {
    UserRegistered {
        user_id: Uuid::now_v7(),
        email: "ada@example.com".into(),
        name: "Ada".into(),
    }
}

/// A whole envelope, for publishing by hand (past the outbox).
pub fn registered_envelope() -> Envelope<UserRegistered> {
    Envelope::new("user", registered())
}

/// Records each event it handles (with the trace id it ran under) in `effects`.
#[derive(Clone, Copy)]
pub enum Recorder {
    Records,
    AlwaysFails,
    /// Refuses (permanently) the registration of this e-mail address.
    Refuses(&'static str),
}

impl EventHandler for Recorder {
    type Event = UserRegistered;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<UserRegistered>,
    ) -> Result<(), HandlerError> {
        if let Recorder::AlwaysFails = self {
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "the mail server is down"
            )));
        }
        match self {
            Recorder::Refuses(email) if event.data.email == *email => {
                return Err(HandlerError::Permanent(format!("{email} is banned")));
            }
            _ => {}
        }
        sqlx::query("INSERT INTO effects (event_id, trace_id) VALUES ($1, $2)")
            .bind(event.id)
            .bind(shop_telemetry::current_trace_id())
            .execute(tx)
            .await?;
        Ok(())
    }
}
