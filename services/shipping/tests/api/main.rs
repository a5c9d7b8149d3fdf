//! The shipping service, exercised over HTTP and NATS against a real Postgres and a
//! real NATS, one file per flow.

mod carrier;
mod helpers;
mod orders;
mod reads;
mod steps;
