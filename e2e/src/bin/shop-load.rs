//! The shop's load generator: a realistic mix of shoppers through the gateway at a
//! fixed rate, like the anchors' locust files, browse-heavy with searches and
//! checkouts.
//!
//! ```text
//! shop-load [--gateway URL] [--rate R] [--duration SECS] [--checkouts SHARE]
//!           [--users N] [--declined SHARE] [--settle SECS]
//! ```
//!
//! Setup: N shoppers register and log in; every active product's stock is topped up by
//! the seeded admin (so a long run measures checkouts, not an empty warehouse). Then a
//! step is due every 1/R s (open loop: latency runs from the instant it was due, so a
//! stall shows instead of lowering the rate) and is one of: view a product (55%),
//! search (25%), list a category (10% of what is not a checkout), or a checkout
//! (`--checkouts`, default 10%): `POST /api/v1/orders` with a fresh `Idempotency-Key`,
//! one to three products, `tok_visa` (or `tok_chargeDeclined` for `--declined` of them).
//!
//! A progress line every second; at the end, after waiting up to `--settle` seconds for
//! the sagas to finish: throughput, p50/p90/p99 per step, the saga's completion time
//! (placed to `CONFIRMED`, from each order's own history) and the count of orders in
//! each final state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

const USAGE: &str = "usage: shop-load [--gateway URL] [--rate R] [--duration SECS] \
                     [--checkouts SHARE] [--users N] [--declined SHARE] [--settle SECS]";
const SEARCHES: [&str; 6] = ["kett", "tea", "mug", "lamp", "desk", "coffee"];
const MAX_IN_FLIGHT: usize = 4096;

struct Args {
    gateway: String,
    rate: f64,
    duration: Duration,
    checkouts: f64,
    users: usize,
    declined: f64,
    settle: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        gateway: "http://127.0.0.1:8080".to_owned(),
        rate: 100.0,
        duration: Duration::from_secs(30),
        checkouts: 0.1,
        users: 20,
        declined: 0.0,
        settle: Duration::from_secs(30),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--gateway" => args.gateway = value()?.trim_end_matches('/').to_owned(),
            "--rate" => args.rate = value()?.parse()?,
            "--duration" => args.duration = Duration::from_secs_f64(value()?.parse()?),
            "--checkouts" => args.checkouts = value()?.parse()?,
            "--users" => args.users = value()?.parse()?,
            "--declined" => args.declined = value()?.parse()?,
            "--settle" => args.settle = Duration::from_secs_f64(value()?.parse()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if args.rate.is_nan()
        || args.rate <= 0.0
        || !(0.0..=1.0).contains(&args.checkouts)
        || args.users == 0
    {
        bail!("--rate must be positive, --checkouts a share 0..1, --users at least 1");
    }
    Ok(args)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Product,
    Search,
    Category,
    Checkout,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Product => "GET /products/{id}",
            Step::Search => "GET /products?q=",
            Step::Category => "GET /products?category=",
            Step::Checkout => "POST /orders",
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies: BTreeMap<Step, Vec<Duration>>,
    failures: BTreeMap<Step, usize>,
    orders: Vec<String>,
}

struct Shop {
    client: Client,
    gateway: String,
    tokens: Vec<String>,
    products: Vec<(String, String)>,
    categories: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()?;
    let shop = Arc::new(setup(&client, &args).await?);
    eprintln!(
        "{} shoppers, {} products; {:.0} steps/s for {:?}, {:.0}% checkouts",
        shop.tokens.len(),
        shop.products.len(),
        args.rate,
        args.duration,
        args.checkouts * 100.0
    );

    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let progress = tokio::spawn(progress_line(
        start,
        sent.clone(),
        done.clone(),
        tally.clone(),
    ));
    let mut n: u64 = 0;
    loop {
        let due = start + interval.mul_f64(n as f64);
        if due >= start + args.duration {
            break;
        }
        tokio::time::sleep_until(due).await;
        n += 1;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let step = pick(&args);
        let (shop, tally, done) = (shop.clone(), tally.clone(), done.clone());
        let declined = fastrand::f64() < args.declined;
        sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let outcome = run(&shop, step, declined).await;
            let elapsed = due.elapsed();
            let mut tally = tally.lock().unwrap();
            match outcome {
                Ok(order) => {
                    tally.latencies.entry(step).or_default().push(elapsed);
                    tally.orders.extend(order);
                }
                Err(_) => *tally.failures.entry(step).or_default() += 1,
            }
            done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT as u32).await;
    let elapsed = start.elapsed();
    progress.abort();
    eprintln!();

    let tally = std::mem::take(&mut *tally.lock().unwrap());
    report_steps(&tally, elapsed, dropped.load(Ordering::Relaxed));
    settle_and_report_orders(&shop, &tally.orders, args.settle).await;
    Ok(())
}

fn pick(args: &Args) -> Step {
    let roll = fastrand::f64();
    if roll < args.checkouts {
        return Step::Checkout;
    }
    match fastrand::u8(0..20) {
        0..=10 => Step::Product,
        11..=17 => Step::Search,
        _ => Step::Category,
    }
}

/// One step; a checkout returns its order's id.
async fn run(shop: &Shop, step: Step, declined: bool) -> anyhow::Result<Option<String>> {
    let gateway = &shop.gateway;
    let response = match step {
        Step::Product => {
            let (id, _) = &shop.products[fastrand::usize(..shop.products.len())];
            shop.client
                .get(format!("{gateway}/api/v1/products/{id}"))
                .send()
                .await?
        }
        Step::Search => {
            let q = SEARCHES[fastrand::usize(..SEARCHES.len())];
            shop.client
                .get(format!("{gateway}/api/v1/products?q={q}"))
                .send()
                .await?
        }
        Step::Category => {
            let category = &shop.categories[fastrand::usize(..shop.categories.len().max(1))];
            shop.client
                .get(format!("{gateway}/api/v1/products?category={category}"))
                .send()
                .await?
        }
        Step::Checkout => {
            let token = &shop.tokens[fastrand::usize(..shop.tokens.len())];
            let lines = fastrand::usize(1..=3);
            let mut items = Vec::new();
            let mut used = std::collections::HashSet::new();
            for _ in 0..lines {
                let (id, _) = &shop.products[fastrand::usize(..shop.products.len())];
                if used.insert(id.clone()) {
                    items.push(json!({"product_id": id, "quantity": fastrand::i32(1..=2)}));
                }
            }
            let body = json!({
                "items": items,
                "shipping_address": {
                    "name": "Load Tester", "line1": "1 Bench Street", "city": "Berlin",
                    "postal_code": "10115", "country": "DE"
                },
                "payment": {"card_token": if declined { "tok_chargeDeclined" } else { "tok_visa" }},
            });
            let response = shop
                .client
                .post(format!("{gateway}/api/v1/orders"))
                .bearer_auth(token)
                .header(
                    "idempotency-key",
                    format!("load-{:032x}", fastrand::u128(..)),
                )
                .json(&body)
                .send()
                .await?;
            if response.status() != StatusCode::ACCEPTED && !response.status().is_success() {
                bail!("placement answered {}", response.status());
            }
            let order: Value = response.json().await?;
            let id = order["id"].as_str().context("no order id")?.to_owned();
            return Ok(Some(id));
        }
    };
    let status = response.status();
    let _ = response.bytes().await?;
    if !status.is_success() {
        bail!("{status}");
    }
    Ok(None)
}

async fn progress_line(
    start: Instant,
    sent: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    tally: Arc<Mutex<Tally>>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = 0;
    loop {
        tick.tick().await;
        let finished = done.load(Ordering::Relaxed);
        let (failures, orders) = {
            let t = tally.lock().unwrap();
            (t.failures.values().sum::<usize>(), t.orders.len())
        };
        eprint!(
            "\r{:>5.0}s  sent {:>8}  done {:>8}  {:>7} /s  in flight {:>5}  orders {:>7}  failed {:>5}   ",
            start.elapsed().as_secs_f64(),
            sent.load(Ordering::Relaxed),
            finished,
            finished - last,
            sent.load(Ordering::Relaxed).saturating_sub(finished),
            orders,
            failures,
        );
        last = finished;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn report_steps(tally: &Tally, elapsed: Duration, dropped: usize) {
    let total: usize = tally.latencies.values().map(Vec::len).sum();
    let failed: usize = tally.failures.values().sum();
    println!(
        "\n{} steps answered in {:.1} s: {:.1} /s; {} failed; {} not sent (too many in flight)",
        total,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        failed,
        dropped
    );
    println!(
        "{:<26} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "step", "ok", "failed", "p50 ms", "p90 ms", "p99 ms"
    );
    for step in [Step::Product, Step::Search, Step::Category, Step::Checkout] {
        let mut latencies = tally.latencies.get(&step).cloned().unwrap_or_default();
        latencies.sort();
        println!(
            "{:<26} {:>8} {:>8} {:>9.2} {:>9.2} {:>9.2}",
            step.name(),
            latencies.len(),
            tally.failures.get(&step).copied().unwrap_or(0),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.90),
            percentile(&latencies, 0.99),
        );
    }
    let checkouts = tally.latencies.get(&Step::Checkout).map_or(0, Vec::len);
    println!(
        "checkouts placed: {} ({:.1} /s)",
        checkouts,
        checkouts as f64 / elapsed.as_secs_f64()
    );
}

const FINAL: [&str; 4] = ["CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED"];

/// Waits for every order to leave PENDING and AWAITING_PAYMENT, then reports the final
/// states and the saga's time from placement to CONFIRMED, from each order's history.
async fn settle_and_report_orders(shop: &Shop, orders: &[String], settle: Duration) {
    if orders.is_empty() {
        return;
    }
    let admin = match login(
        &shop.client,
        &shop.gateway,
        "admin@shop.local",
        "admin-password-dev",
    )
    .await
    {
        Ok(token) => token,
        Err(e) => {
            println!("could not read the orders back: {e:#}");
            return;
        }
    };
    let deadline = Instant::now() + settle;
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut saga = Vec::new();
    let mut pending: Vec<&String> = orders.iter().collect();
    loop {
        let mut still = Vec::new();
        for chunk in pending.chunks(64) {
            let reads = chunk.iter().map(|id| {
                let request = shop
                    .client
                    .get(format!("{}/api/v1/orders/{id}", shop.gateway))
                    .bearer_auth(&admin)
                    .send();
                async move {
                    let order: Option<Value> = match request.await {
                        Ok(r) if r.status().is_success() => r.json().await.ok(),
                        _ => None,
                    };
                    (*id, order)
                }
            });
            for (id, order) in futures::future::join_all(reads).await {
                let Some(order) = order else {
                    still.push(id);
                    continue;
                };
                let status = order["status"].as_str().unwrap_or("?").to_owned();
                if !FINAL.contains(&status.as_str()) && Instant::now() < deadline {
                    still.push(id);
                    continue;
                }
                if let Some(ms) = time_to_confirmed(&order) {
                    saga.push(Duration::from_secs_f64(ms / 1000.0));
                }
                let reason = order["cancel_reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                *states.entry(format!("{status}{reason}")).or_default() += 1;
            }
        }
        if still.is_empty() || Instant::now() >= deadline {
            for _ in &still {
                *states.entry("unread".to_owned()).or_default() += 1;
            }
            break;
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    saga.sort();
    println!(
        "saga, placed to CONFIRMED: {} orders, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        saga.len(),
        percentile(&saga, 0.5),
        percentile(&saga, 0.9),
        percentile(&saga, 0.99)
    );
    println!("orders by final state:");
    for (state, count) in states {
        println!("  {state:<40} {count}");
    }
}

/// Milliseconds from the order's placement to its move to CONFIRMED, from its history.
fn time_to_confirmed(order: &Value) -> Option<f64> {
    let created = order["created_at"]
        .as_str()?
        .parse::<DateTime<Utc>>()
        .ok()?;
    let confirmed = order["history"].as_array()?.iter().find_map(|h| {
        (h["to"].as_str() == Some("CONFIRMED"))
            .then(|| h["at"].as_str()?.parse::<DateTime<Utc>>().ok())
            .flatten()
    })?;
    Some((confirmed - created).num_microseconds()? as f64 / 1000.0)
}

async fn login(
    client: &Client,
    gateway: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{gateway}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("login of {email} answered {}", response.status());
    }
    let body: Value = response.json().await?;
    Ok(body["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned())
}

/// Shoppers, the products and categories they pick from, and stock to sell.
async fn setup(client: &Client, args: &Args) -> anyhow::Result<Shop> {
    let gateway = &args.gateway;
    let run = format!("{:08x}", fastrand::u32(..));
    let password = "load-password-1234";
    let mut tokens = Vec::new();
    for i in 0..args.users {
        let email = format!("load-{run}-{i}@shop.test");
        let registered = client
            .post(format!("{gateway}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": password, "name": format!("Shopper {i}")}))
            .send()
            .await?;
        if !registered.status().is_success() {
            bail!("registering {email} answered {}", registered.status());
        }
        tokens.push(login(client, gateway, &email, password).await?);
    }
    let listed: Value = client
        .get(format!("{gateway}/api/v1/products?limit=100"))
        .send()
        .await?
        .json()
        .await?;
    let mut products = Vec::new();
    let mut categories = std::collections::BTreeSet::new();
    for p in listed["items"].as_array().context("no product list")? {
        if let (Some(id), Some(sku)) = (p["id"].as_str(), p["sku"].as_str()) {
            products.push((id.to_owned(), sku.to_owned()));
        }
        if let Some(c) = p["category"].as_str() {
            categories.insert(c.to_owned());
        }
    }
    if products.is_empty() {
        bail!("the catalog has no products (make up seeds the demo)");
    }
    let admin = login(client, gateway, "admin@shop.local", "admin-password-dev").await?;
    let stock = ((args.rate * args.checkouts * args.duration.as_secs_f64() * 4.0) as i64)
        .clamp(100, 1_000_000);
    for (_, sku) in &products {
        let _ = client
            .post(format!("{gateway}/api/v1/inventory/{sku}/receive"))
            .bearer_auth(&admin)
            .json(&json!({"quantity": stock, "reason": "load test"}))
            .send()
            .await?;
    }
    Ok(Shop {
        client: client.clone(),
        gateway: gateway.clone(),
        tokens,
        products,
        categories: categories.into_iter().collect(),
    })
}
