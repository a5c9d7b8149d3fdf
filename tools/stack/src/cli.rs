//! The `stack` command: `up`, `down`, `reset`, `bootstrap`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::SecretString;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::StackConfig;
use crate::output::boxed;
use crate::services;
use crate::stack::{Stack, bin_dir_of_current_exe};

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
        ["up", services @ ..] => up(services).await,
        ["down"] => down().await,
        ["reset"] => reset().await,
        ["bootstrap", rest @ ..] => bootstrap(rest).await,
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

async fn up(only: &[&str]) -> anyhow::Result<()> {
    let root = repo_root()?;
    let data = root.join(".data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let pid_file = data.join("stack.pid");
    if let Some(pid) = running_launcher(&pid_file) {
        anyhow::bail!("the stack is already running (pid {pid}); stop it with `make down`");
    }
    stop_orphans(&data).await?;
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
                services::service(name).map(|s| s.name).with_context(|| {
                    format!(
                        "no service named {name:?}; there are {}",
                        services::all_names().join(", ")
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
    match healthy {
        Some(Ok(())) => stack.output().raw(&summary(&stack, root, "the shop is up")),
        Some(Err(e)) => {
            stack.output().alert(&format!("{e:#}"));
            stack
                .output()
                .raw(&summary(&stack, root, "the shop is up, NOT ALL HEALTHY"));
        }
        None => {
            stack.stop().await;
            return Ok(());
        }
    }
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            // Already reported loudly; the rest keeps running.
            _ = stack.next_exit() => {}
        }
    }
    stack.output().say("shutting down");
    stack.stop().await;
    Ok(())
}

/// The box of URLs `stack up` prints once everything answers.
fn summary(stack: &Stack, root: &Path, title: &str) -> String {
    let shown = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut lines = Vec::new();
    for name in &stack.config().services {
        let url = stack.base_url(name);
        lines.push(format!(
            "{name:<10} {url:<22}  {url}/docs  {url}/openapi.json"
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "{:<10} {}  (superuser; each service logs in as its own role)",
        "postgres",
        stack.pg_admin_url()
    ));
    lines.push(format!("{:<10} {}", "nats", stack.nats_url()));
    lines.push(format!("{:<10} {}", "monitoring", stack.nats_monitor_url()));
    let logs = match &stack.config().log.file {
        Some(file) => format!("this terminal, and {}", shown(file)),
        None => "this terminal".to_owned(),
    };
    lines.push(format!("{:<10} {logs}", "logs"));
    lines.push(format!(
        "{:<10} {}",
        "data",
        shown(&stack.config().data_dir)
    ));
    lines.push(format!(
        "{:<10} Ctrl-C here, or `make down` from another terminal",
        "stop"
    ));
    boxed(title, &lines)
}

async fn down() -> anyhow::Result<()> {
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
    stopped_anything |= stop_orphans(&data).await?;
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

async fn reset() -> anyhow::Result<()> {
    down().await?;
    let data = repo_root()?.join(".data");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => println!("deleted {}", data.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("nothing to delete"),
        Err(e) => return Err(e).with_context(|| format!("deleting {}", data.display())),
    }
    Ok(())
}

/// The pid of a `stack up` still running according to the pid file.
fn running_launcher(pid_file: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = pid != std::process::id() && shop_testkit::process::is_running(pid, "stack");
    alive.then_some(pid)
}

/// Stops what a launcher killed hard (watchdogs too) left running.
async fn stop_orphans(data: &Path) -> anyhow::Result<bool> {
    let stopped = crate::stack::stop_orphans(data).await?;
    for line in &stopped {
        println!("{line}");
    }
    Ok(!stopped.is_empty())
}

async fn bootstrap(args: &[&str]) -> anyhow::Result<()> {
    let url = match args {
        ["--database-url", url] => (*url).to_owned(),
        [flag] if flag.starts_with("--database-url=") => flag["--database-url=".len()..].to_owned(),
        _ => anyhow::bail!("usage: stack bootstrap --database-url URL"),
    };
    let local = std::env::var("SHOP_ENV").is_ok_and(|env| env == "local");
    let passwords = role_passwords(|name| std::env::var(name).ok(), local)?;

    // A job may start before its database: keep trying for a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pool = loop {
        match sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
        {
            Ok(pool) => break pool,
            Err(e) if Instant::now() >= deadline => {
                return Err(e).context("connecting to the database (for a minute)");
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    shop_db::bootstrap(&pool, |svc| passwords[svc.role].clone()).await?;
    pool.close().await;
    println!("bootstrapped {} schemas and roles", shop_db::SERVICES.len());
    Ok(())
}

/// Every service role's password: `SHOP_DB_PASSWORD_<ROLE>`, or (only when `local`)
/// the local default. All missing variables are named at once.
fn role_passwords(
    var: impl Fn(&str) -> Option<String>,
    local: bool,
) -> anyhow::Result<HashMap<&'static str, SecretString>> {
    let mut passwords = HashMap::new();
    let mut missing = Vec::new();
    for svc in shop_db::SERVICES {
        let name = format!("SHOP_DB_PASSWORD_{}", svc.role.to_uppercase());
        match var(&name).filter(|p| !p.is_empty()) {
            Some(password) => {
                passwords.insert(svc.role, SecretString::from(password));
            }
            None if local => {
                passwords.insert(svc.role, shop_db::local_password(svc.role));
            }
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "no password for some roles: set {} (or SHOP_ENV=local for the local defaults)",
            missing.join(", ")
        );
    }
    Ok(passwords)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn bootstrap_passwords_come_from_the_environment() {
        let passwords = role_passwords(|name| Some(format!("from {name}")), false).unwrap();
        assert_eq!(
            passwords["user_svc"].expose_secret(),
            "from SHOP_DB_PASSWORD_USER_SVC"
        );
    }

    #[test]
    fn bootstrap_refuses_default_passwords_outside_local() {
        let error = role_passwords(|_| None, false).unwrap_err().to_string();
        assert!(error.contains("SHOP_DB_PASSWORD_ORDER_SVC"), "{error}");

        let local = role_passwords(|_| None, true).unwrap();
        assert_eq!(
            local["order_svc"].expose_secret(),
            "order_svc-local-password"
        );
    }
}
