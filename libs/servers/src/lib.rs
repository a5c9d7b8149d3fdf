//! Real PostgreSQL and NATS (JetStream) servers, as plain child processes that never
//! outlive the process that started them: the test kit (`shop-testkit`) runs them in
//! temporary folders, the local launcher (`shop-stack`) on its data folder.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use shop_servers::{NatsOptions, NatsServer, PgOptions, PgServer};
//!
//! let dir = tempfile::tempdir()?;
//! let ports = shop_servers::free_ports(2)?;
//! let postgres = PgServer::start(PgOptions::new(dir.path().join("pg"), ports[0])).await?;
//! let nats = NatsServer::start(NatsOptions::new(dir.path().join("nats"), ports[1])).await?;
//! println!("{} and {}", postgres.admin_url(), nats.url());
//! nats.stop().await;
//! postgres.stop().await;
//! # Ok(())
//! # }
//! ```

pub mod binaries;
pub mod nats;
pub mod ports;
pub mod postgres;
pub mod process;

pub use nats::{NatsOptions, NatsServer, NatsTls};
pub use ports::{free_port, free_ports};
pub use postgres::{PgOptions, PgServer};
pub use process::{LogSink, Owner, Process, ProcessOptions, StopSignal};
