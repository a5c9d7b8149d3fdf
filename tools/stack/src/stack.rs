//! The whole shop as plain processes: Postgres, NATS and every service.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use shop_testkit::{
    NatsOptions, NatsServer, PgOptions, PgServer, Process, ProcessOptions, StopSignal,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::config::{Ports, StackConfig};
use crate::env::{EnvContext, service_env};
use crate::output::Output;
use crate::services::{self, ServiceSpec};

/// How long a service gets between SIGTERM and SIGKILL.
const SERVICE_GRACE: Duration = Duration::from_secs(10);

/// A process of the stack that exited while the stack was not being stopped.
#[derive(Debug, Clone)]
pub struct Exit {
    pub process: String,
    pub status: ExitStatus,
}

struct RunningService {
    spec: &'static ServiceSpec,
    process: Process,
}

/// A running stack. Stop it with [`Stack::stop`]; dropping it stops every process
/// too (their watchdogs see us let go), only less patiently and in no order.
pub struct Stack {
    config: StackConfig,
    output: Output,
    postgres: Option<PgServer>,
    nats: Option<NatsServer>,
    services: Vec<RunningService>,
    stopping: Arc<AtomicBool>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
    watchers: Vec<AbortHandle>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("data_dir", &self.config.data_dir)
            .field("ports", &self.config.ports)
            .field(
                "services",
                &self
                    .services
                    .iter()
                    .map(|s| s.spec.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts everything and waits until every service answers `GET /healthz` with 200.
    /// On failure whatever started is stopped again.
    pub async fn start(config: StackConfig) -> anyhow::Result<Stack> {
        let stack = Self::launch(config).await?;
        match stack.wait_healthy().await {
            Ok(()) => Ok(stack),
            Err(e) => {
                stack.stop().await;
                Err(e)
            }
        }
    }

    /// Starts Postgres and NATS (waiting until they are ready), creates the database,
    /// bootstraps schemas and roles, makes the signing key, and starts the services
    /// without waiting for them (see [`Stack::wait_healthy`]).
    pub async fn launch(config: StackConfig) -> anyhow::Result<Stack> {
        let specs = config
            .services
            .iter()
            .map(|name| {
                services::service(name).with_context(|| format!("no service named {name:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        preflight(&config, &specs)?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let output = Output::new(config.log.stdout, config.log.file.as_deref())?;
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let mut stack = Stack {
            config,
            output,
            postgres: None,
            nats: None,
            services: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            exits_tx,
            exits,
            watchers: Vec::new(),
        };
        match stack.bring_up(&specs).await {
            Ok(()) => Ok(stack),
            Err(e) => {
                stack.stop().await;
                Err(e)
            }
        }
    }

    async fn bring_up(&mut self, specs: &[&'static ServiceSpec]) -> anyhow::Result<()> {
        let ports = self.config.ports.clone();
        let data = self.config.data_dir.clone();
        let ephemeral = self.config.ephemeral;
        if !data.join("pg").join("PG_VERSION").exists() {
            self.output
                .say("first run: creating a new Postgres cluster (initdb)");
        }
        self.output.say(&format!(
            "starting Postgres on 127.0.0.1:{} and NATS on 127.0.0.1:{} (data in {})",
            ports.postgres,
            ports.nats,
            data.display()
        ));
        let pg_options = PgOptions {
            durable: !ephemeral,
            log: self.output.sink("postgres"),
            remove_after_stop: ephemeral.then(|| data.join("pg")),
            ..PgOptions::new(data.join("pg"), ports.postgres)
        };
        let nats_options = NatsOptions {
            monitor_port: Some(ports.nats_monitor),
            pid_file: Some(data.join("nats.pid")),
            log: self.output.sink("nats"),
            remove_after_stop: ephemeral.then(|| data.join("nats")),
            ..NatsOptions::new(data.join("nats"), ports.nats)
        };
        let (postgres, nats) =
            tokio::join!(PgServer::start(pg_options), NatsServer::start(nats_options));
        let (postgres, nats) = match (postgres, nats) {
            (Ok(postgres), Ok(nats)) => (postgres, nats),
            (postgres, nats) => {
                let mut problems = Vec::new();
                match postgres {
                    Ok(server) => self.postgres = Some(server),
                    Err(e) => problems.push(format!("{e:#}")),
                }
                match nats {
                    Ok(server) => self.nats = Some(server),
                    Err(e) => problems.push(format!("{e:#}")),
                }
                anyhow::bail!(problems.join("\n\n"));
            }
        };
        self.watch("postgres", postgres.process().exited());
        self.watch("nats", nats.process().exited());
        let admin_url = postgres.url("postgres", None, &self.config.database);
        let server_admin_url = postgres.admin_url();
        self.postgres = Some(postgres);
        self.nats = Some(nats);

        ensure_database(&server_admin_url, &self.config.database).await?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&admin_url)
            .await
            .context("connecting to the shop database as the superuser")?;
        shop_db::bootstrap(&pool, |svc| shop_db::local_password(svc.role))
            .await
            .context("bootstrapping schemas and roles")?;
        pool.close().await;
        self.output.say(&format!(
            "database {} ready: one schema and one role per service",
            self.config.database
        ));

        if crate::keys::ensure_signing_key(&self.signing_key_path())? {
            self.output.say(&format!(
                "made a new token signing key: {}",
                self.signing_key_path().display()
            ));
        }

        for spec in specs {
            self.spawn_service(spec)?;
        }
        Ok(())
    }

    fn spawn_service(&mut self, spec: &'static ServiceSpec) -> anyhow::Result<()> {
        let signing_key = self.signing_key_path();
        let ctx = EnvContext {
            ports: &self.config.ports,
            database: &self.config.database,
            signing_key: &signing_key,
            log_format: &self.config.log_format,
        };
        let mut command = std::process::Command::new(self.config.bin_dir.join(spec.binary));
        command
            .current_dir(&self.config.work_dir)
            .envs(service_env(spec, &ctx));
        if spec.db().is_none() {
            command.env_remove("SHOP_DATABASE_URL");
        }
        let process = Process::spawn(
            command,
            ProcessOptions {
                name: spec.name.into(),
                log: self.output.sink(spec.name),
                stop_signal: StopSignal::Terminate,
                run_as: None,
                remove_after: None,
            },
        )?;
        self.output.say(&format!(
            "started {} (pid {}) on {}",
            spec.name,
            process.pid(),
            self.base_url(spec.name)
        ));
        // For `stack down` after a launcher and its watchdogs were killed hard.
        let run_dir = self.config.data_dir.join("run");
        std::fs::create_dir_all(&run_dir)?;
        std::fs::write(
            run_dir.join(format!("{}.pid", spec.name)),
            format!("{}\n", process.pid()),
        )?;
        self.watch(spec.name, process.exited());
        self.services.push(RunningService { spec, process });
        Ok(())
    }

    /// Reports (loudly, and through [`Stack::next_exit`]) a process that exits while
    /// the stack is not being stopped. The others keep running.
    fn watch(
        &mut self,
        name: &str,
        exited: impl std::future::Future<Output = ExitStatus> + Send + 'static,
    ) {
        let name = name.to_owned();
        let stopping = self.stopping.clone();
        let output = self.output.clone();
        let exits = self.exits_tx.clone();
        let task = tokio::spawn(async move {
            let status = exited.await;
            if !stopping.load(Ordering::SeqCst) {
                output.alert(&format!(
                    "{name} exited ({status}); everything else keeps running"
                ));
                let _ = exits.send(Exit {
                    process: name,
                    status,
                });
            }
        });
        self.watchers.push(task.abort_handle());
    }

    /// Polls every service's `GET /healthz` until each has answered 200, a service
    /// exits, or `health_timeout` passes.
    pub async fn wait_healthy(&self) -> anyhow::Result<()> {
        let client = http_client()?;
        let timeout = self.config.health_timeout;
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<&RunningService> = self.services.iter().collect();
        let mut pause = Duration::from_millis(50);
        loop {
            let mut still = Vec::new();
            for service in pending {
                if let Some(status) = service.process.status() {
                    anyhow::bail!(
                        "{} exited ({status}) before it answered /healthz. Its last lines:\n{}",
                        service.spec.name,
                        service.process.log_tail(30)
                    );
                }
                let url = format!("{}/healthz", self.base_url(service.spec.name));
                match client.get(&url).send().await {
                    Ok(response) if response.status() == reqwest::StatusCode::OK => {
                        self.output
                            .say(&format!("{} is healthy", service.spec.name));
                    }
                    _ => still.push(service),
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let report: Vec<String> = pending
                    .iter()
                    .map(|s| format!("--- {} ---\n{}", s.spec.name, s.process.log_tail(15)))
                    .collect();
                anyhow::bail!(
                    "not healthy within {timeout:?}: {}. Their last lines:\n{}",
                    pending
                        .iter()
                        .map(|s| s.spec.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    report.join("\n")
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The next process that exited on its own (pending forever if none does).
    pub async fn next_exit(&mut self) -> Exit {
        match self.exits.recv().await {
            Some(exit) => exit,
            // We hold a sender ourselves, so the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// `http://127.0.0.1:<port>` of a service (run or not).
    pub fn base_url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.config.ports.service(service))
    }

    /// The superuser on the stack's database.
    pub fn pg_admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            self.config.ports.postgres, self.config.database
        )
    }

    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.config.ports.nats)
    }

    pub fn nats_monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.ports.nats_monitor)
    }

    pub fn ports(&self) -> &Ports {
        &self.config.ports
    }

    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    pub fn output(&self) -> &Output {
        &self.output
    }

    /// Where the user service's signing key is.
    pub fn signing_key_path(&self) -> PathBuf {
        self.config.data_dir.join("keys").join("jwt-signing.pem")
    }

    /// The last lines a process of the stack wrote (`postgres`, `nats`, `user` ...).
    pub fn log_tail(&self, process: &str, lines: usize) -> Option<String> {
        let found = match process {
            "postgres" => self.postgres.as_ref().map(PgServer::process),
            "nats" => self.nats.as_ref().map(NatsServer::process),
            name => self
                .services
                .iter()
                .find(|s| s.spec.name == name)
                .map(|s| &s.process),
        };
        found.map(|p| p.log_tail(lines))
    }

    /// Stops the services (SIGTERM, then SIGKILL after 10 s), then NATS, then Postgres.
    pub async fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let services = std::mem::take(&mut self.services);
        if !services.is_empty() {
            self.output.say("stopping the services");
        }
        let mut stopping = tokio::task::JoinSet::new();
        for service in services {
            stopping.spawn(async move {
                let status = service.process.stop(SERVICE_GRACE).await;
                (service.spec.name, status)
            });
        }
        while let Some(stopped) = stopping.join_next().await {
            if let Ok((name, status)) = stopped {
                self.output.say(&format!("{name} stopped ({status})"));
                let _ = std::fs::remove_file(
                    self.config.data_dir.join("run").join(format!("{name}.pid")),
                );
            }
        }
        if let Some(nats) = self.nats.take() {
            self.output.say("stopping NATS");
            nats.stop().await;
        }
        if let Some(postgres) = self.postgres.take() {
            self.output.say("stopping Postgres");
            postgres.stop().await;
        }
        self.output.say("stopped");
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for watcher in &self.watchers {
            watcher.abort();
        }
    }
}

/// Everything that must exist before anything starts, all reported at once.
fn preflight(config: &StackConfig, specs: &[&'static ServiceSpec]) -> anyhow::Result<()> {
    let mut problems = shop_testkit::binaries::missing_servers();
    let missing: Vec<String> = specs
        .iter()
        .map(|spec| config.bin_dir.join(spec.binary))
        .filter(|bin| !shop_testkit::binaries::executable_exists(bin))
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

async fn ensure_database(server_admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(server_admin_url)
        .await
        .context("connecting to Postgres as the superuser")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let create = format!("CREATE DATABASE {}", shop_db::quote_ident(database));
        admin
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
            .await
            .with_context(|| format!("creating database {database}"))?;
    }
    let _ = admin.close().await;
    Ok(())
}

/// Stops whatever a stack on `data_dir` left running when its launcher and the
/// watchdogs were killed hard (a plain SIGKILL to the launcher leaves nothing: the
/// watchdogs stop everything). Returns a line per process stopped.
pub async fn stop_orphans(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut stopped = Vec::new();
    for spec in services::SERVICES {
        let pid_file = data_dir.join("run").join(format!("{}.pid", spec.name));
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            continue;
        };
        if let Ok(pid) = text.trim().parse() {
            let grace = Duration::from_secs(15);
            if shop_testkit::process::stop_pid(pid, spec.binary, StopSignal::Terminate, grace)
                .await?
            {
                stopped.push(format!("stopped {} left running (pid {pid})", spec.name));
            }
        }
        let _ = std::fs::remove_file(pid_file);
    }
    if let Some(pid) = shop_testkit::nats::stop_orphan(&data_dir.join("nats.pid")).await? {
        stopped.push(format!("stopped a nats-server left running (pid {pid})"));
    }
    if let Some(pid) = shop_testkit::postgres::stop_orphan(&data_dir.join("pg")).await? {
        stopped.push(format!("stopped a Postgres left running (pid {pid})"));
    }
    Ok(stopped)
}

/// A client for our own processes on 127.0.0.1: never through a proxy.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building an HTTP client")
}

/// The folder of the running executable: where `cargo build` put the service binaries
/// next to `stack`.
pub fn bin_dir_of_current_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the stack executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the stack executable has no folder")
}
