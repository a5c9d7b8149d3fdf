//! The handle on a running stack: starting it in order (servers, database, signing
//! key, services), what it runs where, and stopping it in the reverse order.

use std::path::PathBuf;
use std::process::ExitStatus;

use anyhow::Context as _;
use shop_servers::{NatsServer, PgServer};

use crate::config::{Ports, StackConfig};
use crate::exits::{Exit, ExitWatch};
use crate::instance::Instance;
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
        let services: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
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
    /// bootstraps schemas and roles, makes the signing key, and starts every instance
    /// of the services without waiting for them (see [`Stack::wait_healthy`]).
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

        // The instances of a service start together: they migrate and load the demo
        // at once, which their service is built to survive.
        for instance in specs.iter().copied().flat_map(Instance::of) {
            let process =
                processes::spawn_service(&self.config, &self.output, instance, &signing_key)?;
            let service = RunningService::new(instance, process);
            self.exits.watch(&service.name, &service.process());
            self.services.push(service);
        }
        Ok(())
    }

    /// Polls every instance's `GET /healthz` until each has answered 200, one exits,
    /// or `health_timeout` passes.
    pub async fn wait_healthy(&self) -> anyhow::Result<()> {
        let all: Vec<&RunningService> = self.services.iter().collect();
        processes::wait_healthy(&all, &self.config, &self.output).await
    }

    /// Kills one instance of a service (`catalog-2`) at once, as a crash would
    /// (SIGKILL, no graceful shutdown), and waits until it is gone. Its death is
    /// expected, so it is not reported as an exit. [`Stack::restart`] brings it back.
    pub async fn kill(&self, process: &str) -> anyhow::Result<ExitStatus> {
        let service = self.running(process)?;
        self.exits.forget(process);
        let status = service.process().kill().await;
        self.output
            .say(&format!("{process} killed on purpose ({status})"));
        let _ = std::fs::remove_file(processes::pid_file(&self.config.data_dir, process));
        Ok(status)
    }

    /// Starts one instance of a service (`catalog-2`) again, with the environment it
    /// had, and waits until it answers `GET /healthz` with 200. One still running is
    /// stopped first (SIGTERM, then SIGKILL after 10 s).
    pub async fn restart(&self, process: &str) -> anyhow::Result<()> {
        let service = self.running(process)?;
        self.exits.forget(process);
        service.process().stop(processes::SERVICE_GRACE).await;
        let fresh = processes::spawn_service(
            &self.config,
            &self.output,
            service.instance,
            &self.signing_key_path(),
        )?;
        self.exits.watch(process, &fresh);
        service.replace(fresh);
        processes::wait_healthy(&[service], &self.config, &self.output).await
    }

    fn running(&self, process: &str) -> anyhow::Result<&RunningService> {
        self.services
            .iter()
            .find(|s| s.name == process)
            .with_context(|| {
                let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "no service process named {process:?}; there are {}",
                    names.join(", ")
                )
            })
    }

    /// The next process that exited on its own (pending forever if none does).
    pub async fn next_exit(&mut self) -> Exit {
        self.exits.next().await
    }

    /// `http://127.0.0.1:<port>` of a service's first instance (run or not).
    pub fn base_url(&self, service: &str) -> String {
        self.config.ports.base_url(service)
    }

    /// `http://127.0.0.1:<port>` of every instance of a service, the first first.
    pub fn base_urls(&self, service: &str) -> Vec<String> {
        self.config.ports.base_urls(service)
    }

    /// `http://127.0.0.1:<port>` of one instance.
    pub fn url_of(&self, instance: &Instance) -> String {
        self.config.ports.url_of(instance)
    }

    /// The superuser on the stack's database.
    pub fn pg_admin_url(&self) -> String {
        self.config.pg_admin_url()
    }

    pub fn nats_url(&self) -> String {
        self.config.nats_url()
    }

    pub fn nats_monitor_url(&self) -> String {
        self.config.nats_monitor_url()
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

    /// The last lines a process of the stack wrote (`postgres`, `nats`, `user`,
    /// `catalog-2` ...).
    pub fn log_tail(&self, process: &str, lines: usize) -> Option<String> {
        match process {
            "postgres" => self.postgres.as_ref().map(|p| p.process().log_tail(lines)),
            "nats" => self.nats.as_ref().map(|n| n.process().log_tail(lines)),
            name => self
                .services
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.process().log_tail(lines)),
        }
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
