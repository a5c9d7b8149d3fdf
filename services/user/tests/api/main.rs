//! The user service's API, exercised over HTTP against a real Postgres.

mod auth;
mod helpers;
mod jwks;
mod ops;
mod users;
