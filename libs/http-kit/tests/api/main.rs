//! shop-http's tests: the server's connection handling over real sockets, and the
//! extractors through a router.

mod helpers;
mod query;
mod serve;
