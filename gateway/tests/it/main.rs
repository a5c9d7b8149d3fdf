//! The gateway in front of real HTTP upstreams (small servers of the test's own on
//! free ports, so what reached them can be inspected and they can be failed, killed
//! and restarted): routing, policies, forwarding headers, streaming, every refusal as
//! problem+json, discovery, balancing, retries, the breaker, release routing, reloads,
//! the edge policies, TLS and the docs portal.

mod aggregate;
mod cores;
mod discovery;
mod edge;
mod helpers;
mod policies;
mod proxying;
mod refusals;
mod release;
mod reload;
mod resilience;
mod tls;
