//! The service processes of a stack, one per instance: each spawned with its
//! environment and a pid file (for `stack down`), polled until it answers `/healthz`,
//! and stopped together.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use shop_servers::{Process, ProcessOptions, StopSignal};
use shop_topology::Service;

use crate::config::StackConfig;
use crate::env::{EnvContext, service_env};
use crate::instance::Instance;
use crate::output::Output;

/// How long a service gets between SIGTERM and SIGKILL.
pub(crate) const SERVICE_GRACE: Duration = Duration::from_secs(10);

/// One instance of a service and its current process (a new one after a restart).
pub(crate) struct RunningService {
    pub instance: Instance,
    /// Its name, computed once: logs, pid file, lookups.
    pub name: String,
    process: Mutex<Arc<Process>>,
}

impl RunningService {
    pub(crate) fn new(instance: Instance, process: Process) -> Self {
        Self {
            name: instance.name(),
            instance,
            process: Mutex::new(Arc::new(process)),
        }
    }

    /// The current process, shared: the lock is never held across an await.
    pub(crate) fn process(&self) -> Arc<Process> {
        self.process
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A restart's process takes the old one's place (which has exited).
    pub(crate) fn replace(&self, process: Process) {
        *self.process.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(process);
    }
}

/// Where `stack down` finds a service's pid when its launcher is gone.
pub(crate) fn pid_file(data_dir: &Path, service: &str) -> PathBuf {
    data_dir.join("run").join(format!("{service}.pid"))
}

/// Every binary the stack needs that is not there, all reported at once: the servers'
/// and the services'.
pub(crate) fn check_binaries(config: &StackConfig, specs: &[&Service]) -> anyhow::Result<()> {
    let mut problems = shop_servers::binaries::missing_servers();
    let missing: Vec<String> = specs
        .iter()
        .map(|spec| config.bin_dir.join(spec.binary))
        .filter(|bin| !shop_servers::binaries::executable_exists(bin))
        .map(|bin| bin.display().to_string())
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "service binaries not built: {}. Build them first: cargo build --workspace --bins",
            missing.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(problems.join("\n"))
    }
}

/// Starts one instance of a service (without waiting for it) and writes its pid file.
pub(crate) fn spawn_service(
    config: &StackConfig,
    output: &Output,
    instance: Instance,
    signing_key: &Path,
) -> anyhow::Result<Process> {
    let spec = instance.spec;
    let name = instance.name();
    let ctx = EnvContext {
        ports: &config.ports,
        database: &config.database,
        signing_key,
        log_format: &config.log_format,
        demo_file: config.demo_file.as_deref(),
    };
    let mut command = std::process::Command::new(config.bin_dir.join(spec.binary));
    command
        .current_dir(&config.work_dir)
        .envs(service_env(&instance, &ctx))
        .envs(
            config
                .extra_env
                .iter()
                .filter(|(service, _, _)| *service == spec.name)
                .map(|(_, key, value)| (key, value)),
        );
    if spec.data.is_none() {
        // Not even one inherited from the launcher's environment.
        command.env_remove("SHOP_DATABASE_URL");
    }
    let process = Process::spawn(
        command,
        ProcessOptions {
            stop_signal: StopSignal::Terminate,
            ..ProcessOptions::new(name.clone(), output.sink(&name))
        },
    )?;
    output.say(&format!(
        "started {name} (pid {}) on {}",
        process.pid(),
        config.ports.url_of(&instance)
    ));
    // For `stack down` after a launcher and its watchdogs were killed hard.
    let pid_file = pid_file(&config.data_dir, &name);
    if let Some(run_dir) = pid_file.parent() {
        std::fs::create_dir_all(run_dir)?;
    }
    std::fs::write(&pid_file, format!("{}\n", process.pid()))?;
    Ok(process)
}

/// Polls every given instance's `GET /healthz` until each has answered 200, one
/// exits, or the config's `health_timeout` passes.
pub(crate) async fn wait_healthy(
    services: &[&RunningService],
    config: &StackConfig,
    output: &Output,
) -> anyhow::Result<()> {
    let client = http_client()?;
    let timeout = config.health_timeout;
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<(&str, String, Arc<Process>)> = services
        .iter()
        .map(|s| {
            let url = format!("{}/healthz", config.ports.url_of(&s.instance));
            (s.name.as_str(), url, s.process())
        })
        .collect();
    let mut pause = Duration::from_millis(50);
    loop {
        let mut still = Vec::new();
        for (name, url, process) in pending {
            if let Some(status) = process.status() {
                anyhow::bail!(
                    "{name} exited ({status}) before it answered /healthz. Its last lines:\n{}",
                    process.log_tail(30)
                );
            }
            match client.get(&url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => {
                    output.say(&format!("{name} is healthy"));
                }
                _ => still.push((name, url, process)),
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let names: Vec<&str> = pending.iter().map(|(name, ..)| *name).collect();
            let report: Vec<String> = pending
                .iter()
                .map(|(name, _, process)| format!("--- {name} ---\n{}", process.log_tail(15)))
                .collect();
            anyhow::bail!(
                "not healthy within {timeout:?}: {}. Their last lines:\n{}",
                names.join(", "),
                report.join("\n")
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Stops every service at once (SIGTERM, then SIGKILL after 10 s) and removes their
/// pid files.
pub(crate) async fn stop_services(services: Vec<RunningService>, data_dir: &Path, output: &Output) {
    if services.is_empty() {
        return;
    }
    output.say("stopping the services");
    let mut stopping = tokio::task::JoinSet::new();
    for service in services {
        stopping.spawn(async move {
            let status = service.process().stop(SERVICE_GRACE).await;
            (service.name, status)
        });
    }
    while let Some(stopped) = stopping.join_next().await {
        if let Ok((name, status)) = stopped {
            output.say(&format!("{name} stopped ({status})"));
            let _ = std::fs::remove_file(pid_file(data_dir, &name));
        }
    }
}

/// A client for our own processes on 127.0.0.1: never through a proxy.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building an HTTP client")
}
