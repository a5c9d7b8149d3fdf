//! The payment service, exercised over NATS and HTTP against a real Postgres and a
//! real NATS, one file per flow.

mod api;
mod authorize;
mod compensation;
mod contract;
mod helpers;
