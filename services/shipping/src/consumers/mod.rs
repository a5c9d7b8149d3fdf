//! What the shipping service does when the order service announces how an order
//! stands: one handler per contract, each run by the chassis as a durable consumer
//! (see `app.rs`). Both read the `ORDERS` stream; neither waits for the other (see
//! `crate::lifecycle` for why that is safe).

pub mod order_cancelled;
pub mod order_confirmed;
