//! The handle on a running stack: starting it in order (servers, database, signing
//! key, services), what it runs where, and stopping it in the reverse order.

use std::path::PathBuf;

use anyhow::Context as _;
use shop_servers::{NatsServer, PgServer};

use crate::config::{Ports, StackConfig};
use crate::exits::{Exit, ExitWatch};
use crate::output::Output;
use crate::processes::{self, RunningService};
use crate::{infra, keys};

/// A running stack. Stop it with [`Stack::stop`]; dropping it stops every process
/// too (their watchdogs see us let go), only less patiently and in no order.
pub struct Stack {
    config: StackConfig,
    output: Output,
    postgres: Option<PgServer>,
    nats: Option<NatsServer>,
    services: Vec<RunningService>,
    exits: ExitWatch,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let services: Vec<&str> = self.services.iter().map(|s| s.spec.name).collect();
        f.debug_struct("Stack")
            .field("data_dir", &self.config.data_dir)
            .field("ports", &self.config.ports)
            .field("services", &services)
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
                shop_topology::service(name).with_context(|| format!("no service named {name:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        processes::check_binaries(&config, &specs)?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let output = Output::new(config.log.stdout, config.log.file.as_deref())?;
        let mut stack = Stack {
            config,
            exits: ExitWatch::new(output.clone()),
            output,
            postgres: None,
            nats: None,
            services: Vec::new(),
        };
        match stack.bring_up(&specs).await {
            Ok(()) => Ok(stack),
            Err(e) => {
                stack.stop().await;
                Err(e)
            }
        }
    }

    async fn bring_up(&mut self, specs: &[&'static shop_topology::Service]) -> anyhow::Result<()> {
        let (postgres, nats) = infra::start_servers(&self.config, &self.output).await?;
        self.exits.watch("postgres", postgres.process());
        self.exits.watch("nats", nats.process());
        let postgres = self.postgres.insert(postgres);
        self.nats = Some(nats);
        infra::prepare_database(postgres, &self.config.database, &self.output).await?;

        let signing_key = self.signing_key_path();
        if keys::ensure_signing_key(&signing_key)? {
            self.output.say(&format!(
                "made a new token signing key: {}",
                signing_key.display()
            ));
        }

        for spec in specs {
            let service = processes::spawn_service(&self.config, &self.output, spec, &signing_key)?;
            self.exits.watch(spec.name, &service.process);
            self.services.push(service);
        }
        Ok(())
    }

    /// Polls every service's `GET /healthz` until each has answered 200, a service
    /// exits, or `health_timeout` passes.
    pub async fn wait_healthy(&self) -> anyhow::Result<()> {
        processes::wait_healthy(&self.services, &self.config, &self.output).await
    }

    /// The next process that exited on its own (pending forever if none does).
    pub async fn next_exit(&mut self) -> Exit {
        self.exits.next().await
    }

    /// `http://127.0.0.1:<port>` of a service (run or not).
    pub fn base_url(&self, service: &str) -> String {
        self.config.ports.base_url(service)
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
        self.exits.stopping();
        let services = std::mem::take(&mut self.services);
        processes::stop_services(services, &self.config.data_dir, &self.output).await;
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
