//! The catalog's HTTP API, one module per resource. Handlers parse, call the table
//! modules (`crate::products`, `crate::categories`) and respond; no SQL is written here.

pub mod categories;
pub mod internal;
pub mod products;
