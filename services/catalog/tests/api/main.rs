//! The catalog service's API, exercised over HTTP against a real Postgres and NATS,
//! one file per flow.

mod admin;
mod availability;
mod cache;
mod demo;
mod helpers;
mod products;
mod search;
