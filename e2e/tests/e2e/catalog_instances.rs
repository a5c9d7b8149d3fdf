//! Two catalog instances behind the gateway, as `make up` runs them: a steady stream of
//! product reads through the gateway reaches both; one instance killed in the middle
//! costs at most a short burst of failed reads, until the gateway's health checks or
//! passive ejection take it out; started again, it gets its share of the reads back.
//!
//! Which instance served is read from each instance's own `/metrics`
//! (`http_server_requests_total` of the product route), not from the gateway's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use shop_stack::Instance;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::{http, stack_alone, within};

/// The route whose requests each instance counts.
const PRODUCT_ROUTE: &str = "route=\"/api/v1/products/{id}\"";
/// Readers sending product reads at once, each one read per [`PACE`].
const READERS: usize = 2;
const PACE: Duration = Duration::from_millis(25);
/// How long a killed instance may cost failed reads: the gateway's health checks (every
/// 2 s, out after 2 failures) or its passive ejection (after 5 failures) must notice
/// by then.
const SETTLE: Duration = Duration::from_secs(5);
/// How long reads must then go on without a failure to count as recovered.
const QUIET: Duration = Duration::from_secs(3);
/// How long a restarted instance may wait for reads (health checks putting it back).
const COMEBACK: Duration = Duration::from_secs(15);

#[tokio::test]
async fn reads_through_the_gateway_reach_both_catalogs_ride_out_one_killed_and_return_to_it() {
    let stack = stack_alone().await;
    let catalogs: Vec<Instance> =
        Instance::of(shop_topology::service("catalog").unwrap()).collect();
    let [first, second] = catalogs.as_slice() else {
        panic!("the stack runs two catalogs, not {}", catalogs.len());
    };
    let (first_url, second_url) = (stack.url_of(first), stack.url_of(second));
    let victim = second.name();
    let client = http();
    let gateway = stack.base_url("gateway");
    let id = a_product_id(&client, &gateway).await;
    let reads = Reads::start(&client, format!("{gateway}/api/v1/products/{id}"));

    let started = Instant::now();
    let (first_before, second_before) = (
        served(&client, &first_url).await,
        served(&client, &second_url).await,
    );
    let (client_ref, first_ref, second_ref) = (&client, &first_url, &second_url);
    within(
        Duration::from_secs(10),
        "both catalogs to serve reads",
        || async move {
            (served(client_ref, first_ref).await > first_before
                && served(client_ref, second_ref).await > second_before)
                .then_some(())
        },
    )
    .await;
    let failed = reads.failures_since(started);
    assert!(
        failed.is_empty(),
        "with both catalogs up, every read succeeds: {}",
        summary(&failed)
    );

    let killed_at = Instant::now();
    stack.kill(&victim).await.unwrap();
    let survivor_before = served(&client, &first_url).await;
    // Until reads have gone QUIET long without a failure, or SETTLE + QUIET passed.
    loop {
        let last_failure = reads.failures_since(killed_at).last().map(|read| read.at);
        let quiet_since = last_failure.unwrap_or(killed_at);
        if quiet_since.elapsed() >= QUIET || killed_at.elapsed() >= SETTLE + QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outage = reads.since(killed_at);
    let failed = reads.failures_since(killed_at);
    let last_failure_after = failed.last().map(|read| read.at - killed_at);
    assert!(
        last_failure_after.is_none_or(|after| after <= SETTLE),
        "after {victim} was killed, {} of {} reads failed, the last {:?} after the kill \
         (allowed: failures within {SETTLE:?}, then none for {QUIET:?}): {}",
        failed.len(),
        outage.len(),
        last_failure_after.unwrap_or_default(),
        summary(&failed)
    );
    assert!(
        outage.len() >= 20,
        "the reads kept coming: {}",
        outage.len()
    );
    assert!(
        served(&client, &first_url).await > survivor_before,
        "{} took the reads",
        first.name()
    );

    stack.restart(&victim).await.unwrap();
    let restarted_at = Instant::now();
    // A new process counts from zero.
    within(
        COMEBACK,
        &format!("{victim} to serve reads again"),
        || async move { (served(client_ref, second_ref).await > 0).then_some(()) },
    )
    .await;
    let failed = reads.failures_since(restarted_at);
    assert!(
        failed.is_empty(),
        "{victim}'s return cost {} reads: {}",
        failed.len(),
        summary(&failed)
    );
}

/// One read through the gateway: when it ended and what came back.
#[derive(Debug, Clone)]
struct Read {
    at: Instant,
    /// The status, or why there was none.
    outcome: Result<StatusCode, String>,
}

impl Read {
    fn failed(&self) -> bool {
        self.outcome != Ok(StatusCode::OK)
    }
}

/// A steady stream of reads of one URL, recorded as they end; stopped when dropped.
struct Reads {
    log: Arc<Mutex<Vec<Read>>>,
    readers: JoinSet<()>,
}

impl Reads {
    fn start(client: &reqwest::Client, url: String) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = JoinSet::new();
        for _ in 0..READERS {
            let (client, url, log) = (client.clone(), url.clone(), log.clone());
            readers.spawn(async move {
                let mut pace = tokio::time::interval(PACE);
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    pace.tick().await;
                    let outcome = match client.get(&url).send().await {
                        Ok(response) => Ok(response.status()),
                        Err(e) => Err(e.to_string()),
                    };
                    let read = Read {
                        at: Instant::now(),
                        outcome,
                    };
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(read);
                }
            });
        }
        Self { log, readers }
    }

    /// The reads that ended at or after `from`, in the order they ended.
    fn since(&self, from: Instant) -> Vec<Read> {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().filter(|read| read.at >= from).cloned().collect()
    }

    fn failures_since(&self, from: Instant) -> Vec<Read> {
        self.since(from).into_iter().filter(Read::failed).collect()
    }
}

impl Drop for Reads {
    fn drop(&mut self) {
        self.readers.abort_all();
    }
}

/// Failed reads by outcome: `502 Bad Gateway: 12, 503 Service Unavailable: 3`.
fn summary(failed: &[Read]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for read in failed {
        let outcome = match &read.outcome {
            Ok(status) => status.to_string(),
            Err(e) => e.clone(),
        };
        *counts.entry(outcome).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(o, n)| format!("{o}: {n}")).collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The id of some product, found through the gateway.
async fn a_product_id(client: &reqwest::Client, gateway: &str) -> String {
    let url = format!("{gateway}/api/v1/products?limit=1");
    let page: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    page["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no product in {url}: {page}"))
        .to_owned()
}

/// How many product reads an instance has answered, by its own `/metrics`; 0 when it
/// does not answer.
async fn served(client: &reqwest::Client, instance: &str) -> u64 {
    let Ok(response) = client.get(format!("{instance}/metrics")).send().await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with("http_server_requests_total{"))
        .filter(|line| line.contains(PRODUCT_ROUTE) && line.contains("method=\"GET\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
