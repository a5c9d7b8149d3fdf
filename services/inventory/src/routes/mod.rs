//! The inventory service's HTTP API. Handlers parse, call the table modules
//! (`crate::stock`) and respond; no SQL is written here.

pub mod stock;
