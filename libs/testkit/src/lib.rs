//! What the integration tests share: one real PostgreSQL and one real NATS (JetStream)
//! per test binary, a fresh database per test with every service's schema and role,
//! and a prefix per test for NATS names. The servers themselves are `shop-servers`; a
//! test that needs a server of its own (to stop and start it mid-test) uses that crate.
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

mod poll;
mod problem;
mod shared;
mod streams;
mod tokens;

pub use poll::eventually;
pub use problem::problem;
pub use shared::{
    TestDatabase, TestNats, TestPostgres, fresh_database, nats, nats_prefix, postgres,
};
pub use streams::stream_headers;
pub use tokens::{TEST_ISSUER, TestIssuer};
