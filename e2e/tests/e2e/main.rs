//! The whole shop, started once for this test binary on free ports: every service
//! (the catalog twice) and the gateway, with a real Postgres and a real NATS.
//!
//! A test holds the stack through [`stack`], shared with the tests running beside it,
//! or through [`stack_alone`] when it stops a process: then it waits until the others
//! let go and keeps them out until it is done, so none of them meets its outage.

mod catalog_flow;
mod catalog_instances;
mod checkout;
mod gateway;
mod health;
mod metrics;
mod traces;
mod user_flow;

use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shop_stack::{Stack, StackConfig};
use tokio::sync::{OnceCell, RwLock, RwLockReadGuard, RwLockWriteGuard};

static STACK: OnceCell<Result<Stack, String>> = OnceCell::const_new();

/// Read by the tests that use the stack as it is, written by one that stops a
/// process of it.
static OUTAGES: RwLock<()> = RwLock::const_new(());

/// The stack, every process of it running for as long as this is held. Take it once
/// per test and keep it in a variable: a second one in the same test could wait
/// forever behind a [`stack_alone`] that waits for the first.
#[must_use = "the stack may lose a process as soon as this is dropped"]
pub struct Shared {
    stack: &'static Stack,
    _no_outage: RwLockReadGuard<'static, ()>,
}

impl Deref for Shared {
    type Target = Stack;

    fn deref(&self) -> &Stack {
        self.stack
    }
}

/// The stack to one test alone, which may stop and restart its processes.
#[must_use = "other tests may use the stack as soon as this is dropped"]
pub struct Alone {
    stack: &'static Stack,
    _outage: RwLockWriteGuard<'static, ()>,
}

impl Deref for Alone {
    type Target = Stack;

    fn deref(&self) -> &Stack {
        self.stack
    }
}

/// The shared stack (started by the first test that asks).
pub async fn stack() -> Shared {
    let no_outage = OUTAGES.read().await;
    Shared {
        stack: started().await,
        _no_outage: no_outage,
    }
}

/// The stack once no other test uses it; they wait until this is dropped.
pub async fn stack_alone() -> Alone {
    let outage = OUTAGES.write().await;
    Alone {
        stack: started().await,
        _outage: outage,
    }
}

/// Never stopped explicitly (statics are never dropped): every process's watchdog
/// stops it when the test binary exits. Its output is kept in
/// `target/tmp/e2e-stack.log`.
async fn started() -> &'static Stack {
    let started = STACK
        .get_or_init(|| async { start().await.map_err(|e| format!("{e:#}")) })
        .await;
    match started {
        Ok(stack) => stack,
        Err(e) => panic!("the stack did not start: {e}"),
    }
}

async fn start() -> anyhow::Result<Stack> {
    let bin_dir = shop_e2e::service_bin_dir()?;
    // In the temporary folder rather than under target/: when we run as root, Postgres
    // runs as `postgres`, which may not be allowed into the checkout.
    let uid = rustix::process::getuid().as_raw();
    let data_dir = std::env::temp_dir().join(format!("shop-e2e-{uid}"));
    // Whatever the last run left (its key, pid files) goes; its servers are long gone.
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir)?;
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-stack.log");
    let _ = std::fs::remove_file(&log);
    let mut config = StackConfig::ephemeral(&data_dir, bin_dir, shop_e2e::repo_root())?;
    config.log.file = Some(log);
    // Short saga deadlines and a fast carrier, so the checkout's outcomes (a timeout,
    // a delivery) are seen in seconds; the processor's own deadline stays longer than
    // the order's, as in production.
    let env = |service: &'static str, name: &str, value: &str| {
        (service, name.to_owned(), value.to_owned())
    };
    // Every process exports its spans to the trace test's receiver, in small batches.
    let otlp = traces::start_receiver()?;
    let mut extra_env: Vec<(&'static str, String, String)> = Vec::new();
    for service in shop_topology::SERVICES {
        extra_env.push((
            service.name,
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            otlp.clone(),
        ));
        extra_env.push((
            service.name,
            "OTEL_BSP_SCHEDULE_DELAY".to_owned(),
            "200".to_owned(),
        ));
    }
    config.extra_env = extra_env;
    config.extra_env.extend([
        env("order", "SHOP_SAGA__PAYMENT_TIMEOUT_MS", "6000"),
        env("order", "SHOP_SAGA__RESERVE_TIMEOUT_MS", "15000"),
        env("order", "SHOP_SAGA__DEADLINE_CHECK_EVERY_MS", "200"),
        env("payment", "SHOP_PROCESSOR__TIMEOUT_MS", "20000"),
        env("shipping", "SHOP_CARRIER__DISPATCH_AFTER_MS", "300"),
        env("shipping", "SHOP_CARRIER__DELIVER_AFTER_MS", "600"),
        env("shipping", "SHOP_CARRIER__EVERY_MS", "100"),
    ]);
    Stack::start(config).await
}

/// A client for the stack's URLs.
pub fn http() -> reqwest::Client {
    shop_stack::http_client().expect("an HTTP client")
}

/// `POST <url>` with a JSON body.
pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: &serde_json::Value,
) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

/// Polls `check` until it returns `Some`, failing after `patience`.
pub async fn within<T, F, Fut>(patience: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < patience,
            "timed out after {patience:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
