//! The process: `shop-<name>` serves; `shop-<name> openapi` prints the OpenAPI
//! document (the gateway's docs portal and CI read it without starting anything);
//! `shop-<name> healthcheck` asks the running service's `/healthz` (a container's
//! health check, see `shop_http::probe`); a service may add commands of its own
//! (`shop-user keygen`).

use std::future::Future;

use utoipa::openapi::OpenApi;

use crate::Application;

type Command = (
    &'static str,
    &'static str,
    Box<dyn Fn() -> anyhow::Result<()>>,
);

/// A service's command line.
pub struct Cli {
    name: &'static str,
    commands: Vec<Command>,
}

impl Cli {
    /// `openapi` prints the document `openapi` builds.
    pub fn new(info: shop_http::ServiceInfo, openapi: fn() -> OpenApi) -> Self {
        let print_openapi = move || {
            println!("{}", openapi().to_pretty_json()?);
            Ok(())
        };
        let default_port = shop_topology::service(info.name).map_or(0, |s| s.default_port);
        let healthcheck = move || {
            let port = shop_http::probe::probe_port(default_port)?;
            shop_http::probe::healthcheck(port)
        };
        Self {
            name: info.name,
            commands: vec![
                (
                    "openapi",
                    "print the OpenAPI document",
                    Box::new(print_openapi),
                ),
                (
                    "healthcheck",
                    "exit 0 if the service on SHOP_PORT answers /healthz",
                    Box::new(healthcheck),
                ),
            ],
        }
    }

    /// Another subcommand.
    pub fn command(
        mut self,
        name: &'static str,
        help: &'static str,
        run: fn() -> anyhow::Result<()>,
    ) -> Self {
        self.commands.push((name, help, Box::new(run)));
        self
    }

    /// Runs the subcommand named on the command line, or else: telemetry, then
    /// `build`, then serve until Ctrl-C or SIGTERM.
    pub async fn run<F, Fut>(self, build: F) -> anyhow::Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Application>>,
    {
        if let Some(arg) = std::env::args().nth(1) {
            return match self.commands.iter().find(|(name, _, _)| *name == arg) {
                Some((_, _, run)) => run(),
                None => {
                    let list: Vec<String> = self
                        .commands
                        .iter()
                        .map(|(name, help, _)| format!("  {name:<10} {help}"))
                        .collect();
                    anyhow::bail!(
                        "unknown command `{arg}`; shop-{} alone serves, or:\n{}",
                        self.name,
                        list.join("\n")
                    )
                }
            };
        }
        let _telemetry = shop_telemetry::init(self.name)?;
        // Before anything records: a gauge set while the service starts (a breaker's
        // state) would otherwise be lost until it changes.
        shop_http::observe::prometheus();
        let app = build().await?;
        app.run_until_stopped(shop_http::shutdown_signal()).await
    }
}
