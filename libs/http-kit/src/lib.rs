//! The HTTP kit every service is built on: problem+json errors, a `Json` extractor
//! that answers bad input with them, request ids, health and readiness, Prometheus
//! metrics, OpenAPI and Swagger UI, timeouts, body limits and graceful shutdown.

pub mod client_ip;
pub mod config;
pub mod health;
pub mod json;
pub mod observe;
pub mod page;
pub mod probe;
pub mod problem;
pub mod query;
pub mod server;

pub use health::{CheckFuture, Readiness, ReadinessCheck, ReadinessReport};
pub use json::{Json, Valid, Validate};
pub use problem::{FieldError, Problem};
pub use query::Query;
pub use server::{
    Accept, HttpSettings, ServiceInfo, app, bind, edge_app, run, serve, serve_with, shutdown_signal,
};
