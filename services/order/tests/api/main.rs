//! The order service, exercised over HTTP and NATS against a real Postgres, a real
//! NATS and a stand-in catalog (an axum server of the tests' own answering the internal
//! price lookup as the catalog does), one file per flow. The inventory, the payment and
//! the shipping service are played by the tests: they publish those services' answers
//! (typed by the contracts) and read the commands the order service put in its outbox.

mod cancel;
mod helpers;
mod idempotency;
mod placement;
mod reads;
mod saga;
