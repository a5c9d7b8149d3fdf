//! The whole shop, started once for this test binary on free ports: every service
//! and the gateway, with a real Postgres and a real NATS.

mod catalog_flow;
mod gateway;
mod health;
mod user_flow;

use std::path::PathBuf;

use shop_stack::{Stack, StackConfig};
use tokio::sync::OnceCell;

static STACK: OnceCell<Result<Stack, String>> = OnceCell::const_new();

/// The shared stack. Never stopped explicitly (statics are never dropped): every
/// process's watchdog stops it when the test binary exits. Its output is kept in
/// `target/tmp/e2e-stack.log`.
pub async fn stack() -> &'static Stack {
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
