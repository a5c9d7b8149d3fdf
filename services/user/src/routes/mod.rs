//! The user service's HTTP API, one module per resource. Handlers parse, call the
//! table modules (`crate::users`, `crate::refresh`, `crate::throttle`) and respond;
//! no SQL is written here.

pub mod auth;
pub mod jwks;
pub mod users;
