//! The `stack` command: `up`, `down`, `reset`, `bootstrap`. `up` and `down` meet
//! through the launcher's pid file, `<repo>/.data/stack.pid`.

mod bootstrap;
mod down;
mod up;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

const HELP: &str = "\
stack: runs the shop on this machine, no Docker needed

usage:
  stack up [SERVICE...]              Postgres, NATS and every service (or only those named);
                                     Ctrl-C stops them all. Data lives in <repo>/.data
  stack down                         stops a running `stack up` (and anything it left behind)
  stack reset                        down, then deletes <repo>/.data
  stack bootstrap --database-url URL creates every service's schema and role on an existing
                                     server (URL: a superuser); passwords from
                                     SHOP_DB_PASSWORD_<ROLE>, e.g. SHOP_DB_PASSWORD_USER_SVC,
                                     or the local defaults when SHOP_ENV=local

environment:
  SHOP_PG_PORT      Postgres's port for `up` (default 54329)
  LOG_FORMAT        the services' log format (default pretty)
  RUST_LOG          passed to every service
  NO_COLOR          no colours in the output
  SHOP_PG_BINDIR    the folder holding initdb and postgres, if not found by itself
  SHOP_NATS_SERVER  the nats-server binary, if not found by itself
";

/// Runs the command line (without the program name) and returns the exit code.
pub async fn run(args: Vec<String>) -> ExitCode {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["up", services @ ..] => up::up(services).await,
        ["down"] => down::down().await,
        ["reset"] => down::reset().await,
        ["bootstrap", rest @ ..] => bootstrap::bootstrap(rest).await,
        [] | ["help" | "-h" | "--help"] => {
            print!("{HELP}");
            Ok(())
        }
        _ => Err(anyhow::anyhow!(
            "unknown command {:?}\n\n{HELP}",
            args.join(" ")
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository: the nearest folder above the working directory whose Cargo.toml
/// declares the workspace.
pub fn repo_root() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    cwd.ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|toml| toml.lines().any(|line| line.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no workspace Cargo.toml above {}: run this inside the shop's repository",
                cwd.display()
            )
        })
}

/// The pid of a `stack up` still running according to the pid file.
fn running_launcher(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = pid != std::process::id() && shop_servers::process::is_running(pid, "stack");
    alive.then_some(pid)
}

/// Stops what a launcher killed hard (watchdogs too) left running, saying what it
/// stopped. Returns whether there was anything.
async fn report_orphans(data: &Path) -> anyhow::Result<bool> {
    let stopped = crate::stop_orphans(data).await?;
    for line in &stopped {
        println!("{line}");
    }
    Ok(!stopped.is_empty())
}
