//! A real PostgreSQL server in a folder of our choosing, on 127.0.0.1 only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::{Connection as _, PgConnection};

use crate::process::{LogSink, Owner, Process, ProcessOptions, StopSignal};

/// How to run a [`PgServer`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The cluster's folder; `initdb` runs when it is missing or empty.
    pub data_dir: PathBuf,
    pub port: u16,
    /// `false` turns fsync, synchronous commit and full page writes off: only for
    /// throw-away test servers, a crash can corrupt such a cluster.
    pub durable: bool,
    pub max_connections: u32,
    pub log: LogSink,
    /// Deleted after the server stops (test servers: their temporary folder).
    pub remove_after_stop: Option<PathBuf>,
    /// How long to wait for the first successful connection.
    pub start_timeout: Duration,
    /// More server settings, `name=value` each, passed as `-c` (e.g. `ssl=on` and its
    /// files).
    pub settings: Vec<String>,
}

impl PgOptions {
    /// A durable server logging to `<data_dir>.log`.
    pub fn new(data_dir: impl Into<PathBuf>, port: u16) -> Self {
        let data_dir = data_dir.into();
        Self {
            log: LogSink::File(data_dir.with_extension("log")),
            data_dir,
            port,
            durable: true,
            max_connections: 200,
            remove_after_stop: None,
            start_timeout: Duration::from_secs(60),
            settings: Vec::new(),
        }
    }
}

/// A running PostgreSQL server; the superuser is `postgres`, trusted from 127.0.0.1.
#[derive(Debug)]
pub struct PgServer {
    process: Process,
    port: u16,
    data_dir: PathBuf,
}

impl PgServer {
    /// Initialises the cluster if needed, starts the server and returns once it
    /// accepts connections.
    pub async fn start(options: PgOptions) -> anyhow::Result<PgServer> {
        let bin_dir = crate::binaries::postgres_bin_dir()?;
        let data_dir = std::path::absolute(&options.data_dir)?;
        let run_as = postgres_owner()?;
        prepare_data_dir(&data_dir, run_as)?;
        if !data_dir.join("PG_VERSION").exists() {
            initdb(&bin_dir, &data_dir, run_as, options.durable).await?;
        }

        let mut command = Command::new(bin_dir.join("postgres"));
        command
            .arg("-D")
            .arg(&data_dir)
            .arg("-p")
            .arg(options.port.to_string())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket_dir(&data_dir)))
            .arg("-c")
            .arg(format!("max_connections={}", options.max_connections))
            .env("LC_ALL", "C")
            .current_dir("/");
        if !options.durable {
            for setting in [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ] {
                command.arg("-c").arg(setting);
            }
        }
        for setting in &options.settings {
            command.arg("-c").arg(setting);
        }
        let process = Process::spawn(
            command,
            ProcessOptions {
                name: "postgres".into(),
                log: options.log,
                stop_signal: StopSignal::Interrupt,
                run_as,
                remove_after: options.remove_after_stop,
            },
        )?;
        let server = PgServer {
            process,
            port: options.port,
            data_dir,
        };
        if let Err(e) = server.wait_ready(options.start_timeout).await {
            server.stop().await;
            return Err(e);
        }
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The superuser on the `postgres` database.
    pub fn admin_url(&self) -> String {
        self.url("postgres", None, "postgres")
    }

    /// A URL for any user and database of this server.
    pub fn url(&self, user: &str, password: Option<&str>, database: &str) -> String {
        let password = password.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "postgres://{user}{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Fast shutdown (SIGINT: running transactions are rolled back), then waits.
    pub async fn stop(&self) -> ExitStatus {
        self.process.stop(Duration::from_secs(30)).await
    }

    async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let url = self.admin_url();
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(status) = self.process.status() {
                anyhow::bail!(
                    "Postgres exited ({status}) while starting on 127.0.0.1:{}. Last lines of \
                     its log ({}):\n{}",
                    self.port,
                    self.process.log_location(),
                    self.process.log_tail(30)
                );
            }
            let attempt = tokio::time::timeout(Duration::from_secs(2), PgConnection::connect(&url));
            let last_error = match attempt.await {
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    return Ok(());
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "connecting timed out".to_owned(),
            };
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "Postgres did not accept connections on 127.0.0.1:{} within {timeout:?} \
                     (last error: {last_error}). Last lines of its log ({}):\n{}",
                    self.port,
                    self.process.log_location(),
                    self.process.log_tail(30)
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

/// The user to run Postgres as: `postgres` when we are root (it refuses to run as
/// root), ourselves otherwise.
pub fn postgres_owner() -> anyhow::Result<Option<Owner>> {
    if !rustix::process::getuid().is_root() {
        return Ok(None);
    }
    match Owner::of_user("postgres")? {
        Some(owner) => Ok(Some(owner)),
        None => anyhow::bail!(
            "running as root, and Postgres refuses to run as root, but there is no `postgres` \
             user to run it as: install the Debian package `postgresql` (it creates the user) \
             or run as a normal user"
        ),
    }
}

fn prepare_data_dir(data_dir: &Path, run_as: Option<Owner>) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let Some(owner) = run_as else { return Ok(()) };
    owner.chown(data_dir)?;
    // The `postgres` user must be able to walk down to its folder.
    for ancestor in data_dir.ancestors().skip(1) {
        let mode = ancestor
            .metadata()
            .map(|m| m.permissions().mode())
            .unwrap_or(0o755);
        if mode & 0o001 == 0 {
            anyhow::bail!(
                "Postgres runs as the `postgres` user, which cannot enter {} (mode {:o}); \
                 put the data folder somewhere it can reach or `chmod o+x` that folder",
                ancestor.display(),
                mode & 0o7777
            );
        }
    }
    Ok(())
}

async fn initdb(
    bin_dir: &Path,
    data_dir: &Path,
    run_as: Option<Owner>,
    durable: bool,
) -> anyhow::Result<()> {
    let not_empty = std::fs::read_dir(data_dir)?.next().is_some();
    if not_empty {
        anyhow::bail!(
            "{} is not empty but holds no Postgres cluster (no PG_VERSION); move it away",
            data_dir.display()
        );
    }
    let mut command = tokio::process::Command::new(bin_dir.join("initdb"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if !durable {
        command.arg("--no-sync");
    }
    if let Some(owner) = run_as {
        command.uid(owner.uid).gid(owner.gid);
    }
    let output = command.output().await.context("running initdb")?;
    if !output.status.success() {
        anyhow::bail!(
            "initdb {} failed ({}):\n{}{}",
            data_dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The data folder holds the unix socket unless its path is too long for one
/// (about 100 bytes); then there is no unix socket, TCP is all we use anyway.
fn socket_dir(data_dir: &Path) -> String {
    let dir = data_dir.display().to_string();
    if dir.len() + "/.s.PGSQL.65535".len() < 100 {
        dir
    } else {
        String::new()
    }
}

/// Stops a Postgres left running on `data_dir` by a launcher that was killed hard
/// (read from its `postmaster.pid`). Returns the pid it stopped, if any.
pub async fn stop_orphan(data_dir: &Path) -> anyhow::Result<Option<u32>> {
    let Ok(pid_file) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return Ok(None);
    };
    let Some(pid) = pid_file.lines().next().and_then(|l| l.trim().parse().ok()) else {
        return Ok(None);
    };
    let stopped = crate::process::stop_pid(
        pid,
        "postgres",
        StopSignal::Interrupt,
        Duration::from_secs(60),
    )
    .await?;
    Ok(stopped.then_some(pid))
}
