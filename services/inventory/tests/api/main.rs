//! The inventory service, exercised over HTTP and NATS against a real Postgres and a
//! real NATS, one file per flow.

mod demo;
mod events;
mod helpers;
mod oversell;
mod reservations;
mod stock;
