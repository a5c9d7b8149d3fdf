//! Cleaning up after a launcher that was killed together with its watchdogs: every
//! process it started left a pid file, and each is stopped through it.

use std::path::Path;
use std::time::Duration;

use shop_servers::StopSignal;
use shop_topology::SERVICES;

use crate::processes::pid_file;

/// Stops whatever a stack on `data_dir` left running when its launcher and the
/// watchdogs were killed hard (a plain SIGKILL to the launcher leaves nothing: the
/// watchdogs stop everything). Returns a line per process stopped.
pub async fn stop_orphans(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut stopped = Vec::new();
    for spec in SERVICES {
        let pid_file = pid_file(data_dir, spec.name);
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        if let Ok(pid) = text.trim().parse() {
            let grace = Duration::from_secs(15);
            // Matched by binary name, so a pid reused by a stranger is left alone.
            if shop_servers::process::stop_pid(pid, spec.binary, StopSignal::Terminate, grace)
                .await?
            {
                stopped.push(format!("stopped {} left running (pid {pid})", spec.name));
            }
        }
        let _ = std::fs::remove_file(pid_file);
    }
    if let Some(pid) = shop_servers::nats::stop_orphan(&data_dir.join("nats.pid")).await? {
        stopped.push(format!("stopped a nats-server left running (pid {pid})"));
    }
    if let Some(pid) = shop_servers::postgres::stop_orphan(&data_dir.join("pg")).await? {
        stopped.push(format!("stopped a Postgres left running (pid {pid})"));
    }
    Ok(stopped)
}
