//! Inventory benchmark: reservations/s, all on one SKU (every reservation waits for
//! the lock of the same stock row) and spread over 40 SKUs.
//!
//! `cargo run --release -p shop-inventory --example reservations [-- ORDERS]`
//!
//! ORDERS (default 5,000) reserve commands per scenario, one line of one unit each,
//! published as fast as JetStream acknowledges them (up to `PIPELINE` unacknowledged).
//! The clock runs from the first publish until every order has its row in
//! `inventory.reservations` (its answer is committed in the same transaction, in the
//! outbox); the count is polled every 20 ms. Per-order latency runs from the publish to
//! the answer being written (the outbox row's `clock_timestamp()`, just before the
//! commit): it leaves out the commit itself and the relay.
//!
//! Self-contained: a durable Postgres (fsync on) in a temporary folder, the test kit's
//! nats-server (JetStream file storage), and the real inventory built in-process with
//! its production settings (10 connections; the reserve consumer handles one command
//! per transaction, 4 in flight). Everything shares the machine's cores. The service
//! logs nothing unless RUST_LOG is set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use async_nats::HeaderMap;
use async_nats::jetstream;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use shop_auth::Role;
use shop_events::contracts::catalog::{Money, ProductCreated};
use shop_events::contracts::inventory::{Line, ReserveStock, StockReserved};
use shop_events::{Envelope, Event, Namespace};
use shop_inventory::Settings;
use shop_inventory::consumers::reservation;
use shop_inventory::reservations::MAX_QUANTITY;
use shop_testkit::TestIssuer;
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

/// The SKUs of the spread scenario.
const SKUS: usize = 40;
/// Long enough that nothing expires during a run.
const TTL_SECS: u32 = 600;
/// Publishes awaiting their JetStream ack at once (the context allows 5,000).
const PIPELINE: usize = 512;
/// A scenario fails if the count of answers stands still this long.
const STALL: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let orders: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("ORDERS: a number of orders")?
        .unwrap_or(5_000);
    ensure!(orders > 0, "ORDERS must be at least 1");
    // Silent by default: the service logs every command it handles, and writing those
    // lines would take its share of the two cores. RUST_LOG=warn shows what went wrong.
    if std::env::var_os("RUST_LOG").is_some() {
        shop_telemetry::init_for_tests();
    }

    let dir = tempfile::tempdir()?;
    // Postgres refuses to run as root; then it runs as `postgres`, which must be able
    // to enter the temporary folder.
    if let Some(owner) = shop_servers::postgres::postgres_owner()? {
        owner.chown(dir.path())?;
    }
    let mut options =
        shop_servers::PgOptions::new(dir.path().join("pg"), shop_servers::free_port()?);
    options.durable = true;
    let pg = shop_servers::PgServer::start(options).await?;
    let admin = PgPool::connect(&pg.admin_url()).await?;
    shop_db::bootstrap(&admin, |svc| shop_db::local_password(svc.role)).await?;
    let password = shop_db::local_password("inventory_svc");
    let nats = shop_testkit::nats().await;

    let mut settings = Settings::default();
    settings.service.nats_url = nats.url().to_owned();
    settings.service.events_prefix = shop_testkit::nats_prefix();
    settings.service.http.port = 0;
    settings.service.database_url = Some(SecretString::from(pg.url(
        "inventory_svc",
        Some(password.expose_secret()),
        "postgres",
    )));
    let ns = Namespace::prefixed(settings.service.events_prefix.clone());
    let signer = TestIssuer::new();
    let verifier = signer.verifier();
    let app = shop_inventory::build_with(settings, verifier).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let bench = Bench {
        js: jetstream::new(nats.client().await),
        ns,
        admin,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        base,
        signer,
    };

    let one = "BENCH-ONE".to_owned();
    let spread: Vec<String> = (0..SKUS).map(|i| format!("BENCH-{i:02}")).collect();
    let started = Instant::now();
    // Each SKU can take every order of a scenario: receipts of at most MAX_QUANTITY.
    let receipts = orders / MAX_QUANTITY as usize + 1;
    bench
        .stock(std::iter::once(&one).chain(&spread), receipts)
        .await?;
    println!(
        "{} SKUs stocked with {} units each in {:.1}s",
        SKUS + 1,
        receipts * MAX_QUANTITY as usize,
        started.elapsed().as_secs_f64()
    );
    let config = reservation::reserve_config();
    println!(
        "{orders} reserve commands per scenario (1 unit each, TTL {TTL_SECS}s); the reserve \
         consumer handles {} command(s) per transaction, {} in flight",
        config.batch, config.concurrency
    );

    let contended: Vec<&str> = vec![one.as_str(); orders];
    bench.scenario("one SKU (contention)", &contended).await?;
    let spread: Vec<&str> = (0..orders).map(|i| spread[i % SKUS].as_str()).collect();
    bench
        .scenario(&format!("{SKUS} SKUs round-robin"), &spread)
        .await?;

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    pg.stop().await;
    Ok(())
}

struct Bench {
    js: jetstream::Context,
    ns: Namespace,
    /// The superuser, for reading the inventory's tables.
    admin: PgPool,
    http: reqwest::Client,
    base: String,
    signer: TestIssuer,
}

impl Bench {
    /// Creates the SKUs the way the catalog does (`catalog.product.created`), waits for
    /// their stock records, then receives `receipts` times the most one receipt may
    /// bring, over HTTP as an admin.
    async fn stock(
        &self,
        skus: impl Iterator<Item = &String>,
        receipts: usize,
    ) -> anyhow::Result<()> {
        let skus: Vec<&String> = skus.collect();
        for sku in &skus {
            let product = ProductCreated {
                product_id: format!("prod_{}", Uuid::new_v4().simple()),
                sku: (*sku).clone(),
                name: format!("Benchmark {sku}"),
                category: "bench".to_owned(),
                price: Money {
                    amount: 1000,
                    currency: "EUR".to_owned(),
                },
                active: true,
            };
            self.publish(&Envelope::new("bench", product)).await?;
        }
        let token = self.signer.token(&[Role::Customer, Role::Admin], 3600);
        for sku in &skus {
            let url = format!("{}/api/v1/inventory/{sku}", self.base);
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.http.get(&url).send().await?.status() != StatusCode::OK {
                ensure!(Instant::now() < deadline, "no stock record of {sku}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for i in 0..receipts {
                let body =
                    serde_json::json!({"quantity": MAX_QUANTITY, "reason": format!("bench {i}")});
                let response = self
                    .http
                    .post(format!("{url}/receive"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                ensure!(
                    status == StatusCode::OK,
                    "receiving {sku}: {status} {}",
                    response.text().await.unwrap_or_default()
                );
            }
        }
        self.settle().await
    }

    /// One reserve command per entry of `skus` (the SKU of its single line), all
    /// published at once; reports reservations/s, latencies and the checks.
    async fn scenario(&self, name: &str, skus: &[&str]) -> anyhow::Result<()> {
        let orders = skus.len();
        let answered_before = self.answered().await?;
        let reserved_before = self.reserved().await?;
        let started = Instant::now();
        // Each publish waits for its ack (JetStream stored it); `PIPELINE` of them are
        // under way at once, so publishing never waits for a round trip.
        let sent: Vec<anyhow::Result<(Uuid, DateTime<Utc>)>> = futures::stream::iter(skus)
            .map(|sku| async move {
                let command = ReserveStock {
                    order_id: Uuid::now_v7(),
                    lines: vec![Line {
                        sku: (*sku).to_owned(),
                        quantity: 1,
                    }],
                    ttl_secs: TTL_SECS,
                };
                let envelope = Envelope::new("bench", command);
                self.publish(&envelope).await?;
                Ok((envelope.data.order_id, envelope.occurred_at))
            })
            .buffer_unordered(PIPELINE)
            .collect()
            .await;
        let sent: HashMap<Uuid, DateTime<Utc>> = sent.into_iter().collect::<Result<_, _>>()?;
        let published = started.elapsed();

        // Every order answered: its reservation row is committed.
        let mut answered = 0;
        let mut progress = (0, Instant::now());
        while answered < orders {
            tokio::time::sleep(Duration::from_millis(20)).await;
            answered = (self.answered().await? - answered_before) as usize;
            if answered > progress.0 {
                progress = (answered, Instant::now());
            } else if progress.1.elapsed() > STALL {
                bail!(
                    "{name}: only {answered} of {orders} orders answered, none for {}s \
                     (dead-lettered? see the DEAD_LETTERS stream)",
                    STALL.as_secs()
                );
            }
        }
        let elapsed = started.elapsed();
        let rate = orders as f64 / elapsed.as_secs_f64();
        // And every answer published (the relay drained the outbox).
        self.settle().await?;
        let drained = started.elapsed();

        let statuses: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM inventory.reservations
             WHERE order_id = ANY($1) GROUP BY status ORDER BY status",
        )
        .bind(sent.keys().copied().collect::<Vec<_>>())
        .fetch_all(&self.admin)
        .await?;
        let units = self.reserved().await? - reserved_before;
        let reserved = statuses
            .iter()
            .find(|(status, _)| status == "reserved")
            .map_or(0, |(_, n)| *n);
        let correct = units == orders as i64 && reserved == orders as i64;

        println!();
        println!("== {name}: {orders} orders");
        println!(
            "published in {:.2}s; all answered after {:.2}s: {rate:.0} reservations/s; \
             all answers published after {:.2}s",
            published.as_secs_f64(),
            elapsed.as_secs_f64(),
            drained.as_secs_f64()
        );
        let mut latencies = self.latencies(&sent).await?;
        if latencies.len() == orders {
            latencies.sort_by(f64::total_cmp);
            let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
            println!(
                "publish to answer written: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (all \
                 published at once: mostly time in the queue)",
                pct(0.5),
                pct(0.99),
                pct(1.0)
            );
        } else {
            println!(
                "latency: only {} of {orders} answers found in the outbox",
                latencies.len()
            );
        }
        let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
        println!(
            "check: {} (units reserved {units}, expected {orders}): {}",
            statuses.join(", "),
            if correct { "ok" } else { "WRONG" }
        );
        ensure!(correct, "{name}: the reservations do not add up");
        Ok(())
    }

    /// Publishes `envelope` on its namespaced subject, deduplicated by its id, and waits
    /// for JetStream's ack.
    async fn publish<T: Event>(&self, envelope: &Envelope<T>) -> anyhow::Result<()> {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, envelope.id.to_string());
        let payload = serde_json::to_vec(envelope)?;
        self.js
            .publish_with_headers(self.ns.subject(T::TYPE), headers, payload.into())
            .await?
            .await?;
        Ok(())
    }

    /// Reservations recorded so far, of any status.
    async fn answered(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM inventory.reservations")
                .fetch_one(&self.admin)
                .await?,
        )
    }

    /// Units reserved over all SKUs.
    async fn reserved(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(sum(reserved), 0)::bigint FROM inventory.stock")
                .fetch_one(&self.admin)
                .await?,
        )
    }

    /// Waits until the relay has published everything in the outbox, so that a
    /// scenario does not pay for the previous one's events.
    async fn settle(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STALL;
        loop {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM inventory.outbox
                 WHERE sent_at IS NULL AND parked_at IS NULL",
            )
            .fetch_one(&self.admin)
            .await?;
            if pending == 0 {
                let parked: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM inventory.outbox WHERE parked_at IS NOT NULL",
                )
                .fetch_one(&self.admin)
                .await?;
                // A parked event is one the broker refused: an answer that never leaves.
                ensure!(parked == 0, "{parked} events parked in the outbox");
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{pending} events still in the outbox"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Milliseconds from each order's publish to its `stock.reserved` answer being
    /// written to the outbox (`created_at` is `clock_timestamp()`: the moment of the
    /// insert, late in the reserving transaction, on the same clock as ours).
    async fn latencies(&self, sent: &HashMap<Uuid, DateTime<Utc>>) -> anyhow::Result<Vec<f64>> {
        let answers: Vec<(Vec<u8>, DateTime<Utc>)> =
            sqlx::query_as("SELECT payload, created_at FROM inventory.outbox WHERE subject = $1")
                .bind(self.ns.subject(StockReserved::TYPE))
                .fetch_all(&self.admin)
                .await?;
        let mut latencies = Vec::with_capacity(sent.len());
        for (payload, written) in answers {
            let answer: Envelope<StockReserved> = serde_json::from_slice(&payload)?;
            if let Some(published) = sent.get(&answer.data.order_id) {
                latencies.push((written - *published).as_seconds_f64() * 1000.0);
            }
        }
        Ok(latencies)
    }
}
