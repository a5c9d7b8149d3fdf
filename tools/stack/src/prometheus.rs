//! Prometheus beside `stack up`, when the machine has it (Debian's `prometheus`,
//! which `tools/deps` installs when it can): every service's `/metrics` scraped with
//! the same alert rules as compose and Kubernetes
//! (`observability/prometheus/local.yml`), its data in `.data/prometheus`.
//!
//! Optional: without the binary, or if it will not start (its port taken), the shop
//! runs without it and says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shop_servers::{Process, ProcessOptions, StopSignal};

use crate::output::Output;

/// Where `stack up` serves Prometheus (`SHOP_PROMETHEUS_PORT` moves it).
pub(crate) const DEFAULT_PORT: u16 = 9090;

/// The configuration, relative to the repository.
pub(crate) const CONFIG: &str = "observability/prometheus/local.yml";

/// A running Prometheus.
pub(crate) struct Prometheus {
    process: Process,
    pub(crate) url: String,
}

/// The `prometheus` binary on `PATH`, if any.
pub(crate) fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// The command line: the repository's config (its rule files are relative to it), a
/// TSDB under the stack's data folder, kept two days, listening on loopback only.
pub(crate) fn command(binary: &Path, root: &Path, data: &Path, port: u16) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(root)
        .arg(format!("--config.file={}", root.join(CONFIG).display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.join("prometheus").display()
        ))
        .arg("--storage.tsdb.retention.time=2d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    command
}

impl Prometheus {
    /// Starts it when installed and waits (up to 15 s) until it answers
    /// `/-/ready`; `None`, said on `output`, when it is not installed or failed.
    pub(crate) async fn start(
        root: &Path,
        data: &Path,
        port: u16,
        output: &Output,
    ) -> Option<Self> {
        let Some(binary) = binary() else {
            output.say("no prometheus binary: running without Prometheus (tools/deps installs it)");
            return None;
        };
        let process = match Process::spawn(
            command(&binary, root, data, port),
            ProcessOptions {
                stop_signal: StopSignal::Terminate,
                ..ProcessOptions::new("prometheus", output.sink("prometheus"))
            },
        ) {
            Ok(process) => process,
            Err(e) => {
                output.alert(&format!("Prometheus did not start: {e:#}"));
                return None;
            }
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .ok()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if process.status().is_some() {
                output.alert(&format!(
                    "Prometheus exited at start (is port {port} taken? SHOP_PROMETHEUS_PORT moves it):\n{}",
                    process.log_tail(10)
                ));
                return None;
            }
            let ready = client.get(format!("{url}/-/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Some(Self { process, url });
            }
            if tokio::time::Instant::now() > deadline {
                output.alert("Prometheus is not ready after 15 s: stopping it");
                process.stop(Duration::from_secs(5)).await;
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn stop(self) {
        self.process.stop(Duration::from_secs(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_runs_on_the_repositorys_config_with_its_data_under_the_stacks() {
        let command = command(
            Path::new("/usr/bin/prometheus"),
            Path::new("/repo"),
            Path::new("/repo/.data"),
            9090,
        );
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.contains(&"--config.file=/repo/observability/prometheus/local.yml".to_owned())
        );
        assert!(args.contains(&"--storage.tsdb.path=/repo/.data/prometheus".to_owned()));
        assert!(args.contains(&"--web.listen-address=127.0.0.1:9090".to_owned()));
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(CONFIG)
                .is_file(),
            "the config is where the command says"
        );
    }
}
