//! The order service's HTTP API. Handlers parse, call the table modules and the saga,
//! and respond; the SQL lives beside the tables (`crate::orders`, `crate::history`,
//! `crate::idempotency`).

pub mod orders;
