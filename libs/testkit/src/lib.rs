//! Real PostgreSQL and NATS (JetStream) servers, as plain child processes: for the
//! integration tests (one shared server each per test binary, a fresh database per
//! test) and for the local launcher (`shop-stack`), which runs them on a data folder.
//!
//! ```no_run
//! # async fn example() {
//! let db = shop_testkit::fresh_database().await;
//! let user_db_url = db.service_url("user"); // the user service's own role
//! let nats = shop_testkit::nats().await;
//! let stream = format!("{}_ORDERS", shop_testkit::nats_prefix());
//! # let _ = (user_db_url, nats, stream);
//! # }
//! ```

pub mod binaries;
pub mod nats;
pub mod ports;
pub mod postgres;
pub mod process;
mod shared;

pub use nats::{NatsOptions, NatsServer};
pub use ports::{free_port, free_ports};
pub use postgres::{PgOptions, PgServer};
pub use process::{LogSink, Process, ProcessOptions, StopSignal};
pub use shared::{
    TestDatabase, TestNats, TestPostgres, fresh_database, nats, nats_prefix, postgres,
};
