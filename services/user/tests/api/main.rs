//! The user service's API, exercised over HTTP against a real Postgres, one file per
//! flow.

mod admin;
mod helpers;
mod jwks;
mod login;
mod logout;
mod low_stock_alert;
mod ops;
mod purge;
mod refresh;
mod register;
mod throttle;
mod users;
