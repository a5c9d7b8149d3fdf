//! `stack up`: the whole shop in the foreground until Ctrl-C (or `stack down`).

use std::path::Path;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use super::{repo_root, report_orphans, running_launcher};
use crate::config::{StackConfig, bin_dir_of_current_exe, every_service};
use crate::instance::Instance;
use crate::output::boxed;
use crate::prometheus::{self, Prometheus};
use crate::stack::Stack;

pub(super) async fn up(only: &[&str]) -> anyhow::Result<()> {
    let root = repo_root()?;
    let data = root.join(".data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let pid_file = data.join("stack.pid");
    if let Some(pid) = running_launcher(&pid_file) {
        anyhow::bail!("the stack is already running (pid {pid}); stop it with `make down`");
    }
    report_orphans(&data).await?;
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    let result = run_up(&root, only).await;
    let _ = std::fs::remove_file(&pid_file);
    result
}

async fn run_up(root: &Path, only: &[&str]) -> anyhow::Result<()> {
    // Installed first: from here on Ctrl-C and SIGTERM mean "stop in order".
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;

    let mut config = StackConfig::local(root, bin_dir_of_current_exe()?);
    if let Ok(port) = std::env::var("SHOP_PG_PORT") {
        config.ports.postgres = port
            .parse()
            .with_context(|| format!("SHOP_PG_PORT={port:?}"))?;
    }
    if !only.is_empty() {
        config.services = only
            .iter()
            .map(|name| {
                shop_topology::service(name)
                    .map(|s| s.name)
                    .with_context(|| {
                        format!(
                            "no service named {name:?}; there are {}",
                            every_service().join(", ")
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()?;
    }

    let mut stack = tokio::select! {
        launched = Stack::launch(config) => launched?,
        // Dropping the half-made stack lets every process's watchdog stop it.
        _ = interrupt.recv() => anyhow::bail!("interrupted while starting"),
        _ = terminate.recv() => anyhow::bail!("terminated while starting"),
    };
    let healthy = tokio::select! {
        healthy = stack.wait_healthy() => Some(healthy),
        _ = interrupt.recv() => None,
        _ = terminate.recv() => None,
    };
    let title = match healthy {
        Some(Ok(())) => "the shop is up",
        Some(Err(e)) => {
            stack.output().alert(&format!("{e:#}"));
            "the shop is up, NOT ALL HEALTHY"
        }
        None => {
            stack.stop().await;
            return Ok(());
        }
    };
    let prometheus_port = match std::env::var("SHOP_PROMETHEUS_PORT") {
        Ok(port) => port
            .parse()
            .with_context(|| format!("SHOP_PROMETHEUS_PORT={port:?}"))?,
        Err(_) => prometheus::DEFAULT_PORT,
    };
    let prometheus = Prometheus::start(
        root,
        &stack.config().data_dir,
        prometheus_port,
        stack.output(),
    )
    .await;
    let prometheus_url = prometheus.as_ref().map(|p| p.url.as_str());
    stack
        .output()
        .raw(&summary(stack.config(), root, title, prometheus_url));
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            // Already reported loudly; the rest keeps running.
            _ = stack.next_exit() => {}
        }
    }
    stack.output().say("shutting down");
    if let Some(prometheus) = prometheus {
        prometheus.stop().await;
    }
    stack.stop().await;
    Ok(())
}

/// The box of URLs `stack up` prints once everything answers: every instance of
/// every service it runs.
fn summary(config: &StackConfig, root: &Path, title: &str, prometheus: Option<&str>) -> String {
    let shown = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut lines = Vec::new();
    let specs = config
        .services
        .iter()
        .filter_map(|name| shop_topology::service(name));
    for instance in specs.flat_map(Instance::of) {
        let (name, url) = (instance.name(), config.ports.url_of(&instance));
        if instance.spec.name == "gateway" {
            // The single entry point: every public route (gateway/gateway.toml).
            lines.push(format!(
                "{name:<10} {url:<22}  {url}/api/v1/products  (the entry point)"
            ));
        } else {
            lines.push(format!(
                "{name:<10} {url:<22}  {url}/docs  {url}/openapi.json"
            ));
        }
    }
    if let Some(file) = &config.demo_file
        && config.services.contains(&"catalog")
    {
        // Through the gateway when it runs: it balances over every catalog instance.
        let front = if config.services.contains(&"gateway") {
            "gateway"
        } else {
            "catalog"
        };
        lines.push(String::new());
        lines.push(format!(
            "{:<10} {}  (try {}/api/v1/products?q=kett)",
            "demo",
            shown(file),
            config.ports.base_url(front)
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<10} {}  (superuser; each service logs in as its own role)",
        "postgres",
        config.pg_admin_url()
    ));
    lines.push(format!("{:<10} {}", "nats", config.nats_url()));
    lines.push(format!(
        "{:<10} {}",
        "monitoring",
        config.nats_monitor_url()
    ));
    lines.push(format!(
        "{:<10} {}",
        "prometheus",
        prometheus.map_or_else(
            || "not running (not installed: tools/deps installs it)".to_owned(),
            |url| format!("{url}  (alerts: {url}/alerts)")
        )
    ));
    let logs = match &config.log.file {
        Some(file) => format!("this terminal, and {}", shown(file)),
        None => "this terminal".to_owned(),
    };
    lines.push(format!("{:<10} {logs}", "logs"));
    lines.push(format!("{:<10} {}", "data", shown(&config.data_dir)));
    lines.push(format!(
        "{:<10} Ctrl-C here, or `make down` from another terminal",
        "stop"
    ));
    boxed(title, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_shows_every_instance_of_every_service() {
        let root = Path::new("/repo");
        let config = StackConfig::local(root, root.join("target/debug"));

        let text = summary(
            &config,
            root,
            "the shop is up",
            Some("http://127.0.0.1:9090"),
        );

        for line in [
            "catalog-1  http://127.0.0.1:8082",
            "catalog-2  http://127.0.0.1:8182",
            "user       http://127.0.0.1:8081",
            "gateway    http://127.0.0.1:8080",
            "postgres   postgres://postgres@127.0.0.1:54329/shop",
            "(try http://127.0.0.1:8080/api/v1/products?q=kett)",
            "prometheus http://127.0.0.1:9090",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains("catalog    "),
            "no unnumbered catalog:\n{text}"
        );
    }
}
