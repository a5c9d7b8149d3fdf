//! What a [`crate::Stack`] runs, where, on which ports, and where its output goes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use shop_topology::SERVICES;

use crate::instance::Instance;

/// Every port of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    pub postgres: u16,
    pub nats: u16,
    pub nats_monitor: u16,
    /// By service name, one per instance ([`Instance::index`]); every service of
    /// [`SERVICES`] has them, run or not (the JWKS URL and the gateway's upstreams
    /// name them).
    pub services: BTreeMap<&'static str, Vec<u16>>,
}

/// Postgres's port on a developer machine: not 5432, which the system's own may hold.
pub const LOCAL_PG_PORT: u16 = 54329;

impl Ports {
    /// The documented local ports: Postgres 54329, NATS 4222 (monitoring 8222),
    /// gateway 8080, services 8081-8086, the second catalog 8182.
    pub fn local_defaults() -> Self {
        Self {
            postgres: LOCAL_PG_PORT,
            nats: 4222,
            nats_monitor: 8222,
            services: SERVICES
                .iter()
                .map(|s| (s.name, s.local_ports().collect()))
                .collect(),
        }
    }

    /// Distinct ports the kernel says are free right now (for tests).
    pub fn free() -> std::io::Result<Self> {
        let mut ports = shop_servers::free_ports(3 + Instance::every().count())?.into_iter();
        let mut next = || ports.next().expect("as many ports as asked for");
        Ok(Self {
            postgres: next(),
            nats: next(),
            nats_monitor: next(),
            services: SERVICES
                .iter()
                .map(|s| (s.name, Instance::of(s).map(|_| next()).collect()))
                .collect(),
        })
    }

    /// The port of a service's first instance; panics for a name that is not in
    /// [`SERVICES`].
    pub fn service(&self, name: &str) -> u16 {
        self.instances(name)[0]
    }

    /// The ports of every instance of a service; panics for a name that is not in
    /// [`SERVICES`].
    pub fn instances(&self, name: &str) -> &[u16] {
        match self.services.get(name) {
            Some(ports) if !ports.is_empty() => ports,
            _ => panic!("no port for service {name:?}"),
        }
    }

    /// The port of one instance.
    pub fn port_of(&self, instance: &Instance) -> u16 {
        self.instances(instance.spec.name)[usize::from(instance.index)]
    }

    /// `http://127.0.0.1:<port>` of a service's first instance (run or not).
    pub fn base_url(&self, service: &str) -> String {
        local_url(self.service(service))
    }

    /// `http://127.0.0.1:<port>` of every instance of a service, the first first.
    pub fn base_urls(&self, service: &str) -> Vec<String> {
        self.instances(service)
            .iter()
            .map(|port| local_url(*port))
            .collect()
    }

    /// `http://127.0.0.1:<port>` of one instance.
    pub fn url_of(&self, instance: &Instance) -> String {
        local_url(self.port_of(instance))
    }
}

fn local_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Where the multiplexed output of every process goes.
#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    /// To our stdout, coloured when it is a terminal and NO_COLOR is not set.
    pub stdout: bool,
    /// Appended to this file, without colours.
    pub file: Option<PathBuf>,
}

/// Everything [`crate::Stack::start`] needs.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Postgres's cluster (`pg/`), NATS's store (`nats/`), the signing key (`keys/`).
    pub data_dir: PathBuf,
    /// Where the service binaries are (`shop-user` ...).
    pub bin_dir: PathBuf,
    /// The services' working directory.
    pub work_dir: PathBuf,
    pub ports: Ports,
    /// Which services to run, by name; Postgres and NATS always run.
    pub services: Vec<&'static str>,
    /// The one database every service's schema lives in.
    pub database: String,
    pub log: LogConfig,
    /// `LOG_FORMAT` for the services (`pretty` or `json`).
    pub log_format: String,
    /// A throw-away stack: Postgres without fsync, Postgres's and NATS's folders
    /// deleted when they stop. The caller owns `data_dir` itself.
    pub ephemeral: bool,
    /// How long every service gets to answer `GET /healthz` with 200.
    pub health_timeout: Duration,
    /// The demo catalog and its stock (`SHOP_DEMO__FILE` of the catalog and the
    /// inventory): loaded at their start, idempotently. `None`: no demo data.
    pub demo_file: Option<PathBuf>,
    /// Further variables for one service, over the launcher's: (service, name, value).
    /// Tests shorten timeouts with it (the order's payment deadline, the carrier's
    /// timer).
    pub extra_env: Vec<(&'static str, String, String)>,
}

/// The demo catalog, relative to the repository.
pub const DEMO_FILE: &str = "services/catalog/demo/products.json";

impl StackConfig {
    /// `make up`: data in `<repo>/.data`, the documented ports, every service,
    /// output to the terminal and to `.data/logs/stack.log`.
    pub fn local(repo_root: &Path, bin_dir: PathBuf) -> Self {
        let data_dir = repo_root.join(".data");
        Self {
            log: LogConfig {
                stdout: true,
                file: Some(data_dir.join("logs").join("stack.log")),
            },
            data_dir,
            bin_dir,
            work_dir: repo_root.to_path_buf(),
            ports: Ports::local_defaults(),
            services: every_service(),
            database: "shop".into(),
            log_format: std::env::var("LOG_FORMAT").unwrap_or_else(|_| "pretty".into()),
            ephemeral: false,
            health_timeout: Duration::from_secs(60),
            demo_file: Some(repo_root.join(DEMO_FILE)),
            extra_env: Vec::new(),
        }
    }

    /// For tests: every service on free ports, data in `data_dir` (which the caller
    /// removes), JSON logs to `<data_dir>/stack.log`.
    pub fn ephemeral(
        data_dir: &Path,
        bin_dir: PathBuf,
        work_dir: PathBuf,
    ) -> std::io::Result<Self> {
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            bin_dir,
            ports: Ports::free()?,
            services: every_service(),
            database: "shop".into(),
            log: LogConfig {
                stdout: false,
                file: Some(data_dir.join("stack.log")),
            },
            log_format: "json".into(),
            ephemeral: true,
            health_timeout: Duration::from_secs(60),
            demo_file: Some(work_dir.join(DEMO_FILE)),
            extra_env: Vec::new(),
            work_dir,
        })
    }

    /// The superuser on the stack's database.
    pub fn pg_admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            self.ports.postgres, self.database
        )
    }

    pub fn nats_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.nats)
    }

    pub fn nats_monitor_url(&self) -> String {
        local_url(self.ports.nats_monitor)
    }
}

/// Every service's name, in start order.
pub fn every_service() -> Vec<&'static str> {
    SERVICES.iter().map(|s| s.name).collect()
}

/// The folder of the running executable: where `cargo build` put the service binaries
/// next to `stack`.
pub fn bin_dir_of_current_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the stack executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the stack executable has no folder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_gets_its_documented_port_locally() {
        let ports = Ports::local_defaults();
        for service in SERVICES {
            assert_eq!(ports.service(service.name), service.default_port);
        }
        assert_eq!(ports.base_url("gateway"), "http://127.0.0.1:8080");
        assert_eq!(
            ports.base_urls("catalog"),
            ["http://127.0.0.1:8082", "http://127.0.0.1:8182"]
        );
    }

    #[test]
    fn local_ports_never_collide() {
        let ports = Ports::local_defaults();
        let mut all: Vec<u16> = ports.services.values().flatten().copied().collect();
        all.extend([ports.postgres, ports.nats, ports.nats_monitor]);
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[test]
    fn free_ports_give_every_process_a_port_of_its_own() {
        let ports = Ports::free().unwrap();
        let mut all: Vec<u16> = ports.services.values().flatten().copied().collect();
        all.extend([ports.postgres, ports.nats, ports.nats_monitor]);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), Instance::every().count() + 3);
        assert_eq!(ports.instances("catalog").len(), 2);
    }
}
