//! The local launcher behind `make up`: Postgres, NATS and every service of the shop
//! (and Prometheus, when installed)
//! (as `shop_topology::SERVICES` lists them, as many instances of each as it says)
//! as plain processes on this machine, their output multiplexed with a prefix per
//! process. The e2e tests start the same stack through [`Stack::start`].
//!
//! ```no_run
//! # async fn example(bin_dir: std::path::PathBuf) -> anyhow::Result<()> {
//! let data = tempfile::tempdir()?;
//! let config = shop_stack::StackConfig::ephemeral(data.path(), bin_dir, ".".into())?;
//! let stack = shop_stack::Stack::start(config).await?;
//! let gateway = stack.base_url("gateway");
//! stack.stop().await;
//! # let _ = gateway;
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod config;
pub mod env;
pub mod instance;
pub mod keys;
pub mod output;

mod exits;
mod infra;
mod orphans;
mod processes;
mod prometheus;
mod stack;

pub use config::{LogConfig, Ports, StackConfig, bin_dir_of_current_exe};
pub use exits::Exit;
pub use instance::Instance;
pub use orphans::stop_orphans;
pub use processes::http_client;
pub use stack::Stack;
