//! The typed events of every context: the contracts between producers and consumers.
//! One module per context; each event's `TYPE` is its subject. Documented for humans
//! in `docs/events.md` and for tools in `docs/asyncapi.yaml`.

pub mod users;
