//! The local launcher behind `make up`: Postgres, NATS and every service of the shop
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
pub mod keys;
pub mod output;
pub mod services;
mod stack;

pub use config::{LogConfig, Ports, StackConfig};
pub use services::{SERVICES, ServiceSpec};
pub use stack::{Exit, Stack, bin_dir_of_current_exe, http_client, stop_orphans};
