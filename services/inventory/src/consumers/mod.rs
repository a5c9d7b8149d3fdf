//! What the inventory does when messages arrive: one handler per contract, each run by
//! the chassis as a durable consumer (see `app.rs`). The three reservation commands
//! are addressed to it on its own stream; `catalog.product.created` comes from the
//! catalog's.

pub mod product_created;
pub mod reservation;
