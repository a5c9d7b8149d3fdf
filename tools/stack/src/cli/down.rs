//! `stack down` and `stack reset`: stop a running `stack up` from another terminal,
//! and forget its data.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{repo_root, report_orphans, running_launcher};

pub(super) async fn down() -> anyhow::Result<()> {
    let data = repo_root()?.join(".data");
    let pid_file = data.join("stack.pid");
    let mut stopped_anything = false;
    if let Some(pid) = running_launcher(&pid_file) {
        println!("stopping the stack (launcher pid {pid})");
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(raw) = raw {
            rustix::process::kill_process(raw, rustix::process::Signal::TERM)
                .with_context(|| format!("signalling the launcher (pid {pid})"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        while running_launcher(&pid_file) == Some(pid) {
            if Instant::now() >= deadline {
                anyhow::bail!("the launcher (pid {pid}) is still running after 90 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stopped_anything = true;
    }
    let _ = std::fs::remove_file(&pid_file);
    stopped_anything |= report_orphans(&data).await?;
    println!(
        "{}",
        if stopped_anything {
            "the stack is stopped"
        } else {
            "the stack was not running"
        }
    );
    Ok(())
}

pub(super) async fn reset() -> anyhow::Result<()> {
    down().await?;
    let data = repo_root()?.join(".data");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => println!("deleted {}", data.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("nothing to delete"),
        Err(e) => return Err(e).with_context(|| format!("deleting {}", data.display())),
    }
    Ok(())
}
