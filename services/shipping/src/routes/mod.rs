//! The shipping service's HTTP API. Handlers parse, call the table and lifecycle
//! modules and respond; no SQL is written here.

pub mod shipments;
