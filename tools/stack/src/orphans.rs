//! Cleaning up after a launcher that was killed together with its watchdogs: every
//! process it started left a pid file, and each is stopped through it.

use std::path::Path;
use std::time::Duration;

use shop_servers::StopSignal;

use crate::instance::Instance;
use crate::processes::pid_file;

/// Stops whatever a stack on `data_dir` left running when its launcher and the
/// watchdogs were killed hard (a plain SIGKILL to the launcher leaves nothing: the
/// watchdogs stop everything). Returns a line per process stopped.
pub async fn stop_orphans(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut stopped = Vec::new();
    for instance in Instance::every() {
        let (spec, name) = (instance.spec, instance.name());
        let pid_file = pid_file(data_dir, &name);
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        if let Ok(pid) = text.trim().parse() {
            let grace = Duration::from_secs(15);
            // Matched by binary name, so a pid reused by a stranger is left alone.
            if shop_servers::process::stop_pid(pid, spec.binary, StopSignal::Terminate, grace)
                .await?
            {
                stopped.push(format!("stopped {name} left running (pid {pid})"));
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

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};
    use std::time::Instant;

    use super::*;

    /// Stands in for a `shop-catalog` left behind (`stop_pid` matches the binary's name
    /// in the command line); killed when dropped, so a failing test leaves nothing.
    struct LeftBehind(Child);

    impl Drop for LeftBehind {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test]
    async fn a_second_instance_left_running_is_found_through_its_pid_file_and_stopped() {
        let data = tempfile::tempdir().unwrap();
        let mut left = LeftBehind(
            Command::new("/bin/sh")
                .arg("-c")
                .arg("while :; do sleep 1; done # shop-catalog")
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = left.0.id();
        // Until the exec, its command line is still ours.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !shop_servers::process::is_running(pid, "shop-catalog") {
            assert!(Instant::now() < deadline, "the stand-in never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid_file = pid_file(data.path(), "catalog-2");
        std::fs::create_dir_all(pid_file.parent().unwrap()).unwrap();
        std::fs::write(&pid_file, format!("{pid}\n")).unwrap();

        let stopped = stop_orphans(data.path()).await.unwrap();

        assert_eq!(
            stopped,
            [format!("stopped catalog-2 left running (pid {pid})")]
        );
        assert!(left.0.wait().unwrap().code().is_none(), "ended by a signal");
        assert!(!pid_file.exists());
    }
}
