//! What the catalog does when events arrive: one handler per event contract, each run
//! by the chassis as a durable consumer (see `app.rs`).

pub mod availability;
