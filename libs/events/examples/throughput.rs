//! Event backbone benchmark: events/s from commit to consumer ack through one relay,
//! and the commit-to-handled lag at half that rate.
//!
//! `cargo run --release -p shop-events --example throughput [-- EVENTS [RATE]]`
//!
//! RATE fixes the paced rate of the lag measurement (events/s); by default it is half
//! the measured throughput. Fix it to compare the lag of two builds at the same load.
//!
//! Starts its own durable Postgres (fsync on) in a temporary folder and uses the test
//! kit's nats-server (JetStream file storage, default sync). The consumer's handler does
//! what every real handler does at least: records the event id in `processed_events`
//! in its own transaction.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shop_events::contracts::users::UserRegistered;
use shop_events::{
    Consumer, ConsumerConfig, Envelope, EventHandler, HandlerError, Namespace, Outbox,
};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

const PRODUCERS: usize = 16;

#[derive(Clone, Default)]
struct Lags(Arc<Mutex<Vec<f64>>>);

impl EventHandler for Lags {
    type Event = UserRegistered;

    async fn handle(
        &self,
        _tx: &mut PgConnection,
        event: Envelope<UserRegistered>,
    ) -> Result<(), HandlerError> {
        let lag = (chrono::Utc::now() - event.occurred_at).as_seconds_f64();
        self.0.lock().unwrap().push(lag);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let port = shop_servers::free_port()?;
    let mut options = shop_servers::PgOptions::new(dir.path().join("pg"), port);
    options.durable = true;
    let pg = shop_servers::PgServer::start(options).await?;
    let admin = PgPool::connect(&pg.admin_url()).await?;
    shop_db::bootstrap(&admin, |svc| shop_db::local_password(svc.role)).await?;
    let url = secrecy::SecretString::from(pg.url(
        "user_svc",
        Some("user_svc-local-password"),
        "postgres",
    ));
    let pool = shop_db::connect_lazy(
        &url,
        "users",
        &shop_db::PoolSettings {
            max_connections: 90,
            ..Default::default()
        },
    )?;
    sqlx::raw_sql(include_str!("../sql/events.sql"))
        .execute(&pool)
        .await?;

    let nats = shop_testkit::nats().await;
    let (_client, js) = shop_events::connect::connect(
        nats.url(),
        "bench",
        Duration::from_secs(10),
        &Default::default(),
    )
    .await?;
    let ns = Namespace::prefixed(shop_testkit::nats_prefix());
    shop_events::ensure_stream(&js, &ns, "users").await?;
    shop_events::ensure_dead_letter_stream(&js, &ns).await?;
    let (outbox, relay) =
        shop_events::outbox(pool.clone(), js.clone(), ns.clone(), "users", "bench");

    // 1. Throughput of the backbone: N events already committed (in transactions of
    //    500, as after an outage or under a burst), then one relay and one consumer
    //    start; the clock runs until the consumer has handled and acked the last one.
    let started = Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let mut tx = pool.begin().await?;
        for i in chunk {
            outbox.enqueue(&mut tx, event(*i)).await?;
        }
        tx.commit().await?;
    }
    println!(
        "preloaded {total} events in {:.2}s",
        started.elapsed().as_secs_f64()
    );

    let (stop, stopped) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let lags = Lags::default();
    let started = Instant::now();
    tokio::spawn(relay.run(until(stopped.clone())));
    let config = ConsumerConfig::new("bench");
    let (batch, in_flight) = (config.batch, config.concurrency);
    let consumer = Consumer::new(pool.clone(), js.clone(), ns.clone(), config, lags.clone());
    tokio::spawn(consumer.run(until(stopped.clone())));
    wait_handled(&lags, total).await;
    let elapsed = started.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {total} events from outbox to consumer ack in {:.2}s: {rate:.0} events/s (one relay; one consumer, transactions of up to {batch} events, {in_flight} in flight)",
        elapsed.as_secs_f64()
    );

    // 2. Lag at half that rate for 10 s: producers commit one event per transaction,
    //    paced; lag = from `occurred_at` (just before the commit) to handled.
    lags.0.lock().unwrap().clear();
    let half = match std::env::args().nth(2) {
        Some(fixed) => fixed.parse()?,
        None => rate / 2.0,
    };
    let paced = (half * 10.0) as usize;
    produce(&pool, &outbox, paced, Some(half)).await?;
    wait_handled(&lags, paced).await;
    let mut sample = lags.0.lock().unwrap().clone();
    sample.sort_by(f64::total_cmp);
    let pct = |p: f64| sample[((sample.len() as f64 - 1.0) * p).round() as usize] * 1000.0;
    println!(
        "lag at {half:.0} events/s ({paced} events): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );

    let _ = stop.send(true);
    pg.stop().await;
    Ok(())
}

/// Commits `n` single-event transactions from `PRODUCERS` tasks, optionally paced to
/// `rate` events/s overall.
async fn produce(
    pool: &PgPool,
    outbox: &Outbox,
    n: usize,
    rate: Option<f64>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let tasks = (0..PRODUCERS).map(|p| {
        let (pool, outbox) = (pool.clone(), outbox.clone());
        tokio::spawn(async move {
            let mut i = p;
            while i < n {
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let mut tx = pool.begin().await?;
                let event = UserRegistered {
                    user_id: Uuid::now_v7(),
                    email: format!("u{i}@example.com"),
                    name: "Bench".into(),
                };
                outbox.enqueue(&mut tx, event).await?;
                tx.commit().await?;
                i += PRODUCERS;
            }
            anyhow::Ok(())
        })
    });
    for task in futures::future::join_all(tasks).await {
        task??;
    }
    Ok(())
}

fn event(i: usize) -> UserRegistered {
    UserRegistered {
        user_id: Uuid::now_v7(),
        email: format!("u{i}@example.com"),
        name: "Bench".into(),
    }
}

async fn wait_handled(lags: &Lags, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while lags.0.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "the consumer did not catch up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
